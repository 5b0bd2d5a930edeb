//! ElectionCoordinator: runs the bully rules of [`super::bully`] with timers and RPCs. It
//! sends heartbeats while master (and serves writes only while a majority answers them),
//! watches the master's heartbeats while follower, and runs elections. A new master first
//! pulls the entries it lacks from the most up-to-date node that accepted it.
use super::bully::{Bully, EpochCheck};
use super::client::{Rpc, RpcError};
use super::discovery::discover;
use super::messages::{
    Coordinator, CoordinatorReply, Election, ElectionOk, Heartbeat, HeartbeatReply, LogPosition, NodeStatus,
};
use super::replication::{catch_up, CommitTracker, FollowerPosition, ReplicationStreamer, SetRole};
use super::{ClusterState, NodeId, Peer, Role};
use crate::actors::lamport::{LamportClock, Now};
use crate::actors::ShowDirectory;
use crate::db::Db;
use crate::wal::LogWriter;
use actix::prelude::*;
use futures::future::join_all;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct ElectionCoordinator {
    rpc: Rpc,
    db: Db,
    writer: LogWriter,
    tracker: Arc<CommitTracker>,
    streamer: Addr<ReplicationStreamer>,
    shows: Arc<ShowDirectory>,
    clock: Addr<LamportClock>,
    bully: Bully,
    client: Option<awc::Client>,
    /// A round of election is under way (its number).
    electing: Option<u64>,
    round: u64,
    /// When each follower last answered a heartbeat (master only).
    acks: HashMap<NodeId, Instant>,
    last_discovery: Option<Instant>,
    /// As master: caught up with the best log of the nodes that accepted it.
    synced: bool,
    /// The peers have been looked up at least once (no election before that: a node that
    /// has not found its peers yet would elect itself alone).
    discovered: bool,
}

impl ElectionCoordinator {
    /// The refusal of a message from an older epoch: ours, and who leads it.
    fn stale<T>(&self) -> Verdict<T> {
        Verdict::Stale { epoch: self.bully.epoch, master_id: self.bully.master }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rpc: Rpc,
        db: Db,
        writer: LogWriter,
        tracker: Arc<CommitTracker>,
        streamer: Addr<ReplicationStreamer>,
        shows: Arc<ShowDirectory>,
        clock: Addr<LamportClock>,
        epoch: u64,
        voted_for: Option<NodeId>,
    ) -> Self {
        let mut bully = Bully::new(rpc.cluster.node_id, epoch);
        bully.voted_for = voted_for;
        Self {
            rpc,
            db,
            writer,
            tracker,
            streamer,
            shows,
            clock,
            bully,
            client: None,
            electing: None,
            round: 0,
            acks: HashMap::new(),
            last_discovery: None,
            synced: false,
            discovered: false,
        }
    }

    fn cluster(&self) -> &Arc<ClusterState> {
        &self.rpc.cluster
    }

    fn client(&mut self) -> awc::Client {
        let timeout = self.cluster().config.election_timeout;
        self.client.get_or_insert_with(|| Rpc::http_client(timeout)).clone()
    }

    /// Makes the shared state and the streamer agree with the bully state, and stores the
    /// epoch and vote.
    fn publish(&mut self, ctx: &mut Context<Self>) {
        if self.bully.role != Role::Master {
            self.synced = false;
        }
        let c = self.cluster().clone();
        let was_master = c.role() == Role::Master;
        let epoch_changed = c.epoch() != self.bully.epoch;
        c.set_epoch(self.bully.epoch);
        c.set_role(self.bully.role, self.bully.master);
        if was_master && self.bully.role != Role::Master {
            log::warn!("node {}: stepped down in epoch {}", c.node_id, self.bully.epoch);
            self.tracker.fail_all();
            self.acks.clear();
        }
        self.streamer.do_send(SetRole { master: self.bully.role == Role::Master && self.synced, peers: c.peers() });
        if epoch_changed {
            self.persist(ctx);
        }
    }

