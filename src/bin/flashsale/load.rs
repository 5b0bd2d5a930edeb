//! The load: what the clients know about the shows, the customers and the seat-map watchers.
use crate::http::{get, http_client, post, Answer, BookingReply, ConfirmRequest, HoldReply, HoldRequest, SeatMapReply};
use crate::measure::micros;
use rand::seq::SliceRandom;
use rand::Rng;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a client picks its two seats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pick {
    /// Two that the latest seat map shows free and no other client here is trying.
    Free,
    /// Any two: 409s grow as the shows fill.
    Random,
    /// "The best two": the show actor chooses (`{"best": 2}`), as the show page's form does.
    Best,
}

impl Pick {
    pub fn name(self) -> &'static str {
        match self {
            Pick::Free => "free",
            Pick::Random => "random",
            Pick::Best => "best",
        }
    }
}

// ---------------------------------------------------------------------------------------
// What the clients know about the shows (shared by every load thread)

#[derive(Default)]
struct ShowPool {
    /// Seats the latest map showed free that no client here is trying, in random order.
    free: Vec<String>,
    /// Seats a client here has asked for and not heard back about.
    trying: HashSet<String>,
    /// Free seats in the latest map: the sale of this show is over below 2.
    map_free: usize,
    /// Seats sold here (acknowledged bookings): the map cannot show more free than the
    /// rest, so a show is over as soon as its last booking is acknowledged, not at its
    /// next map read (every 2 s per show past 10 shows, which stretched a sale's time).
    sold: usize,
}

/// The shows on sale and what the latest seat maps said of them.
pub struct Market {
    pub pick: Pick,
    /// Every seat label of the layout (for `Pick::Random`).
    labels: Vec<String>,
    pub shows: Vec<i64>,
    pools: Mutex<HashMap<i64, ShowPool>>,
}

