//! Group commit. One thread owns the log's tail: it takes every change waiting in its queue,
//! numbers them, and commits them in one transaction. On a master a caller hears back once
//! its change is durable here and on a majority of nodes (the [`CommitTracker`]); on a
//! follower the same thread applies the entries the master ships, so one thread alone ever
//! writes the log.
use super::apply::{apply_batch, store_batch, wipe, ForeignKeys};
use super::change::{Change, LogRecord, Origin};
use super::commit::{CommitTracker, Decision, WriteGate};
use super::undo;
use crate::actors::lamport::SharedClock;
use crate::db::schema::write_log;
use crate::db::{without_foreign_keys, Db, DbError};
use crate::metrics::Metrics;
use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use futures::channel::{mpsc as fmpsc, oneshot};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where a node's log ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPosition {
    pub last_lsn: i64,
    pub last_epoch: i64,
}

/// Which catalog a node's tables hold: the log position of the last entry that changed the
/// catalog tables (theaters, movies, shows, layouts), and how many such changes this process
/// has applied. Pages cache what they derive from the catalog under it; it changes (after
/// the change is committed, before its writer hears back) whenever a catalog entry is
/// applied, as master or as follower, and whenever the tables may have changed otherwise (a
/// rebuild from another master's log, a new database connection). The count makes a
/// version unique within the process even where a rebuild brings an earlier position back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogVersion {
    pub changes: u64,
    pub at: LogPosition,
}

/// Milliseconds on this process's monotonic clock (the protocol's time base).
pub fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

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
    /// In this node's log but not confirmed by a majority in time: the outcome is unknown
    /// (the entry commits when the followers catch up, or another master's log wins).
    #[error("the write was not confirmed by a majority of the cluster in time")]
    NoQuorum,
    /// In the log, and then another entry was committed in its place.
    #[error("the write was overtaken by another master's log and did not happen")]
    Superseded,
    /// A follower's log differs from its master's, its own entries cannot be undone, and
    /// it is compacted, so it cannot be rebuilt either: nothing was written, and the node
    /// needs its master's snapshot.
    #[error("the log cannot be cut here: {0}")]
    NeedsSnapshot(String),
}

/// What became of a write.
pub enum Outcome {
    /// Durable on a majority: it happened.
    Committed(LogRecord),
    /// It did not happen.
    Failed(WalError),
    /// In this node's log, undecided when the wait ended; the decision follows.
    Unknown(LogRecord, Decision),
}

/// Counters of the writer, for the stats endpoint and the benchmark.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub transactions: AtomicU64,
    pub records: AtomicU64,
    pub last_lsn: AtomicI64,
    pub last_epoch: AtomicI64,
    /// When the database work under way started ([`monotonic_ms`]), or -1.
    pub busy_since_ms: AtomicI64,
    /// The last database operation failed for want of a working database.
    pub storage_failed: AtomicBool,
    /// Entries taken out of the log by undoing them (another master's log won).
    pub undone: AtomicU64,
    /// Times the tables were rebuilt from the log because its end could not be undone.
    pub rebuilds: AtomicU64,
    catalog: Mutex<CatalogVersion>,
}

impl WriterStats {
    /// The catalog the tables hold now (see [`CatalogVersion`]).
    pub fn catalog_version(&self) -> CatalogVersion {
        *self.catalog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The catalog tables changed, up to the entry at `at`.
    fn catalog_changed(&self, at: LogPosition) {
        let mut v = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        *v = CatalogVersion { changes: v.changes + 1, at };
    }
}

/// The position of the last catalog entry among `records` (an import's, or an auditorium's
/// new layout: both change the catalog tables).
fn last_catalog_entry(records: &[LogRecord]) -> Option<LogPosition> {
    records
        .iter()
        .rev()
        .find(|r| matches!(r.change, Change::Catalog(_) | Change::Layout(_)))
        .map(|r| LogPosition { last_lsn: r.lsn, last_epoch: r.epoch })
}

enum Job {
    Append {
        change: Change,
        origin: Origin,
        reply: oneshot::Sender<Result<LogRecord, WalError>>,
    },
    /// An entry the protocol asks its master for, in `epoch`.
    Protocol {
        change: Change,
        epoch: u64,
    },
    /// A follower's log write: cut after `truncate_after` (rebuilding the state from what
    /// remains), then append `records`.
    Persist {
        truncate_after: Option<i64>,
        records: Vec<LogRecord>,
        reply: oneshot::Sender<Result<LogPosition, WalError>>,
    },
    /// Answered once every job queued before it is done.
    Barrier {
        reply: oneshot::Sender<()>,
    },
    /// The tables were replaced under the writer (a snapshot installed): read where the log
    /// ends again.
    Reload {
        reply: oneshot::Sender<Result<LogPosition, WalError>>,
    },
}

/// A handle to the log writer thread; cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
    gate: Arc<WriteGate>,
    tracker: Arc<CommitTracker>,
    timeout: Duration,
}

