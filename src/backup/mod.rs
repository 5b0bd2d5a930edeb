//! Backups (issue 15): the master streams a consistent snapshot of the replicated tables
//! ([`serve`]), `marquee backup` writes it into a directory ([`fetch`]), `marquee restore`
//! loads a directory into a fresh database ([`restore`]). What a backup is, and every
//! decision about one, is in [`format`].
pub mod fetch;
pub mod format;
pub mod restore;
pub mod serve;

use crate::cluster::client::RpcError;
use crate::db::DbError;

/// What went wrong with a backup or a restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The node asked would not serve one (a follower, no master now).
    #[error("{0}")]
    Refused(String),
    /// The stream is not a whole, signed, committed snapshot.
    #[error("the backup is incomplete: {0}")]
    Incomplete(String),
    /// A directory that holds no readable backup.
    #[error("not a backup: {0}")]
    NotABackup(String),
    /// A table file that does not match its manifest entry.
    #[error("checksum mismatch: {0}")]
    Checksum(String),
    /// Where the backup was to go (a directory, a database) cannot take it.
    #[error("{0}")]
    Target(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for BackupError {
    fn from(e: diesel::result::Error) -> Self {
        BackupError::Db(DbError::from(e))
    }
}

impl BackupError {
    fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        BackupError::Io(format!("{what}: {e}"))
    }
}

/// How far a backup or restore is: the table under way and its rows so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub table: String,
    pub table_rows: u64,
    pub tables_done: usize,
    pub tables: usize,
    pub rows: u64,
}
