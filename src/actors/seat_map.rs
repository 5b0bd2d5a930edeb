//! A show's seat map and the rules of holds and bookings, as plain data and methods.
//! [`super::show::ShowActor`] owns one and is the only one to touch it, so these methods
//! never race; they are unit-tested without an actix System.
use crate::domain::{Client, SeatKind, SeatLabel, SeatSelection};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    pub code: String,
    pub name: String,
    pub price_cents: i32,
}

/// A place in a row as a layout is built from: a seat (its kind and category index), an
/// aisle, or a gap (no seat).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spot {
    Seat(SeatKind, usize),
    Aisle,
    Gap,
}

impl Spot {
    /// The spots of a stored row pattern (`SS_WC`, see [`crate::domain::LayoutText`]):
    /// `letters` gives each category's letter by index; wheelchair and companion seats go
    /// in category `cheapest`. A symbol no category has (never stored: layouts are parsed
    /// before they are written) is a gap.
    pub fn parse_row(pattern: &str, letters: &[char], cheapest: usize) -> Vec<Spot> {
        pattern
            .chars()
            .map(|ch| match ch {
                '_' => Spot::Aisle,
                'W' => Spot::Seat(SeatKind::Wheelchair, cheapest),
                'C' => Spot::Seat(SeatKind::Companion, cheapest),
                c => letters.iter().position(|l| *l == c).map_or(Spot::Gap, |i| Spot::Seat(SeatKind::Standard, i)),
            })
            .collect()
    }
}

/// A place in a row as drawn: a seat (its index in [`Layout::seats`]), an aisle or a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Seat(usize),
    Aisle,
    Gap,
}

/// An auditorium: rows of seats, each seat in a price category and of a kind, with aisles
/// and gaps between them. Shared by every show that uses it.
#[derive(Debug)]
pub struct Layout {
    pub categories: Vec<Category>,
    /// Row label and the range of seat indexes in `seats`, front (screen) row first.
    pub rows: Vec<(String, std::ops::Range<usize>)>,
    pub seats: Vec<(SeatLabel, usize)>,
    /// Each seat's kind.
    pub kinds: Vec<SeatKind>,
    /// Each row's places as drawn, aisles and gaps included.
    pub cells: Vec<Vec<Cell>>,
    /// Each row's runs of side-by-side seats (no aisle or gap between), as seat indexes.
    pub blocks: Vec<Vec<std::ops::Range<usize>>>,
    /// Each seat's row (index in `rows`) and column (index in its row's `cells`).
    pub places: Vec<(usize, usize)>,
    /// Whether seats picked by hand may not leave a seat alone (see `SeatMap::check_lonely`).
    pub no_lonely_seats: bool,
    index: HashMap<SeatLabel, usize>,
}

impl Layout {
    /// `rows`: (label, seat count, category index), front to back; standard seats, no
    /// aisles (the layouts stored before layouts had places).
    pub fn new(categories: Vec<Category>, rows: &[(String, usize, usize)]) -> Self {
        let rows: Vec<(String, Vec<Spot>)> = rows
            .iter()
            .map(|(label, count, cat)| (label.clone(), vec![Spot::Seat(SeatKind::Standard, *cat); *count]))
            .collect();
        Self::with_spots(categories, &rows)
    }

    /// `rows`: (label, places), front to back. Seats are numbered from 1 along each row.
    pub fn with_spots(categories: Vec<Category>, rows: &[(String, Vec<Spot>)]) -> Self {
        let mut seats = Vec::new();
        let mut kinds = Vec::new();
        let mut places = Vec::new();
        let mut row_ranges = Vec::new();
        let mut cells = Vec::new();
        let mut blocks = Vec::new();
        for (r, (label, spots)) in rows.iter().enumerate() {
            let start = seats.len();
            let mut row_cells = Vec::with_capacity(spots.len());
            let mut row_blocks: Vec<std::ops::Range<usize>> = Vec::new();
            let mut block_start: Option<usize> = None;
            for (col, spot) in spots.iter().enumerate() {
                match *spot {
                    Spot::Seat(kind, cat) => {
                        let Ok(seat) = SeatLabel::new(label, (seats.len() - start + 1) as u16) else { continue };
                        block_start.get_or_insert(seats.len());
                        row_cells.push(Cell::Seat(seats.len()));
                        seats.push((seat, cat.min(categories.len().saturating_sub(1))));
                        kinds.push(kind);
                        places.push((r, col));
                    }
                    Spot::Aisle | Spot::Gap => {
                        if let Some(b) = block_start.take() {
                            row_blocks.push(b..seats.len());
                        }
                        row_cells.push(if *spot == Spot::Aisle { Cell::Aisle } else { Cell::Gap });
                    }
                }
            }
            if let Some(b) = block_start {
                row_blocks.push(b..seats.len());
            }
            row_ranges.push((label.clone(), start..seats.len()));
            cells.push(row_cells);
            blocks.push(row_blocks);
        }
        let index = seats.iter().enumerate().map(|(i, (s, _))| (s.clone(), i)).collect();
        Self { categories, rows: row_ranges, seats, kinds, cells, blocks, places, no_lonely_seats: true, index }
    }

    pub fn seat_index(&self, seat: &SeatLabel) -> Option<usize> {
        self.index.get(seat).copied()
    }

