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
}

impl Scratch {
    pub fn new(opts: &Options) -> Self {
        let name = format!("marquee_flash_{}", marquee::domain::random_token(10).to_lowercase());
        Self { server: opts.db_server.clone(), name, keep: opts.keep_db, node: None }
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

    pub fn node_pid(&self) -> Option<u32> {
        self.node.as_ref().map(Child::id)
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 10 s.
    pub fn stop_node(&mut self) {
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
                if let Err(e) = diesel::sql_query(format!("DROP DATABASE IF EXISTS `{}`", self.name)).execute(&mut c) {
                    eprintln!("flashsale: could not drop {}: {e}", self.name);
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
