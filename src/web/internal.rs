//! Node-to-node endpoints under `/internal/`. Each request must be signed with the cluster
//! secret (else 401, logged) and carry an epoch no older than ours (else 409 with ours).
//! [`cluster`] answers `GET /api/cluster` (public, read-only): every node's status.
use super::error::WebError;
use super::AppState;
use crate::actors::lamport::Merge;
use crate::actors::show::Replicated;
use crate::cluster::auth::{verify, HEADER_NODE, HEADER_SIGNATURE, HEADER_TIME};
use crate::cluster::client::Rpc;
use crate::cluster::election::{OnCoordinator, OnElection, OnHeartbeat, Status, Verdict};
use crate::cluster::messages::{
    Append, AppendOutcome, AppendReply, Coordinator, Election, ElectionOk, Envelope, Heartbeat, HeartbeatReply,
    LogPage, LogRequest, NodeStatus, StaleEpoch, WriteAnswers, WriteBatch,
};
use crate::cluster::replication::{resync_from, Acks};
use crate::domain::ShowId;
use crate::wal::writer::read_log;
use crate::wal::{Change, WalError};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The largest node-to-node request (a batch of log entries with a catalog in it).
pub const MAX_INTERNAL_BODY: usize = 64 * 1024 * 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/internal")
            .app_data(web::PayloadConfig::new(MAX_INTERNAL_BODY))
            .route("/election", web::post().to(election))
            .route("/coordinator", web::post().to(coordinator))
            .route("/heartbeat", web::post().to(heartbeat))
            .route("/append", web::post().to(append))
            .route("/writes", web::post().to(forwarded_writes))
            .route("/log", web::post().to(log_page))
            .route("/status", web::post().to(status))
            .route("/admin/import", web::post().to(admin_import))
            .route("/admin/imports", web::post().to(admin_imports))
            .route("/admin/cancel", web::post().to(admin_cancel))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(WebError::NotFound("no such endpoint".into()))
            })),
    );
}

/// Checks the signature and parses the envelope; merges the sender's Lamport time.
async fn open<T: DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<Envelope<T>, HttpResponse> {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let refuse = |why: String| {
        log::warn!("refused {} from {}: {why}", req.path(), req.peer_addr().map(|a| a.to_string()).unwrap_or_default());
        HttpResponse::Unauthorized().json(serde_json::json!({"error": "node authentication failed"}))
    };
    let (Some(node), Some(time), Some(sig)) = (header(HEADER_NODE), header(HEADER_TIME), header(HEADER_SIGNATURE))
    else {
        return Err(refuse("no credentials".into()));
    };
    let (Ok(node), Ok(time)) = (node.parse::<u64>(), time.parse::<i64>()) else {
        return Err(refuse("malformed credentials".into()));
    };
    if let Err(e) =
        verify(&state.cluster.config.secret, node, time, chrono::Utc::now().timestamp(), req.path(), body, &sig)
    {
        return Err(refuse(e.to_string()));
    }
    let env: Envelope<T> = serde_json::from_slice(body).map_err(|e| {
        HttpResponse::BadRequest().json(serde_json::json!({"error": format!("malformed message: {e}")}))
    })?;
    if env.from != node {
        return Err(refuse(format!("signed by node {node} but claims to be {}", env.from)));
    }
    state.rpc.clock.do_send(Merge { remote: env.lamport });
    Ok(env)
}

async fn reply<T: Serialize>(state: &AppState, body: T) -> HttpResponse {
    let lamport = state.rpc.clock.send(crate::actors::lamport::Tick { events: 1 }).await.unwrap_or(0);
    HttpResponse::Ok().json(Envelope { from: state.cluster.node_id, epoch: state.cluster.epoch(), lamport, body })
}

fn stale(epoch: u64, master_id: Option<u64>) -> HttpResponse {
    HttpResponse::Conflict().json(StaleEpoch { stale: true, epoch, master_id })
}

