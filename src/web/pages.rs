//! The server-rendered site. Every page works with plain forms; scripts only enhance.
use super::error::WebError;
use super::form::FormData;
use super::page_cache::{ListingDay, ListingKey, ListingStamp, Rendered, Same, ShowStamp};
use super::{csrf, writes, AppState};
use crate::actors::show::{BookingReceipt, GetHold, GetSeatMap, HoldView, SeatMapView, SeatPick};
use crate::catalog::zone::{local_time_label, zone_named};
use crate::db::catalog;
use crate::db::models::{booking_state, split_seats, Movie, Show, Theater};
use crate::db::orders::find_booking;
use crate::domain::{
    BestRequest, BookingCode, CustomerName, DomainError, Email, HoldId, SeatSelection, ShowId, MAX_SEATS_PER_HOLD,
};
use crate::wal::Origin;
use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tera::Context;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/movies/{id}", web::get().to(movie))
        .route("/shows/{id}", web::get().to(show))
        .route("/shows/{id}/hold", web::post().to(hold))
        .route("/holds/{hold_id}", web::get().to(hold_page))
        .route("/holds/{hold_id}/confirm", web::post().to(confirm))
        .route("/holds/{hold_id}/release", web::post().to(release))
        .route("/bookings", web::get().to(lookup_page))
        .route("/bookings/lookup", web::post().to(lookup))
        .route("/bookings/{code}/cancel", web::post().to(cancel));
}

/// A page's answer: HTML with the CSRF cookie set when the browser needs one.
pub(crate) struct Page {
    status: StatusCode,
    body: Bytes,
    cookie: Option<Cookie<'static>>,
    /// `Retry-After`, for a page that says "too many requests".
    retry_after: Option<u64>,
}

impl Page {
    fn into_response(self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.content_type("text/html; charset=utf-8").insert_header(("Cache-Control", "no-store"));
        if let Some(secs) = self.retry_after {
            res.insert_header(("Retry-After", secs.to_string()));
        }
        if let Some(c) = self.cookie {
            res.cookie(c);
        }
        res.body(self.body)
    }
}

pub(crate) fn respond(state: &AppState, page: Result<Page, WebError>) -> HttpResponse {
    match page {
        Ok(p) => p.into_response(),
        Err(e) => state.error_page(&e),
    }
}

/// Renders `template`; `ctx` gets the CSRF token.
pub(crate) fn page(
    state: &AppState,
    req: &HttpRequest,
    template: &str,
    mut ctx: Context,
    status: StatusCode,
) -> Result<Page, WebError> {
    let (token, cookie) = csrf::token(req);
    ctx.insert("csrf", &token);
    Ok(Page { status, body: state.render(template, &ctx)?.into(), cookie, retry_after: None })
}

/// Renders `template` once for many requests: the CSRF token is left out, see
/// [`cached_page`].
fn render_shared(state: &AppState, template: &str, mut ctx: Context) -> Result<Arc<Rendered>, WebError> {
    ctx.insert("csrf", state.pages.placeholder());
    Ok(state.pages.split(&state.render(template, &ctx)?))
}

/// A page rendered by [`render_shared`], with this request's CSRF token put in.
fn cached_page(req: &HttpRequest, rendered: &Rendered, status: StatusCode) -> Page {
    let (token, cookie) = csrf::token(req);
    Page { status, body: rendered.with_token(&token), cookie, retry_after: None }
}

pub fn money(cents: i32) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn date_label(d: NaiveDate) -> String {
    d.format("%a %-d %b").to_string()
}

/// A posted form, read only when its CSRF token matches the cookie's.
pub(crate) fn parse_form(body: &web::Bytes, req: &HttpRequest) -> Result<FormData, WebError> {
    let form = FormData::parse(body)?;
    csrf::verify(req, form.get(csrf::FIELD))?;
    Ok(form)
}

