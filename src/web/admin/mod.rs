//! The admin area (`/admin`): imports and bookings, behind the admin password.
//! Every page and API here takes an [`AdminSession`]; every form carries the CSRF token.
pub mod api;
pub mod auth;
pub mod checkin;
pub mod layouts;
pub mod pages;

use super::error::WebError;
use super::AppState;
use crate::actors::importer::{ImportJob, Phase, StartImport, Trigger};
use crate::actors::show::{AdminCancelBooking, BookingReceipt};
use crate::db::orders::find_booking;
use crate::domain::{AdminPassword, BookingCode, ShowId};
use crate::wal::change::{AdminChange, Change};
use crate::wal::Origin;
use actix_web::web;
pub use auth::{AdminGate, AdminSession};
use serde_json::{json, Value};

pub const CLOSED_MESSAGE: &str =
    "the admin area is closed: start the node with ADMIN_PASSWORD set (at least 8 characters) to open it";

pub fn config(cfg: &mut web::ServiceConfig) {
    pages::config(cfg);
    layouts::config(cfg);
    checkin::config(cfg);
    api::config(cfg);
}

/// Starts an import. Every start from the web goes through here: an import is a write,
/// so in a cluster this is the one place that must hand it to the master.
pub async fn start_import(state: &AppState, trigger: Trigger) -> Result<ImportJob, WebError> {
    if let Some(master) = master_elsewhere(state)? {
        // Imports are writes: they run on the master.
        return ask_master(state, &master, "/internal/admin/import", serde_json::json!({})).await;
    }
    match state.importer.send(StartImport { trigger }).await {
        Ok(Ok(job)) => Ok(job),
        Ok(Err(busy)) => Err(WebError::Conflict { message: busy.to_string(), taken: vec![] }),
        Err(e) => Err(WebError::Unavailable(format!("the importer is not answering ({e})"))),
    }
}

/// The running (or last) import and the recent ones, from the node that runs imports: this
/// one when it is the master, else the master.
pub async fn import_overview(state: &AppState) -> Result<(Option<ImportJob>, Vec<ImportJob>), WebError> {
    use crate::actors::importer::{CurrentImport, RecentImports};
    if let Some(master) = master_elsewhere(state)? {
        return ask_master(state, &master, "/internal/admin/imports", serde_json::json!({})).await;
    }
    let unavailable = |e| WebError::Unavailable(format!("the importer is not answering ({e})"));
    let current = state.importer.send(CurrentImport).await.map_err(unavailable)?;
    let recent = state.importer.send(RecentImports).await.map_err(unavailable)?;
    Ok((current, recent))
}

/// The master, when it is another node; an error when there is none.
fn master_elsewhere(state: &AppState) -> Result<Option<crate::cluster::Peer>, WebError> {
    use crate::cluster::state::Route;
    match state.cluster.route() {
        Route::Local => Ok(None),
        Route::Forward(peer) => Ok(Some(peer)),
        Route::NoMaster => {
            Err(WebError::Unavailable("no master is available right now; try again in a few seconds".into()))
        }
    }
}

/// A signed call to the master's internal admin endpoints; its errors come back as ours.
async fn ask_master<T: serde::de::DeserializeOwned>(
    state: &AppState,
    master: &crate::cluster::Peer,
    path: &str,
    body: Value,
) -> Result<T, WebError> {
    use crate::cluster::client::{Rpc, RpcError};
    let client = Rpc::http_client(std::time::Duration::from_secs(30));
    match state.rpc.call::<_, crate::cluster::messages::Relayed<T>>(&client, master, path, body).await {
        Ok(env) => env.body.map_err(WebError::from),
        Err(RpcError::StaleEpoch { .. }) => {
            Err(WebError::Unavailable("the cluster is changing masters; try again".into()))
        }
        Err(e) => Err(WebError::Unavailable(format!("the master did not answer: {e}"))),
    }
}

