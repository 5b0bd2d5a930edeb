//! What a backup is, as data: the stream a master sends, the directory `marquee backup`
//! writes, and the decisions about them (is the stream whole and signed, do the files match
//! their checksums, may this database take this backup). No I/O here.
//!
//! The stream is JSON lines. A line that begins `{"@":` is a control line; any other line
//! is a row of the table whose `table` line came last, exactly as its table file holds it:
//!
//! ```text
//! {"@":"header","format":1,"lsn":812,"epoch":3,"membership":{...},"created_at":...,"node":3,"tables":[...]}
//! {"@":"table","name":"layouts"}
//! {"id":100,"name":"Test hall","no_lonely_seats":true}
//! {"@":"table_end","name":"layouts","rows":1,"sha256":"..."}
//! ...                                   (every table of the header, in its order)
//! {"@":"end","committed":true,"reason":null,"signature":"..."}
//! ```
//!
//! The last line says whether the snapshot's last entry is committed, and carries an
//! HMAC-SHA256 (the cluster secret, over the request's nonce and every byte before it, see
//! [`StreamMac`]). A stream without it, or with it saying otherwise, is incomplete.
//!
//! Checksums are SHA-256 over a table file's bytes (each row's line and its newline): the
//! `sha2` crate is already here for the RPC signatures, and unlike a CRC it also catches a
//! file edited on purpose to keep its CRC.
use super::BackupError;
use crate::cluster::auth::StreamMac;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version of the stream and directory format.
pub const FORMAT_VERSION: u32 = 1;

/// The file a backup directory's manifest is in; written last, once every table file is
/// verified: a directory without it holds no (complete) backup.
pub const MANIFEST: &str = "manifest.json";

/// The file a table's rows are in.
pub fn table_file(table: &str) -> String {
    format!("{table}.jsonl")
}

/// Who votes and who learns, as the log's newest membership entry says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

/// The stream's first line: what the snapshot is of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// The log's last entry in the snapshot (0: an empty log).
    pub lsn: i64,
    pub epoch: i64,
    /// The membership in force at `lsn` (none: a log from before memberships were logged).
    pub membership: Option<Membership>,
    pub created_at: DateTime<Utc>,
    /// The node that read it (the master).
    pub node: u64,
    pub tables: Vec<String>,
    /// The master's commit point when it read it, and that entry's epoch: a snapshot for a
    /// node to install is not waited on, so only the log up to here is known committed.
    #[serde(default)]
    pub committed: i64,
    #[serde(default)]
    pub committed_epoch: i64,
}

/// A table's rows in all, and the SHA-256 of its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummary {
    pub name: String,
    pub rows: u64,
    pub sha256: String,
}

/// The stream's control lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@", rename_all = "snake_case")]
pub enum Control {
    Header(Header),
    Table { name: String },
    TableEnd(TableSummary),
    End { committed: bool, reason: Option<String>, signature: String },
}

/// A control line with its newline.
pub fn control_line(c: &Control) -> Vec<u8> {
    let mut line = serde_json::to_vec(c).unwrap_or_default();
    line.push(b'\n');
    line
}

fn is_control(line: &[u8]) -> bool {
    line.starts_with(b"{\"@\":")
}

/// What the end line's signature covers besides the bytes before it.
fn end_text(committed: bool, reason: Option<&str>) -> String {
    format!("end\n{committed}\n{}", reason.unwrap_or(""))
}

/// Signs a stream as it is sent: every byte, then the end line.
pub struct StreamSigner(StreamMac);

impl StreamSigner {
    pub fn new(secret: &str, nonce: &str) -> Self {
        Self(StreamMac::new(secret, nonce))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The last line: whether the snapshot is committed (and why not), signed.
    pub fn end(mut self, committed: bool, reason: Option<String>) -> Vec<u8> {
        self.0.update(end_text(committed, reason.as_deref()).as_bytes());
        control_line(&Control::End { committed, reason, signature: self.0.sign() })
    }
}

/// The SHA-256 of a table file, a row at a time.
#[derive(Clone, Default)]
pub struct Checksum {
    sha: Sha256,
    rows: u64,
}

impl Checksum {
    /// One row's line (without its newline).
    pub fn add(&mut self, row: &[u8]) {
        self.sha.update(row);
        self.sha.update(b"\n");
        self.rows += 1;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn hex(self) -> String {
        self.sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Cuts a byte stream into lines, refusing one longer than `max`.
pub struct LineSplitter {
    buf: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self { buf: Vec::new(), max }
    }

    /// The lines `bytes` completes (without their newlines).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, BackupError> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.buf.extend_from_slice(&rest[..i]);
            self.check()?;
            lines.push(std::mem::take(&mut self.buf));
            rest = &rest[i + 1..];
        }
        self.buf.extend_from_slice(rest);
        self.check()?;
        Ok(lines)
    }

