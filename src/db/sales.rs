//! Sales per show for the admin page: seats sold, held and free, and revenue.
use super::DbError;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Datetime, Varchar};
use serde::Serialize;

/// Shows listed per page.
pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, PartialEq, QueryableByName, Serialize)]
pub struct ShowSales {
    #[diesel(sql_type = BigInt)]
    pub show_id: i64,
    #[diesel(sql_type = Date)]
    pub local_date: NaiveDate,
    #[diesel(sql_type = Datetime)]
    pub starts_at_local: NaiveDateTime,
    #[diesel(sql_type = Datetime)]
    pub starts_at_utc: NaiveDateTime,
    #[diesel(sql_type = Bool)]
    pub in_feed: bool,
    #[diesel(sql_type = Varchar)]
    pub title: String,
    #[diesel(sql_type = Varchar)]
    pub theater_name: String,
    /// The theater's time zone (an IANA name).
    #[diesel(sql_type = Varchar)]
    pub theater_timezone: String,
    /// Seats of the show's layout.
    #[diesel(sql_type = BigInt)]
    pub capacity: i64,
    #[diesel(sql_type = BigInt)]
    pub sold: i64,
    /// Seats in holds that are active and not yet expired.
    #[diesel(sql_type = BigInt)]
    pub held: i64,
    /// Confirmed bookings and what they paid.
    #[diesel(sql_type = BigInt)]
    pub bookings: i64,
    #[diesel(sql_type = BigInt)]
    pub revenue_cents: i64,
}

impl ShowSales {
    pub fn free(&self) -> i64 {
        (self.capacity - self.sold - self.held).max(0)
    }
}

/// Which shows to list.
#[derive(Debug, Clone, Default)]
pub struct SalesFilter {
    /// Every show, not only those with bookings or holds.
    pub all: bool,
    /// Part of the movie title or the theater name.
    pub search: Option<String>,
    /// From 0.
    pub page: i64,
}

/// `%text%` for LIKE, with LIKE's own characters escaped.
fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One page of shows (by start time) with their sales; `now` (UTC) decides which holds
/// still count. Returns up to `PAGE_SIZE` rows and whether more follow.
pub fn show_sales(
    conn: &mut MysqlConnection,
    filter: &SalesFilter,
    now: NaiveDateTime,
) -> Result<(Vec<ShowSales>, bool), DbError> {
    let sql = format!(
        "SELECT s.id AS show_id, s.local_date, s.starts_at_local, s.starts_at_utc, s.in_feed, m.title,
                t.name AS theater_name, t.timezone AS theater_timezone,
                cap.seats AS capacity,
                COALESCE(bs.sold, 0) AS sold,
                COALESCE(h.held, 0) AS held,
                COALESCE(b.bookings, 0) AS bookings,
                COALESCE(b.revenue, 0) AS revenue_cents
         FROM shows s
         JOIN movies m ON m.id = s.movie_id
         JOIN theaters t ON t.id = s.theater_id
         JOIN (SELECT layout_id, CAST(SUM(seat_count) AS SIGNED) AS seats FROM layout_rows GROUP BY layout_id) cap
           ON cap.layout_id = s.layout_id
         LEFT JOIN (SELECT show_id, COUNT(*) AS sold FROM booking_seats GROUP BY show_id) bs ON bs.show_id = s.id
         LEFT JOIN (SELECT show_id, COUNT(*) AS bookings, CAST(SUM(total_cents) AS SIGNED) AS revenue
                    FROM bookings WHERE state = 'confirmed' GROUP BY show_id) b ON b.show_id = s.id
         LEFT JOIN (SELECT show_id,
                           CAST(SUM(LENGTH(seats) - LENGTH(REPLACE(seats, ',', '')) + 1) AS SIGNED) AS held
                    FROM holds WHERE state = 'active' AND expires_at > ? GROUP BY show_id) h ON h.show_id = s.id
         WHERE (? OR bs.show_id IS NOT NULL OR b.show_id IS NOT NULL OR h.show_id IS NOT NULL)
           {}
         ORDER BY s.starts_at_utc, s.id
         LIMIT ? OFFSET ?",
        if filter.search.is_some() { "AND (m.title LIKE ? OR t.name LIKE ?)" } else { "" }
    );
    let query = diesel::sql_query(sql).into_boxed().bind::<Datetime, _>(now).bind::<Bool, _>(filter.all);
    let query = match &filter.search {
        Some(text) => {
            let pattern = like_pattern(text);
            query.bind::<Varchar, _>(pattern.clone()).bind::<Varchar, _>(pattern)
        }
        None => query,
    };
    let mut rows: Vec<ShowSales> =
        query.bind::<BigInt, _>(PAGE_SIZE + 1).bind::<BigInt, _>(filter.page.max(0) * PAGE_SIZE).load(conn)?;
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    Ok((rows, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Dune"), "%Dune%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
