//! What is measured besides the answers: memory, CPU, latencies, MariaDB's counters.
use diesel::mysql::MysqlConnection;
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use std::collections::HashMap;
use std::time::Instant;

/// VmRSS of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Where the machine's CPU time went, in clock ticks (USER_HZ, 100 a second on Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSample {
    pub node: u64,
    /// The other nodes of a cluster run, together.
    pub followers: u64,
    pub me: u64,
    pub mariadb: u64,
    pub busy: u64,
    pub idle: u64,
}

pub const TICKS_PER_SECOND: f64 = 100.0;

/// utime + stime of a process.
pub fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

pub fn is_mariadb(pid: &str) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    matches!(comm.trim(), "mariadbd" | "mysqld")
}

/// The MariaDB server's pid, from its pid file when it runs on this machine; else every
/// mariadbd here.
pub fn mariadb_pids(conn: &mut MysqlConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct PidFile {
        #[diesel(sql_type = Text)]
        path: String,
    }
    let own = diesel::sql_query("SELECT @@pid_file AS path")
        .get_result::<PidFile>(conn)
        .ok()
        .and_then(|f| std::fs::read_to_string(f.path).ok())
        .map(|pid| pid.trim().to_string())
        .filter(|pid| is_mariadb(pid));
    if let Some(pid) = own {
        return vec![pid];
    }
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && is_mariadb(pid))
        .collect()
}

impl CpuSample {
    pub fn take(node_pid: u32, followers: &[u32], mariadb: &[String]) -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> =
            stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let idle = cpu.get(3).copied().unwrap_or_default() + cpu.get(4).copied().unwrap_or_default();
        CpuSample {
            node: process_ticks(&node_pid.to_string()).unwrap_or_default(),
            followers: followers.iter().filter_map(|p| process_ticks(&p.to_string())).sum(),
            me: process_ticks("self").unwrap_or_default(),
            mariadb: mariadb.iter().filter_map(|p| process_ticks(p)).sum(),
            busy: cpu.iter().take(8).sum::<u64>().saturating_sub(idle),
            idle,
        }
    }

    /// Prints the core-seconds each part used since `before`, and per booking.
    pub fn report(&self, before: &CpuSample, elapsed: f64, bookings: u64) {
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64 / TICKS_PER_SECOND;
        let (node, me, db) = (d(self.node, before.node), d(self.me, before.me), d(self.mariadb, before.mariadb));
        let followers = d(self.followers, before.followers);
        let others = (d(self.busy, before.busy) - node - followers - me - db).max(0.0);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let per = |cs: f64| cs * 1e6 / bookings.max(1) as f64;
        let cluster = self.followers > 0 || before.followers > 0;
        let nodes =
            if cluster { format!("master {node:.2}, followers {followers:.2}") } else { format!("node {node:.2}") };
        println!(
            "cpu during the load, core-seconds of {:.2} ({cores} cores x {elapsed:.2} s): {nodes}, flashsale {me:.2}, \
             mariadbd {db:.2}, everything else {others:.2}, idle {:.2}",
            cores as f64 * elapsed,
            d(self.idle, before.idle)
        );
        let nodes = if cluster {
            format!("master {:.0} us, followers {:.0} us", per(node), per(followers))
        } else {
            format!("node {:.0} us", per(node))
        };
        println!("  per confirmed booking: {nodes}, flashsale {:.0} us, mariadbd {:.0} us", per(me), per(db));
        let node = node + followers;
        let ours = per(node) + per(me) + per(db);
        if ours > 0.0 {
            println!(
                "  so the node(s) + flashsale + mariadbd need {ours:.0} us of CPU per booking: {cores} cores could not do more \
                 than {:.0} bookings/s even if nothing else ran (a bound, not a measurement)",
                cores as f64 * 1e6 / ours
            );
        }
        if others > 0.1 * cores as f64 * elapsed {
            println!(
                "  WARNING: other processes took {:.0}% of the machine during the load; the rates and latencies \
                 above understate what the node does on a quiet machine",
                100.0 * others / (cores as f64 * elapsed)
            );
        }
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

pub fn latency_line(name: &str, us: &mut [u32]) -> String {
    us.sort_unstable();
    format!(
        "  {name:<13} n={:<7} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        us.len(),
        percentile(us, 50.0),
        percentile(us, 99.0),
        percentile(us, 100.0)
    )
}

#[derive(QueryableByName)]
pub struct StatusVar {
    #[diesel(sql_type = Text, column_name = "Variable_name")]
    pub name: String,
    #[diesel(sql_type = Text, column_name = "Value")]
    pub value: String,
}

/// Server-wide counters (other clients of the same server count too).
pub fn server_status(conn: &mut MysqlConnection) -> HashMap<String, u64> {
    diesel::sql_query("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_commit', 'Innodb_data_fsyncs')")
        .load::<StatusVar>(conn)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.value.parse().ok().map(|n| (v.name, n)))
        .collect()
}

/// Microseconds since `since`.
pub fn micros(since: Instant) -> u32 {
    since.elapsed().as_micros().min(u32::MAX as u128) as u32
}
