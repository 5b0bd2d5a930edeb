//! `flashsale`: the load generator of issue 2. A flash sale over loopback HTTP through the
//! JSON API, measured with the load generator on the same machine as the node.
//!
//! It prepares everything itself: a fresh schema on the MariaDB server, shows seeded through
//! the write log, a `marquee serve` child on a free port. Then many clients each loop: pick a
//! show and two seats, `POST /api/shows/{id}/holds`, and on 201 `POST /api/holds/{id}/confirm`.
//! It prints throughput, latencies, errors and how the write log batched, checks the database
//! for double sales and lost bookings, stops the node and drops the schema (also on failure
//! and on ctrl-c).
//!
//! With `--memory-shows N` it instead seeds N small shows, loads every seat map once and
//! prints the node's resident memory before and after.
use actix_web::web::Bytes;
use awc::error::{PayloadError, SendRequestError};
use diesel::mysql::MysqlConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use futures::Stream;
use marquee::catalog::layout::layout_change;
use marquee::config::Settings;
use marquee::db::models::{Movie, Show, Theater};
use marquee::startup::{open_database, start_log};
use marquee::wal::change::CatalogChange;
use marquee::wal::Change;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: flashsale [options]            a flash sale: hold and confirm pairs of seats
       flashsale --memory-shows N     the node's memory with N shows loaded

options:
  --clients N        concurrent clients (256)
  --seconds S        longest load, in seconds (20); it ends sooner when every show sells out
  --shows N          shows on sale (10)
  --rows N --seats N layout of each show (25 x 40 for a sale, 12 x 16 with --memory-shows)
  --per-theater N    shows in each theater, which share its layout (1 for a sale, 40 with
                     --memory-shows)
  --pick free|random how a client picks its two seats (free): `free` takes seats that the
                     latest seat map shows free and no other client here is trying; `random`
                     takes any two seats, so 409s grow as shows fill. Maps are re-read every
                     200 ms (free) or 1 s (random), less often past 10 shows (~50 a second)
  --threads N        load-generator threads, each an actix System with its own client (1)
  --concurrency N    seat maps read at once with --memory-shows (32)
  --marquee BIN      the node binary (default: `marquee` beside this program)
  --db-server URL    MariaDB server without a database (MARQUEE_TEST_DATABASE_URL, else
                     mysql://root:marquee@127.0.0.1:3307)
  --keep-db          leave the schema behind (for a look at it afterwards)";

/// The longest a single request may take before it counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a client in `--pick free` mode sees a fresh seat map.
const MAP_REFRESH: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1).collect()) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("flashsale: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = actix_rt::System::new().block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = stop.clone();
        actix_rt::spawn(async move {
            if actix_rt::signal::ctrl_c().await.is_ok() {
                eprintln!("flashsale: interrupted; finishing the requests in flight, then cleaning up");
                watcher.store(true, Ordering::SeqCst);
            }
        });
        let result = match opts.memory_shows {
            Some(n) => memory(&opts, n, &stop).await,
            None => flash_sale(&opts, &stop).await,
        };
        (result, stop.load(Ordering::SeqCst))
    });
    match result {
        (_, true) => ExitCode::from(130),
        (Ok(true), _) => ExitCode::SUCCESS,
        (Ok(false), _) => ExitCode::FAILURE,
        (Err(e), _) => {
            eprintln!("flashsale: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// Options

#[derive(Debug, Clone, Copy, PartialEq)]
enum Pick {
    Free,
    Random,
}

#[derive(Debug, Clone)]
struct Options {
    db_server: String,
    marquee: PathBuf,
    clients: usize,
    seconds: f64,
    shows: usize,
    rows: usize,
    seats: usize,
    per_theater: usize,
    pick: Pick,
    threads: usize,
    memory_shows: Option<usize>,
    concurrency: usize,
    keep_db: bool,
}

impl Options {
    /// The options, or None when help was asked for.
    fn parse(args: Vec<String>) -> Result<Option<Self>, String> {
        let mut o = Options {
            db_server: std::env::var("MARQUEE_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "mysql://root:marquee@127.0.0.1:3307".into()),
            marquee: default_node_binary(),
            clients: 256,
            seconds: 20.0,
            shows: 10,
            rows: 0,
            seats: 0,
            per_theater: 0,
            pick: Pick::Free,
            threads: 1,
            memory_shows: None,
            concurrency: 32,
            keep_db: false,
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--db-server" => o.db_server = value()?.trim_end_matches('/').to_string(),
                "--marquee" => o.marquee = PathBuf::from(value()?),
                "--clients" => o.clients = number(&flag, &value()?, 1, 100_000)?,
                "--seconds" => {
                    let v = value()?;
                    o.seconds = v.parse().ok().filter(|s| (0.1..=3600.0).contains(s)).ok_or_else(|| {
                        format!("--seconds must be a number of seconds between 0.1 and 3600, not '{v}'")
                    })?;
                }
                "--shows" => o.shows = number(&flag, &value()?, 1, 10_000)?,
                "--rows" => o.rows = number(&flag, &value()?, 1, 600)?,
                "--seats" => o.seats = number(&flag, &value()?, 2, 999)?,
                "--per-theater" => o.per_theater = number(&flag, &value()?, 1, 1_000)?,
                "--pick" => {
                    o.pick = match value()?.as_str() {
                        "free" => Pick::Free,
                        "random" => Pick::Random,
                        other => return Err(format!("--pick is free or random, not '{other}'")),
                    }
                }
                "--threads" => o.threads = number(&flag, &value()?, 1, 64)?,
                "--memory-shows" => o.memory_shows = Some(number(&flag, &value()?, 1, 1_000_000)?),
                "--concurrency" => o.concurrency = number(&flag, &value()?, 1, 4096)?,
                "--keep-db" => o.keep_db = true,
                other => return Err(format!("unknown option '{other}'")),
            }
        }
        let (rows, seats) = if o.memory_shows.is_some() { (12, 16) } else { (25, 40) };
        if o.rows == 0 {
            o.rows = rows;
        }
        if o.seats == 0 {
            o.seats = seats;
        }
        if o.per_theater == 0 {
            o.per_theater = if o.memory_shows.is_some() { 40 } else { 1 };
        }
        o.threads = o.threads.min(o.clients);
        Ok(Some(o))
    }
}

fn number(flag: &str, v: &str, min: usize, max: usize) -> Result<usize, String> {
    v.parse().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| format!("{flag} must be {min}..={max}, not '{v}'"))
}

/// `marquee` beside this program (both are built into the same target directory).
fn default_node_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("marquee")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("target/release/marquee"))
}

