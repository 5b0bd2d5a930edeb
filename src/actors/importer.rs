//! ApiImporter: runs catalog imports from the Flixster API, one at a time, and keeps their
//! jobs (state, progress, counts, error) for the admin page.
//!
//! An import first fetches the whole feed (the theater list, then every theater's detail,
//! a few at a time) and only then writes it, as one write-log entry: a failed fetch writes
//! nothing, and a failed write leaves the catalog as it was. The HTTP client is not `Send`,
//! so the fetch runs as a future of this actor, on its thread. The job bookkeeping is the
//! plain [`JobBook`], tested without a System; jobs are also saved in `import_jobs`, so
//! the history outlives a restart (a job cut short by one is marked failed).
use super::ShowDirectory;
use crate::catalog::{import_feed, ImportCounts};
use crate::db::import_jobs::{self, ImportJobRow};
use crate::db::Db;
use crate::importer::{FlixsterClient, FlixsterConfig, DEFAULT_BASE_URL};
use crate::metrics::Metrics;
use crate::wal::LogWriter;
use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Finished jobs kept for the admin page.
pub const HISTORY_LEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [JobState::Queued, JobState::Running, JobState::Done, JobState::Failed].into_iter().find(|j| j.as_str() == s)
    }
}

/// Who asked for an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Admin,
    Schedule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Admin => "admin",
            Trigger::Schedule => "schedule",
        }
    }
}

/// What an import is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Waiting,
    FetchingList,
    FetchingTheaters,
    Writing,
    Finished,
}

/// One import, as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportJob {
    pub id: u64,
    pub state: JobState,
    pub trigger: Trigger,
    pub phase: Phase,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Theaters whose showtimes arrived, of `theaters_total` (known once the list came).
    pub theaters_done: usize,
    pub theaters_total: Option<usize>,
    /// Created / updated / unchanged rows, once the catalog is written.
    pub counts: Option<ImportCounts>,
    /// HTTP requests sent (retries included) and retries.
    pub requests: u32,
    pub retries: u32,
    /// The write-log entry that carried the change; none when nothing changed.
    pub lsn: Option<i64>,
    /// Why the import failed, naming the theater and the cause.
    pub error: Option<String>,
}

impl ImportJob {
    pub fn duration_ms(&self) -> Option<i64> {
        Some((self.finished_at? - self.started_at?).num_milliseconds())
    }

    pub fn to_row(&self) -> ImportJobRow {
        let int = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        ImportJobRow {
            id: self.id as i64,
            state: self.state.as_str().to_string(),
            requested_by: self.trigger.as_str().to_string(),
            queued_at: self.queued_at.naive_utc(),
            started_at: self.started_at.map(|t| t.naive_utc()),
            finished_at: self.finished_at.map(|t| t.naive_utc()),
            theaters_done: int(self.theaters_done),
            theaters_total: self.theaters_total.map(int),
            counts: self.counts.as_ref().and_then(|c| serde_json::to_string(c).ok()),
            requests: self.requests as i32,
            retries: self.retries as i32,
            lsn: self.lsn,
            error: self.error.clone(),
        }
    }

    /// A stored job; one that is not finished reads as failed.
    pub fn from_row(row: ImportJobRow) -> Self {
        let state = JobState::parse(&row.state).filter(|s| !s.is_active()).unwrap_or(JobState::Failed);
        ImportJob {
            id: row.id.max(0) as u64,
            state,
            trigger: if row.requested_by == "schedule" { Trigger::Schedule } else { Trigger::Admin },
            phase: Phase::Finished,
            queued_at: row.queued_at.and_utc(),
            started_at: row.started_at.map(|t| t.and_utc()),
            finished_at: row.finished_at.map(|t| t.and_utc()),
            theaters_done: row.theaters_done.max(0) as usize,
            theaters_total: row.theaters_total.map(|t| t.max(0) as usize),
            counts: row.counts.and_then(|c| serde_json::from_str(&c).ok()),
            requests: row.requests.max(0) as u32,
            retries: row.retries.max(0) as u32,
            lsn: row.lsn,
            error: row.error.or_else(|| (state == JobState::Failed).then(|| "stopped unfinished".to_string())),
        }
    }
}