/// The listing's `?date=`: `YYYY-MM-DD` in the years a MySQL `DATE` holds. chrono also
/// reads years like `-0001` or `+262143`; diesel refuses to send a negative one (a 500).
fn listing_date(raw: &str) -> Result<NaiveDate, WebError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().filter(|d| (1000..=9999).contains(&d.year())).ok_or_else(|| {
        let shown: String = raw.chars().take(20).collect();
        WebError::BadRequest(format!("'{shown}' is not a date (YYYY-MM-DD)"))
    })
}

#[derive(Deserialize)]
struct ListingQuery {
    date: Option<String>,
    theater: Option<String>,
    q: Option<String>,
}

#[derive(Serialize)]
struct MovieCard {
    id: i64,
    title: String,
    duration_minutes: Option<i32>,
    poster_url: Option<String>,
    show_count: usize,
    next_show: Option<String>,
}

async fn index(state: web::Data<AppState>, req: HttpRequest, query: web::Query<ListingQuery>) -> HttpResponse {
    respond(&state, index_page(&state, &req, query.into_inner()).await)
}

/// The listing. What it shows derives from the catalog, the day and the time: it is
/// rendered once per catalog version, day and page (date, theater, search), and again once
/// a show it lists starts (its "next show" moves on).
async fn index_page(state: &AppState, req: &HttpRequest, query: ListingQuery) -> Result<Page, WebError> {
    let feed_tz = state.settings.flixster.feed_timezone;
    // Read before the catalog, so what is read is at least as fresh as the version.
    let version = state.writer.catalog_version();
    let today = Utc::now().with_timezone(&feed_tz).date_naive();
    let wanted_date = query.date.as_deref().filter(|d| !d.is_empty()).map(listing_date).transpose()?;
    let theater = match query.theater.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(t.parse::<i64>().map_err(|_| WebError::BadRequest("unknown theater".into()))?),
        None => None,
    };
    let search = query.q.unwrap_or_default().trim().chars().take(100).collect::<String>();
    let stamp = ListingStamp { catalog: version, today };
    let day = match state.pages.day(&stamp) {
        Some(day) => day,
        None => {
            let (dates, theaters) = state
                .db
                .run(move |c| {
                    Ok((catalog::show_dates(c, today - chrono::Duration::days(1))?, catalog::all_theaters(c)?))
                })
                .await?;
            let day = Arc::new(ListingDay { dates, theaters });
            state.pages.keep_day(stamp, day.clone());
            day
        }
    };
    let dates = &day.dates;
    let date =
        wanted_date.or_else(|| dates.iter().copied().find(|d| *d >= today).or(dates.first().copied())).unwrap_or(today);
    let key = ListingKey { date, theater, search };
    let now = Utc::now().naive_utc();
    if let Some(hit) = state.pages.listing(&key, &stamp, now) {
        return Ok(cached_page(req, &hit, StatusCode::OK));
    }
    let listed = state.db.run(move |c| catalog::shows_on(c, date, theater)).await?;
    let needle = key.search.to_lowercase();
    let mut cards: BTreeMap<(String, i64), MovieCard> = BTreeMap::new();
    // The page holds until the next of its shows starts.
    let mut until: Option<chrono::NaiveDateTime> = None;
    for s in listed.iter().filter(|s| needle.is_empty() || s.title.to_lowercase().contains(&needle)) {
        let card = cards.entry((s.title.to_lowercase(), s.movie_id)).or_insert_with(|| MovieCard {
            id: s.movie_id,
            title: s.title.clone(),
            duration_minutes: s.duration_minutes,
            poster_url: s.poster_url.clone(),
            show_count: 0,
            next_show: None,
        });
        card.show_count += 1;
        if s.starts_at_utc > now {
            until = Some(until.map_or(s.starts_at_utc, |u| u.min(s.starts_at_utc)));
            if card.next_show.is_none() {
                let time = local_time_label(zone_named(&s.theater_timezone, feed_tz), s.starts_at_utc);
                card.next_show = Some(format!("{time} at {}", s.theater_name));
            }
        }
    }
    let mut ctx = Context::new();
    ctx.insert("movies", &cards.into_values().collect::<Vec<_>>());
    let mut date_opts: Vec<_> = dates
        .iter()
        .map(|d| json!({"value": d.to_string(), "label": date_label(*d), "selected": *d == date}))
        .collect();
    if !dates.contains(&date) {
        date_opts.insert(0, json!({"value": date.to_string(), "label": date_label(date), "selected": true}));
    }
    ctx.insert("dates", &date_opts);
    ctx.insert(
        "theaters",
        &day.theaters
            .iter()
            .map(|t| json!({"id": t.id, "name": t.name, "selected": Some(t.id) == theater}))
            .collect::<Vec<_>>(),
    );
    ctx.insert("q", &key.search);
    ctx.insert("selected_date", &date.to_string());
    let rendered = render_shared(state, "index.html", ctx)?;
    let canonical = key.canonical(&day);
    state.pages.keep_listing(key, canonical, stamp, until, rendered.clone());
    Ok(cached_page(req, &rendered, StatusCode::OK))
}

