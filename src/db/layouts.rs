//! Auditoriums: each theater's layout as stored, and the shows that use it.
use super::models::{Layout, LayoutRow, SeatCategory, Theater};
use super::orders::load_layout;
use super::schema::{layout_rows, layouts, movies, shows, theaters};
use super::DbError;
use chrono::NaiveDateTime;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use std::collections::HashMap;

/// A theater's auditorium: its layout with categories and rows.
#[derive(Debug, Clone)]
pub struct Auditorium {
    pub theater: Theater,
    pub layout: Layout,
    pub categories: Vec<SeatCategory>,
    pub rows: Vec<LayoutRow>,
}

/// One line of the theaters list.
#[derive(Debug, Clone)]
pub struct ListedAuditorium {
    pub theater: Theater,
    pub layout_name: String,
    pub seats: i64,
    /// Shows not started yet: on the theater's layout, and on an older one (kept for their
    /// holds or bookings when the layout changed).
    pub upcoming_on_current: i64,
    pub upcoming_on_older: i64,
}

/// Every theater, by name, with its auditorium's figures.
pub fn list(conn: &mut MysqlConnection, now: NaiveDateTime) -> Result<Vec<ListedAuditorium>, DbError> {
    let all: Vec<Theater> = theaters::table.order(theaters::name.asc()).select(Theater::as_select()).load(conn)?;
    let names: HashMap<i64, String> =
        layouts::table.select((layouts::id, layouts::name)).load(conn)?.into_iter().collect();
    let current: Vec<i64> = all.iter().map(|t| t.layout_id).collect();
    let mut seats: HashMap<i64, i64> = HashMap::new();
    let counts: Vec<(i64, i32)> = layout_rows::table
        .filter(layout_rows::layout_id.eq_any(&current))
        .select((layout_rows::layout_id, layout_rows::seat_count))
        .load(conn)?;
    for (id, n) in counts {
        *seats.entry(id).or_default() += i64::from(n);
    }
    let upcoming: Vec<(i64, i64)> =
        shows::table.filter(shows::starts_at_utc.gt(now)).select((shows::theater_id, shows::layout_id)).load(conn)?;
    Ok(all
        .into_iter()
        .map(|t| {
            let on = |current: bool| {
                upcoming.iter().filter(|(th, l)| *th == t.id && (*l == t.layout_id) == current).count() as i64
            };
            ListedAuditorium {
                layout_name: names.get(&t.layout_id).cloned().unwrap_or_default(),
                seats: seats.get(&t.layout_id).copied().unwrap_or(0),
                upcoming_on_current: on(true),
                upcoming_on_older: on(false),
                theater: t,
            }
        })
        .collect())
}

/// The auditorium of theater `id`, if there is such a theater.
pub fn auditorium(conn: &mut MysqlConnection, id: i64) -> Result<Option<Auditorium>, DbError> {
    let Some(theater) = theaters::table.find(id).select(Theater::as_select()).first(conn).optional()? else {
        return Ok(None);
    };
    let layout = layouts::table.find(theater.layout_id).select(Layout::as_select()).first(conn).optional()?;
    let layout = layout.unwrap_or(Layout { id: theater.layout_id, name: String::new(), no_lonely_seats: true });
    let (categories, rows) = load_layout(conn, theater.layout_id)?;
    Ok(Some(Auditorium { theater, layout, categories, rows }))
}

/// The id a new layout gets.
pub fn next_layout_id(conn: &mut MysqlConnection) -> Result<i64, DbError> {
    let max: Option<i64> = layouts::table.select(diesel::dsl::max(layouts::id)).first(conn)?;
    Ok(max.unwrap_or(0) + 1)
}

/// Theater `id`'s shows that start after `now` (their ids), and how many have started.
pub fn shows_of(conn: &mut MysqlConnection, id: i64, now: NaiveDateTime) -> Result<(Vec<i64>, i64), DbError> {
    let upcoming = shows::table
        .filter(shows::theater_id.eq(id))
        .filter(shows::starts_at_utc.gt(now))
        .order(shows::starts_at_utc.asc())
        .select(shows::id)
        .load(conn)?;
    let started =
        shows::table.filter(shows::theater_id.eq(id)).filter(shows::starts_at_utc.le(now)).count().get_result(conn)?;
    Ok((upcoming, started))
}

/// A show as the answer to a layout change lists it.
#[derive(Debug, Clone, Queryable)]
pub struct ShowLine {
    pub id: i64,
    pub title: String,
    pub starts_at_utc: NaiveDateTime,
    pub layout_id: i64,
}

/// The shows `ids`, by start time.
pub fn show_lines(conn: &mut MysqlConnection, ids: &[i64]) -> Result<Vec<ShowLine>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(shows::table
        .inner_join(movies::table)
        .filter(shows::id.eq_any(ids))
        .order(shows::starts_at_utc.asc())
        .select((shows::id, movies::title, shows::starts_at_utc, shows::layout_id))
        .load(conn)?)
}
