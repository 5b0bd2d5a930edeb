//! The admin pages: login, the dashboard (imports), and bookings per show.
use super::super::error::WebError;
use super::super::form::FormData;
use super::super::{csrf, AppState};
use super::auth::{logged_in, AdminGate, LoginError};
use super::{cancel_booking, job_view, start_import, AdminSession, CLOSED_MESSAGE};
use crate::actors::importer::Trigger;
use crate::actors::show::GetSeatMap;
use crate::db::catalog::show_details;
use crate::db::models::{booking_state, split_seats};
use crate::db::orders::bookings_of_show;
use crate::db::sales::{show_sales, SalesFilter};
use crate::domain::{BookingCode, ShowId};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tera::Context;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard))
        .route("/admin/login", web::get().to(login_form))
        .route("/admin/login", web::post().to(login))
        .route("/admin/logout", web::post().to(logout))
        .route("/admin/imports", web::post().to(start))
        .route("/admin/shows", web::get().to(shows))
        .route("/admin/shows/{id}", web::get().to(show))
        .route("/admin/bookings/{code}/cancel", web::post().to(cancel))
        .route("/admin/cluster/nodes/{id}/remove", web::post().to(remove_node));
}

/// Renders an admin page with the CSRF token (and its cookie when the browser has none).
fn render(state: &AppState, req: &HttpRequest, template: &str, ctx: Context, status: StatusCode) -> HttpResponse {
    crate::web::pages::respond(state, crate::web::pages::page(state, req, template, ctx, status))
}

fn respond(state: &AppState, page: Result<HttpResponse, WebError>) -> HttpResponse {
    page.unwrap_or_else(|e| state.error_page(&e))
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", to.to_string())).finish()
}

fn money(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

/// Where to go after logging in: only a path inside the admin area.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == "/admin" || n.starts_with("/admin/"))
                && !n.contains("//")
                && !n.contains('\\')
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/admin",
    }
}

/// The page for everyone while ADMIN_PASSWORD is not set.
pub fn closed_page(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("message", CLOSED_MESSAGE);
    render(state, req, "admin/closed.html", ctx, StatusCode::FORBIDDEN)
}

/// The login form; `next` is the page asked for.
pub fn login_page(state: &AppState, req: &HttpRequest, error: Option<&str>, status: StatusCode) -> HttpResponse {
    let next = match req.path() {
        "/admin/login" | "/admin/logout" => None,
        p if req.method() == actix_web::http::Method::GET => Some(match req.query_string() {
            "" => p.to_string(),
            q => format!("{p}?{q}"),
        }),
        _ => None,
    };
    let mut ctx = Context::new();
    ctx.insert("error", &error);
    ctx.insert("next", safe_next(next.as_deref()));
    render(state, req, "admin/login.html", ctx, status)
}

async fn login_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if !state.admin.is_open() {
        return closed_page(&state, &req);
    }
    if state.admin.has_session(&req, Utc::now()) {
        return see_other("/admin");
    }
    login_page(&state, &req, None, StatusCode::OK)
}