async fn movie(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    respond(&state, movie_page(&state, &req, &path).await)
}

async fn movie_page(state: &AppState, req: &HttpRequest, raw_id: &str) -> Result<Page, WebError> {
    let id: i64 = raw_id.parse().map_err(|_| WebError::NotFound("no such movie".into()))?;
    let feed_tz = state.settings.flixster.feed_timezone;
    let from = Utc::now().with_timezone(&feed_tz).date_naive() - chrono::Duration::days(1);
    let (movie, shows) =
        state.db.run(move |c| Ok((catalog::movie(c, id)?, catalog::movie_shows(c, id, from)?))).await?;
    let movie: Movie = movie.ok_or_else(|| WebError::NotFound("no such movie".into()))?;
    let now = Utc::now().naive_utc();
    let mut days: Vec<serde_json::Value> = Vec::new();
    let mut by_day: BTreeMap<NaiveDate, Vec<(Theater, Vec<Show>)>> = BTreeMap::new();
    for (show, theater) in shows {
        let list = by_day.entry(show.local_date).or_default();
        match list.last_mut() {
            Some((t, v)) if t.id == theater.id => v.push(show),
            _ => list.push((theater, vec![show])),
        }
    }
    for (date, theaters) in by_day {
        let theaters: Vec<_> = theaters
            .into_iter()
            .map(|(t, shows)| {
                let zone = zone_named(&t.timezone, feed_tz);
                json!({"id": t.id, "name": t.name, "shows": shows.iter().map(|s| json!({
                    "id": s.id, "time": local_time_label(zone, s.starts_at_utc), "bookable": s.starts_at_utc > now,
                })).collect::<Vec<_>>()})
            })
            .collect();
        days.push(json!({"date": date.to_string(), "label": date_label(date), "theaters": theaters}));
    }
    let mut ctx = Context::new();
    ctx.insert("movie", &movie);
    ctx.insert("days", &days);
    page(state, req, "movie.html", ctx, StatusCode::OK)
}

/// The show's header facts, shared by the show, hold and booking pages.
async fn show_header(state: &AppState, id: i64, map: Option<&SeatMapView>) -> Result<serde_json::Value, WebError> {
    let (show, movie, theater) = state
        .db
        .run(move |c| catalog::show_details(c, id))
        .await?
        .ok_or_else(|| WebError::NotFound("no such show".into()))?;
    Ok(json!({
        "id": show.id,
        "movie_id": movie.id,
        "movie_title": movie.title,
        "theater_name": theater.name,
        "date_label": date_label(show.local_date),
        "time": local_time_label(zone_named(&theater.timezone, state.settings.flixster.feed_timezone), show.starts_at_utc),
        "bookable": map.map(|m| m.on_sale).unwrap_or(show.in_feed && show.starts_at_utc > Utc::now().naive_utc()),
        "sold_out": map.map(|m| m.free == 0).unwrap_or(false),
        "free_count": map.map(|m| m.free).unwrap_or(0),
    }))
}

