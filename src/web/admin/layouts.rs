//! Auditoriums in the admin area: every theater with its layout, a page per auditorium that
//! draws the layout as the seat map does and edits its text, and the change itself.
//!
//! A change is a new layout (new ids) written through the log as one `layout_changed`
//! entry: the theater points at it, and so does every upcoming show whose seat map has no
//! hold and no booking. Each show's actor decides that in its mailbox, among the holds, and
//! takes no further message until the entry is written; then it loads again. Shows with
//! holds or bookings keep the layout they have.
use super::super::error::WebError;
use super::super::pages::{money, parse_form, seatmap_context};
use super::super::{csrf, AppState};
use super::{ask_master, master_elsewhere, AdminSession};
use crate::actors::layout_switch::KeepReason;
use crate::actors::show::{row_views, stored_layout, OfferLayout};
use crate::catalog::layout::{stored_text, text_change};
use crate::db::layouts::{self, Auditorium};
use crate::domain::{LayoutText, SeatKind, ShowId};
use crate::wal::change::LayoutChanged;
use crate::wal::{Change, WalError};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures::channel::oneshot;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tera::Context;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/theaters", web::get().to(list_page))
        .route("/admin/theaters/{id}", web::get().to(auditorium_page))
        .route("/admin/theaters/{id}/layout", web::post().to(edit_page));
}

/// The admin API's routes (inside its `/admin/api` scope).
pub fn api(scope: actix_web::Scope) -> actix_web::Scope {
    scope
        .route("/theaters", web::get().to(api_list))
        .route("/theaters/{id}/layout", web::get().to(api_layout))
        .route("/theaters/{id}/layout", web::post().to(api_edit))
}

/// A layout change as an operator asks for it (and as a follower passes it to the master).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutRequest {
    pub theater_id: i64,
    pub text: String,
    pub no_lonely_seats: bool,
}

/// A show that kept its layout, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptShow {
    pub show_id: i64,
    pub why: KeepReason,
}

/// What a layout change did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutOutcome {
    pub theater_id: i64,
    /// The new layout's id.
    pub layout_id: i64,
    /// The log entry that carried it.
    pub lsn: i64,
    /// Upcoming shows that now have the new layout.
    pub changed: Vec<i64>,
    /// Upcoming shows that kept theirs.
    pub kept: Vec<KeptShow>,
    /// Shows that had started, left as they were.
    pub started: i64,
}

/// The layout text, or a 422 with the parser's words (line, row and column).
fn parse_layout(text: &str) -> Result<LayoutText, WebError> {
    LayoutText::parse(text).map_err(|e| WebError::Unprocessable(format!("the layout is not valid: {e}")))
}

fn theater_id(raw: &str) -> Result<i64, WebError> {
    raw.parse().map_err(|_| WebError::NotFound("no such theater".into()))
}

/// Changes a theater's layout: on the master (this node, or passed on to it), whatever
/// becomes of the request that asked, so a client that goes away cannot cut it in half.
pub async fn change_layout(state: &AppState, request: LayoutRequest) -> Result<LayoutOutcome, WebError> {
    let text = parse_layout(&request.text)?;
    if let Some(master) = master_elsewhere(state)? {
        let body = serde_json::to_value(&request).unwrap_or_default();
        return ask_master(state, &master, "/internal/admin/layout", body).await;
    }
    let state = state.clone();
    let work = async move { on_master(&state, request.theater_id, text, request.no_lonely_seats).await };
    actix_web::rt::spawn(work).await.map_err(|e| WebError::Internal(format!("the layout change stopped: {e}")))?
}

