//! The admin pages: login, the dashboard (imports), and bookings per show.
use super::super::error::WebError;
use super::super::AppState;
use super::auth::{logged_in, over_https, session_open, AdminGate, LoginError};
use super::{cancel_booking, current_password, job_view, start_import, write_admin, AdminSession, CLOSED_MESSAGE};
use crate::actors::importer::Trigger;
use crate::actors::show::GetSeatMap;
use crate::db::catalog::show_details;
use crate::db::models::{booking_state, split_seats};
use crate::db::orders::bookings_of_show;
use crate::db::sales::{show_sales, SalesFilter};
use crate::domain::{BookingCode, ShowId};
use crate::wal::change::AdminChange;
use crate::web::pages::parse_form;
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
        .route("/admin/logout-everywhere", web::post().to(logout_everywhere))
        .route("/admin/account", web::get().to(account))
        .route("/admin/password", web::post().to(change_password))
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
    ctx.insert("notice", &notice_of(req));
    ctx.insert("next", safe_next(next.as_deref()));
    render(state, req, "admin/login.html", ctx, status)
}

/// The notice a redirect to the login page asks for (`?done=...`), from a fixed list.
fn notice_of(req: &HttpRequest) -> Option<&'static str> {
    let q = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string()).ok()?;
    match q.get("done").map(String::as_str) {
        Some("logout") => Some("You are logged out."),
        Some("everywhere") => Some("Every admin session has ended, on every node."),
        Some("password") => Some("The password was changed and every session has ended; log in with the new one."),
        _ => None,
    }
}

async fn login_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if !state.admin.is_open() {
        return closed_page(&state, &req);
    }
    if let Some(id) = state.admin.session_of(&req, Utc::now()) {
        if session_open(&state, &id).await.unwrap_or(false) {
            return see_other("/admin");
        }
    }
    login_page(&state, &req, None, StatusCode::OK)
}

async fn login(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if !state.admin.is_open() {
        return closed_page(&state, &req);
    }
    let form = match parse_form(&body, &req) {
        Ok(form) => form,
        Err(e) => return state.error_page(&e),
    };
    let attempt = form.get("password").unwrap_or("").chars().take(1024).collect::<String>();
    let who = crate::web::client::client_ip(&state, &req);
    let gate: &AdminGate = &state.admin;
    let current = match current_password(&state).await {
        Ok(p) => p,
        Err(e) => return state.error_page(&e),
    };
    match gate.login(who, attempt, current).await {
        Ok(()) => {
            let session = gate.new_session(Utc::now(), over_https(&req));
            let opened = AdminChange::SessionOpened {
                session: session.id.clone(),
                expires_at: session.expires_at.naive_utc(),
                client_addr: who.map(|a| a.to_string()),
            };
            if let Err(e) = write_admin(&state, opened).await {
                use actix_web::ResponseError;
                log::warn!("admin login from {who:?}: the session could not be recorded: {e}");
                return login_page(&state, &req, Some(&e.to_string()), e.status_code());
            }
            log::info!("admin login from {who:?}");
            logged_in(session, safe_next(form.get("next")))
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

/// Ends this session on every node (through the log), then in the browser.
async fn logout(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(e) = parse_form(&body, &req) {
        return state.error_page(&e);
    }
    if let Some(session) = state.admin.session_of(&req, Utc::now()) {
        if let Err(e) = write_admin(&state, AdminChange::SessionEnded { session }).await {
            return state.error_page(&e);
        }
    }
    logged_out("logout")
}

fn logged_out(done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .cookie(AdminGate::logout_cookie())
        .insert_header(("Location", format!("/admin/login?done={done}")))
        .finish()
}

/// Ends every admin session, on every node.
async fn logout_everywhere(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(e) = parse_form(&body, &req) {
        return state.error_page(&e);
    }
    match write_admin(&state, AdminChange::AllSessionsEnded).await {
        Ok(()) => {
            log::info!("admin: every session ended");
            logged_out("everywhere")
        }
        Err(e) => state.error_page(&e),
    }
}

async fn account(_: AdminSession, state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    account_page(&state, &req, None, StatusCode::OK).await
}

async fn account_page(state: &AppState, req: &HttpRequest, error: Option<String>, status: StatusCode) -> HttpResponse {
    let now = Utc::now().naive_utc();
    let open = match state.db.run(move |c| crate::db::admin::open_sessions(c, now)).await {
        Ok(n) => n,
        Err(e) => return state.error_page(&e.into()),
    };
    let mut ctx = Context::new();
    ctx.insert("error", &error);
    ctx.insert("open_sessions", &open);
    ctx.insert("session_hours", &state.settings.admin_session_hours);
    ctx.insert("min_len", &crate::domain::MIN_PASSWORD_LEN);
    render(state, req, "admin/account.html", ctx, status)
}

/// A new admin password: the current one first (throttled like a login), the new one
/// twice. Every session ends with it.
async fn change_password(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form = match parse_form(&body, &req) {
        Ok(form) => form,
        Err(e) => return state.error_page(&e),
    };
    let field = |name| form.get(name).unwrap_or("").chars().take(1024).collect::<String>();
    let (current, new, repeat) = (field("current"), field("new"), field("repeat"));
    if new != repeat {
        return account_page(&state, &req, Some("The new passwords differ.".into()), StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
    let who = crate::web::client::client_ip(&state, &req);
    let stored = match current_password(&state).await {
        Ok(p) => p,
        Err(e) => return state.error_page(&e),
    };
    if let Err(e) = state.admin.login(who, current, stored).await {
        let status = match e {
            LoginError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::FORBIDDEN,
        };
        let message = match e {
            LoginError::WrongPassword => "The current password is wrong.".to_string(),
            other => format!("{}.", capitalized(&other.to_string())),
        };
        return account_page(&state, &req, Some(message), status).await;
    }
    let hashed = web::block(move || crate::domain::AdminPassword::hash(&new)).await;
    let password = match hashed {
        Ok(Ok(p)) => p,
        Ok(Err(why)) => {
            return account_page(
                &state,
                &req,
                Some(format!("The new password {why}.")),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => return state.error_page(&WebError::Internal(e.to_string())),
    };
    match write_admin(&state, AdminChange::PasswordChanged { password_hash: password.phc().to_string() }).await {
        Ok(()) => {
            log::info!("admin password changed from {who:?}; every session ended");
            logged_out("password")
        }
        Err(e) => state.error_page(&e),
    }
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
    if let Err(e) = parse_form(&body, &req) {
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

/// A show's start (`utc`) on its theater's clock (`zone`, else FEED_TIMEZONE), as `format`.
fn local_when(state: &AppState, zone: &str, utc: chrono::NaiveDateTime, format: &str) -> String {
    use chrono::TimeZone;
    let zone = crate::catalog::zone::zone_named(zone, state.settings.flixster.feed_timezone);
    zone.from_utc_datetime(&utc).format(format).to_string()
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
                "when": local_when(&state, &s.theater_timezone, s.starts_at_utc, "%a %-d %b %H:%M %Z"),
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
                "when": local_when(&state, &theater.timezone, show.starts_at_utc, "%a %-d %b %Y %H:%M %Z"),
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
        parse_form(&body, &req)?;
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
        parse_form(&body, &req)?;
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
