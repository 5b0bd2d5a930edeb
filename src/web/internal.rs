//! Node-to-node endpoints under `/internal/`. Each request must be signed with the cluster
//! secret (else 401, logged), and every answer to a signed request is signed over the
//! request's nonce ([`Signed`]), whatever its status. Protocol messages
//! (`/internal/message`) go to the ElectionCoordinator as they are (the protocol core
//! judges their epochs).
//! [`cluster`] answers `GET /api/cluster` (public, read-only): every node's status.
use super::error::WebError;
use super::AppState;
use crate::actors::lamport::Merge;
use crate::cluster::auth::{sign_answer, verify, AuthError, HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME};
use crate::cluster::client::Rpc;
use crate::cluster::election::{Inbound, RemoveNode, Status};
use crate::cluster::messages::{Envelope, NodeStatus, ProtocolMessage, WriteAnswers, WriteBatch};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// The largest node-to-node request (a batch of log entries with a catalog in it).
pub const MAX_INTERNAL_BODY: usize = 64 * 1024 * 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal")
            .app_data(web::PayloadConfig::new(MAX_INTERNAL_BODY))
            .route("/message", web::post().to(message))
            .route("/writes", web::post().to(forwarded_writes))
            .route("/status", web::post().to(status))
            .route("/admin/remove", web::post().to(admin_remove))
            .route("/admin/import", web::post().to(admin_import))
            .route("/admin/imports", web::post().to(admin_imports))
            .route("/admin/cancel", web::post().to(admin_cancel))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(WebError::NotFound("no such endpoint".into()))
            })),
    );
}

/// A verified request: what the answer to it is signed with.
struct Signed<'a> {
    state: &'a AppState,
    nonce: String,
}

impl Signed<'_> {
    /// An answer with `status` and `body` as JSON, signed over the request's nonce.
    fn answer(&self, status: StatusCode, body: &impl Serialize) -> HttpResponse {
        let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"null".to_vec());
        let sig = sign_answer(&self.state.cluster.config.secret, &self.nonce, status.as_u16(), &bytes);
        HttpResponse::build(status).content_type("application/json").insert_header((HEADER_SIGNATURE, sig)).body(bytes)
    }

    fn error(&self, status: StatusCode, message: impl Into<String>) -> HttpResponse {
        self.answer(status, &serde_json::json!({ "error": message.into() }))
    }

    /// 200 with `body` in an envelope stamped with our id, epoch and Lamport time.
    async fn reply<T: Serialize>(&self, body: T) -> HttpResponse {
        let state = self.state;
        let lamport = state.rpc.clock.send(crate::actors::lamport::Tick { events: 1 }).await.unwrap_or(0);
        let env = Envelope { from: state.cluster.node_id, epoch: state.cluster.epoch(), lamport, body };
        self.answer(StatusCode::OK, &env)
    }
}

/// Checks the signature and parses the envelope; merges the sender's Lamport time. A
/// refusal before the signature is known good is not signed (there is no request to sign
/// it for); one after is.
async fn open<'a, T: DeserializeOwned>(
    state: &'a AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Envelope<T>, Signed<'a>), HttpResponse> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let refuse = |why: String| {
        log::warn!("refused {} from {}: {why}", req.path(), req.peer_addr().map(|a| a.to_string()).unwrap_or_default());
        HttpResponse::Unauthorized().json(serde_json::json!({"error": "node authentication failed"}))
    };
    let (Some(node), Some(time), Some(nonce), Some(sig)) =
        (header(HEADER_NODE), header(HEADER_TIME), header(HEADER_NONCE), header(HEADER_SIGNATURE))
    else {
        return Err(refuse("no credentials".into()));
    };
    let (Ok(node), Ok(time)) = (node.parse::<u64>(), time.parse::<i64>()) else {
        return Err(refuse("malformed credentials".into()));
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(e) = verify(&state.cluster.config.secret, node, time, &nonce, now, req.path(), body, &sig) {
        return Err(refuse(e.to_string()));
    }
    if !state.replays.lock().unwrap_or_else(|p| p.into_inner()).admit(node, &nonce, time, now) {
        return Err(refuse(AuthError::Replayed.to_string()));
    }
    let signed = Signed { state, nonce };
    let env: Envelope<T> = serde_json::from_slice(body)
        .map_err(|e| signed.error(StatusCode::BAD_REQUEST, format!("malformed message: {e}")))?;
    if env.from != node {
        log::warn!("refused {}: signed by node {node} but claims to be {}", req.path(), env.from);
        return Err(signed.error(StatusCode::UNAUTHORIZED, "node authentication failed"));
    }
    state.rpc.clock.do_send(Merge { remote: env.lamport });
    Ok((env, signed))
}