    fn check(&self) -> Result<(), BackupError> {
        if self.buf.len() > self.max {
            return Err(BackupError::Incomplete(format!("a line longer than {} bytes", self.max)));
        }
        Ok(())
    }

    /// Bytes after the last newline (a stream cut short).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// What one line of the stream was.
#[derive(Debug, PartialEq)]
pub enum Event {
    Header(Header),
    /// A table's rows follow.
    Table(String),
    /// A row of the table under way.
    Row,
    /// The table's rows are all here and match its summary.
    TableDone(TableSummary),
    /// The signed last line, saying the snapshot is committed.
    End,
}

/// Checks a stream line by line: a header first, naming this version's tables; each table
/// in turn, its rows counted and hashed and matching its summary; the end line last,
/// signed for this request, saying the snapshot is committed.
pub struct StreamCheck {
    mac: Option<StreamMac>,
    tables: Vec<String>,
    header: Option<Header>,
    next: usize,
    current: Option<(String, Checksum)>,
    summaries: Vec<TableSummary>,
    ended: bool,
}

impl StreamCheck {
    /// `tables`: the replicated tables of this version, in the order the stream has them.
    pub fn new(secret: &str, nonce: &str, tables: &[&str]) -> Self {
        Self {
            mac: Some(StreamMac::new(secret, nonce)),
            tables: tables.iter().map(|t| t.to_string()).collect(),
            header: None,
            next: 0,
            current: None,
            summaries: Vec::new(),
            ended: false,
        }
    }

    fn signed(&mut self, line: &[u8]) {
        if let Some(m) = self.mac.as_mut() {
            m.update(line);
            m.update(b"\n");
        }
    }

    pub fn feed(&mut self, line: &[u8]) -> Result<Event, BackupError> {
        let bad = |why: String| Err(BackupError::Incomplete(why));
        if self.ended {
            return bad("more lines after the end line".into());
        }
        if !is_control(line) {
            let Some((name, sum)) = self.current.as_mut() else {
                return bad("a row outside any table".into());
            };
            if !line.starts_with(b"{") {
                return bad(format!("a line of {name} is not a row"));
            }
            sum.add(line);
            self.signed(line);
            return Ok(Event::Row);
        }
        let control: Control = serde_json::from_slice(line)
            .map_err(|e| BackupError::Incomplete(format!("a control line that cannot be read: {e}")))?;
        if self.header.is_none() && !matches!(control, Control::Header(_)) {
            return bad("the stream does not start with its header".into());
        }
        match control {
            Control::Header(h) => {
                if self.header.is_some() {
                    return bad("a second header".into());
                }
                if h.format != FORMAT_VERSION {
                    return bad(format!("format {} (this version reads {FORMAT_VERSION})", h.format));
                }
                if h.tables != self.tables {
                    return bad(format!("the tables {:?} are not this version's {:?}", h.tables, self.tables));
                }
                self.signed(line);
                self.header = Some(h.clone());
                Ok(Event::Header(h))
            }
            Control::Table { name } => {
                if self.current.is_some() || self.tables.get(self.next) != Some(&name) {
                    return bad(format!("table {name} out of order"));
                }
                self.signed(line);
                self.current = Some((name.clone(), Checksum::default()));
                Ok(Event::Table(name))
            }
            Control::TableEnd(summary) => {
                let Some((name, sum)) = self.current.take() else {
                    return bad(format!("the end of {} outside it", summary.name));
                };
                let mine = TableSummary { name: name.clone(), rows: sum.rows(), sha256: sum.hex() };
                if mine != summary {
                    return bad(format!(
                        "{name}: {} rows with SHA-256 {} received, the master counted {} rows with {}",
                        mine.rows, mine.sha256, summary.rows, summary.sha256
                    ));
                }
                self.signed(line);
                self.next += 1;
                self.summaries.push(mine.clone());
                Ok(Event::TableDone(mine))
            }
            Control::End { committed, reason, signature } => {
                if self.current.is_some() || self.next != self.tables.len() {
                    return bad("the end line before every table".into());
                }
                let mut mac = self.mac.take().ok_or(BackupError::Incomplete("a second end line".into()))?;
                mac.update(end_text(committed, reason.as_deref()).as_bytes());
                mac.verify(&signature)
                    .map_err(|e| BackupError::Incomplete(format!("the stream is not signed for this request ({e})")))?;
                if !committed {
                    return bad(format!(
                        "the master could not confirm the snapshot is committed: {}",
                        reason.unwrap_or_default()
                    ));
                }
                self.ended = true;
                Ok(Event::End)
            }
        }
    }

