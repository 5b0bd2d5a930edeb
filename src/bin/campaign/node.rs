//! One `marquee serve` process of the campaign's cluster: its own loopback address, its own
//! Unix user (so partitions can cut by owner), its own MariaDB server.
use crate::mariadb::MariaDb;
use crate::procs::{signal, Pids};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const SECRET: &str = "campaign-cluster-secret-0123456789";

/// How a node finds the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// PEERS: every node of the campaign, fixed.
    Static,
    /// PEER_DISCOVERY=dns:NAME:PORT over the run's /etc/hosts lines.
    Dns,
}

impl Discovery {
    pub fn name(self) -> &'static str {
        match self {
            Discovery::Static => "static",
            Discovery::Dns => "dns",
        }
    }
}

pub struct Node {
    /// 1-based position in the campaign; the address is 127.0.0.(10 + slot).
    pub slot: usize,
    pub ip: Ipv4Addr,
    pub port: u16,
    /// The Unix user it runs as (no passwd entry needed).
    pub uid: u32,
    pub db: MariaDb,
    child: Option<Child>,
    pub paused: bool,
    /// A libfaketime offset (`+300s`) it runs under, if skewed.
    pub skew: Option<String>,
    pub log: PathBuf,
}

/// Where the node binary, templates and assets are.
pub struct Install {
    pub marquee: PathBuf,
    pub root: PathBuf,
}

impl Install {
    pub fn find() -> Result<Install, String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let marquee = exe.with_file_name("marquee");
        if !marquee.is_file() {
            return Err(format!("{} is missing: build it with `cargo build --release --bins`", marquee.display()));
        }
        Ok(Install { marquee, root })
    }
}

/// The node id of a slot: the last two octets of its address, as DNS discovery derives it.
pub fn id_of(slot: usize) -> u64 {
    10 + slot as u64
}

pub fn ip_of(slot: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + slot as u8)
}

impl Node {
    pub fn new(slot: usize, port: u16, uid_base: u32, db: MariaDb, run_dir: &Path) -> Node {
        Node {
            slot,
            ip: ip_of(slot),
            port,
            uid: uid_base + slot as u32,
            db,
            child: None,
            paused: false,
            skew: None,
            log: run_dir.join(format!("node-{}.log", id_of(slot))),
        }
    }

    pub fn id(&self) -> u64 {
        id_of(self.slot)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }

    pub fn database_url(&self) -> String {
        format!("{}/marquee", self.db.url())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Up and not paused: it can answer.
    pub fn is_live(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    /// Starts the node. `peers` is the PEERS value in static mode (ignored under DNS).
    pub fn start(
        &mut self,
        install: &Install,
        discovery: Discovery,
        peers: &str,
        hold_minutes: f64,
        log_retain: Option<u64>,
        pids: &Pids,
    ) -> Result<(), String> {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        let mut log =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.log).map_err(|e| e.to_string())?;
        // Where each process of this node begins in its log: what it logged before is
        // another process's (crate::snapshots counts installs a kill interrupted by it).
        writeln!(log, "{} {}", crate::snapshots::START_MARK, self.id()).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&install.marquee);
        if let Some(offset) = &self.skew {
            // libfaketime preloaded into the node itself (the `faketime` wrapper forks, and
            // its pid would not be the node's): the wall clock is off, as on a host whose
            // NTP failed; the monotonic clock, and so timers, are not.
            cmd.env("LD_PRELOAD", faketime_library()?).env("FAKETIME", offset).env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        cmd.arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("PEERS")
            .env_remove("PEER_DISCOVERY")
            .env_remove("LOG_RETAIN_ENTRIES")
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NODE_ID", self.id().to_string())
            .env("NODE_ADDRESS", self.ip.to_string())
            .env("CLUSTER_SECRET", SECRET)
            .env("DATABASE_URL", self.database_url())
            .env("MARQUEE_BIND", format!("{}:{}", self.ip, self.port))
            .env("MARQUEE_WORKERS", "2")
            .env("DB_POOL_SIZE", "6")
            .env("HOLD_MINUTES", hold_minutes.to_string())
            .envs(marquee::config::LOAD_TEST_LIMITS)
            .env("MARQUEE_TEMPLATES", install.root.join("templates"))
            .env("MARQUEE_ASSETS", install.root.join("assets"))
            .env(
                "RUST_LOG",
                std::env::var("CAMPAIGN_NODE_LOG").unwrap_or_else(|_| "info,actix_web=warn,actix_server=warn".into()),
            )
            .current_dir("/")
            .uid(self.uid)
            .gid(self.uid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(n) = log_retain {
            cmd.env("LOG_RETAIN_ENTRIES", n.to_string());
        }
        match discovery {
            Discovery::Static => cmd.env("PEERS", peers),
            Discovery::Dns => cmd.env("PEER_DISCOVERY", format!("dns:{}:{}", crate::net::DNS_NAME, self.port)),
        };
        let child = cmd.spawn().map_err(|e| format!("starting node {}: {e}", self.id()))?;
        pids.add(child.id(), "marquee");
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// SIGKILL.
    pub fn kill(&mut self, pids: &Pids) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), libc::SIGCONT);
            signal(c.id(), libc::SIGKILL);
            let _ = c.wait();
            pids.remove(c.id());
        }
        self.paused = false;
    }

    /// SIGTERM, and up to `grace` for it to leave on its own; SIGKILL after that.
    pub fn terminate(&mut self, pids: &Pids, grace: std::time::Duration) {
        if let Some(c) = self.child.as_mut() {
            signal(c.id(), libc::SIGCONT);
            signal(c.id(), libc::SIGTERM);
            let until = std::time::Instant::now() + grace;
            while std::time::Instant::now() < until {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        self.kill(pids);
    }

    pub fn pause(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), libc::SIGSTOP);
            self.paused = true;
        }
    }

    pub fn resume(&mut self) {
        if let Some(c) = &self.child {
            signal(c.id(), libc::SIGCONT);
        }
        self.paused = false;
    }
}

/// Debian's libfaketime (package `faketime`).
pub fn faketime_library() -> Result<String, String> {
    for dir in ["/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime"] {
        // The thread-safe variant: a node is multi-threaded.
        let p = format!("{dir}/libfaketimeMT.so.1");
        if Path::new(&p).is_file() {
            return Ok(p);
        }
    }
    Err("libfaketime.so.1 not found: install Debian's faketime package".into())
}
