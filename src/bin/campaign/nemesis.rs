//! The nemesis: a fault schedule drawn from the seed (pure, so a run replays), and the
//! thread that applies it to the cluster and heals every fault before the run ends.
use crate::cluster::Cluster;
use crate::history::{Process, Recorder, Type, F};
use crate::node::{id_of, Discovery};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Kill,
    Pause,
    Partition,
    DbKill,
    DbStall,
    Skew,
    Scale,
    /// A follower falls behind the compaction point (see `Nemesis::lag`); not in `all`,
    /// added to every run by `--log-retain`.
    Lag,
}

pub const ALL: [Kind; 7] =
    [Kind::Kill, Kind::Pause, Kind::Partition, Kind::DbKill, Kind::DbStall, Kind::Skew, Kind::Scale];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Partition => "partition",
            Kind::DbKill => "db-kill",
            Kind::DbStall => "db-stall",
            Kind::Skew => "skew",
            Kind::Scale => "scale",
            Kind::Lag => "lag",
        }
    }

    pub fn parse_list(raw: &str) -> Result<Vec<Kind>, String> {
        let mut kinds = Vec::new();
        for w in raw.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match w {
                "all" => kinds.extend(ALL),
                "none" => {}
                _ => kinds.push(*ALL.iter().chain(&[Kind::Lag]).find(|k| k.name() == w).ok_or_else(|| {
                    format!(
                        "unknown fault '{w}' (kill, pause, partition, db-kill, db-stall, skew, scale, lag, all, none)"
                    )
                })?),
            }
        }
        kinds.sort();
        kinds.dedup();
        Ok(kinds)
    }
}

/// One fault of the schedule: when it starts (ms after the workload began), how long it
/// lasts, and the random draws that choose its targets and shape when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    pub at_ms: u64,
    pub lasts_ms: u64,
    pub kind: Kind,
    pub pick: u64,
    pub shape: u8,
}

/// The schedule: a fault every few seconds (a calm gap, then the fault), all over by
/// `seconds - 4` so the run ends healed. db-stall lasts longer than the replication
/// timeout (3 s).
pub fn plan(seed: u64, kinds: &[Kind], seconds: u64) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    if kinds.is_empty() {
        return out;
    }
    let end = seconds.saturating_sub(4) * 1000;
    let mut t = rng.gen_range(2_000..4_000);
    loop {
        let kind = kinds[rng.gen_range(0..kinds.len())];
        let lasts = match kind {
            Kind::DbStall => rng.gen_range(4_000..7_000),
            Kind::Scale => rng.gen_range(3_000..6_000),
            _ => rng.gen_range(2_000..6_000),
        };
        if t + lasts > end {
            break;
        }
        out.push(Planned { at_ms: t, lasts_ms: lasts, kind, pick: rng.gen(), shape: rng.gen_range(0..3) });
        t += lasts + rng.gen_range(1_500..4_000);
    }
    out
}

/// What must be undone when a fault ends.
enum Undo {
    Restart(Vec<usize>),
    Resume(Vec<usize>),
    Heal,
    DbStart(Vec<usize>),
    DbResume(Vec<usize>),
    Unskew(usize),
    Nothing,
}

pub struct Nemesis {
    pub rec: Arc<Recorder>,
    pub start: Instant,
    /// Slots that were members when the run began (scale removes only the others).
    pub initial: usize,
    /// With `--log-retain`: kills nodes caught installing a snapshot while the schedule runs.
    pub installs: Option<Mutex<InstallWatch>>,
}

