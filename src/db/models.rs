//! Rows of the tables, as diesel reads and writes them. Catalog rows also travel inside
//! write-log entries (serde), so a follower writes exactly what the master wrote.
use super::schema::*;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize)]
#[diesel(table_name = layouts)]
pub struct Layout {
    pub id: i64,
    pub name: String,
    /// The no-lonely-seat rule for seats picked by hand (on unless turned off).
    #[serde(default = "rule_on")]
    pub no_lonely_seats: bool,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize)]
#[diesel(table_name = seat_categories)]
pub struct SeatCategory {
    pub id: i64,
    pub layout_id: i64,
    pub code: String,
    pub name: String,
    pub price_cents: i32,
    /// The letter rows name it by (None for categories stored before letters: the first
    /// letter of the code, upper case). See [`SeatCategory::letter`].
    #[serde(default)]
    pub letter: Option<String>,
}

fn rule_on() -> bool {
    true
}

impl SeatCategory {
    pub fn letter(&self) -> char {
        self.letter
            .as_deref()
            .or(Some(self.code.as_str()))
            .and_then(|s| s.chars().next())
            .map(|c| c.to_ascii_uppercase())
            .unwrap_or('S')
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize)]
#[diesel(table_name = layout_rows)]
pub struct LayoutRow {
    pub layout_id: i64,
    pub row_label: String,
    pub position: i32,
    pub seat_count: i32,
    pub category_id: i64,
    /// The row's places as in the layout text (`SS_WC`); None for rows stored before:
    /// `seat_count` standard seats of `category_id`.
    #[serde(default)]
    pub seats: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize)]
#[diesel(table_name = theaters)]
pub struct Theater {
    pub id: i64,
    pub external_id: String,
    pub tid: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    pub timezone: String,
    pub layout_id: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize)]
#[diesel(table_name = movies, treat_none_as_null = true)]
pub struct Movie {
    pub id: i64,
    pub external_key: String,
    pub title: String,
    pub duration_minutes: Option<i32>,
    pub poster_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize)]
#[diesel(table_name = shows)]
pub struct Show {
    pub id: i64,
    pub theater_id: i64,
    pub movie_id: i64,
    pub layout_id: i64,
    pub local_date: NaiveDate,
    pub starts_at_local: NaiveDateTime,
    pub starts_at_utc: NaiveDateTime,
    pub in_feed: bool,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = holds)]
pub struct Hold {
    pub id: String,
    pub show_id: i64,
    pub seats: String,
    pub expires_at: NaiveDateTime,
    pub state: String,
    pub idempotency_key: Option<String>,
    pub created_at: NaiveDateTime,
    pub client_addr: Option<String>,
    pub client_session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = bookings)]
pub struct Booking {
    pub code: String,
    pub show_id: i64,
    pub hold_id: String,
    pub name: String,
    pub email: String,
    pub seats: String,
    pub total_cents: i32,
    pub state: String,
    pub created_at: NaiveDateTime,
    pub cancelled_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = booking_seats)]
pub struct BookingSeat {
    pub show_id: i64,
    pub seat: String,
    pub booking_code: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = write_log)]
pub struct WriteLogRow {
    pub lsn: i64,
    pub epoch: i64,
    pub lamport: i64,
    pub origin: i64,
    pub kind: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
}

/// Hold states as stored.
pub mod hold_state {
    pub const ACTIVE: &str = "active";
    pub const CONFIRMED: &str = "confirmed";
    pub const EXPIRED: &str = "expired";
    pub const RELEASED: &str = "released";
}

/// Booking states as stored.
pub mod booking_state {
    pub const CONFIRMED: &str = "confirmed";
    pub const CANCELLED: &str = "cancelled";
}

/// Seats are stored as `C7,C8` in holds and bookings.
pub fn join_seats<S: AsRef<str>>(seats: &[S]) -> String {
    seats.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",")
}

pub fn split_seats(seats: &str) -> Vec<String> {
    seats.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
}
