//! Where a write goes. On the master it is a message to the show's actor; on a follower it
//! is passed on to the master (in a batch, see `forwarder`) and the answer relayed. API and
//! page handlers both write through here, so the rule lives in one place.
use super::error::WebError;
use super::forwarder::Forward;
use super::AppState;
use crate::actors::error::BookingError;
use crate::actors::lamport::Tick;
use crate::actors::show::{BookingReceipt, CancelBooking, ConfirmHold, HoldReceipt, PlaceHold, ReleaseHold, SeatPick};
use crate::cluster::messages::{BestWire, ForwardedWrite, WriteAnswer, WriteOp};
use crate::cluster::state::Route;
use crate::cluster::NodeId;
use crate::db::orders::find_booking;
use crate::domain::{
    BestRequest, BookingCode, Client, CustomerName, Email, HoldId, IdempotencyKey, SeatSelection, ShowId,
};
use crate::wal::Origin;
use actix::MailboxError;
use futures::channel::oneshot;
use std::time::Duration;

/// Whether this write goes to the master (this node is a follower) rather than to a local
/// show actor. A write that was already passed on here (`origin` is another node) is
/// never passed on again.
fn goes_to_master(state: &AppState, origin: Origin) -> Result<bool, WebError> {
    match state.cluster.route() {
        Route::Local => Ok(false),
        Route::Forward(_) if origin == Origin::Here => Ok(true),
        _ => Err(WebError::Unavailable(
            "no master is available right now (an election may be under way); try again in a few seconds".into(),
        )),
    }
}