/// A seat map's categories and rows as `seatmap_rows.html` draws them (the show page, and
/// the admin's preview of a layout).
pub(crate) fn seatmap_context(
    categories: &[crate::actors::seat_map::Category],
    rows: &[crate::actors::show::RowView],
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let prices: BTreeMap<&str, (&str, String)> =
        categories.iter().map(|c| (c.code.as_str(), (c.name.as_str(), money(c.price_cents)))).collect();
    let rows = rows
        .iter()
        .map(|r| {
            json!({"label": r.label, "seats": r.seats.iter().map(|s| {
                let (cat_name, price) = prices.get(s.category.as_str()).cloned().unwrap_or(("", String::new()));
                json!({"label": s.seat, "number": s.number, "state": s.state, "category_code": s.category, "category_name": cat_name, "price": price, "kind": s.kind, "space_before": s.space_before})
            }).collect::<Vec<_>>()})
        })
        .collect();
    let categories =
        categories.iter().map(|c| json!({"code": c.code, "name": c.name, "price": money(c.price_cents)})).collect();
    (categories, rows)
}

async fn show(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    respond(&state, show_page(&state, &req, &path, None).await)
}

async fn show_page(
    state: &AppState,
    req: &HttpRequest,
    raw_id: &str,
    error: Option<WebError>,
) -> Result<Page, WebError> {
    use actix_web::ResponseError;
    let id: i64 = raw_id.parse().map_err(|_| WebError::NotFound("no such show".into()))?;
    // Read before the catalog, so what is read is at least as fresh as the version.
    let version = state.writer.catalog_version();
    let map = state.shows.get(ShowId(id)).send(GetSeatMap).await??;
    // The page derives from the catalog (its header) and this snapshot of the seat map
    // (which also says whether the show is still on sale).
    let stamp = ShowStamp { catalog: version, map: Same(map.clone()) };
    let now = Utc::now().naive_utc();
    if error.is_none() {
        if let Some(hit) = state.pages.show(id, &stamp, now) {
            return Ok(cached_page(req, &hit, StatusCode::OK));
        }
    }
    let header = show_header(state, id, Some(&*map)).await?;
    let (categories, rows) = seatmap_context(&map.categories, &map.rows);
    let mut ctx = Context::new();
    ctx.insert("show", &header);
    ctx.insert("categories", &categories);
    ctx.insert("rows", &rows);
    ctx.insert("preview", &false);
    ctx.insert("max_seats", &MAX_SEATS_PER_HOLD);
    ctx.insert("version", &map.version);
    let Some(error) = error else {
        ctx.insert("error", &None::<String>);
        let rendered = render_shared(state, "show.html", ctx)?;
        state.pages.keep_show(id, stamp, rendered.clone());
        return Ok(cached_page(req, &rendered, StatusCode::OK));
    };
    ctx.insert("error", &Some(error.to_string()));
    page(state, req, "show.html", ctx, error.status_code())
}

async fn hold(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    let result = async {
        let form = parse_form(&body, &req)?;
        let id: i64 = path.parse().map_err(|_| WebError::NotFound("no such show".into()))?;
        let attempt = async {
            let pick = match form.get("best").filter(|b| !b.trim().is_empty()) {
                Some(n) => {
                    let n = n
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| DomainError::BadBestCount { max: MAX_SEATS_PER_HOLD, got: 0 })?;
                    SeatPick::Best(BestRequest::parse(n, form.get("category"))?)
                }
                None => SeatPick::Seats(SeatSelection::parse(&form.all("seat"))?),
            };
            let wheelchair = form.get("wheelchair").is_some_and(|v| !v.is_empty());
            let client = super::client::client(&state, &req);
            let hold = writes::HoldRequest { pick, wheelchair, key: None, client };
            writes::place_hold(&state, ShowId(id), hold, Origin::Here).await
        };
        match attempt.await {
            Ok(receipt) => Ok(Err(receipt.hold_id)),
            Err(e @ (WebError::Conflict { .. } | WebError::Unprocessable(_) | WebError::TooManyRequests { .. })) => {
                let retry_after = e.retry_after();
                let mut page = show_page(&state, &req, &path, Some(e)).await?;
                page.retry_after = retry_after;
                Ok(Ok(page))
            }
            Err(e) => Err(e),
        }
    }
    .await;
    match result {
        Ok(Err(hold_id)) => HttpResponse::SeeOther().insert_header(("Location", format!("/holds/{hold_id}"))).finish(),
        Ok(Ok(page)) => page.into_response(),
        Err(e) => state.error_page(&e),
    }
}

