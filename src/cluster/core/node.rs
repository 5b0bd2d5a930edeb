//! One node of the protocol: `step(now, input) -> outputs`. See `docs/protocol.md`.
use super::log::LogIndex;
use super::types::*;
use std::collections::{BTreeMap, BTreeSet};

/// The protocol's clocks, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often a master sends heartbeats (and an unconfigured node says hello).
    pub heartbeat: Time,
    /// A follower that hears nothing from its master for this long starts an election; until
    /// then it promises not to accept another master.
    pub failure_timeout: Time,
    /// How long an election waits for answers.
    pub election_timeout: Time,
    /// A master takes writes only while a majority answered a heartbeat it sent less than
    /// this long ago. Shorter than `failure_timeout` by a margin for clock drift.
    pub lease: Time,
    /// The most entries one Append carries.
    pub batch: usize,
    /// An unconfigured node (DNS discovery, empty log) waits this long with nobody
    /// configured in sight before it founds a cluster of its own.
    pub bootstrap_wait: Time,
    /// A learner this close to the master's log (in entries) is promoted to voter.
    pub catch_up_slack: Lsn,
    /// A master whose own log has not finished a write for this long steps down.
    pub storage_stall: Time,
    /// Committed entries kept in the log behind the compaction point (0: never compact).
    /// A master compacts what every voter holds; a node further behind installs a snapshot.
    pub retain: Lsn,
}

impl Timing {
    pub fn from_millis(heartbeat: Time, failure_timeout: Time, election_timeout: Time) -> Self {
        Self {
            heartbeat,
            failure_timeout,
            election_timeout,
            lease: failure_timeout * 2 / 3,
            batch: 256,
            bootstrap_wait: failure_timeout * 2,
            catch_up_slack: 64,
            storage_stall: failure_timeout,
            retain: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    Candidate,
    Master,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Master => "master",
        }
    }
}

