//! `GET /metrics`: this node's figures in Prometheus's text format. On the internal
//! listener when there is one (INTERNAL_BIND), else on the public one (see README's
//! configuration and docs/operations.md).
use super::AppState;
use crate::cluster::election::{figures_of, Figures};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use std::time::{Duration, Instant};

/// How long a scrape waits for the coordinator before it reports the last published view.
const ASK_COORDINATOR: Duration = Duration::from_secs(2);

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let figures = match state.coordinator.send(Figures).timeout(ASK_COORDINATOR).await {
        Ok(f) => f,
        // The coordinator is busy or gone: what it last published, without the lag.
        Err(_) => figures_of(&state.cluster.view(), Vec::new()),
    };
    state.metrics.set_cluster(&figures);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(state.metrics.render())
}

/// Middleware: counts every answered request by its route's pattern (`/shows/{id}`, not the
/// path: bounded labels; `unmatched` for what no route took), method and status, and times
/// it. Only a counter and a histogram observation per request.
pub async fn count_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    let method = req.method().clone();
    let res = next.call(req).await;
    if let Some(m) = metrics {
        let (route, status) = match &res {
            Ok(r) => (r.request().match_pattern(), r.status()),
            Err(e) => (None, e.as_response_error().status_code()),
        };
        let route = route.unwrap_or_else(|| "unmatched".into());
        m.request(&route, method.as_str(), status.as_u16(), started.elapsed());
    }
    res
}
