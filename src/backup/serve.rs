//! The master's side: a snapshot read on a thread of its own inside one consistent
//! transaction, a chunk of rows at a time, and passed on as the answer's body as it is read
//! (a bounded channel: never more than a few chunks in memory, and a slow client slows the
//! reading). Once every row is sent, the master waits until its commit point reaches the
//! snapshot's last entry with that entry still of its epoch, and says so, signed, in the
//! last line.
use super::format::{completion, control_line, Completion, Control, Header, Membership, StreamSigner, TableSummary};
use super::format::{Checksum, FORMAT_VERSION};
use super::BackupError;
use crate::db::snapshot::{self, ChunkCursor, TABLES};
use crate::db::Db;
use crate::wal::change::{Change, LogRecord};
use crate::wal::CommitTracker;
use actix_web::web::Bytes;
use diesel::mysql::MysqlConnection;
use futures::SinkExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the reading thread hands over.
enum Piece {
    Data(Vec<u8>),
    /// Every row is sent; the snapshot ends at this LSN and epoch.
    Done {
        lsn: i64,
        epoch: i64,
        rows: u64,
    },
    Failed(String),
}

/// Who asked, and how to sign the answer for them.
pub struct Request {
    /// This node (the master), named in the header.
    pub master: u64,
    /// The node id the request was signed with.
    pub node: u64,
    pub secret: String,
    pub nonce: String,
    /// The membership the master counted by when asked: the snapshot's if its log has no
    /// membership entry (a log from before they were logged counts as the configured list,
    /// and only an entry changes that; any entry made before the request is in the snapshot).
    pub configured: Membership,
    /// How long to wait for the snapshot's last entry to commit.
    pub commit_wait: Duration,
    /// For a node to install: sent as read, not waited on (a master that needs that node
    /// for a majority could not commit it before the node installs it); the header says
    /// how far it is committed.
    pub install: bool,
}

/// The body of the answer: the stream of [`super::format`], produced as it is sent.
pub fn stream(
    db: Db,
    tracker: Arc<CommitTracker>,
    req: Request,
) -> futures::channel::mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (mut body, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    actix_rt::spawn(async move {
        let started = Instant::now();
        let (tx, mut pieces) = tokio::sync::mpsc::channel::<Piece>(2);
        let reader = db.clone();
        let (master, configured) = (req.master, req.configured.clone());
        // Read before the snapshot begins: everything up to it is in the tables by then.
        let commit = tracker.commit_lsn();
        if let Err(e) = std::thread::Builder::new()
            .name("backup".into())
            .spawn(move || read_snapshot(&reader, master, configured, commit, &tx))
        {
            log::error!("backup: cannot start its thread: {e}");
            return;
        }
        let mut signer = StreamSigner::new(&req.secret, &req.nonce);
        let mut outcome = Err("the snapshot's reader stopped".to_string());
        while let Some(piece) = pieces.recv().await {
            match piece {
                Piece::Data(bytes) => {
                    signer.update(&bytes);
                    if body.send(Ok(Bytes::from(bytes))).await.is_err() {
                        // Dropping `pieces` stops the reader at its next chunk.
                        log::warn!("backup: the client went away after {:.1} s", started.elapsed().as_secs_f64());
                        return;
                    }
                }
                Piece::Done { lsn, epoch, rows } => outcome = Ok((lsn, epoch, rows)),
                Piece::Failed(why) => outcome = Err(why),
            }
        }
        let (committed, reason) = match &outcome {
            Ok(_) if req.install => (true, None),
            Ok((lsn, epoch, _)) => match wait_committed(&db, &tracker, *lsn, *epoch, req.commit_wait).await {
                Ok(()) => (true, None),
                Err(why) => (false, Some(why)),
            },
            Err(why) => (false, Some(why.clone())),
        };
        match (&outcome, &reason) {
            (Ok((lsn, epoch, rows)), None) => log::info!(
                "backup for node {}: LSN {lsn} (epoch {epoch}), {rows} rows, sent in {:.1} s",
                req.node,
                started.elapsed().as_secs_f64()
            ),
            (_, why) => log::warn!("backup for node {} failed: {}", req.node, why.as_deref().unwrap_or_default()),
        }
        let _ = body.send(Ok(Bytes::from(signer.end(committed, reason)))).await;
    });
    rx
}

