//! The replicated tables as a backup copies them: read in primary-key order, a chunk at a
//! time, each row as one line of JSON; and written back the same way, a chunk per
//! statement. The tables are those the write log writes (`wal::apply::wipe` deletes the
//! same list): the catalog, holds, bookings and their seats, admissions, the mail outbox,
//! the admin's password and sessions, and the log itself. `node_state` (this node's own
//! vote and epoch) and `import_jobs` (the import history of the node that ran them; no log
//! entry writes it) are not replicated, so not copied.
use super::models::{Booking, BookingSeat, Hold, Layout, LayoutRow, Movie, SeatCategory, Show, Theater, WriteLogRow};
use super::schema::{
    admin_credentials, admin_sessions, admissions, booking_seats, bookings, holds, layout_rows, layouts, movies,
    outbox, seat_categories, shows, theaters, write_log,
};
use super::DbError;
use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

/// The replicated tables, parents before children (the order a backup holds them and a
/// restore loads them), the log last.
pub const TABLES: &[&str] = &[
    "layouts",
    "seat_categories",
    "layout_rows",
    "theaters",
    "movies",
    "shows",
    "holds",
    "bookings",
    "booking_seats",
    "admissions",
    "outbox",
    "admin_credentials",
    "admin_sessions",
    "write_log",
];

/// Rows read per query: the log's entries may carry a whole catalog, so fewer of them.
pub fn chunk_rows(table: &str) -> i64 {
    if table == "write_log" {
        500
    } else {
        5000
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = admin_sessions)]
pub struct AdminSessionRow {
    pub id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub client_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = admin_credentials)]
pub struct AdminCredentialRow {
    pub id: i8,
    pub password_hash: String,
    pub changed_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = admissions)]
pub struct AdmissionRecord {
    pub booking_code: String,
    pub show_id: i64,
    pub admitted_at: NaiveDateTime,
    pub node: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = outbox)]
pub struct OutboxRecord {
    pub message_id: String,
    pub booking_code: String,
    pub kind: String,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// A row's primary key: where the next chunk of its table starts (after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Int(i64),
    Text(String),
    IntText(i64, String),
}

impl Key {
    fn int(&self) -> Result<i64, DbError> {
        match self {
            Key::Int(i) => Ok(*i),
            other => Err(DbError::Snapshot(format!("{other:?} is not a whole-number key"))),
        }
    }

    fn text(&self) -> Result<&str, DbError> {
        match self {
            Key::Text(t) => Ok(t),
            other => Err(DbError::Snapshot(format!("{other:?} is not a text key"))),
        }
    }

    fn pair(&self) -> Result<(i64, &str), DbError> {
        match self {
            Key::IntText(i, t) => Ok((*i, t)),
            other => Err(DbError::Snapshot(format!("{other:?} is not a two-part key"))),
        }
    }
}

/// Where reading a table stands: after which key the next chunk starts, how many rows so
/// far, and whether the table is done (a chunk shorter than asked for is its last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkCursor {
    pub after: Option<Key>,
    pub rows: u64,
    pub done: bool,
    limit: i64,
}

impl ChunkCursor {
    pub fn new(limit: i64) -> Self {
        Self { after: None, rows: 0, done: false, limit: limit.max(1) }
    }

    pub fn limit(&self) -> i64 {
        self.limit
    }

    /// A chunk of `got` rows was read, the last with key `last`.
    pub fn advance(&mut self, got: usize, last: Option<Key>) {
        self.rows += got as u64;
        if let Some(k) = last {
            self.after = Some(k);
        }
        self.done = (got as i64) < self.limit;
    }
}

fn json<T: Serialize>(row: &T) -> Result<String, DbError> {
    serde_json::to_string(row).map_err(|e| DbError::Snapshot(format!("a row cannot be written as JSON: {e}")))
}

