//! `marquee serve | migrate | import | cluster | backup | restore | fixture-api`.
use crate::actors::importer::client_for;
use crate::catalog::{import_feed, ImportCounts};
use crate::config::Settings;
use crate::importer::{serve_fixture, Fault, FixtureConfig, Progress};
use crate::startup::{open_database, start_log, Application};
use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: marquee serve
       marquee migrate
       marquee import                       (from the API: FLIXSTER_BASE_URL, FLIXSTER_API_KEY, IMPORT_ZIP, ...)
       marquee import --from DIR [--date YYYY-MM-DD]
       marquee cluster remove ID [--node HOST:PORT]   (an operator removes a crashed node; CLUSTER_SECRET signs)
       marquee backup --to DIR [--node HOST:PORT]     (a consistent snapshot from the master; CLUSTER_SECRET signs)
       marquee restore --from DIR [--whole-cluster]   (into DATABASE_URL's database, migrated and empty)
       marquee fixture-api --dir DIR [--bind ADDR] [--key KEY] [--date YYYY-MM-DD] [--fault FAULT]
         FAULT: slow:MILLISECONDS | error:EVERY_NTH | rate-limit:FIRST_N | broken-json[:THEATER_ID]
                | missing-field | wrong-type | oversized | status:HTTP_STATUS";

pub fn main() -> Result<(), String> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,actix_server=warn"))
        .format_timestamp_millis()
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    match args.first().map(String::as_str) {
        Some("serve") | None => serve(settings),
        Some("migrate") => {
            open_database(&settings).map_err(|e| e.to_string())?;
            log::info!("database is migrated");
            Ok(())
        }
        Some("import") if args.iter().any(|a| a == "--from") => crate::catalog::cli_import(settings, &args[1..]),
        Some("import") => api_import(settings, &args[1..]),
        Some("fixture-api") => fixture_api(&args[1..]),
        Some("cluster") => cluster_command(settings, &args[1..]),
        Some("backup") => backup_command(settings, &args[1..]),
        Some("restore") => restore_command(settings, &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n{USAGE}")),
    }
}

/// How long a node stopping on SIGTERM waits for its removal from the cluster to commit
/// (docker compose gives 10 s before SIGKILL).
const LEAVE_GRACE: Duration = Duration::from_secs(6);

/// How long a master stopping on SIGTERM waits to hand mastership over (the core gives up
/// waiting for its writes after a failure timeout and hands over regardless).
const HANDOVER_GRACE: Duration = Duration::from_secs(3);

fn serve(settings: Settings) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let dns = matches!(settings.cluster.peers, crate::cluster::config::PeerSource::Dns { .. });
        let app = Application::build(settings).map_err(|e| e.to_string())?;
        let (handle, coordinator) = (app.handle(), app.state.coordinator.clone());
        actix_web::rt::spawn(async move {
            let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            // A master hands over first (its writes decided, its most up-to-date voter
            // elected at once), so a restart costs no failure timeout of refused writes.
            log::info!("stopping: handing mastership over first, if this node has it");
            let hand_over = coordinator.send(crate::cluster::election::HandOver);
            if actix_rt::time::timeout(HANDOVER_GRACE, hand_over).await.is_err() {
                log::warn!("stopping before mastership was handed over");
            }
            // Under DNS discovery a node that stops is being scaled away: it leaves the
            // membership through the log, so the quorum shrinks with it. (Under a static
            // PEERS list the membership stays; a stopped node is one restarting.)
            if dns {
                log::info!("stopping: leaving the cluster first (at most {} s)", LEAVE_GRACE.as_secs());
                let leave = coordinator.send(crate::cluster::election::Leave);
                if actix_rt::time::timeout(LEAVE_GRACE, leave).await.is_err() {
                    log::warn!("stopping before the removal was committed");
                }
            }
            handle.stop(true).await;
        });
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

/// `slow:200`, `error:3`, `rate-limit:5`, `broken-json`, `broken-json:ID`, `missing-field`,
/// `wrong-type`, `oversized`, `status:404`, `none`.
pub fn parse_fault(raw: &str) -> Result<Fault, String> {
    let (name, value) = raw.split_once(':').map(|(n, v)| (n, Some(v))).unwrap_or((raw, None));
    let number = |v: Option<&str>| -> Result<u32, String> {
        v.ok_or(format!("--fault {name} needs a number, like {name}:3"))?
            .parse()
            .map_err(|_| format!("'{raw}': the value must be a whole number"))
    };
    Ok(match name {
        "none" => Fault::None,
        "slow" => Fault::Slow(Duration::from_millis(u64::from(number(value)?))),
        "error" => Fault::ServerError { every_nth: number(value)? },
        "rate-limit" => Fault::RateLimited { first_n: number(value)? },
        "broken-json" => Fault::BrokenJson { theater_id: value.map(str::to_string) },
        "missing-field" => Fault::MissingField,
        "wrong-type" => Fault::WrongType,
        "status" => Fault::Status(number(value)?.try_into().map_err(|_| format!("'{raw}' is not an HTTP status"))?),
        "oversized" => Fault::Oversized,
        _ => return Err(format!("unknown fault '{raw}'")),
    })
}

/// `marquee fixture-api`: serves a Flixster-shaped data set, dates moved to this week.
fn fixture_api(args: &[String]) -> Result<(), String> {
    let mut dir = None;
    let mut cfg = FixtureConfig::new("");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => dir = Some(value()?),
            "--bind" => cfg.bind = value()?,
            "--key" => cfg.required_key = Some(value()?),
            "--fault" => cfg.fault = parse_fault(&value()?)?,
            "--date" => {
                let d = value()?;
                cfg.today = Some(
                    chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| format!("'{d}' is not a date"))?,
                );
            }
            other => return Err(format!("unknown option '{other}'\n{USAGE}")),
        }
    }
    cfg.dir = dir.ok_or(format!("fixture-api needs --dir DIR\n{USAGE}"))?.into();
    eprintln!(
        "serving {} as the Flixster API on http://{}; import from it with FLIXSTER_BASE_URL=http://{} marquee import",
        cfg.dir.display(),
        cfg.bind,
        cfg.bind
    );
    actix_web::rt::System::new().block_on(serve_fixture(cfg)).map_err(|e| e.to_string())
}

