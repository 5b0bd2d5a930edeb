//! wsbench: how many live seat-map websockets one node holds, and how long a seat change
//! takes to reach all of them.
//!
//! By default it starts a node as a child process (this same binary, `--serve-node`) on a
//! fresh schema of the test MariaDB server, seeds one show with the default auditorium
//! (12 rows of 16), opens N websockets to `/shows/{id}/live`, then places K one-seat holds
//! through the JSON API, one after another, and times each from just before the request
//! until every socket has read the change. It reports the node's resident memory before and
//! after the sockets were opened. With `--url` and `--show` it measures a running node
//! instead (and cannot see its memory unless `--pid` is given).
//!
//! ```text
//! cargo run --release --bin wsbench -- [--sockets 10000] [--changes 150] [--seconds 300]
//!     [--listener own|shared] [--url http://127.0.0.1:8000 --show ID [--live-url URL] [--pid PID]]
//!     [--sources K] [--batch 256]
//! ```
//!
//! `--listener own` (the default) gives the child node a live listener of its own
//! (LIVE_BIND, with LIVE_WORKERS workers) and opens the sockets there, as nginx routes them
//! in the deployment; `--listener shared` opens them on the site's listener, whose workers
//! also take the holds (a node without LIVE_BIND).
//!
//! Client and node share the machine: the latencies include the client reading every
//! frame on one thread. Everything is bounded by `--seconds`; the child node and its
//! schema are removed at the end.
use actix_web::http::StatusCode;
use awc::ws::{Frame, Message};
use diesel::prelude::*;
use futures::{SinkExt, StreamExt};
use marquee::catalog::layout::layout_change;
use marquee::config::Settings;
use marquee::db::models::{Movie, Show, Theater};
use marquee::startup::Application;
use marquee::wal::Change;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

const ROWS: usize = 12;
const SEATS: usize = 16;
/// Connections one loopback source address may open before its ephemeral ports run short.
const PER_SOURCE: usize = 20_000;

struct Args {
    sockets: usize,
    changes: usize,
    seconds: u64,
    url: Option<String>,
    show: Option<i64>,
    pid: Option<u32>,
    sources: Option<usize>,
    batch: usize,
    own_listener: bool,
    live_url: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        sockets: 10_000,
        changes: 150,
        seconds: 300,
        url: None,
        show: None,
        pid: None,
        sources: None,
        batch: 256,
        own_listener: true,
        live_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: '{v}' is not a number"));
        match flag.as_str() {
            "--sockets" => a.sockets = num(value()?)? as usize,
            "--changes" => a.changes = num(value()?)? as usize,
            "--seconds" => a.seconds = num(value()?)?,
            "--url" => a.url = Some(value()?.trim_end_matches('/').to_string()),
            "--show" => a.show = Some(num(value()?)? as i64),
            "--pid" => a.pid = Some(num(value()?)? as u32),
            "--sources" => a.sources = Some(num(value()?)?.clamp(1, 250) as usize),
            "--batch" => a.batch = num(value()?)?.max(1) as usize,
            "--live-url" => a.live_url = Some(value()?.trim_end_matches('/').to_string()),
            "--listener" => {
                a.own_listener = match value()?.as_str() {
                    "own" => true,
                    "shared" => false,
                    other => return Err(format!("--listener: '{other}' is not own or shared")),
                }
            }
            "-h" | "--help" => {
                return Err("usage: wsbench [--sockets N] [--changes K] [--seconds S] [--listener own|shared] \
                            [--url URL --show ID [--live-url URL] [--pid PID]] [--sources K] [--batch B]"
                    .into())
            }
            other => return Err(format!("unknown argument '{other}' (try --help)")),
        }
    }
    if a.url.is_some() != a.show.is_some() {
        return Err("--url and --show go together".into());
    }
    if a.url.is_none() && a.changes > ROWS * SEATS {
        return Err(format!("at most {} changes (one hold per seat of the seeded show)", ROWS * SEATS));
    }
    Ok(a)
}

/// Raises the open-file limit to at least `want` (as far as the hard limit, or beyond it
/// as root), and returns what it is now.
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur >= want {
            return lim.rlim_cur;
        }
        let raised = libc::rlimit { rlim_cur: want, rlim_max: want.max(lim.rlim_max) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            let capped = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &capped);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = pid.map(|p| format!("/proc/{p}/stat")).unwrap_or_else(|| "/proc/self/stat".into());
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis(ticks * 1000 / per_second))
}

