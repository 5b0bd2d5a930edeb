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

/// Compacts the log up to `lsn` (`epoch` there): stores that as the log's base first (a
/// crash half way leaves rows the base already covers), then deletes the entries up to it,
/// a chunk at a time, except the newest membership entry among them (the membership in
/// force at the base). Returns how many rows went.
pub fn compact(conn: &mut MysqlConnection, lsn: i64, epoch: i64) -> Result<usize, DbError> {
    use diesel::dsl::max;
    super::node::save_base(conn, lsn, epoch)?;
    let keep: Option<i64> = write_log::table
        .filter(write_log::kind.eq("membership").and(write_log::lsn.le(lsn)))
        .select(max(write_log::lsn))
        .first(conn)?;
    let keep = keep.unwrap_or(0);
    let mut deleted = 0;
    loop {
        let n = diesel::sql_query("DELETE FROM write_log WHERE lsn <= ? AND lsn <> ? ORDER BY lsn LIMIT 10000")
            .bind::<diesel::sql_types::BigInt, _>(lsn)
            .bind::<diesel::sql_types::BigInt, _>(keep)
            .execute(conn)?;
        deleted += n;
        if n < 10000 {
            return Ok(deleted);
        }
    }
}
