//! The history checker: reads a run's history (and the nodes' write logs) and says what went
//! wrong, if anything. It is pure (no I/O, no clock; it only runs the per-seat searches on a few
//! threads): the same input gives the same verdict.
//!
//! What it looks for:
//! - **lost**: a booking a client was told about (a confirm answered ok) that some node's final
//!   read does not show as booked under that code (a node with no final read of the show
//!   counts as not showing it). The nodes are those with final-read lines (ok or failed), or
//!   all `meta.nodes` when there are none. A booking whose cancel was answered ok, or had an
//!   unknown outcome, is exempt: it may rightly be gone.
//! - **unexpected**: a booking in a final read under a code no client was told about, unless a
//!   confirm with an unknown outcome can account for it (a hold with exactly these seats whose
//!   confirm was never answered, or answered 5xx, and never ok). A booking that only a
//!   definitely refused confirm could account for is unexpected too.
//! - **double sold**: a seat booked under two codes (on different nodes, in one node's
//!   database, or confirmed to two clients while the first booking was never cancelled), or
//!   booked on one node and free, held or missing on another.
//! - **violations**: each seat is a register (free, held by an Idempotency-Key, booked under a
//!   code), and the operations on it must be linearizable. Checked with `stateright`'s
//!   [`LinearizabilityTester`], one per seat; see [`SeatSpec`] for the rules. An operation of
//!   unknown outcome gets a thread of its own and its return at the very end of the history, so
//!   the tester may place it anywhere after its invoke (and placed last, it changes nothing
//!   anyone saw: the same as not happening). Once a seat is booked under a code that no cancel
//!   was sent for, the rest of its history is checked op by op against that booking (see
//!   [`SeatJob::settled`]). A seat whose search runs out of budget is reported undecided.
//! - **divergent**: the nodes' write logs differ where both hold entries (the first differing
//!   LSN, against the log that reaches furthest); a log compacted to its base holds only what
//!   follows it, see [`divergence`].
//! - **availability** per fault kind and the longest stretch without a master.
//!
//! Reads (`f: read`) are not part of the linearizability check: they may be served by a
//! follower that lags (the design allows stale seat maps), so a read that shows an old state is
//! no fault. The final reads, taken once the cluster settled, are.
//!
//! Outcomes: `ok` happened; `fail` did not happen (a definite refusal, or a connection that never
//! opened), except a `fail` that carries a 5xx status, which is treated as unknown; `info` and an
//! invoke that never completed may or may not have happened, at any time after their invoke.
use crate::history::{merge, Event, LogEntry, Process, RunMeta, Type, F};
use serde::Serialize;
use serde_json::Value;
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What one check needs: the run's settings, its history, and each node's write log.
pub struct Input<'a> {
    pub meta: &'a RunMeta,
    pub events: &'a [Event],
    /// Node id -> its write log after the run settled.
    pub logs: &'a BTreeMap<u64, Vec<LogEntry>>,
    /// Node id -> the LSN its log was compacted to (absent: not compacted).
    pub bases: &'a BTreeMap<u64, i64>,
}

/// A seat whose operations cannot be put in one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// `show <id> seat <label>`.
    pub seat: String,
    pub explanation: String,
    /// The operations that cannot be ordered, as short text: the first one that cannot be
    /// placed, the ones concurrent with it, and the last ones before it.
    pub ops: Vec<String>,
}

/// What the checker found in one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// Client operations (not counting final reads), and how they completed: `ok`, `fail`, and
    /// `unknown` (`info`, or never answered). A `fail` with a 5xx status counts as `fail` here
    /// but is treated as unknown by the checks.
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
    /// Bookings clients were told about: distinct codes of confirms answered ok.
    pub acknowledged: usize,
    pub lost: Vec<String>,
    pub unexpected: Vec<String>,
    pub double_sold: Vec<String>,
    pub violations: Vec<Violation>,
    /// Seats the linearizability search could not decide within its budget: neither shown
    /// linearizable nor shown not to be.
    pub undecided: Vec<String>,
    pub divergent: Vec<String>,
    /// Per fault kind (and `none`, outside every fault): the share of client operations
    /// invoked during it that got a definite answer (ok, or a refusal below 500), and how many
    /// operations that is. The share is 0 when there were no operations.
    pub availability: Vec<(String, f64, usize)>,
    /// The longest stretch from a monitor sample with no master to the next one with a
    /// master; `None` when the history has no monitor samples.
    pub longest_without_master_ms: Option<u64>,
    /// History lines the checker could not use (malformed values, a confirm of a hold no hold
    /// answered, ...). They may hide what the checks look for, so a verdict with any is not
    /// clean.
    pub malformed: Vec<String>,
    /// Remarks that do not change the verdict (an unmatched fault end, a final read that
    /// failed, ...).
    pub notes: Vec<String>,
}

impl Verdict {
    /// Nothing lost, unexpected or double sold, every seat linearizable (and decided), no
    /// divergent logs, and every history line understood.
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.unexpected.is_empty()
            && self.double_sold.is_empty()
            && self.violations.is_empty()
            && self.undecided.is_empty()
            && self.divergent.is_empty()
            && self.malformed.is_empty()
    }
}

/// How much work one search of one seat may do before it gives up: steps of the reference
/// object (placing an operation, or trying to) times the operations in the history, as every
/// step of `stateright`'s search copies what is left of the history. About a few seconds. The
/// search (depth-first, here with a memo, see [`SeatSpec`]) is exponential at worst: with many
/// operations of unknown outcome a seat may be reported undecided.
const SEARCH_WORK: u64 = 400_000_000;
/// The step budget is at least this and at most that, whatever the size (each step may add an
/// entry of 16 bytes to the search's memo).
const MIN_STEPS: u64 = 20_000;
const MAX_STEPS: u64 = 1_000_000;
/// How many searches one seat may take in all (the first, then bisection for the failing
/// operation).
const MAX_SEARCHES: usize = 14;
/// At most this many invokes and returns go into one search: `stateright`'s search keeps a
/// copy of what is left of the history at every level it descends, so its memory grows with
/// the square of the history (about 1 GB here). A longer history is searched only this far
/// (a violation found there is one; otherwise the seat is undecided).
const MAX_SEARCH_EVENTS: usize = 3_000;
/// At most this many searches run at once.
const MAX_WORKERS: usize = 4;
/// The search recurses once per operation placed; it runs on threads with this much stack.
const SEARCH_STACK: usize = 256 << 20;
/// Besides the failing operation and those of known outcome concurrent with it, a violation
/// lists the last few of known outcome that completed before it began and the last few of
/// unknown outcome invoked before it ended (these never end, so all are concurrent with it);
/// and this many operations at most.
const CONTEXT_BEFORE: usize = 6;
const CONTEXT_UNKNOWN: usize = 3;
const MAX_LISTED: usize = 16;
const NS_PER_MS: u64 = 1_000_000;

/// Checks a run. Never panics on a bad history: what it cannot use goes to
/// [`Verdict::malformed`].
pub fn check(input: &Input) -> Verdict {
    let mut v = Verdict::default();
    let hist = parse(input.events, &mut v);
    for op in hist.ops.iter().filter(|o| o.kind != Kind::FinalRead) {
        v.ops += 1;
        match op.typ {
            Some(Type::Ok) => v.ok += 1,
            Some(Type::Fail) => v.fail += 1,
            _ => v.unknown += 1,
        }
    }
    let model = Model::build(&hist, input.meta, &mut v);
    v.acknowledged = model.codes.len();
    v.lost = lost(&model);
    let attributed = unexpected(&model, &mut v);
    let doubles = double_sold(&model);
    v.double_sold.extend(doubles);
    let jobs = seat_jobs(&hist, &model, &attributed, &mut v);
    for (seat, result) in run_jobs(jobs) {
        match result {
            SeatResult::Fine => {}
            SeatResult::Violation(x) => v.violations.push(x),
            SeatResult::Undecided(why) => v.undecided.push(format!("{seat}: {why}")),
            SeatResult::Error(e) => v.violations.push(Violation {
                seat,
                explanation: format!("the linearizability tester refused this seat's history: {e}"),
                ops: Vec::new(),
            }),
        }
    }
    v.divergent = divergence(input.logs, input.bases);
    v.availability = availability(&hist, &mut v.notes);
    v.longest_without_master_ms = without_master(&hist);
    v
}

// ---------------------------------------------------------------------------------------------
// Parsing: invokes paired with their completions.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hold,
    Confirm,
    Release,
    Cancel,
    Read,
    FinalRead,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Hold => "hold",
            Kind::Confirm => "confirm",
            Kind::Release => "release",
            Kind::Cancel => "cancel",
            Kind::Read => "read",
            Kind::FinalRead => "final-read",
        }
    }
}

/// What the checks make of an operation's completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// A definite refusal: it did not happen.
    Refused,
    /// It may or may not have happened.
    Unknown,
}

/// A client operation: an invoke and its completion (a final read may come without invoke).
#[derive(Debug, Clone)]
struct ClientOp {
    kind: Kind,
    /// The `index` of its first line.
    index: u64,
    process: String,
    node: Option<u64>,
    invoke: u64,
    done: Option<u64>,
    /// Positions of its lines in the history, in order.
    invoke_pos: usize,
    done_pos: Option<usize>,
    /// The completion's type; `None` when it never completed.
    typ: Option<Type>,
    /// The invoke's value with the completion's fields over it.
    value: Value,
}

impl ClientOp {
    fn status(&self) -> Option<u64> {
        self.value.get("status").and_then(Value::as_u64)
    }

    fn outcome(&self) -> Outcome {
        match self.typ {
            Some(Type::Ok) => Outcome::Ok,
            Some(Type::Fail) if self.status().is_some_and(|s| s >= 500) => Outcome::Unknown,
            Some(Type::Fail) => Outcome::Refused,
            _ => Outcome::Unknown,
        }
    }

    fn show(&self) -> Option<String> {
        show_of(&self.value)
    }

    fn text(&self, field: &str) -> Option<String> {
        text_of(&self.value, field)
    }

    /// A short description, for violations; `seat` narrows a final read to one seat.
    fn describe(&self, seat: Option<&str>) -> String {
        let v = &self.value;
        let who = match self.node {
            Some(n) => format!("{}@n{n}", self.process),
            None => self.process.clone(),
        };
        let list = |f: &str| labels_of(v, f).map(|s| s.join(",")).unwrap_or_else(|| "?".into());
        let field = |f: &str| self.text(f).unwrap_or_else(|| "?".into());
        let show = self.show().unwrap_or_else(|| "?".into());
        let what = match self.kind {
            Kind::Hold => format!("hold {} key={}", list("seats"), field("key")),
            Kind::Confirm => format!("confirm {}", field("hold")),
            Kind::Release => format!("release {}", field("hold")),
            Kind::Cancel => format!("cancel {}", field("code")),
            Kind::Read => format!("read show {show}"),
            Kind::FinalRead => format!("final read of show {show}"),
        };
        let result = match (self.typ, self.kind) {
            (Some(Type::Ok), Kind::Hold) => format!("ok hold={}", field("hold")),
            (Some(Type::Ok), Kind::Confirm) => format!("ok code={}", field("code")),
            (Some(Type::Ok), Kind::FinalRead) => match seat {
                Some(s) => {
                    let st = v.get("seats").and_then(|m| m.get(s)).and_then(Value::as_str).unwrap_or("absent");
                    format!("{s}={st}")
                }
                None => "ok".into(),
            },
            (Some(Type::Ok), _) => "ok".into(),
            (Some(Type::Fail), _) => {
                let status = self.status().map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                match labels_of(v, "taken") {
                    Some(t) if !t.is_empty() => format!("fail {status} taken={}", t.join(",")),
                    _ => format!("fail {status}"),
                }
            }
            (Some(Type::Info), _) => "unknown (info)".into(),
            _ => "never answered".into(),
        };
        let when = match self.done {
            Some(d) if self.done_pos == Some(self.invoke_pos) => secs(d),
            Some(d) => format!("{}–{}", secs(self.invoke), secs(d)),
            None => format!("{}–", secs(self.invoke)),
        };
        format!("#{} {who} {what} → {result} [{when}]", self.index)
    }
}

/// One nemesis fault line.
struct FaultLine {
    time: u64,
    kind: String,
    start: bool,
}

/// The history, paired up.
struct History {
    ops: Vec<ClientOp>,
    faults: Vec<FaultLine>,
    /// Monitor samples: time, and whether there was a master.
    masters: Vec<(u64, bool)>,
}

fn process_name(p: &Process) -> String {
    match p {
        Process::Client(n) => format!("p{n}"),
        Process::Named(s) => s.clone(),
    }
}