    pub fn price_of(&self, seat: usize) -> i32 {
        self.categories[self.seats[seat].1].price_cents
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SeatState {
    Free,
    Held(Arc<str>),
    Booked(Arc<str>),
}

impl SeatState {
    pub fn name(&self) -> &'static str {
        match self {
            SeatState::Free => "free",
            SeatState::Held(_) => "held",
            SeatState::Booked(_) => "booked",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HoldStatus {
    /// Placed in memory, not yet durable.
    Pending,
    Active,
    /// A booking for it is being committed.
    Confirming,
    Confirmed(String),
    /// Its owner released it and the log has not decided that yet: the seats stay held.
    Releasing,
    /// Expired or released: the seats went back; the id is remembered so a late confirm
    /// is told the hold is gone rather than unknown.
    Ended,
}

impl HoldStatus {
    /// Whether the hold still keeps its seats (what the seat limit counts).
    fn keeps_seats(&self) -> bool {
        matches!(self, HoldStatus::Pending | HoldStatus::Active | HoldStatus::Confirming | HoldStatus::Releasing)
    }
}

#[derive(Debug, Clone)]
pub struct HoldEntry {
    pub seats: Vec<usize>,
    pub expires_at: DateTime<Utc>,
    pub status: HoldStatus,
    pub idempotency_key: Option<String>,
    /// Who placed it, and when (by the master's clock): the seat-spinning limits.
    pub client: Client,
    pub placed_at: DateTime<Utc>,
    /// The seats of a hold that expired unconfirmed: its client may not hold them again
    /// until the cool-off is over.
    pub expired_seats: Vec<usize>,
}

/// A new hold's terms.
#[derive(Debug, Clone)]
pub struct HoldTerms {
    pub placed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub key: Option<String>,
    pub client: Client,
}

/// The seat-spinning limits, per client and show (MAX_HELD_SEATS, MAX_HOLDS_PER_MINUTE,
/// HOLD_COOLOFF_SECONDS). A client is its address and its session; a hold must fit the
/// budget of each (whichever is stricter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLimits {
    /// Seats held at once (holds not yet confirmed, released or expired).
    pub max_held_seats: usize,
    /// New holds within any minute.
    pub max_holds_per_minute: usize,
    /// After a hold expired unconfirmed, how long its client may not hold those seats again.
    pub cooloff: chrono::Duration,
}

impl Default for HoldLimits {
    fn default() -> Self {
        Self { max_held_seats: 10, max_holds_per_minute: 6, cooloff: chrono::Duration::minutes(2) }
    }
}

impl HoldLimits {
    /// The window of [`HoldLimits::max_holds_per_minute`].
    pub const WINDOW: chrono::Duration = chrono::Duration::minutes(1);

    /// How far back the limits look: holds older than this (and ended) no longer count.
    pub fn memory(&self) -> chrono::Duration {
        Self::WINDOW.max(self.cooloff)
    }
}

/// Why a client may not place this hold now, and when it may try again.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitRefusal {
    /// It would hold more than `max` seats of this show at once.
    TooManySeats { held: usize, max: usize, retry_after: std::time::Duration },
    /// It placed `max` holds on this show within the last minute.
    TooManyHolds { max: usize, retry_after: std::time::Duration },
    /// It let a hold on these seats expire a moment ago.
    CoolingOff { seats: Vec<String>, retry_after: std::time::Duration },
}

impl LimitRefusal {
    pub fn retry_after(&self) -> std::time::Duration {
        match self {
            LimitRefusal::TooManySeats { retry_after, .. }
            | LimitRefusal::TooManyHolds { retry_after, .. }
            | LimitRefusal::CoolingOff { retry_after, .. } => *retry_after,
        }
    }
}

/// At least a second, rounded up: what `Retry-After` says.
fn wait_until(at: DateTime<Utc>, now: DateTime<Utc>) -> std::time::Duration {
    let ms = (at - now).num_milliseconds().max(1000);
    std::time::Duration::from_secs(((ms + 999) / 1000) as u64)
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookingEntry {
    pub hold_id: String,
    pub name: String,
    pub email: String,
    pub seats: Vec<usize>,
    pub total_cents: i32,
    pub cancelled: bool,
}

/// Why a hold cannot be placed.
#[derive(Debug, Clone, PartialEq)]
pub enum HoldRefusal {
    Unknown(Vec<String>),
    Taken(Vec<String>),
    /// Only seats of a hold the log has not decided are in the way (its id).
    Undecided(String),
}

/// Why a hold cannot be confirmed.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfirmRefusal {
    NoSuchHold,
    Expired,
    InProgress,
    AlreadyConfirmed(String),
}

/// What confirming a hold will book.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmPlan {
    pub seats: Vec<String>,
    pub total_cents: i32,
}

/// What a show has sold or is holding, counted (see [`SeatMap::occupancy`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupancy {
    pub holds: usize,
    pub bookings: usize,
}

/// One client key's holds, as [`SeatMap::check_limits`] counts them: in the order placed,
/// with some too old to count until the next pruning.
#[derive(Debug, Default)]
struct ClientHolds {
    ids: Vec<Arc<str>>,
    /// Prune the list once it is this long.
    prune_at: usize,
}

impl ClientHolds {
    /// The shortest list worth pruning (with the default limits a client's list stays
    /// about this short, so it is barely ever pruned and always cheap to count).
    const PRUNE_AT_LEAST: usize = 16;
}

#[derive(Debug)]
pub struct SeatMap {
    layout: Arc<Layout>,
    states: Vec<SeatState>,
    holds: HashMap<Arc<str>, HoldEntry>,
    bookings: HashMap<String, BookingEntry>,
    by_key: HashMap<String, Arc<str>>,
    /// The holds of each client key (`Client::keys`) that the limits may still count.
    by_client: HashMap<String, ClientHolds>,
    /// Grows with every change; clients use it to tell fresh maps from stale ones.
    version: u64,
    /// Seats whose state changed since the last [`SeatMap::take_changes`].
    changed: Vec<usize>,
}