    /// The header and the tables' summaries, once the end line came; else the stream was
    /// cut short.
    pub fn finish(self) -> Result<(Header, Vec<TableSummary>), BackupError> {
        match (self.ended, self.header) {
            (true, Some(h)) => Ok((h, self.summaries)),
            _ => Err(BackupError::Incomplete("the stream ended before its end line".into())),
        }
    }
}

/// A backup directory's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub lsn: i64,
    pub epoch: i64,
    pub membership: Option<Membership>,
    pub created_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    /// The master that read the snapshot.
    pub node: u64,
    pub tables: Vec<TableFile>,
    /// See [`Header::committed`].
    #[serde(default)]
    pub committed: i64,
    #[serde(default)]
    pub committed_epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    pub name: String,
    pub file: String,
    pub rows: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn new(h: &Header, tables: &[TableSummary], completed_at: DateTime<Utc>) -> Self {
        Self {
            format: FORMAT_VERSION,
            lsn: h.lsn,
            epoch: h.epoch,
            membership: h.membership.clone(),
            created_at: h.created_at,
            completed_at,
            node: h.node,
            committed: h.committed,
            committed_epoch: h.committed_epoch,
            tables: tables
                .iter()
                .map(|t| TableFile {
                    name: t.name.clone(),
                    file: table_file(&t.name),
                    rows: t.rows,
                    sha256: t.sha256.clone(),
                })
                .collect(),
        }
    }

    /// Reads a manifest and checks it names exactly this version's tables, in order, each in
    /// its own file (so no name in it can point outside the directory).
    pub fn parse(text: &str, tables: &[&str]) -> Result<Self, BackupError> {
        let m: Manifest =
            serde_json::from_str(text).map_err(|e| BackupError::NotABackup(format!("manifest.json: {e}")))?;
        if m.format != FORMAT_VERSION {
            return Err(BackupError::NotABackup(format!(
                "manifest.json is format {} (this version reads {FORMAT_VERSION})",
                m.format
            )));
        }
        let names: Vec<&str> = m.tables.iter().map(|t| t.name.as_str()).collect();
        if names != tables {
            return Err(BackupError::NotABackup(format!("manifest.json lists {names:?}, not this version's tables")));
        }
        for t in &m.tables {
            let hex = t.sha256.len() == 64 && t.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if t.file != table_file(&t.name) || !hex {
                return Err(BackupError::NotABackup(format!("manifest.json: a bad entry for {}", t.name)));
            }
        }
        if m.lsn < 0 || m.epoch < 0 {
            return Err(BackupError::NotABackup("manifest.json: a negative LSN or epoch".into()));
        }
        Ok(m)
    }

    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// A table file as read back: its rows and SHA-256, against what the manifest says.
pub fn check_table(entry: &TableFile, found: Checksum) -> Result<(), BackupError> {
    let rows = found.rows();
    let sha = found.hex();
    if rows != entry.rows || sha != entry.sha256 {
        return Err(BackupError::Checksum(format!(
            "{} holds {rows} rows with SHA-256 {sha}; the manifest says {} rows with {}",
            entry.file, entry.rows, entry.sha256
        )));
    }
    Ok(())
}

/// Why a node does not serve a backup: the answer's status, its reason, and the master to
/// ask instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotServed {
    pub status: u16,
    pub error: String,
    pub master: Option<crate::cluster::Peer>,
}

/// Whether node `me`, whose writes go where `route` says, serves a backup: only the master
/// taking writes does (its log holds every committed entry); a follower names its master
/// (421: ask there), and with no master now the answer is 503.
pub fn who_serves(route: &crate::cluster::state::Route, me: u64) -> Result<(), NotServed> {
    use crate::cluster::state::Route;
    match route {
        Route::Local => Ok(()),
        Route::Forward(master) => Err(NotServed {
            status: 421,
            error: format!(
                "node {me} is a follower: backups are served by the master, node {} at {}",
                master.id, master.address
            ),
            master: Some(master.clone()),
        }),
        Route::NoMaster => {
            Err(NotServed { status: 503, error: "no master is available right now".into(), master: None })
        }
    }
}

/// Where waiting for the snapshot's last entry to commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Committed,
    /// The commit point passed the LSN with another epoch's entry there: the snapshot holds
    /// an entry that did not happen.
    Superseded,
    Waiting,
}

