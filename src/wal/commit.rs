//! What the log has decided, and who waits for it. The cluster's protocol moves the commit
//! point; a write waits here for the decision on its entry (LSN and epoch): committed once
//! the commit point passes its LSN with the same entry there, not committed once another
//! entry is committed in its place. Until then its outcome is unknown, however long that
//! takes: nothing rolls it back for being slow. The rules of who may write, and when, are
//! in `cluster::core`; this is only the meeting point of the writer and the protocol.
use futures::channel::oneshot;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// Whether, and in which epoch, this node may append writes (set by the cluster's driver
/// from its protocol state; read by the log writer when it stamps a batch).
#[derive(Debug)]
pub struct WriteGate {
    writable: AtomicI64,
    master: AtomicI64,
}

impl Default for WriteGate {
    fn default() -> Self {
        Self { writable: AtomicI64::new(-1), master: AtomicI64::new(-1) }
    }
}

impl WriteGate {
    /// The epoch writes are taken in now, if they are.
    pub fn writable_epoch(&self) -> Option<u64> {
        u64::try_from(self.writable.load(Ordering::SeqCst)).ok()
    }

    /// The epoch this node is master of (writable or not yet), if it is one.
    pub fn master_epoch(&self) -> Option<u64> {
        u64::try_from(self.master.load(Ordering::SeqCst)).ok()
    }

    pub fn set(&self, master_of: Option<u64>, writable: Option<u64>) {
        let v = |e: Option<u64>| e.map_or(-1, |e| i64::try_from(e).unwrap_or(i64::MAX));
        self.master.store(v(master_of), Ordering::SeqCst);
        self.writable.store(v(writable), Ordering::SeqCst);
    }
}

type Waiter = (i64, oneshot::Sender<bool>);

#[derive(Debug, Default)]
pub struct CommitTracker {
    commit_lsn: AtomicI64,
    waiters: Mutex<BTreeMap<i64, Vec<Waiter>>>,
}

/// The decision on one entry: true once committed, false once another entry is committed
/// in its place (or the node stops).
pub struct Decision(Option<oneshot::Receiver<bool>>);

impl std::future::Future for Decision {
    type Output = bool;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<bool> {
        match &mut self.0 {
            None => std::task::Poll::Ready(true),
            Some(rx) => std::pin::Pin::new(rx).poll(cx).map(|r| r.unwrap_or(false)),
        }
    }
}

impl CommitTracker {
    pub fn commit_lsn(&self) -> i64 {
        self.commit_lsn.load(Ordering::SeqCst)
    }

    /// Waits for the decision on the entry at `lsn` written in `epoch`.
    pub fn wait(&self, lsn: i64, epoch: i64) -> Decision {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if self.commit_lsn() >= lsn {
            // Decided before we asked: the caller only asks for entries it just wrote, and
            // a commit point past them covers them (the driver decides with the log).
            return Decision(None);
        }
        let (tx, rx) = oneshot::channel();
        w.entry(lsn).or_default().push((epoch, tx));
        Decision(Some(rx))
    }

    /// The commit point moved to `commit`: decide every entry at or below it, by the epoch
    /// of the entry the log holds there now.
    pub fn decide(&self, commit: i64, epoch_at: impl Fn(i64) -> Option<i64>) {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if commit > self.commit_lsn() {
            self.commit_lsn.store(commit, Ordering::SeqCst);
        }
        let rest = w.split_off(&(commit + 1));
        for (lsn, waiters) in std::mem::replace(&mut *w, rest) {
            let held = epoch_at(lsn);
            for (epoch, tx) in waiters {
                let _ = tx.send(held == Some(epoch));
            }
        }
    }

    /// This node's commit point is unknown again (it restarted its protocol state): later
    /// decisions come as the commit point is learned anew.
    pub fn reset_commit(&self, commit: i64) {
        self.commit_lsn.store(commit, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn entries_are_decided_by_what_the_log_holds_at_the_commit_point() {
        let t = CommitTracker::default();
        let a = t.wait(3, 1);
        let b = t.wait(5, 1);
        let c = t.wait(9, 1);
        t.decide(4, |_| Some(1));
        assert!(a.await, "committed");
        // Entry 5 of epoch 1 was replaced by one of epoch 2, which is committed.
        t.decide(6, |l| Some(if l == 5 { 2 } else { 1 }));
        assert!(!b.await, "another entry took its place");
        assert!(t.wait(2, 1).await, "already committed");
        drop(t);
        assert!(!c.await, "the tracker went away undecided");
    }

    #[test]
    fn the_gate_says_who_writes() {
        let g = WriteGate::default();
        assert_eq!((g.master_epoch(), g.writable_epoch()), (None, None));
        g.set(Some(4), None);
        assert_eq!((g.master_epoch(), g.writable_epoch()), (Some(4), None));
        g.set(Some(4), Some(4));
        assert_eq!(g.writable_epoch(), Some(4));
    }
}
