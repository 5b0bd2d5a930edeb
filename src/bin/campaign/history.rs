//! The history of one run, in Jepsen's shape: every client operation as an `invoke` line
//! followed by its completion (`ok`, `fail`, or `info` when the outcome is unknown), the
//! nemesis's faults as `info` lines, and one `final-read` per node once the cluster settled.
//! Written as JSON lines to `DIR/<run>/history.jsonl`; `campaign check` reads them back.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Who performed an operation: a client process (a number) or the nemesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    Named(String),
}

impl Process {
    pub fn nemesis() -> Self {
        Process::Named("nemesis".into())
    }
    pub fn is_nemesis(&self) -> bool {
        matches!(self, Process::Named(n) if n == "nemesis")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    Invoke,
    Ok,
    /// A definite refusal: the operation did not happen.
    Fail,
    /// The outcome is unknown (a timeout, a 5xx): it may or may not have happened.
    Info,
}

/// What an operation does. Faults use `F::Fault` (`"f": "kill"`, ... in the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum F {
    Hold,
    Confirm,
    Release,
    Cancel,
    Read,
    FinalRead,
    /// A nemesis line: the fault's name is in `value.fault`.
    #[serde(untagged)]
    Fault(String),
}

/// One line of `history.jsonl`.
///
/// `value` by `f` (what the client sent, then what it learned):
/// - hold: `{"show", "seats", "key"}`; ok adds `"hold"` and `"expires_at"`; fail adds
///   `"status"` and `"taken"` (seats reported taken, maybe empty); info adds `"error"`.
/// - confirm: `{"show", "hold"}`; ok adds `"code"` and `"seats"`; fail adds `"status"`.
/// - release: `{"show", "hold"}`; fail adds `"status"`.
/// - cancel: `{"show", "code", "seats"}`; fail adds `"status"`.
/// - read: `{"show"}`; ok adds `"seats": {"A1": "free"|"held"|"booked"}`.
/// - final-read: `{"show", "seats": {"A1": "free"|"held:<hold>"|"booked:<code>"}}`, type ok.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    /// Nanoseconds since the run started.
    pub time: u64,
    pub process: Process,
    /// The node (1-based id) the request went to; absent for nemesis lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    #[serde(rename = "type")]
    pub kind: Type,
    pub f: F,
    pub value: Value,
}

/// `base` with the fields of `over` added (an operation's value and what its completion
/// learned); a null `over` adds nothing, and a non-object replaces.
pub fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut m = b.clone();
            m.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(m)
        }
        (b, Value::Null) => b.clone(),
        (_, o) => o.clone(),
    }
}

/// Appends events in order, numbering them; shared by every client task of a run.
pub struct Recorder {
    start: Instant,
    inner: Mutex<(u64, Vec<Event>)>,
}

impl Recorder {
    pub fn new(start: Instant) -> Self {
        Self { start, inner: Mutex::new((0, Vec::new())) }
    }

    pub fn record(&self, process: Process, node: Option<u64>, kind: Type, f: F, value: Value) -> u64 {
        let mut g = self.inner.lock().unwrap();
        let index = g.0;
        g.0 += 1;
        // The time is taken under the lock, so indexes and times are in the same order.
        let time = self.start.elapsed().as_nanos() as u64;
        g.1.push(Event { index, time, process, node, kind, f, value });
        index
    }

    pub fn events(&self) -> Vec<Event> {
        self.inner.lock().unwrap().1.clone()
    }
}

pub fn write(path: &Path, events: &[Event]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for e in events {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

pub fn read(path: &Path) -> Result<Vec<Event>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut events = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let e: Event = serde_json::from_str(&line).map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        events.push(e);
    }
    Ok(events)
}

/// What the checker needs to know of the run besides the history (`DIR/<run>/run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub name: String,
    pub seed: u64,
    pub nodes: usize,
    pub faults: Vec<String>,
    /// How long a hold keeps its seats: a hold may expire no earlier than this after its
    /// first request was sent.
    pub hold_ms: u64,
    pub seconds: u64,
    #[serde(default)]
    pub scenario: Option<String>,
    #[serde(default)]
    pub discovery: String,
    /// `--log-retain`: LOG_RETAIN_ENTRIES of every node (None: the nodes' default).
    #[serde(default)]
    pub log_retain: Option<u64>,
}

/// `DIR/<run>/bases.json`: node id -> the LSN its log was compacted to (absent: not
/// compacted). Entries up to it are only in the node's tables.
pub const BASES_FILE: &str = "bases.json";

/// One node's write log after the run settled (`DIR/<run>/wal-<node>.jsonl`): one line an
/// entry, its payload as a digest, so logs compare without being kept whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub lsn: i64,
    pub epoch: i64,
    pub kind: String,
    pub digest: String,
}
