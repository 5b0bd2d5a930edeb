//! This node's figures for Prometheus (`GET /metrics`, see docs/operations.md).
//!
//! Every node owns one [`Metrics`]: a `PrometheusRecorder` of its own, built at start-up
//! and passed to whoever records, never installed as the process's global recorder. The
//! tests run several nodes in one process, and a shared recorder would mix their figures;
//! this way each node's `/metrics` reports only what that node did.
//!
//! Recording is cheap and never waits: a counter increment, a gauge set, a histogram
//! observation (an atomic push; the buckets are summed when the page is rendered, or by
//! [`Metrics::upkeep`] every few seconds so an unscraped node does not pile them up).
//! Labels take bounded values only: route patterns, not paths; the names of refusal kinds.
//! This module depends on nothing else in the crate; the callers pass plain numbers and
//! names.
use ::metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use metrics_util::MetricKindMask;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const HTTP_REQUESTS: &str = "marquee_http_requests_total";
pub const HTTP_DURATION: &str = "marquee_http_request_duration_seconds";
pub const SEAT_WRITES: &str = "marquee_seat_writes_total";
pub const COMMIT_SIZE: &str = "marquee_group_commit_size";
pub const COMMIT_SECONDS: &str = "marquee_commit_duration_seconds";
pub const COMMIT_FAILURES: &str = "marquee_commit_failures_total";
pub const ROLE: &str = "marquee_role";
pub const EPOCH: &str = "marquee_epoch";
pub const MASTER: &str = "marquee_master_id";
pub const WRITABLE: &str = "marquee_writable";
pub const ELECTIONS: &str = "marquee_elections_total";
pub const MEMBERS: &str = "marquee_members";
pub const LAST_LSN: &str = "marquee_log_last_lsn";
pub const COMMIT_LSN: &str = "marquee_log_commit_lsn";
pub const LAG_ENTRIES: &str = "marquee_replication_lag_entries";
pub const LAG_SECONDS: &str = "marquee_replication_lag_seconds";
pub const FOLLOWER_SILENCE: &str = "marquee_follower_last_ack_seconds";
pub const WS_CONNECTIONS: &str = "marquee_websocket_connections";
pub const WS_FANOUT: &str = "marquee_websocket_fanout_seconds";
pub const IMPORTS: &str = "marquee_import_jobs_total";

/// Seconds: 0.5 ms .. 10 s, for commits, requests and fan-out.
const SECONDS_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Changes in one group commit (at most the writer's batch, 1024).
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1024.0];

/// How long a gauge nobody set stays on the page.
const GAUGE_IDLE: Duration = Duration::from_secs(60);

/// The roles a node can be in (`marquee_role{role}`: 1 for the current one, 0 for the others).
pub const ROLES: [&str; 3] = ["follower", "candidate", "master"];

/// What the cluster looks like from this node when it is scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFigures {
    pub role: &'static str,
    pub epoch: u64,
    /// 0 when this node knows no master.
    pub master: u64,
    pub writable: bool,
    pub voters: usize,
    pub learners: usize,
    pub last_lsn: u64,
    pub commit_lsn: u64,
    /// On the master: every other node it replicates to.
    pub followers: Vec<FollowerLag>,
}

/// How far one follower is behind the master.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowerLag {
    pub node: u64,
    /// Entries in the master's log the follower has not acknowledged.
    pub entries: u64,
    /// Age of the oldest of those entries (0 when it has them all).
    pub seconds: f64,
    /// Since the follower last answered the master (None: never).
    pub silent_seconds: Option<f64>,
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    commit_size: Histogram,
    commit_seconds: Histogram,
    commit_failures: Counter,
    /// Open websockets; the gauge is set from it when the page is rendered.
    ws_open: AtomicI64,
    ws_connections: Gauge,
    ws_fanout: Histogram,
    elections: Counter,
}

