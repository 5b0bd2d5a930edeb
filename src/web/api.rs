//! The JSON API: a contract used by the site's scripts, the benchmark, the tests and
//! the other nodes.
use super::error::WebError;
use super::AppState;
use crate::actors::show::{CancelBooking, ConfirmHold, GetSeatMap, PlaceHold};
use crate::db::orders::find_booking;
use crate::domain::{BookingCode, CustomerName, Email, HoldId, IdempotencyKey, SeatSelection, ShowId};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::sync::atomic::Ordering;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api")
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e: PathError, _| WebError::NotFound(format!("not found: {e}")).into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e: QueryPayloadError, _| WebError::BadRequest(e.to_string()).into()),
            )
            .route("/shows/{id}/seats", web::get().to(seat_map))
            .route("/shows/{id}/holds", web::post().to(place_hold))
            .route("/holds/{hold_id}/confirm", web::post().to(confirm_hold))
            .route("/bookings/{code}", web::get().to(get_booking))
            .route("/bookings/{code}/cancel", web::post().to(cancel_booking))
            .route("/stats", web::get().to(stats))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(WebError::NotFound("no such API endpoint".into()))
            })),
    );
}

/// Maps body errors: too large → 413, anything else (not JSON, wrong shape) → 400.
pub fn json_error(e: JsonPayloadError, limit: usize) -> actix_web::Error {
    match e {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            WebError::TooLarge(limit).into()
        }
        JsonPayloadError::ContentType => {
            WebError::BadRequest("send the body as JSON (Content-Type: application/json)".into()).into()
        }
        other => WebError::BadRequest(format!("the body is not valid JSON for this request: {other}")).into(),
    }
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, WebError> {
    match req.headers().get("Idempotency-Key") {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| WebError::BadRequest("the Idempotency-Key must be ASCII".into()))?;
            Ok(Some(IdempotencyKey::parse(s)?))
        }
    }
}

async fn seat_map(state: web::Data<AppState>, path: web::Path<i64>) -> Result<HttpResponse, WebError> {
    let view = state.shows.get(ShowId(path.into_inner())).send(GetSeatMap).await??;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    seats: Vec<String>,
}

async fn place_hold(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Json<HoldBody>,
) -> Result<HttpResponse, WebError> {
    let seats = SeatSelection::parse(&body.seats)?;
    let key = idempotency_key(&req)?;
    let receipt = state.shows.get(ShowId(path.into_inner())).send(PlaceHold { seats, key }).await??;
    Ok(HttpResponse::Created().json(receipt))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    name: String,
    email: String,
}

async fn confirm_hold(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ConfirmBody>,
) -> Result<HttpResponse, WebError> {
    let hold = HoldId::parse(&path)?;
    let name = CustomerName::parse(&body.name)?;
    let email = Email::parse(&body.email)?;
    // Confirming is idempotent by hold id; a key is checked for shape only.
    idempotency_key(&req)?;
    let receipt = state.shows.get(hold.show()).send(ConfirmHold { hold, name, email }).await??;
    Ok(HttpResponse::Created().json(receipt))
}

#[derive(Deserialize)]
struct EmailQuery {
    email: String,
}

async fn get_booking(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<EmailQuery>,
) -> Result<HttpResponse, WebError> {
    let code = BookingCode::parse(&path)?;
    let email =
        Email::parse(&query.email).map_err(|_| WebError::NotFound("no booking with this code and email".into()))?;
    let c = code.to_string();
    let booking = state.db.run(move |conn| find_booking(conn, &c)).await?;
    match booking.filter(|b| b.email == email.as_str()) {
        Some(b) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "code": b.code, "show_id": b.show_id, "name": b.name, "email": b.email,
            "seats": crate::db::models::split_seats(&b.seats), "total_cents": b.total_cents,
            "state": b.state, "created_at": b.created_at.and_utc(),
        }))),
        None => Err(WebError::NotFound("no booking with this code and email".into())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    email: String,
}

async fn cancel_booking(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<CancelBody>,
) -> Result<HttpResponse, WebError> {
    let code = BookingCode::parse(&path)?;
    let email =
        Email::parse(&body.email).map_err(|_| WebError::NotFound("no booking with this code and email".into()))?;
    let receipt = cancel(&state, code, email).await?;
    Ok(HttpResponse::Ok().json(receipt))
}

/// Finds the booking's show, then asks that show's actor to cancel.
pub async fn cancel(
    state: &AppState,
    code: BookingCode,
    email: Email,
) -> Result<crate::actors::show::BookingReceipt, WebError> {
    let c = code.to_string();
    let booking = state.db.run(move |conn| find_booking(conn, &c)).await?;
    let Some(b) = booking.filter(|b| b.email == email.as_str()) else {
        return Err(WebError::NotFound("no booking with this code and email".into()));
    };
    Ok(state.shows.get(ShowId(b.show_id)).send(CancelBooking { code, email }).await??)
}

async fn stats(state: web::Data<AppState>) -> HttpResponse {
    let s = state.writer.stats();
    HttpResponse::Ok().json(serde_json::json!({
        "log_transactions": s.transactions.load(Ordering::Relaxed),
        "log_records": s.records.load(Ordering::Relaxed),
        "last_lsn": s.last_lsn.load(Ordering::SeqCst),
        "shows_loaded": state.shows.loaded().len(),
    }))
}