impl Market {
    pub fn new(pick: Pick, labels: Vec<String>, shows: Vec<i64>) -> Self {
        Self { pick, labels, shows, pools: Mutex::new(HashMap::new()) }
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, HashMap<i64, ShowPool>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A show and two seats to try (None: the best two), or None if nothing is to be had
    /// right now.
    pub fn pick(&self, rng: &mut impl Rng) -> Option<(i64, Option<[String; 2]>)> {
        let mut pools = self.pools();
        let open: Vec<i64> = self
            .shows
            .iter()
            .copied()
            .filter(|id| {
                pools.get(id).is_some_and(|p| p.map_free >= 2 && (self.pick != Pick::Free || p.free.len() >= 2))
            })
            .collect();
        let show = *open.choose(rng)?;
        let pool = pools.get_mut(&show)?;
        let seats = match self.pick {
            Pick::Random => {
                let two: Vec<&String> = self.labels.choose_multiple(rng, 2).collect();
                Some([two[0].clone(), two[1].clone()])
            }
            Pick::Free => {
                let (a, b) = (pool.free.pop()?, pool.free.pop()?);
                pool.trying.insert(a.clone());
                pool.trying.insert(b.clone());
                Some([a, b])
            }
            Pick::Best => None,
        };
        Some((show, seats))
    }

    /// The client heard back about these seats.
    pub fn answered(&self, show: i64, seats: &Option<[String; 2]>) {
        if let (Pick::Free, Some(seats)) = (self.pick, seats) {
            if let Some(p) = self.pools().get_mut(&show) {
                for s in seats {
                    p.trying.remove(s);
                }
            }
        }
    }

    pub fn refreshed(&self, show: i64, map: SeatMapReply, rng: &mut impl Rng) {
        let map_free = map.free;
        let mut free = map.free_seats();
        let mut pools = self.pools();
        let pool = pools.entry(show).or_default();
        free.retain(|s| !pool.trying.contains(s));
        free.shuffle(rng);
        pool.free = free;
        pool.map_free = map_free.min(self.labels.len().saturating_sub(pool.sold));
    }

    /// A booking of `seats` seats of `show` was acknowledged.
    pub fn sold(&self, show: i64, seats: usize) {
        let mut pools = self.pools();
        let pool = pools.entry(show).or_default();
        pool.sold += seats;
        pool.map_free = pool.map_free.min(self.labels.len().saturating_sub(pool.sold));
    }

    /// Every show's latest map has fewer than two free seats.
    pub fn sold_out(&self) -> bool {
        let pools = self.pools();
        self.shows.iter().all(|id| pools.get(id).is_some_and(|p| p.map_free < 2))
    }

    pub fn free_total(&self) -> usize {
        self.pools().values().map(|p| p.map_free).sum()
    }

    /// Shows still open: (id, free in the map, seats to try, seats being tried).
    pub fn open_shows(&self) -> Vec<(i64, usize, usize, usize)> {
        let mut open: Vec<_> = self
            .pools()
            .iter()
            .filter(|(_, p)| p.map_free >= 2)
            .map(|(id, p)| (*id, p.map_free, p.free.len(), p.trying.len()))
            .collect();
        open.sort_unstable();
        open
    }
}

// ---------------------------------------------------------------------------------------
// The load

/// A booking the node acknowledged (201 to a confirm).
pub struct Ack {
    pub code: String,
    pub show: i64,
    pub seats: Vec<String>,
}

#[derive(Default)]
pub struct Tally {
    pub holds_201: u64,
    pub holds_409: u64,
    /// Latencies in microseconds.
    pub hold_201_us: Vec<u32>,
    pub hold_409_us: Vec<u32>,
    pub confirm_us: Vec<u32>,
    /// When each confirm was acknowledged, in ms since the start.
    pub confirmed_at_ms: Vec<u32>,
    pub hold_errors: BTreeMap<String, u64>,
    pub confirm_errors: BTreeMap<String, u64>,
    pub map_reads: u64,
    pub map_errors: u64,
    pub acks: Vec<Ack>,
}

impl Tally {
    pub fn merge(&mut self, o: Tally) {
        self.holds_201 += o.holds_201;
        self.holds_409 += o.holds_409;
        self.hold_201_us.extend(o.hold_201_us);
        self.hold_409_us.extend(o.hold_409_us);
        self.confirm_us.extend(o.confirm_us);
        self.confirmed_at_ms.extend(o.confirmed_at_ms);
        for (k, v) in o.hold_errors {
            *self.hold_errors.entry(k).or_default() += v;
        }
        for (k, v) in o.confirm_errors {
            *self.confirm_errors.entry(k).or_default() += v;
        }
        self.map_reads += o.map_reads;
        self.map_errors += o.map_errors;
        self.acks.extend(o.acks);
    }
}

pub struct Load {
    /// The nodes to send requests to; customer `n` uses `bases[n % len]`.
    pub bases: Vec<String>,
    pub market: Arc<Market>,
    pub start: Instant,
    pub deadline: Instant,
    pub stop: Arc<AtomicBool>,
    /// How often each show's map is re-read.
    pub refresh: Duration,
}

impl Load {
    pub fn base(&self, n: usize) -> &str {
        &self.bases[n % self.bases.len()]
    }