impl SeatMap {
    pub fn new(layout: Arc<Layout>) -> Self {
        let states = vec![SeatState::Free; layout.seats.len()];
        Self {
            layout,
            states,
            holds: HashMap::new(),
            bookings: HashMap::new(),
            by_key: HashMap::new(),
            by_client: HashMap::new(),
            version: 0,
            changed: Vec::new(),
        }
    }

    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn states(&self) -> &[SeatState] {
        &self.states
    }

    pub fn free_count(&self) -> usize {
        self.states.iter().filter(|s| **s == SeatState::Free).count()
    }

    pub fn labels(&self, seats: &[usize]) -> Vec<String> {
        seats.iter().map(|&i| self.layout.seats[i].0.to_string()).collect()
    }

    pub fn hold(&self, id: &str) -> Option<&HoldEntry> {
        self.holds.get(id)
    }

    pub fn booking(&self, code: &str) -> Option<&BookingEntry> {
        self.bookings.get(code)
    }

    pub fn hold_for_key(&self, key: &str) -> Option<(&str, &HoldEntry)> {
        let id = self.by_key.get(key)?;
        self.holds.get(id).map(|h| (&**id, h))
    }

    /// Checks a selection against the map: every seat must exist and be free. Seats whose
    /// holder the log has not decided yet are not "taken" (that hold may yet not happen):
    /// if only such seats are in the way, the refusal names the hold to wait for.
    pub fn check_free(&self, selection: &SeatSelection) -> Result<Vec<usize>, HoldRefusal> {
        let mut unknown = Vec::new();
        let mut taken = Vec::new();
        let mut undecided = None;
        let mut idx = Vec::new();
        for seat in selection.seats() {
            match self.layout.seat_index(seat).map(|i| (i, &self.states[i])) {
                None => unknown.push(seat.to_string()),
                Some((i, SeatState::Free)) => idx.push(i),
                Some((_, SeatState::Held(h))) if self.holds.get(h).is_some_and(|e| e.status == HoldStatus::Pending) => {
                    undecided.get_or_insert_with(|| h.to_string());
                }
                Some(_) => taken.push(seat.to_string()),
            }
        }
        if !unknown.is_empty() {
            Err(HoldRefusal::Unknown(unknown))
        } else if !taken.is_empty() {
            Err(HoldRefusal::Taken(taken))
        } else if let Some(h) = undecided {
            Err(HoldRefusal::Undecided(h))
        } else {
            Ok(idx)
        }
    }

    /// Marks the seats held by `id`. The seats must have passed [`Self::check_free`].
    pub fn place_hold(&mut self, id: &str, seats: Vec<usize>, terms: HoldTerms, status: HoldStatus) {
        let id: Arc<str> = Arc::from(id);
        for &i in &seats {
            self.states[i] = SeatState::Held(id.clone());
            self.changed.push(i);
        }
        if let Some(k) = &terms.key {
            self.by_key.insert(k.clone(), id.clone());
        }
        for k in terms.client.keys() {
            self.by_client.entry(k).or_default().ids.push(id.clone());
        }
        self.holds.insert(
            id,
            HoldEntry {
                seats,
                expires_at: terms.expires_at,
                status,
                idempotency_key: terms.key,
                client: terms.client,
                placed_at: terms.placed_at,
                expired_seats: Vec::new(),
            },
        );
        self.version += 1;
    }

    /// Whether `client` may hold `seats` (indexes that passed [`Self::check_free`]) at
    /// `now`: for each of its keys, the seats it holds plus these stay within the limit,
    /// it placed fewer holds than the limit in the last minute, and none of these seats
    /// were in a hold of its that expired within the cool-off. Forgets, now and then, the
    /// holds too old to count.
    ///
    /// Limits that cannot bind are not counted: with no cool-off, a seat limit of at least
    /// the show's seats (a client's live holds never hold more) and fewer holds on record
    /// than the per-minute limit, every hold is allowed without looking at any (an operator
    /// who lifts the limits, as the load tests do for their one address, pays nothing for
    /// them).
    pub fn check_limits(
        &mut self,
        client: &Client,
        seats: &[usize],
        now: DateTime<Utc>,
        limits: &HoldLimits,
    ) -> Result<(), LimitRefusal> {
        let horizon = now - limits.memory();
        let unbound = limits.cooloff <= chrono::Duration::zero() && limits.max_held_seats >= self.states.len();
        for key in client.keys() {
            let Some(list) = self.by_client.get_mut(&key) else { continue };
            let holds = &self.holds;
            // Forgetting is amortized: the list is pruned once it has doubled since the
            // last time. What it still holds that is too old changes no count below (an
            // old hold is neither live, nor recent, nor cooling).
            if list.ids.len() >= list.prune_at {
                list.ids.retain(|id| {
                    holds.get(id).is_some_and(|h| {
                        h.status.keeps_seats()
                            || h.placed_at > horizon
                            || (!h.expired_seats.is_empty() && h.expires_at > horizon)
                    })
                });
                list.prune_at = (2 * list.ids.len()).max(ClientHolds::PRUNE_AT_LEAST);
            }
            if unbound && list.ids.len() < limits.max_holds_per_minute {
                continue;
            }
            let ids = &list.ids;
            let mut held = 0;
            let mut soonest_expiry: Option<DateTime<Utc>> = None;
            let mut recent = Vec::new();
            let mut cooling = Vec::new();
            let mut cool_until: Option<DateTime<Utc>> = None;
            for h in ids.iter().filter_map(|id| holds.get(id)) {
                if h.status.keeps_seats() {
                    held += h.seats.len();
                    soonest_expiry = Some(soonest_expiry.map_or(h.expires_at, |t| t.min(h.expires_at)));
                }
                if h.placed_at > now - HoldLimits::WINDOW {
                    recent.push(h.placed_at);
                }
                // No cool-off (zero) means none at all, even for a hold ended before its
                // time (as the fast path above assumes).
                let until = h.expires_at + limits.cooloff;
                if limits.cooloff > chrono::Duration::zero() && until > now {
                    for s in h.expired_seats.iter().filter(|s| seats.contains(s)) {
                        cooling.push(*s);
                        cool_until = Some(cool_until.map_or(until, |t| t.max(until)));
                    }
                }
            }
            if held + seats.len() > limits.max_held_seats {
                let retry_after = wait_until(soonest_expiry.unwrap_or(now), now);
                return Err(LimitRefusal::TooManySeats { held, max: limits.max_held_seats, retry_after });
            }
            if recent.len() >= limits.max_holds_per_minute {
                recent.sort_unstable();
                // Room again once enough of them are older than a minute.
                let frees = recent[recent.len() - limits.max_holds_per_minute] + HoldLimits::WINDOW;
                return Err(LimitRefusal::TooManyHolds {
                    max: limits.max_holds_per_minute,
                    retry_after: wait_until(frees, now),
                });
            }
            if let Some(until) = cool_until {
                cooling.sort_unstable();
                cooling.dedup();
                return Err(LimitRefusal::CoolingOff {
                    seats: self.labels(&cooling),
                    retry_after: wait_until(until, now),
                });
            }
        }
        Ok(())
    }

