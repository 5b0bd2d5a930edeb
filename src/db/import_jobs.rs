//! The import jobs this node ran (the admin page's history). Written directly, not
//! through the write log: they describe this node's work, not the catalog.
use super::schema::import_jobs;
use super::DbError;
use chrono::NaiveDateTime;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = import_jobs)]
pub struct ImportJobRow {
    pub id: i64,
    pub state: String,
    pub requested_by: String,
    pub queued_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub theaters_done: i32,
    pub theaters_total: Option<i32>,
    /// `ImportCounts` as JSON.
    pub counts: Option<String>,
    pub requests: i32,
    pub retries: i32,
    pub lsn: Option<i64>,
    pub error: Option<String>,
}

/// Writes the job as it is now (insert or replace by id).
pub fn save(conn: &mut MysqlConnection, row: &ImportJobRow) -> Result<(), DbError> {
    diesel::replace_into(import_jobs::table).values(row).execute(conn)?;
    Ok(())
}

/// Jobs left queued or running by a node that stopped: they failed.
pub fn fail_unfinished(conn: &mut MysqlConnection, now: NaiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::update(import_jobs::table.filter(import_jobs::state.eq_any(["queued", "running"])))
        .set((
            import_jobs::state.eq("failed"),
            import_jobs::finished_at.eq(Some(now)),
            import_jobs::error.eq(Some("the node stopped during this import; nothing of it was written")),
        ))
        .execute(conn)?)
}

/// The newest `limit` jobs, newest first, and the highest id ever used.
pub fn recent(conn: &mut MysqlConnection, limit: i64) -> Result<(Vec<ImportJobRow>, i64), DbError> {
    let rows =
        import_jobs::table.order(import_jobs::id.desc()).limit(limit).select(ImportJobRow::as_select()).load(conn)?;
    let max: Option<i64> = import_jobs::table.select(diesel::dsl::max(import_jobs::id)).first(conn)?;
    Ok((rows, max.unwrap_or(0)))
}
