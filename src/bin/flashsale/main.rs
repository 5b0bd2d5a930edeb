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
mod audit;
mod http;
mod load;
mod measure;
mod node;

use diesel::mysql::MysqlConnection;
use diesel::Connection;
use http::{get, http_client, node_stats, Answer};
use load::{run_clients, Load, Market, Pick};
use measure::{latency_line, mariadb_pids, mib, micros, percentile, rss_kib, server_status, CpuSample};
use node::{seed, Scratch};
use serde::de::IgnoredAny;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
  --pick free|random|best
                     how a client picks its two seats (free): `free` takes seats that the
                     latest seat map shows free and no other client here is trying; `random`
                     takes any two seats, so 409s grow as shows fill; `best` asks the show
                     for the best two (`{\"best\": 2}`). Maps are re-read every 200 ms (free,
                     best) or 1 s (random), less often past 10 shows (~50 a second). A list
                     (`--pick free,best`) runs the sale once per way, one after another, and
                     sets their figures side by side
  --nodes 1,3        cluster sizes to run the sale on, one after another in this run (1):
                     N > 1 starts N nodes on loopback, spreads the clients over them, and
                     audits every replica
  --rounds N         runs the whole list of cluster sizes N times (1); each round's ratio of
                     N nodes to one node, then the median of the rounds (`--nodes 1,3
                     --rounds 5`: the three-node target's five runs in one invocation)
  --threads N        load-generator threads, each an actix System with its own client (1)
  --concurrency N    seat maps read at once with --memory-shows (32)
  --marquee BIN      the node binary (default: `marquee` beside this program)
  --db-server URL    MariaDB server without a database (MARQUEE_TEST_DATABASE_URL, else
                     mysql://root:marquee@127.0.0.1:3307)
  --keep-db          leave the schema behind (for a look at it afterwards)
  --node-log FILTER  the node's RUST_LOG (warn); e.g. warn,marquee::wal::writer=debug shows
                     every group commit's size and time";

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
    println!("{}", marquee::config::load_test_limits_note());
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
            None => {
                let mut all_ok = true;
                let mut runs = Vec::new();
                'sales: for round in 1..=opts.rounds {
                    if opts.rounds > 1 {
                        println!("==== round {round} of {}", opts.rounds);
                    }
                    for &nodes in &opts.nodes {
                        for &pick in &opts.picks {
                            match flash_sale(&opts, nodes, pick, &stop).await {
                                Ok(f) => {
                                    all_ok &= f.ok;
                                    runs.push(Figures { round, ..f });
                                }
                                Err(e) => return (Err(e), stop.load(Ordering::SeqCst)),
                            }
                            if stop.load(Ordering::SeqCst) {
                                break 'sales;
                            }
                        }
                    }
                }
                if runs.len() > 1 {
                    let round_of =
                        |f: &Figures| if opts.rounds > 1 { format!("round {}: ", f.round) } else { String::new() };
                    println!("summary of this run:");
                    for f in &runs {
                        println!(
                            "  {}{} node(s), seats picked {:<6}: {:.0} holds/s (201), {:.0} confirmed bookings/s, \
                             p99 hold {:.1} ms, confirm {:.1} ms",
                            round_of(f),
                            f.nodes,
                            f.pick.name(),
                            f.holds,
                            f.rate,
                            f.p99_hold,
                            f.p99_confirm
                        );
                    }
                    let mut ratios: BTreeMap<(usize, &str), Vec<(f64, f64)>> = BTreeMap::new();
                    for f in runs.iter().filter(|f| f.nodes > 1) {
                        let same = |r: &&Figures| r.nodes == 1 && r.pick == f.pick && r.round == f.round;
                        if let Some(one) = runs.iter().find(same) {
                            let ratio = f.rate / one.rate.max(1e-9) * 100.0;
                            let p99 = f.p99_hold.max(f.p99_confirm);
                            ratios.entry((f.nodes, f.pick.name())).or_default().push((ratio, p99));
                            println!(
                                "  {}{} nodes keep {ratio:.0}% of one node's confirmed bookings/s, seats picked {} \
                                 (target: at least 60% with p99 under 40 ms)",
                                round_of(f),
                                f.nodes,
                                f.pick.name()
                            );
                        }
                    }
                    for ((nodes, pick), list) in ratios.iter().filter(|(_, l)| l.len() > 1) {
                        let median = |mut v: Vec<f64>| {
                            v.sort_by(f64::total_cmp);
                            let m = v.len() / 2;
                            if v.len().is_multiple_of(2) {
                                (v[m - 1] + v[m]) / 2.0
                            } else {
                                v[m]
                            }
                        };
                        let each: Vec<String> = list.iter().map(|(r, _)| format!("{r:.0}")).collect();
                        println!(
                            "  {nodes} nodes, seats picked {pick}, median of {} rounds: {:.0}% of one node ({} %), \
                             p99 {:.1} ms",
                            list.len(),
                            median(list.iter().map(|l| l.0).collect()),
                            each.join(", "),
                            median(list.iter().map(|l| l.1).collect())
                        );
                    }
                    for f in runs.iter().filter(|f| f.pick == Pick::Best) {
                        if let Some(free) = runs.iter().find(|r| r.nodes == f.nodes && r.pick == Pick::Free) {
                            println!(
                                "  {} node(s): best-available holds at {:.0}% of the rate of picked seats' holds",
                                f.nodes,
                                f.holds / free.holds.max(1e-9) * 100.0
                            );
                        }
                    }
                }
                Ok(all_ok)
            }
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
    /// How clients pick seats; one sale per entry, one after another (`--pick free,best`).
    picks: Vec<Pick>,
    threads: usize,
    memory_shows: Option<usize>,
    concurrency: usize,
    keep_db: bool,
    /// RUST_LOG of the node.
    node_log: String,
    /// Cluster sizes to run the sale on, one after another (`--nodes 1,3`).
    nodes: Vec<usize>,
    /// Times the list of cluster sizes is run (`--rounds 5`).
    rounds: usize,
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
            picks: vec![Pick::Free],
            threads: 1,
            memory_shows: None,
            concurrency: 32,
            keep_db: false,
            node_log: "warn".into(),
            nodes: vec![1],
            rounds: 1,
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
                    o.picks = value()?
                        .split(',')
                        .map(|p| match p.trim() {
                            "free" => Ok(Pick::Free),
                            "random" => Ok(Pick::Random),
                            "best" => Ok(Pick::Best),
                            other => {
                                Err(format!("--pick takes free, random or best (or a list of them), not '{other}'"))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                }
                "--rounds" => o.rounds = number(&flag, &value()?, 1, 20)?,
                "--threads" => o.threads = number(&flag, &value()?, 1, 64)?,
                "--memory-shows" => o.memory_shows = Some(number(&flag, &value()?, 1, 1_000_000)?),
                "--concurrency" => o.concurrency = number(&flag, &value()?, 1, 4096)?,
                "--keep-db" => o.keep_db = true,
                "--node-log" => o.node_log = value()?,
                "--nodes" => {
                    let v = value()?;
                    o.nodes = v
                        .split(',')
                        .map(|n| n.trim().parse::<usize>().ok().filter(|n| (1..=7).contains(n)))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| format!("--nodes takes cluster sizes from 1 to 7, like 1,3; not '{v}'"))?;
                }
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
// The two modes

/// One sale's headline figures, for the summary of a run with several.
struct Figures {
    /// Which round of `--rounds` (from 1).
    round: usize,
    nodes: usize,
    pick: Pick,
    /// Every acknowledged booking audited, no double sale.
    ok: bool,
    /// Confirmed bookings per second.
    rate: f64,
    /// Holds answered 201 per second.
    holds: f64,
    p99_hold: f64,
    p99_confirm: f64,
}

async fn flash_sale(opts: &Options, nodes: usize, pick: Pick, stop: &Arc<AtomicBool>) -> Result<Figures, String> {
    let mut scratch = Scratch::new(opts);
    println!(
        "== {nodes} node(s){}",
        if nodes > 1 { ", clients spread over them (followers forward writes to the master)" } else { "" }
    );
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
        match pick {
            Pick::Free => "two the latest seat map shows free",
            Pick::Random => "two at random",
            Pick::Best => "the best two, chosen by the show (\"best\": 2)",
        }
    );
    let seeded = seed(&scratch, opts.shows, opts.per_theater, opts.rows, opts.seats).await?;
    println!("schema {} seeded; starting {}", scratch.name, opts.marquee.display());
    let (bases, base) = if nodes == 1 {
        let b = scratch.start_node(opts, stop).await?;
        (vec![b.clone()], b)
    } else {
        scratch.start_cluster(opts, stop, nodes).await?
    };
    let pid = scratch.node_pid().unwrap_or_default();
    println!("node pid {pid} at {base}{}", if nodes > 1 { " (the master)" } else { "" });
    let control = http_client(8);

    // Every show's seat map once: the show actors load before the clock starts.
    let market = Arc::new(Market::new(pick, seeded.labels, seeded.show_ids.clone()));
    let mut rng = rand::thread_rng();
    for &show in &seeded.show_ids {
        match get(&control, format!("{base}/api/shows/{show}/seats")).await {
            Answer::Ok(map) => market.refreshed(show, map, &mut rng),
            Answer::Status(s) => return Err(format!("show {show}: the seat map answered {s}")),
            Answer::Transport(e) => return Err(format!("show {show}: {e}")),
        }
    }
    // Seat maps cost the node and this program alike: about 50 a second in all.
    let refresh = match pick {
        Pick::Free | Pick::Best => MAP_REFRESH.max(Duration::from_millis(20 * opts.shows as u64)),
        Pick::Random => Duration::from_secs(1).max(Duration::from_millis(20 * opts.shows as u64)),
    };
    let mut db = scratch.connect()?;
    let status_before = server_status(&mut db);
    let stats_before = match node_stats(&control, &base).await {
        Ok(s) => s,
        Err(e) => return Err(scratch.explain(e)),
    };
    let rss_before = rss_kib(pid);
    let mariadb = mariadb_pids(&mut db);
    let followers = scratch.follower_pids();
    let cpu_before = CpuSample::take(pid, &followers, &mariadb);

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(opts.seconds);
    let per_thread = opts.clients / opts.threads;
    let mut helpers = Vec::new();
    for t in 1..opts.threads {
        let first = t * per_thread;
        let n = if t + 1 == opts.threads { opts.clients - first } else { per_thread };
        let (bases, market, stop) = (bases.clone(), market.clone(), stop.clone());
        helpers.push(std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let load = Rc::new(Load { bases, market, start, deadline, stop, refresh });
                run_clients(first, n, false, load).await
            })
        }));
    }
    let load =
        Rc::new(Load { bases: bases.clone(), market: market.clone(), start, deadline, stop: stop.clone(), refresh });
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
        Err(e) => return Err(scratch.explain(e)),
    };
    let status_after = server_status(&mut db);
    let rss_after = rss_kib(pid);
    let cpu_after = CpuSample::take(pid, &followers, &mariadb);
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
    if elapsed < 3.0 {
        println!(
            "  (a short sale: the first wave of {} new connections weighs on these figures; --shows 100 \
             measures a sustained rate)",
            opts.clients
        );
    }
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
    let mut ok = audit::audit(&mut db, &tally.acks)?;
    drop(db);
    if nodes > 1 {
        // Every replica must hold the same acknowledged bookings and no double sale.
        if !scratch.wait_converged(&base).await {
            println!("the replicas did not catch up with the master within 30 s");
            ok = false;
        }
        for url in scratch.schema_urls().into_iter().skip(1) {
            println!("replica {url}:");
            let mut replica = MysqlConnection::establish(&url).map_err(|e| format!("{url}: {e}"))?;
            ok &= audit::audit(&mut replica, &tally.acks)?;
        }
    }
    scratch.stop_node();
    Ok(Figures { round: 0, nodes, pick, ok, rate, holds: tally.holds_201 as f64 / secs, p99_hold, p99_confirm })
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
