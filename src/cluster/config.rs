use std::env;
use std::time::Duration;

pub type NodeId = u64;

/// Another node: its id and where it listens (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    pub id: NodeId,
    pub address: String,
}

/// Where the peers come from.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerSource {
    /// PEERS=`2@10.0.0.2:8000,3@10.0.0.3:8000`.
    Static(Vec<Peer>),
    /// PEER_DISCOVERY=`dns:app:8000`: every address the name resolves to is a node, its id
    /// derived from the address.
    Dns { name: String, port: u16 },
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node_id: NodeId,
    pub peers: PeerSource,
    pub secret: String,
    pub heartbeat_interval: Duration,
    pub failure_timeout: Duration,
    pub election_timeout: Duration,
    /// How long a write waits for a majority before it is answered "unknown" (503).
    pub replication_timeout: Duration,
    /// A master whose log has not finished a database write for this long steps down.
    pub storage_stall: Duration,
    /// LOG_RETAIN_ENTRIES: committed entries kept in `write_log` behind the compaction
    /// point (0: never compact).
    pub log_retain: u64,
}

/// Entries kept behind the compaction point by default: a follower that falls this far
/// behind (or a node that diverged) installs a snapshot instead of replaying the log.
pub const DEFAULT_LOG_RETAIN: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
#[error("cluster configuration: {0}")]
pub struct ClusterConfigError(pub String);

/// Parses `id@host:port,...`.
pub fn parse_peers(raw: &str) -> Result<Vec<Peer>, ClusterConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|p| {
            let (id, addr) =
                p.split_once('@').ok_or_else(|| ClusterConfigError(format!("peer '{p}' is not id@host:port")))?;
            let id: NodeId = id
                .parse()
                .ok()
                .filter(|i| *i > 0)
                .ok_or_else(|| ClusterConfigError(format!("peer id '{id}' is not a positive integer")))?;
            if !addr.contains(':') {
                return Err(ClusterConfigError(format!("peer address '{addr}' needs a port")));
            }
            Ok(Peer { id, address: addr.to_string() })
        })
        .collect()
}

/// A node id from an IPv4 address: the last two octets (unique within a /16 network).
pub fn id_from_ip(ip: std::net::Ipv4Addr) -> NodeId {
    let o = ip.octets();
    o[2] as NodeId * 256 + o[3] as NodeId
}

fn millis(name: &str, default: u64) -> Result<Duration, ClusterConfigError> {
    match env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|m| (10..=600_000).contains(m))
            .map(Duration::from_millis)
            .ok_or_else(|| ClusterConfigError(format!("{name} must be milliseconds between 10 and 600000"))),
        _ => Ok(Duration::from_millis(default)),
    }
}

impl ClusterConfig {
    /// A cluster of one (no PEERS): the node is its own master.
    pub fn single(node_id: NodeId) -> Self {
        Self {
            node_id,
            peers: PeerSource::Static(Vec::new()),
            secret: String::new(),
            heartbeat_interval: Duration::from_millis(250),
            failure_timeout: Duration::from_millis(1200),
            election_timeout: Duration::from_millis(500),
            replication_timeout: Duration::from_secs(3),
            storage_stall: Duration::from_secs(5),
            log_retain: DEFAULT_LOG_RETAIN,
        }
    }

