//! ElectionCoordinator: the driver of the protocol core ([`super::core::Node`]) on a real
//! node. It feeds the core timer ticks, the messages other nodes send (`/internal/message`),
//! what the log writer appended, what discovery finds and how storage is doing, and it
//! carries out what the core asks, in order: stores the epoch and vote and the follower's
//! log writes before anything after them happens (the actor waits for them), sends
//! messages, has the `ReplicationStreamer` ship entries, moves the commit point the
//! writes wait on, and publishes the view to [`ClusterState`]. The rules are all in the
//! core; this actor only does I/O.
use super::client::Rpc;
use super::core::{self, HardState, Input, Local, LogIndex, Membership, Node, Output, Role, Run, Timing};
use super::discovery::discover;
use super::lag::AppendTimes;
use super::messages::{NodeStatus, ProtocolMessage};
use super::replication::{membership_change, Forget, LocalDurable, ReplicationStreamer, ReportTo, Ship};
use super::{ClusterState, NodeId};
use crate::actors::lamport::{LamportClock, Now};
use crate::actors::ShowDirectory;
use crate::db::Db;
use crate::metrics::{ClusterFigures, FollowerLag, Metrics};
use crate::wal::{monotonic_ms, Change, LogRecord, LogWriter, WalError};
use actix::prelude::*;
use futures::channel::oneshot;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Out = Output<LogRecord>;

pub struct ElectionCoordinator {
    rpc: Rpc,
    db: Db,
    writer: LogWriter,
    streamer: Addr<ReplicationStreamer>,
    shows: Arc<ShowDirectory>,
    clock: Addr<LamportClock>,
    core: Node,
    client: Option<awc::Client>,
    last_discovery: Option<Instant>,
    last_probe: Option<Instant>,
    busy_reported: Option<u64>,
    /// When this node last heard its master (for the cluster page).
    heard_master: Option<Instant>,
    /// Callers waiting for this node to be out of the cluster (SIGTERM).
    leaving: Vec<oneshot::Sender<()>>,
    /// Callers waiting for this node to have handed mastership over (SIGTERM).
    handing_over: Vec<oneshot::Sender<()>>,
    handed_over: bool,
    /// As master: when the log reached each LSN (the followers' lag in seconds).
    appended: AppendTimes,
    metrics: Metrics,
}

/// The protocol's clocks, from the cluster configuration.
pub fn timing(c: &super::ClusterConfig) -> Timing {
    let ms = |d: Duration| d.as_millis() as u64;
    Timing {
        batch: 1024,
        storage_stall: ms(c.storage_stall),
        retain: c.log_retain,
        ..Timing::from_millis(ms(c.heartbeat_interval), ms(c.failure_timeout), ms(c.election_timeout))
    }
}

/// What a node has stored of the protocol: its epoch and vote, and its log's index.
pub fn load_state(conn: &mut diesel::mysql::MysqlConnection) -> Result<(HardState, LogIndex), crate::db::DbError> {
    let (epoch, voted_for) = crate::db::node::load(conn)?;
    let pos = crate::wal::writer::last_position(conn)?;
    let runs = crate::db::write_log::runs(conn)?
        .into_iter()
        .map(|(first, epoch)| Run { first: first.max(0) as u64, epoch: epoch.max(0) as u64 })
        .collect();
    let memberships: Vec<(u64, Membership)> = crate::db::write_log::memberships(conn)?
        .into_iter()
        .filter_map(|r| core::LogEntry::membership(&r).map(|m| (r.lsn.max(0) as u64, m)))
        .collect();
    let last = pos.last_lsn.max(0) as u64;
    let log = match crate::db::node::load_base(conn)? {
        // Compacted: what is left after the base, and the membership in force there (its
        // entry is never deleted).
        Some((lsn, epoch)) => {
            let base = core::Position { lsn: lsn.max(0) as u64, epoch: epoch.max(0) as u64 };
            let at_base = memberships.iter().rev().find(|(l, _)| *l <= base.lsn).map(|(_, m)| m.clone());
            LogIndex::compacted(base, at_base, runs, last, memberships)
        }
        None => LogIndex::from_parts(runs, last, memberships),
    };
    let epoch = epoch.max(log.last().epoch);
    Ok((HardState { epoch, voted_for }, log))
}

