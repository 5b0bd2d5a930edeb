//! `marquee backup`: asks a node for the snapshot stream (a follower names its master, who
//! is asked instead), checks it line by line as it comes and writes each table's rows into
//! a file of its own; once the stream's signed last line says the snapshot is committed,
//! reads the files back against their checksums and writes `manifest.json`, last and
//! atomically. A directory without a manifest holds no backup.
use super::format::{table_file, Event, LineSplitter, Manifest, StreamCheck, MANIFEST};
use super::restore::verify_files;
use super::{BackupError, Progress};
use crate::cluster::client::{Rpc, Streamed};
use crate::cluster::messages::BackupRefused;
use crate::cluster::Peer;
use crate::db::snapshot::TABLES;
use futures::StreamExt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest line accepted (a log entry carrying a big catalog).
const MAX_LINE: usize = 256 * 1024 * 1024;
/// A stream that sends nothing for this long is given up.
const IDLE: Duration = Duration::from_secs(120);

/// Refuses a directory that holds a backup, or anything else; creates it if missing.
/// Returns whether it created it.
pub fn prepare_dir(dir: &Path) -> Result<bool, BackupError> {
    if dir.join(MANIFEST).exists() {
        let what = std::fs::read_to_string(dir.join(MANIFEST))
            .ok()
            .and_then(|t| Manifest::parse(&t, TABLES).ok())
            .map(|m| format!(" (LSN {}, taken {})", m.lsn, m.created_at.format("%Y-%m-%d %H:%M:%S UTC")))
            .unwrap_or_default();
        return Err(BackupError::Target(format!("{} already holds a backup{what}", dir.display())));
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Target(format!(
                    "{} is not empty: back up into a new or empty directory",
                    dir.display()
                )));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| BackupError::io(dir.display(), e))?;
            Ok(true)
        }
        Err(e) => Err(BackupError::io(dir.display(), e)),
    }
}

/// Takes a backup from the node at `node` into `dir` (new or empty). On failure, removes
/// the files it wrote (and `dir`, if it made it).
pub async fn backup(
    rpc: &Rpc,
    node: &str,
    install: bool,
    dir: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Manifest, BackupError> {
    let created = prepare_dir(dir)?;
    let result = fetch_into(rpc, node, install, dir, progress).await;
    if result.is_err() {
        for t in TABLES {
            let _ = std::fs::remove_file(dir.join(table_file(t)));
        }
        let _ = std::fs::remove_file(dir.join(format!("{MANIFEST}.tmp")));
        if created {
            let _ = std::fs::remove_dir(dir);
        }
    }
    result
}

/// Opens the stream at `node`, or at the master a follower names (once).
async fn open(rpc: &Rpc, client: &awc::Client, node: &str, install: bool) -> Result<Streamed, BackupError> {
    let mut peer = Peer { id: 0, address: node.to_string() };
    for hop in 0..2 {
        let answer =
            rpc.open_stream(client, &peer, "/internal/backup", serde_json::json!({ "install": install })).await;
        let answer = answer.map_err(|e| match e {
            crate::cluster::client::RpcError::Status(address, 401) => BackupError::Refused(format!(
                "{address} answered 401: the request's signature was refused (is CLUSTER_SECRET the cluster's?)"
            )),
            other => BackupError::Rpc(other),
        })?;
        match answer {
            Streamed::Refused { status, body } => {
                let refused: BackupRefused = serde_json::from_slice(&body).map_err(|e| {
                    BackupError::Refused(format!(
                        "{} refused ({status}) with an answer we cannot read: {e}",
                        peer.address
                    ))
                })?;
                match refused.master {
                    Some(master) if status == 421 && hop == 0 => {
                        log::info!(
                            "backup: {} is a follower; asking the master, node {} at {}",
                            peer.address,
                            master.id,
                            master.address
                        );
                        peer = master;
                    }
                    _ => return Err(BackupError::Refused(format!("{} refused: {}", peer.address, refused.error))),
                }
            }
            body => return Ok(body),
        }
    }
    Err(BackupError::Refused("the master named is not the master either; try again".into()))
}

async fn fetch_into(
    rpc: &Rpc,
    node: &str,
    install: bool,
    dir: &Path,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Manifest, BackupError> {
    // The stream's idle time is bounded below; the whole of it is not.
    let client = Rpc::http_client(Duration::from_secs(30 * 24 * 3600));
    let Streamed::Body { mut body, nonce } = open(rpc, &client, node, install).await? else {
        return Err(BackupError::Refused("no stream".into()));
    };
    let mut check = StreamCheck::new(&rpc.cluster.config.secret, &nonce, TABLES);
    let mut split = LineSplitter::new(MAX_LINE);
    let mut file: Option<(PathBuf, std::io::BufWriter<std::fs::File>)> = None;
    let mut p = Progress { table: String::new(), table_rows: 0, tables_done: 0, tables: TABLES.len(), rows: 0 };
    loop {
        let next = actix_rt::time::timeout(IDLE, body.next())
            .await
            .map_err(|_| BackupError::Incomplete(format!("nothing came for {} s", IDLE.as_secs())))?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| BackupError::Incomplete(format!("the stream broke: {e}")))?;
        for line in split.push(&chunk)? {
            match check.feed(&line)? {
                Event::Header(_) | Event::End => {}
                Event::Table(name) => {
                    let path = dir.join(table_file(&name));
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .map_err(|e| BackupError::io(path.display(), e))?;
                    file = Some((path, std::io::BufWriter::with_capacity(1 << 20, f)));
                    p.table = name;
                    p.table_rows = 0;
                    progress(&p);
                }
                Event::Row => {
                    let Some((path, f)) = file.as_mut() else {
                        return Err(BackupError::Incomplete("a row outside any table".into()));
                    };
                    f.write_all(&line)
                        .and_then(|_| f.write_all(b"\n"))
                        .map_err(|e| BackupError::io(path.display(), e))?;
                    p.table_rows += 1;
                    p.rows += 1;
                    if p.table_rows.is_multiple_of(1000) {
                        progress(&p);
                    }
                }
                Event::TableDone(_) => {
                    if let Some((path, f)) = file.take() {
                        let f = f.into_inner().map_err(|e| BackupError::io(path.display(), e.into_error()))?;
                        f.sync_all().map_err(|e| BackupError::io(path.display(), e))?;
                    }
                    p.tables_done += 1;
                    progress(&p);
                }
            }
        }
    }
    if split.pending() > 0 {
        return Err(BackupError::Incomplete("the stream ended in the middle of a line".into()));
    }
    let (header, tables) = check.finish()?;
    let manifest = Manifest::new(&header, &tables, chrono::Utc::now());
    // What is on disk is what was checked.
    verify_files(dir, &manifest)?;
    write_atomically(&dir.join(MANIFEST), manifest.to_json().as_bytes())?;
    Ok(manifest)
}

/// Writes `path` whole or not at all: a temporary file, synced, renamed over it, and the
/// directory synced.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| BackupError::io(tmp.display(), e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| BackupError::io(tmp.display(), e))?;
    std::fs::rename(&tmp, path).map_err(|e| BackupError::io(path.display(), e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| BackupError::io(dir.display(), e))?;
    }
    Ok(())
}