    pub fn finished(&self) -> bool {
        Instant::now() >= self.deadline || self.stop.load(Ordering::SeqCst) || self.market.sold_out()
    }
}

/// One customer after another: hold two seats, confirm them, again.
pub async fn customer(n: usize, load: Rc<Load>, client: Rc<awc::Client>, tally: Rc<RefCell<Tally>>) {
    let mut rng = rand::thread_rng();
    let mut booked = 0u64;
    while !load.finished() {
        let Some((show, seats)) = load.market.pick(&mut rng) else {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let sent = Instant::now();
        let answer = post::<HoldReply>(
            &client,
            format!("{}/api/shows/{show}/holds", load.base(n)),
            &match &seats {
                Some(seats) => HoldRequest::Seats { seats },
                None => HoldRequest::Best { best: 2 },
            },
        )
        .await;
        let took = micros(sent);
        load.market.answered(show, &seats);
        let hold = match answer {
            Answer::Ok(hold) => {
                let mut t = tally.borrow_mut();
                t.holds_201 += 1;
                t.hold_201_us.push(took);
                hold
            }
            Answer::Status(409) => {
                let mut t = tally.borrow_mut();
                t.holds_409 += 1;
                t.hold_409_us.push(took);
                continue;
            }
            Answer::Status(status) => {
                *tally.borrow_mut().hold_errors.entry(status.to_string()).or_default() += 1;
                continue;
            }
            Answer::Transport(e) => {
                *tally.borrow_mut().hold_errors.entry(e).or_default() += 1;
                actix_rt::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        booked += 1;
        let buyer = ConfirmRequest { name: format!("Client {n}"), email: format!("c{n}.{booked}@example.com") };
        let sent = Instant::now();
        let answer =
            post::<BookingReply>(&client, format!("{}/api/holds/{}/confirm", load.base(n), hold.hold_id), &buyer).await;
        let took = micros(sent);
        let mut t = tally.borrow_mut();
        match answer {
            Answer::Ok(booking) => {
                load.market.sold(show, booking.seats.len());
                t.confirm_us.push(took);
                t.confirmed_at_ms.push(load.start.elapsed().as_millis() as u32);
                t.acks.push(Ack { code: booking.code, show, seats: booking.seats });
            }
            Answer::Status(status) => *t.confirm_errors.entry(status.to_string()).or_default() += 1,
            Answer::Transport(e) => *t.confirm_errors.entry(e).or_default() += 1,
        }
    }
}

/// Re-reads one show's seat map while the load runs.
/// The first read comes after `offset`, so the shows' reads are spread out.
pub async fn watch_show(
    show: i64,
    offset: Duration,
    load: Rc<Load>,
    client: Rc<awc::Client>,
    tally: Rc<RefCell<Tally>>,
) {
    let mut rng = rand::thread_rng();
    let mut next = Instant::now() + offset;
    loop {
        // Short naps, so the watcher ends soon after the customers.
        while let Some(wait) = next.checked_duration_since(Instant::now()).filter(|_| !load.finished()) {
            actix_rt::time::sleep(wait.min(Duration::from_millis(20))).await;
        }
        if load.finished() {
            return;
        }
        next += load.refresh;
        match get::<SeatMapReply>(&client, format!("{}/api/shows/{show}/seats", load.base(show as usize))).await {
            Answer::Ok(map) => {
                tally.borrow_mut().map_reads += 1;
                load.market.refreshed(show, map, &mut rng);
            }
            _ => tally.borrow_mut().map_errors += 1,
        }
    }
}

/// `clients` customers on the current thread's System; the first thread also watches maps.
/// Returns what they saw and when the last customer stopped.
pub async fn run_clients(first: usize, clients: usize, watch: bool, load: Rc<Load>) -> (Tally, Instant) {
    let shows = load.market.shows.clone();
    let client = Rc::new(http_client(clients + if watch { shows.len() } else { 0 }));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let mut watchers = Vec::new();
    if watch {
        for (i, &show) in shows.iter().enumerate() {
            let offset = load.refresh.mul_f64(i as f64 / shows.len() as f64);
            watchers.push(actix_rt::spawn(watch_show(show, offset, load.clone(), client.clone(), tally.clone())));
        }
    }
    let customers: Vec<_> = (first..first + clients)
        .map(|n| actix_rt::spawn(customer(n, load.clone(), client.clone(), tally.clone())))
        .collect();
    for t in customers {
        let _ = t.await;
    }
    let ended = Instant::now();
    for t in watchers {
        let _ = t.await;
    }
    drop(client);
    (Rc::try_unwrap(tally).map(RefCell::into_inner).unwrap_or_default(), ended)
}
