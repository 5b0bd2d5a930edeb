//! Group commit. One thread owns the log's tail: it takes every change waiting in its queue,
//! numbers them, and commits them in one transaction. On a master a caller hears back once
//! its change is durable here and on a majority of nodes (the [`CommitTracker`]); on a
//! follower the same thread applies the entries the master ships, so one thread alone ever
//! writes the log.
use super::apply::{apply_batch, wipe};
use super::change::{Change, LogRecord, Origin};
use crate::actors::lamport::{LamportClock, Stamp};
use crate::cluster::messages::LogPosition;
use crate::cluster::replication::CommitTracker;
use crate::cluster::ClusterState;
use crate::db::schema::write_log;
use crate::db::{Db, DbError};
use actix::Addr;
use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use futures::channel::{mpsc as fmpsc, oneshot};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most changes one transaction carries.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WalError {
    /// The change contradicts the database (a unique key): nothing was written.
    #[error("the change conflicts with what is stored: {0}")]
    Conflict(String),
    #[error("the write log could not commit: {0}")]
    Database(String),
    #[error("the log writer has stopped")]
    Stopped,
    /// This node does not take writes now (not the master, or no majority).
    #[error("this node is not the master right now")]
    NotMaster,
    /// Committed here but not confirmed by a majority in time: the outcome is unknown.
    #[error("the write was not confirmed by a majority of the cluster in time")]
    NoQuorum,
    /// Replicated entries do not follow on from this node's log.
    #[error("the entries do not follow this node's log")]
    Gap,
    /// This node's log disagrees with the master's: it must resync.
    #[error("this node's log has diverged from the master's")]
    Diverged,
    /// The entries belong to an epoch this node has moved past.
    #[error("the entries come from an epoch this node has left")]
    StaleEpoch,
}

/// Counters of the writer, for the stats endpoint and the benchmark.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub transactions: AtomicU64,
    pub records: AtomicU64,
    pub last_lsn: AtomicI64,
    pub last_epoch: AtomicI64,
}

enum Job {
    Append {
        change: Change,
        origin: Origin,
        reply: oneshot::Sender<Result<LogRecord, WalError>>,
    },
    Replicated {
        epoch: u64,
        prev: LogPosition,
        master_last: i64,
        records: Vec<LogRecord>,
        reply: oneshot::Sender<Result<LogPosition, WalError>>,
    },
    Resync {
        epoch: u64,
        records: Vec<LogRecord>,
        reply: oneshot::Sender<Result<LogPosition, WalError>>,
    },
}

/// A handle to the log writer thread; cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
    cluster: Arc<ClusterState>,
    tracker: Arc<CommitTracker>,
}