macro_rules! read_chunk {
    ($conn:expr, $after:expr, $limit:expr, $t:ident, $model:ty, int $pk:ident) => {{
        let mut q = $t::table.select(<$model>::as_select()).order($t::$pk.asc()).limit($limit).into_boxed();
        if let Some(k) = $after {
            q = q.filter($t::$pk.gt(k.int()?));
        }
        let rows: Vec<$model> = q.load($conn)?;
        rows.iter().map(|r| Ok((Key::Int(i64::from(r.$pk)), json(r)?))).collect::<Result<Vec<_>, DbError>>()
    }};
    ($conn:expr, $after:expr, $limit:expr, $t:ident, $model:ty, tiny $pk:ident) => {{
        let mut q = $t::table.select(<$model>::as_select()).order($t::$pk.asc()).limit($limit).into_boxed();
        if let Some(k) = $after {
            let k = i8::try_from(k.int()?).map_err(|_| DbError::Snapshot("key out of range".into()))?;
            q = q.filter($t::$pk.gt(k));
        }
        let rows: Vec<$model> = q.load($conn)?;
        rows.iter().map(|r| Ok((Key::Int(i64::from(r.$pk)), json(r)?))).collect::<Result<Vec<_>, DbError>>()
    }};
    ($conn:expr, $after:expr, $limit:expr, $t:ident, $model:ty, text $pk:ident) => {{
        let mut q = $t::table.select(<$model>::as_select()).order($t::$pk.asc()).limit($limit).into_boxed();
        if let Some(k) = $after {
            q = q.filter($t::$pk.gt(k.text()?.to_string()));
        }
        let rows: Vec<$model> = q.load($conn)?;
        rows.iter().map(|r| Ok((Key::Text(r.$pk.clone()), json(r)?))).collect::<Result<Vec<_>, DbError>>()
    }};
    ($conn:expr, $after:expr, $limit:expr, $t:ident, $model:ty, pair $a:ident $b:ident) => {{
        let mut q =
            $t::table.select(<$model>::as_select()).order(($t::$a.asc(), $t::$b.asc())).limit($limit).into_boxed();
        if let Some(k) = $after {
            let (a, b) = k.pair()?;
            q = q.filter($t::$a.gt(a).or($t::$a.eq(a).and($t::$b.gt(b.to_string()))));
        }
        let rows: Vec<$model> = q.load($conn)?;
        rows.iter().map(|r| Ok((Key::IntText(r.$a, r.$b.clone()), json(r)?))).collect::<Result<Vec<_>, DbError>>()
    }};
}

/// The next chunk of `table` after the cursor's key, in primary-key order: each row's key
/// and its JSON.
pub fn read_chunk(
    conn: &mut MysqlConnection,
    table: &str,
    cursor: &ChunkCursor,
) -> Result<Vec<(Key, String)>, DbError> {
    let (after, limit) = (cursor.after.as_ref(), cursor.limit);
    match table {
        "layouts" => read_chunk!(conn, after, limit, layouts, Layout, int id),
        "seat_categories" => read_chunk!(conn, after, limit, seat_categories, SeatCategory, int id),
        "layout_rows" => read_chunk!(conn, after, limit, layout_rows, LayoutRow, pair layout_id row_label),
        "theaters" => read_chunk!(conn, after, limit, theaters, Theater, int id),
        "movies" => read_chunk!(conn, after, limit, movies, Movie, int id),
        "shows" => read_chunk!(conn, after, limit, shows, Show, int id),
        "holds" => read_chunk!(conn, after, limit, holds, Hold, text id),
        "bookings" => read_chunk!(conn, after, limit, bookings, Booking, text code),
        "booking_seats" => read_chunk!(conn, after, limit, booking_seats, BookingSeat, pair show_id seat),
        "admissions" => read_chunk!(conn, after, limit, admissions, AdmissionRecord, text booking_code),
        "outbox" => read_chunk!(conn, after, limit, outbox, OutboxRecord, text message_id),
        "admin_credentials" => read_chunk!(conn, after, limit, admin_credentials, AdminCredentialRow, tiny id),
        "admin_sessions" => read_chunk!(conn, after, limit, admin_sessions, AdminSessionRow, text id),
        "write_log" => read_chunk!(conn, after, limit, write_log, WriteLogRow, int lsn),
        other => Err(DbError::Snapshot(format!("'{other}' is not a replicated table"))),
    }
}