impl ElectionCoordinator {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rpc: Rpc,
        db: Db,
        writer: LogWriter,
        streamer: Addr<ReplicationStreamer>,
        shows: Arc<ShowDirectory>,
        clock: Addr<LamportClock>,
        hard: HardState,
        log: LogIndex,
        initial: Option<Membership>,
        metrics: Metrics,
    ) -> Self {
        let id = rpc.cluster.node_id;
        let core = Node::new(id, timing(&rpc.cluster.config), initial, hard, log, monotonic_ms());
        Self {
            rpc,
            db,
            writer,
            streamer,
            shows,
            clock,
            core,
            client: None,
            last_discovery: None,
            last_probe: None,
            busy_reported: None,
            heard_master: None,
            leaving: Vec::new(),
            handing_over: Vec::new(),
            handed_over: false,
            appended: AppendTimes::default(),
            metrics,
        }
    }

    fn cluster(&self) -> &Arc<ClusterState> {
        &self.rpc.cluster
    }

    fn step(&mut self, input: Input<LogRecord>, ctx: &mut Context<Self>) {
        if let Input::Receive(env) = &input {
            if Some(env.from) == self.core.view().master {
                self.heard_master = Some(Instant::now());
            }
        }
        let out = self.core.step(monotonic_ms(), input);
        self.carry_out(out, ctx);
    }

    /// Carries out the core's outputs in order; a store waits (the actor takes nothing
    /// else meanwhile), and when it fails the rest is dropped and the core told.
    fn carry_out(&mut self, outputs: Vec<Out>, ctx: &mut Context<Self>) {
        if outputs.iter().any(|o| matches!(o, Output::ViewChanged)) {
            self.publish();
        }
        let mut rest = outputs.into_iter();
        while let Some(o) = rest.next() {
            match o {
                Output::SaveHardState(h) => {
                    let db = self.db.clone();
                    let save = async move { db.run(move |c| crate::db::node::save(c, h.epoch, h.voted_for)).await };
                    return self.store_then(save, rest.collect(), None, ctx);
                }
                Output::Persist { truncate_after, entries } => {
                    let writer = self.writer.clone();
                    let cut = truncate_after.map(|t| t as i64);
                    let changes: Vec<Change> = entries.iter().map(|e| e.change.clone()).collect();
                    let write = async move { writer.persist(cut, entries).await.map(|_| ()) };
                    return self.store_then(write, rest.collect(), Some((cut, changes)), ctx);
                }
                Output::Found(m) => {
                    let writer = self.writer.clone();
                    // The same entry whichever node writes it (several may, under a static list).
                    let record = LogRecord {
                        lsn: 1,
                        epoch: 0,
                        lamport: 0,
                        origin: 0,
                        created_at: chrono::DateTime::UNIX_EPOCH.naive_utc(),
                        change: membership_change(&m),
                    };
                    let write = async move { writer.persist(None, vec![record]).await.map(|_| ()) };
                    return self.store_then(write, rest.collect(), None, ctx);
                }
                Output::AppendLocal(local) => {
                    let change = match local {
                        Local::EpochStart => Change::EpochStart,
                        Local::Membership(m) => membership_change(&m),
                    };
                    self.writer.append_protocol(change, self.core.view().epoch);
                }
                Output::Send(env) => self.send(env, ctx),
                Output::SendAppend { to_node, epoch, prev, to, commit, sent_at } => {
                    if let Some(peer) = self.cluster().peer(to_node) {
                        self.streamer.do_send(Ship { to: peer, epoch, prev, to_lsn: to, commit, sent_at });
                    }
                }
                Output::Commit(c) => {
                    let log = self.core.log();
                    self.writer.tracker().decide(c as i64, |lsn| log.epoch_at(lsn.max(0) as u64).map(|e| e as i64));
                }
                Output::ViewChanged => {}
                Output::Compact { upto, .. } => self.compact(upto, ctx),
                Output::FetchSnapshot { from } => self.fetch_snapshot(from, ctx),
                Output::HandedOver => {
                    self.handed_over = true;
                    for w in self.handing_over.drain(..) {
                        let _ = w.send(());
                    }
                }
                Output::Left => {
                    log::info!("node {}: out of the cluster", self.cluster().node_id);
                    for w in self.leaving.drain(..) {
                        let _ = w.send(());
                    }
                }
            }
        }
    }

    /// Deletes the log's entries up to `upto` (committed, in the tables), in the background:
    /// the core no longer reads them, and a crash half way leaves rows the base covers.
    fn compact(&mut self, upto: core::Position, ctx: &mut Context<Self>) {
        let (db, id) = (self.db.clone(), self.cluster().node_id);
        let (lsn, epoch) = (upto.lsn as i64, upto.epoch as i64);
        ctx.spawn(
            async move {
                let started = Instant::now();
                match db.run(move |c| crate::db::write_log::compact(c, lsn, epoch)).await {
                    Ok(n) => log::info!(
                        "node {id}: compacted its log up to {lsn} ({n} entries deleted in {} ms)",
                        started.elapsed().as_millis()
                    ),
                    Err(e) => log::error!("node {id}: could not compact its log up to {lsn}: {e}"),
                }
            }
            .into_actor(self),
        );
    }

    /// Fetches the master's snapshot into a directory of its own, installs it in one
    /// transaction, has the log writer, the replication cache and the show actors start
    /// again from it, and tells the core. Meanwhile the node takes no entries and gives no
    /// votes (the core's rule), but answers everything else.
    fn fetch_snapshot(&mut self, from: NodeId, ctx: &mut Context<Self>) {
        let id = self.cluster().node_id;
        let Some(peer) = self.cluster().peer(from) else {
            log::warn!("node {id}: cannot fetch a snapshot from node {from}: no address for it");
            return self.step(Input::SnapshotFailed, ctx);
        };
        let (rpc, db, writer) = (self.rpc.clone(), self.db.clone(), self.writer.clone());
        let dir = std::env::temp_dir().join(format!("marquee-node{id}-snapshot-{}", monotonic_ms()));
        let install = async move {
            let started = Instant::now();
            let fetched = crate::backup::fetch::backup(&rpc, &peer.address, true, &dir, &mut |_| {}).await;
            let result = match fetched {
                Ok(m) => {
                    let d = dir.clone();
                    let installed = db
                        .run(move |c| {
                            crate::backup::restore::install(c, &d, &m)
                                .map(|()| m.lsn)
                                .map_err(|e| crate::db::DbError::Snapshot(e.to_string()))
                        })
                        .await;
                    match installed {
                        Ok(lsn) => writer.reload().await.map(|_| lsn).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            let _ = std::fs::remove_dir_all(&dir);
            let log = match result {
                Ok(lsn) => {
                    log::info!(
                        "node {id}: installed node {from}'s snapshot at {lsn} in {} ms",
                        started.elapsed().as_millis()
                    );
                    db.run(load_state).await.map(|(_, log)| log).map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            log.inspect_err(|e| log::warn!("node {id}: snapshot from node {from} not installed: {e}"))
        };
        ctx.spawn(install.into_actor(self).map(|res, act, ctx| match res {
            Ok(log) => {
                act.streamer.do_send(Forget { after: 0 });
                act.shows.reset();
                act.step(Input::SnapshotInstalled(log), ctx);
            }
            Err(_) => act.step(Input::SnapshotFailed, ctx),
        }));
    }

    /// Runs a store, then the outputs after it; on failure tells the core instead.
    fn store_then<F, E>(
        &mut self,
        store: F,
        rest: Vec<Out>,
        log_write: Option<(Option<i64>, Vec<Change>)>,
        ctx: &mut Context<Self>,
    ) where
        F: std::future::Future<Output = Result<(), E>> + 'static,
        E: StoreFailure + 'static,
    {
        ctx.wait(store.into_actor(self).map(move |res, act, ctx| match res {
            Ok(()) => {
                if let Some((cut, changes)) = log_write {
                    if let Some(after) = cut {
                        act.streamer.do_send(Forget { after });
                        act.shows.reset();
                    } else {
                        notify_actors(&act.shows, &changes);
                    }
                }
                act.carry_out(rest, ctx);
            }
            Err(e) if e.refused_cut() => {
                log::warn!("node {}: {e}", act.cluster().node_id);
                act.step(Input::CutRefused, ctx);
            }
            Err(e) => {
                log::error!("node {}: storage failed: {e}", act.cluster().node_id);
                act.step(Input::StorageFailed, ctx);
            }
        }));
    }

    fn send(&mut self, env: ProtocolMessage, ctx: &mut Context<Self>) {
        let Some(peer) = self.cluster().peer(env.to) else { return };
        let timeout = self.cluster().config.election_timeout;
        let client = self.client.get_or_insert_with(|| Rpc::http_client(timeout)).clone();
        let rpc = self.rpc.clone();
        ctx.spawn(async move { rpc.tell(&client, &peer, env).await }.into_actor(self));
    }

    fn publish(&mut self) {
        let view = self.core.view();
        let before = self.cluster().view();
        if view.writable != before.writable {
            match view.writable {
                Some(e) => {
                    log::info!("node {}: takes writes in epoch {e} (log at {})", self.cluster().node_id, view.last.lsn);
                    // Everything in this node's log is committed now: the seat maps start
                    // from it.
                    self.shows.reset();
                }
                None => log::info!(
                    "node {}: takes no writes (epoch {}, {})",
                    self.cluster().node_id,
                    view.epoch,
                    view.role.name()
                ),
            }
        }
        if view.role != before.role || view.master != before.master || view.epoch != before.epoch {
            log::info!(
                "node {}: {} in epoch {}, master {:?}",
                self.cluster().node_id,
                view.role.name(),
                view.epoch,
                view.master
            );
        }
        if view.membership != before.membership {
            log::info!("node {}: membership {}", self.cluster().node_id, view.membership.describe());
        }
        if view.epoch > before.epoch {
            self.metrics.election();
        }
        if view.role != Role::Master && before.role == Role::Master {
            self.streamer.do_send(Forget { after: i64::MAX });
        }
        if view.role != before.role {
            // A new master's log is as old as now, as far as it knows.
            self.appended.clear();
            if view.role == Role::Master {
                self.appended.record(view.last.lsn, monotonic_ms());
            }
        }
        self.cluster().publish(view);
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let dns = matches!(self.cluster().config.peers, super::config::PeerSource::Dns { .. });
        if self.last_discovery.is_none_or(|t| dns && t.elapsed() > Duration::from_secs(2)) {
            self.last_discovery = Some(Instant::now());
            self.refresh_peers(ctx);
        }
        if !self.core.view().storage_ok {
            if self.last_probe.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                self.last_probe = Some(Instant::now());
                self.probe_storage(ctx);
            }
            return;
        }
        let stats = self.writer.stats();
        if stats.storage_failed.load(std::sync::atomic::Ordering::SeqCst) {
            log::error!("node {}: the log writer lost its database", self.cluster().node_id);
            return self.step(Input::StorageFailed, ctx);
        }
        let busy = u64::try_from(stats.busy_since_ms.load(std::sync::atomic::Ordering::SeqCst)).ok();
        if busy != self.busy_reported {
            self.busy_reported = busy;
            self.step(Input::StorageBusySince(busy), ctx);
        }
        self.step(Input::Tick, ctx);
    }

    /// Storage failed: try it again; once it answers, continue from what it holds.
    fn probe_storage(&mut self, ctx: &mut Context<Self>) {
        let db = self.db.clone();
        let probe = async move { db.run(load_state).await };
        ctx.spawn(probe.into_actor(self).map(|res, act, ctx| match res {
            Ok((hard, log)) => {
                log::info!("node {}: storage works again (log at {})", act.cluster().node_id, log.last().lsn);
                act.writer.stats().storage_failed.store(false, std::sync::atomic::Ordering::SeqCst);
                act.shows.reset();
                act.step(Input::StorageRecovered { hard, log }, ctx);
            }
            Err(e) => log::debug!("storage still failing: {e}"),
        }));
    }

    fn refresh_peers(&mut self, ctx: &mut Context<Self>) {
        let source = self.cluster().config.peers.clone();
        let me = self.cluster().node_id;
        ctx.spawn(async move { discover(&source, me).await }.into_actor(self).map(|res, act, ctx| match res {
            Ok(peers) => {
                if peers != act.cluster().peers() {
                    log::info!(
                        "node {}: discovery finds {:?}",
                        act.cluster().node_id,
                        peers.iter().map(|p| p.id).collect::<Vec<_>>()
                    );
                    act.cluster().set_peers(peers.clone());
                }
                act.step(Input::Discovered(peers.iter().map(|p| p.id).collect()), ctx);
            }
            Err(e) => log::warn!("peer discovery: {e}"),
        }));
    }
}

/// Brings loaded seat maps and show facts in line with entries this node stored as a
/// follower.
fn notify_actors(shows: &ShowDirectory, changes: &[Change]) {
    for change in changes {
        match change {
            Change::Catalog(c) => crate::catalog::notify_shows(shows, c),
            // The shows that take a new layout load their seat maps again.
            Change::Layout(l) => {
                for id in &l.shows {
                    if let Some(addr) = shows.loaded_one(crate::domain::ShowId(*id)) {
                        addr.do_send(crate::actors::show::Reload);
                    }
                }
            }
            other => {
                if let Some(addr) = other.show_id().and_then(|id| shows.loaded_one(crate::domain::ShowId(id))) {
                    addr.do_send(crate::actors::show::Replicated(other.clone()));
                }
            }
        }
    }
}

impl Actor for ElectionCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        self.streamer.do_send(ReportTo(ctx.address().recipient()));
        self.publish();
        let hb = self.cluster().config.heartbeat_interval;
        let every = (hb / 4).clamp(Duration::from_millis(5), Duration::from_millis(25));
        self.tick(ctx);
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
    }
}

/// A protocol message from another node (signature already checked).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound(pub ProtocolMessage);

impl Handler<Inbound> for ElectionCoordinator {
    type Result = ();
    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        self.step(Input::Receive(msg.0), ctx);
    }
}