static METADATA: Metadata<'static> = Metadata::new("marquee", Level::INFO, Some(module_path!()));

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A fresh set of figures for one node.
    pub fn new() -> Self {
        // Gauges are all set just before a page is rendered; one not set for a minute
        // (a follower that left) is dropped from the page.
        let builder = PrometheusBuilder::new().idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE));
        let builder = [HTTP_DURATION, COMMIT_SECONDS, WS_FANOUT]
            .into_iter()
            .try_fold(builder, |b, name| b.set_buckets_for_metric(Matcher::Full(name.into()), SECONDS_BUCKETS))
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(COMMIT_SIZE.into()), SIZE_BUCKETS))
            .expect("the bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        let r = &recorder;
        let inner = Inner {
            commit_size: r.register_histogram(&Key::from_name(COMMIT_SIZE), &METADATA),
            commit_seconds: r.register_histogram(&Key::from_name(COMMIT_SECONDS), &METADATA),
            commit_failures: r.register_counter(&Key::from_name(COMMIT_FAILURES), &METADATA),
            ws_open: AtomicI64::new(0),
            ws_connections: r.register_gauge(&Key::from_name(WS_CONNECTIONS), &METADATA),
            ws_fanout: r.register_histogram(&Key::from_name(WS_FANOUT), &METADATA),
            elections: r.register_counter(&Key::from_name(ELECTIONS), &METADATA),
            handle,
            recorder,
        };
        // Series that exist from the start, so a dashboard shows 0 rather than nothing.
        for outcome in ["done", "failed"] {
            inner.counter(IMPORTS, vec![Label::new("outcome", outcome)]).absolute(0);
        }
        Self { inner: Arc::new(inner) }
    }

    /// One HTTP request answered: its route pattern (`/api/shows/{id}/holds`, or
    /// `unmatched`), method, status and how long it took.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let (route, method) = (route.to_string(), method_label(method));
        let labels = vec![
            Label::new("route", route.clone()),
            Label::new("method", method),
            Label::new("status", status.to_string()),
        ];
        self.inner.counter(HTTP_REQUESTS, labels).increment(1);
        let labels = vec![Label::new("route", route), Label::new("method", method)];
        self.inner.histogram(HTTP_DURATION, labels).record(took.as_secs_f64());
    }

    /// A hold, confirm, release or cancel the master's show actor decided: `outcome` is
    /// `ok` or the refusal's kind (`seats_taken`, `hold_expired`, ...).
    pub fn seat_write(&self, op: &'static str, outcome: &'static str) {
        self.inner.counter(SEAT_WRITES, vec![Label::new("op", op), Label::new("outcome", outcome)]).increment(1);
    }

    /// One group commit of `size` changes that took `took`.
    pub fn group_commit(&self, size: usize, took: Duration) {
        self.inner.commit_size.record(size as f64);
        self.inner.commit_seconds.record(took.as_secs_f64());
    }

    /// A group commit none of whose changes could be committed.
    pub fn commit_failed(&self) {
        self.inner.commit_failures.increment(1);
    }

    pub fn websocket_opened(&self) {
        self.inner.ws_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn websocket_closed(&self) {
        self.inner.ws_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A seat change reached one socket `took` after the show's actor made it.
    pub fn fanout(&self, took: Duration) {
        self.inner.ws_fanout.record(took.as_secs_f64());
    }

    /// This node saw a new epoch begin (one election decided, whoever won).
    pub fn election(&self) {
        self.inner.elections.increment(1);
    }

    /// An import job ended: `done` or `failed`.
    pub fn import_finished(&self, outcome: &'static str) {
        self.inner.counter(IMPORTS, vec![Label::new("outcome", outcome)]).increment(1);
    }

    /// Sets the cluster's gauges to what `figures` says (just before a page is rendered).
    /// A follower no longer listed loses its lag series a minute later.
    pub fn set_cluster(&self, figures: &ClusterFigures) {
        let i = &self.inner;
        for role in ROLES {
            i.gauge(ROLE, vec![Label::new("role", role)]).set(if role == figures.role { 1.0 } else { 0.0 });
        }
        i.gauge(EPOCH, vec![]).set(figures.epoch as f64);
        i.gauge(MASTER, vec![]).set(figures.master as f64);
        i.gauge(WRITABLE, vec![]).set(if figures.writable { 1.0 } else { 0.0 });
        i.gauge(MEMBERS, vec![Label::new("kind", "voter")]).set(figures.voters as f64);
        i.gauge(MEMBERS, vec![Label::new("kind", "learner")]).set(figures.learners as f64);
        i.gauge(LAST_LSN, vec![]).set(figures.last_lsn as f64);
        i.gauge(COMMIT_LSN, vec![]).set(figures.commit_lsn as f64);
        for f in &figures.followers {
            let node = || vec![Label::new("follower", f.node.to_string())];
            i.gauge(LAG_ENTRIES, node()).set(f.entries as f64);
            i.gauge(LAG_SECONDS, node()).set(f.seconds);
            if let Some(s) = f.silent_seconds {
                i.gauge(FOLLOWER_SILENCE, node()).set(s);
            }
        }
    }

    /// The page Prometheus scrapes (text format 0.0.4).
    pub fn render(&self) -> String {
        self.inner.ws_connections.set(self.inner.ws_open.load(Ordering::Relaxed) as f64);
        self.inner.handle.render()
    }

    /// Sums the histograms' recent observations into their buckets; run every few seconds.
    pub fn upkeep(&self) {
        self.inner.handle.run_upkeep();
    }
}

impl Inner {
    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder.register_histogram(&Key::from_parts(name, labels), &METADATA)
    }
}