// ---------------------------------------------------------------------------------------
// The scratch schema and the node, cleaned up on drop (errors, panics, ctrl-c)

struct Scratch {
    server: String,
    name: String,
    keep: bool,
    node: Option<Child>,
}

impl Scratch {
    fn new(opts: &Options) -> Self {
        let name = format!("marquee_flash_{}", marquee::domain::random_token(10).to_lowercase());
        Self { server: opts.db_server.clone(), name, keep: opts.keep_db, node: None }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    fn connect(&self) -> Result<MysqlConnection, String> {
        MysqlConnection::establish(&self.url()).map_err(|e| format!("cannot connect to {}: {e}", self.server))
    }

    /// Starts `marquee serve` on a free loopback port and waits for /healthz.
    async fn start_node(&mut self, opts: &Options, stop: &AtomicBool) -> Result<String, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut cmd = Command::new(&opts.marquee);
        cmd.arg("serve")
            .env("DATABASE_URL", self.url())
            .env("MARQUEE_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn");
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

    fn node_pid(&self) -> Option<u32> {
        self.node.as_ref().map(Child::id)
    }

    /// SIGTERM, then SIGKILL if it has not stopped within 10 s.
    fn stop_node(&mut self) {
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

struct Seeded {
    show_ids: Vec<i64>,
    /// Every seat label of the layout, front to back.
    labels: Vec<String>,
}

/// Creates and migrates the schema and writes `shows` shows of `rows` x `seats`, `per_theater`
/// shows to a theater (each theater has a layout of its own, as an import gives it), in
/// catalog changes of at most 2,000 shows.
async fn seed(
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

// ---------------------------------------------------------------------------------------
// HTTP helpers

fn http_client(connections: usize) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(connections).conn_keep_alive(Duration::from_secs(60)))
        .timeout(REQUEST_TIMEOUT)
        .disable_redirects()
        .finish()
}

/// What one request came back with.
enum Answer<T> {
    /// The expected status, with its body.
    Ok(T),
    /// Another status (its body is read and dropped, so the connection is reused).
    Status(u16),
    /// No HTTP answer (connect, timeout, broken body): a short description.
    Transport(String),
}

#[derive(Serialize)]
struct HoldRequest<'a> {
    seats: &'a [String; 2],
}

#[derive(Serialize)]
struct ConfirmRequest {
    name: String,
    email: String,
}

#[derive(Deserialize)]
struct HoldReply {
    hold_id: String,
}

#[derive(Deserialize)]
struct BookingReply {
    code: String,
    seats: Vec<String>,
}

#[derive(Deserialize)]
struct SeatMapReply {
    free: usize,
    rows: Vec<RowReply>,
}

#[derive(Deserialize)]
struct RowReply {
    seats: Vec<SeatReply>,
}

#[derive(Deserialize)]
struct SeatReply {
    seat: String,
    state: String,
}

impl SeatMapReply {
    fn free_seats(self) -> Vec<String> {
        self.rows.into_iter().flat_map(|r| r.seats).filter(|s| s.state == "free").map(|s| s.seat).collect()
    }
}

#[derive(Deserialize)]
struct StatsReply {
    log_transactions: u64,
    log_records: u64,
    shows_loaded: u64,
}

async fn answer<T: DeserializeOwned>(
    sent: Result<awc::ClientResponse<impl Stream<Item = Result<Bytes, PayloadError>> + Unpin>, SendRequestError>,
    expect: u16,
    limit: usize,
) -> Answer<T> {
    let mut res = match sent {
        Ok(res) => res,
        Err(e) => return Answer::Transport(transport_kind(&e.to_string())),
    };
    let status = res.status().as_u16();
    match res.body().limit(limit).await {
        Ok(body) if status == expect => match serde_json::from_slice(&body) {
            Ok(v) => Answer::Ok(v),
            Err(e) => Answer::Transport(format!("{status} with an unexpected body ({e})")),
        },
        Ok(_) => Answer::Status(status),
        Err(e) => Answer::Transport(transport_kind(&format!("body: {e}"))),
    }
}

async fn post<T: DeserializeOwned>(client: &awc::Client, url: String, body: &impl Serialize) -> Answer<T> {
    answer(client.post(url).send_json(body).await, 201, 1 << 20).await
}

async fn get<T: DeserializeOwned>(client: &awc::Client, url: String) -> Answer<T> {
    answer(client.get(url).send().await, 200, 64 << 20).await
}

/// Error messages carry addresses and numbers; keep the kind so they can be counted.
fn transport_kind(msg: &str) -> String {
    msg.split(':').next().unwrap_or(msg).trim().to_string()
}

async fn node_stats(client: &awc::Client, base: &str) -> Result<StatsReply, String> {
    match get(client, format!("{base}/api/stats")).await {
        Answer::Ok(v) => Ok(v),
        Answer::Status(s) => Err(format!("/api/stats answered {s}")),
        Answer::Transport(e) => Err(format!("/api/stats: {e}")),
    }
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Where the machine's CPU time went, in clock ticks (USER_HZ, 100 a second on Linux).
#[derive(Debug, Clone, Copy, Default)]
struct CpuSample {
    node: u64,
    me: u64,
    mariadb: u64,
    busy: u64,
    idle: u64,
}

const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of a process.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn is_mariadb(pid: &str) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    matches!(comm.trim(), "mariadbd" | "mysqld")
}

/// The MariaDB server's pid, from its pid file when it runs on this machine; else every
/// mariadbd here.
fn mariadb_pids(conn: &mut MysqlConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct PidFile {
        #[diesel(sql_type = Text)]
        path: String,
    }
    let own = diesel::sql_query("SELECT @@pid_file AS path")
        .get_result::<PidFile>(conn)
        .ok()
        .and_then(|f| std::fs::read_to_string(f.path).ok())
        .map(|pid| pid.trim().to_string())
        .filter(|pid| is_mariadb(pid));
    if let Some(pid) = own {
        return vec![pid];
    }
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && is_mariadb(pid))
        .collect()
}

