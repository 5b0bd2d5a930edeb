//! `campaign`: a Jepsen-style fault campaign against real `marquee serve` processes.
//!
//! It runs a cluster on loopback (each node its own address 127.0.0.1x, its own Unix user
//! and its own MariaDB server), drives a contended booking workload from many clients,
//! injects faults (kill, pause, partition, db-kill, db-stall, skew, scale), records every
//! operation as a history in Jepsen's shape, and checks it: lost and unexpected bookings,
//! double sales, divergent logs, and linearizability per seat.
//!
//! ```text
//! campaign [--runs R] [--seconds S] [--nodes 3[,5]] [--faults kill,pause,...|all|none]
//!          [--mix] [--clients C] [--discovery static|dns|both] [--seed N] [--out DIR]
//!          [--log-retain N]
//! campaign --scenario scale-up-crash|slow-follower-storage [--seed N] [--out DIR]
//! campaign check DIR/<run>...    # check saved histories again, one table for all
//! campaign clean [--out DIR]     # end what an interrupted campaign left behind
//! ```
//! It must run as root (iptables, other users, /etc/hosts) on Linux, with mariadb-server,
//! iptables and faketime installed (scripts/campaign.sh installs them).
//!
//! `--log-retain N` passes LOG_RETAIN_ENTRIES=N to every node, so the logs compact all the
//! time, kills nodes caught installing a snapshot (see [`nemesis::InstallWatch`]), and
//! fails a run in which no node installed one.
mod checker;
mod cluster;
mod history;
mod mariadb;
mod nemesis;
mod net;
mod node;
mod procs;
mod report;
mod run;
mod snapshots;
mod workload;

use nemesis::Kind;
use node::Discovery;
use run::{RunSpec, Scenario};
use std::path::{Path, PathBuf};

struct Options {
    runs: usize,
    seconds: u64,
    nodes: Vec<usize>,
    faults: Vec<Kind>,
    mix: bool,
    clients: usize,
    discovery: String,
    seed: u64,
    out: PathBuf,
    scenario: Option<Scenario>,
    /// LOG_RETAIN_ENTRIES for every node; None leaves the nodes' default (no compaction
    /// within a run).
    log_retain: Option<u64>,
}

fn usage() -> ! {
    eprintln!(
        "usage: campaign [--runs R] [--seconds S] [--nodes 3[,5]] [--faults LIST|all|none] [--mix] [--clients C]\n\
         \x20               [--discovery static|dns|both] [--seed N] [--out DIR] [--scenario NAME]\n\
         \x20               [--log-retain N]\n\
         \x20      campaign check DIR/<run>\n\
         \x20      campaign clean [--out DIR]"
    );
    std::process::exit(2)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        runs: 1,
        seconds: 60,
        nodes: vec![3],
        faults: vec![Kind::Kill, Kind::Pause, Kind::Partition],
        mix: false,
        clients: 10,
        discovery: "both".into(),
        seed: rand::random::<u32>() as u64,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/campaign"),
        scenario: None,
        log_retain: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|_| format!("{a}: '{v}' is not a number"));
        match a.as_str() {
            "--runs" => o.runs = num(val()?)?.clamp(1, 1000) as usize,
            "--seconds" => o.seconds = num(val()?)?.clamp(10, 3600),
            "--nodes" => {
                o.nodes = val()?
                    .split(',')
                    .map(|n| n.trim().parse::<usize>().ok().filter(|n| (1..=9).contains(n)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("--nodes takes numbers from 1 to 9, e.g. 3,5")?
            }
            "--faults" => o.faults = Kind::parse_list(&val()?)?,
            "--mix" => o.mix = true,
            "--clients" => o.clients = num(val()?)?.clamp(1, 64) as usize,
            "--discovery" => {
                o.discovery = val()?;
                if !["static", "dns", "both"].contains(&o.discovery.as_str()) {
                    return Err("--discovery is static, dns or both".into());
                }
            }
            "--seed" => o.seed = num(val()?)?,
            "--out" => o.out = PathBuf::from(val()?),
            "--scenario" => o.scenario = Some(Scenario::parse(&val()?)?),
            "--log-retain" => {
                let n = num(val()?)?;
                if n == 0 {
                    return Err("--log-retain takes at least 1 (0 would never compact)".into());
                }
                o.log_retain = Some(n)
            }
            "-h" | "--help" => usage(),
            _ => return Err(format!("unknown argument '{a}'")),
        }
    }
    Ok(o)
}