/// `\r[#########           ] 55/110 theaters`, on a terminal only.
struct ProgressBar {
    on: bool,
}

impl ProgressBar {
    const WIDTH: usize = 30;

    fn show(&self, p: Progress) {
        if !self.on || p.total == 0 {
            return;
        }
        let filled = p.done * Self::WIDTH / p.total;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {}/{} theaters",
            "#".repeat(filled),
            " ".repeat(Self::WIDTH - filled),
            p.done,
            p.total
        );
        let _ = err.flush();
    }

    /// `\r[######              ] 4/14 tables, bookings: 12000 rows (15321 in all)`.
    fn rows(&self, p: &crate::backup::Progress) {
        if !self.on || p.tables == 0 {
            return;
        }
        let filled = p.tables_done.min(p.tables) * Self::WIDTH / p.tables;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {}/{} tables, {}: {} rows ({} in all)\x1b[K",
            "#".repeat(filled),
            " ".repeat(Self::WIDTH - filled),
            p.tables_done,
            p.tables,
            p.table,
            p.table_rows,
            p.rows
        );
        let _ = err.flush();
    }

    fn end(&self) {
        if self.on {
            eprintln!();
        }
    }
}

pub fn describe(c: &ImportCounts) -> String {
    format!(
        "theaters {} new, {} updated, {} unchanged; movies {} new, {} updated, {} unchanged; \
         shows {} new, {} updated, {} unchanged, {} removed, {} withdrawn (kept for their bookings)",
        c.theaters.created,
        c.theaters.updated,
        c.theaters.unchanged,
        c.movies.created,
        c.movies.updated,
        c.movies.unchanged,
        c.shows.created,
        c.shows.updated,
        c.shows.unchanged,
        c.shows_removed,
        c.shows_withdrawn
    )
}