/// The HTTP method as a label: the standard ones by name, anything else `other`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn describe(r: &PrometheusRecorder) {
    let text = |s: &'static str| ::metrics::SharedString::const_str(s);
    r.describe_counter(HTTP_REQUESTS.into(), None, text("HTTP requests answered, by route pattern, method and status"));
    r.describe_histogram(HTTP_DURATION.into(), Some(Unit::Seconds), text("Time to answer an HTTP request, by route"));
    r.describe_counter(
        SEAT_WRITES.into(),
        None,
        text("Holds, confirms, releases and cancels this node ran as master, by outcome (ok or the refusal)"),
    );
    r.describe_histogram(COMMIT_SIZE.into(), None, text("Changes committed in one group commit"));
    r.describe_histogram(COMMIT_SECONDS.into(), Some(Unit::Seconds), text("Time of one group commit's transaction"));
    r.describe_counter(COMMIT_FAILURES.into(), None, text("Group commits none of whose changes could be committed"));
    r.describe_gauge(ROLE.into(), None, text("1 for this node's current role, 0 for the others"));
    r.describe_gauge(EPOCH.into(), None, text("The election epoch (term) this node is in"));
    r.describe_gauge(MASTER.into(), None, text("The master this node follows (0: none known)"));
    r.describe_gauge(WRITABLE.into(), None, text("1 while this node is a master that takes writes"));
    r.describe_counter(ELECTIONS.into(), None, text("New epochs this node has seen begin (elections decided)"));
    r.describe_gauge(MEMBERS.into(), None, text("Members of the cluster as this node knows it, voters and learners"));
    r.describe_gauge(LAST_LSN.into(), None, text("The last entry in this node's log"));
    r.describe_gauge(COMMIT_LSN.into(), None, text("The last entry this node knows to be committed"));
    r.describe_gauge(LAG_ENTRIES.into(), None, text("On the master: log entries a follower has not acknowledged"));
    r.describe_gauge(
        LAG_SECONDS.into(),
        Some(Unit::Seconds),
        text("On the master: age of the oldest entry a follower has not acknowledged"),
    );
    r.describe_gauge(
        FOLLOWER_SILENCE.into(),
        Some(Unit::Seconds),
        text("On the master: time since a follower last answered"),
    );
    r.describe_gauge(WS_CONNECTIONS.into(), None, text("Open live seat-map websockets"));
    r.describe_histogram(
        WS_FANOUT.into(),
        Some(Unit::Seconds),
        text("From a seat change in the show's actor to its frame sent on one websocket"),
    );
    r.describe_counter(IMPORTS.into(), None, text("Catalog import jobs ended, by outcome"));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series `line_start` (name and labels as rendered), if present.
    fn value(page: &str, series: &str) -> Option<f64> {
        page.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn each_node_counts_only_its_own() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.seat_write("hold", "ok");
        a.seat_write("hold", "ok");
        b.seat_write("hold", "seats_taken");
        let (pa, pb) = (a.render(), b.render());
        assert_eq!(value(&pa, r#"marquee_seat_writes_total{op="hold",outcome="ok"}"#), Some(2.0));
        assert_eq!(value(&pa, r#"marquee_seat_writes_total{op="hold",outcome="seats_taken"}"#), None);
        assert_eq!(value(&pb, r#"marquee_seat_writes_total{op="hold",outcome="seats_taken"}"#), Some(1.0));
    }

    #[test]
    fn commits_are_histograms_with_buckets() {
        let m = Metrics::new();
        m.group_commit(3, Duration::from_millis(2));
        m.group_commit(40, Duration::from_millis(30));
        let page = m.render();
        assert!(page.contains("# TYPE marquee_group_commit_size histogram"), "{page}");
        assert_eq!(value(&page, r#"marquee_group_commit_size_bucket{le="5"}"#), Some(1.0));
        assert_eq!(value(&page, r#"marquee_group_commit_size_bucket{le="+Inf"}"#), Some(2.0));
        assert_eq!(value(&page, "marquee_group_commit_size_sum"), Some(43.0));
        assert_eq!(value(&page, r#"marquee_commit_duration_seconds_bucket{le="0.0025"}"#), Some(1.0));
        assert_eq!(value(&page, "marquee_commit_duration_seconds_count"), Some(2.0));
    }

    #[test]
    fn the_current_role_is_one_and_the_others_zero() {
        let m = Metrics::new();
        let figures = ClusterFigures {
            role: "master",
            epoch: 4,
            master: 3,
            writable: true,
            voters: 3,
            learners: 1,
            last_lsn: 120,
            commit_lsn: 118,
            followers: vec![FollowerLag { node: 2, entries: 2, seconds: 0.25, silent_seconds: Some(0.1) }],
        };
        m.set_cluster(&figures);
        let page = m.render();
        assert_eq!(value(&page, r#"marquee_role{role="master"}"#), Some(1.0));
        assert_eq!(value(&page, r#"marquee_role{role="follower"}"#), Some(0.0));
        assert_eq!(value(&page, "marquee_epoch"), Some(4.0));
        assert_eq!(value(&page, r#"marquee_members{kind="learner"}"#), Some(1.0));
        assert_eq!(value(&page, r#"marquee_replication_lag_entries{follower="2"}"#), Some(2.0));
        assert_eq!(value(&page, r#"marquee_replication_lag_seconds{follower="2"}"#), Some(0.25));
    }

    #[test]
    fn odd_methods_share_one_label() {
        assert_eq!(method_label("POST"), "POST");
        assert_eq!(method_label("BREW"), "other");
    }
}