fn hold_context(view: &HoldView) -> serde_json::Value {
    let left = (view.expires_at - Utc::now()).num_seconds().max(0);
    json!({
        "id": view.hold_id,
        "expires_at": view.expires_at.to_rfc3339(),
        "seconds_left": left,
        "ms_left": (view.expires_at - Utc::now()).num_milliseconds().max(0),
        "items": view.items.iter().map(|i| json!({"seat": i.seat, "category": i.category, "price": money(i.price_cents)})).collect::<Vec<_>>(),
        "total": money(view.total_cents),
    })
}

async fn hold_page(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let hold = match HoldId::parse(&path) {
        Ok(h) => h,
        Err(e) => return state.error_page(&e.into()),
    };
    let show = hold.show();
    let page = render_hold(&state, &req, hold, None, "", "").await;
    respond_for_hold(&state, &req, show, page).await
}

/// Like [`respond`], but a hold that has ended gets its own page, which leads back to the
/// show's seat map.
async fn respond_for_hold(
    state: &AppState,
    req: &HttpRequest,
    show: ShowId,
    page: Result<Page, WebError>,
) -> HttpResponse {
    match page {
        Err(WebError::Gone(_)) => respond(state, hold_expired_page(state, req, show).await),
        other => respond(state, other),
    }
}

async fn hold_expired_page(state: &AppState, req: &HttpRequest, show: ShowId) -> Result<Page, WebError> {
    let mut ctx = Context::new();
    ctx.insert("show", &show_header(state, show.0, None).await.ok());
    ctx.insert("show_id", &show.0);
    page(state, req, "hold_expired.html", ctx, StatusCode::GONE)
}

async fn render_hold(
    state: &AppState,
    req: &HttpRequest,
    hold: HoldId,
    error: Option<WebError>,
    name: &str,
    email: &str,
) -> Result<Page, WebError> {
    use actix_web::ResponseError;
    let view = writes::read_own_write(state, || async {
        Ok(state.shows.get(hold.show()).send(GetHold { hold: hold.clone() }).await??)
    })
    .await?;
    if let Some(code) = &view.booking_code {
        // Already confirmed (a reload, or a second tab): show the booking.
        let receipt = state.db.run({
            let code = code.clone();
            move |c| find_booking(c, &code)
        });
        if let Some(b) = receipt.await? {
            return confirmed_page(
                state,
                req,
                &BookingReceipt {
                    code: b.code,
                    show_id: b.show_id,
                    hold_id: b.hold_id,
                    name: b.name,
                    email: b.email,
                    seats: split_seats(&b.seats),
                    total_cents: b.total_cents,
                    state: b.state,
                },
            )
            .await;
        }
    }
    let mut ctx = Context::new();
    ctx.insert("hold", &hold_context(&view));
    ctx.insert("show", &show_header(state, view.show_id, None).await?);
    ctx.insert("name", name);
    ctx.insert("email", email);
    let status = error.as_ref().map(|e| e.status_code()).unwrap_or(StatusCode::OK);
    ctx.insert("error", &error.map(|e| e.to_string()));
    page(state, req, "hold.html", ctx, status)
}

async fn confirmed_page(state: &AppState, req: &HttpRequest, b: &BookingReceipt) -> Result<Page, WebError> {
    let mut ctx = Context::new();
    ctx.insert("booking", &json!({"code": b.code, "name": b.name, "email": b.email, "seats": b.seats, "total": money(b.total_cents), "state": b.state}));
    ctx.insert("show", &show_header(state, b.show_id, None).await?);
    ctx.insert("ticket", &e_ticket(state, &b.code, &b.state)?);
    page(state, req, "confirmed.html", ctx, StatusCode::OK)
}

