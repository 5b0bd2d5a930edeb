//! One MariaDB server per node: its own port and data directory, started from a template
//! data directory made once with `mariadb-install-db`, so a node's storage can be killed,
//! stalled and restarted on its own.
use crate::procs::{signal, Pids};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MariaDb {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    pub stalled: bool,
}

/// The data directory every server starts from: system tables only, made once.
pub fn template(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join("mariadb-template");
    if dir.join("mysql").is_dir() {
        return Ok(dir);
    }
    let tmp = root.join("mariadb-template.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let out = Command::new("mariadb-install-db")
        .args(["--no-defaults", "--user=root", "--skip-test-db", "--auth-root-authentication-method=normal"])
        .arg(format!("--datadir={}", tmp.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            format!("mariadb-install-db: {e} (is mariadb-server installed? scripts/mariadb.sh installs it)")
        })?;
    if !out.status.success() {
        return Err(format!("mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    std::fs::rename(&tmp, &dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

impl MariaDb {
    /// Copies the template into `dir` (a fresh data directory) and starts the server.
    pub fn create(template: &Path, dir: PathBuf, port: u16, pids: &Pids) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(&dir);
        let st = Command::new("cp").arg("-a").arg(template).arg(&dir).status().map_err(|e| e.to_string())?;
        if !st.success() {
            return Err(format!("cannot copy the MariaDB template to {}", dir.display()));
        }
        let mut db = MariaDb { port, dir, child: None, stalled: false };
        db.start(pids)?;
        Ok(db)
    }

    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Starts mariadbd on the data directory (InnoDB recovers whatever a kill left) and
    /// waits until it answers. Grants are skipped: it listens on 127.0.0.1 only and lives
    /// for one run.
    pub fn start(&mut self, pids: &Pids) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mysqld.out"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new("mariadbd");
        cmd.args(["--no-defaults", "--user=root", "--skip-grant-tables", "--skip-name-resolve"])
            .arg(format!("--datadir={}", self.dir.display()))
            // A socket path under the run's directory can pass the 108 bytes a Unix socket
            // name may have; clients use TCP anyway.
            .arg(format!("--socket=/tmp/marquee-campaign-{}.sock", self.port))
            .arg(format!("--pid-file={}", self.dir.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", self.dir.join("mysqld.err").display()))
            .args(["--bind-address=127.0.0.1", &format!("--port={}", self.port)])
            .args(["--max-connections=300", "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M"])
            .args(["--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"])
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().map_err(|e| format!("mariadbd: {e}"))?;
        pids.add(child.id(), "mariadbd");
        self.child = Some(child);
        self.stalled = false;
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_millis(200))
                .is_ok()
                && self.ping()
            {
                return Ok(());
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!(
                    "mariadbd on port {} exited ({st}); see {}/mysqld.err",
                    self.port,
                    self.dir.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("mariadbd on port {} did not come up", self.port))
    }

    fn ping(&self) -> bool {
        use diesel::Connection;
        diesel::MysqlConnection::establish(&self.url()).is_ok()
    }

    /// SIGKILL, as a crash or a power cut would.
    pub fn kill(&mut self, pids: &Pids) {
        if let Some(mut c) = self.child.take() {
            if self.stalled {
                signal(c.id(), libc::SIGCONT);
            }
            signal(c.id(), libc::SIGKILL);
            let _ = c.wait();
            pids.remove(c.id());
        }
        self.stalled = false;
    }

    /// SIGSTOP: the storage stops answering, connections stay open.
    pub fn stall(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGSTOP);
            self.stalled = true;
        }
    }

    pub fn resume(&mut self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGCONT);
        }
        self.stalled = false;
    }

    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }
}
