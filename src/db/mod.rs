//! The database layer: the pool, migrations, the blocking-pool helper, and queries per table.
//! Diesel runs only inside [`Db::run`], on actix-web's blocking thread pool.
pub mod admin;
pub mod admissions;
pub mod catalog;
pub mod import_jobs;
pub mod layouts;
pub mod models;
pub mod node;
pub mod orders;
pub mod outbox;
pub mod sales;
pub mod schema;
pub mod snapshot;
pub mod write_log;

use diesel::mysql::MysqlConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Runs `work` with the session's foreign-key checks off, and turns them back on whatever
/// it returned. For rows already checked elsewhere and written in an order the checks
/// would refuse: a follower applying its master's entries, a cut undoing them newest
/// first, a snapshot's tables loaded one after another, a restore's tables cleared. The
/// unique keys still hold.
pub fn without_foreign_keys<T, E: From<diesel::result::Error>>(
    conn: &mut MysqlConnection,
    work: impl FnOnce(&mut MysqlConnection) -> Result<T, E>,
) -> Result<T, E> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(FOREIGN_KEYS_OFF)?;
    let result = work(conn);
    conn.batch_execute(FOREIGN_KEYS_ON)?;
    result
}

/// The statements [`without_foreign_keys`] runs around its work (also sent as part of a
/// longer SQL text, by `wal::apply::store_batch`).
pub const FOREIGN_KEYS_OFF: &str = "SET SESSION foreign_key_checks = 0";
pub const FOREIGN_KEYS_ON: &str = "SET SESSION foreign_key_checks = 1";

pub type MysqlPool = Pool<ConnectionManager<MysqlConnection>>;
pub type Conn = PooledConnection<ConnectionManager<MysqlConnection>>;

/// What went wrong in the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database connection failed: {0}")]
    Connect(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("the blocking pool is gone")]
    Canceled,
    /// A backup's row that is not a row of its table, or a table no backup holds.
    #[error("{0}")]
    Snapshot(String),
}

impl DbError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, DbError::Query(diesel::result::Error::NotFound))
    }
}

/// The pool plus the way to use it without blocking an async thread.
#[derive(Clone)]
pub struct Db {
    pool: MysqlPool,
}

impl Db {
    pub fn connect(url: &str, max_size: u32) -> Result<Self, DbError> {
        let manager = ConnectionManager::<MysqlConnection>::new(url);
        let pool = Pool::builder()
            .max_size(max_size)
            .min_idle(Some(2.min(max_size)))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| DbError::Connect(e.to_string()))?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &MysqlPool {
        &self.pool
    }

    /// A connection for code that already runs on a thread of its own (the log writer).
    pub fn get(&self) -> Result<Conn, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` with a connection on actix-web's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut MysqlConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| DbError::Canceled)?
    }

    pub fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.get()?;
        conn.run_pending_migrations(MIGRATIONS).map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(())
    }
}

/// Creates the database named in a MySQL URL if it does not exist yet
/// (`mysql://user:pw@host:port/name`), by connecting to the server without it.
pub fn create_database_if_missing(url: &str) -> Result<(), DbError> {
    use diesel::{Connection, RunQueryDsl};
    let (server, name) = url
        .rsplit_once('/')
        .filter(|(s, n)| s.contains("://") && !s.ends_with('/') && !n.is_empty())
        .ok_or_else(|| DbError::Connect("DATABASE_URL must name a database".into()))?;
    let name = name.split('?').next().unwrap_or(name);
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DbError::Connect(format!("unsupported database name '{name}'")));
    }
    let mut conn = MysqlConnection::establish(server).map_err(|e| DbError::Connect(e.to_string()))?;
    diesel::sql_query(format!(
        "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&mut conn)?;
    Ok(())
}