/// The e-ticket of a confirmed booking: its signed token and that token as an inline SVG
/// QR code (None for a cancelled booking: it admits nobody).
fn e_ticket(state: &AppState, code: &str, current: &str) -> Result<Option<serde_json::Value>, WebError> {
    if current != booking_state::CONFIRMED {
        return Ok(None);
    }
    let code = BookingCode::parse(code).map_err(|e| WebError::Internal(format!("a stored booking code: {e}")))?;
    let token = state.tickets.sign(&code);
    Ok(Some(json!({"token": token.as_str(), "qr_svg": token.qr_svg()})))
}

async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let result = async {
        let form = parse_form(&body, &req)?;
        let hold = HoldId::parse(&path)?;
        let (raw_name, raw_email) = (form.get("name").unwrap_or(""), form.get("email").unwrap_or(""));
        let parsed = CustomerName::parse(raw_name).and_then(|n| Ok((n, Email::parse(raw_email)?)));
        let (name, email) = match parsed {
            Ok(v) => v,
            Err(e) => return render_hold(&state, &req, hold, Some(e.into()), raw_name, raw_email).await,
        };
        let receipt = writes::confirm(&state, hold, name, email, Origin::Here).await?;
        confirmed_page(&state, &req, &receipt).await
    };
    let page = result.await;
    match HoldId::parse(&path) {
        Ok(hold) => respond_for_hold(&state, &req, hold.show(), page).await,
        Err(_) => respond(&state, page),
    }
}

async fn release(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let result = async {
        parse_form(&body, &req)?;
        let hold = HoldId::parse(&path)?;
        let show = hold.show();
        writes::release(&state, hold, Origin::Here).await?;
        Ok::<_, WebError>(show)
    };
    match result.await {
        Ok(show) => HttpResponse::SeeOther().insert_header(("Location", format!("/shows/{show}"))).finish(),
        Err(e @ WebError::Gone(_)) => match HoldId::parse(&path) {
            Ok(hold) => respond_for_hold(&state, &req, hold.show(), Err(e)).await,
            Err(_) => state.error_page(&e),
        },
        Err(e) => state.error_page(&e),
    }
}

async fn lookup_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("error", &None::<String>);
    ctx.insert("code", "");
    ctx.insert("email", "");
    respond(&state, page(&state, &req, "lookup.html", ctx, StatusCode::OK))
}

async fn lookup(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let result = async {
        let form = parse_form(&body, &req)?;
        let (raw_code, raw_email) = (form.get("code").unwrap_or(""), form.get("email").unwrap_or(""));
        let found = state
            .guarded_lookup(&req, async {
                match BookingCode::parse(raw_code).and_then(|c| Ok((c, Email::parse(raw_email)?))) {
                    Ok((code, email)) => find_booking_of(&state, &code, &email)
                        .await?
                        .map(|b| (code, email, b))
                        .ok_or_else(|| WebError::NotFound("no booking".into())),
                    Err(_) => Err(WebError::NotFound("no booking".into())),
                }
            })
            .await;
        match found {
            Ok((code, email, _)) => booking_page(&state, &req, code, email, None).await,
            Err(WebError::NotFound(_)) => not_found_lookup(&state, &req, raw_code, raw_email),
            Err(e @ WebError::TooManyRequests { .. }) => {
                let retry_after = e.retry_after();
                let mut ctx = Context::new();
                ctx.insert("error", &format!("{}.", e));
                ctx.insert("code", raw_code);
                ctx.insert("email", raw_email);
                let mut p = page(&state, &req, "lookup.html", ctx, StatusCode::TOO_MANY_REQUESTS)?;
                p.retry_after = retry_after;
                Ok(p)
            }
            Err(e) => Err(e),
        }
    };
    respond(&state, result.await)
}

/// The booking with this code, if its email is this one (a moment's retry on a follower,
/// for a booking just made).
async fn find_booking_of(
    state: &AppState,
    code: &BookingCode,
    email: &Email,
) -> Result<Option<crate::db::models::Booking>, WebError> {
    let booking = writes::read_own_write(state, || async {
        let c = code.to_string();
        let b = state.db.run(move |conn| find_booking(conn, &c)).await?;
        b.ok_or_else(|| WebError::NotFound("no booking".into()))
    })
    .await
    .ok();
    Ok(booking.filter(|b| b.email == email.as_str()))
}