impl Handler<LocalDurable> for ElectionCoordinator {
    type Result = ();
    fn handle(&mut self, msg: LocalDurable, ctx: &mut Context<Self>) {
        if let Some(last) = msg.0.last() {
            self.appended.record(last.lsn, monotonic_ms());
        }
        self.step(Input::LocalDurable(msg.0), ctx);
        if let Some(all_have) = self.core.progress().iter().map(|&(_, matched, _)| matched).min() {
            self.appended.forget_through(all_have);
        }
    }
}

/// The cluster as this node sees it, for `/metrics`: role, epoch, master, membership and,
/// on the master, each follower's lag.
#[derive(Message)]
#[rtype(result = "ClusterFigures")]
pub struct Figures;

impl Handler<Figures> for ElectionCoordinator {
    type Result = MessageResult<Figures>;
    fn handle(&mut self, _: Figures, _: &mut Context<Self>) -> Self::Result {
        let v = self.core.view();
        let now = monotonic_ms();
        let followers = match v.role {
            Role::Master => self
                .core
                .progress()
                .into_iter()
                .map(|(node, matched, acked)| FollowerLag {
                    node,
                    entries: v.last.lsn.saturating_sub(matched),
                    seconds: self.appended.lag_ms(matched, now) as f64 / 1000.0,
                    silent_seconds: acked.map(|t| now.saturating_sub(t) as f64 / 1000.0),
                })
                .collect(),
            _ => Vec::new(),
        };
        MessageResult(figures_of(&v, followers))
    }
}

