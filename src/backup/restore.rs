//! `marquee restore`: checks a backup directory (its manifest, every table file against
//! its row count and SHA-256) before touching the database; then checks the database is
//! migrated and empty and the node may take the backup ([`restore_check`]); then loads the
//! tables in chunks, a transaction each, and writes the node's hard state: the backup's
//! epoch and no vote. If loading fails half way, what was loaded is deleted again (the
//! database was empty before).
use super::format::{check_table, restore_check, Checksum, Manifest, TableFile, Target, MANIFEST};
use super::{BackupError, Progress};
use crate::db::snapshot::{self, TABLES};
use diesel::mysql::MysqlConnection;
use diesel::Connection;
use std::io::BufRead;
use std::path::Path;

/// Rows, and bytes, loaded per transaction.
const CHUNK_ROWS: usize = 5000;
const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// A backup directory's manifest, read and checked.
pub fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::NotABackup(format!(
                "{} has no {MANIFEST} (a backup that did not finish writes none)",
                dir.display()
            )))
        }
        Err(e) => return Err(BackupError::io(path.display(), e)),
    };
    Manifest::parse(&text, TABLES)
}

/// Reads a table file a line at a time, passing each row (without its newline) to `row`;
/// returns its checksum.
fn read_rows(
    dir: &Path,
    entry: &TableFile,
    mut row: impl FnMut(String) -> Result<(), BackupError>,
) -> Result<Checksum, BackupError> {
    let path = dir.join(&entry.file);
    let f = std::fs::File::open(&path).map_err(|e| BackupError::io(path.display(), e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, f);
    let mut sum = Checksum::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(|e| BackupError::io(path.display(), e))?;
        if n == 0 {
            break;
        }
        if line.pop() != Some(b'\n') {
            return Err(BackupError::Checksum(format!("{} ends in the middle of a line", entry.file)));
        }
        sum.add(&line);
        let text = String::from_utf8(std::mem::take(&mut line))
            .map_err(|_| BackupError::Checksum(format!("{} is not UTF-8", entry.file)))?;
        row(text)?;
    }
    Ok(sum)
}

/// Checks every table file against its manifest entry.
pub fn verify_files(dir: &Path, m: &Manifest) -> Result<(), BackupError> {
    for entry in &m.tables {
        let sum = read_rows(dir, entry, |_| Ok(()))?;
        check_table(entry, sum)?;
    }
    Ok(())
}

/// What to restore, where, as which node.
pub struct RestoreOptions<'a> {
    pub dir: &'a Path,
    pub database_url: &'a str,
    pub node_id: u64,
    pub whole_cluster: bool,
}

/// Restores the backup in `opts.dir` into `opts.database_url`'s database.
pub fn restore(opts: &RestoreOptions, progress: &mut dyn FnMut(&Progress)) -> Result<Manifest, BackupError> {
    let m = read_manifest(opts.dir)?;
    verify_files(opts.dir, &m)?;
    let mut conn = MysqlConnection::establish(opts.database_url).map_err(|e| {
        BackupError::Target(format!(
            "cannot open DATABASE_URL's database ({e}); create it and run `marquee migrate` first"
        ))
    })?;
    let migrated = snapshot::is_migrated(&mut conn)?;
    let non_empty = if migrated { snapshot::non_empty_tables(&mut conn)? } else { Vec::new() };
    restore_check(&m, opts.node_id, opts.whole_cluster, &Target { migrated, non_empty })?;
    let loaded = load(&mut conn, opts.dir, &m, progress).and_then(|()| {
        // The node's hard state: the backup's epoch (it never goes below the log's), no vote.
        crate::db::node::save(&mut conn, m.epoch.max(0) as u64, None)?;
        // Its log starts at the backup's end: what came before is in the tables (and the
        // master's log may be compacted before it anyway).
        crate::db::node::save_base(&mut conn, m.lsn, m.epoch).map_err(BackupError::from)
    });
    if let Err(e) = loaded {
        if let Err(c) = snapshot::clear(&mut conn) {
            log::error!("restore: cannot delete what was loaded before it failed: {c}");
        }
        return Err(e);
    }
    Ok(m)
}

fn load(
    conn: &mut MysqlConnection,
    dir: &Path,
    m: &Manifest,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(), BackupError> {
    let mut p = Progress { table: String::new(), table_rows: 0, tables_done: 0, tables: m.tables.len(), rows: 0 };
    for entry in &m.tables {
        p.table = entry.name.clone();
        p.table_rows = 0;
        progress(&p);
        let mut chunk: Vec<String> = Vec::new();
        let mut bytes = 0;
        let mut flush = |chunk: &mut Vec<String>, p: &mut Progress| -> Result<(), BackupError> {
            snapshot::load_chunk(conn, &entry.name, chunk)?;
            p.table_rows += chunk.len() as u64;
            p.rows += chunk.len() as u64;
            chunk.clear();
            progress(p);
            Ok(())
        };
        let sum = read_rows(dir, entry, |row| {
            bytes += row.len();
            chunk.push(row);
            if chunk.len() >= CHUNK_ROWS || bytes >= CHUNK_BYTES {
                flush(&mut chunk, &mut p)?;
                bytes = 0;
            }
            Ok(())
        })?;
        if !chunk.is_empty() {
            flush(&mut chunk, &mut p)?;
        }
        // The file may have changed since it was verified.
        check_table(entry, sum)?;
        p.tables_done += 1;
    }
    progress(&p);
    Ok(())
}

/// Replaces a running node's replicated tables with the snapshot in `dir`, in one
/// transaction (a crash half way leaves them as they were), and makes the snapshot's commit
/// point its log's base. Its epoch and vote stay as they are.
pub fn install(conn: &mut MysqlConnection, dir: &Path, m: &Manifest) -> Result<(), BackupError> {
    use diesel::connection::SimpleConnection;
    verify_files(dir, m)?;
    crate::db::without_foreign_keys(conn, |conn| {
        conn.transaction::<(), BackupError, _>(|c| {
            for table in TABLES.iter().rev() {
                c.batch_execute(&format!("DELETE FROM `{table}`")).map_err(crate::db::DbError::from)?;
            }
            load(c, dir, m, &mut |_| {})?;
            // The log is known committed up to there; the entries after it (the master's
            // uncommitted tail) are in `write_log` like any others.
            crate::db::node::save_base(c, m.committed.min(m.lsn), m.committed_epoch)?;
            Ok(())
        })
    })
}