async fn login(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if !state.admin.is_open() {
        return closed_page(&state, &req);
    }
    let form = match FormData::parse(&body) {
        Ok(form) => form,
        Err(e) => return state.error_page(&e),
    };
    if let Err(e) = csrf::verify(&req, form.get(csrf::FIELD)) {
        return state.error_page(&e);
    }
    let attempt = form.get("password").unwrap_or("").chars().take(1024).collect::<String>();
    let who = req.peer_addr().map(|a| a.ip());
    let gate: &AdminGate = &state.admin;
    match gate.login(who, attempt).await {
        Ok(()) => {
            log::info!("admin login from {who:?}");
            logged_in(gate, &req, safe_next(form.get("next")))
        }
        Err(e) => {
            log::warn!("admin login refused from {who:?}: {e}");
            let (message, status) = match e {
                LoginError::WrongPassword => ("Wrong password.".to_string(), StatusCode::UNAUTHORIZED),
                LoginError::TooMany(_) => (format!("{}.", capitalized(&e.to_string())), StatusCode::TOO_MANY_REQUESTS),
                LoginError::Closed => return closed_page(&state, &req),
            };
            login_page(&state, &req, Some(&message), status)
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

async fn logout(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = match FormData::parse(&body) {
        Ok(form) => form,
        Err(e) => return state.error_page(&e),
    };
    if let Err(e) = csrf::verify(&req, form.get(csrf::FIELD)) {
        return state.error_page(&e);
    }
    HttpResponse::SeeOther().cookie(AdminGate::logout_cookie()).insert_header(("Location", "/admin/login")).finish()
}

async fn dashboard(_: AdminSession, state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    respond(&state, dashboard_page(&state, &req, None).await)
}

async fn dashboard_page(
    state: &AppState,
    req: &HttpRequest,
    error: Option<WebError>,
) -> Result<HttpResponse, WebError> {
    use actix_web::ResponseError;
    let (current, recent) = super::import_overview(state).await?;
    let cluster = crate::web::internal::cluster_view(state).await;
    let f = &state.settings.flixster;
    let mut ctx = Context::new();
    ctx.insert("cluster", &cluster);
    ctx.insert("job", &current.as_ref().map(job_view));
    ctx.insert("jobs", &recent.iter().map(job_view).collect::<Vec<_>>());
    ctx.insert(
        "source",
        &json!({
            "base_url": f.base_url, "zip": f.zip, "radius_miles": f.radius_miles,
            "interval_minutes": state.settings.import_interval.map(|d| d.as_secs() / 60),
        }),
    );
    let status = error.as_ref().map(|e| e.status_code()).unwrap_or(StatusCode::OK);
    ctx.insert("error", &error.map(|e| e.to_string()));
    let removed = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("removed").and_then(|id| id.parse::<u64>().ok()));
    ctx.insert("removed", &removed);
    Ok(render(state, req, "admin/dashboard.html", ctx, status))
}

async fn start(_: AdminSession, state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let form = match FormData::parse(&body) {
        Ok(form) => form,
        Err(e) => return state.error_page(&e),
    };
    if let Err(e) = csrf::verify(&req, form.get(csrf::FIELD)) {
        return state.error_page(&e);
    }
    match start_import(&state, Trigger::Admin).await {
        Ok(_) => see_other("/admin"),
        Err(e @ WebError::Conflict { .. }) => respond(&state, dashboard_page(&state, &req, Some(e)).await),
        Err(e) => state.error_page(&e),
    }
}

#[derive(Deserialize)]
struct ShowsQuery {
    q: Option<String>,
    all: Option<String>,
    page: Option<String>,
}

async fn shows(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ShowsQuery>,
) -> HttpResponse {
    let q = query.q.as_deref().unwrap_or("").trim().chars().take(100).collect::<String>();
    let all = query.all.as_deref().is_some_and(|a| !a.is_empty() && a != "0");
    let page = query.page.as_deref().and_then(|p| p.parse::<i64>().ok()).unwrap_or(1).clamp(1, 10_000);
    let filter = SalesFilter { all, search: (!q.is_empty()).then(|| q.clone()), page: page - 1 };
    let result = state.db.run(move |c| show_sales(c, &filter, Utc::now().naive_utc())).await;
    let (rows, more) = match result {
        Ok(r) => r,
        Err(e) => return state.error_page(&e.into()),
    };
    let rows: Vec<_> = rows
        .iter()
        .map(|s| {
            json!({
                "id": s.show_id, "title": s.title, "theater": s.theater_name, "in_feed": s.in_feed,
                "when": s.starts_at_local.format("%a %-d %b %H:%M").to_string(),
                "capacity": s.capacity, "sold": s.sold, "held": s.held, "free": s.free(),
                "bookings": s.bookings, "revenue": money(s.revenue_cents),
            })
        })
        .collect();
    let link = |p: i64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            s.append_pair("q", &q);
        }
        if all {
            s.append_pair("all", "1");
        }
        s.append_pair("page", &p.to_string());
        format!("/admin/shows?{}", s.finish())
    };
    let mut ctx = Context::new();
    ctx.insert("shows", &rows);
    ctx.insert("q", &q);
    ctx.insert("all", &all);
    ctx.insert("page", &page);
    ctx.insert("prev", &(page > 1).then(|| link(page - 1)));
    ctx.insert("next", &more.then(|| link(page + 1)));
    render(&state, &req, "admin/shows.html", ctx, StatusCode::OK)
}

