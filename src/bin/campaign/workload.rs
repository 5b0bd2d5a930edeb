//! The clients: each a loop of hold (1 to 4 seats, with an Idempotency-Key), confirm,
//! sometimes release or cancel, and seat-map reads from every node. Every request is an
//! operation in the history: `invoke`, then `ok`, `fail` (a definite refusal, or a
//! connection that never opened) or `info` (a timeout or a 5xx: the outcome is unknown).
//! After `info` the client retries with the same key or hold, as a real client would, and
//! records the retry as a new operation.
use crate::history::{merge, Process, Recorder, Type, F};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ShowInfo {
    pub id: i64,
    pub labels: Vec<String>,
}

/// The nodes clients may talk to now (id, base URL); the nemesis changes it as nodes join
/// and leave.
pub type Targets = Arc<Mutex<Vec<(u64, String)>>>;

pub struct Workload {
    pub shows: Vec<ShowInfo>,
    pub targets: Targets,
    pub rec: Arc<Recorder>,
    pub until: Instant,
    /// Bounds every loop: no client does more than this many operations.
    pub max_ops: usize,
}

/// How a request ended.
enum Answer {
    Ok(Value),
    Fail(u16, Value),
    Unknown(String),
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after an unknown outcome, with a growing pause: about 10 s in all.
const RETRIES: usize = 7;

fn client() -> awc::Client {
    awc::Client::builder().timeout(REQUEST_TIMEOUT).disable_redirects().finish()
}

async fn send(c: &awc::Client, method: &str, url: &str, body: Option<Value>, key: Option<&str>) -> Answer {
    let mut req = match method {
        "GET" => c.get(url),
        _ => c.post(url),
    };
    if let Some(k) = key {
        req = req.insert_header(("Idempotency-Key", k));
    }
    let res = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    };
    match res {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().limit(1 << 20).await.unwrap_or(Value::Null);
            match status {
                200..=299 => Answer::Ok(body),
                500..=599 => Answer::Unknown(format!("{status}: {}", body["error"].as_str().unwrap_or(""))),
                s => Answer::Fail(s, body),
            }
        }
        // Only a connection that never opened is a definite failure: nothing was sent.
        // awc also reports a pooled connection that dropped mid-request as a connect
        // error (`Disconnected`); that request may have arrived.
        Err(awc::error::SendRequestError::Connect(e)) if never_sent(&e) => {
            Answer::Fail(0, json!({ "error": e.to_string() }))
        }
        Err(e) => Answer::Unknown(e.to_string()),
    }
}

/// One request of an operation: what it is in the history and what goes on the wire.
#[derive(Clone)]
struct Request {
    f: F,
    /// The operation's `value` in the history (what the client asks).
    value: Value,
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// The Idempotency-Key header, for holds.
    key: Option<String>,
}

impl Request {
    fn post(f: F, value: Value, path: String, body: Option<Value>) -> Self {
        Request { f, value, method: "POST", path, body, key: None }
    }
}

fn never_sent(e: &awc::error::ConnectError) -> bool {
    use awc::error::ConnectError;
    match e {
        ConnectError::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        ConnectError::Timeout | ConnectError::Resolver(_) | ConnectError::NoRecords | ConnectError::Unresolved => true,
        _ => false,
    }
}

struct Client {
    process: u64,
    http: awc::Client,
    rng: StdRng,
    /// The last seat map this client read of each show.
    seen: BTreeMap<i64, BTreeMap<String, String>>,
    /// Its bookings not yet cancelled: (show, code, seats).
    mine: Vec<(i64, String, Value)>,
}

impl Workload {
    fn target(&self, process: u64, attempt: usize) -> Option<(u64, String)> {
        let t = self.targets.lock().unwrap();
        if t.is_empty() {
            return None;
        }
        Some(t[(process as usize + attempt) % t.len()].clone())
    }

    /// One request as one operation; returns its answer.
    async fn op(&self, c: &Client, attempt: usize, r: &Request) -> Answer {
        let Some((node, base)) = self.target(c.process, attempt) else {
            return Answer::Unknown("no node to talk to".into());
        };
        let (f, value) = (&r.f, &r.value);
        self.rec.record(Process::Client(c.process), Some(node), Type::Invoke, f.clone(), value.clone());
        let answer = send(&c.http, r.method, &format!("{base}{}", r.path), r.body.clone(), r.key.as_deref()).await;
        let (kind, v) = match &answer {
            Answer::Ok(body) => (Type::Ok, self.ok_value(f, value, body)),
            Answer::Fail(status, body) => {
                let mut extra = json!({ "status": status });
                if let Some(t) = body.get("taken") {
                    extra["taken"] = t.clone();
                }
                if let Some(e) = body.get("error") {
                    extra["error"] = e.clone();
                }
                (Type::Fail, merge(value, &extra))
            }
            Answer::Unknown(e) => (Type::Info, merge(value, &json!({ "error": e }))),
        };
        self.rec.record(Process::Client(c.process), Some(node), kind, f.clone(), v);
        answer
    }

    fn ok_value(&self, f: &F, value: &Value, body: &Value) -> Value {
        match f {
            F::Hold => merge(value, &json!({ "hold": body["hold_id"], "expires_at": body["expires_at"] })),
            F::Confirm => merge(value, &json!({ "code": body["code"], "seats": body["seats"] })),
            F::Read => {
                let mut seats = serde_json::Map::new();
                for row in body["rows"].as_array().into_iter().flatten() {
                    for s in row["seats"].as_array().into_iter().flatten() {
                        if let (Some(l), Some(st)) = (s["seat"].as_str(), s["state"].as_str()) {
                            seats.insert(l.to_string(), json!(st));
                        }
                    }
                }
                merge(value, &json!({ "seats": seats }))
            }
            _ => value.clone(),
        }
    }

