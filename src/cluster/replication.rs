//! Replication. On the master, the ReplicationStreamer ships the ordered log to every
//! follower (one request in flight per follower, each carrying everything that is new),
//! tracks what each has acknowledged, and moves the commit point: the highest LSN that a
//! majority holds. Writers wait on the [`CommitTracker`] for that point to pass them.
//! Followers apply what they receive through their own log writer (see `web::internal`).
use super::client::{Rpc, RpcError};
use super::messages::{Append, AppendOutcome, AppendReply, LogPosition};
use super::{NodeId, Peer};
use crate::db::Db;
use crate::wal::writer::{epoch_at, read_log};
use crate::wal::LogRecord;
use actix::prelude::*;
use futures::channel::oneshot;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The highest LSN a majority holds, and the writes waiting for it.
#[derive(Debug, Default)]
pub struct CommitTracker {
    commit_lsn: AtomicI64,
    waiters: Mutex<BTreeMap<i64, Vec<oneshot::Sender<bool>>>>,
}

impl CommitTracker {
    pub fn commit_lsn(&self) -> i64 {
        self.commit_lsn.load(Ordering::SeqCst)
    }

    /// Resolves true once `lsn` is held by a majority, false on timeout or step-down.
    pub fn wait(&self, lsn: i64, timeout: Duration) -> impl std::future::Future<Output = bool> {
        let rx = {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if self.commit_lsn() >= lsn {
                None
            } else {
                let (tx, rx) = oneshot::channel();
                w.entry(lsn).or_default().push(tx);
                Some(rx)
            }
        };
        async move {
            match rx {
                None => true,
                Some(rx) => matches!(actix_rt::time::timeout(timeout, rx).await, Ok(Ok(true))),
            }
        }
    }

    /// The commit point moved to `lsn`: release the writes at or below it.
    pub fn advance(&self, lsn: i64) {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if lsn > self.commit_lsn() {
            self.commit_lsn.store(lsn, Ordering::SeqCst);
        }
        let rest = w.split_off(&(lsn + 1));
        for (_, senders) in std::mem::replace(&mut *w, rest) {
            for s in senders {
                let _ = s.send(true);
            }
        }
    }

    /// This node stopped being master: the writes still waiting will not be confirmed here.
    pub fn fail_all(&self) {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for (_, senders) in std::mem::take(&mut *w) {
            for s in senders {
                let _ = s.send(false);
            }
        }
    }
}

/// The commit point: the highest LSN held by `majority` of the nodes, given the master's
/// own last LSN and what each follower acknowledged.
pub fn majority_lsn(own: i64, followers: &[i64], majority: usize) -> i64 {
    let mut all: Vec<i64> = followers.to_vec();
    all.push(own);
    all.sort_unstable_by(|a, b| b.cmp(a));
    all.get(majority.saturating_sub(1)).copied().unwrap_or(0)
}

#[derive(Debug, Default)]
struct Progress {
    matched: Option<i64>,
    /// The follower confirmed that its log matches ours up to `matched`.
    verified: bool,
    /// The end of what was sent (in flight or acknowledged).
    sent: i64,
    /// Batches under way to this follower.
    in_flight: usize,
    /// Which incarnation of this record an answer belongs to (answers to an older one
    /// are ignored).
    session: u64,
    last_ack: Option<Instant>,
}

/// Batches under way to one follower at once, once its log is known to match ours
/// (while probing, one).
const PIPELINE: usize = 2;

pub struct ReplicationStreamer {
    rpc: Rpc,
    db: Db,
    tracker: Arc<CommitTracker>,
    client: Option<awc::Client>,
    recent: VecDeque<LogRecord>,
    followers: HashMap<NodeId, Progress>,
    sessions: u64,
    peers: Vec<Peer>,
    master: bool,
    writer: crate::wal::LogWriter,
    on_stale: Option<Recipient<super::election::SawEpoch>>,
}

const RECENT: usize = 20_000;
const BATCH: usize = 2_000;

impl ReplicationStreamer {
    pub fn new(rpc: Rpc, db: Db, tracker: Arc<CommitTracker>, writer: crate::wal::LogWriter) -> Self {
        Self {
            rpc,
            db,
            tracker,
            client: None,
            recent: VecDeque::new(),
            followers: HashMap::new(),
            sessions: 0,
            peers: Vec::new(),
            master: false,
            writer,
            on_stale: None,
        }
    }