async fn on_master(
    state: &AppState,
    theater_id: i64,
    text: LayoutText,
    no_lonely_seats: bool,
) -> Result<LayoutOutcome, WebError> {
    let _planning = state.catalog_lock.lock().await;
    let now = Utc::now().naive_utc();
    let (auditorium, layout_id, (upcoming, started)) = state
        .db
        .run(move |c| {
            Ok((
                layouts::auditorium(c, theater_id)?,
                layouts::next_layout_id(c)?,
                layouts::shows_of(c, theater_id, now)?,
            ))
        })
        .await?;
    let auditorium = auditorium.ok_or_else(|| WebError::NotFound("no such theater".into()))?;
    let name = match auditorium.layout.name.as_str() {
        "" => format!("{} — main auditorium", auditorium.theater.name),
        n => n.to_string(),
    };
    let rows = text_change(layout_id, &name, &text);
    let Some(mut layout) = rows.layouts.into_iter().next() else {
        return Err(WebError::Internal("a layout change without its layout".into()));
    };
    layout.no_lonely_seats = no_lonely_seats;
    // Every upcoming show's actor answers in its own mailbox order; those that may switch
    // wait (holds queue behind them) until `written` is dropped, after the entry is written.
    let max_wait = state.settings.cluster.replication_timeout + std::time::Duration::from_secs(10);
    let (written, offers): (Vec<oneshot::Sender<()>>, Vec<_>) = upcoming
        .iter()
        .map(|&id| {
            let (tx, rx) = oneshot::channel();
            (tx, state.shows.get(ShowId(id)).send(OfferLayout { written: rx, max_wait }))
        })
        .unzip();
    let answers = futures::future::join_all(offers).await;
    let (mut changed, mut kept) = (Vec::new(), Vec::new());
    for (&show_id, answer) in upcoming.iter().zip(answers) {
        let why = match answer {
            Ok(Ok(Ok(()))) => {
                changed.push(show_id);
                continue;
            }
            Ok(Ok(Err(why))) => why,
            Ok(Err(e)) => KeepReason::Unavailable { message: e.to_string() },
            Err(e) => KeepReason::Unavailable { message: format!("its seat map did not answer ({e})") },
        };
        kept.push(KeptShow { show_id, why });
    }
    let change =
        LayoutChanged { theater_id, layout, categories: rows.categories, rows: rows.rows, shows: changed.clone() };
    let written_to_log = state.writer.append(Change::Layout(Box::new(change))).await;
    drop(written);
    let record = written_to_log.map_err(|e| match e {
        WalError::NoQuorum => WebError::Unavailable(
            "the cluster did not confirm the layout change in time; its outcome is unknown: reload the auditorium \
             page in a few seconds to see whether it took effect"
                .into(),
        ),
        WalError::Conflict(_) => WebError::Conflict {
            message: "another catalog change was written at the same time; try again".into(),
            taken: vec![],
        },
        other => WebError::Unavailable(format!("the cluster could not record this now ({other}); try again")),
    })?;
    log::info!(
        "theater {theater_id}: layout {layout_id} (lsn {}), {} shows changed, {} kept theirs",
        record.lsn,
        changed.len(),
        kept.len()
    );
    Ok(LayoutOutcome { theater_id, layout_id, lsn: record.lsn, changed, kept, started })
}

/// The layout of `auditorium` as the seat map template draws it (every seat free), with
/// its categories.
fn preview(auditorium: &Auditorium) -> (Vec<Value>, Vec<Value>, Value) {
    let layout = stored_layout(&auditorium.categories, &auditorium.rows, auditorium.layout.no_lonely_seats);
    let (categories, rows) = seatmap_context(&layout.categories, &row_views(&layout, None));
    let count = |k: SeatKind| layout.kinds.iter().filter(|&&x| x == k).count();
    let figures = json!({
        "seats": layout.seats.len(), "rows": layout.rows.len(),
        "wheelchair": count(SeatKind::Wheelchair), "companion": count(SeatKind::Companion),
    });
    (categories, rows, figures)
}

fn render(state: &AppState, req: &HttpRequest, template: &str, ctx: Context, status: StatusCode) -> HttpResponse {
    crate::web::pages::respond(state, crate::web::pages::page(state, req, template, ctx, status))
}

async fn list_page(_: AdminSession, state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let now = Utc::now().naive_utc();
    match state.db.run(move |c| layouts::list(c, now)).await {
        Ok(list) => {
            let mut ctx = Context::new();
            ctx.insert("theaters", &list_json(&list));
            render(&state, &req, "admin/theaters.html", ctx, StatusCode::OK)
        }
        Err(e) => state.error_page(&e.into()),
    }
}

