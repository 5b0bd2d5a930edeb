//! Live seat maps: `GET /shows/{id}/live` is a websocket that sends the show's seat map as
//! it is now, then every change to it, as JSON text frames:
//!
//! ```text
//! {"type":"snapshot","version":12,"seats":[["A1","free"],["A2","held"],...]}
//! {"type":"change","version":13,"seats":[["C7","held"]]}
//! ```
//!
//! A change carries the new state of every seat it touched, and versions only grow, so a
//! client drops any change whose version it has already seen. Every connection starts with
//! a snapshot, and a watcher that falls behind (its queue overflowed) gets a fresh one, so a
//! reconnecting page resumes without a reload and without missing a change.
//!
//! What a client sends is ignored except close and pong (a ping is answered); frames are
//! bounded in size. The server pings about every [`PING_EVERY`] and closes a connection it has
//! not heard from for [`IDLE_LIMIT`], or that stops reading for [`SEND_TIMEOUT`].
use super::error::WebError;
use super::AppState;
use crate::actors::show::{SeatChange, SeatMapView, Subscribe};
use crate::actors::ShowDirectory;
use crate::domain::ShowId;
use crate::metrics::Metrics;
use actix_rt::time::{interval_at, timeout, Instant};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, ProtocolError, Session};
use bytestring::ByteString;
use futures::{pin_mut, select_biased, FutureExt};
use rand::Rng;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// How often the server pings an open socket (often enough to keep a proxy's idle timeout,
/// such as nginx's 60 s, from closing it).
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A socket the client has not answered for this long is closed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(45);
/// A client that does not take a frame within this long is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest frame a client may send (it has nothing to say but close and pong).
pub const MAX_CLIENT_FRAME: usize = 1024;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/shows/{id}/live", web::get().to(live));
}

type Changes = broadcast::Receiver<Arc<SeatChange>>;

/// Subscribes to the show first, so an unknown show is a 404 and no upgrade happens.
async fn live(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let id: i64 = path.parse().map_err(|_| WebError::NotFound("no such show".into()))?;
    let show = ShowId(id);
    let (view, changes) = subscribe(&state.shows, show).await?;
    let (response, session, messages) = actix_ws::handle(&req, body)?;
    let messages = messages.max_frame_size(MAX_CLIENT_FRAME);
    let metrics = state.metrics.clone();
    actix_web::rt::spawn(async move {
        metrics.websocket_opened();
        watch(state.shows.clone(), show, session, messages, view, changes, &metrics).await;
        metrics.websocket_closed();
    });
    Ok(response)
}

async fn subscribe(shows: &ShowDirectory, show: ShowId) -> Result<(Arc<SeatMapView>, Changes), WebError> {
    Ok(shows.get(show).send(Subscribe).await??)
}

/// One text frame, as the page's script reads it.
#[derive(Serialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    version: u64,
    seats: Vec<(&'a str, &'a str)>,
}

pub fn snapshot_json(view: &SeatMapView) -> String {
    let seats = view.rows.iter().flat_map(|r| r.seats.iter().map(|s| (s.seat.as_str(), s.state))).collect();
    serde_json::to_string(&Frame { kind: "snapshot", version: view.version, seats }).unwrap_or_default()
}

pub fn change_json(change: &SeatChange) -> String {
    let seats = change.seats.iter().map(|(seat, state)| (seat.as_str(), *state)).collect();
    serde_json::to_string(&Frame { kind: "change", version: change.version, seats }).unwrap_or_default()
}

/// The change's frame: serialized by the first watcher to send it, shared by the others
/// (a clone is a reference count, not a copy).
fn change_frame(change: &SeatChange) -> ByteString {
    change.frame.get_or_init(|| change_json(change).into()).clone()
}

/// Sends a frame, or gives up on a client that does not read.
async fn send(session: &mut Session, text: impl Into<ByteString>) -> bool {
    matches!(timeout(SEND_TIMEOUT, session.text(text)).await, Ok(Ok(())))
}

enum Event {
    Client(Option<Result<Message, ProtocolError>>),
    Change(Result<Arc<SeatChange>, RecvError>),
    Tick,
}