    fn persist(&self, ctx: &mut Context<Self>) {
        let (epoch, voted) = (self.bully.epoch, self.bully.voted_for);
        let db = self.db.clone();
        ctx.spawn(
            async move {
                if let Err(e) = db.run(move |c| crate::db::node::save(c, epoch, voted)).await {
                    log::error!("cannot store the epoch: {e}");
                }
            }
            .into_actor(self),
        );
    }

    fn saw_epoch(&mut self, epoch: u64, master: Option<NodeId>, ctx: &mut Context<Self>) {
        if let EpochCheck::Adopted { stepped_down } = self.bully.check_epoch(epoch) {
            log::info!(
                "node {}: epoch {epoch} is newer; following{}",
                self.cluster().node_id,
                if stepped_down { " (stepping down)" } else { "" }
            );
            self.bully.master = master;
            self.bully.last_heard = master.map(|_| Instant::now());
            self.electing = None;
            self.publish(ctx);
        }
    }

    /// A node refused this round: it is in our epoch (another master or vote in it, as when
    /// a node elected alone is joined by new ones) or a later one. Adopt the newer epoch,
    /// end the round, and try again shortly with an epoch above it, unless a master is
    /// heard meanwhile.
    fn abort_round(&mut self, epoch: u64, master: Option<NodeId>, ctx: &mut Context<Self>) {
        self.saw_epoch(epoch, master, ctx);
        self.electing = None;
        if self.bully.role == Role::Candidate {
            self.bully.give_up();
            self.bully.master = None;
            self.publish(ctx);
        }
        let wait = self.cluster().config.election_timeout;
        ctx.run_later(wait, |act, ctx| {
            if act.electing.is_none()
                && act.bully.role == Role::Follower
                && act.bully.master_suspected(Instant::now(), act.cluster().config.failure_timeout)
            {
                act.start_election(ctx);
            }
        });
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let cfg = self.cluster().config.clone();
        if self.last_discovery.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            self.last_discovery = Some(Instant::now());
            self.refresh_peers(ctx);
        }
        match self.bully.role {
            Role::Master => self.heartbeat(ctx),
            Role::Follower
                if self.electing.is_none() && self.bully.master_suspected(Instant::now(), cfg.failure_timeout) =>
            {
                self.start_election(ctx)
            }
            _ => {}
        }
    }

    fn refresh_peers(&mut self, ctx: &mut Context<Self>) {
        let source = self.cluster().config.peers.clone();
        let me = self.cluster().node_id;
        ctx.spawn(async move { discover(&source, me).await }.into_actor(self).map(|res, act, _| match res {
            Ok(peers) => {
                act.discovered = true;
                if peers != act.cluster().peers() {
                    log::info!(
                        "node {}: peers are now {:?}",
                        act.cluster().node_id,
                        peers.iter().map(|p| p.id).collect::<Vec<_>>()
                    );
                    act.cluster().set_peers(peers.clone());
                    act.streamer.do_send(SetRole { master: act.bully.role == Role::Master && act.synced, peers });
                }
            }
            Err(e) => log::warn!("peer discovery: {e}"),
        }));
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let cfg = self.cluster().config.clone();
        // Serve writes only while a majority (this node included) answered recently.
        let now = Instant::now();
        let peers = self.cluster().peers();
        let live = peers
            .iter()
            .filter(|p| self.acks.get(&p.id).is_some_and(|t| now.duration_since(*t) <= cfg.failure_timeout))
            .count();
        let quorum = live + 1 >= self.cluster().majority() && self.synced;
        if quorum != self.cluster().writable() {
            log::info!(
                "node {}: master {} writes (heard by {} of {} nodes)",
                self.cluster().node_id,
                if quorum { "takes" } else { "refuses" },
                live + 1,
                peers.len() + 1
            );
            self.cluster().set_writable(quorum);
        }
        let body = Heartbeat { master_position: self.writer.position(), commit_lsn: self.tracker.commit_lsn() };
        let client = self.client();
        for peer in peers {
            let rpc = self.rpc.clone();
            let (client, body) = (client.clone(), body.clone());
            let call = async move {
                rpc.call::<_, HeartbeatReply>(&client, &peer, "/internal/heartbeat", body)
                    .await
                    .map(|r| (peer.id, r.body))
            };
            ctx.spawn(call.into_actor(self).map(|res, act, ctx| match res {
                Ok((id, reply)) => {
                    act.acks.insert(id, Instant::now());
                    act.streamer.do_send(FollowerPosition { id, position: reply.position });
                }
                Err(RpcError::StaleEpoch { epoch, master_id, .. }) => {
                    if epoch == act.bully.epoch && act.bully.role == Role::Master {
                        // Another node holds this epoch too (nodes that were elected before
                        // they found each other): step down and elect anew, above it.
                        log::warn!(
                            "node {}: another master claims epoch {epoch}; stepping down to elect anew",
                            act.cluster().node_id
                        );
                        act.bully.role = Role::Follower;
                        act.bully.master = None;
                        act.bully.last_heard = None;
                        act.publish(ctx);
                        act.abort_round(epoch, None, ctx);
                    } else {
                        act.saw_epoch(epoch, master_id, ctx);
                    }
                }
                Err(e) => log::debug!("heartbeat: {e}"),
            }));
        }
    }

    fn start_election(&mut self, ctx: &mut Context<Self>) {
        self.round += 1;
        let round = self.round;
        self.electing = Some(round);
        self.bully.begin_election();
        self.publish(ctx);
        let me = self.cluster().node_id;
        let higher: Vec<Peer> = self.cluster().peers().into_iter().filter(|p| p.id > me).collect();
        log::info!(
            "node {me}: election (epoch {}), asking {:?}",
            self.bully.epoch,
            higher.iter().map(|p| p.id).collect::<Vec<_>>()
        );
        if higher.is_empty() {
            return self.claim(round, ctx);
        }
        let client = self.client();
        let rpc = self.rpc.clone();
        let calls = higher.into_iter().map(move |p| {
            let (rpc, client) = (rpc.clone(), client.clone());
            async move { rpc.call::<_, ElectionOk>(&client, &p, "/internal/election", Election {}).await }
        });
        ctx.spawn(join_all(calls).into_actor(self).map(move |answers, act, ctx| {
            if act.electing != Some(round) {
                return;
            }
            let mut any_ok = false;
            for a in answers {
                match a {
                    Ok(_) => any_ok = true,
                    Err(RpcError::StaleEpoch { epoch, master_id, .. }) => {
                        act.abort_round(epoch, master_id, ctx);
                        return;
                    }
                    Err(_) => {}
                }
            }
            if !any_ok {
                return act.claim(round, ctx);
            }
            // A higher node is alive: it should announce itself; if not, try again.
            let wait = act.cluster().config.election_timeout * 3;
            ctx.run_later(wait, move |act, ctx| {
                if act.electing == Some(round) && act.bully.role == Role::Candidate {
                    act.electing = None;
                    act.bully.give_up();
                    act.bully.master = None;
                    act.start_election(ctx);
                }
            });
        }));
    }

    fn claim(&mut self, round: u64, ctx: &mut Context<Self>) {
        let epoch = self.bully.claim();
        self.publish(ctx);
        let me = self.cluster().node_id;
        let peers = self.cluster().peers();
        let size = peers.len() + 1;
        log::info!("node {me}: claims epoch {epoch}");
        let client = self.client();
        let rpc = self.rpc.clone();
        let calls = peers.clone().into_iter().map(move |p| {
            let (rpc, client) = (rpc.clone(), client.clone());
            async move {
                (p.clone(), rpc.call::<_, CoordinatorReply>(&client, &p, "/internal/coordinator", Coordinator {}).await)
            }
        });
        ctx.spawn(join_all(calls).into_actor(self).map(move |answers, act, ctx| {
            if act.electing != Some(round) {
                return;
            }
            let mut accepted: Vec<(Peer, LogPosition)> = Vec::new();
            for (peer, a) in answers {
                match a {
                    Ok(r) if r.body.accepted => accepted.push((peer, r.body.position)),
                    Ok(_) => {}
                    Err(RpcError::StaleEpoch { epoch, master_id, .. }) => {
                        act.abort_round(epoch, master_id, ctx);
                        return;
                    }
                    Err(_) => {}
                }
            }
            if !act.bully.claim_result(epoch, accepted.len(), size) {
                log::info!("node {me}: epoch {epoch} got {} of {size} nodes; no majority", accepted.len() + 1);
                act.electing = None;
                act.publish(ctx);
                // Try again a little later (a partition may heal).
                let wait = act.cluster().config.election_timeout * (1 + (me % 3) as u32);
                ctx.run_later(wait, |act, ctx| {
                    if act.electing.is_none() && act.bully.role == Role::Follower && act.bully.master.is_none() {
                        act.start_election(ctx);
                    }
                });
                return;
            }
            // Won: become master, but take writes only after catching up.
            act.bully.role = Role::Master;
            act.synced = false;
            act.publish(ctx);
            act.cluster().set_writable(false);
            for (p, _) in &accepted {
                act.acks.insert(p.id, Instant::now());
            }
            let mine = act.writer.position();
            let best = accepted
                .iter()
                .filter(|(_, pos)| (pos.last_epoch, pos.last_lsn) > (mine.last_epoch, mine.last_lsn))
                .max_by_key(|(_, pos)| (pos.last_epoch, pos.last_lsn))
                .map(|(p, _)| p.clone());
            let (rpc, writer, shows) = (act.rpc.clone(), act.writer.clone(), act.shows.clone());
            let sync = async move {
                if let Some(peer) = best {
                    log::info!("node {me}: pulling entries from node {}", peer.id);
                    catch_up(&rpc, &peer, &writer, epoch).await?;
                }
                shows.reset();
                Ok::<_, String>(())
            };
            ctx.spawn(sync.into_actor(act).map(move |res, act, ctx| {
                act.electing = None;
                if act.bully.role != Role::Master || act.bully.epoch != epoch {
                    return;
                }
                match res {
                    Ok(()) => {
                        log::info!("node {me}: master of epoch {epoch} (log at {})", act.writer.position().last_lsn);
                        act.streamer.do_send(SetRole { master: true, peers: act.cluster().peers() });
                        act.synced = true;
                        act.cluster().set_writable(true);
                        act.heartbeat(ctx);
                    }
                    Err(e) => {
                        log::error!("node {me}: could not catch up as new master ({e}); stepping down");
                        act.bully.role = Role::Follower;
                        act.bully.master = None;
                        act.publish(ctx);
                    }
                }
            }));
        }));
    }
}

