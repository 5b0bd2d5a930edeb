//! Finding the other nodes: a fixed list (PEERS), or every address a DNS name resolves to
//! (PEER_DISCOVERY=dns:app:8000 under docker compose), looked up again and again.
use super::config::{id_from_ip, NodeId, Peer, PeerSource};
use std::net::IpAddr;

/// The peers now, this node excluded.
pub async fn discover(source: &PeerSource, me: NodeId) -> Result<Vec<Peer>, String> {
    match source {
        PeerSource::Static(peers) => Ok(peers.clone()),
        PeerSource::Dns { name, port } => {
            let addrs = tokio::net::lookup_host((name.as_str(), *port))
                .await
                .map_err(|e| format!("cannot resolve {name}: {e}"))?;
            let mut peers: Vec<Peer> = addrs
                .filter_map(|a| match a.ip() {
                    IpAddr::V4(ip) => Some(Peer { id: id_from_ip(ip), address: format!("{ip}:{port}") }),
                    IpAddr::V6(_) => None,
                })
                .filter(|p| p.id != me)
                .collect();
            peers.sort_by_key(|p| p.id);
            peers.dedup_by_key(|p| p.id);
            Ok(peers)
        }
    }
}
