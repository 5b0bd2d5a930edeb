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
use crate::cluster::messages::{Envelope, NodeStatus, ProtocolMessage, Refusal, Relayed, WriteAnswers, WriteBatch};
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
            .route("/backup", web::post().to(backup))
            .route("/admin/import", web::post().to(admin_import))
            .route("/admin/imports", web::post().to(admin_imports))
            .route("/admin/cancel", web::post().to(admin_cancel))
            .route("/admin/checkin", web::post().to(admin_checkin))
            .route("/admin/write", web::post().to(admin_write))
            .route("/admin/layout", web::post().to(admin_layout))
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
fn relay<T>(r: Result<T, WebError>) -> Relayed<T> {
    r.map_err(Refusal::from)
}

fn not_master<T>() -> Relayed<T> {
    Err(Refusal::Unavailable { message: "this node is no longer the master; try again".into() })
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

/// An admin action on one booking that a follower passed on: carried out here while this
/// node is the master, with the origin of the follower it was made on; `bad` is the
/// refusal of a code that does not parse.
async fn on_booking<T, F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    body: &web::Bytes,
    bad: fn(String) -> Refusal,
    act: F,
) -> HttpResponse
where
    T: Serialize,
    F: FnOnce(crate::domain::BookingCode, crate::wal::Origin) -> Fut,
    Fut: std::future::Future<Output = Result<T, WebError>>,
{
    let (env, signed): (Envelope<CancelRequest>, _) = match open(state, req, body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let res = match (state.cluster.route(), crate::domain::BookingCode::parse(&env.body.code)) {
        (_, Err(e)) => Err(bad(e.to_string())),
        (crate::cluster::state::Route::Local, Ok(code)) => {
            relay(act(code, crate::wal::Origin::Forwarded { node: env.from, lamport: env.lamport }).await)
        }
        _ => not_master(),
    };
    signed.reply(res).await
}

async fn admin_cancel(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let bad = |message| Refusal::NotFound { message };
    on_booking(&state, &req, &body, bad, |code, origin| super::admin::cancel_booking(&state, code, origin)).await
}

/// A check-in a follower passed on (its ticket verified there): admitted here, once.
async fn admin_checkin(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let bad = |message| Refusal::BadRequest { message };
    on_booking(&state, &req, &body, bad, |code, origin| super::admin::checkin::admit(&state, code, origin)).await
}

/// Whether an admin change passed on by a follower is well formed.
fn valid_admin_change(change: &crate::wal::change::AdminChange) -> Result<(), String> {
    use super::admin::auth::is_session_id;
    use crate::wal::change::AdminChange;
    match change {
        AdminChange::SessionOpened { session, client_addr, .. } => {
            if !is_session_id(session) {
                return Err("a session id is 64 hex characters".into());
            }
            if client_addr.as_deref().is_some_and(|a| a.parse::<std::net::IpAddr>().is_err()) {
                return Err("the client address is not an address".into());
            }
            Ok(())
        }
        AdminChange::SessionEnded { session } if !is_session_id(session) => {
            Err("a session id is 64 hex characters".into())
        }
        AdminChange::PasswordChanged { password_hash } => crate::domain::AdminPassword::from_phc(password_hash)
            .map(|_| ())
            .map_err(|e| format!("not a password hash: {e}")),
        _ => Ok(()),
    }
}

/// An admin session or password change a follower passed on to the master.
async fn admin_write(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (env, signed): (Envelope<crate::wal::change::AdminChange>, _) = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let res = match (state.cluster.route(), valid_admin_change(&env.body)) {
        (_, Err(why)) => Err(Refusal::BadRequest { message: why }),
        (crate::cluster::state::Route::Local, Ok(())) => relay(super::admin::write_admin(&state, env.body).await),
        _ => not_master(),
    };
    signed.reply(res).await
}

/// A layout change a follower passed on to the master (its text parsed again here).
async fn admin_layout(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (env, signed): (Envelope<super::admin::layouts::LayoutRequest>, _) = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let res = match state.cluster.route() {
        crate::cluster::state::Route::Local => relay(super::admin::layouts::change_layout(&state, env.body).await),
        _ => not_master(),
    };
    signed.reply(res).await
}

/// A backup (`marquee backup`): the master streams a consistent snapshot of its replicated
/// tables (see [`crate::backup`]); the stream's last line is signed over the request's
/// nonce instead of a header. A follower answers 421 naming its master, whom the client
/// asks instead; with no master now, 503.
async fn backup(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (env, signed): (Envelope<serde_json::Value>, _) = match open(&state, &req, &body).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    // A member installing the snapshot may be what the master needs for a majority: it is
    // served by the master as soon as it is one, writable or not.
    let install = env.body.get("install").and_then(|v| v.as_bool()).unwrap_or(false);
    let master_now = state.cluster.role() == crate::cluster::core::Role::Master;
    let served = if install && master_now {
        Ok(())
    } else {
        crate::backup::format::who_serves(&state.cluster.route(), state.cluster.node_id)
    };
    if let Err(no) = served {
        log::info!("backup asked by node {}: refused ({})", env.from, no.error);
        let status = StatusCode::from_u16(no.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let body = crate::cluster::messages::BackupRefused { error: no.error, master: no.master };
        return signed.answer(status, &body);
    }
    let request = crate::backup::serve::Request {
        master: state.cluster.node_id,
        node: env.from,
        configured: {
            let m = state.cluster.membership();
            crate::backup::format::Membership {
                voters: m.voters.into_iter().collect(),
                learners: m.learners.into_iter().collect(),
            }
        },
        secret: state.cluster.config.secret.clone(),
        nonce: signed.nonce.clone(),
        commit_wait: state.cluster.config.replication_timeout * 3,
        install,
    };
    let stream = crate::backup::serve::stream(state.db.clone(), state.writer.tracker().clone(), request);
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("Cache-Control", "no-store"))
        .streaming(stream)
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
                Err(e) => Err(Refusal::Unavailable { message: format!("the master did not answer: {e}") }),
            }
        }
        _ => not_master(),
    };
    log::info!("operator removal of node {id}: {res:?}");
    signed.reply(res).await
}

