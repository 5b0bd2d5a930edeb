//! Group commit. One thread owns the log's tail: it takes every change waiting in its queue,
//! numbers them, and commits them in one transaction; a caller hears back only once its
//! change is durable. Under load one commit carries hundreds of changes.
use super::apply::apply_batch;
use super::change::{Change, LogRecord};
use crate::actors::lamport::{LamportClock, Tick};
use crate::db::schema::write_log;
use crate::db::{Db, DbError};
use actix::Addr;
use chrono::Utc;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use futures::channel::oneshot;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// The most changes one transaction carries.
const MAX_BATCH: usize = 512;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// The change contradicts the database (a unique key): nothing was written.
    #[error("the change conflicts with what is stored: {0}")]
    Conflict(String),
    #[error("the write log could not commit: {0}")]
    Database(String),
    #[error("the log writer has stopped")]
    Stopped,
}

/// Counters of the writer, for the stats endpoint and the benchmark.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub transactions: AtomicU64,
    pub records: AtomicU64,
    pub last_lsn: AtomicI64,
}

struct Job {
    change: Change,
    reply: oneshot::Sender<Result<LogRecord, WalError>>,
}

/// A handle to the log writer thread; cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

impl LogWriter {
    /// Starts the writer thread, continuing the log after the last stored LSN.
    pub fn start(db: Db, clock: Addr<LamportClock>, epoch: Arc<AtomicI64>) -> Result<Self, DbError> {
        let mut conn = db.get()?;
        let last = last_lsn(&mut conn)?;
        drop(conn);
        let stats = Arc::new(WriterStats::default());
        stats.last_lsn.store(last, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || Tail { db, clock, epoch, stats: thread_stats, next_lsn: last + 1 }.run(rx))
            .map_err(|e| DbError::Connect(format!("cannot start the log writer: {e}")))?;
        Ok(Self { tx, stats })
    }

    /// Queues `change` at once (so changes keep the order of the calls) and resolves once
    /// it is committed with its effect.
    pub fn append(&self, change: Change) -> impl std::future::Future<Output = Result<LogRecord, WalError>> {
        let (reply, rx) = oneshot::channel();
        let queued = self.tx.send(Job { change, reply }).is_ok();
        async move {
            if !queued {
                return Err(WalError::Stopped);
            }
            rx.await.map_err(|_| WalError::Stopped)?
        }
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }
}

pub fn last_lsn(conn: &mut MysqlConnection) -> Result<i64, DbError> {
    let max: Option<i64> = write_log::table.select(diesel::dsl::max(write_log::lsn)).first(conn)?;
    Ok(max.unwrap_or(0))
}

struct Tail {
    db: Db,
    clock: Addr<LamportClock>,
    epoch: Arc<AtomicI64>,
    stats: Arc<WriterStats>,
    next_lsn: i64,
}

impl Tail {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut conn = None;
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            if conn.is_none() {
                conn = self.connect();
            }
            let Some(c) = conn.as_mut() else {
                for job in jobs {
                    let _ = job.reply.send(Err(WalError::Database("no database connection".into())));
                }
                continue;
            };
            let (results, healthy) = self.commit(c, jobs.iter().map(|j| &j.change).collect());
            if !healthy {
                conn = None;
            }
            for (job, res) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(res);
            }
        }
        log::info!("log writer stopped");
    }

    fn connect(&mut self) -> Option<crate::db::Conn> {
        match self.db.get() {
            Ok(mut c) => match last_lsn(&mut c) {
                Ok(last) => {
                    self.next_lsn = last + 1;
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

    fn stamp(&mut self, changes: &[&Change]) -> Vec<LogRecord> {
        let n = changes.len() as u64;
        let first = futures::executor::block_on(self.clock.send(Tick { events: n })).unwrap_or(0);
        let epoch = self.epoch.load(Ordering::SeqCst);
        let now = Utc::now().naive_utc();
        changes
            .iter()
            .enumerate()
            .map(|(i, c)| LogRecord {
                lsn: self.next_lsn + i as i64,
                epoch,
                lamport: (first + i as u64) as i64,
                created_at: now,
                change: (*c).clone(),
            })
            .collect()
    }

    /// Commits the batch in one transaction; if that fails, each change alone, so one bad
    /// change fails only its own caller. Returns the results and whether the connection is
    /// still good.
    fn commit(
        &mut self,
        conn: &mut MysqlConnection,
        changes: Vec<&Change>,
    ) -> (Vec<Result<LogRecord, WalError>>, bool) {
        let records = self.stamp(&changes);
        match conn.transaction(|c| apply_batch(c, &records)) {
            Ok(()) => {
                self.committed(records.len());
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
            let rec = self.stamp(&[change]).remove(0);
            match conn.transaction(|c| apply_batch(c, std::slice::from_ref(&rec))) {
                Ok(()) => {
                    self.committed(1);
                    results.push(Ok(rec));
                }
                Err(e) if is_connection_error(&e) => {
                    log::error!("log writer: {e}");
                    results.push(Err(to_wal_error(e)));
                    while results.len() < results.capacity() {
                        results.push(Err(WalError::Database("connection lost".into())));
                    }
                    return (results, false);
                }
                Err(e) => results.push(Err(to_wal_error(e))),
            }
        }
        (results, true)
    }

    fn committed(&mut self, n: usize) {
        self.next_lsn += n as i64;
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        self.stats.records.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.last_lsn.store(self.next_lsn - 1, Ordering::SeqCst);
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
        other => WalError::Database(other.to_string()),
    }
}
