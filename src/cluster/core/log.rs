//! What the protocol knows of a node's log without its payloads: where it ends, the epoch
//! of every entry (as runs: epochs change rarely, so this stays small however long the log
//! grows), and every membership entry.
use super::types::{EntryMeta, Epoch, Lsn, Membership, Position, Run};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogIndex {
    runs: Vec<Run>,
    last: Lsn,
    memberships: Vec<(Lsn, Membership)>,
}

/// An entry that does not continue the log (a bug in whoever asked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {got} does not follow the log's last entry {last}")]
pub struct NotNext {
    pub last: Lsn,
    pub got: Lsn,
}

impl LogIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of a log holding `entries`, in order from LSN 1.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a EntryMeta>) -> Result<Self, NotNext> {
        let mut log = Self::new();
        for e in entries {
            log.append(e)?;
        }
        Ok(log)
    }

    /// The index of a stored log, from its runs (ascending), its last LSN and its
    /// membership entries (ascending).
    pub fn from_parts(runs: Vec<Run>, last: Lsn, memberships: Vec<(Lsn, Membership)>) -> Self {
        Self { runs, last, memberships }
    }

    pub fn last(&self) -> Position {
        Position { epoch: self.runs.last().map(|r| r.epoch).unwrap_or(0), lsn: self.last }
    }

    pub fn is_empty(&self) -> bool {
        self.last == 0
    }

    /// The epoch of the entry at `lsn` (0 for the empty prefix), None past the end.
    pub fn epoch_at(&self, lsn: Lsn) -> Option<Epoch> {
        if lsn == 0 {
            return Some(0);
        }
        if lsn > self.last {
            return None;
        }
        let i = self.runs.partition_point(|r| r.first <= lsn);
        self.runs.get(i.checked_sub(1)?).map(|r| r.epoch)
    }

    /// Whether this log holds the entry at `p` (the log before it then agrees too).
    pub fn holds(&self, p: Position) -> bool {
        self.epoch_at(p.lsn) == Some(p.epoch)
    }

    pub fn append(&mut self, e: &EntryMeta) -> Result<(), NotNext> {
        if e.lsn != self.last + 1 {
            return Err(NotNext { last: self.last, got: e.lsn });
        }
        if self.runs.last().map(|r| r.epoch) != Some(e.epoch) {
            self.runs.push(Run { first: e.lsn, epoch: e.epoch });
        }
        if let Some(m) = &e.membership {
            self.memberships.push((e.lsn, m.clone()));
        }
        self.last = e.lsn;
        Ok(())
    }

    /// Removes every entry after `lsn`.
    pub fn truncate_after(&mut self, lsn: Lsn) {
        if lsn >= self.last {
            return;
        }
        self.runs.retain(|r| r.first <= lsn);
        self.memberships.retain(|(l, _)| *l <= lsn);
        self.last = lsn;
    }

    pub fn runs(&self) -> Vec<Run> {
        self.runs.clone()
    }

    /// The newest membership in the log (in force as soon as it is appended), with its LSN.
    pub fn membership(&self) -> Option<(Lsn, &Membership)> {
        self.memberships.last().map(|(l, m)| (*l, m))
    }

    /// The membership in force at `lsn`.
    pub fn membership_at(&self, lsn: Lsn) -> Option<&Membership> {
        self.memberships.iter().rev().find(|(l, _)| *l <= lsn).map(|(_, m)| m)
    }

    /// The last LSN where this log and another (given by its runs and end) agree. Two logs
    /// that hold the same entry hold the same entries before it, so the agreement is a
    /// prefix; it can only stop just before a run starts in one of them, or at the shorter
    /// end.
    pub fn common_with(&self, runs: &[Run], last: Lsn) -> Lsn {
        let theirs = LogIndex { runs: runs.to_vec(), last, memberships: Vec::new() };
        let end = self.last.min(last);
        let candidates = std::iter::once(end)
            .chain(self.runs.iter().chain(runs.iter()).map(|r| r.first.saturating_sub(1)))
            .filter(|l| *l <= end);
        candidates.filter(|l| self.epoch_at(*l) == theirs.epoch_at(*l)).max().unwrap_or(0)
    }

    /// Forgets membership entries older than the newest one at or before `lsn` (they can
    /// no longer be truncated, so they will never be in force again).
    pub fn forget_memberships_before(&mut self, lsn: Lsn) {
        let keep_from = self.memberships.iter().rposition(|(l, _)| *l <= lsn).unwrap_or(0);
        self.memberships.drain(..keep_from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(epochs: &[Epoch]) -> LogIndex {
        let metas: Vec<EntryMeta> = epochs
            .iter()
            .enumerate()
            .map(|(i, e)| EntryMeta { lsn: i as Lsn + 1, epoch: *e, membership: None })
            .collect();
        LogIndex::from_entries(&metas).unwrap()
    }

    #[test]
    fn epochs_are_found_by_run() {
        let l = log(&[1, 1, 2, 2, 2, 5]);
        assert_eq!(l.epoch_at(0), Some(0));
        assert_eq!(l.epoch_at(1), Some(1));
        assert_eq!(l.epoch_at(3), Some(2));
        assert_eq!(l.epoch_at(6), Some(5));
        assert_eq!(l.epoch_at(7), None);
        assert_eq!(l.last(), Position { epoch: 5, lsn: 6 });
        assert_eq!(l.runs().len(), 3);
    }

    #[test]
    fn appends_must_follow_and_truncation_drops_runs() {
        let mut l = log(&[1, 1, 2]);
        assert_eq!(l.append(&EntryMeta { lsn: 5, epoch: 2, membership: None }), Err(NotNext { last: 3, got: 5 }));
        l.truncate_after(2);
        assert_eq!(l.last(), Position { epoch: 1, lsn: 2 });
        l.append(&EntryMeta { lsn: 3, epoch: 3, membership: None }).unwrap();
        assert_eq!(l.epoch_at(3), Some(3));
        l.truncate_after(0);
        assert!(l.is_empty());
        assert_eq!(l.last(), Position::default());
    }

    #[test]
    fn the_common_prefix_of_two_logs() {
        let a = log(&[1, 1, 1, 3, 3, 3]);
        let b = log(&[1, 1, 1, 1, 2, 2, 2]);
        assert_eq!(a.common_with(&b.runs(), 7), 3);
        assert_eq!(b.common_with(&a.runs(), 6), 3);
        let c = log(&[1, 1]);
        assert_eq!(a.common_with(&c.runs(), 2), 2);
        assert_eq!(c.common_with(&a.runs(), 6), 2);
        let d = log(&[2, 2]);
        assert_eq!(a.common_with(&d.runs(), 2), 0);
        assert_eq!(a.common_with(&[], 0), 0);
        assert_eq!(a.common_with(&a.runs(), 6), 6);
    }

    #[test]
    fn memberships_follow_the_log() {
        let m1 = Membership::of_voters([1]);
        let m2 = Membership::of_voters([1, 2]);
        let mut l = LogIndex::new();
        l.append(&EntryMeta { lsn: 1, epoch: 0, membership: Some(m1.clone()) }).unwrap();
        l.append(&EntryMeta { lsn: 2, epoch: 1, membership: None }).unwrap();
        l.append(&EntryMeta { lsn: 3, epoch: 1, membership: Some(m2.clone()) }).unwrap();
        assert_eq!(l.membership(), Some((3, &m2)));
        assert_eq!(l.membership_at(2), Some(&m1));
        l.truncate_after(2);
        assert_eq!(l.membership(), Some((1, &m1)));
        l.append(&EntryMeta { lsn: 3, epoch: 2, membership: Some(m2.clone()) }).unwrap();
        l.forget_memberships_before(3);
        assert_eq!(l.membership_at(1), None);
        assert_eq!(l.membership(), Some((3, &m2)));
    }
}
