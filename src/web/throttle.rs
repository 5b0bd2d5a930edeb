//! Slows down guessing, per client address: wrong admin passwords, and look-ups of
//! bookings by code and email that find nothing. Each node counts in its own memory, and
//! each address apart, so a flood from one address never slows another; the number of
//! addresses remembered is bounded, so a flood from many cannot exhaust memory either.
//!
//! Not the `governor` crate: a rate limiter admits N per period whatever happens, while
//! this waits longer after each *failure* (exponential back-off) and forgets on success.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Slows down guessing, per client address. Every attempt counts as a strike until it
/// succeeds: after `n` strikes the next attempt waits its turn, `BASE * 2^(n-1)` after the
/// previous one (at most `CAP` apart), so attempts sent in parallel queue up one after the
/// other instead of running together. An attempt that would wait longer than `MAX_WAIT`
/// is refused at once. A success, or `FORGET` without attempts, clears the address.
#[derive(Debug)]
pub struct Throttle {
    clients: HashMap<Option<IpAddr>, Strikes>,
    cap: usize,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

#[derive(Debug)]
struct Strikes {
    strikes: u32,
    next_turn: Instant,
    last_attempt: Instant,
}

impl Throttle {
    pub const BASE: Duration = Duration::from_millis(500);
    pub const CAP: Duration = Duration::from_secs(8);
    pub const MAX_WAIT: Duration = Duration::from_secs(30);
    pub const FORGET: Duration = Duration::from_secs(15 * 60);

    /// A throttle that remembers at most `cap` addresses (past it, those not seen for
    /// `FORGET` go, else the one seen longest ago).
    pub fn with_capacity(cap: usize) -> Self {
        Self { clients: HashMap::new(), cap: cap.max(1) }
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    fn delay(strikes: u32) -> Duration {
        match strikes {
            0 => Duration::ZERO,
            n => Self::BASE.saturating_mul(1 << (n - 1).min(10)).min(Self::CAP),
        }
    }

    /// Makes room for one more address.
    fn make_room(&mut self, now: Instant) {
        if self.clients.len() < self.cap {
            return;
        }
        self.clients.retain(|_, s| now.saturating_duration_since(s.last_attempt) < Self::FORGET);
        if self.clients.len() >= self.cap {
            let oldest = self.clients.iter().min_by_key(|(_, s)| s.last_attempt).map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.clients.remove(&k);
            }
        }
    }

    /// Takes an attempt: how long it must wait before it is checked, or (refused) how long
    /// until one may be tried again.
    pub fn admit(&mut self, who: Option<IpAddr>, now: Instant) -> Result<Duration, Duration> {
        if !self.clients.contains_key(&who) {
            self.make_room(now);
        }
        let s = self.clients.entry(who).or_insert(Strikes { strikes: 0, next_turn: now, last_attempt: now });
        if now.saturating_duration_since(s.last_attempt) >= Self::FORGET {
            *s = Strikes { strikes: 0, next_turn: now, last_attempt: now };
        }
        let wait = s.next_turn.saturating_duration_since(now);
        if wait > Self::MAX_WAIT {
            return Err(wait);
        }
        s.strikes = s.strikes.saturating_add(1);
        s.last_attempt = now;
        s.next_turn = s.next_turn.max(now) + Self::delay(s.strikes);
        Ok(wait)
    }

    /// The attempt failed: its strike stays.
    pub fn failed(&mut self, who: Option<IpAddr>, now: Instant) {
        if let Some(s) = self.clients.get_mut(&who) {
            s.last_attempt = s.last_attempt.max(now);
        }
    }

    /// The attempt succeeded: the address starts afresh.
    pub fn succeeded(&mut self, who: Option<IpAddr>) {
        self.clients.remove(&who);
    }
}

/// A [`Throttle`] shared by a node's workers, for guesses that go through the web.
#[derive(Debug, Default)]
pub struct Guard(std::sync::Mutex<Throttle>);

impl Guard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits this address's turn (without blocking a thread); refused at once with the
    /// time to wait when its queue is too long.
    pub async fn wait_turn(&self, who: Option<IpAddr>) -> Result<(), Duration> {
        let wait = self.lock().admit(who, Instant::now())?;
        if !wait.is_zero() {
            actix_web::rt::time::sleep(wait).await;
        }
        Ok(())
    }

    /// The guess found something (forget the address) or nothing (one more strike).
    pub fn record(&self, who: Option<IpAddr>, found: bool) {
        let mut t = self.lock();
        if found {
            t.succeeded(who);
        } else {
            t.failed(who, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_attempts_make_later_ones_wait_longer_and_parallel_ones_queue() {
        let mut t = Throttle::default();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        assert_eq!(t.admit(ip, t0), Ok(Duration::ZERO));
        t.failed(ip, t0);
        assert_eq!(t.admit(ip, t0), Ok(Throttle::BASE), "the second waits");
        t.failed(ip, t0);
        // Attempts at once queue up, each further apart.
        assert_eq!(t.admit(ip, t0), Ok(Throttle::BASE * 3));
        assert_eq!(t.admit(ip, t0), Ok(Throttle::BASE * 7));
        assert_eq!(t.admit(other, t0), Ok(Duration::ZERO), "other addresses are not slowed");
        let queue: Vec<_> = (0..20).map(|_| t.admit(ip, t0)).collect();
        assert!(queue.iter().all(|w| w.is_err() || *w <= Ok(Throttle::MAX_WAIT)));
        assert!(queue.last().unwrap().is_err(), "a long queue is refused at once");
        assert_eq!(Throttle::delay(30), Throttle::CAP);
        t.succeeded(ip);
        assert_eq!(t.admit(ip, t0), Ok(Duration::ZERO), "a success starts afresh");
        t.failed(ip, t0);
        assert_eq!(t.admit(ip, t0 + Throttle::FORGET), Ok(Duration::ZERO), "forgotten after a while");
    }

    #[test]
    fn fifty_attempts_at_once_from_one_address_mostly_wait_or_are_refused() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let ip = Some(IpAddr::from([203, 0, 113, 66]));
        let answers: Vec<_> = (0..50).map(|_| t.admit(ip, now)).collect();
        let at_once = answers.iter().filter(|a| **a == Ok(Duration::ZERO)).count();
        let refused = answers.iter().filter(|a| a.is_err()).count();
        assert_eq!(at_once, 1);
        assert!(refused >= 40, "{answers:?}");
    }

    #[test]
    fn memory_is_bounded_and_a_flood_from_many_forgets_the_oldest() {
        let mut t = Throttle::with_capacity(3);
        let now = Instant::now();
        for i in 0..10u8 {
            let at = now + Duration::from_millis(i as u64);
            t.admit(Some(IpAddr::from([10, 0, 0, i])), at).unwrap();
            t.failed(Some(IpAddr::from([10, 0, 0, i])), at);
        }
        assert_eq!(t.len(), 3);
        let later = now + Duration::from_millis(20);
        assert!(t.admit(Some(IpAddr::from([10, 0, 0, 9])), later).unwrap() > Duration::ZERO);
        assert_eq!(t.admit(Some(IpAddr::from([10, 0, 0, 0])), later), Ok(Duration::ZERO), "forgotten");
    }
}
