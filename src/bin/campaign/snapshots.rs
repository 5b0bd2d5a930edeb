//! Log compaction, snapshot installs and cuts, counted from the nodes' own logs
//! (`DIR/<run>/node-<id>.log`): how often each node compacted, started installing its
//! master's snapshot, installed it, failed to, and was killed half way (and installed it
//! after its restart); and how each cut of a log that differed from its master's was
//! made: by undoing the lost entries, or by rebuilding the tables. The campaign writes [`START_MARK`] into a node's log before each
//! process of it starts, so an install that a process began and never ended is one a kill
//! interrupted.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The line the campaign writes into a node's log before it starts a process of it.
pub const START_MARK: &str = "campaign: a process starts for node";

/// What one line of a node's log says about compaction and snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// The campaign started a process of the node.
    Start,
    /// "compacted its log up to N".
    Compacted,
    /// "... installs its snapshot": the node began fetching its master's snapshot.
    Installing,
    /// "installed node X's snapshot at L in T ms".
    Installed { ms: u64 },
    /// "snapshot from node X not installed: ..." or "cannot fetch a snapshot from node X".
    Failed,
    /// "log writer: undid N entries after L".
    Undone { entries: u64 },
    /// "log writer: ...: rebuilding the tables from the log up to L".
    Rebuilt,
}

pub fn classify(line: &str) -> Option<Line> {
    if line.starts_with(START_MARK) {
        Some(Line::Start)
    } else if line.contains("compacted its log up to") {
        Some(Line::Compacted)
    } else if line.contains("installs its snapshot") {
        Some(Line::Installing)
    } else if line.contains("'s snapshot at ") && line.contains(": installed node ") {
        let ms = line.rsplit_once(" in ").and_then(|(_, t)| t.trim().strip_suffix(" ms")?.parse().ok());
        Some(Line::Installed { ms: ms.unwrap_or(0) })
    } else if line.contains("not installed: ") || line.contains("cannot fetch a snapshot from node") {
        Some(Line::Failed)
    } else if let Some((_, rest)) = line.split_once("log writer: undid ") {
        let entries = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        Some(Line::Undone { entries })
    } else if line.contains("rebuilding the tables from the log up to") {
        Some(Line::Rebuilt)
    } else {
        None
    }
}

/// One node's figures, or a run's (summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// "compacted its log up to N" lines.
    pub compactions: usize,
    /// Installs begun ("installs its snapshot").
    pub started: usize,
    /// Installs that ended installed.
    pub installed: usize,
    /// Installs that ended with an error (the node fetches again at its master's next word).
    pub failed: usize,
    /// Installs the process never ended: it was killed half way (the next process of the
    /// node began before an outcome was logged).
    pub interrupted: usize,
    /// Interrupted installs after which the node's next process installed a snapshot.
    pub reinstalled: usize,
    /// Installs still under way when the log ends (the run's teardown killed the node).
    pub unfinished: usize,
    /// The longest install, fetch included, in ms.
    pub longest_ms: u64,
    /// Cuts made by undoing the lost entries, and how many entries they undid.
    #[serde(default)]
    pub undone_cuts: usize,
    #[serde(default)]
    pub undone_entries: u64,
    /// Cuts made by rebuilding the tables from the log (an entry could not be undone).
    #[serde(default)]
    pub rebuilds: usize,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.compactions += o.compactions;
        self.started += o.started;
        self.installed += o.installed;
        self.failed += o.failed;
        self.interrupted += o.interrupted;
        self.reinstalled += o.reinstalled;
        self.unfinished += o.unfinished;
        self.longest_ms = self.longest_ms.max(o.longest_ms);
        self.undone_cuts += o.undone_cuts;
        self.undone_entries += o.undone_entries;
        self.rebuilds += o.rebuilds;
    }
}

/// The figures of one node's log.
pub fn count(text: &str) -> Counts {
    let mut c = Counts::default();
    // Whether an install is under way in the current process, and whether the process
    // before was killed installing and no install has ended well since.
    let (mut installing, mut after_interrupt) = (false, false);
    for line in text.lines() {
        match classify(line) {
            Some(Line::Start) => {
                if installing {
                    c.interrupted += 1;
                    after_interrupt = true;
                }
                installing = false;
            }
            Some(Line::Compacted) => c.compactions += 1,
            Some(Line::Installing) => {
                c.started += 1;
                installing = true;
            }
            Some(Line::Installed { ms }) => {
                c.installed += 1;
                c.longest_ms = c.longest_ms.max(ms);
                installing = false;
                if after_interrupt {
                    c.reinstalled += 1;
                    after_interrupt = false;
                }
            }
            Some(Line::Failed) => {
                c.failed += 1;
                installing = false;
            }
            Some(Line::Undone { entries }) => {
                c.undone_cuts += 1;
                c.undone_entries += entries;
            }
            Some(Line::Rebuilt) => c.rebuilds += 1,
            None => {}
        }
    }
    c.unfinished = usize::from(installing);
    c
}

