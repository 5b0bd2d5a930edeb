//! What the protocol knows of a node's log without its payloads: where it ends, the epoch
//! of every entry (as runs: epochs change rarely, so this stays small however long the log
//! grows), and every membership entry. A compacted log starts after its *base*: the entries
//! up to it are committed and live on only in the node's tables (a snapshot), and the index
//! knows of them only the base's epoch and the membership in force there.
use super::types::{EntryMeta, Epoch, Lsn, Membership, Position, Run};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogIndex {
    runs: Vec<Run>,
    last: Lsn,
    memberships: Vec<(Lsn, Membership)>,
    /// The last compacted entry (0/0: none).
    base: Position,
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
        Self { runs, last, memberships, base: Position::default() }
    }

    /// The index of a log compacted up to `base` (where `membership` was in force), holding
    /// the entries after it as `runs`, `last` and `memberships` describe them.
    pub fn compacted(
        base: Position,
        membership: Option<Membership>,
        runs: Vec<Run>,
        last: Lsn,
        memberships: Vec<(Lsn, Membership)>,
    ) -> Self {
        let mut all = vec![Run { first: base.lsn, epoch: base.epoch }];
        all.extend(runs.into_iter().filter(|r| r.first > base.lsn));
        all.dedup_by_key(|r| r.epoch);
        let mut ms: Vec<(Lsn, Membership)> = membership.map(|m| (base.lsn, m)).into_iter().collect();
        ms.extend(memberships.into_iter().filter(|(l, _)| *l > base.lsn));
        Self { runs: all, last: last.max(base.lsn), memberships: ms, base }
    }

    /// The log of a node that installed a snapshot at `at`: nothing after it.
    pub fn installed(at: Position, membership: Option<Membership>) -> Self {
        Self::compacted(at, membership, Vec::new(), at.lsn, Vec::new())
    }

    /// The last compacted entry (0/0 when nothing is).
    pub fn base(&self) -> Position {
        self.base
    }

    /// Forgets the entries up to `lsn` (committed, and in the node's tables): they are no
    /// longer sent to anyone. Keeps the membership in force there.
    pub fn compact(&mut self, lsn: Lsn) {
        if lsn <= self.base.lsn || lsn > self.last {
            return;
        }
        let epoch = self.epoch_at(lsn).unwrap_or(0);
        self.base = Position { epoch, lsn };
        let i = self.runs.partition_point(|r| r.first <= lsn).saturating_sub(1);
        self.runs.drain(..i);
        if let Some(r) = self.runs.first_mut() {
            r.first = r.first.max(lsn);
        }
        self.forget_memberships_before(lsn);
    }

    pub fn last(&self) -> Position {
        Position { epoch: self.runs.last().map(|r| r.epoch).unwrap_or(0), lsn: self.last }
    }

    pub fn is_empty(&self) -> bool {
        self.last == 0
    }

    /// The epoch of the entry at `lsn` (0 for the empty prefix), None past the end or
    /// before the base (compacted: unknown).
    pub fn epoch_at(&self, lsn: Lsn) -> Option<Epoch> {
        if lsn == 0 {
            return Some(0);
        }
        if lsn > self.last || lsn < self.base.lsn {
            return None;
        }
        let i = self.runs.partition_point(|r| r.first <= lsn);
        self.runs.get(i.checked_sub(1)?).map(|r| r.epoch)
    }

    /// Whether this log holds the entry at `p` (the log before it then agrees too). Up to
    /// the base it does: those entries are committed, and every master's log holds them.
    pub fn holds(&self, p: Position) -> bool {
        p.lsn <= self.base.lsn || self.epoch_at(p.lsn) == Some(p.epoch)
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

    /// Removes every entry after `lsn` (never a compacted one: they are committed).
    pub fn truncate_after(&mut self, lsn: Lsn) {
        let lsn = lsn.max(self.base.lsn);
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
        let theirs = LogIndex::from_parts(runs.to_vec(), last, Vec::new());
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
    fn a_compacted_log_knows_its_base_and_what_follows() {
        let m1 = Membership::of_voters([1]);
        let m2 = Membership::of_voters([1, 2]);
        let mut l = LogIndex::new();
        l.append(&EntryMeta { lsn: 1, epoch: 0, membership: Some(m1.clone()) }).unwrap();
        for (lsn, epoch) in [(2, 1), (3, 1), (4, 2), (5, 2), (6, 3)] {
            l.append(&EntryMeta { lsn, epoch, membership: None }).unwrap();
        }
        l.append(&EntryMeta { lsn: 7, epoch: 3, membership: Some(m2.clone()) }).unwrap();
        l.compact(4);
        assert_eq!(l.base(), Position { epoch: 2, lsn: 4 });
        assert_eq!(l.epoch_at(3), None, "compacted");
        assert_eq!(l.epoch_at(4), Some(2));
        assert_eq!(l.epoch_at(6), Some(3));
        assert!(l.holds(Position { epoch: 1, lsn: 2 }), "committed entries are held");
        assert_eq!(l.membership_at(5), Some(&m1));
        l.truncate_after(2);
        assert_eq!(l.last(), Position { epoch: 2, lsn: 4 }, "never below the base");
        // Another log agrees with ours at the base or, for all we know, not at all.
        assert_eq!(l.common_with(&log(&[1, 1, 1, 2, 2]).runs(), 5), 4);
        assert_eq!(l.common_with(&log(&[1, 1, 1, 1, 2]).runs(), 5), 0);
        let installed = LogIndex::installed(Position { epoch: 3, lsn: 7 }, Some(m2.clone()));
        assert_eq!(installed.last(), Position { epoch: 3, lsn: 7 });
        assert_eq!(installed.membership(), Some((7, &m2)));
        assert!(!installed.is_empty());
        let again = LogIndex::compacted(
            Position { epoch: 2, lsn: 4 },
            Some(m1.clone()),
            vec![Run { first: 2, epoch: 1 }, Run { first: 4, epoch: 2 }, Run { first: 6, epoch: 3 }],
            7,
            vec![(1, m1.clone()), (7, m2.clone())],
        );
        assert_eq!(again.epoch_at(5), Some(2));
        assert_eq!(again.epoch_at(7), Some(3));
        assert_eq!(again.membership(), Some((7, &m2)));
        assert_eq!(again.membership_at(5), Some(&m1));
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