    pub fn mark_active(&mut self, id: &str) {
        if let Some(h) = self.holds.get_mut(id) {
            if h.status == HoldStatus::Pending {
                h.status = HoldStatus::Active;
            }
        }
    }

    /// Ends a hold that will not become a booking (expired, released, or never stored);
    /// its seats are free again. Returns whether it was there.
    pub fn end_hold(&mut self, id: &str) -> bool {
        let Some(h) = self.holds.get_mut(id) else { return false };
        if matches!(h.status, HoldStatus::Confirmed(_) | HoldStatus::Ended) {
            // A confirmed hold's seats belong to its booking.
            return false;
        }
        h.status = HoldStatus::Ended;
        let seats = std::mem::take(&mut h.seats);
        let key = h.idempotency_key.take();
        for &i in &seats {
            if matches!(&self.states[i], SeatState::Held(h) if &**h == id) {
                self.states[i] = SeatState::Free;
                self.changed.push(i);
            }
        }
        if let Some(k) = key {
            self.by_key.remove(&k);
        }
        self.version += 1;
        true
    }

    /// Ends a hold whose time ran out unconfirmed (see [`Self::end_hold`]); its client
    /// cools off on its seats.
    pub fn expire_hold(&mut self, id: &str) -> bool {
        let seats = match self.holds.get(id) {
            Some(h) if !matches!(h.status, HoldStatus::Confirmed(_) | HoldStatus::Ended) => h.seats.clone(),
            _ => return false,
        };
        self.end_hold(id);
        if let Some(h) = self.holds.get_mut(id) {
            h.expired_seats = seats;
        }
        true
    }

    /// Remembers a hold that ended before the map was rebuilt.
    pub fn restore_ended(&mut self, id: &str) {
        self.holds.entry(Arc::from(id)).or_insert(HoldEntry {
            seats: Vec::new(),
            expires_at: DateTime::<Utc>::MIN_UTC,
            status: HoldStatus::Ended,
            idempotency_key: None,
            client: Client::default(),
            placed_at: DateTime::<Utc>::MIN_UTC,
            expired_seats: Vec::new(),
        });
    }

    /// Remembers a hold that ended recently, with what the limits count of it: who placed
    /// it and when, and (if it expired) its seats.
    pub fn restore_recent(
        &mut self,
        id: &str,
        client: Client,
        placed_at: DateTime<Utc>,
        expired: Option<(Vec<usize>, DateTime<Utc>)>,
    ) {
        let id: Arc<str> = Arc::from(id);
        for k in client.keys() {
            self.by_client.entry(k).or_default().ids.push(id.clone());
        }
        let (expired_seats, expires_at) = expired.unwrap_or((Vec::new(), DateTime::<Utc>::MIN_UTC));
        match self.holds.get_mut(&id) {
            // Restored already (as ended, or with its booking): it gains who placed it and
            // when, and an ended one its expired seats.
            Some(h) => {
                h.client = client;
                h.placed_at = placed_at;
                if h.status == HoldStatus::Ended {
                    h.expired_seats = expired_seats;
                    h.expires_at = expires_at;
                }
            }
            None => {
                let entry = HoldEntry {
                    seats: Vec::new(),
                    expires_at,
                    status: HoldStatus::Ended,
                    idempotency_key: None,
                    client,
                    placed_at,
                    expired_seats,
                };
                self.holds.insert(id, entry);
            }
        }
    }