    /// Sends one request until it has a definite answer or the retries run out; each try
    /// is its own operation.
    async fn with_retries(&self, c: &mut Client, r: Request) -> Answer {
        let mut attempt = 0;
        loop {
            let a = self.op(c, attempt, &r).await;
            let retry = match &a {
                Answer::Unknown(_) => true,
                // Never sent (the node is down): try another node.
                Answer::Fail(0, _) => true,
                // Busy: the same request is still being decided.
                Answer::Fail(409, b) => b["taken"].as_array().map(|t| t.is_empty()).unwrap_or(false) && r.f != F::Hold,
                _ => false,
            };
            attempt += 1;
            if !retry || attempt > RETRIES || Instant::now() >= self.until || crate::procs::interrupted() {
                return a;
            }
            let pause = c.rng.gen_range(300..1200) + 200 * attempt as u64;
            actix_rt::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    fn pick_seats(&self, c: &mut Client, show: &ShowInfo) -> Vec<String> {
        let n = c.rng.gen_range(1..=4usize);
        let believed_free: Vec<&String> = match c.seen.get(&show.id) {
            Some(m) => show.labels.iter().filter(|l| m.get(*l).map(|s| s == "free").unwrap_or(true)).collect(),
            None => show.labels.iter().collect(),
        };
        let pool: Vec<&String> =
            if c.rng.gen_bool(0.75) && believed_free.len() >= n { believed_free } else { show.labels.iter().collect() };
        let mut picked: Vec<String> = Vec::new();
        while picked.len() < n.min(pool.len()) {
            let s = pool[c.rng.gen_range(0..pool.len())].clone();
            if !picked.contains(&s) {
                picked.push(s);
            }
        }
        picked
    }

    async fn read(&self, c: &mut Client, show: i64) {
        let attempt = c.rng.gen_range(0..8);
        let value = json!({ "show": show });
        let r = Request {
            f: F::Read,
            value: value.clone(),
            method: "GET",
            path: format!("/api/shows/{show}/seats"),
            body: None,
            key: None,
        };
        if let Answer::Ok(body) = self.op(c, attempt, &r).await {
            if let Some(seats) = self.ok_value(&F::Read, &value, &body)["seats"].as_object() {
                c.seen.insert(
                    show,
                    seats.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect(),
                );
            }
        }
    }

    /// One client's loop, until the deadline or its bound on operations.
    pub async fn run_client(self: Rc<Self>, process: u64, seed: u64) {
        let mut c = Client {
            process,
            http: client(),
            rng: StdRng::seed_from_u64(seed ^ (process * 0x9E37_79B9)),
            seen: BTreeMap::new(),
            mine: Vec::new(),
        };
        let mut ops = 0;
        while Instant::now() < self.until && ops < self.max_ops && !crate::procs::interrupted() {
            ops += 1;
            let show = self.shows[c.rng.gen_range(0..self.shows.len())].clone();
            let roll: f64 = c.rng.gen();
            if roll < 0.25 {
                self.read(&mut c, show.id).await;
            } else if roll < 0.45 && !c.mine.is_empty() {
                // Seats come back: a booking of its own is cancelled, so the sale goes on.
                let i = c.rng.gen_range(0..c.mine.len());
                let (show, code, seats) = c.mine.swap_remove(i);
                self.cancel(&mut c, show, code, seats).await;
            } else {
                self.booking(&mut c, &show, ops).await;
            }
            let pause = c.rng.gen_range(20..150);
            actix_rt::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    async fn booking(&self, c: &mut Client, show: &ShowInfo, n: usize) {
        let seats = self.pick_seats(c, show);
        let key = format!("p{}-{n}-{}", c.process, c.rng.gen::<u32>());
        let value = json!({ "show": show.id, "seats": seats, "key": key });
        let path = format!("/api/shows/{}/holds", show.id);
        let mut r = Request::post(F::Hold, value, path, Some(json!({ "seats": seats })));
        r.key = Some(key);
        let hold = match self.with_retries(c, r).await {
            Answer::Ok(b) => b["hold_id"].as_str().unwrap_or_default().to_string(),
            _ => return,
        };
        let roll: f64 = c.rng.gen();
        let value = json!({ "show": show.id, "hold": hold });
        if roll < 0.1 {
            let path = format!("/api/holds/{hold}/release");
            self.with_retries(c, Request::post(F::Release, value, path, None)).await;
            return;
        }
        if roll < 0.18 {
            // Abandoned: it expires.
            return;
        }
        if c.rng.gen_bool(0.4) {
            // The visitor types a name and an email before confirming.
            let typing = c.rng.gen_range(500..3_000);
            actix_rt::time::sleep(Duration::from_millis(typing)).await;
        }
        let email = format!("p{}@example.com", c.process);
        let body = json!({ "name": format!("Client {}", c.process), "email": email });
        let path = format!("/api/holds/{hold}/confirm");
        let booked = self.with_retries(c, Request::post(F::Confirm, value, path, Some(body))).await;
        if let Answer::Ok(b) = booked {
            c.mine.push((show.id, b["code"].as_str().unwrap_or_default().to_string(), b["seats"].clone()));
        }
    }

    async fn cancel(&self, c: &mut Client, show: i64, code: String, seats: Value) {
        let email = format!("p{}@example.com", c.process);
        let value = json!({ "show": show, "code": code, "seats": seats });
        let path = format!("/api/bookings/{code}/cancel");
        self.with_retries(c, Request::post(F::Cancel, value, path, Some(json!({ "email": email })))).await;
    }
}