async fn election(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let env: Envelope<Election> = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    match state.coordinator.send(OnElection { from: env.from, epoch: env.epoch }).await {
        Ok(Verdict::Accept(true)) => reply(&state, ElectionOk {}).await,
        Ok(Verdict::Accept(false)) => {
            HttpResponse::BadRequest().json(serde_json::json!({"error": "elections go to higher ids"}))
        }
        Ok(Verdict::Stale { epoch, master_id }) => stale(epoch, master_id),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn coordinator(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let env: Envelope<Coordinator> = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    match state.coordinator.send(OnCoordinator { from: env.from, epoch: env.epoch }).await {
        Ok(Verdict::Accept(r)) => reply(&state, r).await,
        Ok(Verdict::Stale { epoch, master_id }) => stale(epoch, master_id),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn heartbeat(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let env: Envelope<Heartbeat> = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    match state.coordinator.send(OnHeartbeat { from: env.from, epoch: env.epoch }).await {
        Ok(Verdict::Accept(())) => reply(&state, HeartbeatReply { position: state.writer.position() }).await,
        Ok(Verdict::Stale { epoch, master_id }) => stale(epoch, master_id),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn append(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let env: Envelope<Append> = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    match state.coordinator.send(OnHeartbeat { from: env.from, epoch: env.epoch }).await {
        Ok(Verdict::Accept(())) => {}
        Ok(Verdict::Stale { epoch, master_id }) => return stale(epoch, master_id),
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    }
    if state.resyncing.load(Ordering::SeqCst) {
        return reply(&state, AppendReply { outcome: AppendOutcome::Diverged, position: state.writer.position() })
            .await;
    }
    let a = env.body;
    let prev = crate::cluster::messages::LogPosition { last_lsn: a.prev_lsn, last_epoch: a.prev_epoch };
    let entries = a.entries.clone();
    let outcome = match state.writer.apply_replicated(env.epoch, prev, a.master_last_lsn, a.entries).await {
        Ok(pos) => {
            notify_actors(
                &state,
                entries.iter().filter(|e| e.lsn > prev.last_lsn && e.lsn <= pos.last_lsn).map(|e| &e.change),
            );
            AppendOutcome::Applied
        }
        Err(WalError::Gap) => AppendOutcome::Gap,
        Err(WalError::Diverged) => {
            start_resync(&state, env.from, env.epoch);
            AppendOutcome::Diverged
        }
        Err(WalError::StaleEpoch) => return stale(state.cluster.epoch(), state.cluster.master()),
        Err(e) => {
            log::error!("cannot apply replicated entries: {e}");
            return HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "cannot apply entries now"}));
        }
    };
    reply(&state, AppendReply { outcome, position: state.writer.position() }).await
}

/// The most writes one forwarded batch may carry.
pub const MAX_FORWARDED: usize = 1024;

/// Writes a follower passed on: each runs here as if a visitor had made it on this node
/// (concurrently, so they share group commits), and the answers go back in order.
async fn forwarded_writes(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let env: Envelope<WriteBatch> = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let (sender, sent_at, writes) = (env.from, env.lamport, env.body.writes);
    if writes.len() > MAX_FORWARDED {
        return HttpResponse::PayloadTooLarge()
            .json(serde_json::json!({"error": format!("at most {MAX_FORWARDED} writes to a batch")}));
    }
    let answers =
        futures::future::join_all(writes.into_iter().map(|w| super::writes::run_forwarded(&state, sender, sent_at, w)))
            .await;
    reply(&state, WriteAnswers { answers }).await
}

/// Brings loaded seat maps and show facts in line with replicated changes.
fn notify_actors<'a>(state: &AppState, changes: impl Iterator<Item = &'a Change>) {
    for change in changes {
        match change {
            Change::Catalog(c) => crate::catalog::notify_shows(&state.shows, c),
            other => {
                if let Some(addr) = other.show_id().and_then(|id| state.shows.loaded_one(ShowId(id))) {
                    addr.do_send(Replicated(other.clone()));
                }
            }
        }
    }
}

/// This node's log disagrees with the master's: rebuild it from the master's whole log.
fn start_resync(state: &AppState, master: u64, epoch: u64) {
    if state.resyncing.swap(true, Ordering::SeqCst) {
        return;
    }
    let Some(peer) = state.cluster.peer(master) else {
        state.resyncing.store(false, Ordering::SeqCst);
        return;
    };
    let (rpc, writer, shows, flag) =
        (state.rpc.clone(), state.writer.clone(), state.shows.clone(), state.resyncing.clone());
    actix_web::rt::spawn(async move {
        let client = Rpc::http_client(Duration::from_secs(30));
        match resync_from(&rpc, &client, &peer, &writer, epoch).await {
            Ok(_) => log::info!("rebuilt from node {}'s log; now at {}", peer.id, writer.position().last_lsn),
            Err(e) => log::error!("resync from node {} failed: {e}", peer.id),
        }
        shows.reset();
        flag.store(false, Ordering::SeqCst);
    });
}

async fn log_page(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let env: Envelope<LogRequest> = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    if env.epoch < state.cluster.epoch() {
        return stale(state.cluster.epoch(), state.cluster.master());
    }
    let (after, limit) = (env.body.after.max(0), env.body.limit.clamp(1, 5000));
    let position = state.writer.position();
    match state.db.run(move |c| read_log(c, after, limit)).await {
        Ok(entries) => reply(&state, LogPage { entries, position }).await,
        Err(e) => {
            log::error!("cannot read the log: {e}");
            HttpResponse::ServiceUnavailable().finish()
        }
    }
}

async fn status(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(r) = open::<serde_json::Value>(&state, &req, &body).await {
        return r;
    }
    match state.coordinator.send(Status).await {
        Ok(s) => reply(&state, s).await,
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

/// How many of the log's last entries the cluster view lists.
pub const RECENT_ENTRIES: i64 = 20;

/// Every node's status as this node sees it: its own, each peer's (asked now, briefly),
/// and, on the master, what each follower acknowledged and how far behind it is; and the
/// last entries of this node's log.
pub async fn cluster_view(state: &AppState) -> serde_json::Value {
    let me: NodeStatus = state.coordinator.send(Status).await.unwrap_or_else(|_| NodeStatus {
        node_id: state.cluster.node_id,
        role: "unknown".into(),
        epoch: state.cluster.epoch(),
        master_id: state.cluster.master(),
        lamport: 0,
        last_lsn: state.writer.position().last_lsn,
        last_epoch: state.writer.position().last_epoch,
        commit_lsn: 0,
        writable: false,
        last_heartbeat_ms: None,
    });
    let acks = state.streamer.send(Acks).await.unwrap_or_default();
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
    })];
    for (peer, answer) in peers.iter().zip(answers) {
        let (acked, ack_ms) = acks.get(&peer.id).cloned().unwrap_or((None, None));
        nodes.push(match answer {
            Some(s) => serde_json::json!({
                "id": s.node_id, "address": peer.address, "reachable": true, "role": s.role, "epoch": s.epoch,
                "lamport": s.lamport, "last_lsn": s.last_lsn, "lag": master_lsn - s.last_lsn,
                "last_heartbeat_ms": s.last_heartbeat_ms.or(ack_ms), "acked_lsn": acked,
            }),
            None => serde_json::json!({
                "id": peer.id, "address": peer.address, "reachable": false, "role": "unreachable",
                "acked_lsn": acked, "lag": acked.map(|a| master_lsn - a),
            }),
        });
    }
    serde_json::json!({
        "node_id": me.node_id, "role": me.role, "epoch": me.epoch, "master_id": me.master_id, "lamport": me.lamport,
        "last_lsn": me.last_lsn, "commit_lsn": me.commit_lsn, "writable": me.writable, "nodes": nodes, "log": entries,
    })
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
    if let Err(r) = open::<serde_json::Value>(&state, &req, &body).await {
        return r;
    }
    let res = match state.cluster.route() {
        crate::cluster::state::Route::Local => {
            relay(super::admin::start_import(&state, crate::actors::importer::Trigger::Admin).await)
        }
        _ => not_master(),
    };
    reply(&state, res).await
}

async fn admin_imports(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(r) = open::<serde_json::Value>(&state, &req, &body).await {
        return r;
    }
    let res = match state.cluster.route() {
        crate::cluster::state::Route::Local => relay(super::admin::import_overview(&state).await),
        _ => not_master(),
    };
    reply(&state, res).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    code: String,
}

async fn admin_cancel(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let env: Envelope<CancelRequest> = match open(&state, &req, &body).await {
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
    reply(&state, res).await
}
