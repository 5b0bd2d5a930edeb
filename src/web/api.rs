//! The JSON API: a contract used by the site's scripts, the benchmark, the tests and
//! the other nodes.
use super::error::WebError;
use super::writes;
use super::AppState;
use crate::actors::show::{GetHold, GetSeatMap, SeatPick};
use crate::db::orders::find_booking;
use crate::domain::{BestRequest, CustomerName, Email, HoldId, IdempotencyKey, SeatSelection, ShowId};
use crate::wal::Origin;
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
            .route("/holds/{hold_id}", web::get().to(get_hold))
            .route("/holds/{hold_id}/confirm", web::post().to(confirm_hold))
            .route("/holds/{hold_id}/release", web::post().to(release_hold))
            .route("/bookings/{code}", web::get().to(get_booking))
            .route("/bookings/{code}/cancel", web::post().to(cancel_booking))
            .route("/stats", web::get().to(stats))
            .route("/cluster", web::get().to(super::internal::cluster))
            // Check-in at the door (an admin session; also at /admin/api/checkin).
            .route("/admin/checkin", web::post().to(super::admin::checkin::api_scan))
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
    Ok(HttpResponse::Ok().json(&*view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    #[serde(default)]
    seats: Option<Vec<String>>,
    /// "Find me N seats" instead of `seats`.
    #[serde(default)]
    best: Option<i64>,
    #[serde(default)]
    category: Option<String>,
    /// The customer needs a wheelchair space (the only way to hold one).
    #[serde(default)]
    wheelchair: bool,
}

async fn place_hold(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Json<HoldBody>,
) -> Result<HttpResponse, WebError> {
    let body = body.into_inner();
    let pick = match (body.best, body.seats) {
        (Some(n), None) => SeatPick::Best(BestRequest::parse(n, body.category.as_deref())?),
        (None, Some(seats)) if body.category.is_none() => SeatPick::Seats(SeatSelection::parse(&seats)?),
        _ => {
            return Err(WebError::BadRequest(
                "give either \"seats\" or \"best\" (with an optional \"category\")".into(),
            ))
        }
    };
    let key = idempotency_key(&req)?;
    let client = super::client::client(&state, &req);
    let hold = writes::HoldRequest { pick, wheelchair: body.wheelchair, key, client };
    let receipt = writes::place_hold(&state, ShowId(path.into_inner()), hold, Origin::Here).await?;
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
    let receipt = writes::confirm(&state, hold, name, email, Origin::Here).await?;
    let mut answer = serde_json::to_value(&receipt).map_err(|e| WebError::Internal(e.to_string()))?;
    answer["ticket"] = serde_json::json!(e_ticket(&state, &receipt.code, &receipt.state));
    Ok(HttpResponse::Created().json(answer))
}

/// The e-ticket's signed token (what its QR code holds) of a confirmed booking; None for a
/// cancelled one.
fn e_ticket(state: &AppState, code: &str, current: &str) -> Option<String> {
    if current != crate::db::models::booking_state::CONFIRMED {
        return None;
    }
    crate::domain::BookingCode::parse(code).ok().map(|c| state.tickets.sign(&c).to_string())
}

async fn get_hold(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, WebError> {
    let hold = HoldId::parse(&path)?;
    let view = writes::read_own_write(&state, || async {
        Ok(state.shows.get(hold.show()).send(GetHold { hold: hold.clone() }).await??)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn release_hold(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, WebError> {
    let hold = HoldId::parse(&path)?;
    writes::release(&state, hold, Origin::Here).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "released": true })))
}

#[derive(Deserialize)]
struct EmailQuery {
    email: String,
}

async fn get_booking(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<EmailQuery>,
) -> Result<HttpResponse, WebError> {
    state.guarded_lookup(&req, find_for_api(&state, &path, &query.email)).await
}

async fn find_for_api(state: &AppState, raw_code: &str, raw_email: &str) -> Result<HttpResponse, WebError> {
    let (code, email) = writes::booking_key(raw_code, raw_email)?;
    let booking = writes::read_own_write(state, || async {
        let c = code.to_string();
        let b = state.db.run(move |conn| find_booking(conn, &c)).await?;
        b.ok_or_else(|| WebError::NotFound("no booking with this code and email".into()))
    })
    .await
    .ok();
    match booking.filter(|b| b.email == email.as_str()) {
        Some(b) => Ok(HttpResponse::Ok().json(serde_json::json!({
            "code": b.code, "show_id": b.show_id, "name": b.name, "email": b.email,
            "seats": crate::db::models::split_seats(&b.seats), "total_cents": b.total_cents,
            "state": b.state, "created_at": b.created_at.and_utc(), "ticket": e_ticket(state, &b.code, &b.state),
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
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CancelBody>,
) -> Result<HttpResponse, WebError> {
    let receipt = state
        .guarded_lookup(&req, async {
            let (code, email) = writes::booking_key(&path, &body.email)?;
            writes::cancel(&state, code, email, Origin::Here).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(receipt))
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

/// The JSON bodies as the handlers read them: any bytes or JSON value is the body, or a
/// 400 through [`json_error`]; a body that parses meets the domain parsers, whose refusals
/// are 4xx. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::{broken_json, bytes, json_with_keys};
    use actix_web::ResponseError;
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;

    pub const CASES: u32 = 500;
    const LIMIT: usize = 64 * 1024;

    /// What `web::Json` does with a body: serde_json, then `json_error` for a refusal.
    fn read<T: DeserializeOwned>(body: &[u8]) -> Result<T, u16> {
        serde_json::from_slice(body)
            .map_err(|e| json_error(JsonPayloadError::Deserialize(e), LIMIT).as_response_error().status_code().as_u16())
    }

    fn refused(e: impl Into<WebError>) -> u16 {
        e.into().status_code().as_u16()
    }

    const KEYS: &[&str] = &["seats", "name", "email"];

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            bytes(),
            json_with_keys(KEYS).prop_map(|v| v.to_string().into_bytes()),
            broken_json(json_with_keys(KEYS)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_hold_body_is_seats_or_a_4xx(body in body()) {
            match read::<HoldBody>(&body) {
                Ok(b) => {
                    if let Err(e) = SeatSelection::parse(b.seats.as_deref().unwrap_or_default()) {
                        prop_assert_eq!(refused(e), 422);
                    }
                }
                Err(status) => prop_assert_eq!(status, 400),
            }
        }

        #[test]
        fn any_confirm_body_is_a_name_and_email_or_a_4xx(body in body()) {
            match read::<ConfirmBody>(&body) {
                Ok(b) => {
                    for e in [CustomerName::parse(&b.name).err(), Email::parse(&b.email).err()].into_iter().flatten() {
                        prop_assert_eq!(refused(e), 422);
                    }
                }
                Err(status) => prop_assert_eq!(status, 400),
            }
        }

        #[test]
        fn any_cancel_body_is_an_email_or_a_4xx(body in body(), code in "[A-Za-z0-9]{0,10}") {
            match read::<CancelBody>(&body) {
                Ok(b) => {
                    if let Err(e) = writes::booking_key(&code, &b.email) {
                        prop_assert_eq!(refused(e), 404);
                    }
                }
                Err(status) => prop_assert_eq!(status, 400),
            }
        }
    }

    #[test]
    fn deep_nesting_is_a_400_not_a_stack_overflow() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(read::<HoldBody>(body.as_bytes()).err(), Some(400));
        let body = format!("{}1{}", "{\"seats\":".repeat(100_000), "}".repeat(100_000));
        assert_eq!(read::<HoldBody>(body.as_bytes()).err(), Some(400));
    }
}
