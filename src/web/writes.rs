//! Where a write goes. On the master it is a message to the show's actor; on a follower it
//! is forwarded to the master's JSON API and the answer relayed. API and page handlers
//! both write through here, so the rule lives in one place.
use super::error::WebError;
use super::AppState;
use crate::actors::show::{BookingReceipt, CancelBooking, ConfirmHold, HoldReceipt, PlaceHold, ReleaseHold};
use crate::cluster::state::Route;
use crate::cluster::Peer;
use crate::db::orders::find_booking;
use crate::domain::{BookingCode, CustomerName, Email, HoldId, IdempotencyKey, SeatSelection, ShowId};
use actix_web::HttpRequest;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

/// Marks a write that a follower forwarded, so it is never forwarded twice.
pub const FORWARDED: &str = "X-Marquee-Forwarded";

pub fn is_forwarded(req: &HttpRequest) -> bool {
    req.headers().contains_key(FORWARDED)
}

thread_local! {
    static CLIENT: awc::Client = awc::Client::builder().timeout(Duration::from_secs(15)).disable_redirects().finish();
}

fn target(state: &AppState, forwarded: bool) -> Result<Option<Peer>, WebError> {
    match state.cluster.route() {
        Route::Local => Ok(None),
        Route::Forward(peer) if !forwarded => Ok(Some(peer)),
        _ => Err(WebError::Unavailable(
            "no master is available right now (an election may be under way); try again in a few seconds".into(),
        )),
    }
}

async fn forward<T: DeserializeOwned>(
    peer: &Peer,
    path: &str,
    body: &Value,
    key: Option<&IdempotencyKey>,
) -> Result<T, WebError> {
    let mut req = CLIENT.with(|c| c.post(format!("http://{}{}", peer.address, path))).insert_header((FORWARDED, "1"));
    if let Some(k) = key {
        req = req.insert_header(("Idempotency-Key", k.as_str().to_string()));
    }
    let mut res = req.send_json(body).await.map_err(|e| {
        WebError::Unavailable(format!(
            "the master did not answer ({e}); the outcome is unknown, retry with the same Idempotency-Key"
        ))
    })?;
    let status = res.status();
    let answer: Value = res.json().limit(1 << 20).await.unwrap_or(Value::Null);
    if status.is_success() {
        return serde_json::from_value(answer).map_err(|e| WebError::Internal(format!("the master's answer: {e}")));
    }
    let message = answer["error"].as_str().unwrap_or("the master refused the request").to_string();
    Err(match status.as_u16() {
        400 => WebError::BadRequest(message),
        403 => WebError::Forbidden(message),
        404 => WebError::NotFound(message),
        409 => {
            WebError::Conflict { message, taken: serde_json::from_value(answer["taken"].clone()).unwrap_or_default() }
        }
        410 => WebError::Gone(message),
        413 => WebError::TooLarge(0),
        422 => WebError::Unprocessable(message),
        503 => WebError::Unavailable(message),
        other => WebError::Internal(format!("the master answered {other}: {message}")),
    })
}

pub async fn place_hold(
    state: &AppState,
    show: ShowId,
    seats: SeatSelection,
    key: Option<IdempotencyKey>,
    forwarded: bool,
) -> Result<HoldReceipt, WebError> {
    match target(state, forwarded)? {
        None => Ok(state.shows.get(show).send(PlaceHold { seats, key }).await??),
        Some(peer) => {
            let labels: Vec<String> = seats.seats().iter().map(|s| s.to_string()).collect();
            forward(&peer, &format!("/api/shows/{show}/holds"), &json!({ "seats": labels }), key.as_ref()).await
        }
    }
}

pub async fn confirm(
    state: &AppState,
    hold: HoldId,
    name: CustomerName,
    email: Email,
    forwarded: bool,
) -> Result<BookingReceipt, WebError> {
    match target(state, forwarded)? {
        None => Ok(state.shows.get(hold.show()).send(ConfirmHold { hold, name, email }).await??),
        Some(peer) => {
            forward(
                &peer,
                &format!("/api/holds/{hold}/confirm"),
                &json!({"name": name.as_str(), "email": email.as_str()}),
                None,
            )
            .await
        }
    }
}

pub async fn release(state: &AppState, hold: HoldId, forwarded: bool) -> Result<(), WebError> {
    match target(state, forwarded)? {
        None => Ok(state.shows.get(hold.show()).send(ReleaseHold { hold }).await??),
        Some(peer) => {
            forward::<Value>(&peer, &format!("/api/holds/{hold}/release"), &json!({}), None).await.map(|_| ())
        }
    }
}

/// Cancels a booking: the email must be the booking's.
pub async fn cancel(
    state: &AppState,
    code: BookingCode,
    email: Email,
    forwarded: bool,
) -> Result<BookingReceipt, WebError> {
    match target(state, forwarded)? {
        None => {
            let c = code.to_string();
            let booking = state.db.run(move |conn| find_booking(conn, &c)).await?;
            let Some(b) = booking.filter(|b| b.email == email.as_str()) else {
                return Err(WebError::NotFound("no booking with this code and email".into()));
            };
            Ok(state.shows.get(ShowId(b.show_id)).send(CancelBooking { code, email }).await??)
        }
        Some(peer) => {
            forward(&peer, &format!("/api/bookings/{code}/cancel"), &json!({"email": email.as_str()}), None).await
        }
    }
}

/// Retries a local read for a short while on a follower: what the master acknowledged a
/// moment ago may still be on its way here.
pub async fn read_own_write<T, F, Fut>(state: &AppState, mut read: F) -> Result<T, WebError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, WebError>>,
{
    let mut tries = 0;
    loop {
        match read().await {
            Err(WebError::NotFound(_) | WebError::Gone(_))
                if tries < 20 && state.cluster.role() != crate::cluster::Role::Master =>
            {
                tries += 1;
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}