impl LogWriter {
    /// Starts the writer thread, continuing the log after the last stored LSN. Every entry
    /// it appends as master is sent to `appended` (for replication and the protocol).
    /// A write waits `timeout` for the log's decision before it is answered "unknown".
    /// Each group commit's size and time go to `metrics`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        db: Db,
        clock: SharedClock,
        node_id: u64,
        gate: Arc<WriteGate>,
        tracker: Arc<CommitTracker>,
        appended: Option<fmpsc::UnboundedSender<Vec<LogRecord>>>,
        timeout: Duration,
        metrics: Metrics,
    ) -> Result<Self, DbError> {
        Self::spawn(db, clock, node_id, gate, tracker, appended, None, timeout, Some(metrics))
    }

    /// A writer for offline work (imports from the command line, seeding benchmarks): this
    /// node alone, its own master in its log's last epoch, every write committed once it is
    /// durable here.
    pub fn start_alone(db: Db, clock: SharedClock, node_id: u64) -> Result<Self, DbError> {
        let epoch = {
            let mut conn = db.get()?;
            last_position(&mut conn)?.last_epoch.max(0) as u64
        };
        let gate = Arc::new(WriteGate::default());
        gate.set(Some(epoch), Some(epoch));
        let tracker = Arc::new(CommitTracker::default());
        let alone = Some(tracker.clone());
        Self::spawn(db, clock, node_id, gate, tracker, None, alone, Duration::from_secs(30), None)
    }

    /// Starts the writer thread after the log's last stored entry.
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        db: Db,
        clock: SharedClock,
        node_id: u64,
        gate: Arc<WriteGate>,
        tracker: Arc<CommitTracker>,
        appended: Option<fmpsc::UnboundedSender<Vec<LogRecord>>>,
        alone: Option<Arc<CommitTracker>>,
        timeout: Duration,
        metrics: Option<Metrics>,
    ) -> Result<Self, DbError> {
        let mut conn = db.get()?;
        let last = last_position(&mut conn)?;
        drop(conn);
        let stats = Arc::new(WriterStats { busy_since_ms: AtomicI64::new(-1), ..WriterStats::default() });
        stats.last_lsn.store(last.last_lsn, Ordering::SeqCst);
        stats.last_epoch.store(last.last_epoch, Ordering::SeqCst);
        stats.catalog_changed(last);
        let (tx, rx) = mpsc::channel();
        let tail = Tail {
            db,
            clock,
            node_id,
            gate: gate.clone(),
            appended,
            stats: stats.clone(),
            next_lsn: last.last_lsn + 1,
            last_epoch: last.last_epoch,
            alone,
            metrics,
        };
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || tail.run(rx))
            .map_err(|e| DbError::Connect(format!("cannot start the log writer: {e}")))?;
        Ok(Self { tx, stats, gate, tracker, timeout })
    }

    /// Queues a change made on this node; resolves once the log decided it (or with
    /// `NoQuorum` when it is still undecided after the timeout).
    pub fn append(&self, change: Change) -> impl std::future::Future<Output = Result<LogRecord, WalError>> {
        let outcome = self.append_from(change, Origin::Here);
        async move {
            match outcome.await {
                Outcome::Committed(r) => Ok(r),
                Outcome::Failed(e) => Err(e),
                Outcome::Unknown(..) => Err(WalError::NoQuorum),
            }
        }
    }

    /// Queues `change` at once (so changes keep the order of the calls), made where
    /// `origin` says; resolves with what became of it.
    pub fn append_from(&self, change: Change, origin: Origin) -> impl std::future::Future<Output = Outcome> {
        let (reply, rx) = oneshot::channel();
        let writable = self.gate.writable_epoch().is_some();
        let queued = writable && self.tx.send(Job::Append { change, origin, reply }).is_ok();
        let (tracker, timeout) = (self.tracker.clone(), self.timeout);
        async move {
            if !writable {
                return Outcome::Failed(WalError::NotMaster);
            }
            if !queued {
                return Outcome::Failed(WalError::Stopped);
            }
            let record = match rx.await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Outcome::Failed(e),
                Err(_) => return Outcome::Failed(WalError::Stopped),
            };
            let mut decision = tracker.wait(record.lsn, record.epoch);
            match actix_rt::time::timeout(timeout, &mut decision).await {
                Ok(true) => Outcome::Committed(record),
                Ok(false) => Outcome::Failed(WalError::Superseded),
                Err(_) => Outcome::Unknown(record, decision),
            }
        }
    }

    /// Appends an entry of the protocol's own as master of `epoch` (reported, like every
    /// entry appended here, through the `appended` channel).
    pub fn append_protocol(&self, change: Change, epoch: u64) {
        let _ = self.tx.send(Job::Protocol { change, epoch });
    }

    /// Resolves once every write queued before it is done (stored or refused).
    pub fn barrier(&self) -> impl std::future::Future<Output = ()> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Barrier { reply });
        async move {
            let _ = rx.await;
        }
    }

    /// A follower's write: entries after `truncate_after` go (the state is rebuilt from the
    /// rest), then `records` are appended.
    pub async fn persist(&self, truncate_after: Option<i64>, records: Vec<LogRecord>) -> Result<LogPosition, WalError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job::Persist { truncate_after, records, reply }).map_err(|_| WalError::Stopped)?;
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// After a snapshot install: continue the log where the database now says it ends.
    pub async fn reload(&self) -> Result<LogPosition, WalError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job::Reload { reply }).map_err(|_| WalError::Stopped)?;
        rx.await.map_err(|_| WalError::Stopped)?
    }

    /// Whether this node takes writes now (the master, heard by a majority).
    pub fn can_write(&self) -> bool {
        self.gate.writable_epoch().is_some()
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }

    pub fn tracker(&self) -> &Arc<CommitTracker> {
        &self.tracker
    }

    pub fn position(&self) -> LogPosition {
        LogPosition {
            last_lsn: self.stats.last_lsn.load(Ordering::SeqCst),
            last_epoch: self.stats.last_epoch.load(Ordering::SeqCst),
        }
    }

    /// The catalog this node's tables hold now: read it before reading the catalog, and
    /// what was read is at least that fresh.
    pub fn catalog_version(&self) -> CatalogVersion {
        self.stats.catalog_version()
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
    clock: SharedClock,
    node_id: u64,
    gate: Arc<WriteGate>,
    appended: Option<fmpsc::UnboundedSender<Vec<LogRecord>>>,
    stats: Arc<WriterStats>,
    next_lsn: i64,
    last_epoch: i64,
    /// Offline: no cluster decides, every durable entry is committed.
    alone: Option<Arc<CommitTracker>>,
    /// The node's figures (none offline).
    metrics: Option<Metrics>,
}

