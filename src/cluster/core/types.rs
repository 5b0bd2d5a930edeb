//! The data the protocol speaks in: ids, positions, the membership, log entries, the
//! messages between nodes, and a node's inputs and outputs.
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub type NodeId = u64;
pub type Lsn = u64;
pub type Epoch = u64;
/// Milliseconds on the node's own monotonic clock (simulated time in the simulator).
pub type Time = u64;

/// Where a log ends: compared by epoch first, then length (the more up-to-date log is
/// the greater position).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub epoch: Epoch,
    pub lsn: Lsn,
}

/// A run of the log: entries from `first` on were written in `epoch` (until the next run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub first: Lsn,
    pub epoch: Epoch,
}

/// Who is in the cluster: voters elect and count in every majority; learners receive the
/// log and do neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    pub fn of_voters(ids: impl IntoIterator<Item = NodeId>) -> Self {
        Self { voters: ids.into_iter().collect(), learners: BTreeSet::new() }
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// How many voters make a majority (0 for an empty membership).
    pub fn majority(&self) -> usize {
        if self.voters.is_empty() {
            0
        } else {
            self.voters.len() / 2 + 1
        }
    }

    /// Whether the voters among `ids` make a majority.
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a NodeId>) -> bool {
        let n = ids.into_iter().filter(|id| self.voters.contains(id)).count();
        !self.voters.is_empty() && n >= self.majority()
    }

    /// Everyone who receives the log from a master `me`.
    pub fn others(&self, me: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied().filter(move |id| *id != me)
    }

    pub fn describe(&self) -> String {
        let ids = |s: &BTreeSet<NodeId>| s.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        format!("voters [{}] learners [{}]", ids(&self.voters), ids(&self.learners))
    }
}

/// One change of membership, applied to the membership before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MembershipChange {
    AddLearner { id: NodeId },
    Promote { id: NodeId },
    Remove { id: NodeId },
}

impl MembershipChange {
    pub fn apply(&self, m: &Membership) -> Membership {
        let mut next = m.clone();
        match *self {
            MembershipChange::AddLearner { id } => {
                if !next.voters.contains(&id) {
                    next.learners.insert(id);
                }
            }
            MembershipChange::Promote { id } => {
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            MembershipChange::Remove { id } => {
                next.learners.remove(&id);
                next.voters.remove(&id);
            }
        }
        next
    }
}

/// What the protocol needs to read of a log entry; the rest is the driver's.
pub trait LogEntry: Clone {
    fn lsn(&self) -> Lsn;
    fn epoch(&self) -> Epoch;
    /// The membership this entry sets, if it is a membership entry.
    fn membership(&self) -> Option<Membership>;
}

/// An entry the protocol itself asks its master to append.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Local {
    /// The first entry of every master's epoch: committing it commits everything before it.
    EpochStart,
    /// The membership from this entry on (the whole of it, not a difference).
    Membership(Membership),
}

/// A log entry of the simulator (and of tests): the protocol's own, or a write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload<W> {
    /// The first entry of every master's epoch: committing it commits everything before it.
    EpochStart,
    /// The membership from this entry on (the whole of it, not a difference).
    Membership(Membership),
    Write(W),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<W> {
    pub lsn: Lsn,
    pub epoch: Epoch,
    pub payload: Payload<W>,
}

impl<W: Clone> LogEntry for Entry<W> {
    fn lsn(&self) -> Lsn {
        self.lsn
    }

    fn epoch(&self) -> Epoch {
        self.epoch
    }

    fn membership(&self) -> Option<Membership> {
        match &self.payload {
            Payload::Membership(m) => Some(m.clone()),
            _ => None,
        }
    }
}

/// What the protocol needs of an entry (the application's write stays with the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    pub lsn: Lsn,
    pub epoch: Epoch,
    pub membership: Option<Membership>,
}

impl EntryMeta {
    pub fn of(e: &impl LogEntry) -> Self {
        EntryMeta { lsn: e.lsn(), epoch: e.epoch(), membership: e.membership() }
    }
}

/// What a node keeps durably besides its log: the highest epoch it has seen and the node
/// it accepted as master in that epoch (at most one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub epoch: Epoch,
    pub voted_for: Option<NodeId>,
}

/// Node-to-node messages. Every one travels with the sender's id and epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message<E> {
    /// Bully: "I am electing" (to higher voters only), with where the sender's log ends:
    /// only a node whose log is at least as up-to-date answers.
    Election {
        last: Position,
    },
    /// Bully: "I am alive and higher: leave it to me".
    ElectionOk,
    /// "I claim the sender's epoch: accept me as its master". With `pre`, only "would you?"
    /// (nothing is stored and no epoch adopted on either side).
    Coordinator {
        last: Position,
        pre: bool,
        /// The master of the claimant's epoch handed mastership to it (it takes no more
        /// writes), so a voter that still counts on that master may vote.
        #[serde(default)]
        handed: bool,
    },
    /// The answer to a claim (granted or not) and where the voter's log ends.
    Vote {
        granted: bool,
        pre: bool,
        last: Position,
    },
    /// Entries after `prev` (none for a heartbeat), the master's commit point, and the
    /// master's time when it sent this (echoed back, for the lease).
    Append {
        prev: Position,
        entries: Vec<E>,
        commit: Lsn,
        sent_at: Time,
    },
    /// `ok`: the follower's log matches the master's up to `durable`. Not ok: it does not
    /// hold `prev`; `runs` describe its log.
    AppendReply {
        ok: bool,
        durable: Lsn,
        runs: Vec<Run>,
        sent_at: Time,
    },
    /// "The entries you need are compacted (up to `base`): fetch my snapshot, then answer
    /// as to an Append sent at `sent_at`".
    InstallSnapshot {
        base: Lsn,
        sent_at: Time,
    },
    /// "Your epoch is older than mine": the answer to any message from a stale epoch.
    Stale {
        master: Option<NodeId>,
    },
    /// A node leaving asks the master to remove it.
    Leave,
    /// The master is stopping (SIGTERM) or was removed: it takes no more writes and has
    /// stepped down; `successor` (a voter holding its whole log, when one does) claims the
    /// next epoch at once, and the others stop waiting for a failure timeout.
    HandOver {
        successor: Option<NodeId>,
    },
    /// An unconfigured node (DNS mode, empty log) asks whether anyone is configured.
    Hello,
    HelloReply {
        configured: bool,
    },
}

