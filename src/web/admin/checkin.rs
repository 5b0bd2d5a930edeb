//! Check-in at the door: `/admin/checkin` (a page a scanner types into) and
//! `POST /admin/api/checkin` / `POST /api/admin/checkin` `{"ticket": token}`.
//!
//! The token's signature is checked here, on whatever node the scan reached, with the
//! ticket key alone: a forged ticket is refused without asking anybody. A genuine one is
//! admitted by the master (a follower passes it on): one check-in at a time there, so of
//! two scans of the same ticket exactly one admits; the admission is a log entry, so every
//! node knows it and the next scan anywhere answers "already admitted".
use super::super::error::WebError;
use super::super::form::FormData;
use super::super::{csrf, AppState};
use super::{ask_master, master_elsewhere, AdminSession};
use crate::db::admissions::{self, AdmissionRow};
use crate::db::catalog;
use crate::db::models::{booking_state, split_seats, Booking};
use crate::db::orders::find_booking;
use crate::domain::BookingCode;
use crate::wal::change::{Admission, Change};
use crate::wal::writer::Outcome;
use crate::wal::Origin;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tera::Context;

/// The page and its API; `/api/admin/checkin` is routed in the API's scope.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/checkin", web::get().to(page))
        .route("/admin/checkin", web::post().to(page_scan))
        .route("/admin/api/checkin", web::post().to(api_scan));
}

/// A scan's answer for a genuine, confirmed booking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckinOutcome {
    /// True for the scan that let it in; false for every scan after.
    pub first: bool,
    pub code: String,
    pub show_id: i64,
    pub seats: Vec<String>,
    pub name: String,
    /// When it was admitted (UTC) and through which node.
    pub at: NaiveDateTime,
    pub node: u64,
}

/// What the door does with a booking, from what this node's data says about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Admit,
    AlreadyAdmitted(AdmissionRow),
}

/// The rule of the door: an unknown or cancelled booking is refused; a confirmed one is let
/// in once, and every scan after says when and where it was.
pub fn decide(booking: Option<&Booking>, admission: Option<&AdmissionRow>) -> Result<Decision, WebError> {
    let Some(b) = booking else {
        return Err(WebError::NotFound("refused: no booking has this ticket".into()));
    };
    if b.state != booking_state::CONFIRMED {
        return Err(WebError::Gone("refused: this booking was cancelled".into()));
    }
    Ok(match admission {
        Some(a) => Decision::AlreadyAdmitted(a.clone()),
        None => Decision::Admit,
    })
}

/// Admits booking `code` (its ticket already verified), on the master; a follower passes it
/// on. `origin` is the node the scan came through.
pub async fn admit(state: &AppState, code: BookingCode, origin: Origin) -> Result<CheckinOutcome, WebError> {
    if let Some(master) = master_elsewhere(state)? {
        return ask_master(state, &master, "/internal/admin/checkin", json!({ "code": code.as_str() })).await;
    }
    // One check-in at a time: the read and the write below decide together.
    let _turn = state.checkins.lock().await;
    let c = code.to_string();
    let (booking, admission) =
        state.db.run(move |conn| Ok((find_booking(conn, &c)?, admissions::find(conn, &c)?))).await?;
    let decision = decide(booking.as_ref(), admission.as_ref())?;
    let b = booking.expect("decide refuses a missing booking");
    let outcome = |first, at, node| CheckinOutcome {
        first,
        code: b.code.clone(),
        show_id: b.show_id,
        seats: split_seats(&b.seats),
        name: b.name.clone(),
        at,
        node,
    };
    match decision {
        Decision::AlreadyAdmitted(a) => Ok(outcome(false, a.admitted_at, a.node.max(0) as u64)),
        Decision::Admit => {
            let change = Change::Admission(Admission { code: b.code.clone(), show_id: b.show_id, at: now() });
            match state.writer.append_from(change, origin).await {
                Outcome::Committed(rec) => {
                    log::info!("booking {} admitted through node {}", b.code, rec.origin);
                    Ok(outcome(true, rec_at(&rec.change), rec.origin))
                }
                Outcome::Failed(e) => {
                    Err(WebError::Unavailable(format!("the admission could not be recorded ({e}); scan again")))
                }
                Outcome::Unknown(..) => Err(WebError::Unavailable(
                    "the cluster has not confirmed this admission yet; scan again in a few seconds".into(),
                )),
            }
        }
    }
}

fn now() -> NaiveDateTime {
    // Whole seconds: what the table keeps.
    let t = Utc::now().naive_utc();
    t - chrono::Duration::nanoseconds(t.and_utc().timestamp_subsec_nanos() as i64)
}

fn rec_at(change: &Change) -> NaiveDateTime {
    match change {
        Change::Admission(a) => a.at,
        _ => now(),
    }
}

