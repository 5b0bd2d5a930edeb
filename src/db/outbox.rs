//! The emails owed, as the log leaves them (written by `wal::apply`, sent by the Mailer).
use super::schema::outbox;
use super::DbError;
use chrono::NaiveDateTime;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct OutboxRow {
    pub message_id: String,
    pub booking_code: String,
    /// `mail::mail_kind`: confirmed or cancelled.
    pub kind: String,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// Up to `limit` messages not sent yet, oldest first.
pub fn unsent(conn: &mut MysqlConnection, limit: i64) -> Result<Vec<OutboxRow>, DbError> {
    Ok(outbox::table.filter(outbox::sent_at.is_null()).order(outbox::created_at.asc()).limit(limit).load(conn)?)
}