/// A protocol message: it must come from the node that signed it and be meant for us.
/// It is queued for the coordinator (dropped, with 503, when the queue is full: the
/// protocol tolerates lost messages).
async fn message(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (env, signed): (Envelope<ProtocolMessage>, _) = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    if env.body.from != env.from || env.body.to != state.cluster.node_id {
        return signed.error(StatusCode::BAD_REQUEST, "the message is not from its signer or not for this node");
    }
    match state.coordinator.try_send(Inbound(env.body)) {
        Ok(()) => signed.reply(serde_json::json!({})).await,
        Err(_) => signed.error(StatusCode::SERVICE_UNAVAILABLE, "busy"),
    }
}

/// The most writes one forwarded batch may carry.
pub const MAX_FORWARDED: usize = 1024;

/// Writes a follower passed on: each runs here as if a visitor had made it on this node
/// (concurrently, so they share group commits), and the answers go back in order.
async fn forwarded_writes(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (env, signed): (Envelope<WriteBatch>, _) = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let (sender, sent_at, writes) = (env.from, env.lamport, env.body.writes);
    if writes.len() > MAX_FORWARDED {
        return signed.error(StatusCode::PAYLOAD_TOO_LARGE, format!("at most {MAX_FORWARDED} writes to a batch"));
    }
    let answers =
        futures::future::join_all(writes.into_iter().map(|w| super::writes::run_forwarded(&state, sender, sent_at, w)))
            .await;
    signed.reply(WriteAnswers { answers }).await
}

async fn status(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let signed = match open::<serde_json::Value>(&state, &req, &body).await {
        Ok((_, signed)) => signed,
        Err(r) => return r,
    };
    match state.coordinator.send(Status).await {
        Ok((s, _)) => signed.reply(s).await,
        Err(_) => signed.error(StatusCode::SERVICE_UNAVAILABLE, "the coordinator is not running"),
    }
}

/// How many of the log's last entries the cluster view lists.
pub const RECENT_ENTRIES: i64 = 20;

/// Every node's status as this node sees it: its own, each peer's (asked now, briefly),
/// and, on the master, what each follower acknowledged and how far behind it is; and the
/// last entries of this node's log.
pub async fn cluster_view(state: &AppState) -> serde_json::Value {
    let (me, progress) = state.coordinator.send(Status).await.unwrap_or_else(|_| {
        let v = state.cluster.view();
        let me = NodeStatus {
            node_id: state.cluster.node_id,
            role: "unknown".into(),
            epoch: v.epoch,
            master_id: v.master,
            lamport: 0,
            last_lsn: state.writer.position().last_lsn,
            last_epoch: state.writer.position().last_epoch,
            commit_lsn: v.commit as i64,
            writable: false,
            last_heartbeat_ms: None,
            voters: v.membership.voters.iter().copied().collect(),
            learners: v.membership.learners.iter().copied().collect(),
            storage_ok: v.storage_ok,
        };
        (me, Vec::new())
    });
    let acks: std::collections::HashMap<u64, (Option<i64>, Option<u64>)> =
        progress.into_iter().map(|(id, m, t)| (id, (Some(m), t))).collect();
    let client = Rpc::http_client(Duration::from_millis(700));
    let peers = state.cluster.peers();
    let asks = peers.iter().map(|p| {
        let (rpc, client) = (state.rpc.clone(), client.clone());
        async move {
            rpc.call::<_, NodeStatus>(&client, p, "/internal/status", serde_json::json!({})).await.map(|e| e.body).ok()
        }
    });
    let recent = state.db.run(|c| crate::db::write_log::recent(c, RECENT_ENTRIES));
    let (answers, recent) = futures::join!(futures::future::join_all(asks), recent);
    let entries = recent.map(|entries| serde_json::json!(entries)).unwrap_or_else(|e| {
        log::warn!("cluster view: cannot read the log: {e}");
        serde_json::Value::Null
    });
    let master_lsn = if me.role == "master" {
        me.last_lsn
    } else {
        answers.iter().flatten().find(|s| s.role == "master").map(|s| s.last_lsn).unwrap_or(me.last_lsn)
    };
    let mut nodes = vec![serde_json::json!({
        "id": me.node_id, "address": "this node", "reachable": true, "role": me.role, "epoch": me.epoch,
        "lamport": me.lamport, "last_lsn": me.last_lsn, "lag": master_lsn - me.last_lsn,
        "last_heartbeat_ms": me.last_heartbeat_ms, "acked_lsn": serde_json::Value::Null,
        "storage_ok": me.storage_ok, "membership": membership_of(&me, me.node_id),
    })];
    for (peer, answer) in peers.iter().zip(answers) {
        let (acked, ack_ms) = acks.get(&peer.id).cloned().unwrap_or((None, None));
        nodes.push(match answer {
            Some(s) => serde_json::json!({
                "id": s.node_id, "address": peer.address, "reachable": true, "role": s.role, "epoch": s.epoch,
                "lamport": s.lamport, "last_lsn": s.last_lsn, "lag": master_lsn - s.last_lsn,
                "last_heartbeat_ms": s.last_heartbeat_ms.or(ack_ms), "acked_lsn": acked,
                "storage_ok": s.storage_ok, "membership": membership_of(&me, s.node_id),
            }),
            None => serde_json::json!({
                "id": peer.id, "address": peer.address, "reachable": false, "role": "unreachable",
                "epoch": null, "lamport": null, "last_lsn": null, "storage_ok": null,
                "acked_lsn": acked, "lag": acked.map(|a| master_lsn - a), "last_heartbeat_ms": ack_ms,
                "membership": membership_of(&me, peer.id),
            }),
        });
    }
    serde_json::json!({
        "node_id": me.node_id, "role": me.role, "epoch": me.epoch, "master_id": me.master_id, "lamport": me.lamport,
        "last_lsn": me.last_lsn, "commit_lsn": me.commit_lsn, "writable": me.writable, "nodes": nodes, "log": entries,
        "storage_ok": me.storage_ok, "voters": me.voters, "learners": me.learners,
    })
}

