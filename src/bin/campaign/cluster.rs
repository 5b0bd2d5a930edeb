//! The campaign's cluster: its nodes (each with its MariaDB), how they find each other, and
//! the faults applied to them. Owned by the nemesis thread; the workload sees only the list
//! of addresses it may send to.
use crate::mariadb::{self, MariaDb};
use crate::net;
use crate::node::{id_of, Discovery, Install, Node};
use crate::procs::Pids;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Slots that are members now (started and, under DNS, in /etc/hosts).
    pub members: BTreeSet<usize>,
    pub discovery: Discovery,
    pub install: Install,
    pub pids: Arc<Pids>,
    /// The run's tag on every iptables rule and /etc/hosts line.
    pub tag: String,
    /// Pairs (from slot, to slot) cut now.
    pub cuts: BTreeSet<(usize, usize)>,
    pub targets: crate::workload::Targets,
    /// The master as the monitor last saw it.
    pub master: Arc<Mutex<Option<u64>>>,
    pub port: u16,
    /// LOG_RETAIN_ENTRIES for every node (None: the nodes' default).
    pub log_retain: Option<u64>,
}

/// Nodes keep holds 9 s, so holds expire within a run.
pub const HOLD_MINUTES: f64 = 0.15;

/// A port free on every node's address.
pub fn common_port(slots: usize) -> u16 {
    use rand::Rng;
    loop {
        let port = rand::thread_rng().gen_range(21_000..31_000);
        if (1..=slots).all(|s| std::net::TcpListener::bind((crate::node::ip_of(s), port)).is_ok()) {
            return port;
        }
    }
}