/// Aims kills at snapshot installs: it reads what the members log as the schedule runs
/// (every few ms), and when a node logs that it installs its master's snapshot, kills it
/// (at once, or every other time after half the longest install seen, so that some kills
/// land in the fetch and some in the installing transaction; a small snapshot takes
/// 50-400 ms here) and starts it again 300 ms later. The restarted node must install cleanly: its next
/// install is left alone, the one after is killed again, and so on.
/// [`crate::snapshots`] counts from the logs which kills landed half way.
#[derive(Default)]
pub struct InstallWatch {
    /// How far each slot's log was read, and the unfinished last line.
    read: BTreeMap<usize, (u64, String)>,
    /// Whether the slot's last install was interrupted (so the next one is left alone).
    interrupted: BTreeMap<usize, bool>,
    /// Kills so far, and the longest install read in the logs (ms): every other kill waits
    /// half that long, to land in the installing transaction rather than the fetch.
    kills: u64,
    longest_ms: u64,
}

impl InstallWatch {
    /// The running members that logged an install start since the last look.
    fn installing(&mut self, c: &Cluster) -> Vec<usize> {
        use std::io::{Read, Seek, SeekFrom};
        let mut found = Vec::new();
        for &slot in &c.members {
            let n = &c.nodes[slot - 1];
            let (offset, partial) = self.read.entry(slot).or_default();
            let Ok(mut f) = std::fs::File::open(&n.log) else { continue };
            let mut bytes = Vec::new();
            if f.seek(SeekFrom::Start(*offset)).is_err() || f.read_to_end(&mut bytes).is_err() {
                continue;
            }
            *offset += bytes.len() as u64;
            partial.push_str(&String::from_utf8_lossy(&bytes));
            let Some(end) = partial.rfind('\n') else { continue };
            let lines: String = partial.drain(..=end).collect();
            // Installing now: the last install line read is a start (one that already
            // ended is no target).
            use crate::snapshots::Line;
            for l in lines.lines().filter_map(crate::snapshots::classify) {
                if let Line::Installed { ms } = l {
                    self.longest_ms = self.longest_ms.max(ms);
                }
            }
            let last = lines
                .lines()
                .filter_map(crate::snapshots::classify)
                .rfind(|l| matches!(l, Line::Start | Line::Installing | Line::Installed { .. } | Line::Failed));
            if last == Some(Line::Installing) {
                found.push(slot);
            }
        }
        found
    }
}

impl Nemesis {
    fn note(&self, f: &str, value: Value) {
        self.rec.record(Process::nemesis(), None, Type::Info, F::Fault(f.to_string()), value);
    }

    fn running(c: &Cluster) -> Vec<usize> {
        c.members.iter().copied().filter(|&s| c.nodes[s - 1].is_running()).collect()
    }

    fn master_slot(c: &Cluster) -> Option<usize> {
        let m = (*c.master.lock().unwrap())?;
        c.slot_of(m).map(|i| i + 1).filter(|s| c.members.contains(s))
    }

    /// The master half the time (the interesting target), else any running member.
    fn victim(c: &Cluster, pick: u64) -> Option<usize> {
        let running = Self::running(c);
        if running.is_empty() {
            return None;
        }
        if pick.is_multiple_of(2) {
            if let Some(m) = Self::master_slot(c).filter(|m| running.contains(m)) {
                return Some(m);
            }
        }
        Some(running[(pick / 2) as usize % running.len()])
    }

    fn ids(slots: &[usize]) -> Vec<u64> {
        slots.iter().map(|&s| id_of(s)).collect()
    }

