//! Backups on real nodes (issue 15): `marquee backup` run as an operator runs it, against a
//! follower of a cluster taking bookings; `marquee restore` into fresh databases; a whole
//! cluster rebuilt from the backup, one node joining late and catching up through the log;
//! and every refusal (a used database, a tampered file, no manifest, a directory that holds
//! a backup, a voter's id, a wrong secret) changing nothing.
mod common;

use common::cluster::{book, bookings_in, conn_to, log_in, Cluster, History, Op, Outcome};
use common::{fresh_db_name, server_url};
use diesel::prelude::*;
use marquee::backup::format::{Manifest, MANIFEST};
use marquee::db::snapshot::TABLES;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: usize = 20;
const SEATS: usize = 20;

/// A scratch directory and databases, removed at the end (kept if the test fails).
struct Scratch {
    dir: PathBuf,
    databases: Vec<String>,
}

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("marquee-backup-{}", marquee::domain::random_token(10)));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir, databases: Vec::new() }
    }

    /// A new database name (created by `migrate`), dropped at the end.
    fn database(&mut self) -> String {
        let name = fresh_db_name();
        self.databases.push(name.clone());
        name
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {} and databases {:?}", self.dir.display(), self.databases);
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Ok(mut c) = MysqlConnection::establish(&server_url()) {
            for d in &self.databases {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS `{d}`")).execute(&mut c);
            }
        }
    }
}