    /// The end of this node's log, as the log writer has it now.
    fn last_lsn(&self) -> i64 {
        self.writer.position().last_lsn
    }

    /// The end of what can be shipped now: what memory holds of the log, or, when memory
    /// holds nothing usable, what the writer has written. (The writer's count runs ahead
    /// of memory while its newest records are on their way here; they are shipped when
    /// they arrive, not read back from the database.)
    fn shippable_end(&self) -> i64 {
        let written = self.last_lsn();
        match self.recent.back() {
            Some(b) if b.lsn <= written => b.lsn,
            _ => written,
        }
    }

    fn update_commit(&self) {
        if !self.master {
            return;
        }
        let acked: Vec<i64> = self
            .peers
            .iter()
            .map(|p| self.followers.get(&p.id).filter(|f| f.verified).and_then(|f| f.matched).unwrap_or(0))
            .collect();
        let majority = super::bully::majority(self.peers.len() + 1);
        self.tracker.advance(majority_lsn(self.last_lsn(), &acked, majority));
    }

    /// The follower record of `id`, created afresh when missing.
    fn follower(&mut self, id: NodeId) -> &mut Progress {
        let sessions = &mut self.sessions;
        self.followers.entry(id).or_insert_with(|| {
            *sessions += 1;
            Progress { session: *sessions, ..Progress::default() }
        })
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if !self.master {
            return;
        }
        let ids: Vec<NodeId> = self.peers.iter().map(|p| p.id).collect();
        let last_lsn = self.shippable_end();
        for id in ids {
            loop {
                let f = self.follower(id);
                let Some(m) = f.matched else { break };
                if m > last_lsn {
                    break;
                }
                let (from, limit) = if f.verified { (f.sent.max(m), PIPELINE) } else { (m, 1) };
                if f.in_flight >= limit || (f.verified && from >= last_lsn) {
                    break;
                }
                f.in_flight += 1;
                let to = last_lsn.min(from + BATCH as i64);
                f.sent = to;
                let session = f.session;
                self.send_after(id, session, from, to, ctx);
            }
        }
    }

    /// Entries `m + 1 ..= to` from memory, or None when memory does not hold them (older
    /// than what is kept, or the log was rebuilt since).
    fn cached_after(&self, m: i64, to: i64) -> Option<(i64, Vec<LogRecord>)> {
        let (first, back) = (self.recent.front()?.lsn, self.recent.back()?.lsn);
        if back > self.last_lsn() || m + 1 < first || m > back || to > back {
            return None;
        }
        let prev_epoch = if m == 0 {
            0
        } else if m >= first {
            self.recent.get((m - first) as usize)?.epoch
        } else {
            return None;
        };
        let start = (m + 1 - first).max(0) as usize;
        Some((prev_epoch, self.recent.iter().skip(start).take((to - m).max(0) as usize).cloned().collect()))
    }

    /// Ships entries `m + 1 ..= to` to follower `id`, saying the master's log reaches `to`
    /// (never more than what it had when this batch was planned, so a batch read from the
    /// database cannot run past what a later batch will claim).
    fn send_after(&mut self, id: NodeId, session: u64, m: i64, to: i64, ctx: &mut Context<Self>) {
        let Some(peer) = self.peers.iter().find(|p| p.id == id).cloned() else { return };
        let rpc = self.rpc.clone();
        let client = self.client.get_or_insert_with(|| Rpc::http_client(Duration::from_secs(10))).clone();
        let cached = self.cached_after(m, to);
        let db = self.db.clone();
        let master_last = to;
        let work = async move {
            let (prev_epoch, entries) = match cached {
                Some(c) => c,
                None => db
                    .run(move |c| {
                        let e = if m == 0 { Some(0) } else { epoch_at(c, m)? };
                        Ok((e.unwrap_or(-1), read_log(c, m, (to - m).max(0))?))
                    })
                    .await
                    .map_err(|e| RpcError::BadAnswer("local log".into(), e.to_string()))?,
            };
            let body = Append { prev_lsn: m, prev_epoch, master_last_lsn: master_last, entries };
            rpc.call::<_, AppendReply>(&client, &peer, "/internal/append", body).await
        };
        ctx.spawn(work.into_actor(self).map(move |res, act, ctx| {
            let last_lsn = act.last_lsn();
            let Some(f) = act.followers.get_mut(&id).filter(|f| f.session == session) else { return };
            f.in_flight -= 1;
            match res {
                Ok(reply) => {
                    f.last_ack = Some(Instant::now());
                    let end = reply.body.position.last_lsn;
                    match reply.body.outcome {
                        // Answers may come back out of order: the follower's log only grows.
                        AppendOutcome::Applied if f.verified => f.matched = Some(f.matched.unwrap_or(0).max(end)),
                        AppendOutcome::Applied => {
                            f.matched = Some(end);
                            f.sent = end;
                            f.verified = true;
                        }
                        AppendOutcome::Gap => {
                            f.matched = Some(end.min(last_lsn));
                            f.sent = end.min(last_lsn);
                            f.verified = false;
                        }
                        AppendOutcome::Diverged => {
                            f.matched = None;
                            f.verified = false;
                        }
                    }
                    act.update_commit();
                    act.pump(ctx);
                }
                Err(RpcError::StaleEpoch { epoch, master_id, .. }) => {
                    if let Some(r) = &act.on_stale {
                        r.do_send(super::election::SawEpoch { epoch, master_id });
                    }
                }
                Err(e) => {
                    // Send again from what the follower acknowledged.
                    f.sent = f.matched.unwrap_or(0);
                    log::debug!("replication to node {id}: {e}")
                }
            }
        }));
    }
}

