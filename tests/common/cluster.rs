//! A cluster of real `marquee serve` processes on loopback, each with its own fresh schema,
//! and a recorder of every client operation for checking the end state against history.
use super::{fresh_db_name, server_url, show_change};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SECRET: &str = "cluster-test-secret-0123456789";
/// Every node's admin password.
pub const ADMIN_PASSWORD: &str = "cluster admin password";

pub struct Node {
    pub id: u64,
    pub port: u16,
    /// The node-to-node listener's port (INTERNAL_BIND), when it has its own; the peers
    /// then call each other there.
    pub internal_port: Option<u16>,
    pub db_name: String,
    child: Option<Child>,
    log: String,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    paused: Vec<bool>,
    pub client: awc::Client,
    pub show: i64,
    /// Settings every node starts with, besides the cluster's own (see `start_with`).
    env: Vec<(String, String)>,
}

/// A free port below Linux's ephemeral range, so no outgoing connection takes it between
/// now and the node's start.
fn free_port() -> u16 {
    use rand::Rng;
    loop {
        let port = rand::thread_rng().gen_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Cluster {
    /// Starts `n` nodes; node 1's database is seeded with one show of `rows` x `seats`
    /// before start, so the first master has to pull it (or ship it) to the others.
    pub async fn start(n: usize, rows: usize, seats: usize) -> Cluster {
        // Every test client is 127.0.0.1: the seat-spinning limits are lifted.
        Self::launch(n, rows, seats, false, &marquee::config::LOAD_TEST_LIMITS).await
    }

    /// As [`Cluster::start`], with each node's node-to-node endpoints on a listener of their
    /// own (INTERNAL_BIND) when `internal_listeners`; PEERS then names those.
    pub async fn start_with(n: usize, rows: usize, seats: usize, internal_listeners: bool) -> Cluster {
        Self::launch(n, rows, seats, internal_listeners, &marquee::config::LOAD_TEST_LIMITS).await
    }

    /// A cluster whose nodes start with `env` set (a test of the limits sets its own).
    pub async fn start_with_env(n: usize, rows: usize, seats: usize, env: &[(&str, &str)]) -> Cluster {
        Self::launch(n, rows, seats, false, env).await
    }

    async fn launch(n: usize, rows: usize, seats: usize, internal_listeners: bool, env: &[(&str, &str)]) -> Cluster {
        let tag = fresh_db_name();
        let mut ports = std::collections::BTreeSet::new();
        while ports.len() < 2 * n {
            ports.insert(free_port());
        }
        let mut ports = ports.into_iter();
        let nodes: Vec<Node> = (1..=n as u64)
            .map(|id| Node {
                id,
                port: ports.next().unwrap(),
                internal_port: ports.next().filter(|_| internal_listeners),
                db_name: format!("{tag}_{id}"),
                child: None,
                log: String::new(),
            })
            .collect();
        // Seed node 1 offline, through the same log writer a node uses.
        let url = format!("{}/{}", server_url(), nodes[0].db_name);
        let mut settings = super::test_settings(&nodes[0].db_name);
        settings.database_url = url;
        let db = marquee::startup::open_database(&settings).expect("seed database");
        let writer = marquee::startup::start_log(&db).expect("seed writer");
        let (change, show) = show_change(100, rows, seats, chrono::Duration::days(2));
        writer.append(marquee::wal::Change::Catalog(Box::new(change))).await.expect("seed");
        let paused = vec![false; n];
        let mut c = Cluster {
            nodes,
            paused,
            client: awc::Client::builder().timeout(Duration::from_secs(10)).disable_redirects().finish(),
            show,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        for i in 0..n {
            c.spawn(i);
        }
        if c.wait_for_master(Duration::from_secs(30)).await.is_none() {
            panic!("no master was elected\n{}", c.tail_logs());
        }
        c
    }

    fn peers_of(&self, i: usize) -> String {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| format!("{}@127.0.0.1:{}", n.id, n.internal_port.unwrap_or(n.port)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `marquee` binary with node `i`'s environment (what `spawn` runs it with), to run
    /// one of its commands as an operator would on that node.
    pub fn command(&self, i: usize) -> Command {
        let peers = self.peers_of(i);
        let root = env!("CARGO_MANIFEST_DIR");
        let node = &self.nodes[i];
        let mut command = Command::new(env!("CARGO_BIN_EXE_marquee"));
        match node.internal_port {
            Some(internal) => command.env("INTERNAL_BIND", format!("127.0.0.1:{internal}")),
            None => command.env_remove("INTERNAL_BIND"),
        };
        command
            .env("NODE_ID", node.id.to_string())
            .env("PEERS", peers)
            .env("CLUSTER_SECRET", SECRET)
            .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("DATABASE_URL", format!("{}/{}", server_url(), node.db_name))
            .env("MARQUEE_BIND", format!("127.0.0.1:{}", node.port))
            .env("MARQUEE_WORKERS", "2")
            .env("DB_POOL_SIZE", "6")
            .env("MARQUEE_TEMPLATES", format!("{root}/templates"))
            .env("MARQUEE_ASSETS", format!("{root}/assets"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(
                "RUST_LOG",
                std::env::var("CLUSTER_LOG").unwrap_or_else(|_| "info,actix_web=warn,actix_server=warn".into()),
            );
        command
    }

    pub fn spawn(&mut self, i: usize) {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut command = self.command(i);
        let node = &mut self.nodes[i];
        node.log = format!("{root}/target/cluster-logs/{}.log", node.db_name);
        std::fs::create_dir_all(format!("{root}/target/cluster-logs")).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&node.log).unwrap();
        let child = command.arg("serve").stdout(Stdio::null()).stderr(log).spawn().expect("start marquee");
        node.child = Some(child);
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.nodes[i].port, path)
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops a node as an operator does (SIGTERM) and waits for it to exit (at most 15 s,
    /// then it is killed); returns how long it took.
    pub async fn stop(&mut self, i: usize) -> Duration {
        let began = Instant::now();
        self.signal(i, "-TERM");
        if let Some(mut c) = self.nodes[i].child.take() {
            while began.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = c.try_wait() {
                    return began.elapsed();
                }
                actix_rt::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        began.elapsed()
    }

    /// The node's log so far.
    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    fn signal(&self, i: usize, sig: &str) {
        if let Some(c) = &self.nodes[i].child {
            Command::new("kill").args([sig, &c.id().to_string()]).status().expect("kill");
        }
    }

    pub fn pause(&mut self, i: usize) {
        self.signal(i, "-STOP");
        self.paused[i] = true;
    }

    pub fn resume(&mut self, i: usize) {
        self.signal(i, "-CONT");
        self.paused[i] = false;
    }

    /// Started and not paused.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some() && !self.paused[i]
    }

    pub async fn status(&self, i: usize) -> Option<Value> {
        let mut res = self.client.get(self.url(i, "/api/cluster")).timeout(Duration::from_secs(2)).send().await.ok()?;
        res.json::<Value>().limit(1 << 20).await.ok()
    }

    /// Waits until the running nodes agree on one writable master; returns its index.
    pub async fn wait_for_master(&self, within: Duration) -> Option<usize> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let mut masters = Vec::new();
            let mut agreed = true;
            for i in 0..self.nodes.len() {
                if !self.is_running(i) {
                    continue;
                }
                match self.status(i).await {
                    Some(s) => {
                        if s["role"] == "master" && s["writable"] == true {
                            masters.push(i);
                        }
                        if s["master_id"].as_u64().is_none() {
                            agreed = false;
                        }
                    }
                    None => agreed = false,
                }
            }
            if masters.len() == 1 && agreed {
                let m = masters[0];
                let id = self.nodes[m].id;
                let mut all = true;
                for i in 0..self.nodes.len() {
                    if self.is_running(i)
                        && self.status(i).await.map(|s| s["master_id"].as_u64() != Some(id)).unwrap_or(true)
                    {
                        all = false;
                    }
                }
                if all {
                    return Some(m);
                }
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// The last LSN node `i`'s log writer has stored and applied (`/api/stats`); the
    /// cluster status's `last_lsn` may run ahead of it while a write is under way.
    pub async fn applied(&self, i: usize) -> Option<i64> {
        let mut res = self.client.get(self.url(i, "/api/stats")).timeout(Duration::from_secs(2)).send().await.ok()?;
        res.json::<Value>().limit(1 << 20).await.ok()?["last_lsn"].as_i64()
    }

    /// Waits until every running node's log is as long as the master's, stored and applied.
    pub async fn wait_converged(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let mut lsns = Vec::new();
            for i in 0..self.nodes.len() {
                if self.is_running(i) {
                    lsns.push(self.status(i).await.and_then(|s| s["last_lsn"].as_i64()));
                    lsns.push(self.applied(i).await);
                }
            }
            if lsns.iter().all(|l| l.is_some() && *l == lsns[0]) {
                return true;
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    pub fn conn(&self, i: usize) -> MysqlConnection {
        conn_to(&self.nodes[i].db_name)
    }

    /// Confirmed bookings on node `i`: code → sorted seats.
    pub fn bookings(&self, i: usize) -> BTreeMap<String, Vec<String>> {
        bookings_in(&mut self.conn(i))
    }

    /// The log as (lsn, epoch, lamport, kind, origin) on node `i`.
    pub fn log(&self, i: usize) -> Vec<(i64, i64, i64, String, i64)> {
        log_in(&mut self.conn(i))
    }

    pub fn tail_logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(&n.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!("--- node {} ---\n{}", n.id, lines[lines.len().saturating_sub(30)..].join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A connection to the database `db_name` on the test server.
pub fn conn_to(db_name: &str) -> MysqlConnection {
    MysqlConnection::establish(&format!("{}/{}", server_url(), db_name)).expect("node database")
}

/// Confirmed bookings in a database: code → sorted seats.
pub fn bookings_in(conn: &mut MysqlConnection) -> BTreeMap<String, Vec<String>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        code: String,
        #[diesel(sql_type = Text)]
        seats: String,
    }
    let rows: Vec<Row> =
        diesel::sql_query("SELECT code, seats FROM bookings WHERE state = 'confirmed'").load(conn).unwrap();
    rows.into_iter()
        .map(|r| {
            let mut s: Vec<String> = r.seats.split(',').map(str::to_string).collect();
            s.sort();
            (r.code, s)
        })
        .collect()
}

/// A database's log as (lsn, epoch, lamport, kind, origin).
pub fn log_in(conn: &mut MysqlConnection) -> Vec<(i64, i64, i64, String, i64)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        lsn: i64,
        #[diesel(sql_type = BigInt)]
        epoch: i64,
        #[diesel(sql_type = BigInt)]
        lamport: i64,
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = BigInt)]
        origin: i64,
    }
    let rows: Vec<Row> =
        diesel::sql_query("SELECT lsn, epoch, lamport, kind, origin FROM write_log ORDER BY lsn").load(conn).unwrap();
    rows.into_iter().map(|r| (r.lsn, r.epoch, r.lamport, r.kind, r.origin)).collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.resume(i);
            self.kill(i);
        }
        if std::thread::panicking() {
            // Keep the evidence of a failed test.
            eprintln!("kept databases: {:?}", self.nodes.iter().map(|n| &n.db_name).collect::<Vec<_>>());
            return;
        }
        if let Ok(mut c) = MysqlConnection::establish(&server_url()) {
            for n in &self.nodes {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS `{}`", n.db_name)).execute(&mut c);
            }
        }
    }
}

/// What happened to one client operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Acknowledged: the booking code.
    Booked(String),
    /// Refused with a definite answer (seat taken, ...): nothing was done.
    Failed(u16),
    /// No answer, or an answer that says the outcome is unknown.
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct Op {
    pub client: usize,
    pub node: usize,
    pub seats: Vec<String>,
    pub invoked: Instant,
    pub completed: Instant,
    pub outcome: Outcome,
}

/// Every client operation, as it happened.
#[derive(Default)]
pub struct History(pub Mutex<Vec<Op>>);

impl History {
    pub fn record(&self, op: Op) {
        self.0.lock().unwrap().push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.0.lock().unwrap().clone()
    }

    /// Checks a node's final bookings against the history: every acknowledged booking is
    /// there with its seats (else a lost write), and no seat is in two bookings (a double
    /// sale). Returns (lost, double sales).
    pub fn check(&self, bookings: &BTreeMap<String, Vec<String>>) -> (Vec<String>, Vec<String>) {
        let mut lost = Vec::new();
        for op in self.ops() {
            if let Outcome::Booked(code) = &op.outcome {
                let mut want = op.seats.clone();
                want.sort();
                if bookings.get(code) != Some(&want) {
                    lost.push(format!("{code} {:?}", op.seats));
                }
            }
        }
        let mut owner: HashMap<&str, &str> = HashMap::new();
        let mut doubles = Vec::new();
        for (code, seats) in bookings {
            for s in seats {
                if let Some(other) = owner.insert(s, code) {
                    doubles.push(format!("{s}: {other} and {code}"));
                }
            }
        }
        (lost, doubles)
    }
}

/// One booking attempt through node `node`: hold `seats`, then confirm.
pub async fn book(client: &awc::Client, base: &str, show: i64, seats: &[String], who: usize) -> Outcome {
    let key = format!("c{who}-{}", marquee::domain::random_token(12));
    let res = client
        .post(format!("{base}/api/shows/{show}/holds"))
        .insert_header(("Idempotency-Key", key))
        .send_json(&serde_json::json!({ "seats": seats }))
        .await;
    let mut res = match res {
        Ok(r) => r,
        Err(e) => return Outcome::Unknown(format!("hold: {e}")),
    };
    let status = res.status().as_u16();
    let body: Value = res.json().limit(1 << 20).await.unwrap_or(Value::Null);
    match status {
        201 => {}
        503 | 500 => return Outcome::Unknown(format!("hold {status}: {}", body["error"])),
        s => return Outcome::Failed(s),
    }
    let hold = body["hold_id"].as_str().unwrap_or_default().to_string();
    let res = client
        .post(format!("{base}/api/holds/{hold}/confirm"))
        .send_json(&serde_json::json!({ "name": format!("Client {who}"), "email": format!("c{who}@example.com") }))
        .await;
    let mut res = match res {
        Ok(r) => r,
        Err(e) => return Outcome::Unknown(format!("confirm: {e}")),
    };
    let status = res.status().as_u16();
    let body: Value = res.json().limit(1 << 20).await.unwrap_or(Value::Null);
    match status {
        201 => Outcome::Booked(body["code"].as_str().unwrap_or_default().to_string()),
        503 | 500 => Outcome::Unknown(format!("confirm {status}: {}", body["error"])),
        // The hold was acknowledged but the booking refused: nothing booked.
        s => Outcome::Failed(s),
    }
}