impl<E> Message<E> {
    pub fn name(&self) -> &'static str {
        match self {
            Message::Election { .. } => "election",
            Message::ElectionOk => "election_ok",
            Message::Coordinator { .. } => "coordinator",
            Message::Vote { .. } => "vote",
            Message::Append { .. } => "append",
            Message::AppendReply { .. } => "append_reply",
            Message::InstallSnapshot { .. } => "install_snapshot",
            Message::Stale { .. } => "stale",
            Message::Leave => "leave",
            Message::HandOver { .. } => "hand_over",
            Message::Hello => "hello",
            Message::HelloReply { .. } => "hello_reply",
        }
    }
}

/// A message on its way: sender, receiver, the sender's epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<E> {
    pub from: NodeId,
    pub to: NodeId,
    pub epoch: Epoch,
    pub message: Message<E>,
}

/// What happens to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<E> {
    /// Time passed (the driver calls this every few milliseconds).
    Tick,
    Receive(Envelope<E>),
    /// Entries the driver appended as master (writes, or what [`Output::AppendLocal`] asked
    /// for) are durable in its log.
    LocalDurable(Vec<EntryMeta>),
    /// The oldest local append still not durable was started at this time (None: none
    /// waits). A master whose storage stalls past the failure timeout steps down.
    StorageBusySince(Option<Time>),
    /// Storage failed: what the last outputs asked to persist may not have been.
    StorageFailed,
    /// Storage refused to cut the log where [`Output::Persist`] asked (its entries there
    /// cannot be undone and its log is compacted, so it cannot be rebuilt either): nothing
    /// was written. As after [`Input::StorageFailed`], the driver reloads the node's state
    /// and reports [`Input::StorageRecovered`]; the next cut installs the master's snapshot.
    CutRefused,
    /// Storage works again and holds this: the node continues from it.
    StorageRecovered {
        hard: HardState,
        log: super::log::LogIndex,
    },
    /// The nodes discovery finds now (this one excluded).
    Discovered(Vec<NodeId>),
    /// This node is shutting down (SIGTERM): leave the cluster through the log.
    Leave,
    /// This node is stopping (SIGTERM, a restart): it elects no more; as master it takes no
    /// more writes and hands mastership to its most up-to-date voter first.
    HandOver,
    /// An operator removes a node (on the master).
    Remove(NodeId),
    /// The snapshot asked for ([`Output::FetchSnapshot`]) is installed, atomically: the
    /// node's tables are the master's at its end, and this is the node's log now.
    SnapshotInstalled(super::log::LogIndex),
    /// The snapshot could not be fetched or installed; nothing changed.
    SnapshotFailed,
}

/// What a node asks its driver to do, in order. Each persist must be durable before any
/// later output is carried out; if one fails, the driver drops the rest and reports
/// [`Input::StorageFailed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<E> {
    /// Store the epoch and vote.
    SaveHardState(HardState),
    /// Remove the entries after `truncate_after` (when given), then append `entries`. The
    /// removed entries were never committed; storage undoes them (or rebuilds what is left).
    /// In a compacted log it may refuse: [`Input::CutRefused`].
    Persist {
        truncate_after: Option<Lsn>,
        entries: Vec<E>,
    },
    /// As master: append this entry at the end of the log (the driver numbers it, stamps
    /// it with the node's epoch, and reports it with [`Input::LocalDurable`]).
    AppendLocal(Local),
    /// Store the founding entry of a new cluster: LSN 1, epoch 0, this membership.
    Found(Membership),
    Send(Envelope<E>),
    /// Send `to_node` an Append after `prev` carrying entries `prev.lsn + 1 ..= to` of the
    /// log (the driver reads them: the core keeps no payloads).
    SendAppend {
        to_node: NodeId,
        epoch: Epoch,
        prev: Position,
        to: Lsn,
        commit: Lsn,
        sent_at: Time,
    },
    /// The commit point moved to this LSN: everything up to it is decided.
    Commit(Lsn),
    /// Delete the log's entries up to this LSN (committed, in the tables) and store it as
    /// the log's base, with its epoch and the membership in force there.
    Compact {
        upto: Position,
        membership: Option<Membership>,
    },
    /// Fetch the snapshot of `from` (this node's master) and install it in one transaction,
    /// then report [`Input::SnapshotInstalled`] or [`Input::SnapshotFailed`].
    FetchSnapshot {
        from: NodeId,
    },
    /// Role, master or writability changed (the new view is in [`super::Node::view`]).
    ViewChanged,
    /// This node has been removed from the cluster (it asked to leave): it may stop.
    Left,
    /// After [`Input::HandOver`]: this node is not master (any more) and elects no more;
    /// it may stop.
    HandedOver,
}