impl Actor for ReplicationStreamer {
    type Context = Context<Self>;
}

/// New entries committed by this node's log writer.
impl StreamHandler<Vec<LogRecord>> for ReplicationStreamer {
    fn handle(&mut self, records: Vec<LogRecord>, ctx: &mut Context<Self>) {
        for r in records {
            // Keep memory one contiguous run of the log (a rebuilt log starts it afresh).
            if self.recent.back().is_some_and(|b| b.lsn + 1 != r.lsn) {
                self.recent.clear();
            }
            self.recent.push_back(r);
        }
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
        self.update_commit();
        self.pump(ctx);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

/// Who the followers are, and whether this node is the master now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetRole {
    pub master: bool,
    pub peers: Vec<Peer>,
}

impl Handler<SetRole> for ReplicationStreamer {
    type Result = ();

    fn handle(&mut self, msg: SetRole, ctx: &mut Context<Self>) {
        let was = self.master;
        self.master = msg.master;
        self.peers = msg.peers;
        if msg.master != was {
            self.followers.clear();
            if !msg.master {
                self.tracker.fail_all();
            } else {
                // Everything this node holds now was committed by earlier masters.
                self.tracker.advance(0);
            }
        }
        self.followers.retain(|id, _| self.peers.iter().any(|p| p.id == *id));
        self.update_commit();
        self.pump(ctx);
    }
}

/// A follower told us (in a heartbeat answer) where its log ends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FollowerPosition {
    pub id: NodeId,
    pub position: LogPosition,
}

impl Handler<FollowerPosition> for ReplicationStreamer {
    type Result = ();