impl CpuSample {
    fn take(node_pid: u32, mariadb: &[String]) -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> =
            stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let idle = cpu.get(3).copied().unwrap_or_default() + cpu.get(4).copied().unwrap_or_default();
        CpuSample {
            node: process_ticks(&node_pid.to_string()).unwrap_or_default(),
            me: process_ticks("self").unwrap_or_default(),
            mariadb: mariadb.iter().filter_map(|p| process_ticks(p)).sum(),
            busy: cpu.iter().take(8).sum::<u64>().saturating_sub(idle),
            idle,
        }
    }

    /// Prints the core-seconds each part used since `before`, and per booking.
    fn report(&self, before: &CpuSample, elapsed: f64, bookings: u64) {
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / TICKS_PER_SECOND;
        let (node, me, db) = (d(self.node, before.node), d(self.me, before.me), d(self.mariadb, before.mariadb));
        let others = (d(self.busy, before.busy) - node - me - db).max(0.0);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let per = |cs: f64| cs * 1e6 / bookings.max(1) as f64;
        println!(
            "cpu during the load, core-seconds of {:.2} ({cores} cores x {elapsed:.2} s): node {node:.2}, flashsale {me:.2}, \
             mariadbd {db:.2}, everything else {others:.2}, idle {:.2}",
            cores as f64 * elapsed,
            d(self.idle, before.idle)
        );
        println!(
            "  per confirmed booking: node {:.0} us, flashsale {:.0} us, mariadbd {:.0} us",
            per(node),
            per(me),
            per(db)
        );
        let ours = per(node) + per(me) + per(db);
        if ours > 0.0 {
            println!(
                "  so node + flashsale + mariadbd need {ours:.0} us of CPU per booking: {cores} cores could not do more \
                 than {:.0} bookings/s even if nothing else ran (a bound, not a measurement)",
                cores as f64 * 1e6 / ours
            );
        }
        if others > 0.1 * cores as f64 * elapsed {
            println!(
                "  WARNING: other processes took {:.0}% of the machine during the load; the rates and latencies \
                 above understate what the node does on a quiet machine",
                100.0 * others / (cores as f64 * elapsed)
            );
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// ---------------------------------------------------------------------------------------
// What the clients know about the shows (shared by every load thread)

#[derive(Default)]
struct ShowPool {
    /// Seats the latest map showed free that no client here is trying, in random order.
    free: Vec<String>,
    /// Seats a client here has asked for and not heard back about.
    trying: HashSet<String>,
    /// Free seats in the latest map: the sale of this show is over below 2.
    map_free: usize,
}

struct Market {
    pick: Pick,
    labels: Vec<String>,
    shows: Vec<i64>,
    pools: Mutex<HashMap<i64, ShowPool>>,
}

impl Market {
    fn pools(&self) -> std::sync::MutexGuard<'_, HashMap<i64, ShowPool>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A show and two seats to try, or None if nothing is to be had right now.
    fn pick(&self, rng: &mut impl Rng) -> Option<(i64, [String; 2])> {
        let mut pools = self.pools();
        let open: Vec<i64> = self
            .shows
            .iter()
            .copied()
            .filter(|id| {
                pools.get(id).is_some_and(|p| p.map_free >= 2 && (self.pick == Pick::Random || p.free.len() >= 2))
            })
            .collect();
        let show = *open.choose(rng)?;
        let pool = pools.get_mut(&show)?;
        let seats = match self.pick {
            Pick::Random => {
                let two: Vec<&String> = self.labels.choose_multiple(rng, 2).collect();
                [two[0].clone(), two[1].clone()]
            }
            Pick::Free => {
                let (a, b) = (pool.free.pop()?, pool.free.pop()?);
                pool.trying.insert(a.clone());
                pool.trying.insert(b.clone());
                [a, b]
            }
        };
        Some((show, seats))
    }

    /// The client heard back about these seats.
    fn answered(&self, show: i64, seats: &[String; 2]) {
        if self.pick == Pick::Free {
            if let Some(p) = self.pools().get_mut(&show) {
                for s in seats {
                    p.trying.remove(s);
                }
            }
        }
    }

    fn refreshed(&self, show: i64, map: SeatMapReply, rng: &mut impl Rng) {
        let map_free = map.free;
        let mut free = map.free_seats();
        let mut pools = self.pools();
        let pool = pools.entry(show).or_default();
        free.retain(|s| !pool.trying.contains(s));
        free.shuffle(rng);
        pool.free = free;
        pool.map_free = map_free;
    }

    /// Every show's latest map has fewer than two free seats.
    fn sold_out(&self) -> bool {
        let pools = self.pools();
        self.shows.iter().all(|id| pools.get(id).is_some_and(|p| p.map_free < 2))
    }

    fn free_total(&self) -> usize {
        self.pools().values().map(|p| p.map_free).sum()
    }

    /// Shows still open: (id, free in the map, seats to try, seats being tried).
    fn open_shows(&self) -> Vec<(i64, usize, usize, usize)> {
        let mut open: Vec<_> = self
            .pools()
            .iter()
            .filter(|(_, p)| p.map_free >= 2)
            .map(|(id, p)| (*id, p.map_free, p.free.len(), p.trying.len()))
            .collect();
        open.sort_unstable();
        open
    }
}

// ---------------------------------------------------------------------------------------
// The load

/// A booking the node acknowledged (201 to a confirm).
struct Ack {
    code: String,
    show: i64,
    seats: Vec<String>,
}

#[derive(Default)]
struct Tally {
    holds_201: u64,
    holds_409: u64,
    /// Latencies in microseconds.
    hold_201_us: Vec<u32>,
    hold_409_us: Vec<u32>,
    confirm_us: Vec<u32>,
    /// When each confirm was acknowledged, in ms since the start.
    confirmed_at_ms: Vec<u32>,
    hold_errors: BTreeMap<String, u64>,
    confirm_errors: BTreeMap<String, u64>,
    map_reads: u64,
    map_errors: u64,
    acks: Vec<Ack>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.holds_201 += o.holds_201;
        self.holds_409 += o.holds_409;
        self.hold_201_us.extend(o.hold_201_us);
        self.hold_409_us.extend(o.hold_409_us);
        self.confirm_us.extend(o.confirm_us);
        self.confirmed_at_ms.extend(o.confirmed_at_ms);
        for (k, v) in o.hold_errors {
            *self.hold_errors.entry(k).or_default() += v;
        }
        for (k, v) in o.confirm_errors {
            *self.confirm_errors.entry(k).or_default() += v;
        }
        self.map_reads += o.map_reads;
        self.map_errors += o.map_errors;
        self.acks.extend(o.acks);
    }
}

struct Load {
    base: String,
    market: Arc<Market>,
    start: Instant,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    /// How often each show's map is re-read.
    refresh: Duration,
}

impl Load {
    fn finished(&self) -> bool {
        Instant::now() >= self.deadline || self.stop.load(Ordering::SeqCst) || self.market.sold_out()
    }
}

fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u32::MAX as u128) as u32
}