/// Refused: another import is queued or running.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("import #{} is already running ({} of {} theaters); wait for it to finish", .0.id, .0.theaters_done, .0.theaters_total.map(|t| t.to_string()).unwrap_or_else(|| "?".into()))]
pub struct AlreadyRunning(pub Box<ImportJob>);

/// What a finished fetch-and-write reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub counts: ImportCounts,
    pub lsn: Option<i64>,
    pub requests: u32,
    pub retries: u32,
}

/// The current job and the recent ones: the rules of "one at a time", without an actor.
#[derive(Debug, Default)]
pub struct JobBook {
    next_id: u64,
    current: Option<ImportJob>,
    /// Finished jobs, newest first.
    history: VecDeque<ImportJob>,
}

impl JobBook {
    /// Takes the stored history (newest first) and continues numbering after `max_id`.
    pub fn restore(&mut self, mut history: Vec<ImportJob>, max_id: u64) {
        history.truncate(HISTORY_LEN);
        self.history = history.into();
        self.next_id = self.next_id.max(max_id);
    }

    /// Queues a new job, unless one is queued or running.
    pub fn queue(&mut self, trigger: Trigger, now: DateTime<Utc>) -> Result<&ImportJob, AlreadyRunning> {
        if let Some(job) = &self.current {
            return Err(AlreadyRunning(Box::new(job.clone())));
        }
        self.next_id += 1;
        Ok(self.current.insert(ImportJob {
            id: self.next_id,
            state: JobState::Queued,
            trigger,
            phase: Phase::Waiting,
            queued_at: now,
            started_at: None,
            finished_at: None,
            theaters_done: 0,
            theaters_total: None,
            counts: None,
            requests: 0,
            retries: 0,
            lsn: None,
            error: None,
        }))
    }

    fn active(&mut self, id: u64) -> Option<&mut ImportJob> {
        self.current.as_mut().filter(|j| j.id == id)
    }

    pub fn start(&mut self, id: u64, now: DateTime<Utc>) {
        if let Some(job) = self.active(id) {
            job.state = JobState::Running;
            job.phase = Phase::FetchingList;
            job.started_at = Some(now);
        }
    }

    /// `done` of `total` theaters fetched. Late or stale reports are ignored.
    pub fn progress(&mut self, id: u64, done: usize, total: usize) {
        if let Some(job) = self.active(id).filter(|j| j.state == JobState::Running && j.phase != Phase::Writing) {
            job.phase = Phase::FetchingTheaters;
            job.theaters_total = Some(total);
            job.theaters_done = job.theaters_done.max(done).min(total);
        }
    }

    /// The feed is complete; it is being written.
    pub fn writing(&mut self, id: u64, requests: u32, retries: u32) {
        if let Some(job) = self.active(id) {
            job.phase = Phase::Writing;
            job.requests = requests;
            job.retries = retries;
        }
    }

    /// Ends the job and moves it to the history.
    pub fn finish(&mut self, id: u64, result: Result<Finished, String>, now: DateTime<Utc>) {
        let Some(mut job) = self.current.take_if(|j| j.id == id) else { return };
        job.finished_at = Some(now);
        job.started_at.get_or_insert(now);
        job.phase = Phase::Finished;
        match result {
            Ok(f) => {
                job.state = JobState::Done;
                job.counts = Some(f.counts);
                job.lsn = f.lsn;
                job.requests = f.requests;
                job.retries = f.retries;
            }
            Err(e) => {
                job.state = JobState::Failed;
                job.error = Some(e);
            }
        }
        self.history.push_front(job);
        self.history.truncate(HISTORY_LEN);
    }