/// What the rest of the node needs to know, published after every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub role: Role,
    pub epoch: Epoch,
    pub master: Option<NodeId>,
    /// The epoch this node takes writes in, while it may (master, its epoch's first entry
    /// committed, a majority heard it within the lease, storage working).
    pub writable: Option<Epoch>,
    pub commit: Lsn,
    pub last: Position,
    pub membership: Membership,
    pub storage_ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Election {
    Idle,
    /// Sent ELECTION to the higher voters; claims at `until` unless one answers.
    AwaitOk {
        until: Time,
    },
    /// A higher node answered; elects again at `until` unless a master shows up.
    AwaitCoordinator {
        until: Time,
    },
    /// Asked the voters whether they would accept a claim of the next epoch (nothing is
    /// stored: a node cut off from the majority does not inflate its epoch).
    PreClaim {
        until: Time,
        grants: BTreeSet<NodeId>,
    },
    /// Claimed the epoch; the claim fails at `until` without a majority.
    Claim {
        until: Time,
        sent_at: Time,
        grants: BTreeSet<NodeId>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Progress {
    /// The next entry to send.
    next: Lsn,
    /// The follower's log is known to match this one up to here.
    matched: Lsn,
    /// When the Append under way was sent (None: none under way).
    in_flight: Option<Time>,
    /// The send time of the newest Append the follower answered (for the lease).
    acked: Option<Time>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    timing: Timing,
    hard: HardState,
    log: LogIndex,
    commit: Lsn,
    /// The membership when the log holds none (static PEERS); None under DNS discovery,
    /// where a fresh node learns it from the log or founds a cluster.
    initial: Option<Membership>,
    role: Role,
    master: Option<NodeId>,
    /// When this node last heard its master (a follower promises not to accept another
    /// master for `failure_timeout` after that).
    heard_at: Option<Time>,
    /// No election before this time.
    elect_after: Time,
    election: Election,
    /// Election rounds in a row that a higher node answered and then did not win.
    ok_rounds: u32,
    /// As master: the LSN of this epoch's first entry, once durable.
    start_lsn: Option<Lsn>,
    progress: BTreeMap<NodeId, Progress>,
    last_broadcast: Time,
    storage_ok: bool,
    busy_since: Option<Time>,
    /// A membership entry asked for and not yet durable.
    change_pending: bool,
    discovered: BTreeSet<NodeId>,
    discovered_at: Time,
    started_at: Time,
    /// Unconfigured: who answered this round's hello, and whether they are configured.
    hello: BTreeMap<NodeId, bool>,
    /// Unconfigured: every discovered node answered "unconfigured" to the last full round.
    nobody_configured: bool,
    last_hello: Option<Time>,
    leaving: bool,
    left: bool,
    /// Stopping (SIGTERM): elects no more, takes no writes; as master, hands over by
    /// `stop_by` at the latest.
    stopping: bool,
    stop_by: Time,
    handed_over: bool,
    /// The master of this epoch handed mastership to this node.
    handed_in: Option<Epoch>,
    /// Fetching a snapshot: from whom, in which epoch, for the InstallSnapshot sent then.
    fetching: Option<(NodeId, Epoch, Time)>,
    /// Storage refused to cut this compacted log: the next cut installs a snapshot instead.
    cut_by_snapshot: bool,
    /// As master: nodes asked to be removed (by themselves or an operator).
    removals: BTreeSet<NodeId>,
    /// As master: removed nodes still sent the log for a while, so they learn that their
    /// removal is committed (until the time given).
    farewell: BTreeMap<NodeId, Time>,
    /// As master: nodes that left; discovery may still see them, but they are not added
    /// back unless they ask (hello).
    departed: BTreeSet<NodeId>,
    now: Time,
}

impl Node {
    /// A node starting (or restarting) from what it had stored.
    pub fn new(
        id: NodeId,
        timing: Timing,
        initial: Option<Membership>,
        hard: HardState,
        log: LogIndex,
        now: Time,
    ) -> Self {
        let alone = initial.as_ref().is_some_and(|m| m.voters.len() == 1 && m.is_voter(id));
        Self {
            id,
            timing,
            hard,
            log,
            commit: 0,
            initial,
            role: Role::Follower,
            master: None,
            heard_at: None,
            // Give a running master the chance to be heard before electing (a node that is
            // the whole cluster has nobody to wait for).
            elect_after: if alone { now } else { now + timing.failure_timeout },
            election: Election::Idle,
            ok_rounds: 0,
            start_lsn: None,
            progress: BTreeMap::new(),
            last_broadcast: 0,
            storage_ok: true,
            busy_since: None,
            change_pending: false,
            discovered: BTreeSet::new(),
            discovered_at: now,
            started_at: now,
            hello: BTreeMap::new(),
            nobody_configured: false,
            last_hello: None,
            leaving: false,
            left: false,
            stopping: false,
            stop_by: now,
            handed_over: false,
            handed_in: None,
            fetching: None,
            cut_by_snapshot: false,
            removals: BTreeSet::new(),
            farewell: BTreeMap::new(),
            departed: BTreeSet::new(),
            now,
        }
    }

    /// What the master knows of each other node: the LSN their log matches up to, and when
    /// they last answered (the send time of the Append they answered).
    pub fn progress(&self) -> Vec<(NodeId, Lsn, Option<Time>)> {
        self.progress.iter().map(|(id, p)| (*id, p.matched, p.acked)).collect()
    }

    pub fn hard_state(&self) -> HardState {
        self.hard
    }

    pub fn log(&self) -> &LogIndex {
        &self.log
    }

    pub fn commit(&self) -> Lsn {
        self.commit
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The membership in force: the newest in the log, else the configured one.
    pub fn membership(&self) -> Membership {
        match self.log.membership() {
            Some((_, m)) => m.clone(),
            // A log written without a membership (offline, or by an older version): the
            // static list, or under DNS discovery this node alone (it has the data).
            None if !self.log.is_empty() => self.initial.clone().unwrap_or_else(|| Membership::of_voters([self.id])),
            None => Membership::default(),
        }
    }

    /// The node knows the membership: its log holds one, or holds entries at all. A node
    /// with an empty log joins or founds a cluster first.
    fn configured(&self) -> bool {
        self.log.membership().is_some() || !self.log.is_empty()
    }

    pub fn view(&self) -> View {
        View {
            role: self.role,
            epoch: self.hard.epoch,
            master: self.master,
            writable: self.writable().then_some(self.hard.epoch),
            commit: self.commit,
            last: self.log.last(),
            membership: self.membership(),
            storage_ok: self.storage_ok,
        }
    }

    /// Master of its epoch, that epoch's first entry committed (so everything before it is
    /// too), a majority heard it within the lease, and its storage keeps up.
    pub fn writable(&self) -> bool {
        self.role == Role::Master
            && self.storage_ok
            && !self.storage_stalled()
            && !self.stopping
            && self.start_lsn.is_some_and(|s| self.commit >= s)
            && self.has_lease()
    }

    fn storage_stalled(&self) -> bool {
        self.busy_since.is_some_and(|t| self.now.saturating_sub(t) > self.timing.storage_stall)
    }

    fn has_lease(&self) -> bool {
        let m = self.membership();
        let fresh = |t: Option<Time>| t.is_some_and(|t| t + self.timing.lease > self.now);
        let mut heard: Vec<NodeId> = self.progress.iter().filter(|(_, p)| fresh(p.acked)).map(|(id, _)| *id).collect();
        heard.push(self.id);
        m.is_quorum(heard.iter())
    }

    /// Whether this node has a master it heard recently (and so refuses other claimants).
    fn master_alive(&self) -> bool {
        match self.role {
            Role::Master => self.has_lease(),
            _ => {
                self.master.is_some()
                    && self.heard_at.is_some_and(|t| self.now.saturating_sub(t) <= self.timing.failure_timeout)
            }
        }
    }
}

impl Node {
    /// Feeds one input; returns what to do, in order.
    pub fn step<E: LogEntry>(&mut self, now: Time, input: Input<E>) -> Vec<Output<E>> {
        self.now = self.now.max(now);
        let before = self.view();
        let mut out = Vec::new();
        if !self.left {
            match input {
                Input::Tick => self.tick(&mut out),
                Input::Receive(env) => self.receive(env, &mut out),
                Input::LocalDurable(metas) => self.local_durable(metas, &mut out),
                Input::StorageBusySince(t) => {
                    self.busy_since = t;
                    if self.role == Role::Master && self.storage_stalled() {
                        self.step_down("its storage stalls");
                        self.elect_after = self.now + self.timing.failure_timeout;
                    }
                }
                Input::StorageFailed => {
                    self.storage_ok = false;
                    if self.role != Role::Follower {
                        self.step_down("its storage failed");
                    }
                }
                Input::CutRefused => {
                    log::warn!("node {}: its log cannot be cut; it installs its master's snapshot", self.id);
                    self.storage_ok = false;
                    self.cut_by_snapshot = true;
                }
                Input::StorageRecovered { hard, log } => {
                    self.storage_ok = true;
                    self.started_at = self.now;
                    self.nobody_configured = false;
                    self.busy_since = None;
                    self.hard = hard;
                    self.log = log;
                    self.commit = self.commit.min(self.log.last().lsn);
                    self.elect_after = self.now + self.timing.failure_timeout;
                }
                Input::Discovered(ids) => {
                    let ids: BTreeSet<NodeId> = ids.into_iter().filter(|i| *i != self.id).collect();
                    if ids != self.discovered {
                        self.discovered = ids;
                        self.discovered_at = self.now;
                    }
                }
                Input::Leave => self.leaving = true,
                Input::HandOver => self.begin_hand_over(&mut out),
                Input::Remove(id) => {
                    self.removals.insert(id);
                }
                Input::SnapshotInstalled(log) => self.snapshot_installed(log, &mut out),
                Input::SnapshotFailed => {
                    if let Some((from, ..)) = self.fetching.take() {
                        log::warn!("node {}: could not install node {from}'s snapshot", self.id);
                    }
                }
            }
        }
        if self.view() != before {
            out.push(Output::ViewChanged);
        }
        out
    }

    fn send<E>(&self, to: NodeId, message: Message<E>, out: &mut Vec<Output<E>>) {
        out.push(Output::Send(Envelope { from: self.id, to, epoch: self.hard.epoch, message }));
    }

    fn save_hard<E>(&self, out: &mut Vec<Output<E>>) {
        out.push(Output::SaveHardState(self.hard));
    }

    fn step_down(&mut self, why: &str) {
        if self.role == Role::Master {
            log::warn!("node {}: steps down in epoch {}: {why}", self.id, self.hard.epoch);
        }
        self.role = Role::Follower;
        self.master = None;
        self.heard_at = None;
        self.election = Election::Idle;
        self.start_lsn = None;
        self.progress.clear();
        self.change_pending = false;
    }

    /// A newer epoch: adopt it (stored before anything is sent in it), stepping down.
    fn adopt<E>(&mut self, epoch: Epoch, out: &mut Vec<Output<E>>) {
        if epoch <= self.hard.epoch {
            return;
        }
        self.step_down("a newer epoch began");
        self.hard = HardState { epoch, voted_for: None };
        self.save_hard(out);
    }

    fn tick<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        if !self.storage_ok {
            return;
        }
        match self.role {
            Role::Master => {
                if self.storage_stalled() {
                    self.step_down("its storage stalls");
                    self.elect_after = self.now + self.timing.failure_timeout;
                    return;
                }
                if self.now >= self.last_broadcast + self.timing.heartbeat {
                    self.broadcast(out);
                }
                self.change_membership(out);
                self.try_hand_over(out);
            }
            Role::Follower | Role::Candidate => {
                if !self.configured() {
                    return self.unconfigured(out);
                }
                if self.leaving && self.now >= self.last_broadcast + self.timing.heartbeat {
                    self.last_broadcast = self.now;
                    if let Some(m) = self.master {
                        self.send(m, Message::Leave, out);
                    }
                }
                let outside = !self.membership().contains(self.id);
                if outside && !self.leaving && self.last_hello.is_none_or(|t| self.now >= t + self.timing.heartbeat * 5)
                {
                    self.last_hello = Some(self.now);
                    for id in self.discovered.clone() {
                        self.send(id, Message::Hello, out);
                    }
                }
                self.election_timers(out);
            }
        }
    }

    fn election_timers<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        match self.election.clone() {
            Election::AwaitOk { until } if self.now >= until => self.claim(true, out),
            Election::AwaitCoordinator { until } if self.now >= until => {
                // A higher node answered but never won (it may reach us and not a
                // majority): after two such rounds, claim regardless.
                self.ok_rounds += 1;
                self.election = Election::Idle;
                self.role = Role::Follower;
                if self.ok_rounds >= 2 {
                    self.ok_rounds = 0;
                    self.claim(true, out);
                } else {
                    self.start_election(out);
                }
            }
            Election::Claim { until, .. } | Election::PreClaim { until, .. } if self.now >= until => {
                // No majority: try again later (a partition may heal); lower ids wait longer
                // so the higher ones go first.
                self.election = Election::Idle;
                self.role = Role::Follower;
                self.elect_after = self.now + self.timing.election_timeout * (1 + (self.id % 3));
            }
            Election::Idle => {
                let may_elect = self.may_elect() && self.now >= self.elect_after && !self.master_alive();
                if may_elect {
                    self.start_election(out);
                }
            }
            _ => {}
        }
    }

    /// A voter may elect; so may a node that an uncommitted membership entry removes (it
    /// may hold the best log, and the remaining voters cannot elect without it).
    fn may_elect(&self) -> bool {
        if self.stopping || self.fetching.is_some() {
            return false;
        }
        let m = self.membership();
        if m.is_voter(self.id) {
            return true;
        }
        match self.log.membership() {
            Some((lsn, _)) if lsn > self.commit => {
                let before = self.log.membership_at(lsn - 1).or(self.initial.as_ref());
                before.is_some_and(|b| b.is_voter(self.id))
            }
            _ => false,
        }
    }

    fn start_election<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        self.role = Role::Candidate;
        self.master = None;
        let higher: Vec<NodeId> = self.membership().voters.iter().copied().filter(|v| *v > self.id).collect();
        if higher.is_empty() {
            return self.claim(true, out);
        }
        let last = self.log.last();
        for h in higher {
            self.send(h, Message::Election { last }, out);
        }
        self.election = Election::AwaitOk { until: self.now + self.timing.election_timeout };
    }

    /// Nobody higher and as up to date answered: claim the next epoch, first asking
    /// whether the voters would accept (`pre`), then for real.
    fn claim<E: LogEntry>(&mut self, pre: bool, out: &mut Vec<Output<E>>) {
        self.role = Role::Candidate;
        self.master = None;
        let mut grants = BTreeSet::new();
        grants.insert(self.id);
        let until = self.now + self.timing.election_timeout;
        let epoch = self.hard.epoch + 1;
        let handed = self.handed_in == Some(self.hard.epoch);
        if pre {
            self.election = Election::PreClaim { until, grants };
        } else {
            self.hard = HardState { epoch, voted_for: Some(self.id) };
            self.save_hard(out);
            self.election = Election::Claim { until, sent_at: self.now, grants };
            log::info!("node {}: claims epoch {epoch}", self.id);
        }
        let last = self.log.last();
        for v in self.membership().voters.iter().copied().filter(|v| *v != self.id) {
            out.push(Output::Send(Envelope {
                from: self.id,
                to: v,
                epoch,
                message: Message::Coordinator { last, pre, handed },
            }));
        }
        self.count_votes(out);
    }

    fn count_votes<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        if let Election::PreClaim { grants, .. } = &self.election {
            if self.membership().is_quorum(grants.iter()) {
                self.claim(false, out);
            }
            return;
        }
        let Election::Claim { grants, sent_at, .. } = &self.election else { return };
        if !self.membership().is_quorum(grants.iter()) {
            return;
        }
        let (grants, sent_at) = (grants.clone(), *sent_at);
        self.role = Role::Master;
        self.master = Some(self.id);
        self.election = Election::Idle;
        self.start_lsn = None;
        let next = self.log.last().lsn + 1;
        self.progress = self
            .membership()
            .others(self.id)
            .map(|id| {
                let acked = grants.contains(&id).then_some(sent_at);
                (id, Progress { next, matched: 0, in_flight: None, acked })
            })
            .collect();
        log::info!("node {}: master of epoch {} (log at {})", self.id, self.hard.epoch, self.log.last().lsn);
        out.push(Output::AppendLocal(Local::EpochStart));
        self.broadcast(out);
    }

    fn broadcast<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        self.last_broadcast = self.now;
        let now = self.now;
        self.farewell.retain(|_, until| *until > now);
        let mut ids: Vec<NodeId> = self.membership().others(self.id).collect();
        let extra: Vec<NodeId> = self.farewell.keys().copied().filter(|id| !ids.contains(id)).collect();
        ids.extend(extra);
        for id in ids {
            self.send_append(id, out);
        }
    }

    /// An Append to `id` from where it is (a heartbeat when it has everything).
    fn send_append<E: LogEntry>(&mut self, id: NodeId, out: &mut Vec<Output<E>>) {
        let last = self.log.last().lsn;
        let (now, batch, commit, epoch) = (self.now, self.timing.batch as Lsn, self.commit, self.hard.epoch);
        let p = self.progress.entry(id).or_insert_with(|| Progress { next: last + 1, ..Progress::default() });
        let next = p.next.clamp(1, last + 1);
        if next <= self.log.base().lsn {
            // What it needs is compacted: it installs a snapshot instead.
            p.in_flight = Some(now);
            let message = Message::InstallSnapshot { base: self.log.base().lsn, sent_at: now };
            return out.push(Output::Send(Envelope { from: self.id, to: id, epoch, message }));
        }
        let prev_lsn = next - 1;
        let to = last.min(prev_lsn + batch);
        p.in_flight = Some(now);
        p.next = to + 1;
        let prev = Position { lsn: prev_lsn, epoch: self.log.epoch_at(prev_lsn).unwrap_or(0) };
        out.push(Output::SendAppend { to_node: id, epoch, prev, to, commit: commit.min(to), sent_at: now });
    }

    fn receive<E: LogEntry>(&mut self, env: Envelope<E>, out: &mut Vec<Output<E>>) {
        if env.to != self.id {
            return;
        }
        let (from, epoch) = (env.from, env.epoch);
        if epoch > 0 {
            // A cluster exists (an epoch was claimed): this node joins it, never founds one.
            self.nobody_configured = false;
        }
        match env.message {
            Message::Election { last } => self.on_election(from, epoch, last, out),
            Message::ElectionOk => {
                if epoch > self.hard.epoch {
                    self.adopt(epoch, out);
                }
                if let Election::AwaitOk { .. } = self.election {
                    self.election = Election::AwaitCoordinator { until: self.now + 3 * self.timing.election_timeout };
                }
            }
            Message::Coordinator { last, pre: true, handed } => self.on_pre_claim(from, epoch, last, handed, out),
            Message::Coordinator { last, pre: false, handed } => self.on_coordinator(from, epoch, last, handed, out),
            Message::Vote { granted, pre: true, .. } => {
                if let Election::PreClaim { grants, .. } = &mut self.election {
                    if granted && epoch == self.hard.epoch + 1 {
                        grants.insert(from);
                        return self.count_votes(out);
                    }
                }
                if !granted && epoch > self.hard.epoch {
                    self.adopt(epoch, out);
                }
            }
            Message::Vote { granted, pre: false, .. } => {
                if epoch > self.hard.epoch {
                    return self.adopt(epoch, out);
                }
                if epoch == self.hard.epoch && granted {
                    if let Election::Claim { grants, .. } = &mut self.election {
                        grants.insert(from);
                        self.count_votes(out);
                    }
                }
            }
            Message::Append { prev, entries, commit, sent_at } => {
                self.on_append(from, epoch, prev, entries, commit, sent_at, out)
            }
            Message::AppendReply { ok, durable, runs, sent_at } => {
                if epoch > self.hard.epoch {
                    return self.adopt(epoch, out);
                }
                if epoch == self.hard.epoch && self.role == Role::Master {
                    self.on_append_reply(from, ok, durable, &runs, sent_at, out);
                }
            }
            Message::Stale { master } => {
                if epoch > self.hard.epoch {
                    self.adopt(epoch, out);
                    self.master = master;
                }
            }
            Message::Leave => {
                if self.role == Role::Master && epoch <= self.hard.epoch && self.removals.insert(from) {
                    log::info!("node {}: node {from} asks to leave", self.id);
                }
            }
            Message::HandOver { successor } => self.on_hand_over(from, epoch, successor, out),
            Message::InstallSnapshot { base, sent_at } => self.on_install_snapshot(from, epoch, base, sent_at, out),
            Message::Hello => {
                // A node outside the membership that says hello wants (back) in.
                self.departed.remove(&from);
                let configured = self.configured();
                self.send(from, Message::HelloReply { configured }, out);
            }
            Message::HelloReply { configured } => {
                self.hello.insert(from, configured);
            }
        }
    }

    fn on_election<E: LogEntry>(&mut self, from: NodeId, _epoch: Epoch, last: Position, out: &mut Vec<Output<E>>) {
        let m = self.membership();
        // Only a voter higher than the sender and at least as up to date answers.
        if !m.is_voter(self.id) || from >= self.id || self.log.last() < last || !self.storage_ok || self.stopping {
            return;
        }
        self.send(from, Message::ElectionOk, out);
        if self.role != Role::Master && self.election == Election::Idle && !self.master_alive() {
            self.start_election(out);
        }
    }

    /// Would this node accept `from` as master of `epoch`? Nothing is stored or adopted.
    fn on_pre_claim<E: LogEntry>(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        last: Position,
        handed: bool,
        out: &mut Vec<Output<E>>,
    ) {
        // As in Raft, a node answers whatever its own membership says (a node whose log is
        // behind may not know yet that it, or the claimant, votes); the claimant counts
        // only the voters of its membership.
        let would = self.storage_ok
            && self.fetching.is_none()
            && epoch > self.hard.epoch
            && last >= self.log.last()
            && !self.keeps_master(from, epoch, handed);
        let answer = Message::Vote { granted: would, pre: true, last: self.log.last() };
        let epoch = if would { epoch } else { self.hard.epoch };
        out.push(Output::Send(Envelope { from: self.id, to: from, epoch, message: answer }));
    }

    /// Whether a live master keeps this node from accepting `from` as master of `epoch`. A
    /// claimant the master of the epoch before handed over to is not kept out: that master
    /// (one per epoch) takes no more writes.
    fn keeps_master(&self, from: NodeId, epoch: Epoch, handed: bool) -> bool {
        let released = handed && epoch == self.hard.epoch + 1;
        self.master_alive() && self.master != Some(from) && !released
    }

    fn on_coordinator<E: LogEntry>(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        last: Position,
        handed: bool,
        out: &mut Vec<Output<E>>,
    ) {
        if !self.storage_ok || self.fetching.is_some() {
            return; // a vote that cannot be stored is not given, nor one by a log about to change
        }
        if epoch < self.hard.epoch {
            return self.send(from, Message::Stale { master: self.master }, out);
        }
        let refuse = |node: &Self, out: &mut Vec<Output<E>>| {
            node.send(from, Message::Vote { granted: false, pre: false, last: node.log.last() }, out)
        };
        // A node with a live master keeps it (and its epoch): a claimant that cannot hear
        // the master does not depose it.
        if epoch > self.hard.epoch && self.keeps_master(from, epoch, handed) {
            return refuse(self, out);
        }
        self.adopt(epoch, out);
        // One master per epoch, and only one whose log holds everything this one does.
        let free = self.hard.voted_for.is_none_or(|v| v == from);
        if !free || last < self.log.last() {
            return refuse(self, out);
        }
        if self.hard.voted_for != Some(from) {
            self.hard.voted_for = Some(from);
            self.save_hard(out);
        }
        self.role = Role::Follower;
        self.election = Election::Idle;
        self.master = Some(from);
        self.heard_at = Some(self.now);
        self.send(from, Message::Vote { granted: true, pre: false, last: self.log.last() }, out);
    }

    /// A message only a master sends (an append, a snapshot to install) from `from` in
    /// `epoch`: an older epoch is answered stale; otherwise this node adopts the epoch and
    /// follows `from`, heard now. False when the message is to be dropped (stale, no
    /// storage, or this node is master of that epoch: two masters of one epoch cannot be).
    fn follow<E>(&mut self, from: NodeId, epoch: Epoch, out: &mut Vec<Output<E>>) -> bool {
        if epoch < self.hard.epoch {
            self.send(from, Message::Stale { master: self.master }, out);
            return false;
        }
        if !self.storage_ok {
            return false;
        }
        self.adopt(epoch, out);
        if self.role == Role::Master {
            return false;
        }
        self.role = Role::Follower;
        self.election = Election::Idle;
        self.master = Some(from);
        self.heard_at = Some(self.now);
        self.elect_after = self.now + self.timing.failure_timeout;
        self.ok_rounds = 0;
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append<E: LogEntry>(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        prev: Position,
        entries: Vec<E>,
        commit: Lsn,
        sent_at: Time,
        out: &mut Vec<Output<E>>,
    ) {
        if !self.follow(from, epoch, out) {
            return;
        }
        if self.fetching.is_some() {
            return; // its log is about to be replaced: it answers once it is
        }
        if !self.log.holds(prev) {
            let reply =
                Message::AppendReply { ok: false, durable: self.log.last().lsn, runs: self.log.runs(), sent_at };
            return self.send(from, reply, out);
        }
        // Skip what is already here, cut at the first entry that disagrees, append the rest.
        let matched = prev.lsn + entries.len() as Lsn;
        let mut truncate_after = None;
        let mut new = Vec::new();
        let base = self.log.base().lsn;
        for e in entries {
            if e.lsn() <= base {
                continue; // compacted here: committed, so the same
            }
            if new.is_empty() && truncate_after.is_none() {
                match self.log.epoch_at(e.lsn()) {
                    Some(ep) if ep == e.epoch() => continue,
                    Some(_) => truncate_after = Some(e.lsn() - 1),
                    None => {}
                }
            }
            new.push(e);
        }
        // A compacted log that differs is cut by undoing its own entries there; where
        // storage could not (it cannot rebuild what compaction took), the master's
        // snapshot replaces it (entries and votes wait until it is installed).
        let compacted_cut = truncate_after.is_some() && self.log.base().lsn > 0;
        if compacted_cut && self.cut_by_snapshot {
            log::warn!(
                "node {}: its log differs from master {from}'s after compaction; installs its snapshot",
                self.id
            );
            self.fetching = Some((from, epoch, sent_at));
            return out.push(Output::FetchSnapshot { from });
        }
        if let Some(t) = truncate_after {
            log::warn!("node {}: drops its entries after {t}: master {from}'s log differs", self.id);
            self.log.truncate_after(t);
        }
        for e in &new {
            // Entries arrive in order after `prev`; a gap would be the master's bug.
            if self.log.append(&EntryMeta::of(e)).is_err() {
                return;
            }
        }
        if truncate_after.is_some() || !new.is_empty() {
            out.push(Output::Persist { truncate_after, entries: new });
        }
        if compacted_cut {
            // Storage may refuse this cut, and then keeps the old entries: nothing after
            // the cut may count as committed here until a later append.
            let reply = Message::AppendReply { ok: true, durable: matched, runs: Vec::new(), sent_at };
            return self.send(from, reply, out);
        }
        let commit = commit.min(matched);
        if commit > self.commit {
            self.commit = commit;
            out.push(Output::Commit(commit));
            self.forget_old_memberships();
            self.check_removed(out);
            self.compact(commit, out);
        }
        self.send(from, Message::AppendReply { ok: true, durable: matched, runs: Vec::new(), sent_at }, out);
    }

    fn on_append_reply<E: LogEntry>(
        &mut self,
        from: NodeId,
        ok: bool,
        durable: Lsn,
        runs: &[Run],
        sent_at: Time,
        out: &mut Vec<Output<E>>,
    ) {
        let last = self.log.last().lsn;
        let common = if ok { durable.min(last) } else { self.log.common_with(runs, durable) };
        let Some(p) = self.progress.get_mut(&from) else { return };
        p.acked = Some(p.acked.map_or(sent_at, |a| a.max(sent_at)));
        if p.in_flight.is_some_and(|t| t <= sent_at) {
            p.in_flight = None;
        }
        p.matched = p.matched.max(common);
        if !ok {
            p.next = common + 1;
        } else if p.next <= p.matched {
            p.next = p.matched + 1;
        }
        let behind = p.next <= last || (!ok && p.in_flight.is_none());
        self.advance_commit(out);
        self.try_hand_over(out);
        if self.role != Role::Master {
            return;
        }
        if behind && self.role == Role::Master && self.progress.get(&from).is_some_and(|p| p.in_flight.is_none()) {
            self.send_append(from, out);
        }
    }

    /// The highest entry of this epoch that a majority of voters hold.
    fn advance_commit<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        let m = self.membership();
        let mut held: Vec<Lsn> =
            m.voters
                .iter()
                .map(|v| {
                    if *v == self.id {
                        self.log.last().lsn
                    } else {
                        self.progress.get(v).map(|p| p.matched).unwrap_or(0)
                    }
                })
                .collect();
        if held.is_empty() {
            return;
        }
        held.sort_unstable_by(|a, b| b.cmp(a));
        let n = held[m.majority() - 1];
        if n > self.commit && self.log.epoch_at(n) == Some(self.hard.epoch) {
            self.commit = n;
            out.push(Output::Commit(n));
            self.forget_old_memberships();
            // What every voter holds (a voter further behind would need a snapshot).
            let held_by_all = held.last().copied().unwrap_or(0);
            self.check_removed(out);
            if self.role == Role::Master {
                self.compact(n.min(held_by_all), out);
            }
        }
    }

    /// Compacts the log up to `limit` less the entries retained, in steps of at least that
    /// many entries.
    fn compact<E>(&mut self, limit: Lsn, out: &mut Vec<Output<E>>) {
        let retain = self.timing.retain;
        if retain == 0 || limit > self.commit {
            return;
        }
        let upto = limit.saturating_sub(retain);
        if upto < self.log.base().lsn + retain {
            return;
        }
        self.log.compact(upto);
        let membership = self.log.membership_at(upto).cloned();
        out.push(Output::Compact { upto: self.log.base(), membership });
    }

    /// The master sent a snapshot's worth of catching up: fetch it (one at a time), taking
    /// no entries and giving no votes until it is installed.
    fn on_install_snapshot<E: LogEntry>(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        base: Lsn,
        sent_at: Time,
        out: &mut Vec<Output<E>>,
    ) {
        if !self.follow(from, epoch, out) {
            return;
        }
        let mine = self.log.base().lsn;
        if self.fetching.is_none() && mine >= base && mine > 0 {
            // It installed (or compacted) as far already, maybe as this was sent: the
            // entries up to its own base are committed, so they match; the rest is checked
            // as usual from there.
            let reply = Message::AppendReply { ok: true, durable: mine, runs: Vec::new(), sent_at };
            return self.send(from, reply, out);
        }
        if self.fetching.is_none() {
            log::info!("node {}: its log is behind node {from}'s compaction point; installs its snapshot", self.id);
            self.fetching = Some((from, epoch, sent_at));
            out.push(Output::FetchSnapshot { from });
        }
    }

    /// The snapshot is installed: its log is committed up to its base (the master's commit
    /// point then), and holds the master's entries after that up to its end.
    fn snapshot_installed<E: LogEntry>(&mut self, log: LogIndex, out: &mut Vec<Output<E>>) {
        let (at, base) = (log.last(), log.base());
        log::info!("node {}: installed a snapshot at {}/{} (committed to {})", self.id, at.lsn, at.epoch, base.lsn);
        self.log = log;
        self.cut_by_snapshot = false;
        if base.lsn > self.commit {
            self.commit = base.lsn;
            out.push(Output::Commit(base.lsn));
        }
        self.check_removed(out);
        if let Some((from, epoch, sent_at)) = self.fetching.take() {
            if epoch == self.hard.epoch && self.master == Some(from) {
                self.send(from, Message::AppendReply { ok: true, durable: at.lsn, runs: Vec::new(), sent_at }, out);
            }
        }
    }

    fn forget_old_memberships(&mut self) {
        self.log.forget_memberships_before(self.commit);
    }

    /// Once a membership without this node is committed: a leaving node is done, and a
    /// master steps down.
    fn check_removed<E>(&mut self, out: &mut Vec<Output<E>>) {
        let Some((lsn, m)) = self.log.membership() else { return };
        if lsn > self.commit || m.contains(self.id) {
            return;
        }
        if self.role == Role::Master {
            // The voters left: the one holding most of the log (the highest of those) claims
            // at once instead of after a failure timeout.
            let successor = m
                .voters
                .iter()
                .map(|v| (self.progress.get(v).map(|p| p.matched).unwrap_or(0), *v))
                .max()
                .map(|(_, v)| v);
            let others: Vec<NodeId> = m.others(self.id).collect();
            self.resign(successor, &others, "it was removed from the cluster", out);
        }
        if self.leaving && !self.left {
            log::info!("node {}: removed from the cluster; leaving", self.id);
            self.left = true;
            out.push(Output::Left);
        }
    }

    /// This node is stopping. A follower is done at once; a master takes no more writes
    /// and hands over once every entry it appended is committed and a voter holds them all
    /// (or, failing that, after a failure timeout, to the voter holding most).
    fn begin_hand_over<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        if !self.stopping {
            self.stopping = true;
            self.stop_by = self.now + self.timing.failure_timeout;
            self.election = Election::Idle;
            if self.role == Role::Master {
                log::info!("node {}: stopping; hands mastership over once its writes are decided", self.id);
            } else if self.role == Role::Candidate {
                self.role = Role::Follower;
            }
        }
        if self.role == Role::Master {
            self.try_hand_over(out);
        } else {
            self.handed_over = true;
            out.push(Output::HandedOver);
        }
    }

    fn try_hand_over<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        if !self.stopping || self.handed_over || self.role != Role::Master {
            return;
        }
        let last = self.log.last().lsn;
        let m = self.membership();
        let matched = |v: &NodeId| self.progress.get(v).map(|p| p.matched).unwrap_or(0);
        let voters: Vec<NodeId> = m.voters.iter().copied().filter(|v| *v != self.id).collect();
        // The highest voter holding the whole log: the one the bully would elect.
        let ready = voters.iter().copied().filter(|v| matched(v) >= last).max();
        let successor = match ready {
            Some(s) if self.commit >= last => Some(s),
            _ if voters.is_empty() => None,
            _ if self.now >= self.stop_by => voters.iter().map(|v| (matched(v), *v)).max().map(|(_, v)| v),
            _ => return,
        };
        let others: Vec<NodeId> = m.others(self.id).collect();
        self.resign(successor, &others, "it is stopping", out);
        self.handed_over = true;
        out.push(Output::HandedOver);
    }

    /// Steps down and tells the members: `successor` claims the next epoch now.
    fn resign<E>(&mut self, successor: Option<NodeId>, members: &[NodeId], why: &str, out: &mut Vec<Output<E>>) {
        match successor {
            Some(s) => log::info!("node {}: hands mastership of epoch {} to node {s}", self.id, self.hard.epoch),
            None => log::info!(
                "node {}: gives up mastership of epoch {} (no voter to hand over to)",
                self.id,
                self.hard.epoch
            ),
        }
        for id in members {
            self.send(*id, Message::HandOver { successor }, out);
        }
        self.step_down(why);
        // Not this node again before the successor has had its chance.
        self.elect_after = self.now + self.timing.failure_timeout;
    }

    /// The master stepped down: its promise of the lease no longer binds (it takes no
    /// writes); the successor claims now, the others give it a failure timeout.
    fn on_hand_over<E: LogEntry>(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        successor: Option<NodeId>,
        out: &mut Vec<Output<E>>,
    ) {
        if epoch != self.hard.epoch || self.master != Some(from) || self.role == Role::Master {
            return;
        }
        log::info!("node {}: master {from} stepped down in epoch {epoch} (successor {successor:?})", self.id);
        self.master = None;
        self.heard_at = None;
        if successor == Some(self.id) && self.storage_ok && self.may_elect() {
            self.ok_rounds = 0;
            self.handed_in = Some(epoch);
            self.claim(true, out);
        } else {
            self.elect_after = self.now + self.timing.failure_timeout;
        }
    }

    /// Entries this node appended as master are durable.
    fn local_durable<E: LogEntry>(&mut self, metas: Vec<EntryMeta>, out: &mut Vec<Output<E>>) {
        for m in &metas {
            if m.lsn <= self.log.last().lsn {
                continue; // reported twice
            }
            if self.log.append(m).is_err() {
                log::error!("node {}: local entry {} does not follow its log", self.id, m.lsn);
                return;
            }
            if let Some(next) = &m.membership {
                self.change_pending = false;
                log::info!("node {}: membership is now {}", self.id, next.describe());
                // Removed nodes still get the log for a while, to learn of their removal.
                let until = self.now + 3 * self.timing.failure_timeout;
                let gone: Vec<NodeId> = self.progress.keys().copied().filter(|id| !next.contains(*id)).collect();
                for id in gone {
                    self.farewell.insert(id, until);
                    if self.removals.remove(&id) {
                        self.departed.insert(id);
                    }
                }
            }
            if self.role == Role::Master && self.start_lsn.is_none() && m.epoch == self.hard.epoch {
                self.start_lsn = Some(m.lsn);
            }
        }
        if self.role != Role::Master {
            return;
        }
        // Newly added members get the log too.
        let others: Vec<NodeId> = self.membership().others(self.id).collect();
        let last = self.log.last().lsn;
        for id in others {
            let idle = self.progress.get(&id).is_none_or(|p| p.in_flight.is_none());
            if idle {
                let p = self.progress.entry(id).or_insert_with(|| Progress { next: last + 1, ..Progress::default() });
                if p.next <= last {
                    self.send_append(id, out);
                }
            }
        }
        let m = self.membership();
        self.progress.retain(|id, _| m.contains(*id) || self.farewell.contains_key(id));
        self.advance_commit(out);
    }

    /// As master: one membership change at a time, each once the one before is committed
    /// (and this epoch's first entry, so the change cannot cross an older master's).
    fn change_membership<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        if self.change_pending || self.start_lsn.is_none_or(|s| self.commit < s) {
            return;
        }
        let m = self.membership();
        if self.log.membership().is_some_and(|(l, _)| l > self.commit) {
            return;
        }
        if self.leaving {
            self.removals.insert(self.id);
        }
        self.removals.retain(|id| m.contains(*id));
        // A learner discovery no longer finds is gone: it counts in no majority, so it
        // goes without an operator (a voter that vanishes stays: a crash never shrinks the
        // quorum).
        let vanished = m.learners.iter().copied().find(|l| !self.discovered.contains(l));
        let change = if let Some(id) = vanished {
            Some(MembershipChange::Remove { id })
        } else if let Some(id) = self.removals.iter().copied().find(|id| *id != self.id || m.voters.len() > 1) {
            Some(MembershipChange::Remove { id })
        } else if let Some(id) = m.learners.iter().copied().find(|l| {
            let matched = self.progress.get(l).map(|p| p.matched).unwrap_or(0);
            matched >= self.commit && self.log.last().lsn.saturating_sub(matched) <= self.timing.catch_up_slack
        }) {
            Some(MembershipChange::Promote { id })
        } else {
            self.discovered
                .iter()
                .copied()
                .find(|id| !m.contains(*id) && !self.departed.contains(id))
                .map(|id| MembershipChange::AddLearner { id })
        };
        let Some(change) = change else { return };
        let next = change.apply(&m);
        if next == m {
            return;
        }
        log::info!("node {}: membership change {change:?} ({} -> {})", self.id, m.describe(), next.describe());
        self.change_pending = true;
        out.push(Output::AppendLocal(Local::Membership(next)));
    }

    /// Writes the founding entry (LSN 1, epoch 0) and may elect at once.
    fn found<E: LogEntry>(&mut self, founding: Membership, out: &mut Vec<Output<E>>) {
        log::info!("node {}: founds the cluster: {}", self.id, founding.describe());
        let meta = EntryMeta { lsn: 1, epoch: 0, membership: Some(founding.clone()) };
        let _ = self.log.append(&meta);
        out.push(Output::Found(founding));
        self.elect_after = self.now;
    }

    /// An empty log: join whoever is configured. Under a static list, found the cluster it
    /// names once every node on it says it has nothing; under DNS discovery, when nobody in
    /// sight is configured and this node has the highest id, found it alone.
    fn unconfigured<E: LogEntry>(&mut self, out: &mut Vec<Output<E>>) {
        if self.last_hello.is_none_or(|t| self.now >= t + self.timing.heartbeat * 5) {
            // A round ends: did everyone in sight answer, and was nobody configured?
            self.nobody_configured =
                self.last_hello.is_some() && self.discovered.iter().all(|id| self.hello.get(id) == Some(&false));
            self.hello.clear();
            self.last_hello = Some(self.now);
            for id in self.discovered.clone() {
                self.send(id, Message::Hello, out);
            }
        }
        if let Some(list) = self.initial.clone() {
            // A static list founds the cluster it names once every other node on it said it
            // has nothing (the founding entry is the same whoever writes it).
            let others: Vec<NodeId> = list.voters.iter().copied().filter(|i| *i != self.id).collect();
            if self.log.is_empty() && others.iter().all(|id| self.hello.get(id) == Some(&false)) {
                self.found(list, out);
            }
            return;
        }
        let wait = self.timing.bootstrap_wait;
        let settled = self.now >= self.discovered_at + wait && self.now >= self.started_at + wait;
        // A node that has adopted an epoch has heard of a cluster, whatever its hellos say.
        let nobody_configured = self.nobody_configured && self.log.is_empty() && self.hard.epoch == 0;
        let highest = self.discovered.iter().all(|id| *id < self.id);
        if settled && nobody_configured && highest {
            log::info!("node {}: nobody configured in sight; founding the cluster", self.id);
            self.found(Membership::of_voters([self.id]), out);
        }
    }
}