/// `marquee import`: the whole catalog through the API client, then one write.
fn api_import(settings: Settings, args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("unknown option '{a}'\n{USAGE}"));
    }
    let client = client_for(&settings.flixster)?;
    actix_web::rt::System::new().block_on(async move {
        let db = open_database(&settings).map_err(|e| e.to_string())?;
        let writer = start_log(&db).map_err(|e| e.to_string())?;
        let bar = ProgressBar { on: std::io::stderr().is_terminal() };
        let started = Instant::now();
        let fetched = client.fetch_catalog(|p| bar.show(p)).await;
        bar.end();
        let report = fetched.map_err(|e| format!("import failed, nothing was written: {e}"))?;
        let fetch_time = started.elapsed();
        let transactions = writer.stats().transactions.load(Ordering::Relaxed);
        let outcome = import_feed(&db, &writer, None, report.feed, settings.flixster.feed_timezone)
            .await
            .map_err(|e| format!("import failed, nothing was written: {e}"))?;
        let total = started.elapsed();
        println!("imported from {}: {}", settings.flixster.base_url, describe(&outcome.counts));
        println!(
            "{:.2} s in all: fetched in {:.2} s ({} requests, {} retries), written in {:.2} s \
             ({} write transaction(s){})",
            total.as_secs_f64(),
            fetch_time.as_secs_f64(),
            report.requests,
            report.retries,
            (total - fetch_time).as_secs_f64(),
            writer.stats().transactions.load(Ordering::Relaxed) - transactions,
            outcome.lsn.map(|l| format!(", log entry {l}")).unwrap_or_default()
        );
        Ok(())
    })
}

/// `marquee cluster remove ID [--node HOST:PORT]`: asks a node (by default this one, at its
/// INTERNAL_BIND, else MARQUEE_BIND) to have the master remove node ID from the membership,
/// signed with the cluster secret. For a node that crashed and will not come back: until then it stays a
/// voter, so a crash never shrinks the quorum.
fn cluster_command(settings: Settings, args: &[String]) -> Result<(), String> {
    use crate::cluster::client::Rpc;
    use crate::cluster::{ClusterState, Peer};
    use actix::Actor;
    let (Some("remove"), Some(id)) = (args.first().map(String::as_str), args.get(1)) else {
        return Err(format!("usage: marquee cluster remove ID [--node HOST:PORT]\n{USAGE}"));
    };
    let id: u64 = id.parse().map_err(|_| format!("'{id}' is not a node id"))?;
    let node = match (args.get(2).map(String::as_str), args.get(3)) {
        (Some("--node"), Some(n)) => n.clone(),
        // This node's node-to-node listener.
        (None, _) => own_node(&settings),
        _ => return Err("usage: marquee cluster remove ID [--node HOST:PORT]".into()),
    };
    actix_web::rt::System::new().block_on(async move {
        let cluster = std::sync::Arc::new(ClusterState::new(settings.cluster.clone(), 0, Vec::new()));
        let rpc = Rpc { cluster, clock: crate::actors::lamport::LamportClock::new(0).start() };
        let peer = Peer { id: 0, address: node.clone() };
        let client = Rpc::http_client(Duration::from_secs(10));
        let answer = rpc
            .call::<_, crate::cluster::messages::Relayed<()>>(
                &client,
                &peer,
                "/internal/admin/remove",
                serde_json::json!({ "id": id }),
            )
            .await
            .map_err(|e| e.to_string())?;
        match answer.body {
            Ok(()) => {
                println!("node {id}: removal asked of the master (through {node}); see /api/cluster");
                Ok(())
            }
            Err(refusal) => Err(format!("refused: {refusal}")),
        }
    })
}

/// This node's node-to-node listener, for commands that ask it (`cluster remove`, `backup`).
fn own_node(settings: &Settings) -> String {
    settings.internal_bind.as_deref().unwrap_or(&settings.bind).replace("0.0.0.0", "127.0.0.1")
}

/// What `marquee backup` was asked: `--to DIR [--node HOST:PORT]`.
#[derive(Debug, PartialEq)]
struct BackupArgs {
    dir: std::path::PathBuf,
    node: Option<String>,
}

fn parse_backup_args(args: &[String]) -> Result<BackupArgs, String> {
    let usage = "usage: marquee backup --to DIR [--node HOST:PORT]";
    let (mut dir, mut node) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value\n{usage}"));
        match a.as_str() {
            "--to" => dir = Some(value()?),
            "--node" => node = Some(value()?),
            other => return Err(format!("unknown option '{other}'\n{usage}")),
        }
    }
    Ok(BackupArgs { dir: dir.ok_or(usage)?.into(), node })
}