fn show_of(v: &Value) -> Option<String> {
    match v.get("show")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn text_of(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A list of seat labels (or codes); `None` if absent or not a list of strings.
fn labels_of(v: &Value, field: &str) -> Option<Vec<String>> {
    v.get(field)?.as_array()?.iter().map(|s| s.as_str().map(str::to_string)).collect()
}

fn sorted(mut seats: Vec<String>) -> Vec<String> {
    seats.sort();
    seats.dedup();
    seats
}

fn secs(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

/// Pairs each invoke with the next completion of the same process and operation. An invoke
/// followed by another invoke of the same process never completed.
fn parse(events: &[Event], v: &mut Verdict) -> History {
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|e| e.index);
    let mut ops: Vec<ClientOp> = Vec::new();
    let mut faults = Vec::new();
    let mut masters = Vec::new();
    let mut pending: HashMap<String, usize> = HashMap::new();
    for (pos, e) in order.iter().enumerate() {
        let kind = match &e.f {
            F::Fault(name) if name == "master" => {
                match e.value.get("master") {
                    Some(Value::Null) => masters.push((e.time, false)),
                    Some(_) => masters.push((e.time, true)),
                    None => v.malformed.push(format!("line {}: a master sample without \"master\"", e.index)),
                }
                continue;
            }
            F::Fault(name) if e.process.is_nemesis() => {
                match e.value.get("phase").and_then(Value::as_str) {
                    Some("start") => faults.push(FaultLine { time: e.time, kind: name.clone(), start: true }),
                    Some("end") => faults.push(FaultLine { time: e.time, kind: name.clone(), start: false }),
                    _ => {
                        v.notes.push(format!("line {}: nemesis {name} without a start or end phase; ignored", e.index))
                    }
                }
                continue;
            }
            F::Fault(name) => {
                v.malformed.push(format!("line {}: unknown operation f={name:?}", e.index));
                continue;
            }
            F::Hold => Kind::Hold,
            F::Confirm => Kind::Confirm,
            F::Release => Kind::Release,
            F::Cancel => Kind::Cancel,
            F::Read => Kind::Read,
            F::FinalRead => Kind::FinalRead,
        };
        let who = process_name(&e.process);
        if e.kind == Type::Invoke {
            if let Some(prev) = pending.remove(&who) {
                v.notes.push(format!(
                    "line {}: process {who} invoked again before line {} completed; that one counts as unknown",
                    e.index, ops[prev].index
                ));
            }
            pending.insert(who.clone(), ops.len());
            ops.push(ClientOp {
                kind,
                index: e.index,
                process: who,
                node: e.node,
                invoke: e.time,
                done: None,
                invoke_pos: pos,
                done_pos: None,
                typ: None,
                value: e.value.clone(),
            });
            continue;
        }
        match pending.get(&who).copied() {
            Some(i) if ops[i].kind == kind => {
                pending.remove(&who);
                let op = &mut ops[i];
                op.done = Some(e.time.max(op.invoke));
                op.done_pos = Some(pos);
                op.typ = Some(e.kind);
                op.value = merge(&op.value, &e.value);
                op.node = op.node.or(e.node);
            }
            _ if kind == Kind::FinalRead => ops.push(ClientOp {
                kind,
                index: e.index,
                process: who,
                node: e.node,
                invoke: e.time,
                done: Some(e.time),
                invoke_pos: pos,
                done_pos: Some(pos),
                typ: Some(e.kind),
                value: e.value.clone(),
            }),
            _ => v.malformed.push(format!(
                "line {}: a {} completion of process {who} with no invoke of it before",
                e.index,
                kind.name()
            )),
        }
    }
    let never = pending.len();
    if never > 0 {
        v.notes.push(format!("{never} operation(s) were never answered; they count as unknown"));
    }
    History { ops, faults, masters }
}

// ---------------------------------------------------------------------------------------------
// What the history says about holds, bookings, cancels and the final state.

/// A hold some client was given (a hold answered ok).
struct HoldRec {
    key: String,
    show: String,
    /// Sorted.
    seats: Vec<String>,
    confirmed: BTreeSet<String>,
    /// A confirm of it had an unknown outcome.
    confirm_unknown: bool,
    /// Statuses of confirms of it that were refused.
    confirm_refused: Vec<u64>,
}

/// A booking some client was told about (a confirm answered ok).
struct CodeRec {
    show: String,
    /// Sorted.
    seats: Vec<String>,
    key: String,
    /// The earliest completion of a confirm that answered it.
    booked_at: u64,
}

/// One node's final read of one show.
struct FinalRec {
    seats: BTreeMap<String, String>,
}

struct Model {
    holds: BTreeMap<String, HoldRec>,
    /// Idempotency-Key -> the earliest invoke of a hold with it.
    first_hold: HashMap<String, u64>,
    codes: BTreeMap<String, CodeRec>,
    /// Codes with a cancel answered ok or of unknown outcome -> that cancel's earliest invoke.
    cancelled: HashMap<String, u64>,
    finals: BTreeMap<(u64, String), FinalRec>,
    /// The nodes expected to have final reads.
    nodes: BTreeSet<u64>,
    hold_ns: u64,
}

impl Model {
    /// The Idempotency-Key of a hold operation; a hold without one is its own key.
    fn hold_key(op: &ClientOp) -> String {
        match (op.text("key"), op.text("hold")) {
            (Some(k), _) => k,
            (None, Some(h)) if op.typ == Some(Type::Ok) => format!("~hold:{h}"),
            _ => format!("~op:{}", op.index),
        }
    }

    /// The earliest a hold with this key may expire.
    fn expiry(&self, key: &str) -> u64 {
        self.first_hold.get(key).copied().unwrap_or(0).saturating_add(self.hold_ns)
    }

    fn build(hist: &History, meta: &RunMeta, v: &mut Verdict) -> Model {
        let mut m = Model {
            holds: BTreeMap::new(),
            first_hold: HashMap::new(),
            codes: BTreeMap::new(),
            cancelled: HashMap::new(),
            finals: BTreeMap::new(),
            nodes: BTreeSet::new(),
            hold_ns: meta.hold_ms.saturating_mul(NS_PER_MS),
        };
        for op in hist.ops.iter().filter(|o| o.kind == Kind::Hold) {
            let key = Self::hold_key(op);
            let first = m.first_hold.entry(key.clone()).or_insert(op.invoke);
            *first = (*first).min(op.invoke);
            if op.outcome() != Outcome::Ok {
                continue;
            }
            let (Some(id), Some(show), Some(seats)) = (op.text("hold"), op.show(), labels_of(&op.value, "seats"))
            else {
                v.malformed.push(format!("line {}: a hold answered ok without show, seats and hold id", op.index));
                continue;
            };
            match m.holds.get(&id) {
                Some(h) if h.key != key => v.notes.push(format!(
                    "line {}: hold {id} was answered for key {key} and before for key {}",
                    op.index, h.key
                )),
                Some(_) => {}
                None => {
                    let rec = HoldRec {
                        key,
                        show,
                        seats: sorted(seats),
                        confirmed: BTreeSet::new(),
                        confirm_unknown: false,
                        confirm_refused: Vec::new(),
                    };
                    m.holds.insert(id, rec);
                }
            }
        }
        for op in hist.ops.iter().filter(|o| o.kind == Kind::Confirm) {
            let outcome = op.outcome();
            let Some(id) = op.text("hold") else {
                v.malformed.push(format!("line {}: a confirm without a hold id", op.index));
                continue;
            };
            let Some(h) = m.holds.get_mut(&id) else {
                if outcome != Outcome::Refused {
                    v.malformed.push(format!("line {}: a confirm of hold {id}, which no hold answered ok", op.index));
                }
                continue;
            };
            match outcome {
                Outcome::Unknown => h.confirm_unknown = true,
                Outcome::Refused => h.confirm_refused.push(op.status().unwrap_or(0)),
                Outcome::Ok => {
                    let Some(code) = op.text("code") else {
                        v.malformed.push(format!("line {}: a confirm answered ok without a code", op.index));
                        continue;
                    };
                    h.confirmed.insert(code.clone());
                    let seats = labels_of(&op.value, "seats").map(sorted).unwrap_or_else(|| h.seats.clone());
                    if seats != h.seats {
                        v.violations.push(Violation {
                            seat: format!("show {} hold {id}", h.show),
                            explanation: format!(
                                "the confirm booked {} under {code}, but the hold was for {}",
                                seats.join(","),
                                h.seats.join(",")
                            ),
                            ops: vec![op.describe(None)],
                        });
                    }
                    let done = op.done.unwrap_or(op.invoke);
                    match m.codes.get_mut(&code) {
                        Some(c) if c.key != h.key => v.violations.push(Violation {
                            seat: format!("show {} booking {code}", h.show),
                            explanation: format!(
                                "the code {code} was answered for holds of keys {} and {}",
                                c.key, h.key
                            ),
                            ops: vec![op.describe(None)],
                        }),
                        Some(c) => c.booked_at = c.booked_at.min(done),
                        None => {
                            let rec = CodeRec { show: h.show.clone(), seats, key: h.key.clone(), booked_at: done };
                            m.codes.insert(code, rec);
                        }
                    }
                }
            }
        }
        for op in hist.ops.iter().filter(|o| o.kind == Kind::Cancel && o.outcome() != Outcome::Refused) {
            match op.text("code") {
                Some(code) => {
                    let at = m.cancelled.entry(code).or_insert(op.invoke);
                    *at = (*at).min(op.invoke);
                }
                None => v.malformed.push(format!("line {}: a cancel without a code", op.index)),
            }
        }
        for op in hist.ops.iter().filter(|o| o.kind == Kind::FinalRead) {
            let Some(node) = op.node else {
                v.malformed.push(format!("line {}: a final read without a node", op.index));
                continue;
            };
            m.nodes.insert(node);
            let Some(show) = op.show() else {
                v.malformed.push(format!("line {}: a final read without a show", op.index));
                continue;
            };
            if op.typ != Some(Type::Ok) {
                v.notes.push(format!("line {}: node {node}'s final read of show {show} failed", op.index));
                continue;
            }
            let seats: Option<BTreeMap<String, String>> = op
                .value
                .get("seats")
                .and_then(Value::as_object)
                .and_then(|o| o.iter().map(|(k, s)| s.as_str().map(|s| (k.clone(), s.to_string()))).collect());
            let Some(seats) = seats else {
                v.malformed.push(format!("line {}: a final read whose seats are not a map of seat to state", op.index));
                continue;
            };
            for (seat, st) in &seats {
                let fine = st == "free"
                    || st.strip_prefix("held:").is_some_and(|h| !h.is_empty())
                    || st.strip_prefix("booked:").is_some_and(|c| !c.is_empty());
                if !fine {
                    v.malformed.push(format!("line {}: final read seat {seat} is {st:?}", op.index));
                }
            }
            for d in labels_of(&op.value, "double_booked").unwrap_or_default() {
                v.double_sold.push(format!("show {show}: node {node}'s database books {d}"));
            }
            if m.finals.insert((node, show.clone()), FinalRec { seats }).is_some() {
                v.notes.push(format!(
                    "line {}: a second final read of show {show} on node {node}; the last counts",
                    op.index
                ));
            }
        }
        if m.nodes.is_empty() {
            // No final reads at all: every node should have had one.
            m.nodes = (1..=meta.nodes as u64).collect();
        }
        m
    }

    fn final_state(&self, node: u64, show: &str, seat: &str) -> Option<&str> {
        self.finals.get(&(node, show.to_string()))?.seats.get(seat).map(String::as_str)
    }
}

/// Acknowledged bookings (not cancelled) that some node's final read does not show.
fn lost(m: &Model) -> Vec<String> {
    let mut out = Vec::new();
    for (code, c) in &m.codes {
        if m.cancelled.contains_key(code) {
            continue;
        }
        let want = format!("booked:{code}");
        for &node in &m.nodes {
            let what = format!("{code} (show {}, seats {})", c.show, c.seats.join(","));
            if !m.finals.contains_key(&(node, c.show.clone())) {
                out.push(format!("{what}: node {node} has no final read of show {}", c.show));
                continue;
            }
            let wrong: Vec<String> = c
                .seats
                .iter()
                .filter_map(|s| {
                    let st = m.final_state(node, &c.show, s).unwrap_or("absent");
                    (st != want).then(|| format!("{s} is {st}"))
                })
                .collect();
            if !wrong.is_empty() {
                out.push(format!("{what}: on node {node} {}", wrong.join(", ")));
            }
        }
    }
    out
}

/// Final-read bookings under codes no client was told of. Returns, for those that a confirm of
/// unknown outcome accounts for, the keys of the holds that may have become them.
fn unexpected(m: &Model, v: &mut Verdict) -> HashMap<(String, String), Vec<String>> {
    // (show, code) -> node -> seats
    let mut booked: BTreeMap<(String, String), BTreeMap<u64, Vec<String>>> = BTreeMap::new();
    for ((node, show), f) in &m.finals {
        for (seat, st) in &f.seats {
            if let Some(code) = st.strip_prefix("booked:") {
                booked
                    .entry((show.clone(), code.to_string()))
                    .or_default()
                    .entry(*node)
                    .or_default()
                    .push(seat.clone());
            }
        }
    }
    let mut attributed = HashMap::new();
    for ((show, code), per_node) in booked {
        if m.codes.contains_key(&code) {
            continue;
        }
        let sets: BTreeSet<Vec<String>> = per_node.values().cloned().map(sorted).collect();
        let same = |h: &&HoldRec| h.show == show && sets.contains(&h.seats) && h.confirmed.is_empty();
        let keys: Vec<String> =
            m.holds.values().filter(same).filter(|h| h.confirm_unknown).map(|h| h.key.clone()).collect();
        if !keys.is_empty() {
            attributed.insert((show, code), keys);
            continue;
        }
        let refused: Vec<String> = m
            .holds
            .iter()
            .filter(|(_, h)| same(h) && !h.confirm_refused.is_empty())
            .map(|(id, h)| {
                let st: Vec<String> = h.confirm_refused.iter().map(u64::to_string).collect();
                format!("{id} ({})", st.join(", "))
            })
            .collect();
        let nodes: Vec<String> = per_node.keys().map(u64::to_string).collect();
        let seats: Vec<String> = sets.iter().map(|s| s.join(",")).collect();
        let why = if refused.is_empty() {
            "no client was told of this code, and no confirm of unknown outcome was for a hold of these seats"
                .to_string()
        } else {
            format!("the only confirms of a hold of these seats were refused: {}", refused.join(", "))
        };
        v.unexpected.push(format!(
            "{code} (show {show}, seats {}) on node(s) {}: {why}",
            seats.join(" / "),
            nodes.join(",")
        ));
    }
    attributed
}

/// Seats sold twice: across nodes' final reads, and to clients while the earlier booking
/// stood.
fn double_sold(m: &Model) -> Vec<String> {
    let mut out = Vec::new();
    let mut seats: BTreeSet<(String, String)> = BTreeSet::new();
    for ((_, show), f) in &m.finals {
        for seat in f.seats.keys() {
            seats.insert((show.clone(), seat.clone()));
        }
    }
    for (show, seat) in &seats {
        let mut by_code: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        let mut other: Vec<String> = Vec::new();
        for &node in &m.nodes {
            if !m.finals.contains_key(&(node, show.clone())) {
                continue;
            }
            match m.final_state(node, show, seat) {
                Some(st) if st.starts_with("booked:") => by_code.entry(&st[7..]).or_default().push(node),
                Some(st) => other.push(format!("{st} on node {node}")),
                None => other.push(format!("absent on node {node}")),
            }
        }
        let on = |ns: &Vec<u64>| ns.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        if by_code.len() > 1 {
            let codes: Vec<String> = by_code.iter().map(|(c, ns)| format!("{c} on node(s) {}", on(ns))).collect();
            out.push(format!("show {show} seat {seat} is booked under different codes: {}", codes.join("; ")));
        } else if let Some((code, ns)) = by_code.iter().next() {
            if !other.is_empty() {
                out.push(format!(
                    "show {show} seat {seat} is booked as {code} on node(s) {} but {}",
                    on(ns),
                    other.join(", ")
                ));
            }
        }
    }
    // Two acknowledged bookings of one seat, the first not cancelled before the second.
    let mut per_seat: BTreeMap<(&str, &str), Vec<(u64, &str)>> = BTreeMap::new();
    for (code, c) in &m.codes {
        for s in &c.seats {
            per_seat.entry((c.show.as_str(), s.as_str())).or_default().push((c.booked_at, code.as_str()));
        }
    }
    for ((show, seat), mut list) in per_seat {
        list.sort();
        for w in list.windows(2) {
            let ((_, first), (second_at, second)) = (w[0], w[1]);
            let cancelled_before = m.cancelled.get(first).is_some_and(|&t| t < second_at);
            if !cancelled_before {
                out.push(format!(
                    "show {show} seat {seat} was confirmed to clients as {first} and then as {second} (at {}), \
                     with no cancel of {first} sent before",
                    secs(second_at)
                ));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Linearizability per seat.

/// A seat as a register. Keys and codes are interned (see [`Names`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reg {
    Free,
    /// Held by a hold of this Idempotency-Key, which may expire (become free on its own) from
    /// `expiry` on: the key's first hold request plus the hold time. `anon`: no operation on
    /// this seat but holds of unknown outcome names the key. All anonymous holds whose expiry
    /// has passed behave alike (they may vanish at any moment, and nothing asks whose they
    /// are), so they are one value: `key` [`ANON`], `expiry` 0.
    Held {
        key: u32,
        expiry: u64,
        anon: bool,
    },
    /// Booked from a hold of `key`; `code` is `None` when it was booked by a confirm whose
    /// answer (and so code) no client saw.
    Booked {
        key: u32,
        code: Option<u32>,
    },
}

/// The key of the one anonymous hold whose expiry has passed.
const ANON: u32 = u32::MAX;

/// What a final read saw of a seat.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Free,
    /// Held by a hold of this key; `None`: a hold no client was given.
    Held(Option<u32>),
    /// Booked under `code`; `keys` are the keys whose hold may have become it.
    Booked {
        code: u32,
        keys: Arc<[u32]>,
    },
}

/// What an operation did to, or saw of, one seat.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Act {
    /// A hold with this key took the seat (ok, or unknown outcome); `anon` as in [`Reg::Held`].
    Hold { key: u32, expiry: u64, anon: bool },
    /// A hold was refused with the seat among those taken: it was not free.
    Taken,
    /// A hold was refused because of other seats: this one was free.
    Untaken,
    /// A confirm of a hold of `key` booked the seat (ok with `code`, or unknown outcome).
    Confirm { key: u32, code: Option<u32> },
    /// A confirm or release of a hold of `key` was answered 410: that hold had ended.
    Gone { key: u32 },
    /// A release of a hold of `key` freed the seat.
    Release { key: u32 },
    /// A cancel of `code` freed the seat.
    Cancel { code: u32, key: Option<u32> },
    /// A final read saw the seat so.
    Final(Seen),
}

/// One operation as the tester sees it: what it did, and when it completed (for expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    /// Index into the seat's list of steps (for explanations and the search's memo).
    id: u32,
    act: Act,
    /// Invoke and completion time in ns; `done` is `u64::MAX` when it never completed.
    invoke: u64,
    done: u64,
    /// Its outcome is unknown (or, in a prefix, not in yet): it may have taken effect at any
    /// time after its invoke, or never. Its return is put at the very end of the history, so
    /// the tester may place it anywhere after its invoke; placed last it has no effect on
    /// anything, which is the same as not happening.
    pending: bool,
}

/// The payload of the unwind that ends a search out of budget.
struct OutOfBudget;

/// What every copy of one search's reference object shares.
struct Shared {
    /// Steps left before the search gives up.
    budget: Cell<u64>,
    /// Configurations (register and set of operations placed, hashed) already entered.
    seen: RefCell<HashSet<u128>>,
    /// How many operations of known outcome the search must place.
    definite: u32,
    /// The operations of known outcome by completion time: (done, id).
    by_done: Vec<(u64, u32)>,
}

/// The reference object for one seat, for `stateright`'s [`LinearizabilityTester`].
///
/// The rules (`t` is the step's completion time; "may expire" means the register is held and
/// `t` is at or after that hold's earliest expiry, so the hold may have expired first):
/// - hold ok: free (or may expire) -> held by its key; also fine if already held by its key or
///   booked from it (a replay of the same key answers the same hold).
/// - hold refused with the seat taken: the seat was not free. Refused because of other seats
///   only: the seat was free (or may expire).
/// - confirm ok: held by its hold's key -> booked under its code; also fine if already booked
///   from that key under that code, or under no known code (a replay).
/// - confirm or release answered 410: the hold had ended, so not held by its key, unless that
///   key's hold may expire.
/// - release ok: held by its key -> free.
/// - cancel ok: booked under its code -> free; otherwise nothing (a repeated cancel answers the
///   cancelled booking).
/// - final read: must see the state (free, also when the hold may expire; held by that hold's
///   key; booked under that code, or under no known code from one of the keys that may have
///   become it).
/// - an operation of unknown outcome ([`Step::pending`]): its effect had it happened, with no
///   time bound (a delayed request may land any time later): a hold takes a free or held seat,
///   a confirm books its key's hold, a release frees it, a cancel frees its booking.
///
/// Refused operations other than the ones above have no effect and are left out. Seats start
/// free.
///
/// Time: an operation placed after others takes effect after them, so after their invokes, and
/// after any expiry they relied on (a hold that "may expire" and did). The spec keeps that
/// lower bound (`now`) and refuses an operation of known outcome that completed before it.
///
/// `stateright`'s search is depth-first without memo; these prunings keep it from going
/// exponential on real histories, and none can hide a linearization:
/// - a configuration (register, `now`, set of operations placed) entered a second time is
///   refused: the search is depth-first and stops at the first success, so the first visit
///   failed (`stateright` tries a step only once the real-time order allows it, and what is
///   left to place is a function of the set placed);
/// - an operation of unknown outcome placed where it changes nothing is refused while
///   operations of known outcome remain: placing it last instead is as good (nothing must
///   follow it in real time, and nothing in between sees a difference);
/// - a step after which some operation of known outcome not yet placed completed before `now`
///   is refused: that operation can no longer be placed;
/// - all anonymous holds whose time is up are one register value (see [`Reg::Held`]).
#[derive(Clone)]
struct SeatSpec {
    reg: Reg,
    /// A lower bound of the time of the next operation placed: it comes after every operation
    /// placed so far, so after their invokes, and after every expiry they relied on.
    now: u64,
    /// Zobrist hash of the set of operations placed, and the set itself.
    placed: u128,
    bits: Vec<u64>,
    placed_definite: u32,
    /// Every operation of known outcome before this index of [`Shared::by_done`] is placed.
    cursor: usize,
    shared: Rc<Shared>,
}

fn mix64(mut z: u64) -> u64 {
    // splitmix64
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mix128(a: u64, b: u64) -> u128 {
    let lo = mix64(a ^ mix64(b));
    let hi = mix64(lo ^ 0xD1B5_4A32_D192_ED03 ^ b.rotate_left(17));
    (u128::from(hi) << 64) | u128::from(lo)
}

impl SeatSpec {
    /// `steps`: how many steps there are (ids below it); `by_done`: the ones of known outcome,
    /// with their completion times.
    fn new(steps: usize, mut by_done: Vec<(u64, u32)>, budget: u64) -> Self {
        by_done.sort_unstable();
        let shared = Shared {
            budget: Cell::new(budget),
            seen: RefCell::new(HashSet::new()),
            definite: by_done.len() as u32,
            by_done,
        };
        let bits = vec![0; steps.div_ceil(64)];
        SeatSpec { reg: Reg::Free, now: 0, placed: 0, bits, placed_definite: 0, cursor: 0, shared: Rc::new(shared) }
    }

    /// Whether every operation of known outcome not placed yet can still come after `now`
    /// (completed at or after it). If one cannot, this branch of the search is dead.
    fn alive(&mut self) -> bool {
        let by_done = &self.shared.by_done;
        while let Some(&(_, id)) = by_done.get(self.cursor) {
            if self.bits[id as usize / 64] & (1 << (id % 64)) == 0 {
                break;
            }
            self.cursor += 1;
        }
        by_done.get(self.cursor).is_none_or(|&(done, _)| done >= self.now)
    }

    fn tick(&self) {
        let left = self.shared.budget.get();
        if left == 0 {
            // Ends the search (caught in `search`); `resume_unwind` runs no panic hook.
            resume_unwind(Box::new(OutOfBudget));
        }
        self.shared.budget.set(left - 1);
    }

    /// Whether the seat is free at some time up to `t`, taking the expiry of a hold whose
    /// time may be up (the operation then comes after that expiry).
    fn free_by(&mut self, t: u64) -> bool {
        match self.reg {
            Reg::Free => true,
            Reg::Held { expiry, .. } if t >= expiry => {
                self.reg = Reg::Free;
                self.now = self.now.max(expiry);
                true
            }
            _ => false,
        }
    }

    /// Takes the seat for a hold of unknown outcome (at no particular time): a free seat, or a
    /// seat held for another key once that hold expired.
    fn take(&mut self, key: u32, expiry: u64, anon: bool) {
        match self.reg {
            Reg::Free => self.reg = Reg::Held { key, expiry, anon },
            Reg::Held { key: k, expiry: e, .. } if k != key => {
                self.now = self.now.max(e);
                self.reg = Reg::Held { key, expiry, anon };
            }
            _ => {}
        }
    }

    /// The effect of an operation of unknown outcome, had it happened.
    fn effect(&mut self, act: &Act) {
        self.reg = match (act, self.reg) {
            (Act::Hold { key, expiry, anon }, _) => {
                self.take(*key, *expiry, *anon);
                self.reg
            }
            (Act::Confirm { key, code }, Reg::Held { key: k, .. }) if k == *key => Reg::Booked { key: k, code: *code },
            (Act::Confirm { key, code: Some(c) }, Reg::Booked { key: k, code: None }) if k == *key => {
                Reg::Booked { key: k, code: Some(*c) }
            }
            (Act::Release { key }, Reg::Held { key: k, .. }) if k == *key => Reg::Free,
            (Act::Cancel { code, .. }, Reg::Booked { code: Some(c), .. }) if c == *code => Reg::Free,
            (Act::Cancel { key: Some(key), .. }, Reg::Booked { key: k, code: None }) if k == *key => Reg::Free,
            (_, r) => r,
        };
    }

    /// Whether an operation of known outcome fits the register now (and its effect).
    fn fits(&mut self, op: &Step) -> bool {
        let t = op.done;
        if t < self.now {
            return false;
        }
        match (&op.act, self.reg) {
            (Act::Hold { key, .. }, Reg::Held { key: k, .. } | Reg::Booked { key: k, .. }) if k == *key => true,
            (Act::Hold { key, expiry, anon }, _) => {
                let free = self.free_by(t);
                if free {
                    self.reg = Reg::Held { key: *key, expiry: *expiry, anon: *anon };
                }
                free
            }
            (Act::Taken, r) => r != Reg::Free,
            (Act::Untaken, _) => self.free_by(t),
            (Act::Confirm { key, code }, Reg::Held { key: k, .. }) if k == *key => {
                self.reg = Reg::Booked { key: k, code: *code };
                true
            }
            (Act::Confirm { key, code }, Reg::Booked { key: k, code: c })
                if k == *key && (c.is_none() || c == *code) =>
            {
                self.reg = Reg::Booked { key: k, code: code.or(c) };
                true
            }
            (Act::Confirm { .. }, _) => false,
            (Act::Gone { key }, Reg::Held { key: k, expiry, .. }) if k == *key => {
                // The hold had ended, so it expired first.
                self.now = self.now.max(expiry);
                t >= expiry
            }
            (Act::Gone { .. }, _) => true,
            (Act::Release { key }, Reg::Held { key: k, .. }) if k == *key => {
                self.reg = Reg::Free;
                true
            }
            (Act::Release { .. }, _) => false,
            (Act::Cancel { code, key }, Reg::Booked { key: k, code: c }) => {
                if c == Some(*code) || (c.is_none() && *key == Some(k)) {
                    self.reg = Reg::Free;
                }
                true
            }
            (Act::Cancel { .. }, _) => true,
            (Act::Final(Seen::Free), _) => self.free_by(t),
            (Act::Final(Seen::Held(Some(key))), Reg::Held { key: k, .. }) => k == *key,
            (Act::Final(Seen::Held(None)), Reg::Held { .. }) => true,
            (Act::Final(Seen::Held(_)), _) => false,
            (Act::Final(Seen::Booked { code, keys }), Reg::Booked { key, code: c }) => match c {
                Some(c) => c == *code,
                None if keys.contains(&key) => {
                    self.reg = Reg::Booked { key, code: Some(*code) };
                    true
                }
                None => false,
            },
            (Act::Final(Seen::Booked { .. }), _) => false,
        }
    }

    /// Folds every anonymous hold whose expiry has passed into the one [`ANON`] value.
    fn normalize(&mut self) {
        if let Reg::Held { anon: true, expiry, .. } = self.reg {
            if expiry <= self.now {
                self.reg = Reg::Held { key: ANON, expiry: 0, anon: true };
            }
        }
    }

    fn config(&self) -> u128 {
        let (tag, a, b) = match self.reg {
            Reg::Free => (0u64, 0u64, 0u64),
            Reg::Held { key, expiry, .. } => (1, u64::from(key), expiry),
            Reg::Booked { key, code } => (2, u64::from(key), code.map_or(u64::MAX, u64::from)),
        };
        self.placed ^ mix128(tag ^ mix64(a) ^ mix64(self.now).rotate_left(7), b)
    }
}

impl SequentialSpec for SeatSpec {
    type Op = Step;
    type Ret = ();

    /// Only for operations left in flight, which [`search`] never does (every operation gets a
    /// return); gives the effect had it happened.
    fn invoke(&mut self, op: &Step) {
        self.tick();
        self.now = self.now.max(op.invoke);
        self.effect(&op.act);
        self.normalize();
    }

    fn is_valid_step(&mut self, op: &Step, _: &()) -> bool {
        self.tick();
        if op.pending {
            let before = self.reg;
            self.now = self.now.max(op.invoke);
            self.effect(&op.act);
            self.normalize();
            if self.reg == before && self.placed_definite < self.shared.definite {
                return false;
            }
        } else {
            if !self.fits(op) {
                return false;
            }
            self.now = self.now.max(op.invoke);
            self.normalize();
            self.placed_definite += 1;
        }
        let id = op.id as usize;
        if let Some(w) = self.bits.get_mut(id / 64) {
            *w |= 1 << (id % 64);
        }
        if !self.alive() {
            return false;
        }
        self.placed ^= mix128(u64::from(op.id), 0x5EA7);
        let config = self.config();
        self.shared.seen.borrow_mut().insert(config)
    }
}

/// Interned keys and codes.
#[derive(Default)]
struct Names {
    ids: HashMap<String, u32>,
}

impl Names {
    fn id(&mut self, s: &str) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(s.to_string()).or_insert(next)
    }

    /// Id -> name.
    fn table(&self) -> Arc<Vec<String>> {
        let mut t = vec![String::new(); self.ids.len()];
        for (name, &id) in &self.ids {
            t[id as usize] = name.clone();
        }
        Arc::new(t)
    }
}

/// A thread of the tester: completed operations of one process share one (they are
/// sequential); every operation of unknown outcome has its own, as it stays in flight forever.
/// Ordered so that the search tries completed operations before unknown ones.
type Thread = (u8, u64);

/// Everything the search of one seat needs, self-contained so it can run on another thread.
struct SeatJob {
    seat: String,
    steps: Vec<Step>,
    /// Invoke and return events in history order: (step, is return).
    events: Vec<(usize, bool)>,
    threads: Vec<Thread>,
    descs: Vec<String>,
    /// Positions of each step's invoke and return (for the context of a violation).
    spans: Vec<(usize, Option<usize>)>,
    /// Where the seat is booked for good, if it is: the first `cut` events, after which no
    /// operation of known outcome is open, end with a confirm answered ok (step `confirm`)
    /// whose booking no cancel was ever sent for. From there on the seat is `booked` in every
    /// linearization (only a cancel of that code could change it, and operations of unknown
    /// outcome do nothing to it), so the operations after the cut are checked one by one.
    settled: Option<Settled>,
    /// Names of keys and codes by id.
    names: Arc<Vec<String>>,
}

struct Settled {
    cut: usize,
    confirm: usize,
    booked: Reg,
}

enum SeatResult {
    Fine,
    Violation(Violation),
    Undecided(String),
    Error(String),
}

/// One operation projected on one seat: its index, what it did there, whether in flight.
type SeatAct = (usize, Act, bool);

/// Projects the client operations onto seats.
fn seat_jobs(
    hist: &History,
    m: &Model,
    attributed: &HashMap<(String, String), Vec<String>>,
    v: &mut Verdict,
) -> Vec<SeatJob> {
    let mut names = Names::default();
    // (show, seat) -> (op index, act, in flight)
    let mut per_seat: BTreeMap<(String, String), Vec<SeatAct>> = BTreeMap::new();
    let mut add = |show: &str, seats: &[String], i: usize, act: Act, in_flight: bool| {
        for s in seats {
            per_seat.entry((show.to_string(), s.clone())).or_default().push((i, act.clone(), in_flight));
        }
    };
    for (i, op) in hist.ops.iter().enumerate() {
        let outcome = op.outcome();
        let unknown = outcome == Outcome::Unknown;
        match op.kind {
            Kind::Hold => {
                let (Some(show), Some(seats)) = (op.show(), labels_of(&op.value, "seats")) else {
                    if outcome != Outcome::Refused || op.status() == Some(409) {
                        v.malformed.push(format!("line {}: a hold without show and seats", op.index));
                    }
                    continue;
                };
                let key = Model::hold_key(op);
                let act = Act::Hold { key: names.id(&key), expiry: m.expiry(&key), anon: false };
                match outcome {
                    Outcome::Ok | Outcome::Unknown => add(&show, &seats, i, act, unknown),
                    Outcome::Refused if op.status() == Some(409) => {
                        let taken = labels_of(&op.value, "taken").unwrap_or_default();
                        if taken.is_empty() {
                            continue; // busy, or the key is in progress: no effect
                        }
                        let (t, free): (Vec<String>, Vec<String>) = seats.into_iter().partition(|s| taken.contains(s));
                        add(&show, &t, i, Act::Taken, false);
                        add(&show, &free, i, Act::Untaken, false);
                    }
                    Outcome::Refused => {}
                }
            }
            Kind::Confirm | Kind::Release => {
                let Some(h) = op.text("hold").and_then(|id| m.holds.get(&id)) else { continue };
                let key = names.id(&h.key);
                let act = match (op.kind, outcome) {
                    (_, Outcome::Refused) if op.status() == Some(410) => Act::Gone { key },
                    (_, Outcome::Refused) => continue,
                    (Kind::Confirm, Outcome::Ok) => match op.text("code") {
                        Some(c) => Act::Confirm { key, code: Some(names.id(&c)) },
                        None => continue,
                    },
                    (Kind::Confirm, _) => Act::Confirm { key, code: None },
                    _ => Act::Release { key },
                };
                let seats = match (&act, op.text("code").and_then(|c| m.codes.get(&c))) {
                    (Act::Confirm { code: Some(_), .. }, Some(c)) => c.seats.clone(),
                    _ => h.seats.clone(),
                };
                add(&h.show, &seats, i, act, unknown);
            }
            Kind::Cancel => {
                if outcome == Outcome::Refused {
                    continue;
                }
                let Some(code) = op.text("code") else { continue };
                let rec = m.codes.get(&code);
                let Some(show) = rec.map(|c| c.show.clone()).or_else(|| op.show()) else { continue };
                let seats = rec.map(|c| c.seats.clone()).or_else(|| labels_of(&op.value, "seats")).unwrap_or_default();
                let key = rec.map(|c| names.id(&c.key));
                add(&show, &seats, i, Act::Cancel { code: names.id(&code), key }, unknown);
            }
            Kind::Read | Kind::FinalRead => {}
        }
    }
    // Seats nobody touched are checked too when a final read shows them other than free.
    for ((_, show), f) in &m.finals {
        for (seat, st) in &f.seats {
            if st != "free" {
                per_seat.entry((show.clone(), seat.clone())).or_default();
            }
        }
    }
    for (i, op) in hist.ops.iter().enumerate() {
        if op.kind != Kind::FinalRead || op.typ != Some(Type::Ok) {
            continue;
        }
        let (Some(show), Some(seats)) = (op.show(), op.value.get("seats").and_then(Value::as_object)) else { continue };
        for (seat, st) in seats {
            let Some(list) = per_seat.get_mut(&(show.clone(), seat.clone())) else { continue };
            let Some(st) = st.as_str() else { continue };
            let seen = if st == "free" {
                Seen::Free
            } else if let Some(h) = st.strip_prefix("held:") {
                Seen::Held(m.holds.get(h).map(|h| names.id(&h.key)))
            } else if let Some(code) = st.strip_prefix("booked:") {
                let keys: Vec<u32> = match m.codes.get(code) {
                    Some(c) if c.show == show => vec![names.id(&c.key)],
                    _ => attributed
                        .get(&(show.clone(), code.to_string()))
                        .map(|ks| ks.iter().map(|k| names.id(k)).collect())
                        .unwrap_or_default(),
                };
                Seen::Booked { code: names.id(code), keys: keys.into() }
            } else {
                continue; // already reported as malformed
            };
            list.push((i, Act::Final(seen), false));
        }
    }
    let table = names.table();
    let mut jobs = Vec::new();
    for ((show, seat), list) in per_seat {
        let label = format!("show {show} seat {seat}");
        let mut j = job(label, &seat, hist, list);
        j.names = table.clone();
        jobs.push(j);
    }
    jobs
}

/// Orders one seat's steps into tester events and gives each its thread.
fn job(seat_label: String, seat: &str, hist: &History, mut list: Vec<(usize, Act, bool)>) -> SeatJob {
    // Keys that something other than a hold of unknown outcome names on this seat.
    let mut named: HashSet<u32> = HashSet::new();
    for (_, act, in_flight) in &list {
        match act {
            Act::Hold { key, .. } if !in_flight => {
                named.insert(*key);
            }
            Act::Confirm { key, .. } | Act::Gone { key } | Act::Release { key } => {
                named.insert(*key);
            }
            Act::Cancel { key: Some(key), .. } | Act::Final(Seen::Held(Some(key))) => {
                named.insert(*key);
            }
            Act::Final(Seen::Booked { keys, .. }) => named.extend(keys.iter().copied()),
            _ => {}
        }
    }
    for (_, act, _) in &mut list {
        if let Act::Hold { key, anon, .. } = act {
            *anon = !named.contains(key);
        }
    }
    let mut steps = Vec::with_capacity(list.len());
    let mut descs = Vec::with_capacity(list.len());
    let mut spans = Vec::with_capacity(list.len());
    let mut owners = Vec::with_capacity(list.len());
    let mut order: Vec<(usize, u8, usize)> = Vec::new();
    for (n, (i, act, in_flight)) in list.into_iter().enumerate() {
        let op = &hist.ops[i];
        let done_pos = if in_flight { None } else { op.done_pos };
        let done = if in_flight { u64::MAX } else { op.done.unwrap_or(u64::MAX) };
        steps.push(Step { id: n as u32, act, invoke: op.invoke, done, pending: in_flight });
        descs.push(op.describe(Some(seat)));
        spans.push((op.invoke_pos, done_pos));
        owners.push(op.process.as_str());
        order.push((op.invoke_pos, 0, n));
        if let Some(p) = done_pos {
            order.push((p, 1, n));
        }
    }
    order.sort();
    let events: Vec<(usize, bool)> = order.iter().map(|&(_, ret, n)| (n, ret == 1)).collect();
    let mut process_ids: HashMap<&str, u64> = HashMap::new();
    let mut busy: HashSet<Thread> = HashSet::new();
    let mut threads = vec![(0, 0); steps.len()];
    let mut fresh = 0u64;
    for &(n, ret) in &events {
        if ret {
            busy.remove(&threads[n]);
            continue;
        }
        fresh += 1;
        let next = process_ids.len() as u64;
        let own = (0, *process_ids.entry(owners[n]).or_insert(next));
        let t = match spans[n] {
            (_, None) => (2, fresh),
            // A final read with no invoke line, or (never, by pairing) a process with two
            // operations in flight.
            (inv, Some(ret)) if inv == ret || busy.contains(&own) => (1, fresh),
            _ => own,
        };
        busy.insert(t);
        threads[n] = t;
    }
    let settled = settle(&steps, &events, &spans);
    SeatJob { seat: seat_label, steps, events, threads, descs, spans, settled, names: Arc::default() }
}

/// Finds where a seat is booked for good (see [`SeatJob::settled`]).
fn settle(steps: &[Step], events: &[(usize, bool)], spans: &[(usize, Option<usize>)]) -> Option<Settled> {
    let cancelled: HashSet<u32> =
        steps.iter().filter_map(|s| if let Act::Cancel { code, .. } = s.act { Some(code) } else { None }).collect();
    let mut open = 0usize;
    let mut booked: Option<(usize, Reg)> = None;
    for (i, &(n, ret)) in events.iter().enumerate() {
        if spans[n].1.is_none() {
            continue; // unknown outcome: no return, and no effect on a booked seat
        }
        if !ret {
            open += 1;
            continue;
        }
        open -= 1;
        if booked.is_none() {
            if let Act::Confirm { key, code: Some(code) } = steps[n].act {
                if !cancelled.contains(&code) {
                    booked = Some((n, Reg::Booked { key, code: Some(code) }));
                }
            }
        }
        if let (Some((confirm, booked)), 0) = (booked, open) {
            return Some(Settled { cut: i + 1, confirm, booked });
        }
    }
    None
}

enum Search {
    Consistent,
    Inconsistent,
    OutOfBudget,
}

/// Runs the tester on the first `m` events of a seat. Operations invoked there but not
/// returned (unknown outcome, or answered later) become [`Step::pending`] and get their return
/// at the end, each on a thread of its own or its process's, with nothing after it.
fn search(job: &SeatJob, m: usize) -> Result<Search, String> {
    search_events(job, &job.events[..m], Reg::Free)
}

/// Runs the tester on these events of a seat, from this register.
fn search_events(job: &SeatJob, events: &[(usize, bool)], start: Reg) -> Result<Search, String> {
    tester_run(job, events, start, false).map(|(s, _)| s)
}

/// The register at the end of one linearization of these events, if there is one within the
/// budget.
fn state_after(job: &SeatJob, events: &[(usize, bool)]) -> Option<Reg> {
    tester_run(job, events, Reg::Free, true).ok().and_then(|(_, r)| r)
}

/// Runs the tester; with `want_state`, also replays the linearization it found to give the
/// register it ends with.
fn tester_run(
    job: &SeatJob,
    events: &[(usize, bool)],
    start: Reg,
    want_state: bool,
) -> Result<(Search, Option<Reg>), String> {
    let returned: HashSet<usize> = events.iter().filter(|e| e.1).map(|e| e.0).collect();
    let open: Vec<usize> = events.iter().filter(|e| !e.1 && !returned.contains(&e.0)).map(|e| e.0).collect();
    let by_done: Vec<(u64, u32)> = returned.iter().map(|&n| (job.steps[n].done, job.steps[n].id)).collect();
    let budget = (SEARCH_WORK / (events.len() as u64 + 1)).clamp(MIN_STEPS, MAX_STEPS);
    let mut spec = SeatSpec::new(job.steps.len(), by_done.clone(), budget);
    spec.reg = start;
    let mut tester = LinearizabilityTester::new(spec);
    for &(n, ret) in events {
        if ret {
            tester.on_return(job.threads[n], ())?;
        } else {
            let mut step = job.steps[n].clone();
            if !returned.contains(&n) {
                step.pending = true;
                step.done = u64::MAX;
            }
            tester.on_invoke(job.threads[n], step)?;
        }
    }
    for &n in &open {
        tester.on_return(job.threads[n], ())?;
    }
    match catch_unwind(AssertUnwindSafe(|| tester.serialized_history())) {
        Ok(Some(order)) if want_state => {
            let mut replay = SeatSpec::new(job.steps.len(), by_done, u64::MAX);
            replay.reg = start;
            let fits = order.iter().all(|(op, ret)| replay.is_valid_step(op, ret));
            Ok((Search::Consistent, fits.then_some(replay.reg)))
        }
        Ok(Some(_)) => Ok((Search::Consistent, None)),
        Ok(None) => Ok((Search::Inconsistent, None)),
        Err(p) if p.is::<OutOfBudget>() => Ok((Search::OutOfBudget, None)),
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("the search panicked: {}", msg.unwrap_or_default()))
        }
    }
}