    /// Active holds whose time is up at `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<String> {
        self.holds
            .iter()
            .filter(|(_, h)| matches!(h.status, HoldStatus::Active | HoldStatus::Releasing) && h.expires_at <= now)
            .map(|(id, _)| id.to_string())
            .collect()
    }

    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.holds
            .values()
            .filter(|h| matches!(h.status, HoldStatus::Active | HoldStatus::Releasing))
            .map(|h| h.expires_at)
            .min()
    }

    /// Starts confirming a hold: it must be active and not expired.
    pub fn begin_confirm(&mut self, id: &str, now: DateTime<Utc>) -> Result<ConfirmPlan, ConfirmRefusal> {
        let h = self.holds.get_mut(id).ok_or(ConfirmRefusal::NoSuchHold)?;
        match &h.status {
            HoldStatus::Confirmed(code) => return Err(ConfirmRefusal::AlreadyConfirmed(code.clone())),
            HoldStatus::Confirming => return Err(ConfirmRefusal::InProgress),
            HoldStatus::Pending => return Err(ConfirmRefusal::NoSuchHold),
            HoldStatus::Releasing => return Err(ConfirmRefusal::Expired),
            HoldStatus::Ended => return Err(ConfirmRefusal::Expired),
            HoldStatus::Active if h.expires_at <= now => return Err(ConfirmRefusal::Expired),
            HoldStatus::Active => {}
        }
        h.status = HoldStatus::Confirming;
        let seats = h.seats.clone();
        Ok(ConfirmPlan {
            total_cents: seats.iter().map(|&i| self.layout.price_of(i)).sum(),
            seats: self.labels(&seats),
        })
    }

    /// The booking for a confirming hold is durable: its seats are booked.
    pub fn finish_confirm(&mut self, code: &str, booking: BookingEntry) {
        let code_arc: Arc<str> = Arc::from(code);
        for &i in &booking.seats {
            self.states[i] = SeatState::Booked(code_arc.clone());
            self.changed.push(i);
        }
        if let Some(h) = self.holds.get_mut(booking.hold_id.as_str()) {
            h.status = HoldStatus::Confirmed(code.to_string());
        }
        self.bookings.insert(code.to_string(), booking);
        self.version += 1;
    }

    /// Starts releasing an active hold (its seats stay held until the log decides).
    pub fn begin_release(&mut self, id: &str) -> bool {
        match self.holds.get_mut(id) {
            Some(h) if h.status == HoldStatus::Active => {
                h.status = HoldStatus::Releasing;
                true
            }
            _ => false,
        }
    }

    /// The release could not be stored: the hold is active again.
    pub fn abort_release(&mut self, id: &str) {
        if let Some(h) = self.holds.get_mut(id) {
            if h.status == HoldStatus::Releasing {
                h.status = HoldStatus::Active;
            }
        }
    }

    /// The booking could not be stored: the hold is active again.
    pub fn abort_confirm(&mut self, id: &str) {
        if let Some(h) = self.holds.get_mut(id) {
            if h.status == HoldStatus::Confirming {
                h.status = HoldStatus::Active;
            }
        }
    }

    /// A booking was cancelled: its seats are free.
    pub fn cancel(&mut self, code: &str) {
        let Some(b) = self.bookings.get_mut(code) else { return };
        if b.cancelled {
            return;
        }
        b.cancelled = true;
        for &i in &b.seats {
            if matches!(&self.states[i], SeatState::Booked(c) if &**c == code) {
                self.states[i] = SeatState::Free;
                self.changed.push(i);
            }
        }
        self.version += 1;
    }

    /// Restores a stored booking (and the hold it came from) when the map is rebuilt.
    pub fn restore_booking(&mut self, code: &str, booking: BookingEntry) {
        let hold: Arc<str> = Arc::from(booking.hold_id.as_str());
        self.holds.insert(
            hold,
            HoldEntry {
                seats: booking.seats.clone(),
                expires_at: DateTime::<Utc>::MIN_UTC,
                status: HoldStatus::Confirmed(code.to_string()),
                idempotency_key: None,
                client: Client::default(),
                placed_at: DateTime::<Utc>::MIN_UTC,
                expired_seats: Vec::new(),
            },
        );
        if !booking.cancelled {
            let code_arc: Arc<str> = Arc::from(code);
            for &i in &booking.seats {
                self.states[i] = SeatState::Booked(code_arc.clone());
                self.changed.push(i);
            }
        }
        self.bookings.insert(code.to_string(), booking);
        self.version += 1;
    }

    /// The seats that changed since the last call (each once), for live updates.
    pub fn take_changes(&mut self) -> Vec<usize> {
        let mut c = std::mem::take(&mut self.changed);
        c.sort_unstable();
        c.dedup();
        c
    }

    /// How many holds are live (placed, not yet ended or booked: pending, active, being
    /// confirmed or released, or past their time and not yet expired) and how many bookings
    /// it has (cancelled ones included).
    pub fn occupancy(&self) -> Occupancy {
        let holds =
            self.holds.values().filter(|h| !matches!(h.status, HoldStatus::Ended | HoldStatus::Confirmed(_))).count();
        Occupancy { holds, bookings: self.bookings.len() }
    }

    /// Seat indexes for stored labels (unknown labels are skipped).
    pub fn indexes(&self, labels: &[String]) -> Vec<usize> {
        labels.iter().filter_map(|l| SeatLabel::parse(l).ok()).filter_map(|s| self.layout.seat_index(&s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn layout() -> Arc<Layout> {
        Arc::new(Layout::new(
            vec![
                Category { code: "standard".into(), name: "Standard".into(), price_cents: 1200 },
                Category { code: "premium".into(), name: "Premium".into(), price_cents: 1600 },
            ],
            &[("A".into(), 4, 0), ("B".into(), 4, 1)],
        ))
    }

    fn sel(seats: &[&str]) -> SeatSelection {
        SeatSelection::parse(seats).unwrap()
    }

    fn terms(expires_at: DateTime<Utc>, key: Option<&str>) -> HoldTerms {
        HoldTerms {
            placed_at: expires_at - Duration::minutes(8),
            expires_at,
            key: key.map(String::from),
            client: Client::default(),
        }
    }

    fn held(map: &mut SeatMap, id: &str, seats: &[&str], expires: DateTime<Utc>) {
        let idx = map.check_free(&sel(seats)).unwrap();
        map.place_hold(id, idx, terms(expires, None), HoldStatus::Active);
    }

    #[test]
    fn a_held_seat_is_taken_for_everyone_else() {
        let mut map = SeatMap::new(layout());
        let t = Utc::now() + Duration::minutes(8);
        held(&mut map, "h1", &["A1", "A2"], t);
        assert_eq!(map.check_free(&sel(&["A2", "A3"])), Err(HoldRefusal::Taken(vec!["A2".into()])));
        assert_eq!(map.free_count(), 6);
        assert!(map.check_free(&sel(&["A3"])).is_ok());
    }

    #[test]
    fn unknown_seats_are_named() {
        let map = SeatMap::new(layout());
        assert_eq!(
            map.check_free(&sel(&["A1", "Z9", "A5"])),
            Err(HoldRefusal::Unknown(vec!["Z9".into(), "A5".into()]))
        );
    }

    #[test]
    fn expiry_frees_seats_and_only_due_holds() {
        let mut map = SeatMap::new(layout());
        let now = Utc::now();
        held(&mut map, "old", &["A1"], now - Duration::seconds(1));
        held(&mut map, "new", &["A2"], now + Duration::minutes(5));
        assert_eq!(map.due(now), vec!["old".to_string()]);
        assert!(map.end_hold("old"));
        assert!(map.check_free(&sel(&["A1"])).is_ok());
        assert!(map.check_free(&sel(&["A2"])).is_err());
        assert_eq!(map.next_expiry(), Some(now + Duration::minutes(5)));
    }

    #[test]
    fn a_hold_the_log_has_not_decided_is_waited_for_not_called_taken() {
        let mut map = SeatMap::new(layout());
        let t = Utc::now() + Duration::minutes(8);
        let a1 = map.check_free(&sel(&["A1"])).unwrap();
        map.place_hold("p", a1, terms(t, None), HoldStatus::Pending);
        held(&mut map, "h", &["A2"], t);
        assert_eq!(map.check_free(&sel(&["A1"])), Err(HoldRefusal::Undecided("p".into())));
        // A seat that is surely taken decides the refusal, and only it is named.
        assert_eq!(map.check_free(&sel(&["A1", "A2"])), Err(HoldRefusal::Taken(vec!["A2".into()])));
        map.mark_active("p");
        assert_eq!(map.check_free(&sel(&["A1"])), Err(HoldRefusal::Taken(vec!["A1".into()])));
    }

    #[test]
    fn a_release_frees_nothing_until_it_is_decided() {
        let mut map = SeatMap::new(layout());
        let now = Utc::now();
        held(&mut map, "h", &["A1"], now + Duration::minutes(5));
        assert!(map.begin_release("h"));
        assert!(!map.begin_release("h"), "already releasing");
        assert!(map.check_free(&sel(&["A1"])).is_err(), "still held while the log decides");
        assert_eq!(map.begin_confirm("h", now), Err(ConfirmRefusal::Expired));
        map.abort_release("h");
        assert_eq!(map.hold("h").unwrap().status, HoldStatus::Active, "not stored: the hold stands");
        assert!(map.begin_release("h"));
        assert!(map.end_hold("h"));
        assert!(map.check_free(&sel(&["A1"])).is_ok());
    }

    #[test]
    fn confirm_books_seats_at_category_prices_once() {
        let mut map = SeatMap::new(layout());
        let now = Utc::now();
        held(&mut map, "h", &["A1", "B1"], now + Duration::minutes(1));
        let plan = map.begin_confirm("h", now).unwrap();
        assert_eq!(plan.total_cents, 2800);
        assert_eq!(map.begin_confirm("h", now), Err(ConfirmRefusal::InProgress));
        let seats = map.hold("h").unwrap().seats.clone();
        map.finish_confirm(
            "CODE2345",
            BookingEntry {
                hold_id: "h".into(),
                name: "A".into(),
                email: "a@b.co".into(),
                seats,
                total_cents: 2800,
                cancelled: false,
            },
        );
        assert_eq!(map.begin_confirm("h", now), Err(ConfirmRefusal::AlreadyConfirmed("CODE2345".into())));
        // A confirmed hold never expires and is not ended.
        assert!(!map.end_hold("h"));
        assert_eq!(map.states()[0].name(), "booked");
        map.take_changes();
        map.cancel("CODE2345");
        assert_eq!(map.free_count(), 8);
        assert_eq!(map.take_changes(), vec![0, 4]);
        assert!(map.take_changes().is_empty());
    }

    #[test]
    fn an_expired_hold_cannot_be_confirmed_and_a_failed_commit_reopens_it() {
        let mut map = SeatMap::new(layout());
        let now = Utc::now();
        held(&mut map, "late", &["A1"], now - Duration::seconds(1));
        assert_eq!(map.begin_confirm("late", now), Err(ConfirmRefusal::Expired));
        map.end_hold("late");
        assert_eq!(map.begin_confirm("late", now), Err(ConfirmRefusal::Expired));
        assert!(map.check_free(&sel(&["A1"])).is_ok());
        held(&mut map, "h", &["A2"], now + Duration::minutes(1));
        map.begin_confirm("h", now).unwrap();
        map.abort_confirm("h");
        assert!(map.begin_confirm("h", now).is_ok());
        assert_eq!(map.begin_confirm("nope", now), Err(ConfirmRefusal::NoSuchHold));
    }

    #[test]
    fn a_pending_hold_is_not_confirmable_and_idempotency_keys_find_holds() {
        let mut map = SeatMap::new(layout());
        let now = Utc::now();
        let idx = map.check_free(&sel(&["B2"])).unwrap();
        map.place_hold("p", idx, terms(now + Duration::minutes(1), Some("k1")), HoldStatus::Pending);
        assert_eq!(map.begin_confirm("p", now), Err(ConfirmRefusal::NoSuchHold));
        assert_eq!(map.hold_for_key("k1").unwrap().0, "p");
        map.mark_active("p");
        assert!(map.begin_confirm("p", now).is_ok());
        let v = map.version();
        map.end_hold("p");
        assert!(map.hold_for_key("k1").is_none());
        assert!(map.version() > v);
    }

    fn big_layout() -> Arc<Layout> {
        let rows: Vec<(String, usize, usize)> = ["A", "B", "C"].iter().map(|r| (r.to_string(), 12, 0)).collect();
        Arc::new(Layout::new(vec![Category { code: "s".into(), name: "S".into(), price_cents: 1000 }], &rows))
    }

    fn client(addr: &str, session: Option<&str>) -> Client {
        Client::new(Some(addr.parse().unwrap()), session)
    }

    /// Holds `seats` for `who` at `now` if the limits allow, as the show actor does.
    fn try_hold(
        map: &mut SeatMap,
        id: &str,
        who: &Client,
        seats: &[&str],
        now: DateTime<Utc>,
        limits: &HoldLimits,
    ) -> Result<(), LimitRefusal> {
        let idx = map.check_free(&sel(seats)).expect("free");
        map.check_limits(who, &idx, now, limits)?;
        let terms =
            HoldTerms { placed_at: now, expires_at: now + Duration::minutes(8), key: None, client: who.clone() };
        map.place_hold(id, idx, terms, HoldStatus::Active);
        Ok(())
    }

    #[test]
    fn a_client_holds_at_most_the_limit_of_seats_at_once_and_others_are_not_counted() {
        let mut map = SeatMap::new(big_layout());
        let limits = HoldLimits { max_holds_per_minute: 100, ..HoldLimits::default() };
        let now = Utc::now();
        let spinner = client("10.0.0.1", Some("s1"));
        try_hold(&mut map, "h1", &spinner, &["A1", "A2", "A3", "A4", "A5", "A6"], now, &limits).unwrap();
        try_hold(&mut map, "h2", &spinner, &["A7", "A8", "A9", "A10"], now, &limits).unwrap();
        let refused = try_hold(&mut map, "h3", &spinner, &["B1"], now, &limits).unwrap_err();
        assert!(matches!(refused, LimitRefusal::TooManySeats { held: 10, max: 10, .. }), "{refused:?}");
        assert_eq!(refused.retry_after(), std::time::Duration::from_secs(8 * 60), "until its first hold expires");
        // The same session from another address, or the same address with another
        // session, is the same client: whichever is stricter.
        assert!(try_hold(&mut map, "h4", &client("10.0.0.9", Some("s1")), &["B1"], now, &limits).is_err());
        assert!(try_hold(&mut map, "h5", &client("10.0.0.1", Some("s2")), &["B1"], now, &limits).is_err());
        // Another client is served.
        try_hold(&mut map, "h6", &client("10.0.0.2", Some("s3")), &["B1", "B2"], now, &limits).unwrap();
        // Released or booked seats no longer count as held.
        map.end_hold("h2");
        try_hold(&mut map, "h7", &spinner, &["C1", "C2", "C3", "C4"], now, &limits).unwrap();
        // A client nobody knows (no address, no session) is not limited.
        try_hold(
            &mut map,
            "h8",
            &Client::default(),
            &["C5", "C6", "C7", "C8", "C9", "C10", "C11", "C12"],
            now,
            &limits,
        )
        .unwrap();
    }

    /// The amortized pruning and the unbound fast path answer exactly as counting a
    /// freshly pruned list every time would: random holds, ends, expiries and clock steps
    /// by a few clients, on two maps, one of which prunes before every check.
    #[test]
    fn pruning_now_and_then_answers_as_pruning_every_time() {
        use rand::{Rng, SeedableRng};
        for seed in 0..40u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let limits = match seed % 4 {
                // Lifted, as the load tests lift them.
                3 => HoldLimits { max_held_seats: 1_000, max_holds_per_minute: 1_000, cooloff: Duration::zero() },
                // Only the per-minute limit can bind (the show has 36 seats).
                2 => HoldLimits { max_held_seats: 36, max_holds_per_minute: 4, cooloff: Duration::zero() },
                _ => HoldLimits { max_held_seats: 6, max_holds_per_minute: 4, cooloff: Duration::seconds(90) },
            };
            let (mut lazy, mut eager) = (SeatMap::new(big_layout()), SeatMap::new(big_layout()));
            let who = [client("10.0.0.1", Some("s1")), client("10.0.0.2", None), client("10.0.0.1", Some("s2"))];
            let mut now = Utc::now();
            let mut placed: Vec<String> = Vec::new();
            for step in 0..400 {
                match rng.gen_range(0..10) {
                    0..=4 => {
                        let c = &who[rng.gen_range(0..who.len())];
                        let n = rng.gen_range(1..=3);
                        let start = rng.gen_range(0..36 - n);
                        let labels: Vec<String> =
                            (start..start + n).map(|i| format!("{}{}", ["A", "B", "C"][i / 12], i % 12 + 1)).collect();
                        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                        let Ok(idx) = lazy.check_free(&sel(&labels)) else { continue };
                        for list in eager.by_client.values_mut() {
                            list.prune_at = 0;
                        }
                        let a = lazy.check_limits(c, &idx, now, &limits);
                        let b = eager.check_limits(c, &idx, now, &limits);
                        assert_eq!(a, b, "seed {seed}, step {step}");
                        if a.is_ok() {
                            let id = format!("h{step}");
                            for map in [&mut lazy, &mut eager] {
                                let terms = HoldTerms {
                                    placed_at: now,
                                    expires_at: now + Duration::seconds(40),
                                    key: None,
                                    client: c.clone(),
                                };
                                map.place_hold(&id, idx.clone(), terms, HoldStatus::Active);
                            }
                            placed.push(id);
                        }
                    }
                    5 | 6 if !placed.is_empty() => {
                        let id = placed.swap_remove(rng.gen_range(0..placed.len()));
                        let expire = rng.gen_bool(0.5);
                        for map in [&mut lazy, &mut eager] {
                            if expire {
                                map.expire_hold(&id);
                            } else {
                                map.end_hold(&id);
                            }
                        }
                    }
                    _ => now += Duration::seconds(rng.gen_range(1..30)),
                }
            }
        }
    }

    /// With the limits lifted (the load tests' one address), a client's list does not grow
    /// without end: it is pruned once it has doubled, and holds no longer counted go.
    #[test]
    fn a_lifted_limit_still_forgets_old_holds() {
        let mut map = SeatMap::new(big_layout());
        let limits = HoldLimits { max_held_seats: 10_000, max_holds_per_minute: 10_000, cooloff: Duration::zero() };
        let who = client("10.0.0.1", None);
        let t0 = Utc::now();
        for round in 0..200 {
            let now = t0 + Duration::minutes(round);
            try_hold(&mut map, &format!("h{round}"), &who, &["A1"], now, &limits).unwrap();
            map.end_hold(&format!("h{round}"));
        }
        let list = &map.by_client["a:10.0.0.1"];
        assert!(list.ids.len() <= ClientHolds::PRUNE_AT_LEAST, "{} holds remembered", list.ids.len());
    }

    #[test]
    fn a_client_places_at_most_the_limit_of_holds_a_minute() {
        let mut map = SeatMap::new(big_layout());
        let limits = HoldLimits::default();
        let t0 = Utc::now();
        let who = client("10.0.0.1", None);
        for i in 0..6 {
            let seat = format!("A{}", i + 1);
            try_hold(&mut map, &format!("h{i}"), &who, &[&seat], t0 + Duration::seconds(i * 5), &limits).unwrap();
            map.end_hold(&format!("h{i}"));
        }
        let now = t0 + Duration::seconds(30);
        let refused = try_hold(&mut map, "h6", &who, &["B1"], now, &limits).unwrap_err();
        assert_eq!(refused, LimitRefusal::TooManyHolds { max: 6, retry_after: std::time::Duration::from_secs(30) });
        // A minute after the first, there is room for one more.
        try_hold(&mut map, "h7", &who, &["B1"], t0 + Duration::seconds(61), &limits).unwrap();
        assert!(try_hold(&mut map, "h8", &who, &["B2"], t0 + Duration::seconds(62), &limits).is_err());
    }

    #[test]
    fn a_client_whose_hold_expired_cools_off_on_those_seats_only() {
        let mut map = SeatMap::new(big_layout());
        let limits = HoldLimits::default();
        let t0 = Utc::now();
        let who = client("10.0.0.1", Some("s"));
        try_hold(&mut map, "h1", &who, &["A1", "A2"], t0, &limits).unwrap();
        let expiry = t0 + Duration::minutes(8);
        assert!(map.expire_hold("h1"));
        let refused =
            try_hold(&mut map, "h2", &who, &["A2", "A3"], expiry + Duration::seconds(30), &limits).unwrap_err();
        assert_eq!(
            refused,
            LimitRefusal::CoolingOff { seats: vec!["A2".into()], retry_after: std::time::Duration::from_secs(90) }
        );
        try_hold(&mut map, "h3", &who, &["A3", "A4"], expiry + Duration::seconds(30), &limits).unwrap();
        try_hold(&mut map, "h4", &client("10.0.0.2", None), &["A1"], expiry + Duration::seconds(30), &limits).unwrap();
        try_hold(&mut map, "h5", &who, &["A2"], expiry + limits.cooloff, &limits).unwrap();
        // A released hold is no reason to cool off.
        try_hold(&mut map, "h6", &who, &["B1"], expiry + limits.cooloff, &limits).unwrap();
        map.end_hold("h6");
        try_hold(&mut map, "h7", &who, &["B1"], expiry + limits.cooloff, &limits).unwrap();
    }

    #[test]
    fn limits_rebuilt_from_recent_holds_count_as_before() {
        let mut map = SeatMap::new(big_layout());
        let limits = HoldLimits::default();
        let now = Utc::now();
        let who = client("10.0.0.1", None);
        let seats = map.indexes(&["A1".to_string()]);
        map.restore_recent("old", who.clone(), now - Duration::minutes(9), Some((seats, now - Duration::minutes(1))));
        for i in 0..5 {
            map.restore_recent(&format!("r{i}"), who.clone(), now - Duration::seconds(10), None);
        }
        assert!(matches!(try_hold(&mut map, "x", &who, &["A1"], now, &limits), Err(LimitRefusal::CoolingOff { .. })));
        try_hold(&mut map, "y", &who, &["A2"], now, &limits).unwrap();
        assert!(matches!(try_hold(&mut map, "z", &who, &["A3"], now, &limits), Err(LimitRefusal::TooManyHolds { .. })));
    }
}