/// Runs a `marquee` command to its end off the test's thread: (success, stdout + stderr).
async fn run(mut command: std::process::Command) -> (bool, String) {
    let out = actix_rt::task::spawn_blocking(move || command.output().expect("run marquee")).await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `marquee backup --to DIR --node ADDRESS` with node `i`'s environment.
fn backup_command(c: &Cluster, i: usize, dir: &Path, node: &str) -> std::process::Command {
    let mut cmd = c.command(i);
    cmd.arg("backup").arg("--to").arg(dir).arg("--node").arg(node);
    cmd
}

/// `marquee ARGS` with node `i`'s environment, as node `node_id` on database `db`.
fn command_on(c: &Cluster, i: usize, node_id: u64, db: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = c.command(i);
    cmd.env("NODE_ID", node_id.to_string()).env("DATABASE_URL", format!("{}/{db}", server_url())).args(args);
    cmd
}

async fn migrate(c: &Cluster, db: &str) {
    let (ok, out) = run(command_on(c, 0, 1, db, &["migrate"])).await;
    assert!(ok, "migrate: {out}");
}

fn manifest(dir: &Path) -> Manifest {
    Manifest::parse(&std::fs::read_to_string(dir.join(MANIFEST)).unwrap(), TABLES).unwrap()
}

fn count(db: &str, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<N>(&mut conn_to(db)).unwrap().n
}

/// What a refused restore must leave as it was: the rows of every table a restore writes.
fn footprint(db: &str) -> Vec<i64> {
    TABLES.iter().chain(&["node_state"]).map(|t| count(db, &format!("SELECT COUNT(*) AS n FROM `{t}`"))).collect()
}

fn internal(c: &Cluster, i: usize) -> String {
    format!("127.0.0.1:{}", c.nodes[i].internal_port.expect("an internal listener"))
}

/// No seat in two bookings.
fn doubles(bookings: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut owner = std::collections::HashMap::new();
    let mut doubles = Vec::new();
    for (code, seats) in bookings {
        for s in seats {
            if let Some(other) = owner.insert(s.clone(), code.clone()) {
                doubles.push(format!("{s}: {other} and {code}"));
            }
        }
    }
    doubles
}

fn random_seats(n: usize) -> Vec<String> {
    let mut all: Vec<String> = (0..ROWS)
        .flat_map(|r| (1..=SEATS).map(move |s| format!("{}{s}", marquee::catalog::layout::row_label(r))))
        .collect();
    all.shuffle(&mut rand::thread_rng());
    all.truncate(n);
    all
}

/// `clients` clients booking through random nodes until `stop`.
fn start_load(
    c: &Cluster,
    clients: usize,
    history: Arc<History>,
    stop: Arc<AtomicBool>,
) -> Vec<actix_rt::task::JoinHandle<()>> {
    let urls: Vec<String> = (0..c.nodes.len()).map(|i| c.url(i, "")).collect();
    let show = c.show;
    (0..clients)
        .map(|who| {
            let (urls, history, stop) = (urls.clone(), history.clone(), stop.clone());
            actix_rt::spawn(async move {
                let client = awc::Client::builder().timeout(Duration::from_secs(4)).disable_redirects().finish();
                while !stop.load(Ordering::SeqCst) {
                    let node = rand::thread_rng().gen_range(0..urls.len());
                    let seats = random_seats(rand::thread_rng().gen_range(1..=2));
                    let invoked = Instant::now();
                    let outcome = book(&client, &urls[node], show, &seats, who).await;
                    history.record(Op { client: who, node, seats, invoked, completed: Instant::now(), outcome });
                    actix_rt::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect()
}

/// The bookings acknowledged before `at`: code → sorted seats.
fn acknowledged_before(history: &History, at: Instant) -> BTreeMap<String, Vec<String>> {
    history
        .ops()
        .into_iter()
        .filter(|op| op.completed < at)
        .filter_map(|op| match op.outcome {
            Outcome::Booked(code) => {
                let mut seats = op.seats.clone();
                seats.sort();
                Some((code, seats))
            }
            _ => None,
        })
        .collect()
}

fn missing(want: &BTreeMap<String, Vec<String>>, have: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    want.iter()
        .filter(|(code, seats)| have.get(*code) != Some(seats))
        .map(|(code, s)| format!("{code} {s:?}"))
        .collect()
}

#[actix_rt::test]
async fn a_backup_from_a_follower_under_load_restores_every_acknowledged_booking_and_a_restored_cluster_catches_up() {
    let mut scratch = Scratch::new();
    let mut c = Cluster::start_with(3, ROWS, SEATS, true).await;
    let master = c.wait_for_master(Duration::from_secs(30)).await.expect("a master");
    let follower = (0..3).find(|i| *i != master).unwrap();
    let history = Arc::new(History::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&c, 4, history.clone(), stop.clone());

    // Some bookings first, then the backup while the clients go on booking.
    let until = Instant::now() + Duration::from_secs(60);
    while acknowledged_before(&history, Instant::now()).len() < 15 && Instant::now() < until {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let dir = scratch.dir.join("backup");
    let started = Instant::now();
    let before = acknowledged_before(&history, started);
    assert!(before.len() >= 15, "too few bookings before the backup: {}", before.len());
    let (ok, out) = run(backup_command(&c, follower, &dir, &internal(&c, follower))).await;
    assert!(ok, "backup through follower {}: {out}\n{}", c.nodes[follower].id, c.tail_logs());
    let after = acknowledged_before(&history, Instant::now());
    for h in load {
        stop.store(true, Ordering::SeqCst);
        let _ = actix_rt::time::timeout(Duration::from_secs(15), h).await;
    }
    assert!(after.len() > before.len(), "no booking was acknowledged while the backup ran");
    let m = manifest(&dir);
    assert_eq!(m.node, c.nodes[master].id, "the master served it");
    assert_eq!(m.membership.as_ref().map(|m| m.voters.clone()), Some(vec![1, 2, 3]));
    assert!(out.contains(&format!("LSN {}", m.lsn)), "{out}");
    for t in &m.tables {
        assert!(dir.join(&t.file).exists(), "{} is missing", t.file);
    }

    // Restored under a new id (not a voter) into a fresh database.
    let restored = scratch.database();
    migrate(&c, &restored).await;
    let (ok, out) = run(command_on(&c, 0, 9, &restored, &["restore", "--from", dir.to_str().unwrap()])).await;
    assert!(ok, "restore: {out}");
    let bookings = bookings_in(&mut conn_to(&restored));
    let lost = missing(&before, &bookings);
    assert!(lost.is_empty(), "acknowledged before the backup, not in it: {lost:?}");
    assert!(doubles(&bookings).is_empty(), "seats sold twice: {:?}", doubles(&bookings));
    let log = log_in(&mut conn_to(&restored));
    assert_eq!(log.last().map(|e| (e.0, e.1)), Some((m.lsn, m.epoch)), "the restored log ends at the manifest's LSN");
    assert_eq!(log.len() as i64, m.lsn, "the log from LSN 1, without a gap");
    assert_eq!(
        count(&restored, "SELECT COUNT(*) AS n FROM write_log"),
        m.tables.iter().find(|t| t.name == "write_log").unwrap().rows as i64
    );
    // Consistent: the bookings are exactly those the restored log confirms (every table
    // was read at one moment, the log's last entry included with its effect).
    let rows: Vec<marquee::db::models::WriteLogRow> = {
        use marquee::db::schema::write_log;
        write_log::table.select(marquee::db::models::WriteLogRow::as_select()).load(&mut conn_to(&restored)).unwrap()
    };
    let logged: std::collections::BTreeSet<String> = rows
        .into_iter()
        .filter_map(|r| match marquee::wal::LogRecord::from_row(r).unwrap().change {
            marquee::wal::Change::BookingConfirmed(b) => Some(b.code),
            _ => None,
        })
        .collect();
    assert_eq!(bookings.keys().cloned().collect::<std::collections::BTreeSet<_>>(), logged);
    // The master's log holds the same entries up to there: a committed prefix.
    let master_log = c.log(master);
    assert_eq!(master_log[..log.len()], log[..], "the backup's log is a prefix of the master's");
    assert_eq!(count(&restored, "SELECT value AS n FROM node_state WHERE name = 'epoch'"), m.epoch);
    assert_eq!(count(&restored, "SELECT value AS n FROM node_state WHERE name = 'voted_for'"), 0);

    // Disaster recovery: the whole cluster from the backup. Every node stops, each is
    // restored (under its own id, --whole-cluster) into a fresh database; nodes 1 and 2 (a
    // majority) start and elect, take a booking, then node 3 starts and must catch up from
    // the backup's LSN through the log.
    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        let old = std::mem::replace(&mut c.nodes[i].db_name, fresh_db_name());
        scratch.databases.push(old);
        let (db, id) = (c.nodes[i].db_name.clone(), c.nodes[i].id);
        migrate(&c, &db).await;
        let args = ["restore", "--from", dir.to_str().unwrap()];
        let (ok, out) = run(command_on(&c, i, id, &db, &args)).await;
        assert!(!ok && out.contains("--whole-cluster"), "a voter's id is refused without --whole-cluster: {out}");
        let args = ["restore", "--from", dir.to_str().unwrap(), "--whole-cluster"];
        let (ok, out) = run(command_on(&c, i, id, &db, &args)).await;
        assert!(ok, "restore of node {id}: {out}");
    }
    c.spawn(0);
    c.spawn(1);
    let new_master = c.wait_for_master(Duration::from_secs(30)).await.expect("a master of the restored cluster");
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    // A seat neither booked nor held in the backup.
    let held: Vec<String> = {
        #[derive(QueryableByName)]
        struct Seats {
            #[diesel(sql_type = diesel::sql_types::Text)]
            seats: String,
        }
        let rows: Vec<Seats> =
            diesel::sql_query("SELECT seats FROM holds WHERE state = 'active'").load(&mut conn_to(&restored)).unwrap();
        rows.iter().flat_map(|r| r.seats.split(',').map(str::to_string)).collect()
    };
    let free = (0..ROWS * SEATS)
        .map(|n| format!("{}{}", marquee::catalog::layout::row_label(n / SEATS), n % SEATS + 1))
        .find(|s| !bookings.values().flatten().any(|b| b == s) && !held.contains(s))
        .expect("a free seat");
    let outcome = book(&client, &c.url(new_master, ""), c.show, std::slice::from_ref(&free), 99).await;
    assert!(matches!(outcome, Outcome::Booked(_)), "{outcome:?}");
    let master_log = c.log(new_master);
    assert!(master_log.len() as i64 > m.lsn, "the restored cluster wrote past the backup");
    c.spawn(2);
    // Node 3 catches up (whoever is master once it has: the bully may hand over to it).
    let until = Instant::now() + Duration::from_secs(45);
    let mut logs = Vec::new();
    while Instant::now() < until {
        if c.wait_converged(Duration::from_secs(5)).await {
            logs = (0..3).map(|i| c.log(i)).collect();
            if logs[0] == logs[1] && logs[1] == logs[2] {
                break;
            }
        }
    }
    assert!(logs.len() == 3 && logs[2] == logs[0] && logs[2] == logs[1], "node 3 did not catch up\n{}", c.tail_logs());
    assert_eq!(logs[2][..master_log.len()], master_log[..], "node 3 holds what the master wrote past the backup");
    assert_eq!(c.bookings(2), c.bookings(0));
    let lost = missing(&before, &c.bookings(2));
    assert!(lost.is_empty(), "lost by the restored cluster: {lost:?}");
    assert!(doubles(&c.bookings(2)).is_empty());
}

#[actix_rt::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let mut scratch = Scratch::new();
    let c = Cluster::start_with(1, 4, 5, true).await;
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    for seat in ["A1", "B2"] {
        let outcome = book(&client, &c.url(0, ""), c.show, &[seat.to_string()], 1).await;
        assert!(matches!(outcome, Outcome::Booked(_)), "{outcome:?}");
    }
    let dir = scratch.dir.join("good");
    let (ok, out) = run(backup_command(&c, 0, &dir, &internal(&c, 0))).await;
    assert!(ok, "backup: {out}");
    let path = |d: &str| dir.to_str().unwrap().replace("good", d);

    // A directory that holds a backup: refused, the backup as it was.
    let before = std::fs::read(dir.join(MANIFEST)).unwrap();
    let (ok, out) = run(backup_command(&c, 0, &dir, &internal(&c, 0))).await;
    assert!(!ok && out.contains("already holds a backup"), "{out}");
    assert_eq!(std::fs::read(dir.join(MANIFEST)).unwrap(), before);
    assert_eq!(manifest(&dir).tables.len(), TABLES.len());

    // A wrong secret: the node refuses to stream, and no directory is left behind.
    let wrong = PathBuf::from(path("wrong"));
    let mut cmd = backup_command(&c, 0, &wrong, &internal(&c, 0));
    cmd.env("CLUSTER_SECRET", "not-the-cluster-secret-at-all");
    let (ok, out) = run(cmd).await;
    assert!(!ok && out.contains("401"), "{out}");
    assert!(!wrong.exists(), "the directory it made is gone again");

    let target = scratch.database();
    migrate(&c, &target).await;
    let empty = footprint(&target);
    assert!(empty.iter().all(|n| *n == 0));
    let restore = |from: &str, id: u64| command_on(&c, 0, id, &target, &["restore", "--from", from]);

    // The backed-up cluster's voter (node 1) under its own id: refused.
    let (ok, out) = run(restore(dir.to_str().unwrap(), 1)).await;
    assert!(!ok && out.contains("voter"), "{out}");
    assert_eq!(footprint(&target), empty);

    // A table file changed after the backup: refused before anything is loaded.
    let tampered = path("tampered");
    copy_dir(&dir, Path::new(&tampered));
    let file = Path::new(&tampered).join("bookings.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("Client 1"));
    std::fs::write(&file, text.replacen("Client 1", "Client 7", 1)).unwrap();
    let (ok, out) = run(restore(&tampered, 7)).await;
    assert!(!ok && out.contains("checksum mismatch") && out.contains("bookings.jsonl"), "{out}");
    assert_eq!(footprint(&target), empty);

    // No manifest (a backup that did not finish): refused.
    let unfinished = path("unfinished");
    copy_dir(&dir, Path::new(&unfinished));
    std::fs::remove_file(Path::new(&unfinished).join(MANIFEST)).unwrap();
    let (ok, out) = run(restore(&unfinished, 7)).await;
    assert!(!ok && out.contains("no manifest.json"), "{out}");
    assert_eq!(footprint(&target), empty);

    // A database that is not migrated: refused, and nothing created in it.
    let bare = scratch.database();
    diesel::sql_query(format!("CREATE DATABASE `{bare}`"))
        .execute(&mut MysqlConnection::establish(&server_url()).unwrap())
        .unwrap();
    let (ok, out) = run(command_on(&c, 0, 7, &bare, &["restore", "--from", dir.to_str().unwrap()])).await;
    assert!(!ok && out.contains("marquee migrate"), "{out}");
    let tables = format!("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = '{bare}'");
    assert_eq!(count(&bare, &tables), 0);

    // The good backup loads; loading it again into the now used database is refused.
    let (ok, out) = run(restore(dir.to_str().unwrap(), 7)).await;
    assert!(ok, "{out}");
    assert_eq!(bookings_in(&mut conn_to(&target)), c.bookings(0));
    let loaded = footprint(&target);
    let (ok, out) = run(restore(dir.to_str().unwrap(), 7)).await;
    assert!(!ok && out.contains("not empty"), "{out}");
    assert_eq!(footprint(&target), loaded);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Every table read in chunks of two rows (each chunk after the last key of the one
/// before, as a backup reads them) is the same rows, in the same order, as read at once.
#[actix_rt::test]
async fn a_table_read_in_small_chunks_is_the_same_rows_as_read_at_once() {
    use marquee::db::snapshot::{read_chunk, ChunkCursor};
    let app = common::spawn_app().await;
    let show = app.seed_show(4, 5, chrono::Duration::days(1)).await;
    for seats in [["A1", "A2"], ["B3", "B4"], ["C1", "C2"]] {
        app.book(show, &seats).await;
    }
    let (status, _) = app.hold(show, &["D1"]).await;
    assert_eq!(status.as_u16(), 201);
    let mut conn = conn_to(&app.db_name);
    for table in TABLES {
        let whole = read_chunk(&mut conn, table, &ChunkCursor::new(1_000_000)).unwrap();
        let mut cursor = ChunkCursor::new(2);
        let mut parts = Vec::new();
        while !cursor.done {
            let rows = read_chunk(&mut conn, table, &cursor).unwrap();
            cursor.advance(rows.len(), rows.last().map(|(k, _)| k.clone()));
            parts.extend(rows);
        }
        assert_eq!(parts, whole, "{table}");
        assert_eq!(cursor.rows as usize, whole.len());
    }
    // Tables of each kind of key hold more than a chunk: whole numbers, text, pairs.
    for table in ["write_log", "holds", "bookings", "booking_seats", "layout_rows"] {
        let n = read_chunk(&mut conn, table, &ChunkCursor::new(1_000_000)).unwrap().len();
        assert!(n > 2, "{table} holds {n} rows");
    }
}