impl Tail {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut conn: Option<crate::db::Conn> = None;
        let mut pending: Option<Job> = None;
        loop {
            let first = match pending.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => break,
                },
            };
            self.stats.busy_since_ms.store(monotonic_ms() as i64, Ordering::SeqCst);
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
                        Some(c) => match self.gate.writable_epoch() {
                            None => vec![Err(WalError::NotMaster); changes.len()],
                            Some(epoch) => {
                                let started = std::time::Instant::now();
                                let (results, healthy) = self.commit(c, epoch, &changes);
                                let took = started.elapsed();
                                log::debug!(
                                    "committed a batch of {} changes in {} us",
                                    changes.len(),
                                    took.as_micros()
                                );
                                if let Some(m) = &self.metrics {
                                    m.group_commit(changes.len(), took);
                                    if results.iter().all(|r| r.is_err()) {
                                        m.commit_failed();
                                    }
                                }
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
                Job::Protocol { change, epoch } => {
                    if let (Some(c), true) = (conn.as_mut(), self.gate.master_epoch() == Some(epoch)) {
                        let (results, healthy) = self.commit(c, epoch, &[(change, Origin::Here)]);
                        if let Some(Err(e)) = results.first() {
                            log::error!("log writer: cannot append the protocol's entry: {e}");
                        }
                        if !healthy {
                            conn = None;
                        }
                    }
                }
                Job::Barrier { reply } => {
                    let _ = reply.send(());
                }
                Job::Reload { reply } => {
                    let res = match conn.as_mut() {
                        None => Err(WalError::Database("no database connection".into())),
                        Some(c) => last_position(c).map_err(|e| WalError::Database(e.to_string())).map(|p| {
                            self.moved_to(p.last_lsn, p.last_epoch);
                            // Every table was replaced: the catalog may differ.
                            self.stats.catalog_changed(self.position());
                            self.position()
                        }),
                    };
                    let _ = reply.send(res);
                }
                Job::Persist { truncate_after, records, reply } => {
                    let res = match conn.as_mut() {
                        None => Err(WalError::Database("no database connection".into())),
                        Some(c) => self.persist(c, truncate_after, records),
                    };
                    if matches!(res, Err(WalError::Database(_))) {
                        conn = None;
                    }
                    let _ = reply.send(res);
                }
            }
            self.stats.storage_failed.store(conn.is_none(), Ordering::SeqCst);
            self.stats.busy_since_ms.store(-1, Ordering::SeqCst);
        }
        log::info!("log writer stopped");
    }

    fn connect(&mut self) -> Option<crate::db::Conn> {
        match self.db.get() {
            Ok(mut c) => match last_position(&mut c) {
                Ok(last) => {
                    self.next_lsn = last.last_lsn + 1;
                    self.last_epoch = last.last_epoch;
                    // The database may not be the one this writer last wrote (storage that
                    // failed and came back): what the pages derived from it may be stale.
                    self.stats.catalog_changed(last);
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

    /// Numbers and stamps a batch: the clock merges each forwarded write's time (see
    /// [`Lamport::stamp`]).
    ///
    /// [`Lamport::stamp`]: crate::actors::lamport::Lamport::stamp
    fn stamp(&mut self, epoch: u64, changes: &[(Change, Origin)]) -> Vec<LogRecord> {
        let remote: Vec<u64> = changes.iter().map(|(_, o)| o.remote_time()).collect();
        let times = self.clock.with(|c| c.stamp(&remote));
        let now = Utc::now().naive_utc();
        let here = self.node_id;
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
        match store_batch(conn, &records, ForeignKeys::Checked) {
            Ok(()) => {
                self.committed(&records);
                return (records.into_iter().map(Ok).collect(), true);
            }
            Err(e) if changes.len() == 1 => {
                let healthy = !is_connection_error(&e) && alive(conn);
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
            match store_batch(conn, std::slice::from_ref(&rec), ForeignKeys::Checked) {
                Ok(()) => {
                    self.committed(std::slice::from_ref(&rec));
                    results.push(Ok(rec));
                }
                Err(e) if is_connection_error(&e) || !alive(conn) => {
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

    /// The log now ends at `lsn` of `epoch` (after a commit, a cut, a rebuild or a reload):
    /// where the next entry goes, and what [`LogWriter::position`] reports.
    fn moved_to(&mut self, lsn: i64, epoch: i64) {
        self.next_lsn = lsn + 1;
        self.last_epoch = epoch;
        self.stats.last_epoch.store(epoch, Ordering::SeqCst);
        self.stats.last_lsn.store(lsn, Ordering::SeqCst);
    }

    /// One transaction stored `records`: the figures, and the catalog's version if one of
    /// them changed the catalog tables.
    fn stored(&mut self, records: &[LogRecord]) {
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        self.stats.records.fetch_add(records.len() as u64, Ordering::Relaxed);
        if let Some(at) = last_catalog_entry(records) {
            self.stats.catalog_changed(at);
        }
    }

    fn committed(&mut self, records: &[LogRecord]) {
        let Some(last) = records.last() else { return };
        log::debug!("committed {}..={} (epoch {})", records[0].lsn, last.lsn, last.epoch);
        self.moved_to(last.lsn, last.epoch);
        self.stored(records);
        if let Some(tx) = &self.appended {
            let _ = tx.unbounded_send(records.to_vec());
        }
        if let Some(t) = &self.alone {
            let epoch = last.epoch;
            t.decide(last.lsn, |_| Some(epoch));
        }
    }

    fn position(&self) -> LogPosition {
        LogPosition { last_lsn: self.next_lsn - 1, last_epoch: self.last_epoch }
    }

    /// A follower's write: cut after `truncate_after` if the log is longer (the state is
    /// rebuilt from the log that remains, in the same transaction), then append `records`.
    fn persist(
        &mut self,
        conn: &mut MysqlConnection,
        truncate_after: Option<i64>,
        records: Vec<LogRecord>,
    ) -> Result<LogPosition, WalError> {
        // The protocol cuts where this node's log differs as far as it knows; entries this
        // node appended as master that the protocol has not heard of yet may differ too:
        // an entry already stored under another epoch is cut as well.
        let mut cut = truncate_after.filter(|t| *t < self.next_lsn - 1);
        for r in records.iter().filter(|r| r.lsn < self.next_lsn && cut.is_none_or(|c| r.lsn <= c)) {
            let stored = epoch_at(conn, r.lsn).map_err(|e| WalError::Database(e.to_string()))?;
            if stored != Some(r.epoch) {
                cut = Some(r.lsn - 1);
                break;
            }
        }
        if let Some(t) = cut {
            let db = |e: DbError| WalError::Database(e.to_string());
            let base = crate::db::node::load_base(conn).map_err(db)?;
            // The entries to take out were never committed (committed entries are the same
            // in every log), so they are few: undo them, newest first, unless one of them
            // cannot be undone.
            let suffix = read_log(conn, t, i64::MAX).map_err(db)?;
            let undone = match undo::plan(&suffix) {
                Err(refusal) => Undo::Refused(refusal.to_string()),
                Ok(steps) => {
                    let done = without_foreign_keys(conn, |c| {
                        c.transaction(|c| {
                            undo::undo(c, t, &steps)?;
                            apply_batch(c, &records)
                        })
                    });
                    // A unique key the master's entries run into means the undo left a row
                    // that should have gone (an entry the plan took at its word was a
                    // repeat): nothing was written, and the slow path below starts from
                    // the log.
                    match done.map_err(to_wal_error) {
                        Ok(()) => Undo::Done,
                        Err(WalError::Conflict(m)) => Undo::Refused(format!(
                            "undoing the entries after {t} left a row the master's entries conflict with ({m})"
                        )),
                        Err(other) => Undo::Failed(other),
                    }
                }
            };
            let refusal = match undone {
                Undo::Failed(e) => return Err(e),
                Undo::Done => {
                    log::warn!("log writer: undid {} entries after {t} (another master's log wins)", suffix.len());
                    let last = match records.last() {
                        Some(r) => (r.lsn, r.epoch),
                        None => {
                            let stored = epoch_at(conn, t).map_err(|e| WalError::Database(e.to_string()))?;
                            (t, stored.or(base.filter(|b| b.0 == t).map(|b| b.1)).unwrap_or(0))
                        }
                    };
                    self.moved_to(last.0, last.1);
                    self.stored(&records);
                    self.stats.undone.fetch_add(suffix.len() as u64, Ordering::Relaxed);
                    return Ok(self.position());
                }
                Undo::Refused(reason) => reason,
            };
            // A compacted log cannot be rebuilt from what is left of it; the protocol has
            // the node install its master's snapshot instead.
            if base.is_some() {
                return Err(WalError::NeedsSnapshot(format!(
                    "the log differs from the master's after {t} and is compacted, and {refusal}"
                )));
            }
            log::warn!("log writer: {refusal}: rebuilding the tables from the log up to {t}");
            self.stats.rebuilds.fetch_add(1, Ordering::Relaxed);
            let kept = read_log(conn, 0, t).map_err(|e| WalError::Database(e.to_string()))?;
            without_foreign_keys(conn, |c| {
                c.transaction(|c| {
                    wipe(c)?;
                    for chunk in kept.chunks(1000).chain(records.chunks(1000)) {
                        apply_batch(c, chunk)?;
                    }
                    Ok::<_, DieselError>(())
                })
            })
            .map_err(to_wal_error)?;
            let last = records.last().or(kept.last()).map(|r| (r.lsn, r.epoch)).unwrap_or((0, 0));
            self.moved_to(last.0, last.1);
            self.stats.transactions.fetch_add(1, Ordering::Relaxed);
            // Every table was rebuilt: whatever the entries were, the catalog may differ.
            self.stats.catalog_changed(self.position());
            return Ok(self.position());
        }
        let fresh: Vec<LogRecord> = records.into_iter().filter(|r| r.lsn >= self.next_lsn).collect();
        if let Some(first) = fresh.first() {
            if first.lsn != self.next_lsn {
                return Err(WalError::Database(format!(
                    "entry {} does not follow the log's end {}",
                    first.lsn,
                    self.next_lsn - 1
                )));
            }
            store_batch(conn, &fresh, ForeignKeys::Unchecked).map_err(to_wal_error)?;
            let last = fresh.last().map(|r| (r.lsn, r.epoch)).unwrap_or((0, 0));
            self.moved_to(last.0, last.1);
            self.stored(&fresh);
        }
        Ok(self.position())
    }
}

/// What became of undoing the entries a cut takes out (and applying the master's after them).
enum Undo {
    /// Undone and applied, in one transaction.
    Done,
    /// Nothing was written; the slow path (a rebuild, or a snapshot in a compacted log)
    /// starts from the log instead, for this reason.
    Refused(String),
    /// The database failed.
    Failed(WalError),
}

fn is_connection_error(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
            | DieselError::BrokenTransactionManager
    )
}

/// Whether the connection still answers. MariaDB's client reports a server that went away
/// ("Server has gone away", "Lost connection") with an error kind diesel does not name, so
/// after a failure that is not a refusal the writer asks.
fn alive(conn: &mut MysqlConnection) -> bool {
    conn.batch_execute("SELECT 1").is_ok()
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