impl LogWriter {
    /// Starts the writer thread, continuing the log after the last stored LSN. Every
    /// commit it makes as master is sent to `committed` (for replication).
    pub fn start(
        db: Db,
        clock: Addr<LamportClock>,
        cluster: Arc<ClusterState>,
        tracker: Arc<CommitTracker>,
        committed: Option<fmpsc::UnboundedSender<Vec<LogRecord>>>,
    ) -> Result<Self, DbError> {
        let mut conn = db.get()?;
        let last = last_position(&mut conn)?;
        drop(conn);
        let stats = Arc::new(WriterStats::default());
        stats.last_lsn.store(last.last_lsn, Ordering::SeqCst);
        stats.last_epoch.store(last.last_epoch, Ordering::SeqCst);
        if cluster.is_single() {
            tracker.advance(last.last_lsn);
        }
        let (tx, rx) = mpsc::channel();
        let tail = Tail {
            db,
            clock,
            cluster: cluster.clone(),
            tracker: tracker.clone(),
            committed,
            stats: stats.clone(),
            next_lsn: last.last_lsn + 1,
            last_epoch: last.last_epoch,
            master_last_seen: (0, 0),
        };
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || tail.run(rx))
            .map_err(|e| DbError::Connect(format!("cannot start the log writer: {e}")))?;
        Ok(Self { tx, stats, cluster, tracker })
    }

    /// Queues `change`, a write made on this node, at once (so changes keep the order of
    /// the calls) and resolves once it is committed here and held by a majority of the
    /// cluster.
    pub fn append(&self, change: Change) -> impl std::future::Future<Output = Result<LogRecord, WalError>> {
        self.append_from(change, Origin::Here)
    }

    /// [`append`](Self::append) for a write made on `origin`: its entry records that node,
    /// and its Lamport time comes after the write's time there.
    pub fn append_from(
        &self,
        change: Change,
        origin: Origin,
    ) -> impl std::future::Future<Output = Result<LogRecord, WalError>> {
        let (reply, rx) = oneshot::channel();
        let queued =
            if self.cluster.writable() { self.tx.send(Job::Append { change, origin, reply }).is_ok() } else { false };
        let (writable, tracker, timeout) =
            (self.cluster.writable(), self.tracker.clone(), self.cluster.config.replication_timeout);
        async move {
            if !writable {
                return Err(WalError::NotMaster);
            }
            if !queued {
                return Err(WalError::Stopped);
            }
            let record = rx.await.map_err(|_| WalError::Stopped)??;
            if tracker.wait(record.lsn, timeout).await {
                Ok(record)
            } else {
                Err(WalError::NoQuorum)
            }
        }
    }

    /// Applies entries shipped by the master (a follower), after the entry `prev`.
    pub async fn apply_replicated(
        &self,
        epoch: u64,
        prev: LogPosition,
        master_last: i64,
        records: Vec<LogRecord>,
    ) -> Result<LogPosition, WalError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job::Replicated { epoch, prev, master_last, records, reply }).map_err(|_| WalError::Stopped)?;
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// Replaces this node's whole state with `records` (the master's full log).
    pub async fn resync(&self, epoch: u64, records: Vec<LogRecord>) -> Result<LogPosition, WalError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job::Resync { epoch, records, reply }).map_err(|_| WalError::Stopped)?;
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// Whether this node takes writes now (the master, heard by a majority).
    pub fn can_write(&self) -> bool {
        self.cluster.writable()
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    pub fn position(&self) -> LogPosition {
        LogPosition {
            last_lsn: self.stats.last_lsn.load(Ordering::SeqCst),
            last_epoch: self.stats.last_epoch.load(Ordering::SeqCst),
        }
    }
}

pub fn last_position(conn: &mut MysqlConnection) -> Result<LogPosition, DbError> {
    let last: Option<(i64, i64)> = write_log::table
        .select((write_log::lsn, write_log::epoch))
        .order(write_log::lsn.desc())
        .first(conn)
        .optional()?;
    Ok(last.map(|(l, e)| LogPosition { last_lsn: l, last_epoch: e }).unwrap_or_default())
}

pub fn epoch_at(conn: &mut MysqlConnection, lsn: i64) -> Result<Option<i64>, DieselError> {
    write_log::table.find(lsn).select(write_log::epoch).first(conn).optional()
}

/// Entries after `after`, at most `limit`.
pub fn read_log(conn: &mut MysqlConnection, after: i64, limit: i64) -> Result<Vec<LogRecord>, DbError> {
    let rows: Vec<crate::db::models::WriteLogRow> = write_log::table
        .filter(write_log::lsn.gt(after))
        .order(write_log::lsn.asc())
        .limit(limit)
        .select(crate::db::models::WriteLogRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|r| LogRecord::from_row(r).map_err(|e| DbError::Query(DieselError::DeserializationError(Box::new(e)))))
        .collect()
}

struct Tail {
    db: Db,
    clock: Addr<LamportClock>,
    cluster: Arc<ClusterState>,
    tracker: Arc<CommitTracker>,
    committed: Option<fmpsc::UnboundedSender<Vec<LogRecord>>>,
    stats: Arc<WriterStats>,
    next_lsn: i64,
    last_epoch: i64,
    /// The furthest end of the master's log it has told this node of, and in which epoch.
    master_last_seen: (u64, i64),
}