impl Actor for ElectionCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.cluster().is_single() {
            self.bully.role = Role::Master;
            self.bully.master = Some(self.cluster().node_id);
            self.synced = true;
            return;
        }
        self.streamer.do_send(super::replication::OnStale(ctx.address().recipient()));
        self.refresh_peers(ctx);
        self.last_discovery = Some(Instant::now());
        // Give a running master a chance to be heard before electing.
        self.bully.last_heard = Some(Instant::now());
        let every = self.cluster().config.heartbeat_interval;
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
    }
}

/// A node told us of a newer epoch (in an answer).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SawEpoch {
    pub epoch: u64,
    pub master_id: Option<NodeId>,
}

impl Handler<SawEpoch> for ElectionCoordinator {
    type Result = ();
    fn handle(&mut self, msg: SawEpoch, ctx: &mut Context<Self>) {
        self.saw_epoch(msg.epoch, msg.master_id, ctx);
    }
}

/// The answer to a node-to-node request: accepted, or refused as from an older epoch.
#[derive(Debug)]
pub enum Verdict<T> {
    Accept(T),
    Stale { epoch: u64, master_id: Option<NodeId> },
}

/// An incoming ELECTION.
#[derive(Message)]
#[rtype(result = "Verdict<bool>")]
pub struct OnElection {
    pub from: NodeId,
    pub epoch: u64,
}

