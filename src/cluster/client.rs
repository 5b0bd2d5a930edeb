//! Calls to other nodes: signed, stamped with our epoch and Lamport time, with a timeout.
//! An answer counts only with a valid signature over our request's nonce (see
//! [`super::auth::sign_answer`]); any other is an error.
use super::auth::{nonce, sign, verify_answer, HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME};
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
    /// The answer's signature is missing or wrong: not from a node with the secret, or not
    /// to this request. Its content is not used.
    #[error("{0} sent an answer that is not signed for this request: {1}")]
    Unsigned(String, String),
}

/// An RPC's response, its body not read yet.
type Response = awc::ClientResponse<actix_web::dev::Decompress<actix_web::dev::Payload>>;

/// A streamed answer: its body as it comes, or a signed refusal.
pub enum Streamed {
    Body {
        body: std::pin::Pin<Box<dyn futures::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>>>,
        nonce: String,
    },
    Refused {
        status: u16,
        body: Vec<u8>,
    },
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

    /// Signs `body` as this node (a Lamport tick, the time, a fresh nonce) and POSTs it to
    /// `peer`'s `path`; returns the response and the nonce its answer must be signed for.
    async fn send<Req: Serialize>(
        &self,
        client: &awc::Client,
        peer: &Peer,
        path: &str,
        body: Req,
    ) -> Result<(Response, String), RpcError> {
        let lamport = self.clock.send(Tick { events: 1 }).await.unwrap_or(0);
        let env = Envelope { from: self.cluster.node_id, epoch: self.cluster.epoch(), lamport, body };
        let bytes = serde_json::to_vec(&env).map_err(|e| RpcError::BadAnswer(peer.address.clone(), e.to_string()))?;
        let time = chrono::Utc::now().timestamp();
        let nonce = nonce();
        let sig = sign(&self.cluster.config.secret, self.cluster.node_id, time, &nonce, path, &bytes);
        let res = client
            .post(format!("http://{}{}", peer.address, path))
            .insert_header(("Content-Type", "application/json"))
            .insert_header((HEADER_NODE, self.cluster.node_id.to_string()))
            .insert_header((HEADER_TIME, time.to_string()))
            .insert_header((HEADER_NONCE, nonce.clone()))
            .insert_header((HEADER_SIGNATURE, sig))
            .send_body(bytes)
            .await
            .map_err(|e| RpcError::Unreachable(peer.address.clone(), e.to_string()))?;
        Ok((res, nonce))
    }

    /// POSTs `body` to `peer`'s `path` for an answer streamed back (a backup): a 200's body
    /// comes as it arrives, unread, with the request's nonce (its last line carries the
    /// signature, see [`super::auth::StreamMac`]); any other answer is read whole and must
    /// be signed like every answer, then comes back as its status and body.
    pub async fn open_stream<Req: Serialize>(
        &self,
        client: &awc::Client,
        peer: &Peer,
        path: &str,
        body: Req,
    ) -> Result<Streamed, RpcError> {
        let (mut res, nonce) = self.send(client, peer, path, body).await?;
        let secret = &self.cluster.config.secret;
        let status = res.status();
        if status.is_success() {
            return Ok(Streamed::Body { body: Box::pin(res), nonce });
        }
        let signature = res.headers().get(HEADER_SIGNATURE).map(|v| v.to_str().unwrap_or("-").to_string());
        let body =
            res.body().limit(1 << 20).await.map_err(|e| RpcError::Unreachable(peer.address.clone(), e.to_string()))?;
        match signature {
            Some(sig) => verify_answer(secret, &nonce, status.as_u16(), &body, &sig)
                .map_err(|e| RpcError::Unsigned(peer.address.clone(), e.to_string()))?,
            None => return Err(RpcError::Status(peer.address.clone(), status.as_u16())),
        }
        Ok(Streamed::Refused { status: status.as_u16(), body: body.to_vec() })
    }

    /// POSTs `body` to `peer`'s `path`, and returns its answer's body.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        client: &awc::Client,
        peer: &Peer,
        path: &str,
        body: Req,
    ) -> Result<Envelope<Resp>, RpcError> {
        let (mut res, nonce) = self.send(client, peer, path, body).await?;
        let secret = &self.cluster.config.secret;
        let status = res.status();
        let signature = res.headers().get(HEADER_SIGNATURE).map(|v| v.to_str().unwrap_or("-").to_string());
        let body = res
            .body()
            .limit(MAX_RPC_BODY)
            .await
            .map_err(|e| RpcError::Unreachable(peer.address.clone(), e.to_string()))?;
        match signature {
            Some(sig) => verify_answer(secret, &nonce, status.as_u16(), &body, &sig).map_err(|e| {
                log::warn!("refused the answer of {} to {path} ({status}): {e}", peer.address);
                RpcError::Unsigned(peer.address.clone(), e.to_string())
            })?,
            // A refusal before the request was verified (401, an unknown path) is not
            // signed; it is an error all the same, and nothing is read from it.
            None if !status.is_success() && status.as_u16() != 409 => {
                return Err(RpcError::Status(peer.address.clone(), status.as_u16()));
            }
            None => {
                log::warn!("refused the answer of {} to {path} ({status}): no signature", peer.address);
                return Err(RpcError::Unsigned(peer.address.clone(), "no signature".into()));
            }
        }
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