/// `marquee backup --to DIR [--node HOST:PORT]`: a consistent snapshot of the cluster's
/// replicated tables, from the master (a follower asked names it), into DIR.
fn backup_command(settings: Settings, args: &[String]) -> Result<(), String> {
    use crate::cluster::client::Rpc;
    use crate::cluster::ClusterState;
    use actix::Actor;
    let args = parse_backup_args(args)?;
    let node = args.node.clone().unwrap_or_else(|| own_node(&settings));
    actix_web::rt::System::new().block_on(async move {
        let cluster = std::sync::Arc::new(ClusterState::new(settings.cluster.clone(), 0, Vec::new()));
        let rpc = Rpc { cluster, clock: crate::actors::lamport::LamportClock::new(0).start() };
        let bar = ProgressBar { on: std::io::stderr().is_terminal() };
        let started = Instant::now();
        let taken = crate::backup::fetch::backup(&rpc, &node, false, &args.dir, &mut |p| bar.rows(p)).await;
        bar.end();
        let m = taken.map_err(|e| format!("backup failed, {} holds no backup: {e}", args.dir.display()))?;
        let secs = started.elapsed().as_secs_f64();
        log::info!(
            "backup: LSN {} (epoch {}) from node {}, {} rows, into {}",
            m.lsn,
            m.epoch,
            m.node,
            m.rows(),
            args.dir.display()
        );
        println!(
            "backed up the log to LSN {} (epoch {}), {} rows in {} tables, from node {} in {secs:.1} s into {}",
            m.lsn,
            m.epoch,
            m.rows(),
            m.tables.len(),
            m.node,
            args.dir.display()
        );
        Ok(())
    })
}

/// `marquee restore --from DIR [--whole-cluster]`: loads a backup into DATABASE_URL's
/// database (migrated, empty), as node NODE_ID.
fn restore_command(settings: Settings, args: &[String]) -> Result<(), String> {
    let usage = "usage: marquee restore --from DIR [--whole-cluster]";
    let (mut dir, mut whole_cluster) = (None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--from" => dir = Some(it.next().ok_or(format!("--from needs a value\n{usage}"))?),
            "--whole-cluster" => whole_cluster = true,
            other => return Err(format!("unknown option '{other}'\n{usage}")),
        }
    }
    let dir = std::path::PathBuf::from(dir.ok_or(usage)?);
    let opts = crate::backup::restore::RestoreOptions {
        dir: &dir,
        database_url: &settings.database_url,
        node_id: settings.cluster.node_id,
        whole_cluster,
    };
    let bar = ProgressBar { on: std::io::stderr().is_terminal() };
    let started = Instant::now();
    let restored = crate::backup::restore::restore(&opts, &mut |p| bar.rows(p));
    bar.end();
    let m = restored.map_err(|e| format!("restore refused, nothing was changed: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    log::info!(
        "restore: LSN {} (epoch {}) from {} as node {}{}, {} rows",
        m.lsn,
        m.epoch,
        dir.display(),
        settings.cluster.node_id,
        if whole_cluster { " (whole cluster)" } else { "" },
        m.rows()
    );
    println!(
        "restored the log to LSN {} (epoch {}), {} rows in {} tables, in {secs:.1} s; `marquee serve` catches up \
         from there",
        m.lsn,
        m.epoch,
        m.rows(),
        m.tables.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_from_the_command_line() {
        assert_eq!(parse_fault("slow:250"), Ok(Fault::Slow(Duration::from_millis(250))));
        assert_eq!(parse_fault("error:3"), Ok(Fault::ServerError { every_nth: 3 }));
        assert_eq!(parse_fault("rate-limit:5"), Ok(Fault::RateLimited { first_n: 5 }));
        assert_eq!(parse_fault("broken-json"), Ok(Fault::BrokenJson { theater_id: None }));
        assert_eq!(parse_fault("broken-json:abc"), Ok(Fault::BrokenJson { theater_id: Some("abc".into()) }));
        assert_eq!(parse_fault("wrong-type"), Ok(Fault::WrongType));
        assert!(parse_fault("slow").is_err());
        assert!(parse_fault("slow:x").is_err());
        assert!(parse_fault("gremlins").is_err());
    }

    #[test]
    fn backup_options_read_from_the_command_line() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_backup_args(&args(&["--to", "/b", "--node", "10.0.0.2:8001"])),
            Ok(BackupArgs { dir: "/b".into(), node: Some("10.0.0.2:8001".into()) })
        );
        assert_eq!(parse_backup_args(&args(&["--to", "/b"])), Ok(BackupArgs { dir: "/b".into(), node: None }));
        assert!(parse_backup_args(&args(&[])).is_err());
        assert!(parse_backup_args(&args(&["--to"])).is_err());
        assert!(parse_backup_args(&args(&["--to", "/b", "--force"])).is_err());
    }
}