fn not_found_lookup(state: &AppState, req: &HttpRequest, code: &str, email: &str) -> Result<Page, WebError> {
    let mut ctx = Context::new();
    ctx.insert("error", "No booking matches this code and email.");
    ctx.insert("code", code);
    ctx.insert("email", email);
    page(state, req, "lookup.html", ctx, StatusCode::NOT_FOUND)
}

async fn booking_page(
    state: &AppState,
    req: &HttpRequest,
    code: BookingCode,
    email: Email,
    notice: Option<&str>,
) -> Result<Page, WebError> {
    let Some(b) = find_booking_of(state, &code, &email).await? else {
        return not_found_lookup(state, req, code.as_str(), email.as_str());
    };
    let (show, _, theater) = state
        .db
        .run({
            let id = b.show_id;
            move |c| catalog::show_details(c, id)
        })
        .await?
        .ok_or_else(|| WebError::NotFound("no such show".into()))?;
    let deadline_utc = show.starts_at_utc.and_utc() - state.settings.cancel_cutoff;
    let tz = zone_named(&theater.timezone, state.settings.flixster.feed_timezone);
    let mut ctx = Context::new();
    ctx.insert("booking", &json!({
        "code": b.code, "name": b.name, "email": b.email, "seats": split_seats(&b.seats), "total": money(b.total_cents),
        "state": b.state, "cancellable": b.state == booking_state::CONFIRMED && Utc::now() < deadline_utc,
        "cancel_deadline": deadline_utc.with_timezone(&tz).format("%a %-d %b %H:%M %Z").to_string(),
    }));
    ctx.insert("show", &show_header(state, b.show_id, None).await?);
    ctx.insert("ticket", &e_ticket(state, &b.code, &b.state)?);
    ctx.insert("notice", &notice);
    page(state, req, "booking.html", ctx, StatusCode::OK)
}

async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let result = async {
        let form = parse_form(&body, &req)?;
        let (code, email) = state
            .guarded_lookup(&req, async {
                let (code, email) = writes::booking_key(&path, form.get("email").unwrap_or(""))?;
                writes::cancel(&state, code.clone(), email.clone(), Origin::Here).await?;
                Ok((code, email))
            })
            .await?;
        booking_page(&state, &req, code, email, Some("Your booking was cancelled; its seats are free again.")).await
    };
    respond(&state, result.await)
}

/// Any other path: the not-found page (JSON under /api is answered by the API scope).
pub async fn not_found(state: web::Data<AppState>) -> HttpResponse {
    state.error_page(&WebError::NotFound("There is nothing at this address.".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_dates_are_calendar_days_a_database_holds() {
        assert_eq!(listing_date("2030-01-31").unwrap(), NaiveDate::from_ymd_opt(2030, 1, 31).unwrap());
        // "-0001-01-01" reached diesel, which refuses to send a negative year: a 500.
        for bad in ["-0001-01-01", "0999-12-31", "10000-01-01", "+262143-12-31", "2024-02-30", "2024-01-01x", ""] {
            assert!(matches!(listing_date(bad), Err(WebError::BadRequest(_))), "{bad}");
        }
        let long = "9".repeat(10_000);
        assert!(listing_date(&long).unwrap_err().to_string().len() < 60, "the error does not echo it all");
    }
}

/// The listing's `?date=` takes any text: a date a MySQL `DATE` holds, or a 400 with a
/// short message. Cases per run: `CASES`.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use actix_web::ResponseError;
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_date_text_is_a_storable_date_or_a_400(
            raw in prop_oneof![text(), "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}"]
        ) {
            match listing_date(&raw) {
                Ok(d) => {
                    prop_assert!((1000..=9999).contains(&d.year()));
                    prop_assert_eq!(d.format("%Y-%m-%d").to_string().parse::<NaiveDate>(), Ok(d));
                }
                Err(e) => {
                    prop_assert_eq!(e.status_code(), StatusCode::BAD_REQUEST);
                    prop_assert!(e.to_string().chars().count() < 60);
                }
            }
        }
    }
}