impl Handler<OnElection> for ElectionCoordinator {
    type Result = MessageResult<OnElection>;
    fn handle(&mut self, msg: OnElection, ctx: &mut Context<Self>) -> Self::Result {
        if let EpochCheck::Stale = self.bully.check_epoch(msg.epoch) {
            return MessageResult(self.stale());
        }
        self.publish(ctx);
        let (ok, start) = self.bully.on_election(msg.from);
        if self.bully.role == Role::Master {
            // Remind the lower node who leads.
            self.heartbeat(ctx);
        } else if start && self.electing.is_none() {
            self.start_election(ctx);
        }
        MessageResult(Verdict::Accept(ok))
    }
}

/// An incoming COORDINATOR.
#[derive(Message)]
#[rtype(result = "Verdict<CoordinatorReply>")]
pub struct OnCoordinator {
    pub from: NodeId,
    pub epoch: u64,
}

impl Handler<OnCoordinator> for ElectionCoordinator {
    type Result = MessageResult<OnCoordinator>;
    fn handle(&mut self, msg: OnCoordinator, ctx: &mut Context<Self>) -> Self::Result {
        if msg.epoch < self.bully.epoch {
            return MessageResult(self.stale());
        }
        let accepted = self.bully.on_coordinator(msg.from, msg.epoch, Instant::now());
        if accepted {
            log::info!("node {}: node {} is master of epoch {}", self.cluster().node_id, msg.from, msg.epoch);
            self.electing = None;
        }
        self.publish(ctx);
        self.persist(ctx);
        if accepted && msg.from < self.cluster().node_id {
            // Bully: a live higher node takes over.
            ctx.run_later(self.cluster().config.heartbeat_interval, |act, ctx| {
                if act.electing.is_none() && act.bully.role == Role::Follower {
                    act.start_election(ctx);
                }
            });
        }
        MessageResult(Verdict::Accept(CoordinatorReply { accepted, position: self.writer.position() }))
    }
}

