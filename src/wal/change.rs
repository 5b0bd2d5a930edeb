use crate::db::models::{Layout, LayoutRow, Movie, SeatCategory, Show, Theater, WriteLogRow};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// One write, as it is logged and replicated. Times are UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    HoldPlaced(HoldPlaced),
    HoldsEnded(HoldsEnded),
    BookingConfirmed(BookingConfirmed),
    BookingCancelled(BookingCancelled),
    Catalog(Box<CatalogChange>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldPlaced {
    pub hold_id: String,
    pub show_id: i64,
    pub seats: Vec<String>,
    pub expires_at: NaiveDateTime,
    pub idempotency_key: Option<String>,
    pub created_at: NaiveDateTime,
}

/// Holds that ended without a booking: `state` is `expired` or `released`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldsEnded {
    pub show_id: i64,
    pub hold_ids: Vec<String>,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingConfirmed {
    pub code: String,
    pub show_id: i64,
    pub hold_id: String,
    pub name: String,
    pub email: String,
    pub seats: Vec<String>,
    pub total_cents: i32,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingCancelled {
    pub code: String,
    pub show_id: i64,
    pub at: NaiveDateTime,
}

/// A catalog import's effect with explicit ids, so every node ends with the same rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogChange {
    pub layouts: Vec<Layout>,
    pub categories: Vec<SeatCategory>,
    pub rows: Vec<LayoutRow>,
    pub theaters: Vec<Theater>,
    pub movies: Vec<Movie>,
    pub shows: Vec<Show>,
    /// Shows gone from the feed that have bookings or holds: kept, marked out of the feed.
    pub shows_out_of_feed: Vec<i64>,
    /// Shows gone from the feed with nothing sold or held: deleted.
    pub shows_deleted: Vec<i64>,
}

impl CatalogChange {
    pub fn is_empty(&self) -> bool {
        self.layouts.is_empty()
            && self.theaters.is_empty()
            && self.movies.is_empty()
            && self.shows.is_empty()
            && self.shows_out_of_feed.is_empty()
            && self.shows_deleted.is_empty()
    }
}

impl Change {
    pub fn kind(&self) -> &'static str {
        match self {
            Change::HoldPlaced(_) => "hold_placed",
            Change::HoldsEnded(_) => "holds_ended",
            Change::BookingConfirmed(_) => "booking_confirmed",
            Change::BookingCancelled(_) => "booking_cancelled",
            Change::Catalog(_) => "catalog",
        }
    }

    /// The show whose seat map this change touches, if any.
    pub fn show_id(&self) -> Option<i64> {
        match self {
            Change::HoldPlaced(c) => Some(c.show_id),
            Change::HoldsEnded(c) => Some(c.show_id),
            Change::BookingConfirmed(c) => Some(c.show_id),
            Change::BookingCancelled(c) => Some(c.show_id),
            Change::Catalog(_) => None,
        }
    }
}

/// A committed change with its place in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub lsn: i64,
    pub epoch: i64,
    pub lamport: i64,
    pub created_at: NaiveDateTime,
    pub change: Change,
}

impl LogRecord {
    pub fn to_row(&self) -> Result<WriteLogRow, serde_json::Error> {
        Ok(WriteLogRow {
            lsn: self.lsn,
            epoch: self.epoch,
            lamport: self.lamport,
            kind: self.change.kind().to_string(),
            payload: serde_json::to_string(&self.change)?,
            created_at: self.created_at,
        })
    }

    pub fn from_row(row: WriteLogRow) -> Result<Self, serde_json::Error> {
        Ok(Self {
            lsn: row.lsn,
            epoch: row.epoch,
            lamport: row.lamport,
            created_at: row.created_at,
            change: serde_json::from_str(&row.payload)?,
        })
    }
}