    /// The job running now, else the last one.
    pub fn current(&self) -> Option<&ImportJob> {
        self.current.as_ref().or(self.history.front())
    }

    pub fn get(&self, id: u64) -> Option<&ImportJob> {
        self.current.iter().chain(&self.history).find(|j| j.id == id)
    }

    /// Newest first, the running one included.
    pub fn recent(&self) -> Vec<ImportJob> {
        self.current.iter().chain(&self.history).cloned().collect()
    }
}

/// The API client for these settings; refuses the real API without a key, saying how
/// to import without one.
pub fn client_for(config: &FlixsterConfig) -> Result<FlixsterClient, String> {
    let real_api = config.base_url.trim().trim_end_matches('/') == DEFAULT_BASE_URL;
    if real_api && config.api_key.is_none() {
        return Err("FLIXSTER_API_KEY is not set: set it to your RapidAPI key, or point FLIXSTER_BASE_URL \
                    at `marquee fixture-api` to import the bundled data set"
            .into());
    }
    FlixsterClient::new(config.clone()).map_err(|e| e.to_string())
}

pub struct ApiImporter {
    config: FlixsterConfig,
    db: Db,
    writer: LogWriter,
    shows: Arc<ShowDirectory>,
    interval: Option<Duration>,
    jobs: JobBook,
    metrics: Metrics,
    catalog_lock: crate::catalog::CatalogLock,
}

impl ApiImporter {
    pub fn new(
        config: FlixsterConfig,
        db: Db,
        writer: LogWriter,
        shows: Arc<ShowDirectory>,
        interval: Option<Duration>,
        metrics: Metrics,
        catalog_lock: crate::catalog::CatalogLock,
    ) -> Self {
        Self { config, db, writer, shows, interval, jobs: JobBook::default(), metrics, catalog_lock }
    }

    /// Queues a job and runs it on this actor's thread.
    fn begin(&mut self, trigger: Trigger, ctx: &mut Context<Self>) -> Result<ImportJob, AlreadyRunning> {
        let id = self.jobs.queue(trigger, Utc::now())?.id;
        log::info!("import #{id} ({trigger:?}) started from {}", self.config.base_url);
        self.jobs.start(id, Utc::now());
        let client = match client_for(&self.config) {
            Ok(c) => c,
            Err(e) => {
                self.finished(id, Err(e), ctx);
                return Ok(self.jobs.get(id).cloned().expect("the job just finished"));
            }
        };
        let job = self.jobs.get(id).cloned().expect("the job just started");
        self.save(id, ctx);
        let me = ctx.address();
        let (db, writer, shows) = (self.db.clone(), self.writer.clone(), self.shows.clone());
        let catalog_lock = self.catalog_lock.clone();
        let feed_timezone = self.config.feed_timezone;
        let work = async move {
            let progress = me.clone();
            let report = client
                .fetch_catalog(move |p| progress.do_send(JobProgress { id, done: p.done, total: p.total }))
                .await
                .map_err(|e| e.to_string())?;
            me.do_send(JobWriting { id, requests: report.requests, retries: report.retries });
            let _planning = catalog_lock.lock().await;
            let outcome = import_feed(&db, &writer, Some(&shows), report.feed, feed_timezone)
                .await
                .map_err(|e| format!("writing the catalog failed: {e}"))?;
            Ok(Finished {
                counts: outcome.counts,
                lsn: outcome.lsn,
                requests: report.requests,
                retries: report.retries,
            })
        };
        ctx.spawn(work.into_actor(self).map(move |result, act, ctx| act.finished(id, result, ctx)));
        Ok(job)
    }

    fn finished(&mut self, id: u64, result: Result<Finished, String>, ctx: &mut Context<Self>) {
        match &result {
            Ok(f) => log::info!("import #{id} done: {:?}, log entry {:?}", f.counts, f.lsn),
            Err(e) => log::warn!("import #{id} failed: {e}"),
        }
        self.metrics.import_finished(if result.is_ok() { "done" } else { "failed" });
        self.jobs.finish(id, result, Utc::now());
        self.save(id, ctx);
    }

