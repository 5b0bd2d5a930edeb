//! Writes a log record and its effect. The master and the followers share this code, so a
//! replica is the same rows as the master. Callers wrap it in a transaction.
use super::change::{AdminChange, BookingCancelled, CatalogChange, Change, HoldsEnded, LayoutChanged, LogRecord};
use super::sql_text::{SqlText, Values};
use crate::db::models::{booking_state, hold_state, join_seats, Booking, BookingSeat, Hold, WriteLogRow};
use crate::db::schema::{
    admin_credentials, admin_sessions, admissions, booking_seats, bookings, holds, layout_rows, layouts, movies,
    outbox, seat_categories, shows, theaters, write_log,
};
use crate::mail::{mail_kind, message_id};
use diesel::connection::SimpleConnection;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

/// Applies many records with few statements: rows of the same kind go in one multi-row
/// INSERT or one UPDATE, and all of them in one SQL text (one round trip, see
/// [`sql_text`](super::sql_text)). Catalog changes and cancels are applied one by one, in log
/// order, as boundaries between runs of bulk rows, so the order of effects is kept.
pub fn apply_batch(conn: &mut MysqlConnection, records: &[LogRecord]) -> Result<(), DieselError> {
    let mut bulk = Bulk::default();
    for rec in records {
        let row = rec.to_row().map_err(|e| DieselError::SerializationError(Box::new(e)))?;
        if row.payload.len() > MAX_TEXT_PAYLOAD {
            // A big catalog: bound, not spelled out in hex.
            diesel::insert_into(write_log::table).values(&row).execute(conn)?;
        } else {
            bulk.log.push(row);
        }
        match &rec.change {
            Change::HoldPlaced(h) => bulk.holds.push(Hold {
                id: h.hold_id.clone(),
                show_id: h.show_id,
                seats: join_seats(&h.seats),
                expires_at: h.expires_at,
                state: hold_state::ACTIVE.to_string(),
                idempotency_key: h.idempotency_key.clone(),
                created_at: h.created_at,
                client_addr: h.client.addr.clone(),
                client_session: h.client.session.clone(),
            }),
            Change::HoldsEnded(e) => bulk.ended.push(e.clone()),
            Change::BookingConfirmed(b) => {
                bulk.seats.extend(b.seats.iter().map(|s| BookingSeat {
                    show_id: b.show_id,
                    seat: s.clone(),
                    booking_code: b.code.clone(),
                }));
                bulk.confirmed_holds.push(b.hold_id.clone());
                bulk.mail.push((message_id(&b.code, mail_kind::CONFIRMED), b.code.clone(), b.created_at));
                bulk.bookings.push(Booking {
                    code: b.code.clone(),
                    show_id: b.show_id,
                    hold_id: b.hold_id.clone(),
                    name: b.name.clone(),
                    email: b.email.clone(),
                    seats: join_seats(&b.seats),
                    total_cents: b.total_cents,
                    state: booking_state::CONFIRMED.to_string(),
                    created_at: b.created_at,
                    cancelled_at: None,
                });
            }
            Change::BookingCancelled(c) => {
                bulk.flush(conn)?;
                apply_cancel(conn, c)?;
            }
            Change::Catalog(c) => {
                bulk.flush(conn)?;
                apply_catalog(conn, c)?;
            }
            Change::Layout(l) => {
                bulk.flush(conn)?;
                apply_layout(conn, l)?;
            }
            Change::Admin(a) => {
                bulk.flush(conn)?;
                apply_admin(conn, a, rec.created_at)?;
            }
            Change::MailSent(m) => {
                bulk.flush(conn)?;
                diesel::update(outbox::table.find(&m.message_id).filter(outbox::sent_at.is_null()))
                    .set(outbox::sent_at.eq(Some(rec.created_at)))
                    .execute(conn)?;
            }
            Change::Admission(a) => {
                bulk.flush(conn)?;
                // The first admission of a booking stands; a later one (a retry whose
                // first attempt committed after all) changes nothing.
                diesel::insert_or_ignore_into(admissions::table)
                    .values((
                        admissions::booking_code.eq(&a.code),
                        admissions::show_id.eq(a.show_id),
                        admissions::admitted_at.eq(a.at),
                        admissions::node.eq(rec.origin as i64),
                    ))
                    .execute(conn)?;
            }
            // The protocol's own entries live in the log alone.
            Change::EpochStart | Change::Membership(_) => {}
        }
    }
    bulk.flush(conn)
}

