//! Admissions at the door as the log leaves them (written by `wal::apply`).
use super::schema::admissions;
use super::DbError;
use chrono::NaiveDateTime;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;

/// A booking let in: when (UTC) and through which node.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AdmissionRow {
    pub booking_code: String,
    pub show_id: i64,
    pub admitted_at: NaiveDateTime,
    pub node: i64,
}

/// The admission of booking `code`, if it was let in.
pub fn find(conn: &mut MysqlConnection, code: &str) -> Result<Option<AdmissionRow>, DbError> {
    Ok(admissions::table.find(code).first(conn).optional()?)
}