    /// Stores the job as it is now. The actor waits for it, so the writes of one job land
    /// in order; a failure is logged and the import goes on (the job stays in memory).
    fn save(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(row) = self.jobs.get(id).map(ImportJob::to_row) else { return };
        let db = self.db.clone();
        ctx.wait(async move { db.run(move |c| import_jobs::save(c, &row)).await }.into_actor(self).map(
            move |res, _, _| {
                if let Err(e) = res {
                    log::warn!("import #{id}: could not store the job: {e}");
                }
            },
        ));
    }
}

impl Actor for ApiImporter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let db = self.db.clone();
        let load = async move {
            db.run(|c| {
                import_jobs::fail_unfinished(c, Utc::now().naive_utc())?;
                import_jobs::recent(c, HISTORY_LEN as i64)
            })
            .await
        };
        ctx.wait(load.into_actor(self).map(|res, act, _| match res {
            Ok((rows, max_id)) => {
                act.jobs.restore(rows.into_iter().map(ImportJob::from_row).collect(), max_id.max(0) as u64)
            }
            Err(e) => log::warn!("the import history could not be read: {e}"),
        }));
        if let Some(every) = self.interval {
            log::info!("imports are scheduled every {} minutes", every.as_secs() / 60);
            ctx.run_interval(every, |act, ctx| {
                if !act.writer.can_write() {
                    // Imports are writes: only the master runs the schedule.
                    return;
                }
                if let Err(busy) = act.begin(Trigger::Schedule, ctx) {
                    log::info!("scheduled import skipped: {busy}");
                }
            });
        }
    }
}

/// Start an import now, unless one is running.
#[derive(Message)]
#[rtype(result = "Result<ImportJob, AlreadyRunning>")]
pub struct StartImport {
    pub trigger: Trigger,
}

impl Handler<StartImport> for ApiImporter {
    type Result = Result<ImportJob, AlreadyRunning>;

    fn handle(&mut self, msg: StartImport, ctx: &mut Context<Self>) -> Self::Result {
        self.begin(msg.trigger, ctx)
    }
}

/// The running job, else the last one.
#[derive(Message)]
#[rtype(result = "Option<ImportJob>")]
pub struct CurrentImport;

impl Handler<CurrentImport> for ApiImporter {
    type Result = Option<ImportJob>;

    fn handle(&mut self, _: CurrentImport, _: &mut Context<Self>) -> Self::Result {
        self.jobs.current().cloned()
    }
}

/// One job by id.
#[derive(Message)]
#[rtype(result = "Option<ImportJob>")]
pub struct GetImport(pub u64);

impl Handler<GetImport> for ApiImporter {
    type Result = Option<ImportJob>;

    fn handle(&mut self, msg: GetImport, _: &mut Context<Self>) -> Self::Result {
        self.jobs.get(msg.0).cloned()
    }
}

/// The recent jobs, newest first.
#[derive(Message)]
#[rtype(result = "Vec<ImportJob>")]
pub struct RecentImports;

impl Handler<RecentImports> for ApiImporter {
    type Result = Vec<ImportJob>;

    fn handle(&mut self, _: RecentImports, _: &mut Context<Self>) -> Self::Result {
        self.jobs.recent()
    }
}

/// From the running fetch: theaters fetched so far.
#[derive(Message)]
#[rtype(result = "()")]
struct JobProgress {
    id: u64,
    done: usize,
    total: usize,
}

impl Handler<JobProgress> for ApiImporter {
    type Result = ();

    fn handle(&mut self, msg: JobProgress, _: &mut Context<Self>) {
        self.jobs.progress(msg.id, msg.done, msg.total);
    }
}

/// From the running import: the feed is complete and being written.
#[derive(Message)]
#[rtype(result = "()")]
struct JobWriting {
    id: u64,
    requests: u32,
    retries: u32,
}