/// The figures of a view (and the followers' lag, on a master).
pub fn figures_of(v: &core::View, followers: Vec<FollowerLag>) -> ClusterFigures {
    ClusterFigures {
        role: v.role.name(),
        epoch: v.epoch,
        master: v.master.unwrap_or(0),
        writable: v.writable.is_some(),
        voters: v.membership.voters.len(),
        learners: v.membership.learners.len(),
        last_lsn: v.last.lsn,
        commit_lsn: v.commit,
        followers,
    }
}

/// This node is shutting down: leave the cluster; resolves once the removal is committed.
#[derive(Message)]
#[rtype(result = "Result<(), ()>")]
pub struct Leave;

impl Handler<Leave> for ElectionCoordinator {
    type Result = ResponseFuture<Result<(), ()>>;
    fn handle(&mut self, _: Leave, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.core.has_left() {
            let _ = tx.send(());
        } else {
            log::info!("node {}: leaving the cluster", self.cluster().node_id);
            self.leaving.push(tx);
            self.step(Input::Leave, ctx);
        }
        Box::pin(async move { rx.await.map_err(|_| ()) })
    }
}

/// This node is stopping (SIGTERM, a rolling restart): it elects no more, and as master it
/// takes no more writes, waits for those in the log to be decided, and hands mastership to
/// its most up-to-date voter. Resolves once this node is not master.
#[derive(Message)]
#[rtype(result = "Result<(), ()>")]
pub struct HandOver;