/// Checks one seat; if it is not linearizable, finds the shortest prefix of its history that
/// is not (by bisection: a prefix of a linearizable history is linearizable) and names the
/// operation that ends it. When the whole history is too much for the budget, a prefix that is
/// shown not linearizable still proves a violation.
fn check_seat(job: &SeatJob) -> SeatResult {
    let settled_at = job.settled.as_ref().map_or(job.events.len(), |s| s.cut);
    let total = settled_at.min(MAX_SEARCH_EVENTS);
    let steps = job.events[..total].iter().filter(|e| !e.1).count();
    let unknown = job.events[..total].iter().filter(|e| !e.1 && job.spans[e.0].1.is_none()).count();
    let mut proven = match search(job, total) {
        Err(e) => return SeatResult::Error(e),
        Ok(Search::Consistent) if total < settled_at => {
            if let Some(v) = check_settled(job) {
                return v;
            }
            return SeatResult::Undecided(format!(
                "only the first {total} of its {} invokes and returns could be searched (linearizable so far)",
                job.events.len()
            ));
        }
        Ok(Search::Consistent) => return check_settled(job).unwrap_or(SeatResult::Fine),
        Ok(Search::OutOfBudget) => None,
        Ok(Search::Inconsistent) => Some(total),
    };
    // lo: a prefix shown linearizable; hi: the shortest prefix not shown linearizable.
    let (mut lo, mut hi) = (0, total);
    let mut searches = 1;
    let mut cut_short = false;
    while hi - lo > 1 {
        if searches >= MAX_SEARCHES {
            cut_short = true;
            break;
        }
        searches += 1;
        let mid = lo + (hi - lo) / 2;
        match search(job, mid) {
            Ok(Search::Consistent) => lo = mid,
            Ok(Search::Inconsistent) => {
                hi = mid;
                proven = Some(mid);
            }
            // Unknown: look for a violation in the shorter prefixes.
            Ok(Search::OutOfBudget) | Err(_) => hi = mid,
        }
    }
    let Some(hi) = proven else {
        if let Some(v) = check_settled(job) {
            return v;
        }
        return SeatResult::Undecided(format!(
            "the search ran out of budget ({steps} operations, {unknown} of unknown outcome; \
             linearizable up to the first {lo} of its {total} invokes and returns)"
        ));
    };
    let cut_short = cut_short || hi - lo > 1;
    // The event that makes the prefix fail is a return: an invoke alone can always be left
    // out. With the bisection cut short, take the last return of the prefix.
    let culprit = job.events[..hi].iter().rev().find(|(_, ret)| *ret).map(|&(n, _)| n).unwrap_or(0);
    let (c_inv, c_ret) = job.spans[culprit];
    let c_ret = c_ret.unwrap_or(usize::MAX);
    let in_prefix: BTreeSet<usize> = job.events[..hi].iter().map(|&(n, _)| n).collect();
    let mut listed: BTreeSet<usize> = BTreeSet::new();
    listed.insert(culprit);
    // Known outcomes concurrent with it, and the last ones that completed before it began.
    let mut before: Vec<(usize, usize)> = Vec::new();
    let mut unknown_before: Vec<(usize, usize)> = Vec::new();
    for &n in &in_prefix {
        match job.spans[n] {
            (inv, Some(ret)) if inv < c_ret && ret > c_inv => {
                listed.insert(n);
            }
            (_, Some(ret)) if ret < c_inv => before.push((ret, n)),
            (inv, None) if inv < c_ret => unknown_before.push((inv, n)),
            _ => {}
        }
    }
    before.sort();
    unknown_before.sort();
    listed.extend(before.iter().rev().take(CONTEXT_BEFORE).map(|&(_, n)| n));
    listed.extend(unknown_before.iter().rev().take(CONTEXT_UNKNOWN).map(|&(_, n)| n));
    let mut listed: Vec<usize> = listed.into_iter().collect();
    listed.sort_by_key(|&n| job.spans[n].0);
    let extra = listed.len().saturating_sub(MAX_LISTED);
    let mut ops: Vec<String> = listed.iter().take(MAX_LISTED).map(|&n| job.descs[n].clone()).collect();
    if extra > 0 {
        ops.push(format!("... and {extra} more"));
    }
    // What the seat may be just before it: the end of one order of everything that fits.
    let before_it: Vec<(usize, bool)> = job.events[..hi].iter().copied().filter(|&(n, _)| n != culprit).collect();
    let state = if cut_short { None } else { state_after(job, &before_it) };
    let mut explanation = format!(
        "no order of its operations fits one seat (free, held by a key, booked under a code; freed only by a \
         release, a cancel, or the hold's expiry); the first that cannot be placed: {}",
        job.descs[culprit]
    );
    if let Some(r) = state {
        explanation
            .push_str(&format!("; in one order of all before it, the seat is then {}", describe_reg(r, &job.names)));
    }
    if cut_short {
        explanation.push_str(
            " (the search for the first such operation ran out of budget; this one ends a prefix that fails)",
        );
    }
    SeatResult::Violation(Violation { seat: job.seat.clone(), explanation, ops })
}