impl Tail {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut conn: Option<crate::db::Conn> = None;
        let mut pending: Option<Job> = None;
        let mut early = EarlyEntries::default();
        loop {
            let first = match pending.take().or_else(|| early.ready(self.next_lsn - 1)) {
                Some(j) => j,
                None => match early.deadline() {
                    None => match rx.recv() {
                        Ok(j) => j,
                        Err(_) => break,
                    },
                    Some(deadline) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(j) => j,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            early.expire(Instant::now());
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    },
                },
            };
            // The master keeps more than one batch under way to a follower, and they may
            // overtake each other on the way: one that starts after the end of this log
            // waits here, briefly, for the batch before it.
            let is_early = matches!(&first, Job::Replicated { prev, .. } if prev.last_lsn > self.next_lsn - 1);
            let first = match is_early {
                true => match early.park(first) {
                    None => continue,
                    Some(job) => job,
                },
                false => first,
            };
            if conn.is_none() {
                conn = self.connect();
            }
            match first {
                Job::Append { change, origin, reply } => {
                    let mut jobs = vec![((change, origin), reply)];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Job::Append { change, origin, reply }) => jobs.push(((change, origin), reply)),
                            Ok(other) => {
                                pending = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let (changes, replies): (Vec<(Change, Origin)>, Vec<_>) = jobs.into_iter().unzip();
                    let results = match conn.as_mut() {
                        None => vec![Err(WalError::Database("no database connection".into())); changes.len()],
                        Some(c) => match self.cluster.writable_epoch() {
                            None => vec![Err(WalError::NotMaster); changes.len()],
                            Some(epoch) => {
                                let started = std::time::Instant::now();
                                let (results, healthy) = self.commit(c, epoch, &changes);
                                log::debug!(
                                    "committed a batch of {} changes in {} us",
                                    changes.len(),
                                    started.elapsed().as_micros()
                                );
                                if !healthy {
                                    conn = None;
                                }
                                results
                            }
                        },
                    };
                    for (reply, res) in replies.into_iter().zip(results) {
                        let _ = reply.send(res);
                    }
                }
                Job::Replicated { epoch, prev, master_last, records, reply } => {
                    let res = match conn.as_mut() {
                        None => Err(WalError::Database("no database connection".into())),
                        Some(_) if self.cluster.epoch() != epoch => Err(WalError::StaleEpoch),
                        Some(c) => {
                            // Batches may be applied in another order than they were sent
                            // (a resend overtaking an earlier batch): what the master said
                            // its log reaches only grows within an epoch.
                            let seen = match self.master_last_seen {
                                (e, last) if e == epoch => last.max(master_last),
                                _ => master_last,
                            };
                            self.master_last_seen = (epoch, seen);
                            self.replicate(c, prev, seen, records)
                        }
                    };
                    if matches!(res, Err(WalError::Database(_))) {
                        conn = None;
                    }
                    let _ = reply.send(res);
                }
                Job::Resync { epoch, records, reply } => {
                    let res = match conn.as_mut() {
                        None => Err(WalError::Database("no database connection".into())),
                        Some(_) if self.cluster.epoch() != epoch || self.cluster.writable() => {
                            Err(WalError::StaleEpoch)
                        }
                        Some(c) => self.resync(c, records),
                    };
                    if matches!(res, Err(WalError::Database(_))) {
                        conn = None;
                    }
                    let _ = reply.send(res);
                }
            }
        }
        log::info!("log writer stopped");
    }

    fn connect(&mut self) -> Option<crate::db::Conn> {
        match self.db.get() {
            Ok(mut c) => match last_position(&mut c) {
                Ok(last) => {
                    self.next_lsn = last.last_lsn + 1;
                    self.last_epoch = last.last_epoch;
                    Some(c)
                }
                Err(e) => {
                    log::error!("log writer: {e}");
                    None
                }
            },
            Err(e) => {
                log::error!("log writer: {e}");
                std::thread::sleep(Duration::from_millis(200));
                None
            }
        }
    }

    /// Numbers and stamps a batch: one message to the clock for all of it, which merges
    /// each forwarded write's time (see [`Lamport::stamp`]).
    ///
    /// [`Lamport::stamp`]: crate::actors::lamport::Lamport::stamp
    fn stamp(&mut self, epoch: u64, changes: &[(Change, Origin)]) -> Vec<LogRecord> {
        let remote = changes.iter().map(|(_, o)| o.remote_time()).collect();
        let times = futures::executor::block_on(self.clock.send(Stamp { remote })).unwrap_or_default();
        let now = Utc::now().naive_utc();
        let here = self.cluster.node_id;
        changes
            .iter()
            .enumerate()
            .map(|(i, (c, origin))| LogRecord {
                lsn: self.next_lsn + i as i64,
                epoch: epoch as i64,
                lamport: times.get(i).map_or(0, |t| i64::try_from(*t).unwrap_or(i64::MAX)),
                origin: origin.node(here),
                created_at: now,
                change: c.clone(),
            })
            .collect()
    }

    /// Commits the batch in one transaction; if that fails, each change alone, so one bad
    /// change fails only its own caller. Returns the results and whether the connection is
    /// still good.
    fn commit(
        &mut self,
        conn: &mut MysqlConnection,
        epoch: u64,
        changes: &[(Change, Origin)],
    ) -> (Vec<Result<LogRecord, WalError>>, bool) {
        let records = self.stamp(epoch, changes);
        match conn.transaction(|c| apply_batch(c, &records)) {
            Ok(()) => {
                self.committed(&records);
                return (records.into_iter().map(Ok).collect(), true);
            }
            Err(e) if changes.len() == 1 => {
                let healthy = !is_connection_error(&e);
                if !healthy {
                    log::error!("log writer: {e}");
                }
                return (vec![Err(to_wal_error(e))], healthy);
            }
            Err(e) => log::warn!("group commit of {} changes failed ({e}); committing one by one", changes.len()),
        }
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            let rec = self.stamp(epoch, std::slice::from_ref(change)).remove(0);
            match conn.transaction(|c| apply_batch(c, std::slice::from_ref(&rec))) {
                Ok(()) => {
                    self.committed(std::slice::from_ref(&rec));
                    results.push(Ok(rec));
                }
                Err(e) if is_connection_error(&e) => {
                    log::error!("log writer: {e}");
                    results.push(Err(to_wal_error(e)));
                    while results.len() < changes.len() {
                        results.push(Err(WalError::Database("connection lost".into())));
                    }
                    return (results, false);
                }
                Err(e) => results.push(Err(to_wal_error(e))),
            }
        }
        (results, true)
    }

    fn committed(&mut self, records: &[LogRecord]) {
        let Some(last) = records.last() else { return };
        log::debug!("committed {}..={} (epoch {})", records[0].lsn, last.lsn, last.epoch);
        self.next_lsn = last.lsn + 1;
        self.last_epoch = last.epoch;
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        self.stats.records.fetch_add(records.len() as u64, Ordering::Relaxed);
        self.stats.last_epoch.store(last.epoch, Ordering::SeqCst);
        self.stats.last_lsn.store(last.lsn, Ordering::SeqCst);
        if self.cluster.is_single() {
            self.tracker.advance(last.lsn);
        } else if let Some(tx) = &self.committed {
            let _ = tx.unbounded_send(records.to_vec());
        }
    }

    fn position(&self) -> LogPosition {
        LogPosition { last_lsn: self.next_lsn - 1, last_epoch: self.last_epoch }
    }

    fn epoch_at(&self, conn: &mut MysqlConnection, lsn: i64) -> Result<Option<i64>, WalError> {
        if lsn == 0 {
            return Ok(Some(0));
        }
        if lsn == self.next_lsn - 1 {
            return Ok(Some(self.last_epoch));
        }
        epoch_at(conn, lsn).map_err(|e| WalError::Database(e.to_string()))
    }

    fn replicate(
        &mut self,
        conn: &mut MysqlConnection,
        prev: LogPosition,
        master_last: i64,
        records: Vec<LogRecord>,
    ) -> Result<LogPosition, WalError> {
        log::debug!(
            "replicate: prev {:?}, {} entries {:?}..{:?}, local last {} (epoch {})",
            prev,
            records.len(),
            records.first().map(|r| (r.lsn, r.epoch)),
            records.last().map(|r| (r.lsn, r.epoch)),
            self.next_lsn - 1,
            self.last_epoch
        );
        if prev.last_lsn > self.next_lsn - 1 {
            return Err(WalError::Gap);
        }
        if self.epoch_at(conn, prev.last_lsn)? != Some(prev.last_epoch) {
            return Err(WalError::Diverged);
        }
        let mut fresh = Vec::with_capacity(records.len());
        for r in records {
            if r.lsn < self.next_lsn {
                // Already here: it must be the very same entry.
                if self.epoch_at(conn, r.lsn)? != Some(r.epoch) {
                    return Err(WalError::Diverged);
                }
            } else if r.lsn == self.next_lsn + fresh.len() as i64 {
                fresh.push(r);
            } else {
                return Err(WalError::Gap);
            }
        }
        if !fresh.is_empty() {
            without_foreign_keys(conn, |c| c.transaction(|c| apply_batch(c, &fresh))).map_err(to_wal_error)?;
            self.committed(&fresh);
        }
        if self.next_lsn - 1 > master_last {
            return Err(WalError::Diverged);
        }
        Ok(self.position())
    }

    fn resync(&mut self, conn: &mut MysqlConnection, records: Vec<LogRecord>) -> Result<LogPosition, WalError> {
        without_foreign_keys(conn, |c| {
            c.transaction(|c| {
                wipe(c)?;
                for chunk in records.chunks(1000) {
                    apply_batch(c, chunk)?;
                }
                Ok::<_, DieselError>(())
            })
        })
        .map_err(to_wal_error)?;
        let last = records.last().map(|r| (r.lsn, r.epoch)).unwrap_or((0, 0));
        self.next_lsn = last.0 + 1;
        self.last_epoch = last.1;
        self.stats.last_lsn.store(last.0, Ordering::SeqCst);
        self.stats.last_epoch.store(last.1, Ordering::SeqCst);
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        Ok(self.position())
    }
}

