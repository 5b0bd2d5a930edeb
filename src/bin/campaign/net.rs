//! Partitions and DNS on loopback, each change tagged with the run's name so it is removed
//! by that tag whatever happens.
//!
//! A connection a node opens on loopback leaves from 127.0.0.1 whatever address it listens
//! on, so rules on source addresses cut nothing. Each node runs as its own Unix user, and a
//! cut "A cannot reach B" drops, in OUTPUT, the TCP packets that A's user sends to B's
//! address (`-m owner --uid-owner`). A's answers to B's requests go to 127.0.0.1 and pass:
//! a one-way cut stops A's requests only. Every cut is probed before it counts.
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Every rule and /etc/hosts line of any campaign carries this in its comment.
pub const TAG: &str = "marquee-campaign";
pub const DNS_NAME: &str = "marquee-campaign.test";
const HOSTS: &str = "/etc/hosts";

fn iptables(args: &[String]) -> Result<(), String> {
    let out = Command::new("iptables").arg("-w").args(args).stdout(Stdio::null()).stderr(Stdio::piped()).output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("iptables {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("iptables: {e} (install Debian's iptables package)")),
    }
}

fn rule(uid: u32, to: Ipv4Addr, tag: &str) -> Vec<String> {
    ["OUTPUT", "-p", "tcp", "-m", "owner", "--uid-owner", &uid.to_string(), "-d", &format!("{to}/32")]
        .into_iter()
        .map(String::from)
        .chain(["-m", "comment", "--comment", tag, "-j", "DROP"].into_iter().map(String::from))
        .collect()
}

/// Drops what `uid` sends to `to`.
pub fn cut(uid: u32, to: Ipv4Addr, tag: &str) -> Result<(), String> {
    let mut args = vec!["-I".to_string()];
    args.extend(rule(uid, to, tag));
    iptables(&args)
}

/// Removes every OUTPUT rule whose comment contains `tag` (a run's, or TAG for all).
pub fn remove_rules(tag: &str) -> Result<usize, String> {
    let out = Command::new("iptables")
        .args(["-w", "-S", "OUTPUT"])
        .output()
        .map_err(|e| format!("iptables: {e} (install Debian's iptables package)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut removed = 0;
    for line in text.lines().filter(|l| l.starts_with("-A OUTPUT") && l.contains(tag)) {
        let mut args: Vec<String> = line.split_whitespace().map(|w| w.trim_matches('"').to_string()).collect();
        args[0] = "-D".into();
        iptables(&args)?;
        removed += 1;
    }
    Ok(removed)
}

pub fn rules_left(tag: &str) -> usize {
    Command::new("iptables")
        .args(["-w", "-S", "OUTPUT"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().filter(|l| l.contains(tag)).count())
        .unwrap_or(0)
}

/// Whether a process running as `uid` can open a TCP connection to `addr:port` now:
/// `campaign probe` run as that user.
pub fn probe(uid: u32, addr: Ipv4Addr, port: u16) -> bool {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().expect("own path");
    Command::new(exe)
        .args(["probe", &addr.to_string(), &port.to_string()])
        .uid(uid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `campaign probe ADDR PORT`: exit 0 if a connection opens within 700 ms.
pub fn probe_main(addr: &str, port: &str) -> i32 {
    let (Ok(a), Ok(p)) = (addr.parse::<Ipv4Addr>(), port.parse::<u16>()) else { return 2 };
    match std::net::TcpStream::connect_timeout(&(a, p).into(), Duration::from_millis(700)) {
        Ok(_) => 0,
        Err(_) => 1,
    }
}

/// Adds `addr NAME` to /etc/hosts, tagged.
pub fn hosts_add(addr: Ipv4Addr, tag: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(HOSTS).map_err(|e| format!("{HOSTS}: {e}"))?;
    let line = format!("{addr} {DNS_NAME} # {tag}");
    if text.lines().any(|l| l == line) {
        return Ok(());
    }
    let mut new = text.clone();
    if !new.ends_with('\n') && !new.is_empty() {
        new.push('\n');
    }
    new.push_str(&line);
    new.push('\n');
    // Written in place: /etc/hosts may be a bind mount that cannot be replaced by rename.
    std::fs::write(HOSTS, new).map_err(|e| format!("{HOSTS}: {e}"))
}

/// Removes the tagged line of `addr` (or, with None, every line carrying `tag`).
pub fn hosts_remove(addr: Option<Ipv4Addr>, tag: &str) -> Result<usize, String> {
    let text = std::fs::read_to_string(HOSTS).map_err(|e| format!("{HOSTS}: {e}"))?;
    let ours = |l: &str| {
        l.contains(&format!("# {tag}"))
            && l.contains(DNS_NAME)
            && addr.map(|a| l.split_whitespace().next() == Some(&a.to_string())).unwrap_or(true)
    };
    let removed = text.lines().filter(|l| ours(l)).count();
    if removed > 0 {
        let kept: String = text.lines().filter(|l| !ours(l)).map(|l| format!("{l}\n")).collect();
        std::fs::write(HOSTS, kept).map_err(|e| format!("{HOSTS}: {e}"))?;
    }
    Ok(removed)
}

pub fn hosts_left(tag: &str) -> usize {
    std::fs::read_to_string(HOSTS).map(|t| t.lines().filter(|l| l.contains(&format!("# {tag}"))).count()).unwrap_or(0)
}
