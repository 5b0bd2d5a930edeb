//! Read queries on the catalog, for the pages.
use super::models::{Movie, Show, Theater};
use super::schema::{movies, shows, theaters};
use super::DbError;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;

/// One show of the day's listing: enough to build the home page.
#[derive(Debug, Clone, Queryable)]
pub struct ListedShow {
    pub show_id: i64,
    pub starts_at_local: NaiveDateTime,
    pub starts_at_utc: NaiveDateTime,
    pub theater_id: i64,
    pub theater_name: String,
    pub theater_timezone: String,
    pub movie_id: i64,
    pub title: String,
    pub duration_minutes: Option<i32>,
    pub poster_url: Option<String>,
}

/// Shows on `date`, optionally in one theater, ordered by time.
pub fn shows_on(conn: &mut MysqlConnection, date: NaiveDate, theater: Option<i64>) -> Result<Vec<ListedShow>, DbError> {
    let mut q = shows::table
        .inner_join(theaters::table)
        .inner_join(movies::table)
        .filter(shows::local_date.eq(date))
        .filter(shows::in_feed.eq(true))
        .select((
            shows::id,
            shows::starts_at_local,
            shows::starts_at_utc,
            theaters::id,
            theaters::name,
            theaters::timezone,
            movies::id,
            movies::title,
            movies::duration_minutes,
            movies::poster_url,
        ))
        .order(shows::starts_at_local.asc())
        .into_boxed();
    if let Some(t) = theater {
        q = q.filter(shows::theater_id.eq(t));
    }
    Ok(q.load(conn)?)
}

/// Dates that have shows, from `from` on.
pub fn show_dates(conn: &mut MysqlConnection, from: NaiveDate) -> Result<Vec<NaiveDate>, DbError> {
    Ok(shows::table
        .filter(shows::local_date.ge(from))
        .filter(shows::in_feed.eq(true))
        .select(shows::local_date)
        .distinct()
        .order(shows::local_date.asc())
        .limit(14)
        .load(conn)?)
}

pub fn all_theaters(conn: &mut MysqlConnection) -> Result<Vec<Theater>, DbError> {
    Ok(theaters::table.order(theaters::name.asc()).select(Theater::as_select()).load(conn)?)
}

pub fn movie(conn: &mut MysqlConnection, id: i64) -> Result<Option<Movie>, DbError> {
    Ok(movies::table.find(id).select(Movie::as_select()).first(conn).optional()?)
}

/// A movie's shows from `from` on, with their theaters.
pub fn movie_shows(
    conn: &mut MysqlConnection,
    movie_id: i64,
    from: NaiveDate,
) -> Result<Vec<(Show, Theater)>, DbError> {
    Ok(shows::table
        .inner_join(theaters::table)
        .filter(shows::movie_id.eq(movie_id))
        .filter(shows::local_date.ge(from))
        .filter(shows::in_feed.eq(true))
        .order((shows::local_date.asc(), theaters::name.asc(), shows::starts_at_local.asc()))
        .select((Show::as_select(), Theater::as_select()))
        .load(conn)?)
}

/// A show with its movie and theater.
pub fn show_details(conn: &mut MysqlConnection, id: i64) -> Result<Option<(Show, Movie, Theater)>, DbError> {
    Ok(shows::table
        .inner_join(movies::table)
        .inner_join(theaters::table)
        .filter(shows::id.eq(id))
        .select((Show::as_select(), Movie::as_select(), Theater::as_select()))
        .first(conn)
        .optional()?)
}