/// Runs `apply` with the session's foreign-key checks off, and turns them back on. A
/// follower applies entries the master has already checked, in the master's order, so the
/// checks would only repeat its work (MariaDB's own replicas may skip them the same way).
/// The unique keys still hold.
fn without_foreign_keys<T>(
    conn: &mut MysqlConnection,
    apply: impl FnOnce(&mut MysqlConnection) -> Result<T, DieselError>,
) -> Result<T, DieselError> {
    conn.batch_execute("SET SESSION foreign_key_checks = 0")?;
    let result = apply(conn);
    conn.batch_execute("SET SESSION foreign_key_checks = 1")?;
    result
}

/// Replicated batches that arrived before the batch they follow, for at most [`EARLY_WAIT`].
#[derive(Default)]
struct EarlyEntries {
    jobs: Vec<(Instant, Job)>,
}

/// How long a batch that arrived early waits for the one before it (then it is answered
/// with a gap, and the master sends again from where this node is).
const EARLY_WAIT: Duration = Duration::from_millis(500);
/// The most early batches kept.
const EARLY_MAX: usize = 8;

impl EarlyEntries {
    /// Keeps `job` until the log reaches its start; gives it back when there is no room.
    fn park(&mut self, job: Job) -> Option<Job> {
        if self.jobs.len() >= EARLY_MAX {
            return Some(job);
        }
        self.jobs.push((Instant::now() + EARLY_WAIT, job));
        None
    }

