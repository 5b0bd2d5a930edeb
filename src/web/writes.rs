//! Where a write goes. On the master it is a message to the show's actor; on a follower it
//! is passed on to the master (in a batch, see `forwarder`) and the answer relayed. API and
//! page handlers both write through here, so the rule lives in one place.
use super::error::WebError;
use super::forwarder::Forward;
use super::AppState;
use crate::actors::show::{BookingReceipt, CancelBooking, ConfirmHold, HoldReceipt, PlaceHold, ReleaseHold};
use crate::cluster::messages::{ForwardedWrite, WriteAnswer};
use crate::cluster::state::Route;
use crate::db::orders::find_booking;
use crate::domain::{BookingCode, CustomerName, Email, HoldId, IdempotencyKey, SeatSelection, ShowId};
use futures::channel::oneshot;
use std::time::Duration;

/// Whether this write goes to the master (this node is a follower) rather than to a local
/// show actor. A write that was already passed on here is never passed on again.
fn goes_to_master(state: &AppState, forwarded: bool) -> Result<bool, WebError> {
    match state.cluster.route() {
        Route::Local => Ok(false),
        Route::Forward(_) if !forwarded => Ok(true),
        _ => Err(WebError::Unavailable(
            "no master is available right now (an election may be under way); try again in a few seconds".into(),
        )),
    }
}

/// A booking's code and email as typed. A malformed one is answered like a code and email
/// that do not match: "no such booking" (404).
pub fn booking_key(code: &str, email: &str) -> Result<(BookingCode, Email), WebError> {
    let code = BookingCode::parse(code)?;
    let email = Email::parse(email).map_err(|_| WebError::NotFound("no booking with this code and email".into()))?;
    Ok((code, email))
}

/// Passes `write` on to the master (through this node's [`WriteForwarder`], which batches
/// it with the others waiting) and turns a refusal back into the error the master met.
///
/// [`WriteForwarder`]: super::forwarder::WriteForwarder
async fn forward(state: &AppState, write: ForwardedWrite) -> Result<WriteAnswer, WebError> {
    let (reply, answer) = oneshot::channel();
    state.forwarder.do_send(Forward { write, reply });
    match answer.await {
        Ok(Ok(WriteAnswer::Refused { status, message, taken })) => Err(refused(status, message, taken)),
        Ok(other) => other,
        Err(_) => Err(WebError::Unavailable("this node's forwarder has stopped; try again".into())),
    }
}

/// The error a refusal with `status` stands for.
fn refused(status: u16, message: String, taken: Vec<String>) -> WebError {
    match status {
        400 => WebError::BadRequest(message),
        403 => WebError::Forbidden(message),
        404 => WebError::NotFound(message),
        409 => WebError::Conflict { message, taken },
        410 => WebError::Gone(message),
        413 => WebError::TooLarge(0),
        422 => WebError::Unprocessable(message),
        503 => WebError::Unavailable(message),
        other => WebError::Internal(format!("the master answered {other}: {message}")),
    }
}

/// A refusal carrying `e` to the node that forwarded the write.
fn refusal(e: WebError) -> WriteAnswer {
    use actix_web::ResponseError;
    if let WebError::Internal(cause) = &e {
        log::error!("internal error in a forwarded write: {cause}");
    }
    let status = e.status_code().as_u16();
    let message = e.to_string();
    let taken = match e {
        WebError::Conflict { taken, .. } => taken,
        _ => Vec::new(),
    };
    WriteAnswer::Refused { status, message, taken }
}

fn unexpected(answer: WriteAnswer) -> WebError {
    WebError::Internal(format!("the master answered a different write: {answer:?}"))
}

/// Runs a write a follower passed on (on the master). Its fields are parsed here as the
/// public API parses them; whatever happens is an answer, never a failed batch.
pub async fn run_forwarded(state: &AppState, write: ForwardedWrite) -> WriteAnswer {
    let result = match write {
        ForwardedWrite::Hold { show_id, seats, idempotency_key } => {
            async {
                let seats = SeatSelection::parse(&seats)?;
                let key = idempotency_key.as_deref().map(IdempotencyKey::parse).transpose()?;
                place_hold(state, ShowId(show_id), seats, key, true).await.map(WriteAnswer::Held)
            }
            .await
        }
        ForwardedWrite::Confirm { hold_id, name, email } => {
            async {
                let (hold, name, email) =
                    (HoldId::parse(&hold_id)?, CustomerName::parse(&name)?, Email::parse(&email)?);
                confirm(state, hold, name, email, true).await.map(WriteAnswer::Booked)
            }
            .await
        }
        ForwardedWrite::Release { hold_id } => {
            async { release(state, HoldId::parse(&hold_id)?, true).await.map(|()| WriteAnswer::Released) }.await
        }
        ForwardedWrite::Cancel { code, email } => {
            async {
                let (code, email) = booking_key(&code, &email)?;
                cancel(state, code, email, true).await.map(WriteAnswer::Booked)
            }
            .await
        }
    };
    result.unwrap_or_else(refusal)
}

pub async fn place_hold(
    state: &AppState,
    show: ShowId,
    seats: SeatSelection,
    key: Option<IdempotencyKey>,
    forwarded: bool,
) -> Result<HoldReceipt, WebError> {
    match goes_to_master(state, forwarded)? {
        false => Ok(state.shows.get(show).send(PlaceHold { seats, key }).await??),
        true => {
            let seats = seats.seats().iter().map(|s| s.to_string()).collect();
            let idempotency_key = key.map(|k| k.as_str().to_string());
            match forward(state, ForwardedWrite::Hold { show_id: show.0, seats, idempotency_key }).await? {
                WriteAnswer::Held(receipt) => Ok(receipt),
                other => Err(unexpected(other)),
            }
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
    match goes_to_master(state, forwarded)? {
        false => Ok(state.shows.get(hold.show()).send(ConfirmHold { hold, name, email }).await??),
        true => {
            let write = ForwardedWrite::Confirm {
                hold_id: hold.to_string(),
                name: name.as_str().to_string(),
                email: email.as_str().to_string(),
            };
            match forward(state, write).await? {
                WriteAnswer::Booked(receipt) => Ok(receipt),
                other => Err(unexpected(other)),
            }
        }
    }
}

pub async fn release(state: &AppState, hold: HoldId, forwarded: bool) -> Result<(), WebError> {
    match goes_to_master(state, forwarded)? {
        false => Ok(state.shows.get(hold.show()).send(ReleaseHold { hold }).await??),
        true => match forward(state, ForwardedWrite::Release { hold_id: hold.to_string() }).await? {
            WriteAnswer::Released => Ok(()),
            other => Err(unexpected(other)),
        },
    }
}

/// Cancels a booking: the email must be the booking's.
pub async fn cancel(
    state: &AppState,
    code: BookingCode,
    email: Email,
    forwarded: bool,
) -> Result<BookingReceipt, WebError> {
    match goes_to_master(state, forwarded)? {
        false => {
            let c = code.to_string();
            let booking = state.db.run(move |conn| find_booking(conn, &c)).await?;
            let Some(b) = booking.filter(|b| b.email == email.as_str()) else {
                return Err(WebError::NotFound("no booking with this code and email".into()));
            };
            Ok(state.shows.get(ShowId(b.show_id)).send(CancelBooking { code, email }).await??)
        }
        true => {
            let write = ForwardedWrite::Cancel { code: code.to_string(), email: email.as_str().to_string() };
            match forward(state, write).await? {
                WriteAnswer::Booked(receipt) => Ok(receipt),
                other => Err(unexpected(other)),
            }
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
