//! The admin JSON API: import jobs, for the dashboard's live progress; auditorium layouts
//! (`super::layouts`).
use super::super::error::WebError;
use super::super::{csrf, AppState};
use super::{job_view, start_import, AdminSession};
use crate::actors::importer::Trigger;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::layouts::api(web::scope("/admin/api"))
            .route("/imports", web::get().to(list))
            .route("/imports", web::post().to(start))
            .route("/imports/current", web::get().to(current))
            .route("/imports/{id}", web::get().to(one))
            .default_service(web::to(|_: AdminSession| async {
                Err::<HttpResponse, _>(WebError::NotFound("no such admin API endpoint".into()))
            })),
    );
}

fn no_store(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body)
}

/// `{"job": ...}`: the running import, else the last one, else null.
async fn current(_: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let (job, _) = super::import_overview(&state).await?;
    Ok(no_store(json!({ "job": job.as_ref().map(job_view) })))
}

/// `{"jobs": [...]}`, newest first.
async fn list(_: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let (_, jobs) = super::import_overview(&state).await?;
    Ok(no_store(json!({ "jobs": jobs.iter().map(job_view).collect::<Vec<_>>() })))
}

async fn one(_: AdminSession, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, WebError> {
    let id: u64 = path.parse().map_err(|_| WebError::NotFound("no such import".into()))?;
    let (current, recent) = super::import_overview(&state).await?;
    let job = current.into_iter().chain(recent).find(|j| j.id == id);
    let job = job.ok_or_else(|| WebError::NotFound("no such import".into()))?;
    Ok(no_store(json!({ "job": job_view(&job) })))
}

/// Starts an import: 202 with the job, or 409 while one runs. The CSRF token comes in the
/// `X-CSRF-Token` header.
async fn start(_: AdminSession, state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    csrf::verify_header(&req)?;
    let job = start_import(&state, Trigger::Admin).await?;
    Ok(HttpResponse::Accepted().json(json!({ "job": job_view(&job) })))
}