#[derive(Deserialize)]
struct ShowQuery {
    cancelled: Option<String>,
}

async fn show(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> HttpResponse {
    let page = async {
        let id: i64 = path.parse().map_err(|_| WebError::NotFound("no such show".into()))?;
        let (details, bookings) = state.db.run(move |c| Ok((show_details(c, id)?, bookings_of_show(c, id)?))).await?;
        let (show, movie, theater) = details.ok_or_else(|| WebError::NotFound("no such show".into()))?;
        let map = state.shows.get(ShowId(id)).send(GetSeatMap).await??;
        let count = |name: &str| map.rows.iter().flat_map(|r| &r.seats).filter(|s| s.state == name).count();
        let revenue: i64 =
            bookings.iter().filter(|b| b.state == booking_state::CONFIRMED).map(|b| i64::from(b.total_cents)).sum();
        let mut ctx = Context::new();
        ctx.insert(
            "show",
            &json!({
                "id": show.id, "title": movie.title, "theater": theater.name, "in_feed": show.in_feed,
                "when": show.starts_at_local.format("%a %-d %b %Y %H:%M").to_string(),
                "sold": count("booked"), "held": count("held"), "free": count("free"), "revenue": money(revenue),
            }),
        );
        ctx.insert(
            "bookings",
            &bookings
                .iter()
                .map(|b| {
                    json!({
                        "code": b.code, "name": b.name, "email": b.email, "seats": split_seats(&b.seats).join(", "),
                        "total": money(i64::from(b.total_cents)), "state": b.state,
                        "created": b.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                        "cancellable": b.state == booking_state::CONFIRMED,
                    })
                })
                .collect::<Vec<_>>(),
        );
        let cancelled = query.cancelled.as_deref().and_then(|c| BookingCode::parse(c).ok()).map(|c| c.to_string());
        ctx.insert("cancelled", &cancelled);
        Ok(render(&state, &req, "admin/show.html", ctx, StatusCode::OK))
    };
    respond(&state, page.await)
}

async fn cancel(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let result = async {
        let form = FormData::parse(&body)?;
        csrf::verify(&req, form.get(csrf::FIELD))?;
        let code = BookingCode::parse(&path)?;
        let receipt = cancel_booking(&state, code, crate::wal::Origin::Here).await?;
        log::info!("admin cancelled booking {} of show {}", receipt.code, receipt.show_id);
        Ok::<_, WebError>(see_other(&format!("/admin/shows/{}?cancelled={}", receipt.show_id, receipt.code)))
    };
    respond(&state, result.await)
}

/// The remove button of a node on the cluster card.
async fn remove_node(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let result = async {
        let form = FormData::parse(&body)?;
        csrf::verify(&req, form.get(csrf::FIELD))?;
        let id: u64 = path
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| WebError::BadRequest(format!("'{}' is not a node id", path.as_str())))?;
        if id == state.cluster.node_id {
            return Err(WebError::Conflict {
                message: "this is the node serving this page: stop it (it leaves the cluster as it stops), or remove it from another node".into(),
                taken: vec![],
            });
        }
        super::remove_node(&state, id).await?;
        log::info!("admin removes node {id} from the cluster");
        Ok::<_, WebError>(see_other(&format!("/admin?removed={id}#cluster")))
    };
    match result.await {
        Ok(r) => r,
        Err(e) => respond(&state, dashboard_page(&state, &req, Some(e)).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/admin/shows?q=x")), "/admin/shows?q=x");
        assert_eq!(safe_next(Some("/admin")), "/admin");
        for bad in ["https://evil.example", "//evil.example", "/admin//evil", "/adminx", "/admin/\\evil", "/"] {
            assert_eq!(safe_next(Some(bad)), "/admin", "{bad}");
        }
        assert_eq!(safe_next(None), "/admin");
    }
}
