//! Calls to other nodes: signed, stamped with our epoch and Lamport time, with a timeout.
use super::auth::{nonce, sign, HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME};
use super::messages::{Envelope, StaleEpoch};
use super::{ClusterState, Peer};
use crate::actors::lamport::{LamportClock, Merge, Tick};
use actix::Addr;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The largest answer accepted from another node (a page of log entries).
pub const MAX_RPC_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("{0} did not answer: {1}")]
    Unreachable(String, String),
    #[error("{peer} says our epoch is old (theirs is {epoch})")]
    StaleEpoch { peer: String, epoch: u64, master_id: Option<u64> },
    #[error("{0} answered {1}")]
    Status(String, u16),
    #[error("{0} sent an answer we cannot read: {1}")]
    BadAnswer(String, String),
}

/// What a node needs to call the others. Create one per thread (awc's client is not Send).
#[derive(Clone)]
pub struct Rpc {
    pub cluster: Arc<ClusterState>,
    pub clock: Addr<LamportClock>,
}

impl Rpc {
    /// Sends a protocol message one way (its answer, if any, comes as another message).
    /// A message that does not arrive is lost: the protocol tolerates that.
    pub async fn tell(&self, client: &awc::Client, peer: &Peer, message: super::messages::ProtocolMessage) {
        let what = message.message.name();
        if let Err(e) = self.call::<_, serde_json::Value>(client, peer, "/internal/message", message).await {
            log::debug!("{what} to node {}: {e}", peer.id);
        }
    }

    pub fn http_client(timeout: Duration) -> awc::Client {
        awc::Client::builder().timeout(timeout).disable_redirects().finish()
    }

    /// POSTs `body` to `peer`'s `path`, and returns its answer's body.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        client: &awc::Client,
        peer: &Peer,
        path: &str,
        body: Req,
    ) -> Result<Envelope<Resp>, RpcError> {
        let lamport = self.clock.send(Tick { events: 1 }).await.unwrap_or(0);
        let env = Envelope { from: self.cluster.node_id, epoch: self.cluster.epoch(), lamport, body };
        let bytes = serde_json::to_vec(&env).map_err(|e| RpcError::BadAnswer(peer.address.clone(), e.to_string()))?;
        let time = chrono::Utc::now().timestamp();
        let nonce = nonce();
        let sig = sign(&self.cluster.config.secret, self.cluster.node_id, time, &nonce, path, &bytes);
        let mut res = client
            .post(format!("http://{}{}", peer.address, path))
            .insert_header(("Content-Type", "application/json"))
            .insert_header((HEADER_NODE, self.cluster.node_id.to_string()))
            .insert_header((HEADER_TIME, time.to_string()))
            .insert_header((HEADER_NONCE, nonce))
            .insert_header((HEADER_SIGNATURE, sig))
            .send_body(bytes)
            .await
            .map_err(|e| RpcError::Unreachable(peer.address.clone(), e.to_string()))?;
        let status = res.status();
        let body = res
            .body()
            .limit(MAX_RPC_BODY)
            .await
            .map_err(|e| RpcError::Unreachable(peer.address.clone(), e.to_string()))?;
        if status.as_u16() == 409 {
            if let Ok(stale) = serde_json::from_slice::<StaleEpoch>(&body) {
                if stale.stale {
                    return Err(RpcError::StaleEpoch {
                        peer: peer.address.clone(),
                        epoch: stale.epoch,
                        master_id: stale.master_id,
                    });
                }
            }
        }
        if !status.is_success() {
            return Err(RpcError::Status(peer.address.clone(), status.as_u16()));
        }
        let answer: Envelope<Resp> =
            serde_json::from_slice(&body).map_err(|e| RpcError::BadAnswer(peer.address.clone(), e.to_string()))?;
        self.clock.do_send(Merge { remote: answer.lamport });
        Ok(answer)
    }
}