/// Log payloads longer than this are inserted as bound parameters instead of SQL text.
const MAX_TEXT_PAYLOAD: usize = 256 * 1024;

#[derive(Default)]
struct Bulk {
    log: Vec<WriteLogRow>,
    holds: Vec<Hold>,
    bookings: Vec<Booking>,
    seats: Vec<BookingSeat>,
    confirmed_holds: Vec<String>,
    ended: Vec<HoldsEnded>,
    /// Confirmation emails owed: message id, booking code, time.
    mail: Vec<(String, String, chrono::NaiveDateTime)>,
}

impl Bulk {
    fn flush(&mut self, conn: &mut MysqlConnection) -> Result<(), DieselError> {
        let mut sql = SqlText::default();
        sql.insert(
            "INSERT INTO write_log (lsn, epoch, lamport, origin, kind, payload, created_at) VALUES",
            &self.log,
            |v, r| {
                v.int(r.lsn).int(r.epoch).int(r.lamport).int(r.origin).str(&r.kind).str(&r.payload).time(r.created_at);
            },
        );
        sql.insert(
            "INSERT INTO holds (id, show_id, seats, expires_at, state, idempotency_key, created_at, client_addr, \
             client_session) VALUES",
            &self.holds,
            |v, h| {
                v.str(&h.id).int(h.show_id).str(&h.seats).time(h.expires_at).str(&h.state);
                v.opt_str(h.idempotency_key.as_deref()).time(h.created_at);
                v.opt_str(h.client_addr.as_deref()).opt_str(h.client_session.as_deref());
            },
        );
        sql.insert(
            "INSERT INTO bookings (code, show_id, hold_id, name, email, seats, total_cents, state, created_at, \
             cancelled_at) VALUES",
            &self.bookings,
            |v, b| {
                v.str(&b.code).int(b.show_id).str(&b.hold_id).str(&b.name).str(&b.email).str(&b.seats);
                v.int(b.total_cents.into()).str(&b.state).time(b.created_at).opt_time(b.cancelled_at);
            },
        );
        sql.insert(
            "INSERT IGNORE INTO outbox (message_id, booking_code, kind, created_at) VALUES",
            &self.mail,
            |v, m| {
                v.str(&m.0).str(&m.1).str(mail_kind::CONFIRMED).time(m.2);
            },
        );
        sql.insert("INSERT INTO booking_seats (show_id, seat, booking_code) VALUES", &self.seats, |v, s| {
            v.int(s.show_id).str(&s.seat).str(&s.booking_code);
        });
        sql.set_where_id_in("holds", "state", hold_state::CONFIRMED, &self.confirmed_holds, None);
        for ended in &self.ended {
            sql.set_where_id_in("holds", "state", &ended.state, &ended.hold_ids, Some(hold_state::ACTIVE));
        }
        *self = Bulk::default();
        if sql.is_empty() {
            return Ok(());
        }
        conn.batch_execute(sql.as_str())
    }
}

/// An admin session opened or ended, or the password changed (at `at`, the entry's time).
fn apply_admin(conn: &mut MysqlConnection, change: &AdminChange, at: chrono::NaiveDateTime) -> Result<(), DieselError> {
    let end_all = |conn: &mut MysqlConnection| {
        diesel::update(admin_sessions::table.filter(admin_sessions::ended_at.is_null()))
            .set(admin_sessions::ended_at.eq(Some(at)))
            .execute(conn)
    };
    match change {
        AdminChange::SessionOpened { session, expires_at, client_addr } => {
            diesel::replace_into(admin_sessions::table)
                .values((
                    admin_sessions::id.eq(session),
                    admin_sessions::created_at.eq(at),
                    admin_sessions::expires_at.eq(expires_at),
                    admin_sessions::ended_at.eq(None::<chrono::NaiveDateTime>),
                    admin_sessions::client_addr.eq(client_addr),
                ))
                .execute(conn)?;
        }
        AdminChange::SessionEnded { session } => {
            diesel::update(admin_sessions::table.find(session).filter(admin_sessions::ended_at.is_null()))
                .set(admin_sessions::ended_at.eq(Some(at)))
                .execute(conn)?;
        }
        AdminChange::AllSessionsEnded => {
            end_all(conn)?;
        }
        AdminChange::PasswordChanged { password_hash } => {
            diesel::replace_into(admin_credentials::table)
                .values((
                    admin_credentials::id.eq(1i8),
                    admin_credentials::password_hash.eq(password_hash),
                    admin_credentials::changed_at.eq(at),
                ))
                .execute(conn)?;
            end_all(conn)?;
        }
    }
    Ok(())
}

