//! The catalog: planning a feed into rows (with default layouts) and importing it through
//! the write log, all or nothing.
pub mod layout;
pub mod plan;
pub mod zone;

use crate::actors::show::ShowInfoChanged;
use crate::actors::ShowDirectory;
use crate::config::Settings;
use crate::db::{Db, DbError};
use crate::importer::feed::{load_dir, CatalogFeed};
use crate::wal::change::CatalogChange;
use crate::wal::{Change, LogWriter, WalError};
pub use plan::{movie_key, ImportCounts};
use std::path::PathBuf;

/// Held while a catalog change is planned and written on the master (an import, a layout
/// change): both read the stored catalog to choose new ids and rows from it, so one must
/// not plan on what the other is about to change.
pub type CatalogLock = std::sync::Arc<tokio::sync::Mutex<()>>;

/// FEED_TIMEZONE's default: the zone of the bundled Flixster data (Los Angeles theaters).
pub const DEFAULT_FEED_TIMEZONE: chrono_tz::Tz = chrono_tz::America::Los_Angeles;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the catalog change could not be written: {0}")]
    Write(#[from] WalError),
}

/// What an import did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportOutcome {
    pub counts: ImportCounts,
    /// The log entry that carried the change (None when nothing changed).
    pub lsn: Option<i64>,
}

/// Plans `feed` against the stored catalog and commits the change as one log entry (one
/// transaction): a failure leaves the catalog as it was. `feed_timezone` is the zone of a
/// theater without coordinates (FEED_TIMEZONE).
pub async fn import_feed(
    db: &Db,
    writer: &LogWriter,
    shows: Option<&ShowDirectory>,
    feed: CatalogFeed,
    feed_timezone: chrono_tz::Tz,
) -> Result<ImportOutcome, CatalogError> {
    let (change, counts) = db.run(move |c| plan::plan(c, &feed, feed_timezone)).await?;
    if change.is_empty() {
        return Ok(ImportOutcome { counts, lsn: None });
    }
    let record = writer.append(Change::Catalog(Box::new(change))).await?;
    if let (Some(dir), Change::Catalog(change)) = (shows, &record.change) {
        notify_shows(dir, change);
    }
    Ok(ImportOutcome { counts, lsn: Some(record.lsn) })
}

/// Tells loaded show actors that their show changed in the catalog.
pub fn notify_shows(dir: &ShowDirectory, change: &CatalogChange) {
    for (id, addr) in dir.loaded() {
        if let Some(s) = change.shows.iter().find(|s| s.id == id.0) {
            addr.do_send(ShowInfoChanged { starts_at: Some(s.starts_at_utc.and_utc()), on_sale: s.in_feed });
        } else if change.shows_out_of_feed.contains(&id.0) || change.shows_deleted.contains(&id.0) {
            addr.do_send(ShowInfoChanged { starts_at: None, on_sale: false });
        }
    }
}

/// `marquee import --from DIR [--date YYYY-MM-DD]`: loads a directory laid out like the
/// Flixster sample, its first date moved to `--date` (default: today in FEED_TIMEZONE).
pub fn cli_import(settings: Settings, args: &[String]) -> Result<(), String> {
    let mut from: Option<PathBuf> = None;
    let feed_timezone = settings.flixster.feed_timezone;
    let mut date = chrono::Utc::now().with_timezone(&feed_timezone).date_naive();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--from" => from = it.next().map(PathBuf::from),
            "--date" => {
                let d = it.next().ok_or("--date needs a value")?;
                date = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| format!("'{d}' is not a date"))?;
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    let dir = from.ok_or("usage: marquee import --from DIR [--date YYYY-MM-DD]")?;
    let feed = load_dir(&dir, Some(date)).map_err(|e| e.to_string())?;
    actix_web::rt::System::new().block_on(async move {
        let db = crate::startup::open_database(&settings).map_err(|e| e.to_string())?;
        let writer = crate::startup::start_log(&db).map_err(|e| e.to_string())?;
        let outcome = import_feed(&db, &writer, None, feed, feed_timezone).await.map_err(|e| e.to_string())?;
        let c = &outcome.counts;
        println!(
            "imported {}: theaters {}+{}~{}=, movies {}+{}~{}=, shows {}+{}~{}=, {} removed, {} withdrawn (created+ updated~ unchanged=)",
            dir.display(),
            c.theaters.created, c.theaters.updated, c.theaters.unchanged,
            c.movies.created, c.movies.updated, c.movies.unchanged,
            c.shows.created, c.shows.updated, c.shows.unchanged,
            c.shows_removed, c.shows_withdrawn
        );
        Ok(())
    })
}