fn list_json(list: &[layouts::ListedAuditorium]) -> Vec<Value> {
    list.iter()
        .map(|a| {
            json!({
                "id": a.theater.id, "name": a.theater.name, "layout_id": a.theater.layout_id,
                "layout_name": a.layout_name, "seats": a.seats,
                "upcoming": a.upcoming_on_current, "upcoming_on_older": a.upcoming_on_older,
            })
        })
        .collect()
}

/// What the form shows instead of the stored layout: the text posted (refused) and its
/// rule switch.
struct Posted<'a> {
    text: &'a str,
    no_lonely_seats: bool,
}

async fn auditorium_page(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    auditorium_response(&state, &req, &path, None, None).await
}

async fn auditorium_response(
    state: &AppState,
    req: &HttpRequest,
    raw_id: &str,
    posted: Option<Posted<'_>>,
    error: Option<WebError>,
) -> HttpResponse {
    use actix_web::ResponseError;
    let page = async {
        let id = theater_id(raw_id)?;
        let now = Utc::now().naive_utc();
        let (auditorium, list) =
            state.db.run(move |c| Ok((layouts::auditorium(c, id)?, layouts::list(c, now)?))).await?;
        let auditorium = auditorium.ok_or_else(|| WebError::NotFound("no such theater".into()))?;
        let listed = list.iter().find(|a| a.theater.id == id);
        let (categories, rows, figures) = preview(&auditorium);
        let mut ctx = Context::new();
        ctx.insert(
            "theater",
            &json!({
                "id": auditorium.theater.id, "name": auditorium.theater.name,
                "layout_id": auditorium.layout.id, "layout_name": auditorium.layout.name,
                "upcoming": listed.map_or(0, |a| a.upcoming_on_current),
                "upcoming_on_older": listed.map_or(0, |a| a.upcoming_on_older),
            }),
        );
        let stored = stored_text(&auditorium.categories, &auditorium.rows).to_string();
        ctx.insert("text", posted.as_ref().map_or(stored.as_str(), |p| p.text));
        ctx.insert(
            "no_lonely_seats",
            &posted.as_ref().map_or(auditorium.layout.no_lonely_seats, |p| p.no_lonely_seats),
        );
        ctx.insert("categories", &categories);
        ctx.insert("rows", &rows);
        ctx.insert("figures", &figures);
        ctx.insert("preview", &true);
        ctx.insert("error", &error.as_ref().map(|e| e.to_string()));
        let status = error.as_ref().map_or(StatusCode::OK, |e| e.status_code());
        Ok::<_, WebError>(render(state, req, "admin/auditorium.html", ctx, status))
    };
    page.await.unwrap_or_else(|e| state.error_page(&e))
}

async fn edit_page(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let form = match parse_form(&body, &req) {
        Ok(f) => f,
        Err(e) => return state.error_page(&e),
    };
    let id = match theater_id(&path) {
        Ok(id) => id,
        Err(e) => return state.error_page(&e),
    };
    let text = form.get("layout").unwrap_or("");
    let no_lonely_seats = form.get("no_lonely_seats").is_some_and(|v| !v.is_empty());
    let request = LayoutRequest { theater_id: id, text: text.to_string(), no_lonely_seats };
    match change_layout(&state, request).await {
        Ok(outcome) => match outcome_page(&state, &req, &outcome).await {
            Ok(page) => page,
            Err(e) => state.error_page(&e),
        },
        Err(e @ (WebError::Unprocessable(_) | WebError::Conflict { .. } | WebError::Unavailable(_))) => {
            auditorium_response(&state, &req, &path, Some(Posted { text, no_lonely_seats }), Some(e)).await
        }
        Err(e) => state.error_page(&e),
    }
}