    fn begin(&self, c: &mut Cluster, p: &Planned) -> Result<(Undo, Value), String> {
        let mut rng = StdRng::seed_from_u64(p.pick);
        let pids = c.pids.clone();
        Ok(match p.kind {
            Kind::Kill => {
                let Some(v) = Self::victim(c, p.pick) else { return Ok((Undo::Nothing, json!({}))) };
                c.kill(v);
                (Undo::Restart(vec![v]), json!({ "nodes": [id_of(v)] }))
            }
            Kind::Pause => {
                let Some(v) = Self::victim(c, p.pick) else { return Ok((Undo::Nothing, json!({}))) };
                c.nodes[v - 1].pause();
                (Undo::Resume(vec![v]), json!({ "nodes": [id_of(v)] }))
            }
            Kind::Partition => {
                let mut running: Vec<usize> = c.members.iter().copied().collect();
                let master = Self::master_slot(c).unwrap_or(running[0]);
                let (shape, a, b): (&str, Vec<usize>, Vec<usize>) = match p.shape {
                    0 => {
                        running.shuffle(&mut rng);
                        let minority = running.len() / 2;
                        let (x, y) = running.split_at(minority.max(1));
                        ("halves", x.to_vec(), y.to_vec())
                    }
                    1 => ("isolate-master", vec![master], running.iter().copied().filter(|&s| s != master).collect()),
                    _ => ("one-way", vec![master], running.iter().copied().filter(|&s| s != master).collect()),
                };
                let one_way = shape == "one-way";
                let mut pairs = Vec::new();
                for &x in &a {
                    for &y in &b {
                        // one-way: the master's requests to the others are dropped; theirs
                        // to it still arrive.
                        pairs.push((x, y));
                        if !one_way {
                            pairs.push((y, x));
                        }
                    }
                }
                c.cut(&pairs)?;
                (Undo::Heal, json!({ "shape": shape, "side_a": Self::ids(&a), "side_b": Self::ids(&b) }))
            }
            Kind::DbKill => {
                let Some(v) = Self::victim(c, p.pick) else { return Ok((Undo::Nothing, json!({}))) };
                c.nodes[v - 1].db.kill(&pids);
                (Undo::DbStart(vec![v]), json!({ "nodes": [id_of(v)] }))
            }
            Kind::DbStall => {
                let running = Self::running(c);
                let master = Self::master_slot(c);
                let targets: Vec<usize> = match p.shape {
                    // Every follower's storage at once: the master cannot get a majority.
                    0 => running.iter().copied().filter(|s| Some(*s) != master).collect(),
                    _ => Self::victim(c, p.pick).into_iter().collect(),
                };
                for &s in &targets {
                    c.nodes[s - 1].db.stall();
                }
                (Undo::DbResume(targets.clone()), json!({ "nodes": Self::ids(&targets) }))
            }
            Kind::Skew => {
                let Some(v) = Self::victim(c, p.pick) else { return Ok((Undo::Nothing, json!({}))) };
                let secs = rng.gen_range(60..600) * if rng.gen_bool(0.5) { 1 } else { -1 };
                let offset = format!("{secs:+}s");
                c.kill(v);
                c.nodes[v - 1].skew = Some(offset.clone());
                c.start(v)?;
                (Undo::Unskew(v), json!({ "nodes": [id_of(v)], "offset": offset }))
            }
            Kind::Lag => self.lag(c, p)?,
            Kind::Scale => {
                if c.discovery != Discovery::Dns {
                    return Ok((Undo::Nothing, json!({ "skipped": "scale needs DNS discovery" })));
                }
                let spare: Vec<usize> = (1..=c.nodes.len()).filter(|s| !c.members.contains(s)).collect();
                let grown: Vec<usize> = c.members.iter().copied().filter(|&s| s > self.initial).collect();
                let master = Self::master_slot(c);
                if spare.is_empty() || (!grown.is_empty() && p.pick % 2 == 1) {
                    // Leave: one or all of the nodes that joined, never below the start.
                    let leaving: Vec<usize> = match p.shape {
                        0 => grown.clone(),
                        _ => grown.iter().copied().filter(|s| Some(*s) != master).take(1).collect(),
                    };
                    for &s in &leaving {
                        c.leave(s)?;
                    }
                    (Undo::Nothing, json!({ "change": "leave", "nodes": Self::ids(&leaving) }))
                } else {
                    let n = if p.shape == 0 { spare.len() } else { 1 };
                    let joining: Vec<usize> = spare.into_iter().take(n).collect();
                    for &s in &joining {
                        c.join(s)?;
                    }
                    // Sometimes an old member crashes while the newcomers catch up.
                    let crash = if p.shape == 2 {
                        let old: Vec<usize> = Self::running(c).into_iter().filter(|s| !joining.contains(s)).collect();
                        old.get((p.pick / 2) as usize % old.len().max(1)).copied()
                    } else {
                        None
                    };
                    if let Some(v) = crash {
                        c.kill(v);
                    }
                    let undo = crash.map(|v| Undo::Restart(vec![v])).unwrap_or(Undo::Nothing);
                    (undo, json!({ "change": "join", "nodes": Self::ids(&joining), "crashed": crash.map(id_of) }))
                }
            }
        })
    }