/// One customer after another: hold two seats, confirm them, again.
async fn customer(n: usize, load: Rc<Load>, client: Rc<awc::Client>, tally: Rc<RefCell<Tally>>) {
    let mut rng = rand::thread_rng();
    let mut booked = 0u64;
    while !load.finished() {
        let Some((show, seats)) = load.market.pick(&mut rng) else {
            actix_rt::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let sent = Instant::now();
        let answer =
            post::<HoldReply>(&client, format!("{}/api/shows/{show}/holds", load.base), &HoldRequest { seats: &seats })
                .await;
        let took = micros(sent);
        load.market.answered(show, &seats);
        let hold = match answer {
            Answer::Ok(hold) => {
                let mut t = tally.borrow_mut();
                t.holds_201 += 1;
                t.hold_201_us.push(took);
                hold
            }
            Answer::Status(409) => {
                let mut t = tally.borrow_mut();
                t.holds_409 += 1;
                t.hold_409_us.push(took);
                continue;
            }
            Answer::Status(status) => {
                *tally.borrow_mut().hold_errors.entry(status.to_string()).or_default() += 1;
                continue;
            }
            Answer::Transport(e) => {
                *tally.borrow_mut().hold_errors.entry(e).or_default() += 1;
                actix_rt::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        booked += 1;
        let buyer = ConfirmRequest { name: format!("Client {n}"), email: format!("c{n}.{booked}@example.com") };
        let sent = Instant::now();
        let answer =
            post::<BookingReply>(&client, format!("{}/api/holds/{}/confirm", load.base, hold.hold_id), &buyer).await;
        let took = micros(sent);
        let mut t = tally.borrow_mut();
        match answer {
            Answer::Ok(booking) => {
                t.confirm_us.push(took);
                t.confirmed_at_ms.push(load.start.elapsed().as_millis() as u32);
                t.acks.push(Ack { code: booking.code, show, seats: booking.seats });
            }
            Answer::Status(status) => *t.confirm_errors.entry(status.to_string()).or_default() += 1,
            Answer::Transport(e) => *t.confirm_errors.entry(e).or_default() += 1,
        }
    }
}

/// Re-reads one show's seat map while the load runs.
/// The first read comes after `offset`, so the shows' reads are spread out.
async fn watch_show(show: i64, offset: Duration, load: Rc<Load>, client: Rc<awc::Client>, tally: Rc<RefCell<Tally>>) {
    let mut rng = rand::thread_rng();
    let mut next = Instant::now() + offset;
    loop {
        // Short naps, so the watcher ends soon after the customers.
        while let Some(wait) = next.checked_duration_since(Instant::now()).filter(|_| !load.finished()) {
            actix_rt::time::sleep(wait.min(Duration::from_millis(20))).await;
        }
        if load.finished() {
            return;
        }
        next += load.refresh;
        match get::<SeatMapReply>(&client, format!("{}/api/shows/{show}/seats", load.base)).await {
            Answer::Ok(map) => {
                tally.borrow_mut().map_reads += 1;
                load.market.refreshed(show, map, &mut rng);
            }
            _ => tally.borrow_mut().map_errors += 1,
        }
    }
}

/// `clients` customers on the current thread's System; the first thread also watches maps.
/// Returns what they saw and when the last customer stopped.
async fn run_clients(first: usize, clients: usize, watch: bool, load: Rc<Load>) -> (Tally, Instant) {
    let shows = load.market.shows.clone();
    let client = Rc::new(http_client(clients + if watch { shows.len() } else { 0 }));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let mut watchers = Vec::new();
    if watch {
        for (i, &show) in shows.iter().enumerate() {
            let offset = load.refresh.mul_f64(i as f64 / shows.len() as f64);
            watchers.push(actix_rt::spawn(watch_show(show, offset, load.clone(), client.clone(), tally.clone())));
        }
    }
    let customers: Vec<_> = (first..first + clients)
        .map(|n| actix_rt::spawn(customer(n, load.clone(), client.clone(), tally.clone())))
        .collect();
    for t in customers {
        let _ = t.await;
    }
    let ended = Instant::now();
    for t in watchers {
        let _ = t.await;
    }
    drop(client);
    (Rc::try_unwrap(tally).map(RefCell::into_inner).unwrap_or_default(), ended)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn latency_line(name: &str, us: &mut [u32]) -> String {
    us.sort_unstable();
    format!(
        "  {name:<13} n={:<7} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        us.len(),
        percentile(us, 50.0),
        percentile(us, 99.0),
        percentile(us, 100.0)
    )
}

// ---------------------------------------------------------------------------------------
// The database's view

#[derive(QueryableByName)]
struct StatusVar {
    #[diesel(sql_type = Text, column_name = "Variable_name")]
    name: String,
    #[diesel(sql_type = Text, column_name = "Value")]
    value: String,
}

/// Server-wide counters (other clients of the same server count too).
fn server_status(conn: &mut MysqlConnection) -> HashMap<String, u64> {
    diesel::sql_query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_commit', 'Innodb_data_fsyncs')")
        .load::<StatusVar>(conn)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.value.parse().ok().map(|n| (v.name, n)))
        .collect()
}

#[derive(QueryableByName)]
struct SeatRow {
    #[diesel(sql_type = BigInt)]
    show_id: i64,
    #[diesel(sql_type = Text)]
    seat: String,
    #[diesel(sql_type = Text)]
    booking_code: String,
}

#[derive(QueryableByName)]
struct Doubled {
    #[diesel(sql_type = BigInt)]
    show_id: i64,
    #[diesel(sql_type = Text)]
    seat: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Code {
    #[diesel(sql_type = Text)]
    code: String,
}

/// Checks the database against what the clients were told; prints and returns whether it
/// holds: no seat sold twice, every acknowledged booking stored with its seats, and as many
/// bookings stored as acknowledged.
fn audit(conn: &mut MysqlConnection, acks: &[Ack]) -> Result<bool, String> {
    let q = |e: diesel::result::Error| format!("audit query failed: {e}");
    let doubled: Vec<Doubled> = diesel::sql_query(
        "SELECT show_id, seat, COUNT(*) AS n FROM booking_seats GROUP BY show_id, seat HAVING COUNT(*) > 1",
    )
    .load(conn)
    .map_err(q)?;
    let codes: HashSet<String> = diesel::sql_query("SELECT code FROM bookings")
        .load::<Code>(conn)
        .map_err(q)?
        .into_iter()
        .map(|c| c.code)
        .collect();
    let owners: HashMap<(i64, String), String> =
        diesel::sql_query("SELECT show_id, seat, booking_code FROM booking_seats")
            .load::<SeatRow>(conn)
            .map_err(q)?
            .into_iter()
            .map(|r| ((r.show_id, r.seat), r.booking_code))
            .collect();
    let lost: Vec<&Ack> = acks.iter().filter(|a| !codes.contains(&a.code)).collect();
    let misplaced: Vec<(&Ack, &String)> = acks
        .iter()
        .flat_map(|a| a.seats.iter().map(move |s| (a, s)))
        .filter(|(a, s)| owners.get(&(a.show, (*s).clone())) != Some(&a.code))
        .collect();
    let distinct_acks: HashSet<&str> = acks.iter().map(|a| a.code.as_str()).collect();
    println!("check of the database:");
    println!("  seats sold twice (booking_seats GROUP BY show_id, seat HAVING COUNT(*) > 1): {}", doubled.len());
    for d in doubled.iter().take(10) {
        println!("    show {} seat {} sold {} times", d.show_id, d.seat, d.n);
    }
    println!(
        "  bookings acknowledged {} ({} distinct codes), rows in bookings {}, booking_seats rows {}",
        acks.len(),
        distinct_acks.len(),
        codes.len(),
        owners.len()
    );
    println!("  acknowledged codes missing from bookings: {}", lost.len());
    for a in lost.iter().take(10) {
        println!("    {} (show {})", a.code, a.show);
    }
    println!("  acknowledged seats not owned by their booking in booking_seats: {}", misplaced.len());
    let ok = doubled.is_empty()
        && lost.is_empty()
        && misplaced.is_empty()
        && distinct_acks.len() == acks.len()
        && codes.len() == acks.len();
    println!("  verdict: {}", if ok { "OK" } else { "FAILED" });
    Ok(ok)
}

// ---------------------------------------------------------------------------------------
// The two modes

async fn flash_sale(opts: &Options, stop: &Arc<AtomicBool>) -> Result<bool, String> {
    let mut scratch = Scratch::new(opts);
    let seats_total = opts.shows * opts.rows * opts.seats;
    println!(
        "flash sale: {} shows of {} x {} seats ({} seats), {} clients on {} load thread(s), at most {} s, seats picked: {}",
        opts.shows,
        opts.rows,
        opts.seats,
        seats_total,
        opts.clients,
        opts.threads,
        opts.seconds,
        match opts.pick {
            Pick::Free => "two the latest seat map shows free",
            Pick::Random => "two at random",
        }
    );
    let seeded = seed(&scratch, opts.shows, opts.per_theater, opts.rows, opts.seats).await?;
    println!("schema {} seeded; starting {}", scratch.name, opts.marquee.display());
    let base = scratch.start_node(opts, stop).await?;
    let pid = scratch.node_pid().unwrap_or_default();
    println!("node pid {pid} at {base}");
    let control = http_client(8);

    // Every show's seat map once: the show actors load before the clock starts.
    let market = Arc::new(Market {
        pick: opts.pick,
        labels: seeded.labels,
        shows: seeded.show_ids.clone(),
        pools: Mutex::new(HashMap::new()),
    });
    let mut rng = rand::thread_rng();
    for &show in &seeded.show_ids {
        match get(&control, format!("{base}/api/shows/{show}/seats")).await {
            Answer::Ok(map) => market.refreshed(show, map, &mut rng),
            Answer::Status(s) => return Err(format!("show {show}: the seat map answered {s}")),
            Answer::Transport(e) => return Err(format!("show {show}: {e}")),
        }
    }
    // Seat maps cost the node and this program alike: about 50 a second in all.
    let refresh = match opts.pick {
        Pick::Free => MAP_REFRESH.max(Duration::from_millis(20 * opts.shows as u64)),
        Pick::Random => Duration::from_secs(1).max(Duration::from_millis(20 * opts.shows as u64)),
    };
    let mut db = scratch.connect()?;
    let status_before = server_status(&mut db);
    let stats_before = node_stats(&control, &base).await?;
    let rss_before = rss_kib(pid);
    let mariadb = mariadb_pids(&mut db);
    let cpu_before = CpuSample::take(pid, &mariadb);

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(opts.seconds);
    let per_thread = opts.clients / opts.threads;
    let mut helpers = Vec::new();
    for t in 1..opts.threads {
        let first = t * per_thread;
        let n = if t + 1 == opts.threads { opts.clients - first } else { per_thread };
        let (base, market, stop) = (base.clone(), market.clone(), stop.clone());
        helpers.push(std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let load = Rc::new(Load { base, market, start, deadline, stop, refresh });
                run_clients(first, n, false, load).await
            })
        }));
    }
    let load =
        Rc::new(Load { base: base.clone(), market: market.clone(), start, deadline, stop: stop.clone(), refresh });
    let (mut tally, mut ended) =
        run_clients(0, if opts.threads == 1 { opts.clients } else { per_thread }, true, load).await;
    for h in helpers {
        let (t, e) = h.join().map_err(|_| "a load thread panicked")?;
        tally.merge(t);
        ended = ended.max(e);
    }
    let elapsed = (ended - start).as_secs_f64();

    let stats_after = match node_stats(&control, &base).await {
        Ok(s) => s,
        Err(e) => match scratch.node.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => return Err(format!("{e}: the node has exited ({status})")),
            _ => return Err(e),
        },
    };
    let status_after = server_status(&mut db);
    let rss_after = rss_kib(pid);
    let cpu_after = CpuSample::take(pid, &mariadb);
    let seats_left = market.free_total();
    let open_shows = market.open_shows();
    drop(control);

    let secs = elapsed.max(1e-9);
    let attempts = tally.holds_201 + tally.holds_409 + tally.hold_errors.values().sum::<u64>();
    let confirmed = tally.confirm_us.len() as u64;
    let tx = stats_after.log_transactions.saturating_sub(stats_before.log_transactions);
    let rec = stats_after.log_records.saturating_sub(stats_before.log_records);
    let last_ack = tally.confirmed_at_ms.iter().max().map(|&ms| ms as f64 / 1000.0).unwrap_or(elapsed);
    let delta = |k: &str| {
        status_after
            .get(k)
            .zip(status_before.get(k))
            .map(|(a, b)| a.saturating_sub(*b).to_string())
            .unwrap_or("?".into())
    };
    println!();
    println!(
        "load: {elapsed:.2} s{}",
        if stop.load(Ordering::SeqCst) {
            " (interrupted)"
        } else if market.sold_out() {
            " (every show sold out)"
        } else {
            " (time limit)"
        }
    );
    println!("  hold attempts      {attempts:>8}   {:>9.0} /s", attempts as f64 / secs);
    println!("  holds 201          {:>8}   {:>9.0} /s", tally.holds_201, tally.holds_201 as f64 / secs);
    println!("  holds 409          {:>8}", tally.holds_409);
    println!("  bookings confirmed {confirmed:>8}   {:>9.0} /s", confirmed as f64 / secs);
    println!(
        "                                 {:>9.0} /s up to the last acknowledgement, at {last_ack:.2} s",
        confirmed as f64 / last_ack.max(1e-3)
    );
    println!("  seats sold         {:>8} of {seats_total} (free in the last map read: {seats_left})", confirmed * 2);
    for (id, free, pool, trying) in open_shows.iter().take(5) {
        println!("    show {id} still open: {free} free in its map, {pool} to try, {trying} being tried");
    }
    println!(
        "  seat-map reads     {:>8} ({} failed), every {} ms per show",
        tally.map_reads,
        tally.map_errors,
        refresh.as_millis()
    );
    println!("latency:");
    println!("{}", latency_line("hold 201", &mut tally.hold_201_us));
    println!("{}", latency_line("hold 409", &mut tally.hold_409_us));
    println!("{}", latency_line("confirm 201", &mut tally.confirm_us));
    let mut all_holds: Vec<u32> = tally.hold_201_us.iter().chain(&tally.hold_409_us).copied().collect();
    println!("{}", latency_line("hold (any)", &mut all_holds));
    println!("errors by status:");
    if tally.hold_errors.is_empty() && tally.confirm_errors.is_empty() {
        println!("  none");
    }
    for (k, v) in &tally.hold_errors {
        println!("  hold    {k}: {v}");
    }
    for (k, v) in &tally.confirm_errors {
        println!("  confirm {k}: {v}");
    }
    println!("confirmed bookings per 250 ms:");
    let mut buckets = vec![0u64; (elapsed * 4.0).ceil().max(1.0) as usize];
    for &ms in &tally.confirmed_at_ms {
        let i = (ms as usize / 250).min(buckets.len() - 1);
        buckets[i] += 1;
    }
    for (i, chunk) in buckets.chunks(8).enumerate() {
        let cells: Vec<String> = chunk.iter().map(|n| format!("{n:>5}")).collect();
        println!("  {:>5.1}s {}", i as f64 * 2.0, cells.join(" "));
    }
    println!("database:");
    println!(
        "  write-log transactions {tx} ({:.0} /s, {:.3} per confirmed booking), records {rec}, records per transaction {:.1}",
        tx as f64 / secs,
        tx as f64 / confirmed.max(1) as f64,
        rec as f64 / tx.max(1) as f64
    );
    println!(
        "  MariaDB server-wide during the load: Com_commit +{}, Innodb_data_fsyncs +{}",
        delta("Com_commit"),
        delta("Innodb_data_fsyncs")
    );
    if let (Some(b), Some(a)) = (rss_before, rss_after) {
        println!("node RSS: {} before the load, {} after", mib(b), mib(a));
    }
    cpu_after.report(&cpu_before, elapsed, confirmed);
    let rate = confirmed as f64 / secs;
    let (p99_hold, p99_confirm) = (percentile(&tally.hold_201_us, 99.0), percentile(&tally.confirm_us, 99.0));
    let target_met = rate >= 3000.0 && p99_hold < 50.0 && p99_confirm < 50.0;
    println!(
        "target: >= 3000 confirmed bookings/s with p99 < 50 ms (holds and confirms), load generator included: {} \
         ({rate:.0}/s, p99 hold {p99_hold:.1} ms, confirm {p99_confirm:.1} ms)",
        if target_met { "met" } else { "MISSED" }
    );
    println!();
    let ok = audit(&mut db, &tally.acks)?;
    drop(db);
    scratch.stop_node();
    Ok(ok)
}