impl Handler<HandOver> for ElectionCoordinator {
    type Result = ResponseFuture<Result<(), ()>>;
    fn handle(&mut self, _: HandOver, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.handed_over {
            let _ = tx.send(());
        } else {
            self.handing_over.push(tx);
            self.step(Input::HandOver, ctx);
        }
        Box::pin(async move { rx.await.map_err(|_| ()) })
    }
}

/// An operator removes a node (on the master): true when this node is the master.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct RemoveNode(pub NodeId);

impl Handler<RemoveNode> for ElectionCoordinator {
    type Result = bool;
    fn handle(&mut self, msg: RemoveNode, ctx: &mut Context<Self>) -> bool {
        if self.core.role() != Role::Master {
            return false;
        }
        log::info!("node {}: an operator removes node {}", self.cluster().node_id, msg.0);
        self.step(Input::Remove(msg.0), ctx);
        true
    }
}

/// This node's status, for the cluster page.
#[derive(Message)]
#[rtype(result = "(NodeStatus, Vec<(NodeId, i64, Option<u64>)>)")]
pub struct Status;

impl Handler<Status> for ElectionCoordinator {
    type Result = ResponseActFuture<Self, (NodeStatus, Vec<(NodeId, i64, Option<u64>)>)>;
    fn handle(&mut self, _: Status, _: &mut Context<Self>) -> Self::Result {
        let v = self.core.view();
        let now = monotonic_ms();
        let progress = self
            .core
            .progress()
            .into_iter()
            .map(|(id, m, t)| (id, m as i64, t.map(|t| now.saturating_sub(t))))
            .collect();
        let s = NodeStatus {
            node_id: self.cluster().node_id,
            role: v.role.name().to_string(),
            epoch: v.epoch,
            master_id: v.master,
            lamport: 0,
            last_lsn: v.last.lsn as i64,
            last_epoch: v.last.epoch as i64,
            commit_lsn: v.commit as i64,
            writable: v.writable.is_some(),
            last_heartbeat_ms: match v.role {
                Role::Master => None,
                _ => self.heard_master.map(|t| t.elapsed().as_millis() as u64),
            },
            voters: v.membership.voters.iter().copied().collect(),
            learners: v.membership.learners.iter().copied().collect(),
            storage_ok: v.storage_ok,
        };
        let clock = self.clock.clone();
        Box::pin(
            async move { (NodeStatus { lamport: clock.send(Now).await.unwrap_or(0), ..s }, progress) }.into_actor(self),
        )
    }
}

/// How a store the core asked for failed: storage failed, or it refused to cut the log
/// (see [`Input::CutRefused`]).
trait StoreFailure: std::fmt::Display {
    fn refused_cut(&self) -> bool {
        false
    }
}

impl StoreFailure for WalError {
    fn refused_cut(&self) -> bool {
        matches!(self, WalError::NeedsSnapshot(_))
    }
}

impl StoreFailure for crate::db::DbError {}