/// Parses each line as a row of the table; the first that is not one is the error.
fn parse<T: serde::de::DeserializeOwned>(table: &str, lines: &[String]) -> Result<Vec<T>, DbError> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).map_err(|e| DbError::Snapshot(format!("a line of {table} is not a row of it: {e}")))
        })
        .collect()
}

/// Rows per INSERT (MySQL binds at most 65,535 values to one statement).
const ROWS_PER_INSERT: usize = 1000;

macro_rules! insert_rows {
    ($conn:expr, $table:expr, $lines:expr, $t:ident, $model:ty) => {{
        let rows: Vec<$model> = parse($table, $lines)?;
        for part in rows.chunks(ROWS_PER_INSERT) {
            diesel::insert_into($t::table).values(part).execute($conn)?;
        }
        Ok(())
    }};
}

/// Inserts rows of `table`, each a line of JSON as [`read_chunk`] wrote it.
pub fn insert_rows(conn: &mut MysqlConnection, table: &str, lines: &[String]) -> Result<(), DbError> {
    match table {
        "layouts" => insert_rows!(conn, table, lines, layouts, Layout),
        "seat_categories" => insert_rows!(conn, table, lines, seat_categories, SeatCategory),
        "layout_rows" => insert_rows!(conn, table, lines, layout_rows, LayoutRow),
        "theaters" => insert_rows!(conn, table, lines, theaters, Theater),
        "movies" => insert_rows!(conn, table, lines, movies, Movie),
        "shows" => insert_rows!(conn, table, lines, shows, Show),
        "holds" => insert_rows!(conn, table, lines, holds, Hold),
        "bookings" => insert_rows!(conn, table, lines, bookings, Booking),
        "booking_seats" => insert_rows!(conn, table, lines, booking_seats, BookingSeat),
        "admissions" => insert_rows!(conn, table, lines, admissions, AdmissionRecord),
        "outbox" => insert_rows!(conn, table, lines, outbox, OutboxRecord),
        "admin_credentials" => insert_rows!(conn, table, lines, admin_credentials, AdminCredentialRow),
        "admin_sessions" => insert_rows!(conn, table, lines, admin_sessions, AdminSessionRow),
        "write_log" => insert_rows!(conn, table, lines, write_log, WriteLogRow),
        other => Err(DbError::Snapshot(format!("'{other}' is not a replicated table"))),
    }
}

/// Starts the read-only transaction a backup reads in: REPEATABLE READ, its snapshot taken
/// now, so every later read sees the database as it was at this moment (each log entry
/// was committed with its effect, so that is exactly the state after the log's last entry
/// here). End it with [`end_snapshot`].
pub fn begin_snapshot(conn: &mut MysqlConnection) -> Result<(), DbError> {
    conn.batch_execute(
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
    )?;
    Ok(())
}

pub fn end_snapshot(conn: &mut MysqlConnection) -> Result<(), DbError> {
    conn.batch_execute("ROLLBACK")?;
    Ok(())
}

/// The log's last entry's LSN and epoch, (0, 0) for an empty log.
pub fn log_end(conn: &mut MysqlConnection) -> Result<(i64, i64), DbError> {
    let last: Option<(i64, i64)> = write_log::table
        .select((write_log::lsn, write_log::epoch))
        .order(write_log::lsn.desc())
        .first(conn)
        .optional()?;
    Ok(last.unwrap_or((0, 0)))
}

/// The newest membership entry of the log (the membership in force), if any.
pub fn last_membership(conn: &mut MysqlConnection) -> Result<Option<WriteLogRow>, DbError> {
    Ok(write_log::table
        .filter(write_log::kind.eq("membership"))
        .order(write_log::lsn.desc())
        .select(WriteLogRow::as_select())
        .first(conn)
        .optional()?)
}

/// The epoch of the log's entry at `lsn`, if there is one.
pub fn epoch_at(conn: &mut MysqlConnection, lsn: i64) -> Result<Option<i64>, DbError> {
    Ok(write_log::table.find(lsn).select(write_log::epoch).first(conn).optional()?)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Whether the database's schema is this version's: migrated, nothing pending. Reads only
/// (diesel's own check would create its bookkeeping table in an unmigrated database).
pub fn is_migrated(conn: &mut MysqlConnection) -> Result<bool, DbError> {
    use diesel_migrations::MigrationHarness;
    let bookkeeping: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() \
         AND table_name = '__diesel_schema_migrations'",
    )
    .get_result(conn)?;
    if bookkeeping.n == 0 {
        return Ok(false);
    }
    conn.has_pending_migration(super::MIGRATIONS).map(|pending| !pending).map_err(|e| DbError::Migration(e.to_string()))
}