/// Counts a write a local show actor decided (`op`: hold, confirm, release, cancel) by
/// its outcome, and hands the result back.
fn counted<T>(
    state: &AppState,
    op: &'static str,
    result: Result<Result<T, BookingError>, MailboxError>,
) -> Result<Result<T, BookingError>, MailboxError> {
    let outcome = match &result {
        Ok(Ok(_)) => "ok",
        Ok(Err(e)) => e.kind(),
        Err(_) => "actor_stopped",
    };
    state.metrics.seat_write(op, outcome);
    result
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
/// The write is an event on this node: it gets a tick of this node's clock, and goes with
/// that time so that the master logs it after it.
///
/// [`WriteForwarder`]: super::forwarder::WriteForwarder
async fn forward(state: &AppState, write: WriteOp) -> Result<WriteAnswer, WebError> {
    let lamport = state
        .rpc
        .clock
        .send(Tick { events: 1 })
        .await
        .map_err(|_| WebError::Internal("this node's Lamport clock has stopped".into()))?;
    let write = ForwardedWrite { origin: state.cluster.node_id, lamport, write };
    let (reply, answer) = oneshot::channel();
    state.forwarder.do_send(Forward { write, reply });
    match answer.await {
        Ok(Ok(WriteAnswer::Refused(refusal))) => Err(refusal.into()),
        Ok(other) => other,
        Err(_) => Err(WebError::Unavailable("this node's forwarder has stopped; try again".into())),
    }
}

/// A refusal carrying `e` to the node that forwarded the write.
fn refusal(e: WebError) -> WriteAnswer {
    WriteAnswer::Refused(e.into())
}

fn unexpected(answer: WriteAnswer) -> WebError {
    WebError::Internal(format!("the master answered a different write: {answer:?}"))
}

/// Where a forwarded write was made, as its batch claims: the node that sent the batch
/// (`sender`, checked by its signature), at a time before the batch's own time (`sent_at`),
/// since the write happened there before it was sent.
pub fn forwarded_origin(sender: NodeId, sent_at: u64, write: &ForwardedWrite) -> Result<Origin, WebError> {
    if write.origin != sender {
        return Err(WebError::BadRequest(format!(
            "a forwarded write must come from the node it was made on (node {}, sent by node {sender})",
            write.origin
        )));
    }
    if write.lamport == 0 || write.lamport >= sent_at {
        return Err(WebError::BadRequest(format!(
            "a forwarded write's Lamport time ({}) must be after 0 and before its batch's ({sent_at})",
            write.lamport
        )));
    }
    Ok(Origin::Forwarded { node: write.origin, lamport: write.lamport })
}

/// Runs a write that `sender` passed on in a batch sent at its Lamport time `sent_at` (on
/// the master). Its fields are parsed here as the public API parses them; whatever happens
/// is an answer, never a failed batch.
pub async fn run_forwarded(state: &AppState, sender: NodeId, sent_at: u64, write: ForwardedWrite) -> WriteAnswer {
    let origin = match forwarded_origin(sender, sent_at, &write) {
        Ok(o) => o,
        Err(e) => return refusal(e),
    };
    let result = match write.write {
        WriteOp::Hold { show_id, seats, idempotency_key, client, best, wheelchair } => {
            async {
                let pick = match best {
                    Some(b) => SeatPick::Best(BestRequest::parse(b.count, b.category.as_deref())?),
                    None => SeatPick::Seats(SeatSelection::parse(&seats)?),
                };
                let key = idempotency_key.as_deref().map(IdempotencyKey::parse).transpose()?;
                let client = client.checked()?;
                let hold = HoldRequest { pick, wheelchair, key, client };
                place_hold(state, ShowId(show_id), hold, origin).await.map(WriteAnswer::Held)
            }
            .await
        }
        WriteOp::Confirm { hold_id, name, email } => {
            async {
                let (hold, name, email) =
                    (HoldId::parse(&hold_id)?, CustomerName::parse(&name)?, Email::parse(&email)?);
                confirm(state, hold, name, email, origin).await.map(WriteAnswer::Booked)
            }
            .await
        }
        WriteOp::Release { hold_id } => {
            async { release(state, HoldId::parse(&hold_id)?, origin).await.map(|()| WriteAnswer::Released) }.await
        }
        WriteOp::Cancel { code, email } => {
            async {
                let (code, email) = booking_key(&code, &email)?;
                cancel(state, code, email, origin).await.map(WriteAnswer::Booked)
            }
            .await
        }
    };
    result.unwrap_or_else(refusal)
}

/// A hold as the web edge parsed it.
pub struct HoldRequest {
    pub pick: SeatPick,
    pub wheelchair: bool,
    pub key: Option<IdempotencyKey>,
    pub client: Client,
}

pub async fn place_hold(
    state: &AppState,
    show: ShowId,
    hold: HoldRequest,
    origin: Origin,
) -> Result<HoldReceipt, WebError> {
    let HoldRequest { pick, wheelchair, key, client } = hold;
    match goes_to_master(state, origin)? {
        false => {
            let result = state.shows.get(show).send(PlaceHold { pick, wheelchair, key, origin, client }).await;
            Ok(counted(state, "hold", result)??)
        }
        true => {
            let (seats, best) = match pick {
                SeatPick::Seats(s) => (s.seats().iter().map(|s| s.to_string()).collect(), None),
                SeatPick::Best(b) => {
                    (vec![], Some(BestWire { count: b.count() as i64, category: b.category().map(String::from) }))
                }
            };
            let idempotency_key = key.map(|k| k.as_str().to_string());
            let write = WriteOp::Hold { show_id: show.0, seats, idempotency_key, client, best, wheelchair };
            match forward(state, write).await? {
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
    origin: Origin,
) -> Result<BookingReceipt, WebError> {
    match goes_to_master(state, origin)? {
        false => {
            let result = state.shows.get(hold.show()).send(ConfirmHold { hold, name, email, origin }).await;
            Ok(counted(state, "confirm", result)??)
        }
        true => {
            let write = WriteOp::Confirm {
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

pub async fn release(state: &AppState, hold: HoldId, origin: Origin) -> Result<(), WebError> {
    match goes_to_master(state, origin)? {
        false => {
            let result = state.shows.get(hold.show()).send(ReleaseHold { hold, origin }).await;
            Ok(counted(state, "release", result)??)
        }
        true => match forward(state, WriteOp::Release { hold_id: hold.to_string() }).await? {
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
    origin: Origin,
) -> Result<BookingReceipt, WebError> {
    match goes_to_master(state, origin)? {
        false => {
            let c = code.to_string();
            let booking = state.db.run(move |conn| find_booking(conn, &c)).await?;
            let Some(b) = booking.filter(|b| b.email == email.as_str()) else {
                state.metrics.seat_write("cancel", BookingError::BookingNotFound.kind());
                return Err(WebError::NotFound("no booking with this code and email".into()));
            };
            let result = state.shows.get(ShowId(b.show_id)).send(CancelBooking { code, email, origin }).await;
            Ok(counted(state, "cancel", result)??)
        }
        true => {
            let write = WriteOp::Cancel { code: code.to_string(), email: email.as_str().to_string() };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hold_from(origin: NodeId, lamport: u64) -> ForwardedWrite {
        ForwardedWrite { origin, lamport, write: WriteOp::Release { hold_id: "1-x".into() } }
    }

    #[test]
    fn a_forwarded_write_was_made_on_its_sender_before_its_batch_was_sent() {
        assert_eq!(forwarded_origin(2, 50, &hold_from(2, 49)).unwrap(), Origin::Forwarded { node: 2, lamport: 49 });
        assert_eq!(forwarded_origin(2, 50, &hold_from(2, 1)).unwrap(), Origin::Forwarded { node: 2, lamport: 1 });
    }

    #[test]
    fn a_forwarded_write_claiming_another_node_or_a_later_time_is_refused() {
        for (sender, sent_at, write) in [
            (2, 50, hold_from(3, 10)),
            (2, 50, hold_from(2, 50)),
            (2, 50, hold_from(2, u64::MAX)),
            (2, 50, hold_from(2, 0)),
        ] {
            let refused = forwarded_origin(sender, sent_at, &write);
            assert!(matches!(refused, Err(WebError::BadRequest(_))), "{write:?}: {refused:?}");
        }
    }

    #[test]
    fn a_forwarded_write_reads_only_its_own_fields() {
        let json = |v: serde_json::Value| serde_json::from_value::<ForwardedWrite>(v);
        let good = serde_json::json!({"origin": 2, "lamport": 9, "write": {"op": "release", "hold_id": "1-x"}});
        assert_eq!(json(good).unwrap(), hold_from(2, 9));
        for bad in [
            serde_json::json!({"origin": 2, "lamport": 9, "write": {"op": "release", "hold_id": "1-x"}, "x": 1}),
            serde_json::json!({"origin": 2, "lamport": 9, "write": {"op": "release", "hold_id": "1-x", "x": 1}}),
            serde_json::json!({"origin": 2, "write": {"op": "release", "hold_id": "1-x"}}),
            serde_json::json!({"origin": 2, "lamport": -1, "write": {"op": "release", "hold_id": "1-x"}}),
            serde_json::json!({"op": "release", "hold_id": "1-x"}),
        ] {
            assert!(json(bad.clone()).is_err(), "{bad}");
        }
    }
}