/// What an earlier, interrupted campaign may have left: processes, iptables rules,
/// /etc/hosts lines, database directories.
fn leftovers(out: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (file, pid, what) in procs::leftovers(out) {
        found.push(format!("process {pid} ({what}) from {}", file.display()));
    }
    let rules = net::rules_left(net::TAG);
    if rules > 0 {
        found.push(format!("{rules} iptables rule(s) tagged {}", net::TAG));
    }
    let hosts = net::hosts_left(net::TAG);
    if hosts > 0 {
        found.push(format!("{hosts} /etc/hosts line(s) tagged {}", net::TAG));
    }
    for d in data_dirs(out) {
        found.push(format!("data directory {}", d.display()));
    }
    found
}

/// The MariaDB data directories (`<run>/db-<node>`) left under `out`.
fn data_dirs(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|run| std::fs::read_dir(run.path()).into_iter().flatten().flatten())
        .filter(|d| d.file_name().to_string_lossy().starts_with("db-"))
        .map(|d| d.path())
        .filter(|p| p.is_dir())
        .collect()
}

fn clean(out: &Path) -> i32 {
    for (file, pid, what) in procs::leftovers(out) {
        if procs::end_if_ours(pid, &what) {
            println!("ended {what} {pid}");
        }
        let _ = std::fs::remove_file(file);
    }
    for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
        if entry.path().extension().and_then(|e| e.to_str()) == Some("pids") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    match net::remove_rules(net::TAG) {
        Ok(n) => println!("removed {n} iptables rule(s)"),
        Err(e) => eprintln!("{e}"),
    }
    match net::hosts_remove(None, net::TAG) {
        Ok(n) => println!("removed {n} /etc/hosts line(s)"),
        Err(e) => eprintln!("{e}"),
    }
    for d in data_dirs(out) {
        let _ = std::fs::remove_dir_all(&d);
        println!("removed {}", d.display());
    }
    if leftovers(out).is_empty() {
        0
    } else {
        1
    }
}

fn check_dir(dir: &Path) -> Result<report::Row, String> {
    let events = history::read(&dir.join("history.jsonl"))?;
    let meta: history::RunMeta = serde_json::from_str(
        &std::fs::read_to_string(dir.join("run.json")).map_err(|e| format!("{}/run.json: {e}", dir.display()))?,
    )
    .map_err(|e| format!("{}/run.json: {e}", dir.display()))?;
    let mut logs = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(id) = name.strip_prefix("wal-").and_then(|n| n.strip_suffix(".jsonl")) {
            let id: u64 = id.parse().map_err(|_| format!("{name}: not wal-<node>.jsonl"))?;
            let text = std::fs::read_to_string(entry.path()).map_err(|e| e.to_string())?;
            let log = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str::<history::LogEntry>)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{name}: {e}"))?;
            logs.insert(id, log);
        }
    }
    // Runs from before compaction have no bases.json: nothing was compacted.
    let bases: std::collections::BTreeMap<u64, i64> = match std::fs::read_to_string(dir.join(history::BASES_FILE)) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", history::BASES_FILE))?,
        Err(_) => Default::default(),
    };
    let verdict = checker::check(&checker::Input { meta: &meta, events: &events, logs: &logs, bases: &bases });
    std::fs::write(dir.join("verdict.json"), serde_json::to_string_pretty(&verdict).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    let snapshots = snapshots::of_run(dir)?;
    std::fs::write(dir.join("snapshots.json"), serde_json::to_string_pretty(&snapshots).unwrap_or_default())
        .map_err(|e| e.to_string())?;
    Ok(report::Row { meta, verdict, settled: true, errors: Vec::new(), snapshots: snapshots::total(&snapshots) })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("probe") if args.len() == 3 => net::probe_main(&args[1], &args[2]),
        Some("check") if args.len() > 1 => {
            // Each argument a run's directory; the table covers them all.
            let mut rows = Vec::new();
            for dir in args[1..].iter().map(Path::new).filter(|d| d.join("run.json").is_file()) {
                match check_dir(dir) {
                    Ok(row) => {
                        report::print_run(&row, dir);
                        rows.push(row);
                    }
                    Err(e) => {
                        eprintln!("campaign check: {e}");
                        std::process::exit(2);
                    }
                }
            }
            if rows.is_empty() {
                eprintln!("campaign check: no run directory (with a run.json) given");
                2
            } else {
                report::print(&rows)
            }
        }
        Some("check") => usage(),
        Some("clean") => match parse(&args[1..]) {
            Ok(o) => clean(&o.out),
            Err(e) => {
                eprintln!("campaign: {e}");
                2
            }
        },
        _ => {
            let rest = if args.first().map(String::as_str) == Some("run") { &args[1..] } else { &args[..] };
            match parse(rest) {
                Ok(o) => campaign(o),
                Err(e) => {
                    eprintln!("campaign: {e}");
                    usage()
                }
            }
        }
    };
    std::process::exit(code);
}