/// Runs one socket until either side ends it.
async fn watch(
    shows: Arc<ShowDirectory>,
    show: ShowId,
    mut session: Session,
    mut messages: MessageStream,
    first: Arc<SeatMapView>,
    mut changes: Changes,
    metrics: &Metrics,
) {
    let close = async {
        if !send(&mut session, snapshot_json(&first)).await {
            return None;
        }
        drop(first);
        // The first ping comes at a random point of the next interval or so, so that pages
        // that connected together (after a restart, say) are not all pinged at once.
        let first = rand::thread_rng().gen_range(PING_EVERY / 2..PING_EVERY * 3 / 2);
        let mut ping = interval_at(Instant::now() + first, PING_EVERY);
        let mut last_heard = Instant::now();
        loop {
            let event = {
                let client = messages.recv().fuse();
                let change = changes.recv().fuse();
                let tick = ping.tick().fuse();
                pin_mut!(client, change, tick);
                select_biased! {
                    m = client => Event::Client(m),
                    c = change => Event::Change(c),
                    _ = tick => Event::Tick,
                }
            };
            match event {
                Event::Client(None) => return None,
                Event::Client(Some(Err(e))) => {
                    let code = match e {
                        ProtocolError::Overflow => CloseCode::Size,
                        _ => CloseCode::Protocol,
                    };
                    return Some(CloseReason { code, description: None });
                }
                Event::Client(Some(Ok(Message::Close(_)))) => return Some(CloseCode::Normal.into()),
                Event::Client(Some(Ok(Message::Ping(bytes)))) => {
                    last_heard = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return None;
                    }
                }
                // Pongs only prove the client is alive; anything else is ignored.
                Event::Client(Some(Ok(_))) => last_heard = Instant::now(),
                Event::Change(Ok(change)) => {
                    if !send(&mut session, change_frame(&change)).await {
                        return None;
                    }
                    metrics.fanout(change.made_at.elapsed());
                }
                Event::Change(Err(why)) => {
                    // Lagged: too slow to keep up, so start again from the map as it is now.
                    // Closed: the show's actor stopped; watch its successor, if the show
                    // still exists.
                    if let RecvError::Lagged(missed) = why {
                        log::debug!("show {show}: a live watcher missed {missed} changes; sending a snapshot");
                    }
                    match subscribe(&shows, show).await {
                        Ok((view, rx)) => {
                            changes = rx;
                            if !send(&mut session, snapshot_json(&view)).await {
                                return None;
                            }
                        }
                        Err(_) => return Some(CloseCode::Again.into()),
                    }
                }
                Event::Tick => {
                    if last_heard.elapsed() > IDLE_LIMIT {
                        return Some(CloseReason { code: CloseCode::Away, description: Some("idle".into()) });
                    }
                    if session.ping(b"").await.is_err() {
                        return None;
                    }
                }
            }
        }
    };
    let reason = close.await;
    let _ = timeout(SEND_TIMEOUT, session.close(reason)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::show::{RowView, SeatView};

    #[test]
    fn frames_have_the_documented_shape() {
        let view = SeatMapView {
            show_id: 1,
            version: 7,
            starts_at: chrono::Utc::now(),
            on_sale: true,
            free: 1,
            categories: vec![],
            rows: vec![RowView {
                label: "A".into(),
                seats: vec![
                    SeatView {
                        seat: "A1".into(),
                        number: 1,
                        state: "free",
                        category: "standard".into(),
                        kind: crate::domain::SeatKind::Standard,
                        space_before: 0,
                    },
                    SeatView {
                        seat: "A2".into(),
                        number: 2,
                        state: "held",
                        category: "standard".into(),
                        kind: crate::domain::SeatKind::Standard,
                        space_before: 0,
                    },
                ],
            }],
        };
        assert_eq!(snapshot_json(&view), r#"{"type":"snapshot","version":7,"seats":[["A1","free"],["A2","held"]]}"#);
        let change = SeatChange::new(1, 8, vec![("C7".into(), "booked")]);
        assert_eq!(change_json(&change), r#"{"type":"change","version":8,"seats":[["C7","booked"]]}"#);
        // Every watcher sends the same bytes, made once.
        let (a, b) = (change_frame(&change), change_frame(&change));
        assert_eq!(&*a, change_json(&change));
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr(), "one serialization, shared");
    }
}