fn server_url() -> String {
    std::env::var("MARQUEE_TEST_DATABASE_URL").unwrap_or_else(|_| "mysql://root:marquee@127.0.0.1:3307".into())
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--serve-node") {
        let db = std::env::args().nth(2).expect("--serve-node DB own|shared");
        let own = std::env::args().nth(3).as_deref() == Some("own");
        if let Err(e) = serve_node(&db, own) {
            eprintln!("wsbench node: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!("{}", marquee::config::load_test_limits_note());
    let code = actix_rt::System::new().block_on(run(args));
    std::process::exit(code);
}

// ---------------------------------------------------------------------------------------
// The node under test (a child process, so its memory is its own).

fn serve_node(db_name: &str, own_listener: bool) -> Result<(), String> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // The parent holds our stdin; when it goes away, so do we.
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let root = env!("CARGO_MANIFEST_DIR");
    let mut s = Settings::from_env().map_err(|e| e.to_string())?;
    s.database_url = format!("{}/{db_name}", server_url());
    // Every socket and change comes from this one address (see LOAD_TEST_LIMITS).
    s.hold_limits.max_held_seats = 1_000_000;
    s.hold_limits.max_holds_per_minute = 1_000_000;
    s.hold_limits.cooloff = chrono::Duration::zero();
    s.lonely_seat_rule = false;
    s.live_bind = own_listener.then(|| "127.0.0.1:0".to_string());
    if std::env::var("MARQUEE_TEMPLATES").is_err() {
        s.templates_dir = format!("{root}/templates");
    }
    if std::env::var("MARQUEE_ASSETS").is_err() {
        s.assets_dir = format!("{root}/assets");
    }
    actix_rt::System::new().block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let app = Application::build_on(s, listener).map_err(|e| e.to_string())?;
        let port = app.port();
        let live_port = app.live_port().unwrap_or(port);
        let writer = app.state.writer.clone();
        let cluster = app.state.cluster.clone();
        let server = actix_rt::spawn(app.run_until_stopped());
        // A node of its own founds its cluster and elects itself in its first moments; the
        // show is seeded once it takes writes.
        let since = Instant::now();
        while !cluster.writable() {
            if since.elapsed() > Duration::from_secs(30) {
                return Err("the node did not become writable within 30 s".into());
            }
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        let show = seed_show(&writer).await?;
        println!("READY {port} {live_port} {show}");
        server.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())
    })
}

/// One theater with the default auditorium and one show tomorrow; returns the show id.
async fn seed_show(writer: &marquee::wal::LogWriter) -> Result<i64, String> {
    let mut change = layout_change(1, "Bench hall", ROWS, SEATS, ROWS / 2);
    let tz = "America/Los_Angeles";
    change.theaters.push(Theater {
        id: 1,
        external_id: "BENCH".into(),
        tid: "BENCH".into(),
        name: "Bench Theater".into(),
        latitude: 34.0,
        longitude: -118.2,
        timezone: tz.into(),
        layout_id: 1,
    });
    change.movies.push(Movie {
        id: 1,
        external_key: "bench movie".into(),
        title: "Bench Movie".into(),
        duration_minutes: Some(120),
        poster_url: None,
    });
    let start = chrono::Utc::now() + chrono::Duration::days(1);
    let local = start.with_timezone(&tz.parse::<chrono_tz::Tz>().map_err(|e| e.to_string())?).naive_local();
    change.shows.push(Show {
        id: 1,
        theater_id: 1,
        movie_id: 1,
        layout_id: 1,
        local_date: local.date(),
        starts_at_local: local,
        starts_at_utc: start.naive_utc(),
        in_feed: true,
    });
    writer.append(Change::Catalog(Box::new(change))).await.map_err(|e| e.to_string())?;
    Ok(1)
}

/// The child node and its schema; both go when this is dropped.
struct Node {
    child: Child,
    db_name: String,
}

