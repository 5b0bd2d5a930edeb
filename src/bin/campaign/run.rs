//! One run: a fresh cluster (a MariaDB server per node), the shows seeded on the first
//! node, the workload and the nemesis side by side, then everything healed, the cluster
//! left to settle, a final read of every node, and the history written and checked.
use crate::cluster::{Cluster, HOLD_MINUTES};
use crate::history::{self, Event, LogEntry, Process, Recorder, RunMeta, Type, F};
use crate::nemesis::{self, Kind, Nemesis, Planned};
use crate::node::{id_of, Discovery};
use crate::procs::Pids;
use crate::workload::{ShowInfo, Targets, Workload};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A named, deterministic schedule that reproduces a known failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// One replica takes bookings alone; three empty ones join through DNS; the first
    /// dies before they have its data, and comes back later.
    ScaleUpCrash,
    /// Every follower's MariaDB stalls (SIGSTOP) for longer than the replication timeout
    /// while the master confirms holds.
    SlowFollowerStorage,
}

impl Scenario {
    pub fn parse(s: &str) -> Result<Scenario, String> {
        match s {
            "scale-up-crash" => Ok(Scenario::ScaleUpCrash),
            "slow-follower-storage" => Ok(Scenario::SlowFollowerStorage),
            _ => Err(format!("unknown scenario '{s}' (scale-up-crash, slow-follower-storage)")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ScaleUpCrash => "scale-up-crash",
            Scenario::SlowFollowerStorage => "slow-follower-storage",
        }
    }
}

pub struct RunSpec {
    pub name: String,
    pub seed: u64,
    pub nodes: usize,
    pub faults: Vec<Kind>,
    pub seconds: u64,
    pub clients: usize,
    pub discovery: Discovery,
    pub scenario: Option<Scenario>,
    /// LOG_RETAIN_ENTRIES for every node (None: the nodes' default).
    pub log_retain: Option<u64>,
    pub out: PathBuf,
    /// Where the MariaDB template lives (kept across runs).
    pub work: PathBuf,
}

const ROWS: usize = 5;
const SEATS: usize = 8;

pub struct Outcome {
    pub dir: PathBuf,
    pub errors: Vec<String>,
    pub settled: bool,
}

/// Seeds two shows of 5 x 8 seats into the first node's database through the log writer,
/// as an import would; returns their ids and seat labels.
async fn seed(database_url: &str) -> Result<Vec<ShowInfo>, String> {
    use marquee::catalog::layout::layout_change;
    use marquee::db::models::{Movie, Show, Theater};
    let mut settings = marquee::config::Settings::from_env().map_err(|e| e.to_string())?;
    settings.database_url = database_url.to_string();
    settings.db_pool_size = 2;
    let db = marquee::startup::open_database(&settings).map_err(|e| e.to_string())?;
    let writer = marquee::startup::start_log(&db).map_err(|e| e.to_string())?;
    let mut change = layout_change(500, "Campaign hall", ROWS, SEATS, ROWS - 1);
    change.theaters.push(Theater {
        id: 501,
        external_id: "CAMPAIGN".into(),
        tid: "C".into(),
        name: "Campaign Theater".into(),
        latitude: 34.0,
        longitude: -118.2,
        timezone: "America/Los_Angeles".into(),
        layout_id: 500,
    });
    change.movies.push(Movie {
        id: 502,
        external_key: "campaign movie".into(),
        title: "The Campaign".into(),
        duration_minutes: Some(100),
        poster_url: None,
    });
    let tz = chrono_tz::America::Los_Angeles;
    let mut shows = Vec::new();
    for k in 0..2i64 {
        let start_utc = (chrono::Utc::now() + chrono::Duration::days(2) + chrono::Duration::hours(k * 3)).naive_utc();
        let local = start_utc.and_utc().with_timezone(&tz).naive_local();
        change.shows.push(Show {
            id: 510 + k,
            theater_id: 501,
            movie_id: 502,
            layout_id: 500,
            local_date: local.date(),
            starts_at_local: local,
            starts_at_utc: start_utc,
            in_feed: true,
        });
        shows.push(510 + k);
    }
    let labels: Vec<String> =
        change.rows.iter().flat_map(|r| (1..=r.seat_count).map(move |s| format!("{}{s}", r.row_label))).collect();
    writer.append(marquee::wal::Change::Catalog(Box::new(change))).await.map_err(|e| format!("seeding failed: {e}"))?;
    Ok(shows.into_iter().map(|id| ShowInfo { id, labels: labels.clone() }).collect())
}

async fn status(http: &awc::Client, base: &str) -> Option<Value> {
    let mut r = http.get(format!("{base}/api/cluster")).timeout(Duration::from_millis(1500)).send().await.ok()?;
    r.json::<Value>().limit(1 << 20).await.ok()
}

/// The one writable master the members agree on, if any.
async fn agreed_master(http: &awc::Client, targets: &[(u64, String)]) -> (Option<u64>, Vec<Option<Value>>) {
    let all = futures::future::join_all(targets.iter().map(|(_, b)| status(http, b))).await;
    let masters: Vec<u64> = all
        .iter()
        .flatten()
        .filter(|s| s["role"] == "master" && s["writable"] == true)
        .filter_map(|s| s["node_id"].as_u64())
        .collect();
    (if masters.len() == 1 { Some(masters[0]) } else { None }, all)
}

/// Every ~250 ms: who is master, as a nemesis line (`f: master`), for "longest time
/// without a master"; also tells the nemesis whom to aim at.
async fn monitor(rec: Arc<Recorder>, targets: Targets, master: Arc<Mutex<Option<u64>>>, stop: Arc<AtomicBool>) {
    let http = awc::Client::builder().timeout(Duration::from_millis(1500)).finish();
    while !stop.load(Ordering::SeqCst) {
        let t = targets.lock().unwrap().clone();
        let (m, _) = agreed_master(&http, &t).await;
        *master.lock().unwrap() = m;
        rec.record(Process::nemesis(), None, Type::Info, F::Fault("master".into()), json!({ "master": m }));
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the members agree on one writable master and every running member's log
/// ends at the same LSN, twice in a row a second apart.
async fn settle(targets: &[(u64, String)], within: Duration) -> bool {
    let http = awc::Client::builder().timeout(Duration::from_millis(1500)).finish();
    let until = Instant::now() + within;
    let mut last: Option<Vec<i64>> = None;
    while Instant::now() < until && !crate::procs::interrupted() {
        let (m, all) = agreed_master(&http, targets).await;
        let lsns: Option<Vec<i64>> = all.iter().map(|s| s.as_ref().and_then(|s| s["last_lsn"].as_i64())).collect();
        let agree = m.is_some() && all.iter().flatten().all(|s| s["master_id"].as_u64() == m);
        match lsns {
            Some(l) if agree && l.windows(2).all(|w| w[0] == w[1]) => {
                if last.as_ref() == Some(&l) {
                    return true;
                }
                last = Some(l);
            }
            _ => last = None,
        }
        actix_rt::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

#[derive(QueryableByName)]
struct SeatsRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    seats: String,
}

#[derive(QueryableByName)]
struct LogRow {
    #[diesel(sql_type = BigInt)]
    lsn: i64,
    #[diesel(sql_type = BigInt)]
    epoch: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    digest: String,
}

/// A node's seats as its database holds them: `booked:<code>`, `held:<hold>` or `free`.
/// Two confirmed bookings naming one seat are returned apart (the map can hold only one).
fn final_read(url: &str, show: &ShowInfo) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let mut conn = MysqlConnection::establish(url).map_err(|e| e.to_string())?;
    let q = |sql: String, conn: &mut MysqlConnection| -> Result<Vec<SeatsRow>, String> {
        diesel::sql_query(sql).load::<SeatsRow>(conn).map_err(|e| e.to_string())
    };
    let bookings = q(
        format!("SELECT code AS id, seats FROM bookings WHERE show_id = {} AND state = 'confirmed'", show.id),
        &mut conn,
    )?;
    // A hold past its expiry is over even if no expiry entry was written for it yet (a
    // node that loads a show treats it as expired).
    let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S%.6f");
    let holds = q(
        format!(
            "SELECT id, seats FROM holds WHERE show_id = {} AND state = 'active' AND expires_at > '{now}'",
            show.id
        ),
        &mut conn,
    )?;
    let mut seats: BTreeMap<String, String> = show.labels.iter().map(|l| (l.clone(), "free".to_string())).collect();
    let mut doubles = Vec::new();
    for h in &holds {
        for s in h.seats.split(',').filter(|s| !s.is_empty()) {
            seats.insert(s.to_string(), format!("held:{}", h.id));
        }
    }
    for b in &bookings {
        for s in b.seats.split(',').filter(|s| !s.is_empty()) {
            let prev = seats.insert(s.to_string(), format!("booked:{}", b.id));
            if let Some(p) = prev.and_then(|p| p.strip_prefix("booked:").map(str::to_string)) {
                doubles.push(format!("{s}: {p} and {}", b.id));
            }
        }
    }
    Ok((seats, doubles))
}

fn write_log(url: &str) -> Result<Vec<LogEntry>, String> {
    let mut conn = MysqlConnection::establish(url).map_err(|e| e.to_string())?;
    let rows: Vec<LogRow> =
        diesel::sql_query("SELECT lsn, epoch, kind, SHA2(payload, 256) AS digest FROM write_log ORDER BY lsn")
            .load(&mut conn)
            .map_err(|e| e.to_string())?;
    Ok(rows.into_iter().map(|r| LogEntry { lsn: r.lsn, epoch: r.epoch, kind: r.kind, digest: r.digest }).collect())
}

/// Where a node's log was compacted to (its LSN and epoch), if it was.
fn log_base(url: &str) -> Result<Option<(i64, i64)>, String> {
    let mut conn = MysqlConnection::establish(url).map_err(|e| e.to_string())?;
    marquee::db::node::load_base(&mut conn).map_err(|e| e.to_string())
}

type Script = Box<dyn FnOnce(&Nemesis, &mut Cluster) -> Vec<String> + Send>;

fn wait_healthy(c: &Cluster, slot: usize, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if crate::cluster::status(&c.nodes[slot - 1].base_url(), Duration::from_millis(800)).is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn sleep(d: Duration) {
    crate::procs::sleep_until(Instant::now() + d);
}

/// The scripted nemesis of a scenario, and how many slots start as members.
fn script(s: Scenario) -> (Script, usize) {
    match s {
        Scenario::ScaleUpCrash => (
            Box::new(|n: &Nemesis, c: &mut Cluster| {
                let mut errors = Vec::new();
                sleep(Duration::from_secs(6));
                let newcomers: Vec<usize> = (2..=c.nodes.len()).collect();
                for &s in &newcomers {
                    if let Err(e) = c.join(s) {
                        errors.push(e);
                    }
                }
                n.rec.record(
                    Process::nemesis(),
                    None,
                    Type::Info,
                    F::Fault("scale".into()),
                    json!({ "phase": "start", "detail": { "change": "join", "nodes": newcomers.iter().map(|&s| id_of(s)).collect::<Vec<_>>() } }),
                );
                for &s in &newcomers {
                    wait_healthy(c, s, Duration::from_secs(20));
                }
                // The first replica dies before the newcomers have its data.
                c.kill(1);
                n.rec.record(
                    Process::nemesis(),
                    None,
                    Type::Info,
                    F::Fault("kill".into()),
                    json!({ "phase": "start", "detail": { "nodes": [id_of(1)] } }),
                );
                n.rec.record(Process::nemesis(), None, Type::Info, F::Fault("scale".into()), json!({ "phase": "end" }));
                // The newcomers joined as learners (or not yet at all): without the first
                // replica, which has the data, none of them may become master.
                let until = Instant::now() + Duration::from_secs(8);
                while Instant::now() < until && !crate::procs::interrupted() {
                    if let Some(m) = (*c.master.lock().unwrap()).filter(|&m| m != id_of(1)) {
                        errors.push(format!("newcomer {m} became master without the first replica's data"));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                sleep(Duration::from_secs(4));
                if let Err(e) = c.start(1) {
                    errors.push(e);
                }
                n.rec.record(Process::nemesis(), None, Type::Info, F::Fault("kill".into()), json!({ "phase": "end" }));
                errors.extend(c.heal_all());
                errors
            }),
            1,
        ),
        Scenario::SlowFollowerStorage => (
            Box::new(|n: &Nemesis, c: &mut Cluster| {
                let schedule = [Planned { at_ms: 5_000, lasts_ms: 8_000, kind: Kind::DbStall, pick: 1, shape: 0 }];
                n.run(c, &schedule)
            }),
            usize::MAX,
        ),
    }
}

/// Runs one campaign run and writes its directory: history.jsonl, faults.jsonl, run.json,
/// wal-<node>.jsonl, node-<node>.log.
pub async fn run(spec: &RunSpec) -> Result<Outcome, String> {
    let dir = spec.out.join(&spec.name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pids = Arc::new(Pids::new(spec.out.join(format!("{}.pids", spec.name))));
    let tag = format!("{}:{}", crate::net::TAG, spec.name);
    let targets: Targets = Arc::new(Mutex::new(Vec::new()));
    let slots = match spec.scenario {
        Some(Scenario::ScaleUpCrash) => spec.nodes.max(4),
        _ if spec.faults.contains(&Kind::Scale) => spec.nodes + 2,
        _ => spec.nodes,
    };
    let discovery = match spec.scenario {
        Some(Scenario::ScaleUpCrash) => Discovery::Dns,
        Some(Scenario::SlowFollowerStorage) => Discovery::Static,
        None if spec.faults.contains(&Kind::Scale) => Discovery::Dns,
        None => spec.discovery,
    };
    println!("== run {}: {} node(s), {} discovery, seed {}", spec.name, slots, discovery.name(), spec.seed);
    let mut cluster = Cluster::create(slots, discovery, &dir, &spec.work, tag, pids.clone(), targets.clone())?;
    cluster.log_retain = spec.log_retain;
    let result = drive(spec, &dir, &mut cluster, slots, targets).await;
    cluster.teardown();
    pids.end_all();
    for n in &cluster.nodes {
        let _ = std::fs::copy(n.db.dir.join("mysqld.err"), dir.join(format!("mysqld-{}.err", n.id())));
        let _ = std::fs::remove_dir_all(&n.db.dir);
    }
    result.map(|(errors, settled)| Outcome { dir, errors, settled })
}

async fn drive(
    spec: &RunSpec,
    dir: &Path,
    cluster: &mut Cluster,
    slots: usize,
    targets: Targets,
) -> Result<(Vec<String>, bool), String> {
    let shows = seed(&cluster.nodes[0].database_url()).await?;
    let (script, initial) = match spec.scenario {
        Some(s) => {
            let (f, n) = script(s);
            (Some(f), n.min(slots))
        }
        None => (None, spec.nodes),
    };
    for slot in 1..=initial {
        cluster.join(slot)?;
    }
    let t: Vec<(u64, String)> = targets.lock().unwrap().clone();
    if !settle(&t, Duration::from_secs(60)).await {
        return Err("the cluster did not elect a master and converge within 60 s of its start".into());
    }
    let start = Instant::now();
    let rec = Arc::new(Recorder::new(start));
    let mut schedule = match spec.scenario {
        Some(_) => Vec::new(),
        None => nemesis::plan(spec.seed, &spec.faults, spec.seconds),
    };
    if spec.faults.contains(&Kind::Lag) {
        // The first fault puts a follower behind the compaction point, so every run with
        // `--log-retain` has an install to make (and to interrupt).
        if let Some(first) = schedule.first_mut() {
            first.kind = Kind::Lag;
        }
    }
    {
        let mut out = String::new();
        for p in &schedule {
            out.push_str(&serde_json::to_string(p).unwrap());
            out.push('\n');
        }
        std::fs::write(dir.join("faults.jsonl"), out).map_err(|e| e.to_string())?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mon = actix_rt::spawn(monitor(rec.clone(), targets.clone(), cluster.master.clone(), stop.clone()));
    let workload = Rc::new(Workload {
        shows: shows.clone(),
        targets: targets.clone(),
        rec: rec.clone(),
        until: start + Duration::from_secs(spec.seconds),
        max_ops: 20_000,
    });
    let clients: Vec<_> =
        (0..spec.clients as u64).map(|p| actix_rt::spawn(workload.clone().run_client(p, spec.seed))).collect();
    // The nemesis has the cluster on its own thread: its steps block (processes, iptables).
    let owned = std::mem::replace(cluster, placeholder(cluster));
    let installs = spec.log_retain.map(|_| std::sync::Mutex::new(nemesis::InstallWatch::default()));
    let nem = Nemesis { rec: rec.clone(), start, initial, installs };
    let handle = std::thread::spawn(move || {
        let mut c = owned;
        let errors = match script {
            Some(f) => f(&nem, &mut c),
            None => nem.run(&mut c, &schedule),
        };
        (c, errors)
    });
    futures::future::join_all(clients).await;
    while !handle.is_finished() {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let (c, errors) = handle.join().map_err(|_| "the nemesis panicked".to_string())?;
    *cluster = c;
    let t: Vec<(u64, String)> = targets.lock().unwrap().clone();
    let mut settled = settle(&t, Duration::from_secs(90)).await;
    stop.store(true, Ordering::SeqCst);
    let _ = mon.await;
    // The master still writes after the clients stop (holds expire), so one member's log
    // may end an entry ahead of the others at the moment they are read: read them again,
    // settled, until they end alike (a log that stays behind or differs is reported).
    for _ in 0..5 {
        let ends: Vec<Option<(usize, Option<String>)>> = cluster
            .members
            .iter()
            .map(|&slot| {
                let l = write_log(&cluster.nodes[slot - 1].database_url()).ok()?;
                Some((l.len(), l.last().map(|e| serde_json::to_string(e).unwrap_or_default())))
            })
            .collect();
        if ends.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        settled = settle(&t, Duration::from_secs(20)).await && settled;
    }
    // Final reads and logs, straight from every member's database.
    let mut logs = BTreeMap::new();
    let mut bases = BTreeMap::new();
    for &slot in &cluster.members {
        let n = &cluster.nodes[slot - 1];
        for show in &shows {
            match final_read(&n.database_url(), show) {
                Ok((seats, doubles)) => {
                    let mut v = json!({ "show": show.id, "seats": seats });
                    if !doubles.is_empty() {
                        v["double_booked"] = json!(doubles);
                    }
                    rec.record(Process::Named("final".into()), Some(n.id()), Type::Ok, F::FinalRead, v);
                }
                Err(e) => {
                    rec.record(
                        Process::Named("final".into()),
                        Some(n.id()),
                        Type::Fail,
                        F::FinalRead,
                        json!({ "show": show.id, "error": e }),
                    );
                }
            }
        }
        if let Ok(l) = write_log(&n.database_url()) {
            logs.insert(n.id(), l);
        }
        if let Ok(Some((lsn, _))) = log_base(&n.database_url()) {
            bases.insert(n.id(), lsn);
        }
    }
    let events: Vec<Event> = rec.events();
    history::write(&dir.join("history.jsonl"), &events).map_err(|e| e.to_string())?;
    for (id, log) in &logs {
        let text: String = log.iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
        std::fs::write(dir.join(format!("wal-{id}.jsonl")), text).map_err(|e| e.to_string())?;
    }
    std::fs::write(dir.join(history::BASES_FILE), serde_json::to_string_pretty(&bases).unwrap())
        .map_err(|e| e.to_string())?;
    let meta = RunMeta {
        name: spec.name.clone(),
        seed: spec.seed,
        nodes: spec.nodes,
        faults: match spec.scenario {
            Some(Scenario::ScaleUpCrash) => vec!["scale".into(), "kill".into()],
            Some(Scenario::SlowFollowerStorage) => vec!["db-stall".into()],
            None => spec.faults.iter().map(|k| k.name().to_string()).collect(),
        },
        hold_ms: (HOLD_MINUTES * 60_000.0) as u64,
        seconds: spec.seconds,
        scenario: spec.scenario.map(|s| s.name().to_string()),
        discovery: cluster.discovery.name().to_string(),
        log_retain: spec.log_retain,
    };
    std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(&meta).unwrap()).map_err(|e| e.to_string())?;
    Ok((errors, settled))
}

/// An empty stand-in while the nemesis thread owns the cluster.
fn placeholder(c: &Cluster) -> Cluster {
    Cluster {
        nodes: Vec::new(),
        members: Default::default(),
        discovery: c.discovery,
        install: crate::node::Install { marquee: c.install.marquee.clone(), root: c.install.root.clone() },
        pids: c.pids.clone(),
        tag: c.tag.clone(),
        cuts: Default::default(),
        targets: c.targets.clone(),
        master: c.master.clone(),
        port: c.port,
        log_retain: c.log_retain,
    }
}