/// What the node-to-node endpoints deserialize, fed anything: bytes, JSON of any shape,
/// real messages with fields dropped or changed, cut short. Each is the message or a
/// serde error (answered 400 by `open`), never a panic; a forwarded write is taken only
/// from the node it was made on, before the batch. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::cluster::core::types::{Message, Position};
    use crate::cluster::messages::{ForwardedWrite, WriteOp};
    use crate::testing::{broken_json, bytes, json_with_keys, mutations_of};
    use crate::wal::change::{Change, HoldPlaced, LogRecord, MembershipRecord};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    pub const CASES: u32 = 300;

    const KEYS: &[&str] = &[
        "from", "to", "epoch", "lamport", "body", "message", "type", "last", "lsn", "pre", "granted", "prev",
        "entries", "commit", "sent_at", "writes", "origin", "write", "op", "show_id", "seats", "hold_id", "code", "id",
    ];

    /// Deserializes `body` as every endpoint does; only whether it panics matters here.
    fn read_all(body: &[u8]) {
        let _ = serde_json::from_slice::<Envelope<ProtocolMessage>>(body);
        let _ = serde_json::from_slice::<Envelope<WriteBatch>>(body);
        let _ = serde_json::from_slice::<Envelope<serde_json::Value>>(body);
        let _ = serde_json::from_slice::<Envelope<CancelRequest>>(body);
        let _ = serde_json::from_slice::<Envelope<RemoveRequest>>(body);
        let _ = serde_json::from_slice::<Envelope<super::super::admin::layouts::LayoutRequest>>(body);
    }

    fn at(secs: i64) -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(secs, 0).unwrap().naive_utc()
    }

    /// A real `/internal/message` body: an append of two entries.
    fn append() -> Value {
        let entry = |lsn, change| LogRecord {
            lsn,
            epoch: 3,
            lamport: 40 + lsn,
            origin: 2,
            created_at: at(1_800_000_000),
            change,
        };
        let hold = Change::HoldPlaced(HoldPlaced {
            hold_id: "4-ABCDEFGHJKMNPQRSTWXY".into(),
            show_id: 4,
            seats: vec!["C7".into(), "C8".into()],
            expires_at: at(1_800_000_480),
            idempotency_key: Some("k-1".into()),
            created_at: at(1_800_000_000),
            client: crate::domain::Client::new(Some([10, 0, 0, 1].into()), Some("session")),
        });
        let members = Change::Membership(MembershipRecord { voters: vec![1, 2, 3], learners: vec![4] });
        let message: ProtocolMessage = crate::cluster::core::Envelope {
            from: 3,
            to: 1,
            epoch: 3,
            message: Message::Append {
                prev: Position { epoch: 3, lsn: 11 },
                entries: vec![entry(12, hold), entry(13, members)],
                commit: 11,
                sent_at: 99_000,
            },
        };
        json!(Envelope { from: 3, epoch: 3, lamport: 57, body: message })
    }

    /// A real `/internal/writes` body: one write of each kind.
    fn batch() -> Value {
        let w = |lamport, write| ForwardedWrite { origin: 2, lamport, write };
        let writes = vec![
            w(
                5,
                WriteOp::Hold {
                    show_id: 4,
                    seats: vec!["C7".into()],
                    idempotency_key: Some("k".into()),
                    client: crate::domain::Client::new(Some([10, 0, 0, 1].into()), Some("session")),
                    best: None,
                    wheelchair: false,
                },
            ),
            w(
                6,
                WriteOp::Confirm {
                    hold_id: "4-ABCDEFGHJKMNPQRSTWXY".into(),
                    name: "Ann".into(),
                    email: "a@x.org".into(),
                },
            ),
            w(7, WriteOp::Release { hold_id: "4-ABCDEFGHJKMNPQRSTWXY".into() }),
            w(8, WriteOp::Cancel { code: "ABCDEFGH".into(), email: "a@x.org".into() }),
        ];
        json!(Envelope { from: 2, epoch: 3, lamport: 9, body: WriteBatch { writes } })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_bytes_or_json_are_a_message_or_a_serde_error(
            body in prop_oneof![bytes(), json_with_keys(KEYS).prop_map(|v| v.to_string().into_bytes())]
        ) {
            read_all(&body);
        }

        #[test]
        fn a_real_message_changed_anywhere_is_a_message_or_a_serde_error(
            v in prop_oneof![mutations_of(append()), mutations_of(batch())]
        ) {
            read_all(v.to_string().as_bytes());
        }

        #[test]
        fn a_real_message_cut_short_is_a_message_or_a_serde_error(
            body in prop_oneof![broken_json(Just(append())), broken_json(Just(batch()))]
        ) {
            read_all(&body);
        }

        #[test]
        fn a_forwarded_write_is_taken_only_from_its_node_before_its_batch(
            v in mutations_of(batch()),
            sender in prop_oneof![Just(2u64), any::<u64>()],
            sent_at in prop_oneof![Just(9u64), Just(0), Just(u64::MAX), any::<u64>()],
        ) {
            let Ok(env) = serde_json::from_value::<Envelope<WriteBatch>>(v) else { return Ok(()) };
            for w in &env.body.writes {
                match crate::web::writes::forwarded_origin(sender, sent_at, w) {
                    Ok(origin) => {
                        prop_assert_eq!(w.origin, sender);
                        prop_assert!(0 < w.lamport && w.lamport < sent_at);
                        prop_assert_eq!(origin, crate::wal::Origin::Forwarded { node: sender, lamport: w.lamport });
                    }
                    Err(e) => prop_assert_eq!(actix_web::ResponseError::status_code(&e).as_u16(), 400),
                }
            }
        }
    }

    #[test]
    fn the_unchanged_messages_parse() {
        let env: Envelope<ProtocolMessage> = serde_json::from_value(append()).unwrap();
        assert!(matches!(env.body.message, Message::Append { ref entries, .. } if entries.len() == 2));
        let env: Envelope<WriteBatch> = serde_json::from_value(batch()).unwrap();
        assert_eq!(env.body.writes.len(), 4);
    }

    #[test]
    fn deep_nesting_is_a_serde_error_not_a_stack_overflow() {
        let body =
            format!(r#"{{"from":1,"epoch":1,"lamport":1,"body":{}1{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(serde_json::from_slice::<Envelope<serde_json::Value>>(body.as_bytes()).is_err());
        assert!(serde_json::from_slice::<Envelope<ProtocolMessage>>(body.as_bytes()).is_err());
    }
}