    fn handle(&mut self, msg: FollowerPosition, ctx: &mut Context<Self>) {
        if !self.master {
            return;
        }
        let last = self.last_lsn();
        let f = self.follower(msg.id);
        f.last_ack = Some(Instant::now());
        if f.matched.is_none() && f.in_flight == 0 {
            // Probe from where it says it is; the follower checks that entry's epoch.
            f.matched = Some(msg.position.last_lsn.min(last));
        }
        self.update_commit();
        self.pump(ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct OnStale(pub Recipient<super::election::SawEpoch>);

impl Handler<OnStale> for ReplicationStreamer {
    type Result = ();
    fn handle(&mut self, msg: OnStale, _: &mut Context<Self>) {
        self.on_stale = Some(msg.0);
    }
}

/// What each follower acknowledged, for the cluster page.
#[derive(Message)]
#[rtype(result = "HashMap<NodeId, (Option<i64>, Option<u64>)>")]
pub struct Acks;

impl Handler<Acks> for ReplicationStreamer {
    type Result = MessageResult<Acks>;
    fn handle(&mut self, _: Acks, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.followers
                .iter()
                .map(|(id, f)| (*id, (f.matched, f.last_ack.map(|t| t.elapsed().as_millis() as u64))))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commit_point_is_what_a_majority_holds() {
        assert_eq!(majority_lsn(10, &[], 1), 10);
        assert_eq!(majority_lsn(10, &[4, 7], 2), 7);
        assert_eq!(majority_lsn(10, &[0, 0], 2), 0);
        assert_eq!(majority_lsn(10, &[10, 3, 2, 9], 3), 9);
    }

    #[actix_rt::test]
    async fn waiters_are_released_in_order_or_failed() {
        let t = CommitTracker::default();
        let a = t.wait(3, Duration::from_secs(5));
        let b = t.wait(5, Duration::from_secs(5));
        t.advance(4);
        assert!(a.await);
        t.fail_all();
        assert!(!b.await);
        assert!(t.wait(2, Duration::from_millis(1)).await, "already committed");
        assert!(!t.wait(9, Duration::from_millis(10)).await, "times out");
    }
}

/// How a node caught up with a peer's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// The peer's newer entries were appended.
    Appended(usize),
    /// Our log disagreed with the peer's: the whole state was rebuilt from its log.
    Resynced,
}

/// Makes this node's log equal to `peer`'s: appends what it lacks when the logs agree,
/// rebuilds from the peer's whole log when they disagree.
/// Runs in `epoch`: the peer must answer from that epoch, and nothing is applied once
/// this node has moved to another.
pub async fn catch_up(rpc: &Rpc, peer: &Peer, writer: &crate::wal::LogWriter, epoch: u64) -> Result<CatchUp, String> {
    let client = Rpc::http_client(Duration::from_secs(30));
    let mine = writer.position();
    let mut appended = 0usize;
    let mut prev = mine;
    // Ask from our last entry on, so its epoch can be checked against the peer's.
    let mut after = (mine.last_lsn - 1).max(0);
    let mut first_page = true;
    loop {
        let page = fetch_page(rpc, &client, peer, after, epoch).await?;
        let mut entries = page.entries;
        if first_page && mine.last_lsn > 0 {
            first_page = false;
            match entries.first() {
                Some(e) if e.lsn == mine.last_lsn && e.epoch == mine.last_epoch => {
                    entries.remove(0);
                }
                _ => return resync_from(rpc, &client, peer, writer, epoch).await,
            }
        }
        let Some(last) = entries.last().map(|e| e.lsn) else { return Ok(CatchUp::Appended(appended)) };
        let n = entries.len();
        match writer.apply_replicated(epoch, prev, page.position.last_lsn, entries).await {
            Ok(pos) => {
                appended += n;
                prev = pos;
                after = last;
            }
            Err(crate::wal::WalError::Diverged) => return resync_from(rpc, &client, peer, writer, epoch).await,
            Err(e) => return Err(e.to_string()),
        }
        if last >= page.position.last_lsn {
            return Ok(CatchUp::Appended(appended));
        }
    }
}

/// A page of `peer`'s log after `after`, answered from `epoch` (else an error: the peer is
/// not, or no longer, where this node thinks it is).
async fn fetch_page(
    rpc: &Rpc,
    client: &awc::Client,
    peer: &Peer,
    after: i64,
    epoch: u64,
) -> Result<super::messages::LogPage, String> {
    use super::messages::LogRequest;
    let answer = rpc
        .call(client, peer, "/internal/log", LogRequest { after, limit: BATCH as i64 })
        .await
        .map_err(|e| e.to_string())?;
    if answer.epoch != epoch || rpc.cluster.epoch() != epoch {
        return Err(format!(
            "node {} answered from epoch {} while this node is in epoch {}",
            peer.id,
            answer.epoch,
            rpc.cluster.epoch()
        ));
    }
    Ok(answer.body)
}

/// Rebuilds this node from `peer`'s whole log, fetched in `epoch`.
pub async fn resync_from(
    rpc: &Rpc,
    client: &awc::Client,
    peer: &Peer,
    writer: &crate::wal::LogWriter,
    epoch: u64,
) -> Result<CatchUp, String> {
    log::warn!("log diverged from node {}'s: rebuilding this node from its log", peer.id);
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = fetch_page(rpc, client, peer, after, epoch).await?;
        let Some(last) = page.entries.last().map(|e| e.lsn) else { break };
        all.extend(page.entries);
        after = last;
        if last >= page.position.last_lsn {
            break;
        }
    }
    writer.resync(epoch, all).await.map_err(|e| e.to_string())?;
    Ok(CatchUp::Resynced)
}