/// Waits until the commit point reaches `lsn` and the entry there is of `epoch`.
async fn wait_committed(
    db: &Db,
    tracker: &CommitTracker,
    lsn: i64,
    epoch: i64,
    within: Duration,
) -> Result<(), String> {
    let until = Instant::now() + within;
    loop {
        let commit = tracker.commit_lsn();
        let stored = if commit >= lsn && lsn > 0 {
            db.run(move |c| snapshot::epoch_at(c, lsn))
                .await
                .map_err(|e| format!("cannot read the log's entry {lsn}: {e}"))?
        } else {
            None
        };
        match completion(lsn, epoch, commit, stored) {
            Completion::Committed => return Ok(()),
            Completion::Superseded => {
                return Err(format!("the entry at LSN {lsn} is no longer of epoch {epoch}: another master's log won"))
            }
            Completion::Waiting if Instant::now() >= until => {
                return Err(format!(
                    "LSN {lsn} was not committed within {} s (commit point {commit})",
                    within.as_secs()
                ))
            }
            Completion::Waiting => actix_rt::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// On the backup's thread: the whole snapshot, one transaction.
fn read_snapshot(db: &Db, node: u64, configured: Membership, commit: i64, tx: &tokio::sync::mpsc::Sender<Piece>) {
    let result = db.get().map_err(BackupError::from).and_then(|mut conn| {
        snapshot::begin_snapshot(&mut conn)?;
        let copied = copy_tables(&mut conn, node, configured, commit, tx);
        if let Err(e) = snapshot::end_snapshot(&mut conn) {
            log::warn!("backup: ending its transaction: {e}");
        }
        copied
    });
    let last = match result {
        Ok((lsn, epoch, rows)) => Piece::Done { lsn, epoch, rows },
        Err(e) => Piece::Failed(e.to_string()),
    };
    let _ = tx.blocking_send(last);
}

fn send(tx: &tokio::sync::mpsc::Sender<Piece>, bytes: Vec<u8>) -> Result<(), BackupError> {
    tx.blocking_send(Piece::Data(bytes)).map_err(|_| BackupError::Refused("the client went away".into()))
}

/// The membership an entry of the log sets.
fn membership_of(row: crate::db::models::WriteLogRow) -> Result<Membership, BackupError> {
    let lsn = row.lsn;
    match LogRecord::from_row(row).map(|r| r.change) {
        Ok(Change::Membership(m)) => Ok(Membership { voters: m.voters, learners: m.learners }),
        _ => Err(BackupError::Refused(format!("the log's membership entry {lsn} cannot be read"))),
    }
}

/// Sends the header, then every table in primary-key order, a chunk at a time. Returns
/// where the log ends in the snapshot and the rows sent.
fn copy_tables(
    conn: &mut MysqlConnection,
    node: u64,
    configured: Membership,
    commit: i64,
    tx: &tokio::sync::mpsc::Sender<Piece>,
) -> Result<(i64, i64, u64), BackupError> {
    let (lsn, epoch) = snapshot::log_end(conn)?;
    // Committed: at least the compacted part (a restarted master learns its commit point
    // again), never past the snapshot's end.
    let (base, base_epoch) = crate::db::node::load_base(conn)?.unwrap_or((0, 0));
    let committed = commit.max(base).min(lsn);
    let committed_epoch = match snapshot::epoch_at(conn, committed)? {
        Some(e) => e,
        None if committed == base => base_epoch,
        None => 0,
    };
    let logged = snapshot::last_membership(conn)?.map(membership_of).transpose()?;
    let membership = Some(logged.unwrap_or(configured));
    let header = Header {
        format: FORMAT_VERSION,
        lsn,
        epoch,
        membership,
        created_at: chrono::Utc::now(),
        node,
        tables: TABLES.iter().map(|t| t.to_string()).collect(),
        committed,
        committed_epoch,
    };
    send(tx, control_line(&Control::Header(header)))?;
    let mut total = 0;
    for table in TABLES {
        let mut out = control_line(&Control::Table { name: table.to_string() });
        let mut sum = Checksum::default();
        let mut cursor = ChunkCursor::new(snapshot::chunk_rows(table));
        while !cursor.done {
            let rows = snapshot::read_chunk(conn, table, &cursor)?;
            for (_, line) in &rows {
                sum.add(line.as_bytes());
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            cursor.advance(rows.len(), rows.last().map(|(k, _)| k.clone()));
            send(tx, std::mem::take(&mut out))?;
        }
        total += cursor.rows;
        let summary = TableSummary { name: table.to_string(), rows: cursor.rows, sha256: sum.hex() };
        send(tx, control_line(&Control::TableEnd(summary)))?;
    }
    Ok((lsn, epoch, total))
}
