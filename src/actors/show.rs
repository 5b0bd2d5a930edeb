//! ShowActor: one per show, the only owner of that show's seat map. Every hold, confirm,
//! release, cancel and expiry is a message to it, so its mailbox puts them in one order:
//! no lock, and a taken seat is refused from memory. Writes are queued to the log writer
//! in that same order and answered once durable; while one is being committed the actor
//! goes on serving other messages, because the seats are already marked in memory.
use super::error::BookingError;
use super::layout_switch::{decide, KeepReason};
use super::seat_map::{
    BookingEntry, Category, ConfirmRefusal, HoldLimits, HoldRefusal, HoldStatus, HoldTerms, Layout, SeatMap, SeatState,
    Spot,
};
use crate::db::models::{booking_state, split_seats, LayoutRow, SeatCategory};
use crate::db::orders::{load_show, ShowSnapshot};
use crate::db::Db;
use crate::domain::{
    BestRequest, BookingCode, Client, CustomerName, Email, HoldId, IdempotencyKey, SeatKind, SeatSelection, ShowId,
};
use crate::wal::change::{BookingCancelled, BookingConfirmed, Change, HoldPlaced, HoldsEnded};
use crate::wal::{LogWriter, Origin, Outcome, WalError};
use actix::prelude::*;
use chrono::{DateTime, Duration, Utc};
use futures::channel::oneshot;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Seats of one show whose state changed, as watchers receive them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeatChange {
    pub show_id: i64,
    /// The map's version after the change.
    pub version: u64,
    /// Seat label and its new state (`free`, `held`, `booked`).
    pub seats: Vec<(String, &'static str)>,
    /// The change as its watchers send it, made by the first of them and shared by the
    /// rest (one serialization per change, not one per socket).
    #[serde(skip)]
    pub frame: std::sync::OnceLock<bytestring::ByteString>,
    /// When the actor made the change (how long it takes to reach each live page).
    #[serde(skip)]
    pub made_at: std::time::Instant,
}

impl SeatChange {
    pub fn new(show_id: i64, version: u64, seats: Vec<(String, &'static str)>) -> Self {
        Self { show_id, version, seats, frame: std::sync::OnceLock::new(), made_at: std::time::Instant::now() }
    }
}

/// How many changes a watcher may fall behind before it is sent a fresh snapshot instead.
const WATCH_QUEUE: usize = 256;

/// What every show actor shares: where to read and write, and the rules' settings.
#[derive(Clone)]
pub struct ShowDeps {
    pub db: Db,
    pub cluster: Arc<crate::cluster::ClusterState>,
    pub writer: LogWriter,
    pub hold_duration: Duration,
    pub cancel_cutoff: Duration,
    /// The seat-spinning limits, applied by the master.
    pub limits: HoldLimits,
    /// LONELY_SEAT_RULE: off, the no-lonely-seat rule is not applied on this node, whatever
    /// the auditorium says (load tools and the deployment test pick seats at random).
    pub lonely_seat_rule: bool,
    pub layouts: Arc<Mutex<HashMap<i64, Arc<Layout>>>>,
}

pub struct ShowActor {
    id: ShowId,
    deps: ShowDeps,
    state: Loading,
}

enum Loading {
    Pending,
    Ready(Box<Ready>),
    Missing,
    Failed(String),
}

struct Ready {
    /// Live seat changes for whoever watches this show (websockets): made by the first
    /// watcher and dropped when the last one has gone, so a show nobody watches keeps no
    /// queue (its slots cost ~8 KiB a show).
    events: Option<broadcast::Sender<Arc<SeatChange>>>,
    starts_at: DateTime<Utc>,
    on_sale: bool,
    map: SeatMap,
    waiters: HashMap<String, Vec<oneshot::Sender<Result<BookingReceipt, BookingError>>>>,
    /// Retries of a keyed hold whose write the log has not decided yet.
    hold_waiters: HashMap<String, Vec<oneshot::Sender<Result<HoldReceipt, BookingError>>>>,
    /// Cancellations written and not yet decided by the log (the seats stay booked until
    /// they are), with the retries that wait for the decision.
    cancelling: HashMap<String, Vec<oneshot::Sender<Result<BookingReceipt, BookingError>>>>,
    timer: Option<(DateTime<Utc>, SpawnHandle)>,
    /// The map as last asked for, shared by its readers while it is still true (same
    /// version, still on sale or not) and someone still holds it: pages key their renders
    /// by it and keep it while their render is cached. Weak, so a show nobody is reading
    /// keeps no copy of its map (~30 KiB for 12 x 16 seats: 10,000 loaded shows would
    /// hold 350 MiB of them).
    snapshot: Option<std::sync::Weak<SeatMapView>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HoldReceipt {
    pub hold_id: String,
    pub show_id: i64,
    pub seats: Vec<String>,
    pub expires_at: DateTime<Utc>,
    /// Said when "find me N seats" had to split the group in two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct BookingReceipt {
    pub code: String,
    pub show_id: i64,
    pub hold_id: String,
    pub name: String,
    pub email: String,
    pub seats: Vec<String>,
    pub total_cents: i32,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeatView {
    pub seat: String,
    pub number: u16,
    pub state: &'static str,
    pub category: String,
    /// Standard, wheelchair (space) or companion (seat).
    pub kind: SeatKind,
    /// How many aisle or gap places come before this seat in its row (since the seat before).
    pub space_before: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowView {
    pub label: String,
    pub seats: Vec<SeatView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeatMapView {
    pub show_id: i64,
    pub version: u64,
    pub starts_at: DateTime<Utc>,
    pub on_sale: bool,
    pub free: usize,
    pub categories: Vec<Category>,
    pub rows: Vec<RowView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldItem {
    pub seat: String,
    pub category: String,
    pub price_cents: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldView {
    pub hold_id: String,
    pub show_id: i64,
    pub expires_at: DateTime<Utc>,
    pub items: Vec<HoldItem>,
    pub total_cents: i32,
    /// `active`, `confirming` or `confirmed`.
    pub status: &'static str,
    pub booking_code: Option<String>,
}

impl ShowActor {
    pub fn new(id: ShowId, deps: ShowDeps) -> Self {
        Self { id, deps, state: Loading::Pending }
    }

    fn ready(&mut self) -> Result<&mut Ready, BookingError> {
        match &mut self.state {
            Loading::Ready(r) => Ok(r),
            Loading::Missing => Err(BookingError::ShowNotFound),
            Loading::Failed(e) => Err(BookingError::Unavailable(e.clone())),
            Loading::Pending => Err(BookingError::Unavailable("the show is still loading".into())),
        }
    }

    fn layout_for(&self, snap: &ShowSnapshot) -> Arc<Layout> {
        let mut cache = self.deps.layouts.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(snap.show.layout_id)
            .or_insert_with(|| Arc::new(stored_layout(&snap.categories, &snap.rows, snap.no_lonely_seats)))
            .clone()
    }

    fn rebuild(&self, snap: ShowSnapshot) -> Ready {
        let mut map = SeatMap::new(self.layout_for(&snap));
        for b in &snap.bookings {
            let seats = map.indexes(&split_seats(&b.seats));
            map.restore_booking(
                &b.code,
                BookingEntry {
                    hold_id: b.hold_id.clone(),
                    name: b.name.clone(),
                    email: b.email.clone(),
                    seats,
                    total_cents: b.total_cents,
                    cancelled: b.state == booking_state::CANCELLED,
                },
            );
        }
        for id in &snap.ended_holds {
            map.restore_ended(id);
        }
        for h in &snap.recent_holds {
            let client = stored_client(h);
            let expired = (h.state == crate::db::models::hold_state::EXPIRED
                || h.state == crate::db::models::hold_state::ACTIVE)
                .then(|| (map.indexes(&split_seats(&h.seats)), h.expires_at.and_utc()));
            map.restore_recent(&h.id, client, h.created_at.and_utc(), expired);
        }
        for h in &snap.active_holds {
            let labels = split_seats(&h.seats);
            let seats = map.indexes(&labels);
            let free = seats.iter().all(|&i| map.states()[i] == super::seat_map::SeatState::Free);
            if free && !seats.is_empty() {
                let terms = HoldTerms {
                    placed_at: h.created_at.and_utc(),
                    expires_at: h.expires_at.and_utc(),
                    key: h.idempotency_key.clone(),
                    client: stored_client(h),
                };
                map.place_hold(&h.id, seats, terms, HoldStatus::Active);
            } else {
                log::warn!("show {}: stored hold {} overlaps a booking; ignored", self.id, h.id);
            }
        }
        map.take_changes();
        Ready {
            events: None,
            starts_at: snap.show.starts_at_utc.and_utc(),
            on_sale: snap.show.in_feed,
            map,
            waiters: HashMap::new(),
            hold_waiters: HashMap::new(),
            cancelling: HashMap::new(),
            timer: None,
            snapshot: None,
        }
    }

    /// Sends the seats that changed to the show's watchers.
    fn publish(&mut self) {
        let show_id = self.id.0;
        let Loading::Ready(r) = &mut self.state else { return };
        let changed = r.map.take_changes();
        if r.events.as_ref().is_some_and(|e| e.receiver_count() == 0) {
            r.events = None;
        }
        let Some(events) = r.events.as_ref().filter(|_| !changed.is_empty()) else { return };
        let states = r.map.states();
        let layout = r.map.layout();
        let seats = changed.iter().map(|&i| (layout.seats[i].0.to_string(), states[i].name())).collect();
        let _ = events.send(Arc::new(SeatChange::new(show_id, r.map.version(), seats)));
    }

    /// A hold became active, to expire at `at`: makes sure a timer fires by then. A timer
    /// already armed no later stays (it fires early at worst, and [`expire_due`] looks
    /// again), so a sale does not look at every hold of the show on every hold.
    ///
    /// [`expire_due`]: Self::expire_due
    fn hold_may_expire(&mut self, at: DateTime<Utc>, ctx: &mut Context<Self>) {
        let Loading::Ready(r) = &self.state else { return };
        if !covers(r.timer.map(|(armed, _)| armed), at) {
            self.schedule_expiry(ctx);
        }
    }

    /// Makes sure a timer fires at the earliest expiry.
    fn schedule_expiry(&mut self, ctx: &mut Context<Self>) {
        let Loading::Ready(r) = &mut self.state else { return };
        let Some(next) = r.map.next_expiry() else { return };
        if !covers(r.timer.map(|(at, _)| at), next) {
            arm_expiry(r, next, ctx);
        }
    }

    fn expire_due(&mut self, ctx: &mut Context<Self>) {
        let show_id = self.id.0;
        if !self.deps.cluster.writable() {
            // Only the master expires holds; a follower learns of it from the log. When
            // this node takes writes, every loaded show loads again and arms its timer
            // (`ShowDirectory::reset`). (It used to look again every second instead: a
            // loop that nothing stopped, and one more each time a timer fired here.)
            return;
        }
        let Ok(r) = self.ready() else { return };
        let due = r.map.due(Utc::now());
        if !due.is_empty() {
            for id in &due {
                r.map.expire_hold(id);
            }
            log::debug!("show {show_id}: {} holds expired", due.len());
            let write_change = Change::HoldsEnded(HoldsEnded {
                show_id,
                hold_ids: due,
                state: crate::db::models::hold_state::EXPIRED.to_string(),
            });
            self.publish();
            let write = self.deps.writer.append(write_change);
            actix::spawn(async move {
                if let Err(e) = write.await {
                    log::warn!("show {show_id}: could not log expired holds: {e}");
                }
            });
        }
        self.schedule_expiry(ctx);
    }

    fn receipt(map: &SeatMap, show_id: i64, code: &str) -> Option<BookingReceipt> {
        map.booking(code).map(|b| BookingReceipt {
            code: code.to_string(),
            show_id,
            hold_id: b.hold_id.clone(),
            name: b.name.clone(),
            email: b.email.clone(),
            seats: map.labels(&b.seats),
            total_cents: b.total_cents,
            state: if b.cancelled { booking_state::CANCELLED } else { booking_state::CONFIRMED }.to_string(),
        })
    }
}

impl Actor for ShowActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        self.load(ctx);
    }
}

impl ShowActor {
    /// Loads the show from the database, taking no other message meanwhile. It waits for
    /// the log writer to finish every write queued before it, this actor's own included,
    /// so the state loaded has all of them.
    fn load(&mut self, ctx: &mut Context<Self>) {
        let db = self.deps.db.clone();
        let barrier = self.deps.writer.barrier();
        let id = self.id.0;
        let memory = self.deps.limits.memory();
        let load = async move {
            barrier.await;
            let now = Utc::now().naive_utc();
            db.run(move |c| load_show(c, id, now, now - memory)).await
        };
        ctx.wait(load.into_actor(self).map(|res, act, ctx| {
            // The old map's watch queue goes with it: each live page's socket finds it
            // closed, subscribes again and gets a snapshot of the reloaded map, whose
            // versions start afresh (a page would drop its changes as old) and whose layout
            // may be new (a layout change; the page then offers a reload).
            act.state = match res {
                Ok(Some(snap)) => Loading::Ready(Box::new(act.rebuild(snap))),
                Ok(None) => Loading::Missing,
                Err(e) => {
                    log::error!("show {}: cannot load: {e}", act.id);
                    Loading::Failed("the database is unavailable".into())
                }
            };
            // A missing or unloadable show answers the messages already queued, then
            // stops, so the next request tries afresh.
            match act.state {
                Loading::Ready(_) => {
                    act.schedule_expiry(ctx);
                    act.publish();
                }
                Loading::Missing => {
                    ctx.run_later(std::time::Duration::from_secs(10), |_, ctx| ctx.stop());
                }
                _ => {
                    ctx.run_later(std::time::Duration::from_millis(500), |_, ctx| ctx.stop());
                }
            }
        }));
    }
}

/// Load the show again from the database (this node's log was rebuilt, or it takes writes
/// again): in place, in mailbox order, so every write this actor made before is in what it
/// loads and no second actor of the show ever runs beside it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload;

impl Handler<Reload> for ShowActor {
    type Result = ();

    fn handle(&mut self, _: Reload, ctx: &mut Context<Self>) {
        self.reload(ctx);
    }
}

impl ShowActor {
    fn reload(&mut self, ctx: &mut Context<Self>) {
        if let Loading::Ready(r) = &mut self.state {
            if let Some((_, handle)) = r.timer.take() {
                ctx.cancel_future(handle);
            }
        }
        self.load(ctx);
    }
}

/// May this show take its auditorium's new layout (see [`super::layout_switch`])? Asked by
/// the master while it writes the change. When the answer is yes, the actor takes no other
/// message until `written` resolves or `max_wait` passes (a hold that comes meanwhile
/// waits in the mailbox), so nothing is held or booked between this answer and the new
/// layout in the log; then it loads its seat map again, with the layout the database now
/// gives it (the new one once the change is written, else the old one).
#[derive(Message)]
#[rtype(result = "Result<Result<(), KeepReason>, BookingError>")]
pub struct OfferLayout {
    pub written: oneshot::Receiver<()>,
    pub max_wait: std::time::Duration,
}

impl Handler<OfferLayout> for ShowActor {
    type Result = Result<Result<(), KeepReason>, BookingError>;

    fn handle(&mut self, msg: OfferLayout, ctx: &mut Context<Self>) -> Self::Result {
        self.may_write()?;
        let r = self.ready()?;
        let verdict = decide(r.map.occupancy(), r.starts_at, Utc::now());
        if verdict.is_ok() {
            let wait = actix_rt::time::timeout(msg.max_wait, msg.written);
            ctx.wait(wait.into_actor(self).map(|_, act, ctx| act.reload(ctx)));
        }
        Ok(verdict)
    }
}

/// The layout stored as `categories` and `rows` (of one layout), as a seat map has it.
pub fn stored_layout(categories: &[SeatCategory], rows: &[LayoutRow], no_lonely_seats: bool) -> Layout {
    let cat_index: HashMap<i64, usize> = categories.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    let map_categories = categories
        .iter()
        .map(|c| Category { code: c.code.clone(), name: c.name.clone(), price_cents: c.price_cents })
        .collect();
    let letters: Vec<char> = categories.iter().map(|c| c.letter()).collect();
    let cheapest = categories.iter().enumerate().min_by_key(|(_, c)| c.price_cents).map_or(0, |(i, _)| i);
    let rows: Vec<(String, Vec<Spot>)> = rows
        .iter()
        .map(|r| {
            let spots = match &r.seats {
                Some(pattern) => Spot::parse_row(pattern, &letters, cheapest),
                None => {
                    vec![
                        Spot::Seat(SeatKind::Standard, cat_index.get(&r.category_id).copied().unwrap_or(0));
                        r.seat_count.max(0) as usize
                    ]
                }
            };
            (r.row_label.clone(), spots)
        })
        .collect();
    let mut layout = Layout::with_spots(map_categories, &rows);
    layout.no_lonely_seats = no_lonely_seats;
    layout
}

/// The rows of `layout` as the seat map draws them, each seat in its state in `states`
/// (every seat free without them: a layout's preview).
pub fn row_views(layout: &Layout, states: Option<&[SeatState]>) -> Vec<RowView> {
    layout
        .rows
        .iter()
        .map(|(label, range)| RowView {
            label: label.clone(),
            seats: range
                .clone()
                .map(|i| {
                    let (seat, cat) = &layout.seats[i];
                    let column = layout.places[i].1;
                    let previous = if i > range.start { layout.places[i - 1].1 + 1 } else { 0 };
                    SeatView {
                        seat: seat.to_string(),
                        number: seat.number(),
                        state: states.and_then(|s| s.get(i)).map_or("free", SeatState::name),
                        category: layout.categories[*cat].code.clone(),
                        kind: layout.kinds[i],
                        space_before: column - previous,
                    }
                })
                .collect(),
        })
        .collect()
}

/// The client a stored hold records (an unreadable one counts as unknown).
fn stored_client(h: &crate::db::models::Hold) -> Client {
    Client::parse(h.client_addr.as_deref(), h.client_session.as_deref()).unwrap_or_default()
}

fn wal_to_booking(e: WalError) -> BookingError {
    match e {
        WalError::Conflict(_) => BookingError::Unavailable("the write conflicted; try again".into()),
        WalError::NotMaster => BookingError::Unavailable("this node cannot take writes now (no master with a majority); try again".into()),
        WalError::NoQuorum => BookingError::Unavailable("the cluster did not confirm this write in time; its outcome is unknown, retry with the same Idempotency-Key".into()),
        WalError::Superseded => BookingError::Unavailable("the write did not happen (another master's log won); try again".into()),
        other => BookingError::Unavailable(other.to_string()),
    }
}

impl ShowActor {
    /// Only a node that takes writes answers a write, even a refusal: "taken" from the
    /// memory of a node that lost its lease may be stale.
    fn may_write(&self) -> Result<(), BookingError> {
        if self.deps.cluster.writable() {
            Ok(())
        } else {
            Err(wal_to_booking(WalError::NotMaster))
        }
    }

    /// The log decided a hold: active (and the keyed retries get it), or gone.
    fn hold_decided(
        &mut self,
        receipt: &HoldReceipt,
        committed: bool,
        ctx: &mut Context<Self>,
    ) -> Result<HoldReceipt, BookingError> {
        let Loading::Ready(r) = &mut self.state else {
            return Err(BookingError::Unavailable("the show was unloaded".into()));
        };
        let id = receipt.hold_id.as_str();
        let pending = r.map.hold(id).is_some_and(|h| h.status == HoldStatus::Pending);
        let result = if committed {
            if pending {
                r.map.mark_active(id);
            }
            Ok(receipt.clone())
        } else {
            if pending {
                r.map.end_hold(id);
            }
            Err(BookingError::Unavailable("the hold did not happen; try again".into()))
        };
        let active = r.map.hold(id).filter(|h| h.status == HoldStatus::Active).map(|h| h.expires_at);
        for w in r.hold_waiters.remove(id).unwrap_or_default() {
            let _ = w.send(result.clone());
        }
        self.publish();
        // A hold that did not happen only ends: the armed timer fires early at worst.
        if let Some(at) = active {
            self.hold_may_expire(at, ctx);
        }
        result
    }

    /// The log decided a confirmation: booked, or back to an active hold.
    fn confirm_decided(
        &mut self,
        hold_id: &str,
        code: &str,
        entry: BookingEntry,
        res: Result<(), BookingError>,
        ctx: &mut Context<Self>,
    ) -> Result<BookingReceipt, BookingError> {
        let show_id = self.id.0;
        let Loading::Ready(r) = &mut self.state else {
            return Err(BookingError::Unavailable("the show was unloaded".into()));
        };
        let confirming = r.map.hold(hold_id).is_some_and(|h| h.status == HoldStatus::Confirming);
        let result = match res {
            Ok(()) => {
                if confirming {
                    r.map.finish_confirm(code, entry);
                }
                Self::receipt(&r.map, show_id, code).ok_or(BookingError::HoldNotFound)
            }
            Err(e) => {
                if confirming {
                    r.map.abort_confirm(hold_id);
                }
                Err(e)
            }
        };
        // Back to active, the hold expires again: a timer that fired while it was being
        // confirmed passed it over.
        let active_again = r.map.hold(hold_id).filter(|h| h.status == HoldStatus::Active).map(|h| h.expires_at);
        for waiter in r.waiters.remove(hold_id).unwrap_or_default() {
            let _ = waiter.send(result.clone());
        }
        self.publish();
        if let (true, Some(at)) = (confirming, active_again) {
            self.hold_may_expire(at, ctx);
        }
        result
    }
}

type Reply<T> = ResponseActFuture<ShowActor, Result<T, BookingError>>;

/// Arms the show's one expiry timer for `at`, replacing the one armed before, if any.
fn arm_expiry(r: &mut Ready, at: DateTime<Utc>, ctx: &mut Context<ShowActor>) {
    if let Some((_, before)) = r.timer.take() {
        ctx.cancel_future(before);
    }
    let wait = (at - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(5);
    let handle = ctx.run_later(wait, |act, ctx| {
        if let Loading::Ready(r) = &mut act.state {
            r.timer = None;
        }
        act.expire_due(ctx);
    });
    r.timer = Some((at, handle));
}

/// Whether a timer armed for `armed` (if any) fires in time for a hold expiring at `at`.
fn covers(armed: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    armed.is_some_and(|armed| armed <= at)
}

fn done<T: 'static>(r: Result<T, BookingError>) -> Reply<T> {
    Box::pin(actix::fut::ready(r))
}

/// Hands a write's outcome to `decided`, which settles the seat map and the retries: at
/// once when the log has decided it, else once it does (the caller is told "unknown"
/// meanwhile, and the seats stay as they are until then).
fn after_log<T: 'static>(
    act: &mut ShowActor,
    write: impl std::future::Future<Output = Outcome> + 'static,
    decided: impl FnOnce(&mut ShowActor, Result<(), BookingError>, &mut Context<ShowActor>) -> Result<T, BookingError>
        + 'static,
) -> Reply<T> {
    Box::pin(write.into_actor(act).map(move |outcome, act, ctx| match outcome {
        Outcome::Committed(_) => decided(act, Ok(()), ctx),
        Outcome::Failed(e) => decided(act, Err(wal_to_booking(e)), ctx),
        Outcome::Unknown(_, decision) => {
            ctx.spawn(decision.into_actor(act).map(move |ok, act, ctx| {
                let res = if ok { Ok(()) } else { Err(wal_to_booking(WalError::Superseded)) };
                let _ = decided(act, res, ctx);
            }));
            Err(wal_to_booking(WalError::NoQuorum))
        }
    }))
}

/// What a hold asks for: these seats, or the best N the show has.
#[derive(Debug, Clone)]
pub enum SeatPick {
    Seats(SeatSelection),
    Best(BestRequest),
}

/// Hold these seats (or the best N: decided here, from the seat map, in the same message
/// as the hold) for HOLD_MINUTES.
#[derive(Message)]
#[rtype(result = "Result<HoldReceipt, BookingError>")]
pub struct PlaceHold {
    pub pick: SeatPick,
    /// The customer needs a wheelchair space (the only way to hold one).
    pub wheelchair: bool,
    pub key: Option<IdempotencyKey>,
    /// The node the visitor made it on (and when).
    pub origin: Origin,
    /// Who asked (the seat-spinning limits).
    pub client: Client,
}

impl Handler<PlaceHold> for ShowActor {
    type Result = Reply<HoldReceipt>;

    fn handle(&mut self, msg: PlaceHold, ctx: &mut Context<Self>) -> Self::Result {
        self.place(msg, WAITS, ctx)
    }
}

/// How many undecided holds in its way a hold waits for before it is told to try again.
const WAITS: u8 = 4;

/// A hold tried again once the hold in its way was decided (with the waits it has left).
#[derive(Message)]
#[rtype(result = "Result<HoldReceipt, BookingError>")]
struct PlaceHoldAgain(PlaceHold, u8);

impl Handler<PlaceHoldAgain> for ShowActor {
    type Result = Reply<HoldReceipt>;

    fn handle(&mut self, msg: PlaceHoldAgain, ctx: &mut Context<Self>) -> Self::Result {
        self.place(msg.0, msg.1, ctx)
    }
}

impl ShowActor {
    /// Places a hold. Seats held by a hold the log has not decided yet are neither free nor
    /// taken: the hold waits for that decision (once), then tries again.
    /// "Find me N seats" on `map`: the seats, and a note when they are two groups.
    fn find_best(
        map: &SeatMap,
        best: &BestRequest,
        wheelchair: bool,
    ) -> Result<(Vec<usize>, Option<String>), BookingError> {
        let layout = map.layout();
        let category = match best.category() {
            None => None,
            Some(code) => match layout.categories.iter().position(|c| c.code == code) {
                Some(i) => Some(i),
                None => return Err(BookingError::UnknownCategory(code.to_string())),
            },
        };
        let found = map
            .find_best(best.count(), category, wheelchair)
            .ok_or(BookingError::NoSeatsTogether { count: best.count(), wheelchair })?;
        let note = found.split().then(|| {
            let groups: Vec<String> = found.groups.iter().map(|g| map.labels(g).join(", ")).collect();
            format!(
                "no row has {} free seats side by side, so these are two groups: {}",
                best.count(),
                groups.join(" and ")
            )
        });
        Ok((found.seats(), note))
    }

    fn place(&mut self, msg: PlaceHold, waits: u8, ctx: &mut Context<Self>) -> Reply<HoldReceipt> {
        if let Err(e) = self.may_write() {
            return done(Err(e));
        }
        let show_id = self.id;
        let hold_for = self.deps.hold_duration;
        let limits = self.deps.limits;
        let lonely_rule = self.deps.lonely_seat_rule;
        let r = match self.ready() {
            Ok(r) => r,
            Err(e) => return done(Err(e)),
        };
        let now = Utc::now();
        let mut best_note = None;
        if let Some(key) = &msg.key {
            if let Some((id, h)) = r.map.hold_for_key(key.as_str()) {
                if h.status == HoldStatus::Pending {
                    // The first try is in the log, undecided: this one waits for it.
                    let (tx, rx) = oneshot::channel();
                    r.hold_waiters.entry(id.to_string()).or_default().push(tx);
                    return Box::pin(
                        async move {
                            rx.await.unwrap_or_else(|_| {
                                Err(BookingError::Unavailable("the hold's outcome is not known yet; try again".into()))
                            })
                        }
                        .into_actor(self),
                    );
                }
                return done(match h.status {
                    HoldStatus::Pending => Err(BookingError::KeyInProgress),
                    _ => Ok(HoldReceipt {
                        hold_id: id.to_string(),
                        show_id: show_id.0,
                        seats: r.map.labels(&h.seats),
                        expires_at: h.expires_at,
                        note: None,
                    }),
                });
            }
        }
        if now >= r.starts_at {
            return done(Err(BookingError::ShowStarted));
        }
        if !r.on_sale {
            return done(Err(BookingError::ShowWithdrawn));
        }
        let checked = match &msg.pick {
            SeatPick::Seats(selection) => r.map.check_free(selection),
            SeatPick::Best(best) => match Self::find_best(&r.map, best, msg.wheelchair) {
                Ok((seats, note)) => {
                    best_note = note;
                    Ok(seats)
                }
                Err(e) => return done(Err(e)),
            },
        };
        let seats = match checked {
            Ok(s) => s,
            Err(HoldRefusal::Unknown(s)) => return done(Err(BookingError::UnknownSeats(s))),
            Err(HoldRefusal::Undecided(in_the_way)) => {
                if waits == 0 {
                    return done(Err(BookingError::Unavailable(
                        "some of these seats are being held right now; try again in a moment".into(),
                    )));
                }
                let (tx, rx) = oneshot::channel();
                r.hold_waiters.entry(in_the_way).or_default().push(tx);
                let me = ctx.address();
                return Box::pin(
                    async move {
                        let _ = rx.await;
                        me.send(PlaceHoldAgain(msg, waits - 1)).await.unwrap_or_else(|_| {
                            Err(BookingError::Unavailable("the show was unloaded; try again".into()))
                        })
                    }
                    .into_actor(self),
                );
            }
            Err(HoldRefusal::Taken(s)) => return done(Err(BookingError::SeatsTaken(s))),
        };
        if let SeatPick::Seats(_) = &msg.pick {
            let layout = r.map.layout();
            let placement = r.map.check_wheelchair(&seats, msg.wheelchair).and_then(|()| {
                match layout.no_lonely_seats && lonely_rule {
                    true => r.map.check_lonely(&seats),
                    false => Ok(()),
                }
            });
            if let Err(refusal) = placement {
                return done(Err(BookingError::from(refusal)));
            }
        }
        if let Err(refusal) = r.map.check_limits(&msg.client, &seats, now, &limits) {
            log::info!("show {show_id}: hold refused for {:?}: {refusal:?}", msg.client.addr);
            return done(Err(BookingError::from(refusal)));
        }
        let hold = HoldId::generate(show_id);
        let expires_at = now + hold_for;
        let labels = r.map.labels(&seats);
        let key = msg.key.map(|k| k.as_str().to_string());
        let terms = HoldTerms { placed_at: now, expires_at, key: key.clone(), client: msg.client.clone() };
        r.map.place_hold(hold.as_str(), seats, terms, HoldStatus::Pending);
        self.publish();
        let change = Change::HoldPlaced(HoldPlaced {
            hold_id: hold.to_string(),
            show_id: show_id.0,
            seats: labels.clone(),
            expires_at: expires_at.naive_utc(),
            idempotency_key: key,
            created_at: now.naive_utc(),
            client: msg.client,
        });
        let write = self.deps.writer.append_from(change, msg.origin);
        let receipt =
            HoldReceipt { hold_id: hold.to_string(), show_id: show_id.0, seats: labels, expires_at, note: best_note };
        Box::pin(write.into_actor(self).map(move |outcome, act, ctx| match outcome {
            Outcome::Committed(_) => act.hold_decided(&receipt, true, ctx),
            Outcome::Failed(e) => {
                let _ = act.hold_decided(&receipt, false, ctx);
                Err(wal_to_booking(e))
            }
            Outcome::Unknown(_, decision) => {
                // In the log, undecided: the seats stay held (pending) until it decides.
                let receipt = receipt.clone();
                ctx.spawn(decision.into_actor(act).map(move |ok, act, ctx| {
                    let _ = act.hold_decided(&receipt, ok, ctx);
                }));
                Err(wal_to_booking(WalError::NoQuorum))
            }
        }))
    }
}

/// Turn a hold into a booking. Confirming the same hold again answers the same booking.
#[derive(Message)]
#[rtype(result = "Result<BookingReceipt, BookingError>")]
pub struct ConfirmHold {
    pub hold: HoldId,
    pub name: CustomerName,
    pub email: Email,
    pub origin: Origin,
}

impl Handler<ConfirmHold> for ShowActor {
    type Result = Reply<BookingReceipt>;

    fn handle(&mut self, msg: ConfirmHold, _ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.may_write() {
            return done(Err(e));
        }
        let show_id = self.id.0;
        let r = match self.ready() {
            Ok(r) => r,
            Err(e) => return done(Err(e)),
        };
        let hold_id = msg.hold.to_string();
        let plan = match r.map.begin_confirm(&hold_id, Utc::now()) {
            Ok(plan) => plan,
            Err(ConfirmRefusal::NoSuchHold) => return done(Err(BookingError::HoldNotFound)),
            Err(ConfirmRefusal::Expired) => return done(Err(BookingError::HoldExpired)),
            Err(ConfirmRefusal::AlreadyConfirmed(code)) => {
                return done(Self::receipt(&r.map, show_id, &code).ok_or(BookingError::HoldNotFound))
            }
            Err(ConfirmRefusal::InProgress) => {
                let (tx, rx) = oneshot::channel();
                r.waiters.entry(hold_id).or_default().push(tx);
                return Box::pin(
                    async move {
                        rx.await.unwrap_or_else(|_| {
                            Err(BookingError::Unavailable("the confirmation was interrupted".into()))
                        })
                    }
                    .into_actor(self),
                );
            }
        };
        let code = BookingCode::generate().to_string();
        let entry = BookingEntry {
            hold_id: hold_id.clone(),
            name: msg.name.as_str().to_string(),
            email: msg.email.as_str().to_string(),
            seats: r.map.hold(&hold_id).map(|h| h.seats.clone()).unwrap_or_default(),
            total_cents: plan.total_cents,
            cancelled: false,
        };
        let change = Change::BookingConfirmed(BookingConfirmed {
            code: code.clone(),
            show_id,
            hold_id: hold_id.clone(),
            name: entry.name.clone(),
            email: entry.email.clone(),
            seats: plan.seats,
            total_cents: plan.total_cents,
            created_at: Utc::now().naive_utc(),
        });
        let write = self.deps.writer.append_from(change, msg.origin);
        // Undecided in the log, the hold stays "confirming" (it cannot expire) and retries
        // wait for the decision.
        after_log(self, write, move |act, res, ctx| act.confirm_decided(&hold_id, &code, entry, res, ctx))
    }
}

/// The customer gives the seats back before the hold expires.
#[derive(Message)]
#[rtype(result = "Result<(), BookingError>")]
pub struct ReleaseHold {
    pub hold: HoldId,
    pub origin: Origin,
}

impl Handler<ReleaseHold> for ShowActor {
    type Result = Reply<()>;

    fn handle(&mut self, msg: ReleaseHold, _ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) = self.may_write() {
            return done(Err(e));
        }
        let show_id = self.id.0;
        let r = match self.ready() {
            Ok(r) => r,
            Err(e) => return done(Err(e)),
        };
        let id = msg.hold.to_string();
        match r.map.hold(&id).map(|h| h.status.clone()) {
            None => return done(Err(BookingError::HoldNotFound)),
            Some(HoldStatus::Active) => {}
            Some(HoldStatus::Ended) => return done(Err(BookingError::HoldExpired)),
            Some(HoldStatus::Confirmed(_) | HoldStatus::Confirming | HoldStatus::Pending | HoldStatus::Releasing) => {
                return done(Err(BookingError::HoldBusy))
            }
        }
        // The seats go back once the log has the release: a release that is not stored
        // leaves the hold as it was.
        r.map.begin_release(&id);
        let change = Change::HoldsEnded(HoldsEnded {
            show_id,
            hold_ids: vec![id.clone()],
            state: crate::db::models::hold_state::RELEASED.to_string(),
        });
        let write = self.deps.writer.append_from(change, msg.origin);
        after_log(self, write, move |act, res, _| act.release_decided(&id, res))
    }
}

impl ShowActor {
    /// The log decided a release: the seats are free, or the hold stands.
    fn release_decided(&mut self, id: &str, res: Result<(), BookingError>) -> Result<(), BookingError> {
        let Loading::Ready(r) = &mut self.state else {
            return Err(BookingError::Unavailable("the show was unloaded".into()));
        };
        match &res {
            Ok(()) => {
                r.map.end_hold(id);
            }
            Err(_) => r.map.abort_release(id),
        }
        self.publish();
        res
    }
}

/// Cancel a booking (the email must match), until the cut-off before the show.
#[derive(Message)]
#[rtype(result = "Result<BookingReceipt, BookingError>")]
pub struct CancelBooking {
    pub code: BookingCode,
    pub email: Email,
    pub origin: Origin,
}

impl Handler<CancelBooking> for ShowActor {
    type Result = Reply<BookingReceipt>;

    fn handle(&mut self, msg: CancelBooking, _ctx: &mut Context<Self>) -> Self::Result {
        self.cancel(msg.code, Some(msg.email), msg.origin)
    }
}

/// An operator cancels a booking from the admin page: no email to match, and no cut-off
/// (the operator may refund up to and after the show). The seats go back on sale.
#[derive(Message)]
#[rtype(result = "Result<BookingReceipt, BookingError>")]
pub struct AdminCancelBooking {
    pub code: BookingCode,
    pub origin: Origin,
}

impl Handler<AdminCancelBooking> for ShowActor {
    type Result = Reply<BookingReceipt>;

    fn handle(&mut self, msg: AdminCancelBooking, _ctx: &mut Context<Self>) -> Self::Result {
        self.cancel(msg.code, None, msg.origin)
    }
}

impl ShowActor {
    /// Cancels `code`; a customer (`email` given) must match the booking's email and be
    /// before the cut-off. Cancelling again answers the cancelled booking.
    fn cancel(&mut self, code: BookingCode, email: Option<Email>, origin: Origin) -> Reply<BookingReceipt> {
        if let Err(e) = self.may_write() {
            return done(Err(e));
        }
        let show_id = self.id.0;
        let cutoff = self.deps.cancel_cutoff;
        let r = match self.ready() {
            Ok(r) => r,
            Err(e) => return done(Err(e)),
        };
        let code = code.to_string();
        let matches = |b: &BookingEntry| email.as_ref().is_none_or(|e| b.email == e.as_str());
        let Some(booking) = r.map.booking(&code).filter(|b| matches(b)) else {
            return done(Err(BookingError::BookingNotFound));
        };
        if booking.cancelled {
            return done(Self::receipt(&r.map, show_id, &code).ok_or(BookingError::BookingNotFound));
        }
        if let Some(waiting) = r.cancelling.get_mut(&code) {
            // The same cancellation again, while the log decides the first: its answer.
            let (tx, rx) = oneshot::channel();
            waiting.push(tx);
            return Box::pin(
                async move {
                    rx.await
                        .unwrap_or_else(|_| Err(BookingError::Unavailable("the cancellation was interrupted".into())))
                }
                .into_actor(self),
            );
        }
        let deadline = r.starts_at - cutoff;
        if email.is_some() && Utc::now() >= deadline {
            return done(Err(BookingError::TooLateToCancel(deadline.format("%Y-%m-%d %H:%M UTC").to_string())));
        }
        // The seats go back on sale once the log has the cancellation: a write that fails
        // must leave the booking as it was, and a retry must not be told "cancelled" from
        // memory before the log decides.
        r.cancelling.insert(code.clone(), Vec::new());
        let change =
            Change::BookingCancelled(BookingCancelled { code: code.clone(), show_id, at: Utc::now().naive_utc() });
        let write = self.deps.writer.append_from(change, origin);
        after_log(self, write, move |act, res, _| act.cancel_decided(&code, res))
    }

    /// The log decided a cancellation: the seats are free, or the booking stands.
    fn cancel_decided(&mut self, code: &str, res: Result<(), BookingError>) -> Result<BookingReceipt, BookingError> {
        let show_id = self.id.0;
        let Loading::Ready(r) = &mut self.state else {
            return Err(BookingError::Unavailable("the show was unloaded".into()));
        };
        let result = res.and_then(|()| {
            r.map.cancel(code);
            Self::receipt(&r.map, show_id, code).ok_or(BookingError::BookingNotFound)
        });
        for w in r.cancelling.remove(code).unwrap_or_default() {
            let _ = w.send(result.clone());
        }
        self.publish();
        result
    }
}

/// The seat map as it is now: a snapshot shared by every reader until the map changes (a
/// new version) or the show goes off sale. The same `Arc` means the same map.
#[derive(Message)]
#[rtype(result = "Result<Arc<SeatMapView>, BookingError>")]
pub struct GetSeatMap;

impl Handler<GetSeatMap> for ShowActor {
    type Result = Result<Arc<SeatMapView>, BookingError>;

    fn handle(&mut self, _: GetSeatMap, _: &mut Context<Self>) -> Self::Result {
        let show_id = self.id.0;
        let r = self.ready()?;
        let on_sale = r.on_sale && Utc::now() < r.starts_at;
        if let Some(s) = r
            .snapshot
            .as_ref()
            .and_then(|s| s.upgrade())
            .filter(|s| s.version == r.map.version() && s.on_sale == on_sale)
        {
            return Ok(s.clone());
        }
        let layout = r.map.layout().clone();
        let rows = row_views(&layout, Some(r.map.states()));
        let view = Arc::new(SeatMapView {
            show_id,
            version: r.map.version(),
            starts_at: r.starts_at,
            on_sale,
            free: r.map.free_count(),
            categories: layout.categories.clone(),
            rows,
        });
        r.snapshot = Some(Arc::downgrade(&view));
        Ok(view)
    }
}

/// A hold as its owner sees it (the checkout page).
#[derive(Message)]
#[rtype(result = "Result<HoldView, BookingError>")]
pub struct GetHold {
    pub hold: HoldId,
}

impl Handler<GetHold> for ShowActor {
    type Result = Result<HoldView, BookingError>;

    fn handle(&mut self, msg: GetHold, _: &mut Context<Self>) -> Self::Result {
        let show_id = self.id.0;
        let r = self.ready()?;
        let h = r.map.hold(msg.hold.as_str()).ok_or(BookingError::HoldExpired)?;
        let layout = r.map.layout();
        let items: Vec<HoldItem> = h
            .seats
            .iter()
            .map(|&i| {
                let cat = &layout.categories[layout.seats[i].1];
                HoldItem {
                    seat: layout.seats[i].0.to_string(),
                    category: cat.name.clone(),
                    price_cents: cat.price_cents,
                }
            })
            .collect();
        let (status, booking_code) = match &h.status {
            HoldStatus::Confirmed(code) => ("confirmed", Some(code.clone())),
            HoldStatus::Confirming => ("confirming", None),
            HoldStatus::Ended => return Err(BookingError::HoldExpired),
            _ if h.expires_at <= Utc::now() => return Err(BookingError::HoldExpired),
            _ => ("active", None),
        };
        Ok(HoldView {
            hold_id: msg.hold.to_string(),
            show_id,
            expires_at: h.expires_at,
            total_cents: items.iter().map(|i| i.price_cents).sum(),
            items,
            status,
            booking_code,
        })
    }
}

/// The catalog changed this show: a new start time, or it left the feed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShowInfoChanged {
    pub starts_at: Option<DateTime<Utc>>,
    pub on_sale: bool,
}

impl Handler<ShowInfoChanged> for ShowActor {
    type Result = ();

    fn handle(&mut self, msg: ShowInfoChanged, _: &mut Context<Self>) {
        if let Loading::Ready(r) = &mut self.state {
            if let Some(t) = msg.starts_at {
                r.starts_at = t;
            }
            r.on_sale = msg.on_sale;
        }
    }
}

/// Watch the show's seats: the map as it is now, and every change after it.
#[derive(Message)]
#[rtype(result = "Result<(Arc<SeatMapView>, broadcast::Receiver<Arc<SeatChange>>), BookingError>")]
pub struct Subscribe;

impl Handler<Subscribe> for ShowActor {
    type Result = Result<(Arc<SeatMapView>, broadcast::Receiver<Arc<SeatChange>>), BookingError>;

    fn handle(&mut self, _: Subscribe, ctx: &mut Context<Self>) -> Self::Result {
        // Subscribing first, in the same message, means no change falls between the two.
        let rx = self.ready()?.events.get_or_insert_with(|| broadcast::channel(WATCH_QUEUE).0).subscribe();
        let view = <Self as Handler<GetSeatMap>>::handle(self, GetSeatMap, ctx)?;
        Ok((view, rx))
    }
}

/// A change this node received from the master's log: bring the seat map in line.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Replicated(pub Change);

impl Handler<Replicated> for ShowActor {
    type Result = ();

    fn handle(&mut self, msg: Replicated, ctx: &mut Context<Self>) {
        let Loading::Ready(r) = &mut self.state else { return };
        // Only a hold placed becomes active here; every other change ends holds, if any.
        let mut placed = None;
        match msg.0 {
            Change::HoldPlaced(h) => {
                if r.map.hold(&h.hold_id).is_none() {
                    placed = Some(h.expires_at.and_utc());
                    let seats = r.map.indexes(&h.seats);
                    let terms = HoldTerms {
                        placed_at: h.created_at.and_utc(),
                        expires_at: h.expires_at.and_utc(),
                        key: h.idempotency_key,
                        client: h.client,
                    };
                    r.map.place_hold(&h.hold_id, seats, terms, HoldStatus::Active);
                }
            }
            Change::HoldsEnded(e) => {
                let expired = e.state == crate::db::models::hold_state::EXPIRED;
                for id in &e.hold_ids {
                    if expired {
                        r.map.expire_hold(id);
                    } else {
                        r.map.end_hold(id);
                    }
                }
            }
            Change::BookingConfirmed(b) => {
                if r.map.booking(&b.code).is_none() {
                    let known_hold = r.map.hold(&b.hold_id).is_some();
                    let entry = BookingEntry {
                        seats: r.map.indexes(&b.seats),
                        hold_id: b.hold_id,
                        name: b.name,
                        email: b.email,
                        total_cents: b.total_cents,
                        cancelled: false,
                    };
                    if known_hold {
                        r.map.finish_confirm(&b.code, entry);
                    } else {
                        r.map.restore_booking(&b.code, entry);
                    }
                }
            }
            Change::BookingCancelled(c) => r.map.cancel(&c.code),
            Change::Catalog(_)
            | Change::EpochStart
            | Change::Membership(_)
            | Change::Admin(_)
            | Change::Admission(_)
            | Change::MailSent(_)
            | Change::Layout(_) => {}
        }
        self.publish();
        if let Some(at) = placed {
            self.hold_may_expire(at, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::covers;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn an_armed_timer_covers_a_hold_expiring_at_or_after_it() {
        let t = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        assert!(covers(Some(t), t));
        assert!(covers(Some(t), t + Duration::minutes(5)));
        assert!(!covers(Some(t), t - Duration::seconds(1)), "an earlier expiry needs an earlier timer");
        assert!(!covers(None, t), "no timer covers nothing");
    }
}
