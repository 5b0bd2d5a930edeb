//! Queries on holds and bookings.
use super::models::{booking_state, hold_state, Booking, Hold, LayoutRow, SeatCategory, Show};
use super::schema::{bookings, holds, layout_rows, layouts, seat_categories, shows};
use super::DbError;
use chrono::NaiveDateTime;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;

/// Everything a show actor needs to rebuild its seat map.
#[derive(Debug)]
pub struct ShowSnapshot {
    pub show: Show,
    pub categories: Vec<SeatCategory>,
    pub rows: Vec<LayoutRow>,
    /// The layout's no-lonely-seat rule.
    pub no_lonely_seats: bool,
    /// Cancelled first, then confirmed, each in creation order.
    pub bookings: Vec<Booking>,
    pub active_holds: Vec<Hold>,
    /// Ids of holds that ended (expired, released, or active past their time).
    pub ended_holds: Vec<String>,
    /// Holds that ended and that the seat-spinning limits still count: placed since
    /// `recent_since`, or expired since then.
    pub recent_holds: Vec<Hold>,
}

pub fn load_show(
    conn: &mut MysqlConnection,
    show_id: i64,
    now: NaiveDateTime,
    recent_since: NaiveDateTime,
) -> Result<Option<ShowSnapshot>, DbError> {
    let Some(show) = shows::table.find(show_id).select(Show::as_select()).first(conn).optional()? else {
        return Ok(None);
    };
    let (categories, rows) = load_layout(conn, show.layout_id)?;
    let no_lonely_seats =
        layouts::table.find(show.layout_id).select(layouts::no_lonely_seats).first(conn).optional()?.unwrap_or(true);
    let mut bookings: Vec<Booking> = bookings::table
        .filter(bookings::show_id.eq(show_id))
        .order(bookings::created_at.asc())
        .select(Booking::as_select())
        .load(conn)?;
    bookings.sort_by_key(|b| b.state != booking_state::CANCELLED);
    let active_holds = holds::table
        .filter(holds::show_id.eq(show_id))
        .filter(holds::state.eq(hold_state::ACTIVE))
        .filter(holds::expires_at.gt(now))
        .select(Hold::as_select())
        .load(conn)?;
    let ended_holds = holds::table
        .filter(holds::show_id.eq(show_id))
        .filter(holds::state.ne(hold_state::CONFIRMED))
        .filter(holds::state.ne(hold_state::ACTIVE).or(holds::expires_at.le(now)))
        .select(holds::id)
        .load(conn)?;
    let recent_holds = holds::table
        .filter(holds::show_id.eq(show_id))
        .filter(holds::state.ne(hold_state::ACTIVE).or(holds::expires_at.le(now)))
        .filter(holds::created_at.gt(recent_since).or(holds::expires_at.gt(recent_since)))
        .filter(holds::client_addr.is_not_null().or(holds::client_session.is_not_null()))
        .select(Hold::as_select())
        .load(conn)?;
    Ok(Some(ShowSnapshot {
        show,
        categories,
        rows,
        no_lonely_seats,
        bookings,
        active_holds,
        ended_holds,
        recent_holds,
    }))
}

pub fn load_layout(conn: &mut MysqlConnection, layout_id: i64) -> Result<(Vec<SeatCategory>, Vec<LayoutRow>), DbError> {
    let categories = seat_categories::table
        .filter(seat_categories::layout_id.eq(layout_id))
        .order(seat_categories::id.asc())
        .select(SeatCategory::as_select())
        .load(conn)?;
    let rows = layout_rows::table
        .filter(layout_rows::layout_id.eq(layout_id))
        .order(layout_rows::position.asc())
        .select(LayoutRow::as_select())
        .load(conn)?;
    Ok((categories, rows))
}

pub fn find_booking(conn: &mut MysqlConnection, code: &str) -> Result<Option<Booking>, DbError> {
    Ok(bookings::table.find(code).select(Booking::as_select()).first(conn).optional()?)
}

pub fn bookings_of_show(conn: &mut MysqlConnection, show_id: i64) -> Result<Vec<Booking>, DbError> {
    Ok(bookings::table
        .filter(bookings::show_id.eq(show_id))
        .order(bookings::created_at.desc())
        .select(Booking::as_select())
        .load(conn)?)
}
