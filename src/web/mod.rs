//! The HTTP edge: pages, the JSON API, the admin area, health. Input is parsed into
//! domain types here.
pub mod admin;
pub mod api;
pub mod client;
pub mod csrf;
pub mod error;
pub mod form;
pub mod forwarder;
pub mod headers;
pub mod internal;
pub mod live;
pub mod metrics;
pub mod page_cache;
pub mod pages;
pub mod throttle;
pub mod writes;

use crate::actors::{ApiImporter, ShowDirectory};
use crate::cluster::client::Rpc;
use crate::cluster::election::ElectionCoordinator;
use crate::cluster::replication::ReplicationStreamer;
use crate::cluster::ClusterState;
use crate::config::Settings;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::wal::LogWriter;
use actix::Addr;
use actix_web::{web, HttpResponse};
use std::sync::Arc;

pub use error::WebError;

/// Everything a handler may use; cloned into every worker.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub tera: Arc<tera::Tera>,
    pub shows: Arc<ShowDirectory>,
    pub writer: LogWriter,
    pub settings: Arc<Settings>,
    pub cluster: Arc<ClusterState>,
    pub coordinator: Addr<ElectionCoordinator>,
    pub streamer: Addr<ReplicationStreamer>,
    /// Passes writes on to the master, in batches, while this node is a follower.
    pub forwarder: Addr<forwarder::WriteForwarder>,
    /// For calls to other nodes (with this node's Lamport clock).
    pub rpc: Rpc,
    /// The nonces of signed node-to-node requests seen within their window.
    pub replays: Arc<std::sync::Mutex<crate::cluster::auth::ReplayGuard>>,
    /// This node is rebuilding itself from the master's log.
    /// Runs catalog imports (one at a time); start them with `admin::start_import`.
    pub importer: Addr<ApiImporter>,
    /// The admin password, session key and login throttle.
    pub admin: Arc<admin::AdminGate>,
    /// One check-in at a time on the master (see `admin::checkin`).
    pub checkins: Arc<tokio::sync::Mutex<()>>,
    /// Signs and checks e-tickets (TICKET_KEY).
    pub tickets: Arc<crate::domain::TicketKey>,
    /// Slows down look-ups (and cancels) of bookings by code and email that find nothing.
    pub lookups: Arc<throttle::Guard>,
    /// This node's figures (`GET /metrics`).
    pub metrics: Metrics,
    /// Imports and layout changes plan and write one at a time (see `admin::layouts`).
    pub catalog_lock: crate::catalog::CatalogLock,
    /// The listing and show pages, rendered once per catalog version and seat-map snapshot.
    pub pages: Arc<page_cache::PageCaches>,
}

impl AppState {
    /// Runs a guess at a booking (its code and email) under the look-up throttle of this
    /// client's address: waits its turn first; "not found" counts as a strike.
    pub async fn guarded_lookup<T>(
        &self,
        req: &actix_web::HttpRequest,
        guess: impl std::future::Future<Output = Result<T, WebError>>,
    ) -> Result<T, WebError> {
        let who = client::client_ip(self, req);
        if let Err(wait) = self.lookups.wait_turn(who).await {
            log::warn!("booking look-ups from {who:?} throttled");
            return Err(WebError::TooManyRequests {
                message: format!(
                    "too many look-ups that found nothing from your address; try again in {} s",
                    wait.as_secs().max(1)
                ),
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        let result = guess.await;
        match &result {
            Ok(_) => self.lookups.record(who, true),
            Err(WebError::NotFound(_)) => self.lookups.record(who, false),
            Err(_) => {}
        }
        result
    }

    /// Renders a page, or the error page if the template fails.
    pub fn render(&self, template: &str, ctx: &tera::Context) -> Result<String, WebError> {
        Ok(self.tera.render(template, ctx)?)
    }

    /// The error page for `err`, with its status.
    pub fn error_page(&self, err: &WebError) -> HttpResponse {
        use actix_web::ResponseError;
        if let WebError::Internal(cause) = err {
            log::error!("internal error: {cause}");
        }
        let mut ctx = tera::Context::new();
        ctx.insert("status", &err.status_code().as_u16());
        ctx.insert("title", err.title());
        ctx.insert("message", &err.to_string());
        let body = self
            .tera
            .render("error.html", &ctx)
            .unwrap_or_else(|_| format!("<!doctype html><title>{0}</title><h1>{0}</h1>", err.title()));
        let mut res = HttpResponse::build(err.status_code());
        if let Some(secs) = err.retry_after() {
            res.insert_header(("Retry-After", secs.to_string()));
        }
        res.content_type("text/html; charset=utf-8").body(body)
    }
}

/// The public listener's routes; the node-to-node ones and `/metrics` too unless they have
/// a listener of their own (INTERNAL_BIND), see [`internal_config`].
pub fn config(cfg: &mut web::ServiceConfig, with_internal: bool) {
    cfg.route("/healthz", web::get().to(healthz));
    api::config(cfg);
    if with_internal {
        internal::config(cfg);
        metrics::config(cfg);
    }
    admin::config(cfg);
    live::config(cfg);
    pages::config(cfg);
}

/// The internal listener's routes (INTERNAL_BIND): the node-to-node endpoints, health and
/// metrics.
pub fn internal_config(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz));
    metrics::config(cfg);
    internal::config(cfg);
}

/// The live listener's routes (LIVE_BIND): the live seat maps' websockets and health.
pub fn live_config(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz));
    live::config(cfg);
}

/// 200 while this node can serve; 503 while its storage is gone (nginx then sends its
/// pages to another node).
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    if state.cluster.storage_ok() {
        HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
    } else {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "storage unavailable" }))
    }
}
