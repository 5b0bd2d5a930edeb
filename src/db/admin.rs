//! Admin sessions and the admin password as the log leaves them (written by `wal::apply`,
//! read by the admin gate on every request).
use super::schema::{admin_credentials, admin_sessions};
use super::DbError;
use chrono::NaiveDateTime;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;

/// Whether the session with this id (the SHA-256 of its secret) is open at `now`.
pub fn session_open(conn: &mut MysqlConnection, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let found: Option<String> = admin_sessions::table
        .filter(admin_sessions::id.eq(id))
        .filter(admin_sessions::ended_at.is_null())
        .filter(admin_sessions::expires_at.gt(now))
        .select(admin_sessions::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// How many sessions are open at `now` (the admin page shows it).
pub fn open_sessions(conn: &mut MysqlConnection, now: NaiveDateTime) -> Result<i64, DbError> {
    Ok(admin_sessions::table
        .filter(admin_sessions::ended_at.is_null())
        .filter(admin_sessions::expires_at.gt(now))
        .count()
        .get_result(conn)?)
}

/// The admin password's hash, if an operator changed it (else ADMIN_PASSWORD holds).
pub fn stored_password(conn: &mut MysqlConnection) -> Result<Option<String>, DbError> {
    Ok(admin_credentials::table.find(1i8).select(admin_credentials::password_hash).first(conn).optional()?)
}