    /// A follower falls behind the compaction point: it is killed, the others go on until
    /// the master's log is three retains (`--log-retain`) past the follower's end (at most
    /// 20 s), then the master restarts (SIGTERM, so it hands over to a follower, which
    /// compacted its own log as it committed; SIGKILL under DNS discovery, where SIGTERM
    /// would take it out of the membership). The follower restarts when the fault ends,
    /// and the new master's log no longer holds what it needs: it installs a snapshot.
    fn lag(&self, c: &mut Cluster, p: &Planned) -> Result<(Undo, Value), String> {
        let Some(master) = Self::master_slot(c) else {
            return Ok((Undo::Nothing, json!({ "skipped": "no master" })));
        };
        let followers: Vec<usize> =
            Self::running(c).into_iter().filter(|&s| s != master && c.nodes[s - 1].is_live()).collect();
        let Some(&v) = followers.get((p.pick % followers.len().max(1) as u64) as usize) else {
            return Ok((Undo::Nothing, json!({ "skipped": "no follower running" })));
        };
        let last_lsn = |c: &Cluster, s: usize| {
            crate::cluster::status(&c.nodes[s - 1].base_url(), Duration::from_millis(800))
                .and_then(|st| st["last_lsn"].as_i64())
        };
        let end = last_lsn(c, v).unwrap_or(0);
        c.kill(v);
        // Noted here, not once the master restarted: the fault began with this kill.
        self.note(
            "lag",
            json!({ "phase": "start", "detail": { "nodes": [id_of(v)], "end": end, "master": id_of(master) } }),
        );
        let ahead = 3 * c.log_retain.unwrap_or(0) as i64;
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until && !crate::procs::interrupted() {
            if last_lsn(c, master).is_some_and(|l| l >= end + ahead) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if c.discovery == Discovery::Dns {
            c.kill(master);
        } else {
            let pids = c.pids.clone();
            c.nodes[master - 1].terminate(&pids, Duration::from_secs(10));
        }
        if c.members.contains(&master) {
            c.start(master)?;
        }
        Ok((Undo::Restart(vec![v]), Value::Null))
    }

    fn end(&self, c: &mut Cluster, undo: Undo) -> Result<(), String> {
        let pids = c.pids.clone();
        match undo {
            Undo::Restart(slots) => {
                for s in slots {
                    if c.members.contains(&s) && !c.nodes[s - 1].is_running() {
                        c.start(s)?;
                    }
                }
            }
            Undo::Resume(slots) => slots.into_iter().for_each(|s| c.nodes[s - 1].resume()),
            Undo::Heal => c.heal_network()?,
            Undo::DbStart(slots) => {
                for s in slots {
                    c.nodes[s - 1].db.start(&pids)?;
                }
            }
            Undo::DbResume(slots) => slots.into_iter().for_each(|s| c.nodes[s - 1].db.resume()),
            Undo::Unskew(s) => {
                c.kill(s);
                c.nodes[s - 1].skew = None;
                if c.members.contains(&s) {
                    c.start(s)?;
                }
            }
            Undo::Nothing => {}
        }
        Ok(())
    }

    /// Sleeps until `at` (false if the campaign was interrupted); with an install watch,
    /// looks at the members' logs every 5 ms meanwhile and kills those caught installing.
    fn wait_until(&self, c: &mut Cluster, at: Instant, errors: &mut Vec<String>) -> bool {
        let Some(watch) = &self.installs else { return crate::procs::sleep_until(at) };
        while Instant::now() < at {
            if crate::procs::interrupted() {
                return false;
            }
            let caught = watch.lock().unwrap().installing(c);
            for slot in caught {
                let n = &c.nodes[slot - 1];
                // A node whose database is down or stopped cannot install anyway.
                let target = n.is_live() && n.db.is_up() && !n.db.stalled;
                let interrupted = watch.lock().unwrap().interrupted.get(&slot).copied().unwrap_or(false);
                if !target || interrupted {
                    watch.lock().unwrap().interrupted.insert(slot, false);
                    continue;
                }
                let delay = {
                    let mut w = watch.lock().unwrap();
                    w.kills += 1;
                    w.interrupted.insert(slot, true);
                    if w.kills % 2 == 0 {
                        w.longest_ms / 2
                    } else {
                        0
                    }
                };
                std::thread::sleep(Duration::from_millis(delay));
                c.kill(slot);
                self.note("kill-install", json!({ "phase": "start", "detail": { "nodes": [id_of(slot)] } }));
                std::thread::sleep(Duration::from_millis(300));
                if c.members.contains(&slot) && !c.nodes[slot - 1].is_running() {
                    if let Err(e) = c.start(slot) {
                        errors.push(format!("kill-install: restarting node {}: {e}", id_of(slot)));
                    }
                }
                self.note("kill-install", json!({ "phase": "end" }));
            }
            std::thread::sleep(Duration::from_millis(5).min(at.saturating_duration_since(Instant::now())));
        }
        true
    }

    /// Applies the schedule, then heals everything. Errors are recorded and end the
    /// schedule early (the run is then reported as not valid).
    pub fn run(&self, c: &mut Cluster, schedule: &[Planned]) -> Vec<String> {
        let mut errors = Vec::new();
        for p in schedule {
            if !self.wait_until(c, self.start + Duration::from_millis(p.at_ms), &mut errors) {
                break;
            }
            let name = p.kind.name();
            match self.begin(c, p) {
                Ok((undo, detail)) => {
                    if !detail.is_null() {
                        self.note(name, json!({ "phase": "start", "detail": detail }));
                    }
                    let ok = self.wait_until(c, Instant::now() + Duration::from_millis(p.lasts_ms), &mut errors);
                    let r = self.end(c, undo);
                    self.note(name, json!({ "phase": "end" }));
                    if let Err(e) = r {
                        errors.push(format!("{name}: healing failed: {e}"));
                        break;
                    }
                    if !ok {
                        break;
                    }
                }
                Err(e) => {
                    self.note(name, json!({ "phase": "end", "error": e }));
                    errors.push(format!("{name}: {e}"));
                    let _ = c.heal_network();
                    break;
                }
            }
        }
        errors.extend(c.heal_all());
        self.note("heal", json!({ "phase": "end" }));
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_replays_from_its_seed_and_ends_before_the_run() {
        let a = plan(7, &ALL, 60);
        assert_eq!(a, plan(7, &ALL, 60));
        assert_ne!(a, plan(8, &ALL, 60));
        assert!(!a.is_empty());
        assert!(a.iter().all(|p| p.at_ms + p.lasts_ms <= 56_000));
        assert!(a.windows(2).all(|w| w[0].at_ms + w[0].lasts_ms < w[1].at_ms), "faults do not overlap");
        assert!(a.iter().filter(|p| p.kind == Kind::DbStall).all(|p| p.lasts_ms > 3_000));
        assert!(plan(7, &[], 60).is_empty());
    }

    #[test]
    fn fault_lists_parse() {
        assert_eq!(Kind::parse_list("kill,pause").unwrap(), vec![Kind::Kill, Kind::Pause]);
        assert_eq!(Kind::parse_list("all").unwrap().len(), 7);
        assert!(Kind::parse_list("none").unwrap().is_empty());
        assert!(Kind::parse_list("explode").is_err());
        // lag is asked for by name (or added by --log-retain), never by all.
        assert_eq!(Kind::parse_list("lag").unwrap(), vec![Kind::Lag]);
        assert!(!Kind::parse_list("all").unwrap().contains(&Kind::Lag));
    }
}
