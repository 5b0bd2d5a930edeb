//! Writes a log record and its effect. The master and the followers share this code, so a
//! replica is the same rows as the master. [`store_batch`] is a transaction of its own;
//! the callers of [`apply_batch`] wrap it in one.
use super::change::{AdminChange, BookingCancelled, CatalogChange, Change, HoldsEnded, LayoutChanged, LogRecord};
use super::sql_text::{SqlText, Values};
use crate::db::models::{booking_state, hold_state, join_seats, Booking, BookingSeat, Hold, WriteLogRow};
use crate::db::schema::{
    admin_credentials, admin_sessions, admissions, booking_seats, bookings, holds, layout_rows, layouts, movies,
    outbox, seat_categories, shows, theaters, write_log,
};
use crate::db::{FOREIGN_KEYS_OFF, FOREIGN_KEYS_ON};
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
        let rest = bulk.take(rec)?;
        if let Some(row) = rest.log_row {
            // A big catalog: bound, not spelled out in hex.
            diesel::insert_into(write_log::table).values(&row).execute(conn)?;
        }
        if rest.change {
            bulk.flush(conn)?;
            apply_own(conn, rec)?;
        }
    }
    bulk.flush(conn)
}

/// Whether a batch's session checks foreign keys: a master's own writes do; a follower's
/// copies of them, written in the master's order, do not (see
/// [`without_foreign_keys`](crate::db::without_foreign_keys)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignKeys {
    Checked,
    Unchecked,
}

/// Stores `records` in a transaction of their own. A batch of holds, confirmations and
/// ends (every write of a sale) is one SQL text that starts the transaction, writes the
/// rows and commits: one round trip where a BEGIN, the rows and a COMMIT took three, each
/// a wake-up of the server's thread on a busy machine (a third of a 32-client sale's
/// commit time). Anything else goes through [`apply_batch`] in a transaction. On an error
/// nothing is stored: the server stops at the failing statement, and the transaction it
/// left open is rolled back.
pub fn store_batch(conn: &mut MysqlConnection, records: &[LogRecord], keys: ForeignKeys) -> Result<(), DieselError> {
    let mut bulk = Bulk::default();
    for rec in records {
        if !bulk.take(rec)?.is_empty() {
            return match keys {
                ForeignKeys::Checked => conn.transaction(|c| apply_batch(c, records)),
                ForeignKeys::Unchecked => {
                    crate::db::without_foreign_keys(conn, |c| c.transaction(|c| apply_batch(c, records)))
                }
            };
        }
    }
    let unchecked = keys == ForeignKeys::Unchecked;
    let mut sql = SqlText::default();
    if unchecked {
        sql.statement(FOREIGN_KEYS_OFF);
    }
    sql.statement("START TRANSACTION");
    bulk.write(&mut sql);
    sql.statement("COMMIT");
    if unchecked {
        sql.statement(FOREIGN_KEYS_ON);
    }
    conn.batch_execute(sql.as_str()).inspect_err(|_| {
        let mut undo = SqlText::default();
        undo.statement("ROLLBACK");
        if unchecked {
            undo.statement(FOREIGN_KEYS_ON);
        }
        if let Err(e) = conn.batch_execute(undo.as_str()) {
            log::warn!("cannot roll back a failed batch: {e}");
        }
    })
}

/// The statements of one entry's effect that the batch's shared ones cannot carry.
fn apply_own(conn: &mut MysqlConnection, rec: &LogRecord) -> Result<(), DieselError> {
    match &rec.change {
        Change::BookingCancelled(c) => apply_cancel(conn, c)?,
        Change::Catalog(c) => apply_catalog(conn, c)?,
        Change::Layout(l) => apply_layout(conn, l)?,
        Change::Admin(a) => apply_admin(conn, a, rec.created_at)?,
        Change::MailSent(m) => {
            diesel::update(outbox::table.find(&m.message_id).filter(outbox::sent_at.is_null()))
                .set(outbox::sent_at.eq(Some(rec.created_at)))
                .execute(conn)?;
        }
        Change::Admission(a) => {
            // The first admission of a booking stands; a later one (a retry whose first
            // attempt committed after all) changes nothing.
            diesel::insert_or_ignore_into(admissions::table)
                .values((
                    admissions::booking_code.eq(&a.code),
                    admissions::show_id.eq(a.show_id),
                    admissions::admitted_at.eq(a.at),
                    admissions::node.eq(rec.origin as i64),
                ))
                .execute(conn)?;
        }
        // Carried by the shared statements (the protocol's entries by their log row alone).
        Change::HoldPlaced(_)
        | Change::HoldsEnded(_)
        | Change::BookingConfirmed(_)
        | Change::EpochStart
        | Change::Membership(_) => {}
    }
    Ok(())
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

/// What of an entry [`Bulk::take`] left to write on its own.
struct Rest {
    /// Its log row, when its payload is too long for SQL text.
    log_row: Option<WriteLogRow>,
    /// Whether its effect needs statements of its own ([`apply_own`]).
    change: bool,
}

impl Rest {
    fn is_empty(&self) -> bool {
        self.log_row.is_none() && !self.change
    }
}

impl Bulk {
    /// Takes what of `rec` the batch's shared statements carry: its log row (unless the
    /// payload is long) and the rows of a hold, a confirmation or an end of holds.
    fn take(&mut self, rec: &LogRecord) -> Result<Rest, DieselError> {
        let row = rec.to_row().map_err(|e| DieselError::SerializationError(Box::new(e)))?;
        let log_row = if row.payload.len() > MAX_TEXT_PAYLOAD {
            Some(row)
        } else {
            self.log.push(row);
            None
        };
        let mut change = false;
        match &rec.change {
            Change::HoldPlaced(h) => self.holds.push(Hold {
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
            Change::HoldsEnded(e) => self.ended.push(e.clone()),
            Change::BookingConfirmed(b) => {
                self.seats.extend(b.seats.iter().map(|s| BookingSeat {
                    show_id: b.show_id,
                    seat: s.clone(),
                    booking_code: b.code.clone(),
                }));
                self.confirmed_holds.push(b.hold_id.clone());
                self.mail.push((message_id(&b.code, mail_kind::CONFIRMED), b.code.clone(), b.created_at));
                self.bookings.push(Booking {
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
            // The protocol's own entries live in the log alone.
            Change::EpochStart | Change::Membership(_) => {}
            Change::BookingCancelled(_)
            | Change::Catalog(_)
            | Change::Layout(_)
            | Change::Admin(_)
            | Change::MailSent(_)
            | Change::Admission(_) => change = true,
        }
        Ok(Rest { log_row, change })
    }

    /// Sends the rows taken so far (in one round trip), and starts again.
    fn flush(&mut self, conn: &mut MysqlConnection) -> Result<(), DieselError> {
        let mut sql = SqlText::default();
        self.write(&mut sql);
        if sql.is_empty() {
            return Ok(());
        }
        conn.batch_execute(sql.as_str())
    }

    /// Writes the rows taken so far as statements, and starts again.
    fn write(&mut self, sql: &mut SqlText) {
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
