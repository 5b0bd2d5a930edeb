//! The processes a campaign starts, and only those: each is recorded (pid and what it is)
//! in a file under the output directory while it lives, so `campaign clean` can end what an
//! interrupted campaign left behind, by id, after checking the pid is still that program.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

pub struct Pids {
    file: PathBuf,
    live: Mutex<BTreeMap<u32, String>>,
}

impl Pids {
    pub fn new(file: PathBuf) -> Self {
        Self { file, live: Mutex::new(BTreeMap::new()) }
    }

    pub fn add(&self, pid: u32, what: &str) {
        let mut g = self.live.lock().unwrap();
        g.insert(pid, what.to_string());
        self.save(&g);
    }

    pub fn remove(&self, pid: u32) {
        let mut g = self.live.lock().unwrap();
        g.remove(&pid);
        self.save(&g);
    }

    fn save(&self, g: &BTreeMap<u32, String>) {
        let text: String = g.iter().map(|(p, w)| format!("{p} {w}\n")).collect();
        let _ = std::fs::write(&self.file, text);
    }

    /// Ends every recorded process that is still the program it was recorded as.
    pub fn end_all(&self) {
        let g = self.live.lock().unwrap().clone();
        for (pid, what) in g {
            end_if_ours(pid, &what);
            self.remove(pid);
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Ends `pid` if its command line still names `what` (a pid can be reused).
pub fn end_if_ours(pid: u32, what: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    if cmdline.is_empty() || !cmdline.contains(what) {
        return false;
    }
    signal(pid, libc::SIGCONT);
    signal(pid, libc::SIGKILL);
    true
}

/// Leftover pid files in `dir`: (file, pid, what).
impl Drop for Pids {
    /// A campaign that panics still ends what it started.
    fn drop(&mut self) {
        self.end_all();
    }
}

pub fn leftovers(dir: &std::path::Path) -> Vec<(PathBuf, u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pids") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
            if let Some((pid, what)) = line.split_once(' ') {
                if let Ok(pid) = pid.parse::<u32>() {
                    let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(what))
                        .unwrap_or(false);
                    if alive {
                        found.push((path.clone(), pid, what.to_string()));
                    }
                }
            }
        }
    }
    found
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid this campaign started; no memory is involved.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM end the campaign early, through its cleanup.
pub fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sleeps until `at`, or until the campaign is interrupted; false when interrupted.
pub fn sleep_until(at: std::time::Instant) -> bool {
    use std::time::{Duration, Instant};
    while Instant::now() < at {
        if interrupted() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(at.saturating_duration_since(Instant::now())));
    }
    true
}