/// Below Linux's ephemeral range (32768 and up), so no outgoing connection can take a
/// port while its server is down and restarting.
fn free_db_port() -> u16 {
    use rand::Rng;
    loop {
        let port = rand::thread_rng().gen_range(12_000..20_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Cluster {
    /// Starts one MariaDB server per slot (none of the nodes yet).
    pub fn create(
        slots: usize,
        discovery: Discovery,
        run_dir: &Path,
        work: &Path,
        tag: String,
        pids: Arc<Pids>,
        targets: crate::workload::Targets,
    ) -> Result<Cluster, String> {
        let install = Install::find()?;
        let template = mariadb::template(work)?;
        let port = common_port(slots);
        let uid_base = 64_000;
        let handles: Vec<_> = (1..=slots)
            .map(|slot| {
                let (template, pids) = (template.clone(), pids.clone());
                let dir: PathBuf = run_dir.join(format!("db-{}", id_of(slot)));
                std::thread::spawn(move || MariaDb::create(&template, dir, free_db_port(), &pids))
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, h) in handles.into_iter().enumerate() {
            let db = h.join().map_err(|_| "a MariaDB start panicked".to_string())??;
            nodes.push(Node::new(i + 1, port, uid_base, db, run_dir));
        }
        Ok(Cluster {
            nodes,
            members: BTreeSet::new(),
            discovery,
            install,
            pids,
            tag,
            cuts: BTreeSet::new(),
            targets,
            master: Arc::new(Mutex::new(None)),
            port,
            log_retain: None,
        })
    }

    pub fn slot_of(&self, id: u64) -> Option<usize> {
        self.nodes.iter().position(|n| n.id() == id)
    }

    fn peers_of(&self, slot: usize) -> String {
        self.nodes
            .iter()
            .filter(|n| n.slot != slot)
            .map(|n| format!("{}@{}:{}", n.id(), n.ip, n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn publish_targets(&self) {
        let t = self.members.iter().map(|&s| (id_of(s), self.nodes[s - 1].base_url())).collect();
        *self.targets.lock().unwrap() = t;
    }

    /// Makes `slot` a member: under DNS its name line goes in first, then it starts.
    pub fn join(&mut self, slot: usize) -> Result<(), String> {
        if self.discovery == Discovery::Dns {
            net::hosts_add(self.nodes[slot - 1].ip, &self.tag)?;
        }
        self.members.insert(slot);
        self.start(slot)?;
        self.publish_targets();
        Ok(())
    }

    /// Leaves: SIGTERM (as `docker compose --scale` does), its name line goes away.
    pub fn leave(&mut self, slot: usize) -> Result<(), String> {
        self.members.remove(&slot);
        self.publish_targets();
        if self.discovery == Discovery::Dns {
            net::hosts_remove(Some(self.nodes[slot - 1].ip), &self.tag)?;
        }
        let pids = self.pids.clone();
        self.nodes[slot - 1].terminate(&pids, Duration::from_secs(10));
        Ok(())
    }

    pub fn start(&mut self, slot: usize) -> Result<(), String> {
        let peers = self.peers_of(slot);
        let (pids, hold) = (self.pids.clone(), HOLD_MINUTES);
        let (d, retain) = (self.discovery, self.log_retain);
        let n = &mut self.nodes[slot - 1];
        n.start(&self.install, d, &peers, hold, retain, &pids)
    }

    pub fn kill(&mut self, slot: usize) {
        let pids = self.pids.clone();
        self.nodes[slot - 1].kill(&pids);
    }

    /// Cuts what `from` sends to `to` for each pair, then probes every cut at once; Err if
    /// a probe gets through (the cut would not count).
    pub fn cut(&mut self, pairs: &[(usize, usize)]) -> Result<(), String> {
        for &(from, to) in pairs {
            net::cut(self.nodes[from - 1].uid, self.nodes[to - 1].ip, &self.tag)?;
            self.cuts.insert((from, to));
        }
        let probes: Vec<_> = pairs
            .iter()
            .filter(|(_, to)| self.nodes[to - 1].is_live())
            .map(|&(from, to)| {
                let (uid, ip, port) = (self.nodes[from - 1].uid, self.nodes[to - 1].ip, self.port);
                (from, to, std::thread::spawn(move || net::probe(uid, ip, port)))
            })
            .collect();
        for (from, to, h) in probes {
            if h.join().unwrap_or(true) {
                return Err(format!("the cut {} -> {} does not hold: a probe got through", id_of(from), id_of(to)));
            }
        }
        Ok(())
    }

    pub fn heal_network(&mut self) -> Result<(), String> {
        net::remove_rules(&self.tag)?;
        self.cuts.clear();
        Ok(())
    }

    /// Undoes every fault: the network healed, paused processes resumed, stalled or dead
    /// databases back, dead or skewed members restarted.
    pub fn heal_all(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(e) = self.heal_network() {
            errors.push(e);
        }
        let pids = self.pids.clone();
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if n.db.stalled {
                n.db.resume();
            }
            if !n.db.is_up() {
                if let Err(e) = n.db.start(&pids) {
                    errors.push(e);
                }
            }
            if n.paused {
                n.resume();
            }
        }
        for slot in self.members.clone() {
            let n = &mut self.nodes[slot - 1];
            if n.skew.is_some() {
                n.kill(&pids);
                n.skew = None;
            }
            if !n.is_running() {
                if let Err(e) = self.start(slot) {
                    errors.push(e);
                }
            }
        }
        errors
    }

    /// Ends everything of this run: nodes, databases, rules, /etc/hosts lines.
    pub fn teardown(&mut self) {
        let pids = self.pids.clone();
        for n in &mut self.nodes {
            n.kill(&pids);
            n.db.kill(&pids);
        }
        let _ = net::remove_rules(&self.tag);
        let _ = net::hosts_remove(None, &self.tag);
    }
}

/// One node's status from `/api/cluster` (blocking; used by the nemesis thread).
pub fn status(base: &str, timeout: Duration) -> Option<Value> {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    use std::io::{Read, Write};
    write!(s, "GET /api/cluster HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    let until = Instant::now() + timeout;
    let mut chunk = [0u8; 8192];
    while Instant::now() < until {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}