/// Every node's figures from the `node-<id>.log` files of a run's directory.
pub fn of_run(dir: &Path) -> Result<BTreeMap<u64, Counts>, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(id) = name.strip_prefix("node-").and_then(|n| n.strip_suffix(".log")) {
            let Ok(id) = id.parse::<u64>() else { continue };
            let bytes = std::fs::read(entry.path()).map_err(|e| format!("{name}: {e}"))?;
            out.insert(id, count(&String::from_utf8_lossy(&bytes)));
        }
    }
    Ok(out)
}

pub fn total(nodes: &BTreeMap<u64, Counts>) -> Counts {
    let mut t = Counts::default();
    nodes.values().for_each(|c| t.add(c));
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    const I: &str = "[2026-12-06T07:00:00Z INFO  marquee::cluster::core::node] ";

    #[test]
    fn cuts_are_classified_and_counted() {
        const W: &str = "[2026-12-06T07:00:00.000Z WARN  marquee::wal::writer] ";
        let text = log(&[
            &format!("{W}log writer: undid 7 entries after 120 (another master's log wins)"),
            &format!("{W}log writer: undid 2 entries after 130 (another master's log wins)"),
            &format!(
                "{W}log writer: entry 141 (catalog) cannot be undone: the rows an import replaced are not in the \
                 entry: rebuilding the tables from the log up to 140"
            ),
        ]);
        let c = count(&text);
        assert_eq!((c.undone_cuts, c.undone_entries, c.rebuilds), (2, 9, 1));
    }

    #[test]
    fn lines_are_classified() {
        let l = |s: &str| classify(&format!("{I}{s}"));
        assert_eq!(l("node 12: compacted its log up to 150 (50 entries deleted in 3 ms)"), Some(Line::Compacted));
        assert_eq!(
            l("node 12: its log is behind node 13's compaction point; installs its snapshot"),
            Some(Line::Installing)
        );
        assert_eq!(
            l("node 12: its log differs from master 13's after compaction; installs its snapshot"),
            Some(Line::Installing)
        );
        assert_eq!(l("node 12: installed node 13's snapshot at 412 in 187 ms"), Some(Line::Installed { ms: 187 }));
        assert_eq!(l("node 12: snapshot from node 13 not installed: connection refused"), Some(Line::Failed));
        assert_eq!(l("node 12: cannot fetch a snapshot from node 13: no address for it"), Some(Line::Failed));
        // The core's own line after an install is not a second install.
        assert_eq!(l("node 12: installed a snapshot at 412/3 (committed to 400)"), None);
        assert_eq!(classify(&format!("{START_MARK} 12")), Some(Line::Start));
    }

    #[test]
    fn a_kill_half_way_through_an_install_is_counted_and_so_is_the_install_after_it() {
        let text = log(&[
            &format!("{START_MARK} 12"),
            &format!("{I}node 12: compacted its log up to 100 (50 entries deleted in 3 ms)"),
            &format!("{I}node 12: its log is behind node 13's compaction point; installs its snapshot"),
            &format!("{START_MARK} 12"),
            &format!("{I}node 12: its log is behind node 13's compaction point; installs its snapshot"),
            &format!("{I}node 12: snapshot from node 13 not installed: connection refused"),
            &format!("{I}node 12: its log is behind node 13's compaction point; installs its snapshot"),
            &format!("{I}node 12: installed node 13's snapshot at 412 in 187 ms"),
            &format!("{I}node 12: its log differs from master 13's after compaction; installs its snapshot"),
            &format!("{I}node 12: installed node 13's snapshot at 500 in 90 ms"),
        ]);
        let c = count(&text);
        assert_eq!(
            c,
            Counts {
                compactions: 1,
                started: 4,
                installed: 2,
                failed: 1,
                interrupted: 1,
                reinstalled: 1,
                unfinished: 0,
                longest_ms: 187,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn an_interrupted_install_never_finished_is_not_reinstalled() {
        let text = log(&[
            &format!("{START_MARK} 12"),
            &format!("{I}node 12: its log is behind node 13's compaction point; installs its snapshot"),
            &format!("{START_MARK} 12"),
            &format!("{I}node 12: its log is behind node 13's compaction point; installs its snapshot"),
        ]);
        let c = count(&text);
        assert_eq!((c.started, c.installed, c.interrupted, c.reinstalled, c.unfinished), (2, 0, 1, 0, 1));
        // A restart with no install under way interrupts nothing.
        let c = count(&log(&[&format!("{START_MARK} 12"), &format!("{START_MARK} 12")]));
        assert_eq!(c, Counts::default());
    }
}
