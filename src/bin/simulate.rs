//! `simulate`: runs the cluster protocol's core over seeded fault schedules and checks its
//! invariants after every step (see `marquee::cluster::core::sim` and docs/protocol.md).
//!
//! - `simulate --seeds N [--from S] [--threads T]`: N seeds from S (default 0), ending with
//!   `simulate: N seeds, M steps, V violations`; exits non-zero on any violation.
//! - `simulate --seed N`: one seed, with the trace of its last events when it fails.
//! - `--scenario random|scale-up-crash|slow-follower-storage|bootstrap` (default random).
//! - `--trace`: print the trace even when the run passes.
use marquee::cluster::core::sim::{run, run_traced_on_failure, Options, Outcome, Scenario};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct Args {
    seed: Option<u64>,
    seeds: u64,
    from: u64,
    threads: usize,
    opts: Options,
}

fn usage(why: &str) -> ExitCode {
    eprintln!("simulate: {why}");
    eprintln!(
        "usage: simulate [--seeds N [--from S] [--threads T] | --seed N] \
         [--scenario random|scale-up-crash|slow-follower-storage|bootstrap|rolling-restart|snapshot-install|diverged-compacted] [--trace]"
    );
    ExitCode::from(2)
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        seed: None,
        seeds: 1000,
        from: 0,
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        opts: Options::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| v.parse::<u64>().map_err(|_| format!("{name}: '{v}' is not a number"));
        match flag.as_str() {
            "--seed" => a.seed = Some(number("--seed", value("--seed")?)?),
            "--seeds" => a.seeds = number("--seeds", value("--seeds")?)?,
            "--from" => a.from = number("--from", value("--from")?)?,
            "--threads" => a.threads = number("--threads", value("--threads")?)?.clamp(1, 64) as usize,
            "--scenario" => {
                let v = value("--scenario")?;
                a.opts.scenario = Scenario::parse(&v).ok_or_else(|| format!("no scenario '{v}'"))?;
            }
            "--trace" => a.opts.trace = true,
            "--trace-keep" => a.opts.trace_keep = number("--trace-keep", value("--trace-keep")?)? as usize,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(a)
}

fn report(out: &Outcome) {
    println!("seed {}: {} violation(s)", out.seed, out.violations.len());
    for v in &out.violations {
        println!("  {v}");
    }
    if !out.trace.is_empty() {
        println!("trace (last {} events):", out.trace.len());
        for l in &out.trace {
            println!("  {l}");
        }
    }
    if !out.violations.is_empty() {
        println!("replay: simulate --seed {} --scenario <the same>", out.seed);
    }
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => return usage(&e),
    };
    if let Some(seed) = args.seed {
        let out = run_traced_on_failure(seed, &args.opts);
        report(&out);
        println!(
            "simulate: 1 seeds, {} steps, {} violations ({} bookings, {} elections, {} nodes, longest time without a writable master {} ms, {} snapshots installed, compacted logs cut {} times by undo and refused {} times)",
            out.steps,
            out.violations.len(),
            out.booked,
            out.elections,
            out.nodes,
            out.longest_gap,
            out.installs,
            out.undone_cuts,
            out.refused_cuts
        );
        return if out.violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(args.from));
    let end = args.from + args.seeds;
    let steps = Arc::new(AtomicU64::new(0));
    let cuts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let failed: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let threads: Vec<_> = (0..args.threads)
        .map(|_| {
            let (next, steps, failed, opts) = (next.clone(), steps.clone(), failed.clone(), args.opts.clone());
            let cuts = cuts.clone();
            std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= end {
                    break;
                }
                let out = run(seed, &opts);
                steps.fetch_add(out.steps, Ordering::Relaxed);
                cuts.0.fetch_add(out.undone_cuts as u64, Ordering::Relaxed);
                cuts.1.fetch_add(out.refused_cuts as u64, Ordering::Relaxed);
                if !out.violations.is_empty() {
                    failed.lock().unwrap_or_else(|p| p.into_inner()).push(out);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let mut failed = std::mem::take(&mut *failed.lock().unwrap_or_else(|p| p.into_inner()));
    failed.sort_by_key(|o| o.seed);
    let violations: usize = failed.iter().map(|o| o.violations.len()).sum();
    if let Some(first) = failed.first() {
        report(&run_traced_on_failure(first.seed, &args.opts));
        let seeds: Vec<String> = failed.iter().take(20).map(|o| o.seed.to_string()).collect();
        println!("failing seeds: {}", seeds.join(" "));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "simulate: {} seeds, {} steps, {violations} violations ({secs:.1} s, {:.0} seeds/s; compacted logs cut {} times by undo, refused {} times)",
        args.seeds,
        steps.load(Ordering::Relaxed),
        args.seeds as f64 / secs.max(1e-9),
        cuts.0.load(Ordering::Relaxed),
        cuts.1.load(Ordering::Relaxed)
    );
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