/// A node's place in the membership this node knows.
fn membership_of(me: &NodeStatus, id: u64) -> &'static str {
    if me.voters.contains(&id) {
        "voter"
    } else if me.learners.contains(&id) {
        "learner"
    } else {
        "outside"
    }
}

pub async fn cluster(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(cluster_view(&state).await)
}

/// An admin action a follower passed on to the master: its result, or the error's status
/// and message.
type Relayed<T> = Result<T, (u16, String)>;

fn relay<T>(r: Result<T, WebError>) -> Relayed<T> {
    use actix_web::ResponseError;
    r.map_err(|e| (e.status_code().as_u16(), e.to_string()))
}

fn not_master<T>() -> Relayed<T> {
    Err((503, "this node is no longer the master; try again".into()))
}

async fn admin_import(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let signed = match open::<serde_json::Value>(&state, &req, &body).await {
        Ok((_, signed)) => signed,
        Err(r) => return r,
    };
    let res = match state.cluster.route() {
        crate::cluster::state::Route::Local => {
            relay(super::admin::start_import(&state, crate::actors::importer::Trigger::Admin).await)
        }
        _ => not_master(),
    };
    signed.reply(res).await
}

async fn admin_imports(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let signed = match open::<serde_json::Value>(&state, &req, &body).await {
        Ok((_, signed)) => signed,
        Err(r) => return r,
    };
    let res = match state.cluster.route() {
        crate::cluster::state::Route::Local => relay(super::admin::import_overview(&state).await),
        _ => not_master(),
    };
    signed.reply(res).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    code: String,
}

async fn admin_cancel(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (env, signed): (Envelope<CancelRequest>, _) = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let res = match (state.cluster.route(), crate::domain::BookingCode::parse(&env.body.code)) {
        (_, Err(e)) => Err((404, e.to_string())),
        (crate::cluster::state::Route::Local, Ok(code)) => {
            let origin = crate::wal::Origin::Forwarded { node: env.from, lamport: env.lamport };
            relay(super::admin::cancel_booking(&state, code, origin).await)
        }
        _ => not_master(),
    };
    signed.reply(res).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveRequest {
    id: u64,
}

/// An operator removes a node from the cluster (`marquee cluster remove`), passed on to the
/// master.
async fn admin_remove(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (env, signed): (Envelope<RemoveRequest>, _) = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let id = env.body.id;
    let res: Relayed<()> = match state.cluster.route() {
        crate::cluster::state::Route::Local => match state.coordinator.send(RemoveNode(id)).await {
            Ok(true) => Ok(()),
            _ => not_master(),
        },
        crate::cluster::state::Route::Forward(master) if env.from != master.id => {
            let client = Rpc::http_client(Duration::from_secs(5));
            let body = serde_json::json!({ "id": id });
            match state.rpc.call::<_, Relayed<()>>(&client, &master, "/internal/admin/remove", body).await {
                Ok(answer) => answer.body,
                Err(e) => Err((503, format!("the master did not answer: {e}"))),
            }
        }
        _ => not_master(),
    };
    log::info!("operator removal of node {id}: {res:?}");
    signed.reply(res).await
}