/// A register as text.
fn describe_reg(r: Reg, names: &[String]) -> String {
    let name = |id: u32| names.get(id as usize).cloned().unwrap_or_else(|| format!("#{id}"));
    match r {
        Reg::Free => "free".into(),
        Reg::Held { key: ANON, .. } => "held by a hold of unknown outcome whose time may be up".into(),
        Reg::Held { key, expiry, .. } => format!("held for key {} (which may expire from {})", name(key), secs(expiry)),
        Reg::Booked { code: Some(c), .. } => format!("booked as {}", name(c)),
        Reg::Booked { key, code: None } => format!("booked from key {} by a confirm of unknown outcome", name(key)),
    }
}

/// Checks the operations after the seat was booked for good, one by one against the booking;
/// `None` if they all fit (or the seat never was).
fn check_settled(job: &SeatJob) -> Option<SeatResult> {
    let s = job.settled.as_ref()?;
    for &(n, ret) in &job.events[s.cut..] {
        if ret || job.spans[n].1.is_none() {
            continue;
        }
        match search_events(job, &[(n, false), (n, true)], s.booked) {
            Ok(Search::Consistent) => continue,
            Ok(Search::Inconsistent) => {
                let explanation = format!(
                    "the seat was booked for good by {} (no cancel of it was sent), but later: {}",
                    job.descs[s.confirm], job.descs[n]
                );
                let ops = vec![job.descs[s.confirm].clone(), job.descs[n].clone()];
                return Some(SeatResult::Violation(Violation { seat: job.seat.clone(), explanation, ops }));
            }
            Ok(Search::OutOfBudget) => return Some(SeatResult::Undecided("a single step ran out of budget".into())),
            Err(e) => return Some(SeatResult::Error(e)),
        }
    }
    None
}