    /// A kept batch that now follows on from `last_lsn`.
    fn ready(&mut self, last_lsn: i64) -> Option<Job> {
        let i = self
            .jobs
            .iter()
            .position(|(_, j)| matches!(j, Job::Replicated { prev, .. } if prev.last_lsn <= last_lsn))?;
        Some(self.jobs.swap_remove(i).1)
    }

    fn deadline(&self) -> Option<Instant> {
        self.jobs.iter().map(|(d, _)| *d).min()
    }

    /// Answers the batches that waited too long: their predecessor is lost.
    fn expire(&mut self, now: Instant) {
        let (late, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.jobs).into_iter().partition(|(d, _)| *d <= now);
        self.jobs = keep;
        for (_, job) in late {
            if let Job::Replicated { reply, .. } = job {
                let _ = reply.send(Err(WalError::Gap));
            }
        }
    }
}

fn is_connection_error(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
            | DieselError::BrokenTransactionManager
    )
}

fn to_wal_error(e: DieselError) -> WalError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            WalError::Conflict(info.message().to_string())
        }
        // SQL text (`batch_execute`) reports every server error with an unknown kind.
        DieselError::DatabaseError(_, info) if info.message().starts_with("Duplicate entry") => {
            WalError::Conflict(info.message().to_string())
        }
        other => WalError::Database(other.to_string()),
    }
}
