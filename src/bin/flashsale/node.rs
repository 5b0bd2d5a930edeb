//! The scratch schema and the node under test, cleaned up on drop (errors, panics, ctrl-c),
//! and the seeding of shows through the write log, as an import does.
use crate::Options;
use diesel::mysql::MysqlConnection;
use diesel::{Connection, RunQueryDsl};
use marquee::catalog::layout::layout_change;
use marquee::config::Settings;
use marquee::db::models::{Movie, Show, Theater};
use marquee::startup::{open_database, start_log};
use marquee::wal::change::CatalogChange;
use marquee::wal::Change;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Scratch {
    pub server: String,
    pub name: String,
    pub keep: bool,
    pub node: Option<Child>,
    /// Nodes 2.. of a cluster run: their schema and process.
    pub others: Vec<(String, Child)>,
    /// The master's process id (node 1's when there is no cluster).
    pub master_pid: Option<u32>,
}

impl Scratch {
    pub fn new(opts: &Options) -> Self {
        let name = format!("marquee_flash_{}", marquee::domain::random_token(10).to_lowercase());
        Self {
            server: opts.db_server.clone(),
            name,
            keep: opts.keep_db,
            node: None,
            others: Vec::new(),
            master_pid: None,
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    pub fn connect(&self) -> Result<MysqlConnection, String> {
        MysqlConnection::establish(&self.url()).map_err(|e| format!("cannot connect to {}: {e}", self.server))
    }

    /// Starts `marquee serve` on a free loopback port and waits for /healthz.
    pub async fn start_node(&mut self, opts: &Options, stop: &AtomicBool) -> Result<String, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut cmd = Command::new(&opts.marquee);
        cmd.arg("serve")
            .env("DATABASE_URL", self.url())
            .env("MARQUEE_BIND", format!("127.0.0.1:{port}"))
            .envs(marquee::config::LOAD_TEST_LIMITS)
            .env("RUST_LOG", &opts.node_log);
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for (var, dir) in [("MARQUEE_TEMPLATES", "templates"), ("MARQUEE_ASSETS", "assets")] {
            if std::env::var_os(var).is_none() && root.join(dir).is_dir() {
                cmd.env(var, root.join(dir));
            }
        }
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", opts.marquee.display()))?;
        self.node = Some(child);
        let base = format!("http://127.0.0.1:{port}");
        let client = awc::Client::builder().timeout(Duration::from_secs(2)).finish();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) && !stop.load(Ordering::SeqCst) {
            if let Some(Ok(Some(status))) = self.node.as_mut().map(Child::try_wait) {
                return Err(format!("the node exited at start ({status})"));
            }
            if let Ok(res) = client.get(format!("{base}/healthz")).send().await {
                if res.status().is_success() {
                    return Ok(base);
                }
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the node did not answer /healthz within 60 s".into())
    }

    /// `error`, and the node's exit status if it has exited.
    pub fn explain(&mut self, error: String) -> String {
        match self.node.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => format!("{error} (the node has exited: {status})"),
            _ => format!("{error} (the node is still running)"),
        }
    }

    /// The cluster's other nodes (none when there is no cluster).
    pub fn follower_pids(&self) -> Vec<u32> {
        let master = self.node_pid();
        self.node
            .iter()
            .map(Child::id)
            .chain(self.others.iter().map(|o| o.1.id()))
            .filter(|p| Some(*p) != master)
            .collect()
    }

    pub fn node_pid(&self) -> Option<u32> {
        self.master_pid.or_else(|| self.node.as_ref().map(Child::id))
    }

    /// Starts `n` nodes as a cluster on loopback (node 1 on the seeded schema, the others on
    /// fresh ones, which the master fills by replication) and waits until a master takes
    /// writes and every node holds the whole log. Returns every node's URL and the master's.
    pub async fn start_cluster(
        &mut self,
        opts: &Options,
        stop: &AtomicBool,
        n: usize,
    ) -> Result<(Vec<String>, String), String> {
        use rand::Rng;
        let mut ports = Vec::new();
        while ports.len() < n {
            let p: u16 = rand::thread_rng().gen_range(20_000..32_000);
            if !ports.contains(&p) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
                ports.push(p);
            }
        }
        let secret = marquee::domain::random_token(32);
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for i in 0..n {
            let schema = if i == 0 { self.name.clone() } else { format!("{}_{}", self.name, i + 1) };
            let peers: Vec<String> =
                (0..n).filter(|j| *j != i).map(|j| format!("{}@127.0.0.1:{}", j + 1, ports[j])).collect();
            let mut cmd = Command::new(&opts.marquee);
            cmd.arg("serve")
                .env("NODE_ID", (i + 1).to_string())
                .env("PEERS", peers.join(","))
                .env("CLUSTER_SECRET", &secret)
                .env("DATABASE_URL", format!("{}/{}", self.server, schema))
                .env("MARQUEE_BIND", format!("127.0.0.1:{}", ports[i]))
                .envs(marquee::config::LOAD_TEST_LIMITS)
                .env("RUST_LOG", &opts.node_log);
            for (var, dir) in [("MARQUEE_TEMPLATES", "templates"), ("MARQUEE_ASSETS", "assets")] {
                if std::env::var_os(var).is_none() && root.join(dir).is_dir() {
                    cmd.env(var, root.join(dir));
                }
            }
            let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", opts.marquee.display()))?;
            if i == 0 {
                self.node = Some(child);
            } else {
                self.others.push((schema, child));
            }
        }
        let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
        let client = awc::Client::builder().timeout(Duration::from_secs(2)).finish();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(90) && !stop.load(Ordering::SeqCst) {
            let mut res = match client.get(format!("{}/api/cluster", bases[0])).send().await {
                Ok(r) => r,
                Err(_) => {
                    actix_rt::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let v: serde_json::Value = res.json().limit(1 << 20).await.unwrap_or_default();
            let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
            let master = nodes.iter().find(|x| x["role"] == "master").and_then(|x| x["id"].as_u64());
            let caught_up = nodes.len() == n && nodes.iter().all(|x| x["reachable"] == true && x["lag"] == 0);
            if let (Some(m), true) = (master, caught_up) {
                let idx = m as usize - 1;
                let status: serde_json::Value = match client.get(format!("{}/api/cluster", bases[idx])).send().await {
                    Ok(mut r) => r.json().limit(1 << 20).await.unwrap_or_default(),
                    Err(_) => serde_json::Value::Null,
                };
                if status["writable"] == true {
                    self.master_pid =
                        if idx == 0 { self.node.as_ref().map(Child::id) } else { Some(self.others[idx - 1].1.id()) };
                    return Ok((bases.clone(), bases[idx].clone()));
                }
            }
            actix_rt::time::sleep(Duration::from_millis(200)).await;
        }
        Err("the cluster did not elect a master and catch up within 90 s".into())
    }

    /// Waits until every node's log is as long as the master's (before the audit).
    pub async fn wait_converged(&self, base: &str) -> bool {
        let client = awc::Client::builder().timeout(Duration::from_secs(2)).finish();
        for _ in 0..300 {
            if let Ok(mut r) = client.get(format!("{base}/api/cluster")).send().await {
                let v: serde_json::Value = r.json().limit(1 << 20).await.unwrap_or_default();
                if v["nodes"].as_array().is_some_and(|n| n.iter().all(|x| x["lag"] == 0)) {
                    return true;
                }
            }
            actix_rt::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Each node's schema URL (node 1 first).
    pub fn schema_urls(&self) -> Vec<String> {
        std::iter::once(self.url()).chain(self.others.iter().map(|(s, _)| format!("{}/{}", self.server, s))).collect()
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 10 s.
    pub fn stop_node(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.others) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let Some(mut child) = self.node.take() else { return };
        if let Ok(None) = child.try_wait() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let asked = Instant::now();
            while asked.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.stop_node();
        if self.keep {
            eprintln!("flashsale: kept the schema {}", self.url());
            return;
        }
        match MysqlConnection::establish(&self.server) {
            Ok(mut c) => {
                let extra = (2..=9).map(|i| format!("{}_{i}", self.name));
                for name in std::iter::once(self.name.clone()).chain(extra) {
                    if let Err(e) = diesel::sql_query(format!("DROP DATABASE IF EXISTS `{name}`")).execute(&mut c) {
                        eprintln!("flashsale: could not drop {name}: {e}");
                    }
                }
            }
            Err(e) => eprintln!("flashsale: could not drop {}: {e}", self.name),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Seeding, through the write log as an import does

pub struct Seeded {
    pub show_ids: Vec<i64>,
    /// Every seat label of the layout, front to back.
    pub labels: Vec<String>,
}

/// Creates and migrates the schema and writes `shows` shows of `rows` x `seats`, `per_theater`
/// shows to a theater (each theater has a layout of its own, as an import gives it), in
/// catalog changes of at most 2,000 shows.
pub async fn seed(
    scratch: &Scratch,
    shows: usize,
    per_theater: usize,
    rows: usize,
    seats: usize,
) -> Result<Seeded, String> {
    let mut settings = Settings::from_env().map_err(|e| e.to_string())?;
    settings.database_url = scratch.url();
    settings.db_pool_size = 2;
    let db = open_database(&settings).map_err(|e| e.to_string())?;
    let writer = start_log(&db).map_err(|e| e.to_string())?;
    let starts = chrono::Utc::now() + chrono::Duration::days(1);
    let tz = chrono_tz::America::Los_Angeles;
    let movies: Vec<Movie> = (0..shows.clamp(1, 20))
        .map(|m| Movie {
            id: 1 + m as i64,
            external_key: format!("flash sale movie {m}"),
            title: format!("Flash Sale {m}"),
            duration_minutes: Some(120),
            poster_url: None,
        })
        .collect();
    let mut show_ids = Vec::with_capacity(shows);
    for (chunk_no, chunk) in (0..shows).collect::<Vec<_>>().chunks(2_000).enumerate() {
        let mut change = CatalogChange::default();
        if chunk_no == 0 {
            change.movies = movies.clone();
        }
        for &i in chunk {
            let n = i as i64 + 1;
            let (theater, k) = ((i / per_theater) as i64 + 1, i % per_theater);
            let layout_id = 1_000 + theater;
            if k == 0 {
                let l = layout_change(layout_id, &format!("Hall {theater}"), rows, seats, rows / 2);
                change.layouts.extend(l.layouts);
                change.categories.extend(l.categories);
                change.rows.extend(l.rows);
                change.theaters.push(Theater {
                    id: 100_000 + theater,
                    external_id: format!("FLASH{theater}"),
                    tid: format!("F{theater}"),
                    name: format!("Flash Theater {theater}"),
                    latitude: 34.0,
                    longitude: -118.2,
                    timezone: "America/Los_Angeles".into(),
                    layout_id,
                });
            }
            // A theater's shows are 15 minutes apart, so (theater, movie, start) is unique.
            let start_utc = (starts + chrono::Duration::minutes(k as i64 * 15)).naive_utc();
            let local = start_utc.and_utc().with_timezone(&tz).naive_local();
            change.shows.push(Show {
                id: 1_000_000 + n,
                theater_id: 100_000 + theater,
                movie_id: movies[k % movies.len()].id,
                layout_id,
                local_date: local.date(),
                starts_at_local: local,
                starts_at_utc: start_utc,
                in_feed: true,
            });
            show_ids.push(1_000_000 + n);
        }
        writer.append(Change::Catalog(Box::new(change))).await.map_err(|e| format!("seeding failed: {e}"))?;
    }
    let sample = layout_change(0, "", rows, seats, 0);
    let labels =
        sample.rows.iter().flat_map(|r| (1..=r.seat_count).map(move |s| format!("{}{s}", r.row_label))).collect();
    Ok(Seeded { show_ids, labels })
}