/// The tables among the replicated ones and `node_state` that hold any row, with their
/// counts.
pub fn non_empty_tables(conn: &mut MysqlConnection) -> Result<Vec<(String, i64)>, DbError> {
    let mut found = Vec::new();
    for table in TABLES.iter().copied().chain(["node_state"]) {
        let c: Count = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM `{table}`")).get_result(conn)?;
        if c.n > 0 {
            found.push((table.to_string(), c.n));
        }
    }
    Ok(found)
}

/// Deletes every row of the replicated tables and `node_state` (a restore that failed
/// half way, in a database that was empty before it).
pub fn clear(conn: &mut MysqlConnection) -> Result<(), DbError> {
    super::without_foreign_keys(conn, |c| {
        for table in TABLES.iter().rev().copied().chain(["node_state"]) {
            c.batch_execute(&format!("DELETE FROM `{table}`"))?;
        }
        Ok(())
    })
}

/// Runs `load` in one transaction with the session's foreign-key checks off: a backup's
/// tables are loaded one after the other, each already consistent with the others as of
/// the snapshot, so a child row may come before the check could see its parent's chunk.
pub fn load_chunk(conn: &mut MysqlConnection, table: &str, lines: &[String]) -> Result<(), DbError> {
    super::without_foreign_keys(conn, |c| c.transaction(|c| insert_rows(c, table, lines)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_moves_after_each_chunk_and_ends_on_a_short_one() {
        let mut c = ChunkCursor::new(3);
        assert_eq!((c.after.clone(), c.rows, c.done), (None, 0, false));
        c.advance(3, Some(Key::Int(7)));
        assert_eq!((c.after.clone(), c.rows, c.done), (Some(Key::Int(7)), 3, false));
        c.advance(1, Some(Key::Int(9)));
        assert_eq!((c.after.clone(), c.rows, c.done), (Some(Key::Int(9)), 4, true));
    }

    #[test]
    fn a_full_last_chunk_takes_one_empty_read_to_end() {
        let mut c = ChunkCursor::new(2);
        c.advance(2, Some(Key::Text("b".into())));
        assert!(!c.done);
        c.advance(0, None);
        assert_eq!((c.after, c.rows, c.done), (Some(Key::Text("b".into())), 2, true));
    }

    #[test]
    fn a_cursor_of_no_limit_reads_one_row_at_a_time() {
        assert_eq!(ChunkCursor::new(0).limit(), 1);
    }

    #[test]
    fn keys_are_read_only_as_their_own_kind() {
        assert_eq!(Key::Int(3).int().unwrap(), 3);
        assert_eq!(Key::IntText(3, "A1".into()).pair().unwrap(), (3, "A1"));
        assert!(Key::Text("x".into()).int().is_err());
        assert!(Key::Int(1).pair().is_err());
    }

    #[test]
    fn the_tables_are_the_ones_the_log_writes() {
        // wal::apply::wipe deletes exactly these; the per-node tables are not among them.
        assert_eq!(TABLES.len(), 14);
        assert!(!TABLES.contains(&"node_state") && !TABLES.contains(&"import_jobs"));
        assert_eq!(TABLES.last(), Some(&"write_log"));
    }

    #[test]
    fn a_row_round_trips_through_its_line() {
        let row = AdmissionRecord {
            booking_code: "ABCDEFGH".into(),
            show_id: 4,
            admitted_at: chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap().and_hms_opt(7, 0, 0).unwrap(),
            node: 2,
        };
        let line = json(&row).unwrap();
        assert_eq!(parse::<AdmissionRecord>("admissions", &[line]).unwrap(), vec![row]);
        assert!(parse::<AdmissionRecord>("admissions", &["{\"booking_code\":1}".into()]).is_err());
    }
}