/// An incoming heartbeat (or log shipment) from a master.
#[derive(Message)]
#[rtype(result = "Verdict<()>")]
pub struct OnHeartbeat {
    pub from: NodeId,
    pub epoch: u64,
}

impl Handler<OnHeartbeat> for ElectionCoordinator {
    type Result = MessageResult<OnHeartbeat>;
    fn handle(&mut self, msg: OnHeartbeat, ctx: &mut Context<Self>) -> Self::Result {
        let before = (self.bully.epoch, self.bully.master, self.bully.role);
        if !self.bully.on_heartbeat(msg.from, msg.epoch, Instant::now()) {
            return MessageResult(self.stale());
        }
        self.electing = None;
        if before != (self.bully.epoch, self.bully.master, self.bully.role) {
            self.publish(ctx);
            self.persist(ctx);
        }
        MessageResult(Verdict::Accept(()))
    }
}

/// This node's status, for the cluster page.
#[derive(Message)]
#[rtype(result = "NodeStatus")]
pub struct Status;

impl Handler<Status> for ElectionCoordinator {
    type Result = ResponseActFuture<Self, NodeStatus>;
    fn handle(&mut self, _: Status, _: &mut Context<Self>) -> Self::Result {
        let pos = self.writer.position();
        let s = NodeStatus {
            node_id: self.cluster().node_id,
            role: self.bully.role.name().to_string(),
            epoch: self.bully.epoch,
            master_id: self.bully.master,
            lamport: 0,
            last_lsn: pos.last_lsn,
            last_epoch: pos.last_epoch,
            commit_lsn: self.tracker.commit_lsn(),
            writable: self.cluster().writable(),
            last_heartbeat_ms: match self.bully.role {
                Role::Master => None,
                _ => self.bully.last_heard.map(|t| t.elapsed().as_millis() as u64),
            },
        };
        let clock = self.clock.clone();
        Box::pin(async move { NodeStatus { lamport: clock.send(Now).await.unwrap_or(0), ..s } }.into_actor(self))
    }
}