    pub fn from_env() -> Result<Self, ClusterConfigError> {
        let discovery = env::var("PEER_DISCOVERY").unwrap_or_default();
        let peers = if let Some(rest) = discovery.trim().strip_prefix("dns:") {
            let (name, port) =
                rest.rsplit_once(':').ok_or_else(|| ClusterConfigError("PEER_DISCOVERY is dns:NAME:PORT".into()))?;
            let port = port.parse().map_err(|_| ClusterConfigError(format!("bad port in PEER_DISCOVERY: {port}")))?;
            PeerSource::Dns { name: name.to_string(), port }
        } else if !discovery.trim().is_empty() {
            return Err(ClusterConfigError(format!("unknown PEER_DISCOVERY '{discovery}' (use dns:NAME:PORT)")));
        } else {
            PeerSource::Static(parse_peers(&env::var("PEERS").unwrap_or_default())?)
        };
        let node_id = match env::var("NODE_ID") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<NodeId>()
                .ok()
                .filter(|i| *i > 0)
                .ok_or_else(|| ClusterConfigError("NODE_ID must be a positive integer".into()))?,
            _ => match &peers {
                PeerSource::Dns { .. } => own_ipv4().map(id_from_ip).ok_or_else(|| {
                    ClusterConfigError("NODE_ID is unset and no IPv4 address of this host was found".into())
                })?,
                PeerSource::Static(_) => 1,
            },
        };
        let secret = env::var("CLUSTER_SECRET").unwrap_or_default();
        let clustered = !matches!(&peers, PeerSource::Static(p) if p.is_empty());
        if clustered && secret.len() < 16 {
            return Err(ClusterConfigError(
                "CLUSTER_SECRET must be set (16 characters or more) when the node has peers".into(),
            ));
        }
        if let PeerSource::Static(p) = &peers {
            if p.iter().any(|p| p.id == node_id) {
                return Err(ClusterConfigError(format!("PEERS lists this node's own id {node_id}")));
            }
        }
        Ok(Self {
            node_id,
            peers,
            secret,
            heartbeat_interval: millis("HEARTBEAT_MS", 250)?,
            failure_timeout: millis("FAILURE_TIMEOUT_MS", 1200)?,
            election_timeout: millis("ELECTION_TIMEOUT_MS", 500)?,
            replication_timeout: millis("REPLICATION_TIMEOUT_MS", 3000)?,
            storage_stall: millis("STORAGE_STALL_MS", 5000)?,
            log_retain: match env::var("LOG_RETAIN_ENTRIES") {
                Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                    ClusterConfigError(format!("LOG_RETAIN_ENTRIES: '{v}' is not a whole number (0: never compact)"))
                })?,
                _ => DEFAULT_LOG_RETAIN,
            },
        })
    }
}

/// This host's first non-loopback IPv4 address (NODE_ADDRESS overrides).
pub fn own_ipv4() -> Option<std::net::Ipv4Addr> {
    if let Ok(a) = env::var("NODE_ADDRESS") {
        return a.parse().ok();
    }
    // The address the host name resolves to (Docker puts it in /etc/hosts).
    let host = std::fs::read_to_string("/etc/hostname").ok()?.trim().to_string();
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts
        .lines()
        .filter(|l| l.split_whitespace().skip(1).any(|n| n == host))
        .find_map(|l| l.split_whitespace().next()?.parse::<std::net::Ipv4Addr>().ok().filter(|ip| !ip.is_loopback()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse() {
        let p = parse_peers("2@127.0.0.1:8002, 3@localhost:8003").unwrap();
        assert_eq!(
            p,
            vec![Peer { id: 2, address: "127.0.0.1:8002".into() }, Peer { id: 3, address: "localhost:8003".into() }]
        );
        assert!(parse_peers("x@h:1").is_err());
        assert!(parse_peers("0@h:1").is_err());
        assert!(parse_peers("2@h").is_err());
        assert!(parse_peers("").unwrap().is_empty());
    }

    #[test]
    fn ids_from_addresses_are_ordered_and_unique_in_a_16() {
        assert_eq!(id_from_ip("172.18.0.5".parse().unwrap()), 5);
        assert_eq!(id_from_ip("172.18.1.2".parse().unwrap()), 258);
    }
}

/// `PEERS` takes any text: peers with a positive id and an address with a port, or an
/// error naming the bad one. Cases per run: `CASES`.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_text_is_a_list_of_peers_or_an_error(
            raw in prop_oneof![text(), "([ ]?[+-]?[0-9]{0,21}@?[a-z0-9.]{0,6}:?[0-9]{0,6}[ ]?,?){0,4}"]
        ) {
            if let Ok(peers) = parse_peers(&raw) {
                for p in &peers {
                    prop_assert!(p.id > 0);
                    prop_assert!(p.address.contains(':'));
                    let written = format!("@{}", p.address);
                    prop_assert!(raw.contains(&written), "{:?} is not in the text", p.address);
                }
            }
        }
    }
}
