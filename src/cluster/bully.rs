//! The bully algorithm with epochs, as plain rules (no timers, no I/O).
//!
//! - A node that misses its master's heartbeats sends ELECTION to every higher id.
//! - A higher node that is alive answers OK and runs its own election.
//! - A node that hears no OK claims the next epoch and sends COORDINATOR to all. A node
//!   accepts at most one coordinator per epoch and never one from an older epoch, so two
//!   claimants of one epoch cannot both win; the claimant becomes master only if a majority
//!   (itself included) accepted.
//! - Any message from an older epoch is refused; a node that sees a newer epoch adopts it,
//!   and a master that sees one steps down at once.
use super::config::NodeId;
use super::state::Role;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Bully {
    pub me: NodeId,
    pub epoch: u64,
    pub role: Role,
    pub master: Option<NodeId>,
    /// The coordinator this node accepted in `epoch` (itself when it claimed it).
    pub voted_for: Option<NodeId>,
    pub last_heard: Option<Instant>,
}

/// How a message's epoch compares with ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochCheck {
    /// Older than ours: refuse the message.
    Stale,
    Current,
    /// Newer: we adopted it (and stepped down if we were master).
    Adopted {
        stepped_down: bool,
    },
}

pub fn majority(cluster_size: usize) -> usize {
    cluster_size / 2 + 1
}

impl Bully {
    pub fn new(me: NodeId, epoch: u64) -> Self {
        Self { me, epoch, role: Role::Follower, master: None, voted_for: None, last_heard: None }
    }

    pub fn check_epoch(&mut self, epoch: u64) -> EpochCheck {
        if epoch < self.epoch {
            return EpochCheck::Stale;
        }
        if epoch == self.epoch {
            return EpochCheck::Current;
        }
        let stepped_down = self.role == Role::Master;
        self.epoch = epoch;
        self.voted_for = None;
        if self.role != Role::Follower {
            self.role = Role::Follower;
        }
        self.master = None;
        EpochCheck::Adopted { stepped_down }
    }

    /// ELECTION from `from`: answer OK when we are higher; whether to start our own.
    pub fn on_election(&self, from: NodeId) -> (bool, bool) {
        let ok = from < self.me;
        (ok, ok && self.role != Role::Master)
    }

    /// COORDINATOR from `from` for `epoch`: accepted or not.
    pub fn on_coordinator(&mut self, from: NodeId, epoch: u64, now: Instant) -> bool {
        if self.check_epoch(epoch) == EpochCheck::Stale {
            return false;
        }
        match self.voted_for {
            Some(v) if v != from => false,
            _ => {
                self.voted_for = Some(from);
                self.master = Some(from);
                self.role = Role::Follower;
                self.last_heard = Some(now);
                true
            }
        }
    }

    /// A heartbeat from the master of `epoch`: accepted or not.
    pub fn on_heartbeat(&mut self, from: NodeId, epoch: u64, now: Instant) -> bool {
        if self.check_epoch(epoch) == EpochCheck::Stale {
            return false;
        }
        if self.role == Role::Master && from != self.me {
            // Two masters of one epoch cannot be (votes are unique); refuse.
            return false;
        }
        if let Some(v) = self.voted_for {
            if v != from {
                return false;
            }
        }
        self.voted_for = Some(from);
        self.master = Some(from);
        self.role = Role::Follower;
        self.last_heard = Some(now);
        true
    }

    /// Whether a follower should start an election: no master, or silent too long.
    pub fn master_suspected(&self, now: Instant, timeout: Duration) -> bool {
        match self.role {
            Role::Master | Role::Candidate => false,
            // Silent too long; a node with no master yet first gives one `timeout` to be heard.
            Role::Follower => match self.last_heard {
                Some(t) => now.duration_since(t) > timeout,
                None => true,
            },
        }
    }

    pub fn begin_election(&mut self) {
        self.role = Role::Candidate;
        self.master = None;
    }

    /// No higher node answered: claim the next epoch, voting for ourselves.
    pub fn claim(&mut self) -> u64 {
        self.epoch += 1;
        self.voted_for = Some(self.me);
        self.role = Role::Candidate;
        self.master = None;
        self.epoch
    }

    /// The claim of `epoch` got `accepts` acceptances from the other nodes.
    pub fn claim_result(&mut self, epoch: u64, accepts: usize, cluster_size: usize) -> bool {
        if self.epoch != epoch || self.role != Role::Candidate {
            return false;
        }
        if accepts + 1 >= majority(cluster_size) {
            self.role = Role::Master;
            self.master = Some(self.me);
            true
        } else {
            self.role = Role::Follower;
            false
        }
    }

    /// An election round ended without a winner we know of.
    pub fn give_up(&mut self) {
        if self.role == Role::Candidate {
            self.role = Role::Follower;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
    }

    #[test]
    fn only_higher_nodes_answer_ok_and_a_master_does_not_restart() {
        let mut b = Bully::new(3, 1);
        assert_eq!(b.on_election(1), (true, true));
        assert_eq!(b.on_election(5), (false, false));
        b.role = Role::Master;
        assert_eq!(b.on_election(2), (true, false));
    }

    #[test]
    fn a_claim_needs_a_majority() {
        let mut b = Bully::new(3, 4);
        b.begin_election();
        let e = b.claim();
        assert_eq!(e, 5);
        assert!(!b.claim_result(e, 0, 3));
        assert_eq!(b.role, Role::Follower);
        b.begin_election();
        let e = b.claim();
        assert!(b.claim_result(e, 1, 3));
        assert_eq!(b.role, Role::Master);
        assert_eq!(b.master, Some(3));
    }

    #[test]
    fn one_coordinator_per_epoch_and_none_from_the_past() {
        let now = Instant::now();
        let mut b = Bully::new(1, 3);
        assert!(b.on_coordinator(2, 4, now));
        assert!(!b.on_coordinator(3, 4, now), "a second claimant of epoch 4 is refused");
        assert!(b.on_coordinator(2, 4, now), "the same one again is fine");
        assert!(!b.on_coordinator(3, 2, now), "an older epoch is refused");
        assert!(b.on_coordinator(3, 5, now), "a newer epoch wins");
        assert_eq!(b.master, Some(3));
    }

    #[test]
    fn a_master_steps_down_on_a_newer_epoch_and_refuses_older_ones() {
        let now = Instant::now();
        let mut b = Bully::new(3, 6);
        b.role = Role::Master;
        b.master = Some(3);
        b.voted_for = Some(3);
        assert_eq!(b.check_epoch(5), EpochCheck::Stale);
        assert!(!b.on_heartbeat(2, 5, now));
        assert_eq!(b.role, Role::Master);
        assert!(b.on_heartbeat(2, 7, now));
        assert_eq!(b.role, Role::Follower);
        assert_eq!(b.master, Some(2));
        assert_eq!(b.epoch, 7);
    }

    #[test]
    fn a_silent_master_is_suspected() {
        let t0 = Instant::now();
        let mut b = Bully::new(1, 1);
        assert!(b.master_suspected(t0, Duration::from_secs(1)), "no master known, nothing heard");
        b.last_heard = Some(t0);
        assert!(
            !b.master_suspected(t0 + Duration::from_millis(500), Duration::from_secs(1)),
            "a new node waits to hear one"
        );
        assert!(b.master_suspected(t0 + Duration::from_millis(1500), Duration::from_secs(1)));
        b.on_heartbeat(2, 1, t0);
        assert!(!b.master_suspected(t0 + Duration::from_millis(500), Duration::from_secs(1)));
        assert!(b.master_suspected(t0 + Duration::from_millis(1500), Duration::from_secs(1)));
    }
}