async fn memory(opts: &Options, shows: usize, stop: &Arc<AtomicBool>) -> Result<bool, String> {
    let mut scratch = Scratch::new(opts);
    println!(
        "memory: {shows} shows of {} x {} seats, {} to a theater (and its layout), seat maps read {} at a time",
        opts.rows, opts.seats, opts.per_theater, opts.concurrency
    );
    let seeding = Instant::now();
    let seeded = seed(&scratch, shows, opts.per_theater, opts.rows, opts.seats).await?;
    println!(
        "schema {} seeded in {:.1} s; starting {}",
        scratch.name,
        seeding.elapsed().as_secs_f64(),
        opts.marquee.display()
    );
    let base = scratch.start_node(opts, stop).await?;
    let pid = scratch.node_pid().unwrap_or_default();
    let client = Rc::new(http_client(opts.concurrency + 1));
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid).ok_or("cannot read the node's VmRSS")?;

    let started = Instant::now();
    let queue = Rc::new(RefCell::new(seeded.show_ids.clone()));
    let failures = Rc::new(RefCell::new(BTreeMap::<String, u64>::new()));
    let mut lat: Vec<u32> = Vec::with_capacity(shows);
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.min(shows) {
        let (client, queue, failures, base, stop) =
            (client.clone(), queue.clone(), failures.clone(), base.clone(), stop.clone());
        tasks.push(actix_rt::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let Some(show) = queue.borrow_mut().pop() else { break };
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let sent = Instant::now();
                match get::<IgnoredAny>(&client, format!("{base}/api/shows/{show}/seats")).await {
                    Answer::Ok(_) => lat.push(micros(sent)),
                    Answer::Status(s) => *failures.borrow_mut().entry(s.to_string()).or_default() += 1,
                    Answer::Transport(e) => *failures.borrow_mut().entry(e).or_default() += 1,
                }
            }
            lat
        }));
    }
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    let took = started.elapsed().as_secs_f64();
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid).ok_or("cannot read the node's VmRSS")?;
    let loaded = node_stats(&client, &base).await?.shows_loaded;
    println!();
    println!(
        "seat maps read: {} in {took:.2} s ({:.0} /s); failures: {:?}",
        lat.len(),
        lat.len() as f64 / took,
        failures.borrow()
    );
    println!("{}", latency_line("seat map", &mut lat));
    println!("shows loaded in the node (GET /api/stats): {loaded}");
    println!(
        "node VmRSS: before {}, after {}, grown {} ({:.1} KiB per show)",
        mib(before),
        mib(after),
        mib(after.saturating_sub(before)),
        after.saturating_sub(before) as f64 / shows as f64
    );
    drop(client);
    scratch.stop_node();
    Ok(failures.borrow().is_empty() && lat.len() == shows)
}
