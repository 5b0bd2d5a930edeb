//! The write log as the cluster page shows it. The log's own reads and writes (appending,
//! replicating, catching up) live in `wal`.
use super::schema::write_log;
use super::DbError;
use crate::cluster::NodeId;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use serde::Serialize;

/// One entry without its payload: its place in the log, its times, the node it came through.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntrySummary {
    pub lsn: i64,
    pub epoch: i64,
    pub lamport: i64,
    /// None for entries logged before origins were recorded.
    pub origin: Option<NodeId>,
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

/// The last `limit` entries of this node's log, newest first.
pub fn recent(conn: &mut MysqlConnection, limit: i64) -> Result<Vec<EntrySummary>, DbError> {
    let rows: Vec<(i64, i64, i64, i64, String, NaiveDateTime)> = write_log::table
        .select((
            write_log::lsn,
            write_log::epoch,
            write_log::lamport,
            write_log::origin,
            write_log::kind,
            write_log::created_at,
        ))
        .order(write_log::lsn.desc())
        .limit(limit)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(lsn, epoch, lamport, origin, kind, created_at)| EntrySummary {
            lsn,
            epoch,
            lamport,
            origin: u64::try_from(origin).ok().filter(|o| *o > 0),
            kind,
            created_at: created_at.and_utc(),
        })
        .collect())
}

/// The log's runs: the first LSN of each epoch, in order (epochs only grow along a log).
pub fn runs(conn: &mut MysqlConnection) -> Result<Vec<(i64, i64)>, DbError> {
    use diesel::dsl::min;
    let rows: Vec<(Option<i64>, i64)> =
        write_log::table.group_by(write_log::epoch).select((min(write_log::lsn), write_log::epoch)).load(conn)?;
    let mut runs: Vec<(i64, i64)> = rows.into_iter().filter_map(|(l, e)| l.map(|l| (l, e))).collect();
    runs.sort_unstable();
    Ok(runs)
}

/// The log's membership entries, in order.
pub fn memberships(conn: &mut MysqlConnection) -> Result<Vec<crate::wal::LogRecord>, DbError> {
    let rows: Vec<crate::db::models::WriteLogRow> = write_log::table
        .filter(write_log::kind.eq("membership"))
        .order(write_log::lsn.asc())
        .select(crate::db::models::WriteLogRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|r| {
            crate::wal::LogRecord::from_row(r)
                .map_err(|e| DbError::Query(diesel::result::Error::DeserializationError(Box::new(e))))
        })
        .collect()
}