/// The snapshot ends at (`lsn`, `epoch`); the node's commit point is `commit`, and its log
/// holds an entry of `stored` at `lsn` (read once the commit point is past it: committed
/// entries never change).
pub fn completion(lsn: i64, epoch: i64, commit: i64, stored: Option<i64>) -> Completion {
    if lsn <= 0 {
        Completion::Committed
    } else if commit < lsn {
        Completion::Waiting
    } else if stored == Some(epoch) {
        Completion::Committed
    } else {
        Completion::Superseded
    }
}

/// What a restore found in the database it is to load into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub migrated: bool,
    /// Tables (replicated, and `node_state`) that hold rows, with their counts.
    pub non_empty: Vec<(String, i64)>,
}

/// Whether node `node_id` may load `m` into `target`. A voter of the backed-up cluster
/// restored under its id into the running cluster could vote twice in one epoch (its vote
/// is not in the backup), so only a restore of the whole cluster (`whole_cluster`) may
/// use a voter's id.
pub fn restore_check(m: &Manifest, node_id: u64, whole_cluster: bool, target: &Target) -> Result<(), BackupError> {
    if !target.migrated {
        return Err(BackupError::Target(
            "the database is not migrated to this version: run `marquee migrate` first".into(),
        ));
    }
    if !target.non_empty.is_empty() {
        let tables: Vec<String> = target.non_empty.iter().map(|(t, n)| format!("{t}: {n} rows")).collect();
        return Err(BackupError::Target(format!(
            "the database is not empty ({}); a restore loads only into a fresh, migrated database",
            tables.join(", ")
        )));
    }
    if whole_cluster {
        return Ok(());
    }
    match &m.membership {
        Some(members) if !members.voters.contains(&node_id) => Ok(()),
        Some(members) => Err(BackupError::Target(format!(
            "node {node_id} is a voter of the backed-up cluster (voters {:?}): restored under its old id into a \
             running cluster it could vote twice in one epoch. Restore it under a new NODE_ID, or, to rebuild the \
             whole cluster from this backup (every node restored from it, none running), pass --whole-cluster",
            members.voters
        ))),
        None => Err(BackupError::Target(format!(
            "the backup's log names no membership, so node {node_id} may have voted in it; pass --whole-cluster \
             if every node is restored from this backup"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLES: &[&str] = &["layouts", "write_log"];
    const SECRET: &str = "a-secret-of-sixteen-chars";

    fn header() -> Header {
        Header {
            format: FORMAT_VERSION,
            lsn: 12,
            epoch: 3,
            membership: Some(Membership { voters: vec![1, 2, 3], learners: vec![] }),
            created_at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            node: 3,
            tables: TABLES.iter().map(|t| t.to_string()).collect(),
            committed: 12,
            committed_epoch: 3,
        }
    }

    /// A whole stream as a master sends it: (table, rows) each, signed for `nonce`.
    fn stream(nonce: &str, tables: &[(&str, &[&str])], committed: bool) -> Vec<Vec<u8>> {
        let mut lines = vec![control_line(&Control::Header(header()))];
        for (name, rows) in tables {
            lines.push(control_line(&Control::Table { name: name.to_string() }));
            let mut sum = Checksum::default();
            for r in *rows {
                sum.add(r.as_bytes());
                lines.push(format!("{r}\n").into_bytes());
            }
            let rows = sum.rows();
            lines.push(control_line(&Control::TableEnd(TableSummary {
                name: name.to_string(),
                rows,
                sha256: sum.hex(),
            })));
        }
        let mut signer = StreamSigner::new(SECRET, nonce);
        for l in &lines {
            signer.update(l);
        }
        lines.push(signer.end(committed, (!committed).then(|| "not committed in time".to_string())));
        lines
            .into_iter()
            .map(|mut l| {
                l.pop();
                l
            })
            .collect()
    }

    fn check_all(lines: &[Vec<u8>], nonce: &str) -> Result<(Header, Vec<TableSummary>), BackupError> {
        let mut check = StreamCheck::new(SECRET, nonce, TABLES);
        for l in lines {
            check.feed(l)?;
        }
        check.finish()
    }

    const ROWS: &[(&str, &[&str])] = &[("layouts", &[r#"{"id":1}"#, r#"{"id":2}"#]), ("write_log", &[r#"{"lsn":1}"#])];

    #[test]
    fn a_whole_signed_committed_stream_passes() {
        let (h, tables) = check_all(&stream("n1", ROWS, true), "n1").unwrap();
        assert_eq!(h, header());
        assert_eq!(tables.iter().map(|t| t.rows).collect::<Vec<_>>(), vec![2, 1]);
    }

    #[test]
    fn a_stream_cut_anywhere_is_incomplete() {
        let lines = stream("n1", ROWS, true);
        for cut in 0..lines.len() {
            assert!(matches!(check_all(&lines[..cut], "n1"), Err(BackupError::Incomplete(_))), "cut at {cut}");
        }
    }

    #[test]
    fn a_stream_that_says_not_committed_is_refused() {
        let err = check_all(&stream("n1", ROWS, false), "n1").unwrap_err();
        assert!(err.to_string().contains("not committed in time"), "{err}");
    }

    #[test]
    fn a_stream_signed_for_another_request_or_changed_is_refused() {
        assert!(check_all(&stream("other", ROWS, true), "n1").is_err());
        // A row changed, its table's summary changed to match: only the signature catches it.
        let changed: &[(&str, &[&str])] =
            &[("layouts", &[r#"{"id":1}"#, r#"{"id":3}"#]), ("write_log", &[r#"{"lsn":1}"#])];
        let mut lines = stream("n1", ROWS, true);
        let forged = stream("n1", changed, true);
        lines[3] = forged[3].clone();
        lines[4] = forged[4].clone();
        assert!(check_all(&lines, "n1").unwrap_err().to_string().contains("not signed"));
    }

    #[test]
    fn a_row_that_does_not_match_its_tables_summary_is_refused() {
        let mut lines = stream("n1", ROWS, true);
        lines[2] = br#"{"id":9}"#.to_vec();
        assert!(check_all(&lines, "n1").unwrap_err().to_string().contains("the master counted"));
    }

    #[test]
    fn tables_must_come_in_order_and_all() {
        let swapped: &[(&str, &[&str])] = &[("write_log", &[]), ("layouts", &[])];
        assert!(check_all(&stream("n1", swapped, true), "n1").is_err());
        let missing: &[(&str, &[&str])] = &[("layouts", &[])];
        assert!(check_all(&stream("n1", missing, true), "n1").is_err());
    }

    #[test]
    fn lines_are_cut_at_newlines_whatever_the_chunks() {
        let mut s = LineSplitter::new(100);
        assert_eq!(s.push(b"ab").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(s.push(b"c\nd\n\ne").unwrap(), vec![b"abc".to_vec(), b"d".to_vec(), b"".to_vec()]);
        assert_eq!(s.pending(), 1);
        let mut s = LineSplitter::new(3);
        assert!(s.push(b"abcd").is_err());
    }

    #[test]
    fn a_checksum_is_the_sha256_of_the_files_bytes() {
        let mut c = Checksum::default();
        c.add(b"abc");
        // sha256("abc\n")
        assert_eq!(c.hex(), "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb");
    }

    fn manifest() -> Manifest {
        let mut sum = Checksum::default();
        sum.add(b"{\"id\":1}");
        let tables = vec![
            TableSummary { name: "layouts".into(), rows: 1, sha256: sum.hex() },
            TableSummary { name: "write_log".into(), rows: 0, sha256: Checksum::default().hex() },
        ];
        Manifest::new(&header(), &tables, DateTime::from_timestamp(1_800_000_060, 0).unwrap())
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let m = manifest();
        assert_eq!(Manifest::parse(&m.to_json(), TABLES).unwrap(), m);
        assert_eq!(m.tables[0].file, "layouts.jsonl");
        assert_eq!(m.rows(), 1);
    }

    #[test]
    fn a_manifest_of_other_tables_files_or_format_is_refused() {
        let m = manifest();
        assert!(Manifest::parse(&m.to_json(), &["layouts"]).is_err());
        let mut outside = m.clone();
        outside.tables[0].file = "../../etc/passwd".into();
        assert!(Manifest::parse(&outside.to_json(), TABLES).is_err());
        let mut future = m.clone();
        future.format = 2;
        assert!(Manifest::parse(&future.to_json(), TABLES).is_err());
        assert!(Manifest::parse("{", TABLES).is_err());
        assert!(Manifest::parse(&m.to_json().replace("\"lsn\"", "\"extra\": 1, \"lsn\""), TABLES).is_err());
    }

    #[test]
    fn a_table_file_must_match_its_entry() {
        let m = manifest();
        let mut same = Checksum::default();
        same.add(b"{\"id\":1}");
        assert!(check_table(&m.tables[0], same).is_ok());
        let mut other = Checksum::default();
        other.add(b"{\"id\":2}");
        assert!(matches!(check_table(&m.tables[0], other), Err(BackupError::Checksum(_))));
        assert!(check_table(&m.tables[0], Checksum::default()).is_err());
    }

    #[test]
    fn only_the_master_serves_a_backup_and_a_follower_names_it() {
        use crate::cluster::state::Route;
        use crate::cluster::Peer;
        assert_eq!(who_serves(&Route::Local, 3), Ok(()));
        let master = Peer { id: 3, address: "10.0.0.3:8001".into() };
        let refused = who_serves(&Route::Forward(master.clone()), 2).unwrap_err();
        assert_eq!((refused.status, refused.master), (421, Some(master)));
        assert!(refused.error.contains("node 3 at 10.0.0.3:8001"), "{}", refused.error);
        let refused = who_serves(&Route::NoMaster, 2).unwrap_err();
        assert_eq!((refused.status, refused.master), (503, None));
    }

    #[test]
    fn the_snapshot_completes_once_committed_with_its_epoch() {
        assert_eq!(completion(0, 0, 0, None), Completion::Committed);
        assert_eq!(completion(12, 3, 11, None), Completion::Waiting);
        assert_eq!(completion(12, 3, 12, Some(3)), Completion::Committed);
        assert_eq!(completion(12, 3, 20, Some(4)), Completion::Superseded);
        assert_eq!(completion(12, 3, 20, None), Completion::Superseded);
    }

    #[test]
    fn a_restore_needs_a_fresh_migrated_database_and_a_non_voter_or_the_whole_cluster() {
        let m = manifest();
        let fresh = Target { migrated: true, non_empty: vec![] };
        assert!(restore_check(&m, 4, false, &fresh).is_ok());
        assert!(restore_check(&m, 2, false, &fresh).unwrap_err().to_string().contains("--whole-cluster"));
        assert!(restore_check(&m, 2, true, &fresh).is_ok());
        let used = Target { migrated: true, non_empty: vec![("write_log".into(), 3)] };
        assert!(restore_check(&m, 4, true, &used).unwrap_err().to_string().contains("write_log: 3 rows"));
        let old = Target { migrated: false, non_empty: vec![] };
        assert!(restore_check(&m, 4, true, &old).unwrap_err().to_string().contains("marquee migrate"));
        let mut unknown = m.clone();
        unknown.membership = None;
        assert!(restore_check(&unknown, 4, false, &fresh).is_err());
        assert!(restore_check(&unknown, 4, true, &fresh).is_ok());
    }
}
