//! The report: a line per run as it ends, a table of every run, totals per fault kind, and
//! the final line whose numbers decide the exit status.
use crate::checker::Verdict;
use crate::history::RunMeta;
use crate::snapshots::Counts;
use std::collections::BTreeMap;
use std::path::Path;

pub struct Row {
    pub meta: RunMeta,
    pub verdict: Verdict,
    /// Whether a master was elected and every node converged after the faults healed.
    pub settled: bool,
    /// What the nemesis could not do (a cut that did not hold, a restart that failed).
    pub errors: Vec<String>,
    /// Compactions and snapshot installs, summed over the nodes' logs.
    pub snapshots: Counts,
}

impl Row {
    pub fn failed(&self) -> bool {
        !self.verdict.is_clean() || !self.settled || !self.errors.is_empty() || self.uncovered()
    }

    /// A run with `--log-retain` in which no node installed a snapshot did not test what
    /// the option is for: it fails.
    pub fn uncovered(&self) -> bool {
        self.meta.log_retain.is_some() && self.snapshots.installed == 0
    }

    fn faults(&self) -> String {
        match &self.meta.scenario {
            Some(s) => s.clone(),
            None if self.meta.faults.is_empty() => "none".into(),
            None => self.meta.faults.join("+"),
        }
    }
}

fn show_list(title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    println!("  {title} ({}):", items.len());
    for i in items.iter().take(10) {
        println!("    {i}");
    }
    if items.len() > 10 {
        println!("    ... and {} more (verdict.json has all)", items.len() - 10);
    }
}

/// What one run found, printed as soon as it is checked.
pub fn print_run(r: &Row, dir: &Path) {
    let v = &r.verdict;
    println!(
        "run {} ({} nodes, {}, {}): {} ops, {} ok, {} fail, {} unknown; {} acknowledged; {} lost, {} unexpected, {} double sold, {} violations, {} divergent{}",
        r.meta.name,
        r.meta.nodes,
        r.faults(),
        r.meta.discovery,
        v.ops,
        v.ok,
        v.fail,
        v.unknown,
        v.acknowledged,
        v.lost.len(),
        v.unexpected.len(),
        v.double_sold.len(),
        v.violations.len(),
        v.divergent.len(),
        if r.settled { "" } else { "; DID NOT SETTLE" }
    );
    show_list("lost", &v.lost);
    show_list("unexpected", &v.unexpected);
    show_list("double sold", &v.double_sold);
    let violations: Vec<String> =
        v.violations.iter().map(|x| format!("{}: {} [{}]", x.seat, x.explanation, x.ops.join("; "))).collect();
    show_list("not linearizable", &violations);
    show_list("undecided (the search ran out of budget; not clean)", &v.undecided);
    show_list("malformed history lines (not clean)", &v.malformed);
    show_list("divergent", &v.divergent);
    show_list("nemesis errors", &r.errors);
    let s = &r.snapshots;
    if let Some(n) = r.meta.log_retain {
        println!(
            "  log retain {n}: {} compactions; {} snapshot installs begun, {} installed, {} failed, {} interrupted by a kill ({} installed after the restart), {} unfinished; longest {} ms{}",
            s.compactions,
            s.started,
            s.installed,
            s.failed,
            s.interrupted,
            s.reinstalled,
            s.unfinished,
            s.longest_ms,
            if r.uncovered() { "; NO SNAPSHOT INSTALLED (the run did not cover installs)" } else { "" }
        );
    } else if s.compactions + s.started > 0 {
        println!("  {} compactions, {} snapshots installed", s.compactions, s.installed);
    }
    if s.undone_cuts + s.rebuilds > 0 {
        println!(
            "  logs cut where another master's won: {} by undoing {} entries, {} by rebuilding the tables",
            s.undone_cuts, s.undone_entries, s.rebuilds
        );
    }
    for (fault, share, ops) in &v.availability {
        println!("  availability during {fault}: {:.0} % of {ops} ops answered definitely", share * 100.0);
    }
    if let Some(ms) = v.longest_without_master_ms {
        println!("  longest time without a master: {:.1} s", ms as f64 / 1000.0);
    }
    println!("  history: {}/history.jsonl", dir.display());
}

