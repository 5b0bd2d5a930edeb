//! How old the entries a follower lacks are: the master remembers when it appended each
//! batch of its log, and a follower's lag in seconds is the age of the oldest entry after
//! the one it acknowledged. Plain data, times passed in (milliseconds, as the core's).
use super::core::{Lsn, Time};
use std::collections::VecDeque;

/// Batches remembered at most (a lagging follower beyond them is reported at the age of
/// the oldest one: a lower bound).
const MAX_SAMPLES: usize = 100_000;

/// When the master's log reached each LSN it appended up to.
#[derive(Debug, Default, Clone)]
pub struct AppendTimes {
    /// (the last LSN of a batch, when it was appended), LSNs ascending.
    samples: VecDeque<(Lsn, Time)>,
}

impl AppendTimes {
    /// The log reached `last` at `at`. A log that was cut (an LSN not above the last one
    /// remembered) starts the record again.
    pub fn record(&mut self, last: Lsn, at: Time) {
        if self.samples.back().is_some_and(|&(l, _)| l >= last) {
            self.samples.clear();
        }
        self.samples.push_back((last, at));
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// Forgets the batches every follower has (up to `lsn`).
    pub fn forget_through(&mut self, lsn: Lsn) {
        while self.samples.front().is_some_and(|&(l, _)| l <= lsn) {
            self.samples.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.samples.clear();
    }

    /// At `now`, the age of the oldest entry after `matched` (0 when nothing remembered is
    /// after it).
    pub fn lag_ms(&self, matched: Lsn, now: Time) -> u64 {
        let first_missing = self.samples.iter().find(|&&(l, _)| l > matched);
        first_missing.map_or(0, |&(_, at)| now.saturating_sub(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_is_as_late_as_the_oldest_batch_it_lacks() {
        let mut t = AppendTimes::default();
        t.record(10, 1_000);
        t.record(15, 1_400);
        t.record(40, 2_000);
        assert_eq!(t.lag_ms(40, 2_500), 0, "has everything");
        assert_eq!(t.lag_ms(15, 2_500), 500, "lacks 16..=40, appended at 2000");
        assert_eq!(t.lag_ms(12, 2_500), 1_100, "lacks 13..=15 too, appended at 1400");
        assert_eq!(t.lag_ms(0, 2_500), 1_500);
    }

    #[test]
    fn what_every_follower_has_is_forgotten_and_a_cut_log_starts_again() {
        let mut t = AppendTimes::default();
        t.record(10, 1_000);
        t.record(20, 2_000);
        t.forget_through(10);
        assert_eq!(t.lag_ms(0, 3_000), 1_000, "the batch up to 10 is forgotten");
        t.record(12, 2_500);
        assert_eq!(t.lag_ms(0, 3_000), 500, "after a cut only the new batch counts");
        assert_eq!(t.lag_ms(12, 3_000), 0);
    }
}