/// The answer to a change: how many shows changed, and which kept their layout and why.
async fn outcome_page(state: &AppState, req: &HttpRequest, outcome: &LayoutOutcome) -> Result<HttpResponse, WebError> {
    let id = outcome.theater_id;
    let ids: Vec<i64> = outcome.changed.iter().copied().chain(outcome.kept.iter().map(|k| k.show_id)).collect();
    let (auditorium, lines) =
        state.db.run(move |c| Ok((layouts::auditorium(c, id)?, layouts::show_lines(c, &ids)?))).await?;
    let theater = auditorium.map(|a| a.theater);
    let zone = crate::catalog::zone::zone_named(
        theater.as_ref().map_or("", |t| t.timezone.as_str()),
        state.settings.flixster.feed_timezone,
    );
    let line = |show_id: i64| {
        let l = lines.iter().find(|l| l.id == show_id);
        json!({
            "id": show_id,
            "title": l.map_or("", |l| l.title.as_str()),
            "when": l.map(|l| {
                use chrono::TimeZone;
                zone.from_utc_datetime(&l.starts_at_utc).format("%a %-d %b %H:%M %Z").to_string()
            }),
        })
    };
    let mut ctx = Context::new();
    ctx.insert("theater", &json!({ "id": id, "name": theater.as_ref().map_or("", |t| t.name.as_str()) }));
    ctx.insert("outcome", outcome);
    ctx.insert("changed", &outcome.changed.iter().map(|&s| line(s)).collect::<Vec<_>>());
    ctx.insert(
        "kept",
        &outcome
            .kept
            .iter()
            .map(|k| {
                let mut v = line(k.show_id);
                v["why"] = json!(k.why.describe());
                v
            })
            .collect::<Vec<_>>(),
    );
    Ok(render(state, req, "admin/layout_changed.html", ctx, StatusCode::OK))
}

fn no_store(body: Value) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body)
}

/// `{"theaters": [...]}`: every theater with its auditorium's figures.
async fn api_list(_: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let now = Utc::now().naive_utc();
    let list = state.db.run(move |c| layouts::list(c, now)).await?;
    Ok(no_store(json!({ "theaters": list_json(&list) })))
}

/// A theater's layout: its text, rule, categories and rows as the seat map draws them.
async fn api_layout(
    _: AdminSession,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let id = theater_id(&path)?;
    let auditorium = state.db.run(move |c| layouts::auditorium(c, id)).await?;
    let auditorium = auditorium.ok_or_else(|| WebError::NotFound("no such theater".into()))?;
    let layout = stored_layout(&auditorium.categories, &auditorium.rows, auditorium.layout.no_lonely_seats);
    Ok(no_store(json!({
        "theater_id": id,
        "layout_id": auditorium.layout.id,
        "name": auditorium.layout.name,
        "no_lonely_seats": auditorium.layout.no_lonely_seats,
        "text": stored_text(&auditorium.categories, &auditorium.rows).to_string(),
        "categories": layout.categories.iter().map(|c| json!({
            "code": c.code, "name": c.name, "price_cents": c.price_cents, "price": money(c.price_cents),
        })).collect::<Vec<_>>(),
        "rows": row_views(&layout, None),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    text: String,
    no_lonely_seats: Option<bool>,
}

/// `{"text", "no_lonely_seats"}` (the rule stays as it is when left out), with the
/// `X-CSRF-Token` header: 200 with the outcome, 422 with the parser's error.
async fn api_edit(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    csrf::verify_header(&req)?;
    let id = theater_id(&path)?;
    let body: EditBody =
        serde_json::from_slice(&body).map_err(|e| WebError::BadRequest(format!("the body is not a layout: {e}")))?;
    let no_lonely_seats = match body.no_lonely_seats {
        Some(rule) => rule,
        None => {
            let auditorium = state.db.run(move |c| layouts::auditorium(c, id)).await?;
            auditorium.ok_or_else(|| WebError::NotFound("no such theater".into()))?.layout.no_lonely_seats
        }
    };
    let outcome = change_layout(&state, LayoutRequest { theater_id: id, text: body.text, no_lonely_seats }).await?;
    Ok(HttpResponse::Ok().json(outcome))
}