#[derive(Default)]
struct Totals {
    runs: usize,
    ops: usize,
    ok: usize,
    fail: usize,
    unknown: usize,
    acked: usize,
    lost: usize,
    unexpected: usize,
    double: usize,
    violations: usize,
    divergent: usize,
    unsettled: usize,
    errors: usize,
    no_master_ms: u64,
    snapshots: Counts,
    uncovered: usize,
}

impl Totals {
    fn add(&mut self, r: &Row) {
        let v = &r.verdict;
        self.runs += 1;
        self.ops += v.ops;
        self.ok += v.ok;
        self.fail += v.fail;
        self.unknown += v.unknown;
        self.acked += v.acknowledged;
        self.lost += v.lost.len();
        self.unexpected += v.unexpected.len();
        self.double += v.double_sold.len();
        self.violations += v.violations.len();
        self.divergent += v.divergent.len();
        self.unsettled += usize::from(!r.settled);
        self.errors += r.errors.len();
        self.no_master_ms = self.no_master_ms.max(v.longest_without_master_ms.unwrap_or(0));
        self.snapshots.add(&r.snapshots);
        self.uncovered += usize::from(r.uncovered());
    }

    fn line(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {} | {} / {} / {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
            self.runs,
            self.ops,
            self.ok,
            self.fail,
            self.unknown,
            self.acked,
            self.lost,
            self.unexpected,
            self.double,
            self.violations,
            self.divergent + self.unsettled,
            self.no_master_ms as f64 / 1000.0
        )
    }
}

/// The table and the final line; returns the exit status (1 if anything was found).
pub fn print(rows: &[Row]) -> i32 {
    let header = "| faults | runs | ops | ok / fail / unknown | acknowledged | lost | unexpected | double sold | violations | divergent | longest without master |";
    println!();
    println!("{header}");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut by: BTreeMap<(String, usize), Totals> = BTreeMap::new();
    let mut all = Totals::default();
    for r in rows {
        by.entry((r.faults(), r.meta.nodes)).or_default().add(r);
        all.add(r);
    }
    for ((faults, nodes), t) in &by {
        println!("{}", t.line(&format!("{faults}, {nodes} nodes")));
    }
    println!("{}", all.line("total"));
    println!(
        "campaign: {} runs, {} ops, {} acknowledged, {} lost, {} unexpected, {} double sold, {} violations",
        all.runs, all.ops, all.acked, all.lost, all.unexpected, all.double, all.violations
    );
    if rows.iter().any(|r| r.meta.log_retain.is_some()) {
        let s = &all.snapshots;
        println!(
            "campaign: {} compactions, {} snapshots installed, {} failed installs, {} installs interrupted by a kill ({} installed after the restart), {} runs without an install",
            s.compactions, s.installed, s.failed, s.interrupted, s.reinstalled, all.uncovered
        );
    }
    let s = &all.snapshots;
    println!(
        "campaign: logs cut where another master's won: {} by undoing {} entries, {} by rebuilding the tables",
        s.undone_cuts, s.undone_entries, s.rebuilds
    );
    let undecided: usize = rows.iter().map(|r| r.verdict.undecided.len() + r.verdict.malformed.len()).sum();
    if all.divergent > 0 || all.unsettled > 0 || all.errors > 0 || undecided > 0 {
        println!(
            "campaign: also {} divergent logs, {} runs that did not settle, {} nemesis errors, {} undecided seats or malformed lines",
            all.divergent, all.unsettled, all.errors, undecided
        );
    }
    i32::from(rows.iter().any(Row::failed))
}