fn campaign(mut o: Options) -> i32 {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("campaign: run as root (iptables rules, a Unix user per node, /etc/hosts)");
        return 2;
    }
    if let Err(e) = std::fs::create_dir_all(&o.out) {
        eprintln!("campaign: {}: {e}", o.out.display());
        return 2;
    }
    println!("{}", marquee::config::load_test_limits_note());
    // Absolute: mariadb-install-db and mariadbd resolve a relative data directory against
    // their own base directory.
    o.out = match o.out.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("campaign: {}: {e}", o.out.display());
            return 2;
        }
    };
    let left = leftovers(&o.out);
    if !left.is_empty() {
        eprintln!("campaign: leftovers of an earlier campaign; run `campaign clean` first:");
        for l in left {
            eprintln!("  {l}");
        }
        return 2;
    }
    procs::catch_interrupts();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let mut specs = Vec::new();
    if let Some(s) = o.scenario {
        specs.push(RunSpec {
            name: format!("{stamp}-{}", s.name()),
            seed: o.seed,
            nodes: if s == Scenario::ScaleUpCrash { 4 } else { 3 },
            faults: Vec::new(),
            seconds: o.seconds.min(if s == Scenario::ScaleUpCrash { 30 } else { 25 }),
            clients: o.clients,
            discovery: Discovery::Static,
            scenario: Some(s),
            log_retain: o.log_retain,
            out: o.out.clone(),
            work: o.out.clone(),
        });
    } else {
        let groups: Vec<Vec<Kind>> = if o.mix || o.faults.is_empty() {
            vec![o.faults.clone()]
        } else {
            o.faults.iter().map(|k| vec![*k]).collect()
        };
        for i in 0..o.runs {
            let mut faults = groups[i % groups.len()].clone();
            // A follower behind the compaction point in every run (the first fault is one).
            if o.log_retain.is_some() && !faults.is_empty() && !faults.contains(&Kind::Lag) {
                faults.push(Kind::Lag);
            }
            let nodes = o.nodes[(i / groups.len()) % o.nodes.len()];
            let discovery = match o.discovery.as_str() {
                "static" => Discovery::Static,
                "dns" => Discovery::Dns,
                _ if i % 2 == 0 => Discovery::Static,
                _ => Discovery::Dns,
            };
            let names: Vec<&str> = groups[i % groups.len()].iter().map(|k| k.name()).collect();
            let label = match names.len() {
                0 => "none".to_string(),
                1 => names[0].to_string(),
                _ => "mix".to_string(),
            };
            specs.push(RunSpec {
                name: format!("{stamp}-{:02}-{label}-n{nodes}", i + 1),
                seed: o.seed.wrapping_add(i as u64),
                nodes,
                faults,
                seconds: o.seconds,
                clients: o.clients,
                discovery,
                scenario: None,
                log_retain: o.log_retain,
                out: o.out.clone(),
                work: o.out.clone(),
            });
        }
    }
    let mut rows = Vec::new();
    let mut failed_to_start = 0;
    let system = actix_rt::System::new();
    for spec in &specs {
        if procs::interrupted() {
            break;
        }
        let outcome = system.block_on(run::run(spec));
        match outcome {
            Ok(out) => match check_dir(&out.dir) {
                Ok(mut row) => {
                    row.settled = out.settled;
                    row.errors = out.errors;
                    report::print_run(&row, &out.dir);
                    rows.push(row);
                }
                Err(e) => {
                    eprintln!("campaign: checking {}: {e}", out.dir.display());
                    return 2;
                }
            },
            Err(e) => {
                // A cluster that cannot start is a finding too; the other runs go on.
                eprintln!("campaign: run {} could not run: {e}", spec.name);
                clean(&o.out);
                failed_to_start += 1;
            }
        }
    }
    let mut code = report::print(&rows);
    if failed_to_start > 0 {
        println!("campaign: {failed_to_start} run(s) could not start (see above)");
        code = 1;
    }
    if procs::interrupted() {
        eprintln!("campaign: interrupted; everything it started is cleaned up");
        return 130;
    }
    code
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn log_retain_is_optional_and_at_least_one() {
        assert_eq!(parse(&args(&[])).unwrap().log_retain, None);
        assert_eq!(parse(&args(&["--log-retain", "50"])).unwrap().log_retain, Some(50));
        assert!(parse(&args(&["--log-retain", "0"])).is_err());
        assert!(parse(&args(&["--log-retain"])).is_err());
    }
}