impl Node {
    /// Starts the node; returns it, the site's URL, the live listener's URL and the show.
    fn start(own_listener: bool) -> Result<(Node, String, String, i64), String> {
        let db_name = format!("marquee_bench_{}", marquee::domain::random_token(8).to_lowercase());
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("--serve-node")
            .arg(&db_name)
            .arg(if own_listener { "own" } else { "shared" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the node: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let node = Node { child, db_name };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(120)).map_err(|_| "the node did not start in 120 s")?;
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next(), parts.next().and_then(|s| s.parse().ok())) {
            (Some("READY"), Some(port), Some(live), Some(show)) => {
                Ok((node, format!("http://127.0.0.1:{port}"), format!("http://127.0.0.1:{live}"), show))
            }
            _ => Err(format!("the node did not start (it said {line:?})")),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(mut c) = MysqlConnection::establish(&server_url()) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS `{}`", self.db_name)).execute(&mut c);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The client side.

enum Report {
    Opened,
    Failed(String),
    Closed,
    /// A change frame naming this seat was read.
    Change(String, Instant),
}

#[derive(serde::Deserialize)]
struct WireFrame {
    #[serde(rename = "type")]
    kind: String,
    seats: Vec<(String, String)>,
}

/// One socket: reports the snapshot, then every change it reads, and answers pings.
async fn watch(client: Rc<awc::Client>, url: String, reports: mpsc::UnboundedSender<Report>) {
    let mut socket = match client.ws(url).max_frame_size(1 << 20).connect().await {
        Ok((_, socket)) => socket,
        Err(e) => {
            let _ = reports.send(Report::Failed(e.to_string()));
            return;
        }
    };
    let mut opened = false;
    while let Some(frame) = socket.next().await {
        match frame {
            Ok(Frame::Text(bytes)) => {
                let at = Instant::now();
                let Ok(f) = serde_json::from_slice::<WireFrame>(&bytes) else { continue };
                if f.kind == "snapshot" && !opened {
                    opened = true;
                    let _ = reports.send(Report::Opened);
                } else if f.kind == "change" {
                    for (seat, _) in f.seats {
                        let _ = reports.send(Report::Change(seat, at));
                    }
                }
            }
            Ok(Frame::Ping(p)) => {
                if socket.send(Message::Pong(p)).await.is_err() {
                    break;
                }
            }
            Ok(Frame::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = reports.send(if opened { Report::Closed } else { Report::Failed("closed before the snapshot".into()) });
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn run(args: Args) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let limit = raise_fd_limit(args.sockets as u64 * 2 + 4096);
    if limit < args.sockets as u64 + 256 {
        eprintln!("the open-file limit is {limit}: too low for {} sockets", args.sockets);
        return 1;
    }
    let (node, base, live, show, pid) = match (&args.url, args.show) {
        (Some(url), Some(show)) => {
            (None, url.clone(), args.live_url.clone().unwrap_or_else(|| url.clone()), show, args.pid)
        }
        _ => match Node::start(args.own_listener) {
            Ok((node, base, live, show)) => {
                let pid = node.child.id();
                (Some(node), base, live, show, Some(pid))
            }
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        },
    };
    let code = measure(&args, deadline, &base, &live, show, pid).await;
    drop(node);
    code
}

async fn measure(args: &Args, deadline: Instant, base: &str, live: &str, show: i64, pid: Option<u32>) -> i32 {
    let http = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    // Let the show's actor load before the crowd arrives.
    match http.get(format!("{base}/api/shows/{show}/seats")).send().await {
        Ok(res) if res.status() == StatusCode::OK => {}
        other => {
            eprintln!("the show's seat map is not available: {:?}", other.map(|r| r.status()));
            return 1;
        }
    }
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let rss_before = pid.and_then(rss_kib);

    // Open the sockets, `batch` handshakes at a time, spread over loopback source addresses.
    let sources = args.sources.unwrap_or(args.sockets.div_ceil(PER_SOURCE).max(1));
    let clients: Vec<Rc<awc::Client>> = (0..sources)
        .map(|i| {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8));
            let connector = awc::Connector::new().local_address(ip).limit(0).timeout(Duration::from_secs(20));
            Rc::new(awc::Client::builder().connector(connector).timeout(Duration::from_secs(30)).finish())
        })
        .collect();
    let ws_url = format!("{}/shows/{show}/live", live.replacen("http://", "ws://", 1));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = std::sync::Arc::new(Semaphore::new(args.batch));
    println!("opening {} websockets to {ws_url} from {sources} source address(es)", args.sockets);
    let started = Instant::now();
    let (mut open, mut failed) = (0usize, 0usize);
    let mut first_error = None;
    let mut pending_reports = Vec::new();
    let mut launched = 0usize;
    while open + failed < args.sockets && Instant::now() < deadline {
        // Launch as many as the gate allows, then take reports.
        while launched < args.sockets {
            let Ok(permit) = gate.clone().try_acquire_owned() else { break };
            let (client, url, tx) = (clients[launched % sources].clone(), ws_url.clone(), tx.clone());
            let (inner_tx, mut inner_rx) = mpsc::unbounded_channel();
            actix_rt::spawn(watch(client, url, inner_tx));
            // Relay reports, holding the permit until this socket is open (or failed).
            actix_rt::spawn(async move {
                let mut permit = Some(permit);
                while let Some(r) = inner_rx.recv().await {
                    if matches!(r, Report::Opened | Report::Failed(_)) {
                        permit.take();
                    }
                    if tx.send(r).is_err() {
                        break;
                    }
                }
            });
            launched += 1;
        }
        let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
        match actix_rt::time::timeout(wait, rx.recv()).await {
            Ok(Some(Report::Opened)) => open += 1,
            Ok(Some(Report::Failed(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Ok(Some(other)) => pending_reports.push(other),
            Ok(None) => break,
            Err(_) => {}
        }
    }
    let connect_time = started.elapsed();
    println!(
        "open: {open} of {} in {:.1} s ({failed} failed{})",
        args.sockets,
        connect_time.as_secs_f64(),
        first_error.map(|e| format!("; first error: {e}")).unwrap_or_default()
    );
    drop(pending_reports);
    if open == 0 {
        return 1;
    }
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let rss_open = pid.and_then(rss_kib);

    // The changes: one-seat holds, one after another.
    let seats: Vec<String> = (0..ROWS)
        .flat_map(|r| (1..=SEATS).map(move |n| format!("{}{n}", marquee::catalog::layout::row_label(r))))
        .collect();
    let (node_cpu0, own_cpu0) = (cpu_time(pid), cpu_time(None));
    let mut all_reached = Vec::new();
    let mut deliveries = Vec::new();
    let mut requests = Vec::new();
    let mut incomplete = 0usize;
    let mut closed = 0usize;
    for seat in seats.iter().take(args.changes) {
        if Instant::now() >= deadline {
            println!("stopping at the time limit");
            break;
        }
        let t0 = Instant::now();
        let res = http
            .post(format!("{base}/api/shows/{show}/holds"))
            .send_json(&serde_json::json!({ "seats": [seat] }))
            .await;
        requests.push(t0.elapsed());
        match res {
            Ok(r) if r.status() == StatusCode::CREATED => {}
            Ok(r) => {
                println!("hold {seat}: {}", r.status());
                continue;
            }
            Err(e) => {
                println!("hold {seat}: {e}");
                continue;
            }
        }
        let mut got = 0usize;
        let mut last = t0;
        let until = (Instant::now() + Duration::from_secs(10)).min(deadline);
        while got < open - closed {
            match actix_rt::time::timeout(until.saturating_duration_since(Instant::now()), rx.recv()).await {
                Ok(Some(Report::Change(s, at))) if &s == seat => {
                    got += 1;
                    last = last.max(at);
                    deliveries.push(at.saturating_duration_since(t0));
                }
                Ok(Some(Report::Closed | Report::Failed(_))) => closed += 1,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        if got < open - closed {
            incomplete += 1;
        } else {
            all_reached.push(last.saturating_duration_since(t0));
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_after = pid.and_then(rss_kib);
    let cpu_used = |before: Option<Duration>, now: Option<Duration>| match (before, now) {
        (Some(b), Some(n)) if !all_reached.is_empty() => {
            format!("{} per change", ms((n.saturating_sub(b)) / all_reached.len() as u32))
        }
        _ => "unknown".into(),
    };
    let node_cpu = cpu_used(node_cpu0, cpu_time(pid));
    let own_cpu = cpu_used(own_cpu0, cpu_time(None));

    all_reached.sort();
    deliveries.sort();
    requests.sort();
    println!();
    println!("sockets open:             {open} (closed during the run: {closed})");
    if let (Some(before), Some(open_rss)) = (rss_before, rss_open) {
        let per = (open_rss.saturating_sub(before)) as f64 / open as f64;
        println!(
            "node memory (RSS):        {} before, {} with the sockets open ({per:.1} KiB per socket), {} after the changes",
            mib(before),
            mib(open_rss),
            rss_after.map(mib).unwrap_or_default()
        );
    }
    println!("changes measured:         {} ({incomplete} did not reach every socket within 10 s)", all_reached.len());
    println!(
        "change -> every socket:   p50 {}  p99 {}  max {}",
        ms(percentile(&all_reached, 0.5)),
        ms(percentile(&all_reached, 0.99)),
        ms(all_reached.last().copied().unwrap_or_default())
    );
    println!(
        "change -> one socket:     p50 {}  p99 {}  ({} deliveries)",
        ms(percentile(&deliveries, 0.5)),
        ms(percentile(&deliveries, 0.99)),
        deliveries.len()
    );
    println!(
        "hold request round trip:  p50 {}  p99 {}",
        ms(percentile(&requests, 0.5)),
        ms(percentile(&requests, 0.99))
    );
    println!("CPU time:                 node {node_cpu}, this client {own_cpu}");
    if open < args.sockets || incomplete > 0 {
        2
    } else {
        0
    }
}