/// Writes an admin session or password change into the log (through the master) and
/// returns once it is committed: then every node has it, or gets it next.
pub async fn write_admin(state: &AppState, change: AdminChange) -> Result<(), WebError> {
    if let Some(master) = master_elsewhere(state)? {
        return ask_master(state, &master, "/internal/admin/write", serde_json::to_value(&change).unwrap_or_default())
            .await;
    }
    state.writer.append(Change::Admin(change)).await.map(|_| ()).map_err(|e| {
        WebError::Unavailable(format!("the cluster could not record this now ({e}); try again in a few seconds"))
    })
}

/// The admin password an operator set (from the log), if any; else ADMIN_PASSWORD holds.
pub async fn current_password(state: &AppState) -> Result<Option<AdminPassword>, WebError> {
    let stored = state.db.run(crate::db::admin::stored_password).await?;
    Ok(stored.and_then(|phc| {
        AdminPassword::from_phc(&phc).map_err(|e| log::error!("the stored admin password is unreadable: {e}")).ok()
    }))
}

/// An operator takes a node out of the cluster (a dead one that cannot leave by itself):
/// the master writes the removal into the log, like `marquee cluster remove`. This node
/// must count it as a member; the master decides the rest.
pub async fn remove_node(state: &AppState, id: u64) -> Result<(), WebError> {
    if !state.cluster.membership().contains(id) {
        return Err(WebError::NotFound(format!("node {id} is not in the cluster")));
    }
    if let Some(master) = master_elsewhere(state)? {
        return ask_master(state, &master, "/internal/admin/remove", json!({ "id": id })).await;
    }
    match state.coordinator.send(crate::cluster::election::RemoveNode(id)).await {
        Ok(true) => Ok(()),
        _ => Err(WebError::Unavailable("this node is no longer the master; try again".into())),
    }
}

/// An operator's cancel: through the show's actor, like a customer's, but without the
/// email check or the cut-off. Returns the show and the cancelled booking. `origin` is
/// where the operator clicked: this node, or the follower that passed it on.
pub async fn cancel_booking(state: &AppState, code: BookingCode, origin: Origin) -> Result<BookingReceipt, WebError> {
    if let Some(master) = master_elsewhere(state)? {
        return ask_master(state, &master, "/internal/admin/cancel", serde_json::json!({ "code": code.as_str() }))
            .await;
    }
    let c = code.to_string();
    let booking = state.db.run(move |conn| find_booking(conn, &c)).await?;
    let Some(b) = booking else {
        return Err(WebError::NotFound("no booking with this code".into()));
    };
    Ok(state.shows.get(ShowId(b.show_id)).send(AdminCancelBooking { code, origin }).await??)
}

fn phase_label(p: Phase) -> &'static str {
    match p {
        Phase::Waiting => "Waiting to start",
        Phase::FetchingList => "Fetching the theater list",
        Phase::FetchingTheaters => "Fetching showtimes",
        Phase::Writing => "Writing the catalog",
        Phase::Finished => "Finished",
    }
}

/// A job as the page and its script show it: the job plus labels and a percentage.
pub fn job_view(job: &ImportJob) -> Value {
    let mut v = serde_json::to_value(job).unwrap_or(Value::Null);
    let percent = match (job.theaters_total, job.phase) {
        (_, Phase::Finished) if job.error.is_none() => 100,
        (Some(total), _) if total > 0 => job.theaters_done * 100 / total,
        _ => 0,
    };
    v["percent"] = json!(percent);
    v["phase_label"] = json!(phase_label(job.phase));
    v["active"] = json!(job.state.is_active());
    v["duration_ms"] = json!(job.duration_ms());
    v["duration_label"] = json!(job.duration_ms().map(|ms| format!("{:.1} s", ms as f64 / 1000.0)).unwrap_or_default());
    v["queued_label"] = json!(job.queued_at.format("%Y-%m-%d %H:%M:%S UTC").to_string());
    v
}