/// Runs the seat searches on a few threads with a large stack (the search recurses once per
/// operation). Results come back in the jobs' order.
fn run_jobs(jobs: Vec<SeatJob>) -> Vec<(String, SeatResult)> {
    let workers =
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, MAX_WORKERS).min(jobs.len());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<SeatResult>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(job) = jobs.get(i) else { break };
        let r = check_seat(job);
        results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .filter_map(|_| std::thread::Builder::new().stack_size(SEARCH_STACK).spawn_scoped(s, work).ok())
            .collect();
        if handles.is_empty() {
            // No thread with a large stack: search here (a very long seat history may then
            // overflow this thread's stack).
            work();
        }
        for h in handles {
            let _ = h.join();
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    jobs.into_iter()
        .zip(results)
        .map(|(j, r)| {
            let r = r.unwrap_or_else(|| SeatResult::Undecided("the search did not run (no thread for it)".into()));
            (j.seat, r)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Logs, availability, masters.

/// Compares every node's log with the one that reaches furthest (the lowest base, then the
/// lowest node id, among equals). Logs compact: a node's `write_log` holds only the entries
/// after its base (and the membership entry in force there), and bases differ between nodes,
/// so two logs are compared where both hold entries: every LSN above the higher of their two
/// bases must be in both and the same, and an LSN at or below it that both still hold must
/// be the same too. What was compacted away is in the tables, which the final reads compare.
/// A node may keep rows at or below its own base (the membership in force there; the rows a
/// snapshot it installed held behind its commit point; those a compaction cut short by a
/// kill did not delete yet): its core no longer reads them, but where another node holds
/// the same LSN they must agree. One line per node that differs: the first LSN at which it
/// does, or where the two logs end when they differ nowhere else.
fn divergence(logs: &BTreeMap<u64, Vec<LogEntry>>, bases: &BTreeMap<u64, i64>) -> Vec<String> {
    fn by_lsn<'a>(node: u64, log: &'a [LogEntry], out: &mut Vec<String>) -> BTreeMap<i64, &'a LogEntry> {
        let mut m = BTreeMap::new();
        for e in log {
            if m.insert(e.lsn, e).is_some() {
                out.push(format!("node {node}'s log has lsn {} more than once", e.lsn));
            }
        }
        m
    }
    let mut out = Vec::new();
    let base = |node: u64| bases.get(&node).copied().unwrap_or(0);
    let end = |node: u64, log: &[LogEntry]| log.iter().map(|e| e.lsn).max().unwrap_or(0).max(base(node));
    let Some((&ref_node, ref_log)) =
        logs.iter().max_by_key(|(id, l)| (end(**id, l), std::cmp::Reverse(base(**id)), std::cmp::Reverse(**id)))
    else {
        return out;
    };
    let entry = |e: &LogEntry| format!("epoch {} {} {}", e.epoch, e.kind, e.digest.get(..12).unwrap_or(&e.digest));
    let reference = by_lsn(ref_node, ref_log, &mut out);
    for (&node, log) in logs {
        if node == ref_node {
            continue;
        }
        let mine = by_lsn(node, log, &mut out);
        let from = base(ref_node).max(base(node));
        let lsns: BTreeSet<i64> = reference.keys().chain(mine.keys()).copied().collect();
        let before = out.len();
        for lsn in lsns {
            match (reference.get(&lsn), mine.get(&lsn)) {
                (Some(a), Some(b)) if a == b => continue,
                (Some(a), Some(b)) => out.push(format!(
                    "node {node}'s log differs from node {ref_node}'s at lsn {lsn}: {} there, {} on node {ref_node}",
                    entry(b),
                    entry(a)
                )),
                _ if lsn <= from => continue, // compacted on one of them
                (Some(a), None) => out.push(format!(
                    "node {node}'s log has no lsn {lsn} ({} on node {ref_node}); it has {} entries after its base {}, node {ref_node} {} after {}",
                    entry(a),
                    log.iter().filter(|e| e.lsn > base(node)).count(),
                    base(node),
                    ref_log.iter().filter(|e| e.lsn > base(ref_node)).count(),
                    base(ref_node)
                )),
                (None, Some(b)) => {
                    out.push(format!("node {node}'s log has lsn {lsn} ({}), which node {ref_node}'s lacks", entry(b)))
                }
                (None, None) => continue,
            }
            break;
        }
        // Behind a base with no entry to compare: the ends say it.
        if out.len() == before && end(node, log) != end(ref_node, ref_log) {
            out.push(format!(
                "node {node}'s log ends at {} (base {}), node {ref_node}'s at {} (base {})",
                end(node, log),
                base(node),
                end(ref_node, ref_log),
                base(ref_node)
            ));
        }
    }
    out
}

/// The share of client operations with a definite answer, per fault kind whose windows
/// (start to end) contain their invoke, and for those outside every window (`none`).
fn availability(hist: &History, notes: &mut Vec<String>) -> Vec<(String, f64, usize)> {
    let mut faults: Vec<&FaultLine> = hist.faults.iter().collect();
    faults.sort_by_key(|f| f.time);
    let mut windows: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut open: BTreeMap<String, (u64, usize)> = BTreeMap::new();
    for f in faults {
        if f.start {
            open.entry(f.kind.clone()).or_insert((f.time, 0)).1 += 1;
            windows.entry(f.kind.clone()).or_default();
        } else {
            // The nemesis ends with a "heal" that has no start, and a fault that could not
            // begin only has an end: those close nothing.
            if let Some((start, depth)) = open.get_mut(&f.kind) {
                *depth -= 1;
                if *depth == 0 {
                    windows.entry(f.kind.clone()).or_default().push((*start, f.time));
                    open.remove(&f.kind);
                }
            }
        }
    }
    for (kind, (start, _)) in open {
        notes.push(format!("fault {kind} started at {} and never ended", secs(start)));
        windows.entry(kind).or_default().push((start, u64::MAX));
    }
    let mut counts: BTreeMap<String, (usize, usize)> = windows.keys().map(|k| (k.clone(), (0, 0))).collect();
    let mut none = (0usize, 0usize);
    for op in hist.ops.iter().filter(|o| o.kind != Kind::FinalRead) {
        let definite = usize::from(op.outcome() != Outcome::Unknown);
        let mut inside = false;
        for (kind, ws) in &windows {
            if ws.iter().any(|&(a, b)| a <= op.invoke && op.invoke < b) {
                inside = true;
                let c = counts.entry(kind.clone()).or_default();
                c.0 += definite;
                c.1 += 1;
            }
        }
        if !inside {
            none.0 += definite;
            none.1 += 1;
        }
    }
    let share = |(d, n): (usize, usize)| if n == 0 { 0.0 } else { d as f64 / n as f64 };
    let mut out: Vec<(String, f64, usize)> = counts.into_iter().map(|(k, c)| (k, share(c), c.1)).collect();
    out.push(("none".into(), share(none), none.1));
    out
}

/// The longest stretch from the first monitor sample without a master to the next with one
/// (or to the last sample, if none came).
fn without_master(hist: &History) -> Option<u64> {
    if hist.masters.is_empty() {
        return None;
    }
    let mut samples = hist.masters.clone();
    samples.sort_by_key(|s| s.0);
    let mut longest = 0;
    let mut since: Option<u64> = None;
    let mut last = 0;
    for (t, has) in samples {
        last = t;
        match (has, since) {
            (false, None) => since = Some(t),
            (true, Some(s)) => {
                longest = longest.max(t - s);
                since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        longest = longest.max(last - s);
    }
    Some(longest / NS_PER_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MS: u64 = NS_PER_MS;

    fn meta(nodes: usize, hold_ms: u64) -> RunMeta {
        RunMeta {
            name: "test".into(),
            seed: 1,
            nodes,
            faults: vec![],
            hold_ms,
            seconds: 10,
            scenario: None,
            discovery: "static".into(),
            log_retain: None,
        }
    }

    /// Builds a history line by line; times in ms; lines are numbered by time when taken.
    #[derive(Default)]
    struct Hist {
        lines: Vec<Event>,
    }

    impl Hist {
        fn line(&mut self, ms: u64, process: Process, node: Option<u64>, kind: Type, f: F, value: Value) -> &mut Self {
            self.lines.push(Event { index: 0, time: ms * MS, process, node, kind, f, value });
            self
        }

        /// A client operation from `t0` to `t1` (ms) on node 1.
        #[allow(clippy::too_many_arguments)] // a history line is that many fields
        fn op(&mut self, p: u64, f: F, value: Value, t0: u64, kind: Type, extra: Value, t1: u64) -> &mut Self {
            self.line(t0, Process::Client(p), Some(1), Type::Invoke, f.clone(), value.clone());
            self.line(t1, Process::Client(p), Some(1), kind, f, merge(&value, &extra))
        }

        #[allow(clippy::too_many_arguments)] // a history line is that many fields
        fn hold(&mut self, p: u64, seats: &[&str], key: &str, t0: u64, kind: Type, extra: Value, t1: u64) -> &mut Self {
            self.op(p, F::Hold, json!({"show": 1, "seats": seats, "key": key}), t0, kind, extra, t1)
        }

        fn held(&mut self, p: u64, seats: &[&str], key: &str, hold: &str, t0: u64, t1: u64) -> &mut Self {
            self.hold(p, seats, key, t0, Type::Ok, json!({"hold": hold, "expires_at": "x"}), t1)
        }

        fn confirm(&mut self, p: u64, hold: &str, t0: u64, kind: Type, extra: Value, t1: u64) -> &mut Self {
            self.op(p, F::Confirm, json!({"show": 1, "hold": hold}), t0, kind, extra, t1)
        }

        fn booked(&mut self, p: u64, hold: &str, code: &str, seats: &[&str], t0: u64, t1: u64) -> &mut Self {
            self.confirm(p, hold, t0, Type::Ok, json!({"code": code, "seats": seats}), t1)
        }

        fn final_read(&mut self, ms: u64, node: u64, seats: Value) -> &mut Self {
            let v = json!({"show": 1, "seats": seats});
            self.line(ms, Process::Named("final".into()), Some(node), Type::Ok, F::FinalRead, v)
        }

        fn nemesis(&mut self, ms: u64, f: &str, value: Value) -> &mut Self {
            self.line(ms, Process::nemesis(), None, Type::Info, F::Fault(f.into()), value)
        }

        fn events(&self) -> Vec<Event> {
            let mut ev = self.lines.clone();
            ev.sort_by_key(|e| e.time);
            for (i, e) in ev.iter_mut().enumerate() {
                e.index = i as u64;
            }
            ev
        }

        fn check(&self, meta: &RunMeta) -> Verdict {
            self.check_logs(meta, &BTreeMap::new())
        }

        fn check_logs(&self, meta: &RunMeta, logs: &BTreeMap<u64, Vec<LogEntry>>) -> Verdict {
            self.check_compacted(meta, logs, &BTreeMap::new())
        }

        fn check_compacted(
            &self,
            meta: &RunMeta,
            logs: &BTreeMap<u64, Vec<LogEntry>>,
            bases: &BTreeMap<u64, i64>,
        ) -> Verdict {
            let events = self.events();
            check(&Input { meta, events: &events, logs, bases })
        }
    }

    fn assert_clean(v: &Verdict) {
        assert!(v.is_clean(), "expected a clean verdict: {v:#?}");
    }

    #[test]
    fn a_lost_write_is_reported() {
        let mut h = Hist::default();
        h.held(1, &["A1", "A2"], "k1", "H1", 0, 10)
            .booked(1, "H1", "CODE1", &["A1", "A2"], 20, 30)
            .final_read(5000, 1, json!({"A1": "booked:CODE1", "A2": "booked:CODE1", "A3": "free"}))
            .final_read(5000, 2, json!({"A1": "free", "A2": "booked:CODE1", "A3": "free"}));
        let v = h.check(&meta(2, 1000));
        assert_eq!(v.acknowledged, 1);
        assert_eq!(v.lost.len(), 1, "{v:#?}");
        assert!(v.lost[0].contains("CODE1") && v.lost[0].contains("node 2") && v.lost[0].contains("A1 is free"));
        assert!(!v.is_clean());
    }

    #[test]
    fn a_node_without_a_final_read_loses_the_booking_there() {
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10).booked(1, "H1", "CODE1", &["A1"], 20, 30).final_read(
            5000,
            1,
            json!({"A1": "booked:CODE1"}),
        );
        h.line(
            5000,
            Process::Named("final".into()),
            Some(2),
            Type::Fail,
            F::FinalRead,
            json!({"show": 1, "error": "x"}),
        );
        let v = h.check(&meta(2, 1000));
        assert_eq!(v.lost.len(), 1, "{v:#?}");
        assert!(v.lost[0].contains("node 2 has no final read"));
    }

    #[test]
    fn a_double_sale_is_reported() {
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10)
            .booked(1, "H1", "CODE1", &["A1"], 20, 30)
            .held(2, &["A1"], "k2", "H2", 40, 50)
            .booked(2, "H2", "CODE2", &["A1"], 60, 70)
            .final_read(5000, 1, json!({"A1": "booked:CODE1"}))
            .final_read(5000, 2, json!({"A1": "booked:CODE2"}));
        let v = h.check(&meta(2, 60_000));
        assert!(v.double_sold.iter().any(|d| d.contains("different codes")), "{v:#?}");
        assert!(v.double_sold.iter().any(|d| d.contains("confirmed to clients as CODE1 and then as CODE2")), "{v:#?}");
        assert_eq!(v.violations.len(), 1, "{v:#?}");
        assert_eq!(v.violations[0].seat, "show 1 seat A1");
    }

    #[test]
    fn a_seat_booked_on_one_node_and_free_on_another_is_double_sold() {
        let mut h = Hist::default();
        h.final_read(5000, 1, json!({"A1": "booked:CODE9"})).final_read(5000, 2, json!({"A1": "free"}));
        let v = h.check(&meta(2, 1000));
        assert!(v.double_sold.iter().any(|d| d.contains("booked as CODE9 on node(s) 1 but free on node 2")), "{v:#?}");
        assert_eq!(v.unexpected.len(), 1, "{v:#?}");
    }

    #[test]
    fn a_database_double_booking_is_double_sold() {
        let mut h = Hist::default();
        let v = json!({"show": 1, "seats": {"A1": "free"}, "double_booked": ["A1: X and Y"]});
        h.line(5000, Process::Named("final".into()), Some(1), Type::Ok, F::FinalRead, v);
        let v = h.check(&meta(1, 1000));
        assert_eq!(v.double_sold, vec!["show 1: node 1's database books A1: X and Y".to_string()]);
    }

    #[test]
    fn a_stale_read_is_fine() {
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10)
            .booked(1, "H1", "CODE1", &["A1"], 20, 30)
            .op(2, F::Read, json!({"show": 1}), 100, Type::Ok, json!({"seats": {"A1": "free"}}), 110)
            .final_read(5000, 1, json!({"A1": "booked:CODE1"}))
            .final_read(5000, 2, json!({"A1": "booked:CODE1"}));
        let v = h.check(&meta(2, 1000));
        assert_clean(&v);
        assert_eq!((v.ops, v.ok, v.fail, v.unknown), (3, 3, 0, 0));
    }

    #[test]
    fn two_holds_of_one_seat_are_not_linearizable() {
        let mut h = Hist::default();
        h.held(1, &["A1", "A2"], "k1", "H1", 0, 10).held(2, &["A1"], "k2", "H2", 20, 30);
        let v = h.check(&meta(1, 60_000));
        assert_eq!(v.violations.len(), 1, "{v:#?}");
        let x = &v.violations[0];
        assert_eq!(x.seat, "show 1 seat A1");
        assert!(x.explanation.contains("hold A1 key=k2"), "{x:#?}");
        assert!(x.ops.iter().any(|o| o.contains("key=k1")) && x.ops.iter().any(|o| o.contains("key=k2")), "{x:#?}");
    }

    #[test]
    fn a_release_frees_the_seat_for_another_hold() {
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10)
            .op(1, F::Release, json!({"show": 1, "hold": "H1"}), 20, Type::Ok, json!({}), 30)
            .held(2, &["A1"], "k2", "H2", 40, 50)
            .booked(2, "H2", "CODE2", &["A1"], 60, 70)
            .op(2, F::Cancel, json!({"show": 1, "code": "CODE2", "seats": ["A1"]}), 80, Type::Ok, json!({}), 90)
            .held(3, &["A1"], "k3", "H3", 100, 110)
            .confirm(1, "H1", 120, Type::Fail, json!({"status": 410}), 130)
            .final_read(5000, 1, json!({"A1": "held:H3"}));
        assert_clean(&h.check(&meta(1, 60_000)));
    }

    #[test]
    fn an_unknown_confirm_that_happened_is_fine() {
        let mut h = Hist::default();
        h.held(1, &["A1", "A2"], "k1", "H1", 0, 10)
            .confirm(1, "H1", 20, Type::Info, json!({"error": "timeout"}), 5020)
            .final_read(9000, 1, json!({"A1": "booked:QQ", "A2": "booked:QQ", "A3": "free"}))
            .final_read(9000, 2, json!({"A1": "booked:QQ", "A2": "booked:QQ", "A3": "free"}));
        let v = h.check(&meta(2, 1000));
        assert_clean(&v);
        assert_eq!((v.ok, v.unknown, v.acknowledged), (1, 1, 0));
    }

    #[test]
    fn an_unknown_confirm_that_did_not_happen_is_fine() {
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10)
            .confirm(1, "H1", 20, Type::Info, json!({"error": "timeout"}), 5020)
            .final_read(9000, 1, json!({"A1": "free"}))
            .final_read(9000, 2, json!({"A1": "free"}));
        assert_clean(&h.check(&meta(2, 1000)));
    }

    #[test]
    fn a_booking_only_a_refused_confirm_accounts_for_is_unexpected() {
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10).confirm(1, "H1", 20, Type::Fail, json!({"status": 410}), 30).final_read(
            9000,
            1,
            json!({"A1": "booked:ZZ"}),
        );
        let v = h.check(&meta(1, 1000));
        assert_eq!(v.unexpected.len(), 1, "{v:#?}");
        assert!(v.unexpected[0].contains("ZZ") && v.unexpected[0].contains("refused: H1 (410)"), "{v:#?}");
        assert_eq!(v.violations.len(), 1, "{v:#?}");
    }

    #[test]
    fn a_hold_that_expires_too_early_is_a_violation() {
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10).held(2, &["A1"], "k2", "H2", 900, 950);
        let v = h.check(&meta(1, 1000));
        assert_eq!(v.violations.len(), 1, "{v:#?}");
        assert_eq!(v.violations[0].seat, "show 1 seat A1");
        // After the hold time (from the first request) the first hold may have expired.
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10).held(2, &["A1"], "k2", "H2", 900, 1000);
        assert_clean(&h.check(&meta(1, 1000)));
    }

    #[test]
    fn a_final_read_may_see_an_expired_hold_only_after_its_time() {
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10).final_read(500, 1, json!({"A1": "free"}));
        assert_eq!(h.check(&meta(1, 1000)).violations.len(), 1);
        let mut h = Hist::default();
        h.held(1, &["A1"], "k1", "H1", 0, 10).final_read(1500, 1, json!({"A1": "free"}));
        assert_clean(&h.check(&meta(1, 1000)));
    }

    #[test]
    fn a_seat_reported_taken_needs_a_holder() {
        let taken = json!({"status": 409, "taken": ["A1"]});
        let mut h = Hist::default();
        h.hold(2, &["A1", "A2"], "k2", 20, Type::Fail, taken.clone(), 30);
        let v = h.check(&meta(1, 60_000));
        assert_eq!(v.violations.len(), 1, "{v:#?}");
        assert_eq!(v.violations[0].seat, "show 1 seat A1");
        // A hold of unknown outcome may be the holder; the seat not taken was free.
        let mut h = Hist::default();
        h.hold(1, &["A1"], "k1", 0, Type::Info, json!({"error": "timeout"}), 5000)
            .hold(2, &["A1", "A2"], "k2", 20, Type::Fail, taken, 30)
            .held(3, &["A2"], "k3", "H3", 40, 50);
        assert_clean(&h.check(&meta(1, 60_000)));
    }

    #[test]
    fn a_retried_hold_with_the_same_key_is_the_same_hold() {
        let mut h = Hist::default();
        h.hold(1, &["A1"], "k1", 0, Type::Info, json!({"error": "503"}), 10)
            .held(1, &["A1"], "k1", "H1", 20, 30)
            .booked(1, "H1", "C1", &["A1"], 40, 50)
            .held(1, &["A1"], "k1", "H1", 60, 70)
            .final_read(9000, 1, json!({"A1": "booked:C1"}));
        assert_clean(&h.check(&meta(1, 1000)));
    }

    #[test]
    fn in_flight_operations_may_or_may_not_take_effect() {
        // Straight on stateright's tester: an operation that never returns may be placed (here
        // it must be, to explain the final read) or left out (here it must be).
        let act = Act::Hold { key: 1, expiry: u64::MAX, anon: false };
        let hold = Step { id: 0, act, invoke: 0, done: u64::MAX, pending: true };
        let seen = |s: Seen, id| Step { id, act: Act::Final(s), invoke: 5, done: 10, pending: false };
        let mut t = LinearizabilityTester::new(SeatSpec::new(2, vec![(10, 1)], 1000));
        t.on_invoke((2, 0), hold.clone()).unwrap();
        t.on_invret((0, 0), seen(Seen::Held(Some(1)), 1), ()).unwrap();
        assert_eq!(t.serialized_history().map(|h| h.len()), Some(2));
        let mut t = LinearizabilityTester::new(SeatSpec::new(2, vec![(10, 1)], 1000));
        t.on_invoke((2, 0), hold.clone()).unwrap();
        t.on_invret((0, 0), seen(Seen::Free, 1), ()).unwrap();
        assert_eq!(t.serialized_history().map(|h| h.len()), Some(1));
        // As `search` runs it: the unknown operation returns at the very end, so it may be
        // placed anywhere after its invoke; last, it changes nothing anyone saw.
        for (s, placed_first) in [(Seen::Held(Some(1)), true), (Seen::Free, false)] {
            let mut t = LinearizabilityTester::new(SeatSpec::new(2, vec![(10, 1)], 1000));
            t.on_invoke((2, 0), hold.clone()).unwrap();
            t.on_invret((0, 0), seen(s, 1), ()).unwrap();
            t.on_return((2, 0), ()).unwrap();
            let order: Vec<u32> = t.serialized_history().unwrap().iter().map(|(op, _)| op.id).collect();
            assert_eq!(order, if placed_first { vec![0, 1] } else { vec![1, 0] });
        }
        // Out of budget, the search ends without a panic message and says so.
        let mut t = LinearizabilityTester::new(SeatSpec::new(2, vec![(10, 1)], 0));
        t.on_invret((0, 0), seen(Seen::Free, 1), ()).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| t.is_consistent()));
        assert!(r.is_err_and(|p| p.is::<OutOfBudget>()));
    }

    #[test]
    fn divergent_logs_are_reported() {
        let e = |lsn: i64, digest: &str| LogEntry { lsn, epoch: 1, kind: "HoldPlaced".into(), digest: digest.into() };
        let mut logs = BTreeMap::new();
        logs.insert(1, vec![e(1, "aa"), e(2, "bb"), e(3, "cc")]);
        logs.insert(2, vec![e(1, "aa"), e(2, "xx"), e(3, "cc")]);
        logs.insert(3, vec![e(1, "aa"), e(2, "bb")]);
        logs.insert(4, vec![e(1, "aa"), e(2, "bb"), e(3, "cc")]);
        let v = Hist::default().check_logs(&meta(4, 1000), &logs);
        assert_eq!(v.divergent.len(), 2, "{v:#?}");
        assert!(v.divergent[0].starts_with("node 2's log differs from node 1's at lsn 2"), "{v:#?}");
        assert!(v.divergent[1].starts_with("node 3's log has no lsn 3"), "{v:#?}");
        logs.remove(&2);
        logs.remove(&3);
        assert_clean(&Hist::default().check_logs(&meta(2, 1000), &logs));
    }

    #[test]
    fn compacted_logs_are_compared_where_both_hold_entries() {
        let e =
            |lsn: i64, kind: &str, digest: &str| LogEntry { lsn, epoch: 1, kind: kind.into(), digest: digest.into() };
        let w = |lsn: i64, digest: &str| e(lsn, "HoldPlaced", digest);
        let m = |lsn: i64| e(lsn, "membership", "mm");
        // Node 1 compacted to 3 (keeping the membership at 1), node 2 to 5, node 3 never.
        let mut logs = BTreeMap::new();
        logs.insert(1, vec![m(1), w(4, "d"), w(5, "e"), w(6, "f"), w(7, "g")]);
        logs.insert(2, vec![m(1), w(6, "f"), w(7, "g")]);
        logs.insert(3, vec![m(1), w(2, "b"), w(3, "c"), w(4, "d"), w(5, "e"), w(6, "f"), w(7, "g")]);
        let bases = BTreeMap::from([(1, 3), (2, 5)]);
        assert_clean(&Hist::default().check_compacted(&meta(3, 1000), &logs, &bases));
        // Without the bases the same logs differ.
        assert!(!Hist::default().check_logs(&meta(3, 1000), &logs).divergent.is_empty());
        // An entry after the higher base that differs, one that is missing, one kept below a
        // base, and a log that ends early are all reported.
        let mut bad = logs.clone();
        bad.insert(2, vec![m(1), w(6, "x"), w(7, "g")]);
        let v = Hist::default().check_compacted(&meta(3, 1000), &bad, &bases);
        assert_eq!(v.divergent.len(), 1, "{v:#?}");
        assert!(v.divergent[0].starts_with("node 2's log differs from node 3's at lsn 6"), "{v:#?}");
        bad.insert(2, vec![m(1), w(7, "g")]);
        let v = Hist::default().check_compacted(&meta(3, 1000), &bad, &bases);
        assert!(v.divergent[0].starts_with("node 2's log has no lsn 6"), "{v:#?}");
        // Rows left at or below a base (a snapshot's, a compaction cut short) must agree
        // with the others' where they hold them too.
        bad.insert(2, vec![m(1), w(4, "d"), w(6, "f"), w(7, "g")]);
        assert_clean(&Hist::default().check_compacted(&meta(3, 1000), &bad, &bases));
        bad.insert(2, vec![m(1), w(4, "x"), w(6, "f"), w(7, "g")]);
        let v = Hist::default().check_compacted(&meta(3, 1000), &bad, &bases);
        assert!(v.divergent[0].starts_with("node 2's log differs from node 3's at lsn 4"), "{v:#?}");
        bad.insert(2, vec![m(1), w(6, "f")]);
        let v = Hist::default().check_compacted(&meta(3, 1000), &bad, &bases);
        assert!(v.divergent[0].starts_with("node 2's log has no lsn 7"), "{v:#?}");
        // A node compacted past the others' last entry reaches furthest only by its base.
        let logs = BTreeMap::from([(1, vec![m(1), w(2, "b")]), (2, vec![m(1)])]);
        let v = Hist::default().check_compacted(&meta(2, 1000), &logs, &BTreeMap::from([(2, 4)]));
        assert_eq!(v.divergent, vec!["node 1's log ends at 2 (base 0), node 2's at 4 (base 4)"], "{v:#?}");
    }

    #[test]
    fn availability_and_time_without_master() {
        let mut h = Hist::default();
        h.nemesis(0, "master", json!({"master": 1}))
            .nemesis(250, "master", json!({"master": null}))
            .nemesis(500, "master", json!({"master": null}))
            .nemesis(750, "master", json!({"master": 2}))
            .nemesis(1000, "kill", json!({"phase": "start", "detail": {"nodes": [1]}}))
            .op(1, F::Read, json!({"show": 1}), 1100, Type::Info, json!({"error": "timeout"}), 1200)
            .op(2, F::Read, json!({"show": 1}), 1150, Type::Ok, json!({"seats": {}}), 1160)
            .nemesis(2000, "kill", json!({"phase": "end"}))
            .op(1, F::Read, json!({"show": 1}), 2100, Type::Fail, json!({"status": 503}), 2200)
            .nemesis(3000, "heal", json!({"phase": "end"}));
        let v = h.check(&meta(1, 1000));
        assert_eq!(v.longest_without_master_ms, Some(500));
        assert_eq!(v.availability, vec![("kill".to_string(), 0.5, 2), ("none".to_string(), 0.0, 1)]);
        assert_eq!((v.ops, v.ok, v.fail, v.unknown), (3, 1, 1, 1));
        assert_eq!(Hist::default().check(&meta(1, 1000)).longest_without_master_ms, None);
    }

    #[test]
    fn a_broken_history_does_not_panic() {
        let mut h = Hist::default();
        h.op(1, F::Hold, json!("nonsense"), 0, Type::Ok, json!({"hold": 7}), 10)
            .op(2, F::Confirm, json!({"show": [1]}), 0, Type::Ok, json!({}), 10)
            .op(3, F::Confirm, json!({"show": 1, "hold": "nope"}), 0, Type::Ok, json!({"code": "C"}), 10)
            .op(4, F::Cancel, json!(null), 0, Type::Info, json!(null), 10)
            .op(5, F::Release, json!({"hold": {}}), 0, Type::Ok, json!(3), 10)
            .line(20, Process::Client(6), Some(1), Type::Ok, F::Hold, json!({}))
            .line(20, Process::Client(7), None, Type::Invoke, F::Fault("dance".into()), json!({}))
            .line(20, Process::Named("final".into()), None, Type::Ok, F::FinalRead, json!({"show": 1}))
            .line(20, Process::Named("final".into()), Some(1), Type::Ok, F::FinalRead, json!({"show": 1, "seats": 4}))
            .final_read(30, 2, json!({"A1": "booked:", "A2": 5, "A3": "weird"}))
            .nemesis(40, "master", json!({}))
            .nemesis(40, "kill", json!({"phase": 1}));
        let v = h.check(&meta(0, u64::MAX));
        assert!(!v.malformed.is_empty());
        assert!(!v.is_clean());
    }

    #[test]
    fn history_lines_round_trip_through_json() {
        let events = [
            Event {
                index: 3,
                time: 42,
                process: Process::nemesis(),
                node: None,
                kind: Type::Info,
                f: F::Fault("partition".into()),
                value: json!({"phase": "start", "detail": {"nodes": [1, 2]}}),
            },
            Event {
                index: 4,
                time: 43,
                process: Process::Client(7),
                node: Some(2),
                kind: Type::Ok,
                f: F::FinalRead,
                value: json!({"show": 510, "seats": {"A1": "booked:ABC"}}),
            },
        ];
        for e in &events {
            let text = serde_json::to_string(e).unwrap();
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(&back, e);
        }
        let text = serde_json::to_string(&events[0]).unwrap();
        assert!(text.contains(r#""process":"nemesis""#) && text.contains(r#""f":"partition""#), "{text}");
        assert!(!text.contains(r#""node":"#), "{text}");
        let text = serde_json::to_string(&events[1]).unwrap();
        assert!(text.contains(r#""process":7"#) && text.contains(r#""f":"final-read""#), "{text}");
    }

    /// A seat server that is linearizable by construction: every request takes effect at one
    /// instant between its invoke and its answer; some answers are lost (info), some requests
    /// are lost before they take effect; clients retry as the workload does.
    mod sim {
        use super::*;
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        use std::collections::BinaryHeap;

        #[derive(Clone, PartialEq)]
        enum St {
            Free,
            Held(String),
            Booked(String),
        }

        struct HoldS {
            seats: Vec<String>,
            expires: u64,
            ended: bool,
            code: Option<String>,
        }

        #[derive(Default)]
        struct Server {
            seats: BTreeMap<String, St>,
            holds: BTreeMap<String, HoldS>,
            by_key: BTreeMap<String, String>,
            cancelled: BTreeSet<String>,
            n: u64,
        }

        impl Server {
            fn expire(&mut self, t: u64) {
                for (id, h) in self.holds.iter_mut() {
                    if !h.ended && h.code.is_none() && h.expires <= t {
                        h.ended = true;
                        for s in &h.seats {
                            if self.seats[s] == St::Held(id.clone()) {
                                self.seats.insert(s.clone(), St::Free);
                            }
                        }
                        self.by_key.retain(|_, v| v != id);
                    }
                }
            }

            /// Applies a request at `t`: (type, extra fields of the answer).
            fn apply(&mut self, t: u64, hold_ms: u64, req: &Req) -> (Type, Value) {
                self.expire(t);
                match req {
                    Req::Hold { seats, key } => {
                        if let Some(id) = self.by_key.get(key) {
                            return (Type::Ok, json!({"hold": id, "expires_at": "x"}));
                        }
                        let taken: Vec<&String> = seats.iter().filter(|s| self.seats[*s] != St::Free).collect();
                        if !taken.is_empty() {
                            return (Type::Fail, json!({"status": 409, "taken": taken}));
                        }
                        self.n += 1;
                        let id = format!("H{}", self.n);
                        for s in seats {
                            self.seats.insert(s.clone(), St::Held(id.clone()));
                        }
                        let h = HoldS { seats: seats.clone(), expires: t + hold_ms * MS, ended: false, code: None };
                        self.holds.insert(id.clone(), h);
                        self.by_key.insert(key.clone(), id.clone());
                        (Type::Ok, json!({"hold": id, "expires_at": "x"}))
                    }
                    Req::Confirm { hold } => {
                        let h = self.holds.get_mut(hold).unwrap();
                        if let Some(c) = &h.code {
                            return (Type::Ok, json!({"code": c, "seats": h.seats}));
                        }
                        if h.ended {
                            return (Type::Fail, json!({"status": 410}));
                        }
                        self.n += 1;
                        let code = format!("C{}", self.n);
                        h.code = Some(code.clone());
                        for s in &h.seats {
                            self.seats.insert(s.clone(), St::Booked(code.clone()));
                        }
                        (Type::Ok, json!({"code": code, "seats": h.seats}))
                    }
                    Req::Release { hold } => {
                        let h = self.holds.get_mut(hold).unwrap();
                        if h.code.is_some() {
                            return (Type::Fail, json!({"status": 409, "taken": []}));
                        }
                        if h.ended {
                            return (Type::Fail, json!({"status": 410}));
                        }
                        h.ended = true;
                        for s in &h.seats {
                            self.seats.insert(s.clone(), St::Free);
                        }
                        self.by_key.retain(|_, v| v != hold);
                        (Type::Ok, json!({}))
                    }
                    Req::Cancel { code } => {
                        if self.cancelled.insert(code.clone()) {
                            for (_, st) in self.seats.iter_mut() {
                                if *st == St::Booked(code.clone()) {
                                    *st = St::Free;
                                }
                            }
                        }
                        (Type::Ok, json!({}))
                    }
                }
            }

            fn final_seats(&self) -> Value {
                let m: serde_json::Map<String, Value> = self
                    .seats
                    .iter()
                    .map(|(s, st)| {
                        let v = match st {
                            St::Free => "free".to_string(),
                            St::Held(h) => format!("held:{h}"),
                            St::Booked(c) => format!("booked:{c}"),
                        };
                        (s.clone(), json!(v))
                    })
                    .collect();
                Value::Object(m)
            }
        }

        #[derive(Clone)]
        enum Req {
            Hold { seats: Vec<String>, key: String },
            Confirm { hold: String },
            Release { hold: String },
            Cancel { code: String },
        }

        impl Req {
            fn line(&self) -> (F, Value) {
                match self {
                    Req::Hold { seats, key } => (F::Hold, json!({"show": 1, "seats": seats, "key": key})),
                    Req::Confirm { hold } => (F::Confirm, json!({"show": 1, "hold": hold})),
                    Req::Release { hold } => (F::Release, json!({"show": 1, "hold": hold})),
                    Req::Cancel { code } => (F::Cancel, json!({"show": 1, "code": code})),
                }
            }
        }

        /// Runs `clients` clients for `ops` requests each over `seats` seats. With `break_at`,
        /// the server silently drops every hold at that time (bookings stay).
        pub fn run(seed: u64, clients: u64, ops: usize, seats: usize, hold_ms: u64, break_at: Option<u64>) -> Hist {
            let mut rng = StdRng::seed_from_u64(seed);
            let labels: Vec<String> = (1..=seats).map(|i| format!("A{i}")).collect();
            let mut server = Server::default();
            for l in &labels {
                server.seats.insert(l.clone(), St::Free);
            }
            let mut h = Hist::default();
            // (Reverse(time), client, phase): 0 invoke, 1 take effect, 2 answer
            let mut queue: BinaryHeap<(std::cmp::Reverse<u64>, u64, u8)> = BinaryHeap::new();
            let mut next: Vec<Option<(Req, usize)>> = vec![None; clients as usize];
            let mut answer: Vec<Option<(Type, Value)>> = vec![None; clients as usize];
            let mut left = vec![ops; clients as usize];
            for c in 0..clients {
                queue.push((std::cmp::Reverse(rng.gen_range(0..50)), c, 0));
            }
            let mut broken = false;
            let mut end = 0;
            while let Some((std::cmp::Reverse(t), c, phase)) = queue.pop() {
                end = end.max(t);
                if let (Some(b), false) = (break_at, broken) {
                    if t >= b * MS {
                        broken = true;
                        for st in server.seats.values_mut() {
                            if matches!(st, St::Held(_)) {
                                *st = St::Free;
                            }
                        }
                    }
                }
                let ci = c as usize;
                match phase {
                    0 => {
                        if left[ci] == 0 {
                            continue;
                        }
                        left[ci] -= 1;
                        let req = match next[ci].take() {
                            Some(r) => r,
                            None => {
                                let n = rng.gen_range(1..=3.min(seats));
                                let mut s: Vec<String> = Vec::new();
                                while s.len() < n {
                                    let l = labels[rng.gen_range(0..seats)].clone();
                                    if !s.contains(&l) {
                                        s.push(l);
                                    }
                                }
                                (Req::Hold { seats: s, key: format!("k{c}-{}", left[ci]) }, 0)
                            }
                        };
                        let (f, v) = req.0.line();
                        h.lines.push(Event {
                            index: 0,
                            time: t,
                            process: Process::Client(c),
                            node: Some(1),
                            kind: Type::Invoke,
                            f,
                            value: v,
                        });
                        next[ci] = Some(req);
                        queue.push((std::cmp::Reverse(t + rng.gen_range(1..30) * MS / 10), c, 1));
                    }
                    1 => {
                        let (req, _) = next[ci].clone().unwrap();
                        // 4 % of requests are lost before they take effect.
                        answer[ci] = if rng.gen_bool(0.04) { None } else { Some(server.apply(t, hold_ms, &req)) };
                        queue.push((std::cmp::Reverse(t + rng.gen_range(1..30) * MS / 10), c, 2));
                    }
                    _ => {
                        let (req, tries) = next[ci].take().unwrap();
                        let (f, v) = req.line();
                        // 6 % of answers are lost.
                        let got = answer[ci].take().filter(|_| !rng.gen_bool(0.06));
                        let (kind, extra) = got.clone().unwrap_or((Type::Info, json!({"error": "timeout"})));
                        h.lines.push(Event {
                            index: 0,
                            time: t,
                            process: Process::Client(c),
                            node: Some(1),
                            kind,
                            f,
                            value: merge(&v, &extra),
                        });
                        next[ci] = match (got, &req) {
                            (None, _) if tries < 2 => Some((req.clone(), tries + 1)),
                            (Some((Type::Ok, a)), Req::Hold { .. }) => {
                                let hold = a["hold"].as_str().unwrap().to_string();
                                let roll: f64 = rng.gen();
                                if roll < 0.7 {
                                    Some((Req::Confirm { hold }, 0))
                                } else if roll < 0.8 {
                                    Some((Req::Release { hold }, 0))
                                } else {
                                    None
                                }
                            }
                            (Some((Type::Ok, a)), Req::Confirm { .. }) if rng.gen_bool(0.5) => {
                                Some((Req::Cancel { code: a["code"].as_str().unwrap().to_string() }, 0))
                            }
                            _ => None,
                        };
                        queue.push((std::cmp::Reverse(t + rng.gen_range(1..40) * MS / 10), c, 0));
                    }
                }
            }
            let fin = end + 100 * MS;
            server.expire(fin);
            for node in [1, 2] {
                let v = json!({"show": 1, "seats": server.final_seats()});
                h.lines.push(Event {
                    index: 0,
                    time: fin,
                    process: Process::Named("final".into()),
                    node: Some(node),
                    kind: Type::Ok,
                    f: F::FinalRead,
                    value: v,
                });
            }
            h
        }
    }

    #[test]
    fn a_simulated_linearizable_server_is_clean() {
        for seed in 0..40 {
            let h = sim::run(seed, 6, 25, 4, 40, None);
            let v = h.check(&meta(2, 40));
            assert!(v.is_clean() && v.unknown > 0, "seed {seed}: {v:#?}");
        }
    }

    #[test]
    fn a_simulated_server_that_drops_holds_is_caught() {
        let mut caught = 0;
        for seed in 0..20 {
            let h = sim::run(seed, 6, 25, 4, 10_000, Some(50));
            let v = h.check(&meta(2, 10_000));
            assert!(v.lost.is_empty() && v.undecided.is_empty(), "seed {seed}: {v:#?}");
            caught += usize::from(!v.violations.is_empty());
        }
        assert!(caught >= 15, "caught {caught} of 20");
    }

    /// `cargo test --release --bin campaign checker_speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn checker_speed() {
        let sizes = [(10, 300, 8, None), (10, 300, 8, Some(100)), (16, 1000, 10, None), (16, 1000, 10, Some(100))];
        for (clients, ops, seats, broken) in sizes {
            let h = sim::run(7, clients, ops, seats, 500, broken);
            let t = std::time::Instant::now();
            let v = h.check(&meta(2, 500));
            eprintln!(
                "{clients} clients x {ops} ops on {seats} seats, broken {broken:?}: {} ops ({} unknown) in {:?}: {} violations, {} undecided, {} lost",
                v.ops,
                v.unknown,
                t.elapsed(),
                v.violations.len(),
                v.undecided.len(),
                v.lost.len()
            );
            match broken {
                None => assert!(v.is_clean(), "{v:#?}"),
                Some(_) => eprintln!("  first: {:#?}", v.violations.first()),
            }
        }
    }
}