impl Handler<JobWriting> for ApiImporter {
    type Result = ();

    fn handle(&mut self, msg: JobWriting, _: &mut Context<Self>) {
        self.jobs.writing(msg.id, msg.requests, msg.retries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> Finished {
        Finished { counts: ImportCounts::default(), lsn: Some(7), requests: 111, retries: 0 }
    }

    #[test]
    fn only_one_job_runs_at_a_time() {
        let mut book = JobBook::default();
        let now = Utc::now();
        let id = book.queue(Trigger::Admin, now).unwrap().id;
        assert_eq!(book.current().unwrap().state, JobState::Queued);
        let busy = book.queue(Trigger::Schedule, now).unwrap_err();
        assert_eq!(busy.0.id, id);
        assert!(busy.to_string().contains("already running"), "{busy}");
        book.start(id, now);
        book.finish(id, Ok(done()), now);
        let next = book.queue(Trigger::Schedule, now).unwrap().id;
        assert_eq!(next, id + 1);
        assert_eq!(book.recent().iter().map(|j| j.id).collect::<Vec<_>>(), vec![next, id]);
    }

    #[test]
    fn progress_moves_forward_and_stale_reports_are_ignored() {
        let mut book = JobBook::default();
        let now = Utc::now();
        let id = book.queue(Trigger::Admin, now).unwrap().id;
        book.progress(id, 3, 10); // not running yet
        assert_eq!(book.current().unwrap().theaters_total, None);
        book.start(id, now);
        book.progress(id, 0, 10);
        book.progress(id, 5, 10);
        book.progress(id, 4, 10); // arrived late
        let job = book.current().unwrap();
        assert_eq!(
            (job.state, job.phase, job.theaters_done, job.theaters_total),
            (JobState::Running, Phase::FetchingTheaters, 5, Some(10))
        );
        book.writing(id, 11, 1);
        assert_eq!(book.current().unwrap().phase, Phase::Writing);
        book.finish(id, Err("theater abc (Rex): HTTP 500".into()), now);
        book.progress(id, 9, 10); // after the end
        let job = book.current().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.theaters_done, 5);
        assert_eq!(job.error.as_deref(), Some("theater abc (Rex): HTTP 500"));
        assert_eq!(job.requests, 11);
    }

    #[test]
    fn a_stored_job_reads_back_and_numbering_continues() {
        let mut book = JobBook::default();
        let now = Utc::now();
        let id = book.queue(Trigger::Schedule, now).unwrap().id;
        book.start(id, now);
        book.progress(id, 110, 110);
        book.finish(id, Ok(done()), now);
        let job = book.get(id).unwrap().clone();
        let back = ImportJob::from_row(job.to_row());
        assert_eq!(
            (back.state, back.trigger, back.counts.as_ref(), back.lsn),
            (JobState::Done, Trigger::Schedule, job.counts.as_ref(), Some(7))
        );
        assert_eq!((back.theaters_done, back.requests), (110, 111));

        let mut row = job.to_row();
        row.state = "running".into();
        assert_eq!(ImportJob::from_row(row).state, JobState::Failed, "an unfinished job did not finish");

        let mut restored = JobBook::default();
        restored.restore(vec![back], 41);
        assert_eq!(restored.current().unwrap().id, id);
        assert_eq!(restored.queue(Trigger::Admin, now).unwrap().id, 42);
    }

    #[test]
    fn the_history_is_bounded() {
        let mut book = JobBook::default();
        let now = Utc::now();
        for _ in 0..HISTORY_LEN + 5 {
            let id = book.queue(Trigger::Schedule, now).unwrap().id;
            book.finish(id, Ok(done()), now);
        }
        let recent = book.recent();
        assert_eq!(recent.len(), HISTORY_LEN);
        assert_eq!(recent[0].id, (HISTORY_LEN + 5) as u64);
        assert!(book.get(1).is_none());
    }
}