/// The body of a scan from the API.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanRequest {
    ticket: String,
}

/// Verifies the token and admits its booking; the answer as the page and the API show it.
async fn scan(state: &AppState, raw: &str) -> Result<(StatusCode, Value), WebError> {
    let code = state.tickets.verify(raw)?;
    let outcome = admit(state, code, Origin::Here).await?;
    let show_id = outcome.show_id;
    let details = state.db.run(move |c| catalog::show_details(c, show_id)).await?;
    let tz: chrono_tz::Tz = details.as_ref().and_then(|(_, _, t)| t.timezone.parse().ok()).unwrap_or(chrono_tz::UTC);
    let at = outcome.at.and_utc().with_timezone(&tz).format("%H:%M").to_string();
    let seats = outcome.seats.join(", ");
    let (status, result, message) = if outcome.first {
        (StatusCode::OK, "admitted", format!("Admit {}: {seats}", outcome.seats.len()))
    } else {
        (StatusCode::CONFLICT, "already_admitted", format!("already admitted at {at} through node {}", outcome.node))
    };
    let show = details.map(|(s, m, t)| {
        json!({
            "id": s.id, "movie_title": m.title, "theater_name": t.name,
            "date": s.local_date.to_string(), "time": s.starts_at_local.format("%H:%M").to_string(),
        })
    });
    Ok((
        status,
        json!({
            "result": result, "admitted": outcome.first, "message": message, "code": outcome.code,
            "seats": outcome.seats, "name": outcome.name, "at": at, "node": outcome.node, "show": show,
        }),
    ))
}

/// `{"ticket": token}`: 200 admitted (which seats), 409 already admitted (when, which
/// node), 400 not a ticket, 422 forged, 410 cancelled, 404 no such booking. The CSRF token
/// comes in the `X-CSRF-Token` header.
pub async fn api_scan(
    _: AdminSession,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    csrf::verify_header(&req)?;
    let scan_req: ScanRequest = serde_json::from_slice(&body)
        .map_err(|_| WebError::BadRequest("expected a JSON body {\"ticket\": \"...\"}".into()))?;
    let (status, answer) = scan(&state, &scan_req.ticket).await?;
    Ok(HttpResponse::build(status).insert_header(("Cache-Control", "no-store")).json(answer))
}

async fn page(_: AdminSession, state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    render(&state, &req, None, StatusCode::OK)
}

/// The page's form (a scanner types the token and Enter; no script needed).
async fn page_scan(_: AdminSession, state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let result = async {
        let form = FormData::parse(&body)?;
        csrf::verify(&req, form.get(csrf::FIELD))?;
        scan(&state, form.get("ticket").unwrap_or("")).await
    };
    match result.await {
        Ok((status, answer)) => render(&state, &req, Some(answer), status),
        Err(e @ (WebError::Internal(_) | WebError::Forbidden(_))) => state.error_page(&e),
        Err(e) => {
            use actix_web::ResponseError;
            let status = e.status_code();
            render(
                &state,
                &req,
                Some(json!({"result": "refused", "admitted": false, "message": e.to_string()})),
                status,
            )
        }
    }
}

fn render(state: &AppState, req: &HttpRequest, answer: Option<Value>, status: StatusCode) -> HttpResponse {
    let mut ctx = Context::new();
    ctx.insert("answer", &answer);
    crate::web::pages::respond(state, crate::web::pages::page(state, req, "admin/checkin.html", ctx, status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;

    fn booking(state: &str) -> Booking {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc();
        Booking {
            code: "ABCD2345".into(),
            show_id: 3,
            hold_id: "3-x".into(),
            name: "Ann".into(),
            email: "ann@example.com".into(),
            seats: "B3,B4".into(),
            total_cents: 2500,
            state: state.into(),
            created_at: t,
            cancelled_at: None,
        }
    }

    #[test]
    fn a_confirmed_booking_is_admitted_once_then_said_to_be_in() {
        let b = booking(booking_state::CONFIRMED);
        assert_eq!(decide(Some(&b), None).unwrap(), Decision::Admit);
        let a = AdmissionRow {
            booking_code: b.code.clone(),
            show_id: 3,
            admitted_at: b.created_at + chrono::Duration::hours(2),
            node: 2,
        };
        assert_eq!(decide(Some(&b), Some(&a)).unwrap(), Decision::AlreadyAdmitted(a));
    }

    #[test]
    fn a_cancelled_or_unknown_booking_is_refused() {
        let cancelled = decide(Some(&booking(booking_state::CANCELLED)), None).unwrap_err();
        assert_eq!(cancelled.status_code(), StatusCode::GONE);
        assert!(cancelled.to_string().contains("cancelled"));
        assert_eq!(decide(None, None).unwrap_err().status_code(), StatusCode::NOT_FOUND);
    }
}