fn apply_cancel(conn: &mut MysqlConnection, c: &BookingCancelled) -> Result<(), DieselError> {
    diesel::update(bookings::table.find(&c.code))
        .set((bookings::state.eq(booking_state::CANCELLED), bookings::cancelled_at.eq(Some(c.at))))
        .execute(conn)?;
    diesel::delete(booking_seats::table.filter(booking_seats::booking_code.eq(&c.code))).execute(conn)?;
    // The cancellation's own email, owed once (a repeated cancel changes nothing).
    let booked: i64 = bookings::table.find(&c.code).count().get_result(conn)?;
    if booked > 0 {
        diesel::insert_or_ignore_into(outbox::table)
            .values((
                outbox::message_id.eq(message_id(&c.code, mail_kind::CANCELLED)),
                outbox::booking_code.eq(&c.code),
                outbox::kind.eq(mail_kind::CANCELLED),
                outbox::created_at.eq(c.at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// A catalog change in a few multi-row statements (an import of the bundled data set is
/// about 5,000 rows: written one by one, with a prepare, an execute and a close each, it
/// took a second in a release build and several in a debug build on a busy machine, long
/// enough for `STORAGE_STALL_MS` to read the master's storage as stalled). Each table's
/// upsert sets what the row-by-row version's changeset set: every column but the key, and
/// a NULL letter or seat string leaves the stored one (diesel skips a `None` there;
/// movies store theirs as given).
fn apply_catalog(conn: &mut MysqlConnection, c: &CatalogChange) -> Result<(), DieselError> {
    let mut text = Chunked { conn, sql: SqlText::default() };
    text.upsert("REPLACE INTO layouts (id, name, no_lonely_seats) VALUES", &c.layouts, "", |v, l| {
        v.int(l.id).str(&l.name).bool(l.no_lonely_seats);
    })?;
    text.upsert(
        "INSERT INTO seat_categories (id, layout_id, code, name, price_cents, letter) VALUES",
        &c.categories,
        "layout_id = VALUES(layout_id), code = VALUES(code), name = VALUES(name), \
         price_cents = VALUES(price_cents), letter = COALESCE(VALUES(letter), letter)",
        |v, c| {
            v.int(c.id).int(c.layout_id).str(&c.code).str(&c.name).int(c.price_cents.into());
            v.opt_str(c.letter.as_deref());
        },
    )?;
    text.upsert(
        "INSERT INTO layout_rows (layout_id, row_label, position, seat_count, category_id, seats) VALUES",
        &c.rows,
        "position = VALUES(position), seat_count = VALUES(seat_count), category_id = VALUES(category_id), \
         seats = COALESCE(VALUES(seats), seats)",
        |v, r| {
            v.int(r.layout_id).str(&r.row_label).int(r.position.into()).int(r.seat_count.into());
            v.int(r.category_id).opt_str(r.seats.as_deref());
        },
    )?;
    text.upsert(
        "INSERT INTO theaters (id, external_id, tid, name, latitude, longitude, timezone, layout_id) VALUES",
        &c.theaters,
        "external_id = VALUES(external_id), tid = VALUES(tid), name = VALUES(name), \
         latitude = VALUES(latitude), longitude = VALUES(longitude), timezone = VALUES(timezone), \
         layout_id = VALUES(layout_id)",
        |v, t| {
            v.int(t.id).str(&t.external_id).str(&t.tid).str(&t.name).float(t.latitude).float(t.longitude);
            v.str(&t.timezone).int(t.layout_id);
        },
    )?;
    text.upsert(
        "INSERT INTO movies (id, external_key, title, duration_minutes, poster_url) VALUES",
        &c.movies,
        "external_key = VALUES(external_key), title = VALUES(title), \
         duration_minutes = VALUES(duration_minutes), poster_url = VALUES(poster_url)",
        |v, m| {
            v.int(m.id).str(&m.external_key).str(&m.title);
            match m.duration_minutes {
                Some(d) => v.int(d.into()),
                None => v.null(),
            };
            v.opt_str(m.poster_url.as_deref());
        },
    )?;
    text.upsert(
        "INSERT INTO shows (id, theater_id, movie_id, layout_id, local_date, starts_at_local, starts_at_utc, \
         in_feed) VALUES",
        &c.shows,
        "theater_id = VALUES(theater_id), movie_id = VALUES(movie_id), layout_id = VALUES(layout_id), \
         local_date = VALUES(local_date), starts_at_local = VALUES(starts_at_local), \
         starts_at_utc = VALUES(starts_at_utc), in_feed = VALUES(in_feed)",
        |v, s| {
            v.int(s.id).int(s.theater_id).int(s.movie_id).int(s.layout_id).date(s.local_date);
            v.time(s.starts_at_local).time(s.starts_at_utc).bool(s.in_feed);
        },
    )?;
    let conn = text.finish()?;
    if !c.shows_out_of_feed.is_empty() {
        diesel::update(shows::table.filter(shows::id.eq_any(&c.shows_out_of_feed)))
            .set(shows::in_feed.eq(false))
            .execute(conn)?;
    }
    if !c.shows_deleted.is_empty() {
        diesel::delete(holds::table.filter(holds::show_id.eq_any(&c.shows_deleted))).execute(conn)?;
        diesel::delete(shows::table.filter(shows::id.eq_any(&c.shows_deleted))).execute(conn)?;
    }
    Ok(())
}

/// A catalog change's statements as SQL text, sent in parts as the text grows.
struct Chunked<'c> {
    conn: &'c mut MysqlConnection,
    sql: SqlText,
}

impl<'c> Chunked<'c> {
    /// `rows`, [`CATALOG_ROWS`] to a statement (see [`SqlText::upsert`]).
    fn upsert<R>(
        &mut self,
        head: &'static str,
        rows: &[R],
        update: &'static str,
        mut row: impl FnMut(&mut Values<'_>, &R),
    ) -> Result<(), DieselError> {
        for chunk in rows.chunks(CATALOG_ROWS) {
            self.sql.upsert(head, chunk, update, &mut row);
            if self.sql.len() >= CATALOG_TEXT {
                self.conn.batch_execute(&self.sql.take())?;
            }
        }
        Ok(())
    }

    /// Sends what is left; the connection is the caller's again.
    fn finish(mut self) -> Result<&'c mut MysqlConnection, DieselError> {
        if !self.sql.is_empty() {
            self.conn.batch_execute(&self.sql.take())?;
        }
        Ok(self.conn)
    }
}

/// A catalog change's rows go this many to a statement...
const CATALOG_ROWS: usize = 500;
/// ...and its statements are sent once their text reaches this many bytes (well under
/// MariaDB's `max_allowed_packet`, 16 MiB by default).
const CATALOG_TEXT: usize = 1 << 20;

/// A theater's new layout: inserted (not upserted: its ids are new, and a clash must fail
/// the write rather than overwrite a layout shows use), then the theater and the shows
/// named point at it.
fn apply_layout(conn: &mut MysqlConnection, c: &LayoutChanged) -> Result<(), DieselError> {
    diesel::insert_into(layouts::table).values(&c.layout).execute(conn)?;
    diesel::insert_into(seat_categories::table).values(&c.categories).execute(conn)?;
    diesel::insert_into(layout_rows::table).values(&c.rows).execute(conn)?;
    diesel::update(theaters::table.find(c.theater_id)).set(theaters::layout_id.eq(c.layout.id)).execute(conn)?;
    if !c.shows.is_empty() {
        diesel::update(shows::table.filter(shows::id.eq_any(&c.shows)).filter(shows::theater_id.eq(c.theater_id)))
            .set(shows::layout_id.eq(c.layout.id))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes every replicated row, before a node rebuilds itself from the master's log.
pub fn wipe(conn: &mut MysqlConnection) -> Result<(), DieselError> {
    diesel::delete(booking_seats::table).execute(conn)?;
    diesel::delete(bookings::table).execute(conn)?;
    diesel::delete(holds::table).execute(conn)?;
    diesel::delete(shows::table).execute(conn)?;
    diesel::delete(movies::table).execute(conn)?;
    diesel::delete(theaters::table).execute(conn)?;
    diesel::delete(layout_rows::table).execute(conn)?;
    diesel::delete(seat_categories::table).execute(conn)?;
    diesel::delete(layouts::table).execute(conn)?;
    diesel::delete(write_log::table).execute(conn)?;
    diesel::delete(admin_sessions::table).execute(conn)?;
    diesel::delete(admin_credentials::table).execute(conn)?;
    diesel::delete(admissions::table).execute(conn)?;
    diesel::delete(outbox::table).execute(conn)?;
    Ok(())
}
