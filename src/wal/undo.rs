//! Undoing a log's unacknowledged suffix: the inverse of [`apply`](super::apply) for the
//! entries another master's log overrides.
//!
//! A node that was master (or followed one) may hold entries after the point where its
//! log and its new master's differ. Those entries were never committed, so no client was
//! told they happened; the node takes them out and applies the master's instead. Undoing
//! them one by one, newest first, costs what they cost to apply, where rebuilding the
//! tables from the log that remains costs the whole log.
//!
//! [`plan`] decides, from the entries alone, whether they can be undone and how; it is
//! plain data, unit-tested without a database. [`undo`] carries the plan out inside the
//! caller's transaction. The writer falls back to a rebuild (or, in a compacted log, to
//! its master's snapshot) when the plan refuses.
//!
//! The inverses rest on what the show actors and the mailer guarantee about one log:
//! a hold is placed once and ends at most once, and only while active; a booking is
//! confirmed once, from an active hold, and cancelled at most once; a message is marked
//! sent at most once. So the state an entry changed is known from the entry: a hold it
//! ended was active, a booking it cancelled was confirmed. Within the suffix the plan checks
//! these itself and refuses a suffix that repeats one; should an entry break them after all
//! (repeat one the kept log holds), the master's entries run into the row its undo left, and
//! the writer takes the slow path from the log instead. Entries whose previous values are
//! not in them (a catalog import, a layout, a password, a logout, an admission, which a
//! door scan may log twice) are not undone: the plan refuses, and the writer takes
//! the slow path.
use super::change::{AdminChange, Change, LogRecord};
use crate::db::models::{booking_state, hold_state, split_seats};
use crate::db::schema::{admin_sessions, booking_seats, bookings, holds, outbox, write_log};
use crate::mail::{mail_kind, message_id};
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use std::collections::HashSet;

/// One inverse step; a plan lists them newest entry first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A placed hold: the row goes.
    DeleteHold { hold_id: String },
    /// Holds an entry ended with `state`: active again (those the entry found active).
    ReviveHolds { hold_ids: Vec<String>, state: String },
    /// A confirmed booking: its seats, its row and its email go; its hold is active again.
    Unconfirm { code: String, hold_id: String, message_id: String },
    /// A cancelled booking: confirmed again, its seats taken again, its email unowed.
    Uncancel { code: String, message_id: String },
    /// A message marked sent: owed again.
    Unsend { message_id: String },
    /// An admin session opened: the row goes (its id is new: a random secret's hash).
    CloseSession { session: String },
}

/// Why a suffix cannot be undone entry by entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {lsn} ({kind}) cannot be undone: {why}")]
pub struct NotUndoable {
    pub lsn: i64,
    pub kind: &'static str,
    pub why: &'static str,
}

/// The steps that undo `suffix` (entries in log order), newest first; or why not.
pub fn plan(suffix: &[LogRecord]) -> Result<Vec<Step>, NotUndoable> {
    let mut steps = Vec::new();
    let mut ended: HashSet<&str> = HashSet::new();
    let mut cancelled: HashSet<&str> = HashSet::new();
    let mut sent: HashSet<&str> = HashSet::new();
    let refuse = |r: &LogRecord, why| NotUndoable { lsn: r.lsn, kind: r.change.kind(), why };
    for r in suffix {
        match &r.change {
            Change::HoldsEnded(e) => {
                for id in &e.hold_ids {
                    if !ended.insert(id) {
                        return Err(refuse(r, "it ends a hold an earlier entry of the suffix ended"));
                    }
                }
            }
            Change::BookingCancelled(c) if !cancelled.insert(&c.code) => {
                return Err(refuse(r, "it cancels a booking an earlier entry of the suffix cancelled"));
            }
            Change::MailSent(m) if !sent.insert(&m.message_id) => {
                return Err(refuse(r, "it marks sent a message an earlier entry of the suffix marked"));
            }
            _ => {}
        }
    }
    for r in suffix.iter().rev() {
        match &r.change {
            Change::HoldPlaced(h) => steps.push(Step::DeleteHold { hold_id: h.hold_id.clone() }),
            Change::HoldsEnded(e) => {
                steps.push(Step::ReviveHolds { hold_ids: e.hold_ids.clone(), state: e.state.clone() })
            }
            Change::BookingConfirmed(b) => steps.push(Step::Unconfirm {
                code: b.code.clone(),
                hold_id: b.hold_id.clone(),
                message_id: message_id(&b.code, mail_kind::CONFIRMED),
            }),
            Change::BookingCancelled(c) => steps
                .push(Step::Uncancel { code: c.code.clone(), message_id: message_id(&c.code, mail_kind::CANCELLED) }),
            Change::MailSent(m) => steps.push(Step::Unsend { message_id: m.message_id.clone() }),
            Change::Admin(AdminChange::SessionOpened { session, .. }) => {
                steps.push(Step::CloseSession { session: session.clone() })
            }
            Change::Admin(AdminChange::SessionEnded { .. }) => {
                return Err(refuse(r, "a logout may end a session that had already ended"))
            }
            Change::Admin(AdminChange::AllSessionsEnded) => {
                return Err(refuse(r, "which sessions it ended is not in the entry"))
            }
            Change::Admin(AdminChange::PasswordChanged { .. }) => {
                return Err(refuse(r, "the password it replaced is not in the entry"))
            }
            Change::Catalog(_) => return Err(refuse(r, "the rows an import replaced are not in the entry")),
            Change::Layout(_) => return Err(refuse(r, "the layout it replaced is not in the entry")),
            Change::Admission(_) => return Err(refuse(r, "a door scan may be logged twice")),
            // The protocol's own entries live in the log alone.
            Change::EpochStart | Change::Membership(_) => {}
        }
    }
    Ok(steps)
}

/// Deletes the log's entries after `after` and carries out `steps`, in the caller's
/// transaction (with foreign-key checks off: a booking's row goes after its seats, and
/// the hold it points at may go in a later step).
pub fn undo(conn: &mut MysqlConnection, after: i64, steps: &[Step]) -> Result<(), DieselError> {
    diesel::delete(write_log::table.filter(write_log::lsn.gt(after))).execute(conn)?;
    for step in steps {
        match step {
            Step::DeleteHold { hold_id } => {
                diesel::delete(holds::table.find(hold_id)).execute(conn)?;
            }
            Step::ReviveHolds { hold_ids, state } => {
                diesel::update(holds::table.filter(holds::id.eq_any(hold_ids)).filter(holds::state.eq(state)))
                    .set(holds::state.eq(hold_state::ACTIVE))
                    .execute(conn)?;
            }
            Step::Unconfirm { code, hold_id, message_id } => {
                diesel::delete(booking_seats::table.filter(booking_seats::booking_code.eq(code))).execute(conn)?;
                diesel::delete(bookings::table.find(code)).execute(conn)?;
                diesel::delete(outbox::table.find(message_id)).execute(conn)?;
                diesel::update(holds::table.find(hold_id).filter(holds::state.eq(hold_state::CONFIRMED)))
                    .set(holds::state.eq(hold_state::ACTIVE))
                    .execute(conn)?;
            }
            Step::Uncancel { code, message_id } => {
                let booking: Option<(i64, String)> = bookings::table
                    .find(code)
                    .filter(bookings::state.eq(booking_state::CANCELLED))
                    .select((bookings::show_id, bookings::seats))
                    .first(conn)
                    .optional()?;
                let Some((show_id, seats)) = booking else { continue };
                diesel::update(bookings::table.find(code))
                    .set((
                        bookings::state.eq(booking_state::CONFIRMED),
                        bookings::cancelled_at.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(conn)?;
                let rows: Vec<_> = split_seats(&seats)
                    .into_iter()
                    .map(|seat| {
                        (
                            booking_seats::show_id.eq(show_id),
                            booking_seats::seat.eq(seat),
                            booking_seats::booking_code.eq(code),
                        )
                    })
                    .collect();
                diesel::insert_into(booking_seats::table).values(&rows).execute(conn)?;
                diesel::delete(outbox::table.find(message_id)).execute(conn)?;
            }
            Step::Unsend { message_id } => {
                diesel::update(outbox::table.find(message_id))
                    .set(outbox::sent_at.eq(None::<chrono::NaiveDateTime>))
                    .execute(conn)?;
            }
            Step::CloseSession { session } => {
                diesel::delete(admin_sessions::table.find(session)).execute(conn)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::change::{BookingCancelled, BookingConfirmed, HoldPlaced, HoldsEnded, MailSent};

    fn at() -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc()
    }

    fn rec(lsn: i64, change: Change) -> LogRecord {
        LogRecord { lsn, epoch: 3, lamport: lsn, origin: 1, created_at: at(), change }
    }

    fn hold(id: &str) -> Change {
        Change::HoldPlaced(HoldPlaced {
            hold_id: id.into(),
            show_id: 7,
            seats: vec!["A1".into(), "A2".into()],
            expires_at: at(),
            idempotency_key: None,
            created_at: at(),
            client: Default::default(),
        })
    }

    fn confirm(code: &str, hold: &str) -> Change {
        Change::BookingConfirmed(BookingConfirmed {
            code: code.into(),
            show_id: 7,
            hold_id: hold.into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            seats: vec!["A1".into(), "A2".into()],
            total_cents: 2400,
            created_at: at(),
        })
    }

    fn end(ids: &[&str]) -> Change {
        Change::HoldsEnded(HoldsEnded {
            show_id: 7,
            hold_ids: ids.iter().map(|s| s.to_string()).collect(),
            state: hold_state::EXPIRED.into(),
        })
    }

    fn cancel(code: &str) -> Change {
        Change::BookingCancelled(BookingCancelled { code: code.into(), show_id: 7, at: at() })
    }

    #[test]
    fn a_sale_is_undone_newest_first() {
        let suffix = vec![
            rec(10, Change::EpochStart),
            rec(11, hold("h1")),
            rec(12, confirm("ABC", "h1")),
            rec(13, hold("h2")),
            rec(14, end(&["h2"])),
            rec(15, cancel("OLD")),
        ];
        let steps = plan(&suffix).unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Uncancel { code: "OLD".into(), message_id: message_id("OLD", mail_kind::CANCELLED) },
                Step::ReviveHolds { hold_ids: vec!["h2".into()], state: hold_state::EXPIRED.into() },
                Step::DeleteHold { hold_id: "h2".into() },
                Step::Unconfirm {
                    code: "ABC".into(),
                    hold_id: "h1".into(),
                    message_id: message_id("ABC", mail_kind::CONFIRMED)
                },
                Step::DeleteHold { hold_id: "h1".into() },
            ]
        );
    }

    #[test]
    fn an_empty_suffix_or_protocol_entries_alone_need_no_step() {
        assert_eq!(plan(&[]).unwrap(), vec![]);
        assert_eq!(plan(&[rec(4, Change::EpochStart)]).unwrap(), vec![]);
    }

    #[test]
    fn entries_whose_previous_values_are_not_in_them_are_refused() {
        let catalog = Change::Catalog(Box::default());
        let err = plan(&[rec(5, hold("h1")), rec(6, catalog)]).unwrap_err();
        assert_eq!((err.lsn, err.kind), (6, "catalog"));
        let pw = Change::Admin(AdminChange::PasswordChanged { password_hash: "x".into() });
        assert_eq!(plan(&[rec(8, pw)]).unwrap_err().lsn, 8);
        assert_eq!(plan(&[rec(9, Change::Admin(AdminChange::AllSessionsEnded))]).unwrap_err().lsn, 9);
    }

    #[test]
    fn a_suffix_that_repeats_an_end_a_cancel_or_a_sent_mark_is_refused() {
        assert_eq!(plan(&[rec(5, end(&["h1", "h2"])), rec(6, end(&["h2"]))]).unwrap_err().lsn, 6);
        assert_eq!(plan(&[rec(5, cancel("A")), rec(7, cancel("A"))]).unwrap_err().lsn, 7);
        let sent = || Change::MailSent(MailSent { message_id: "m1".into() });
        assert_eq!(plan(&[rec(5, sent()), rec(6, sent())]).unwrap_err().lsn, 6);
        // Different holds, bookings and messages are fine.
        let mail = Change::MailSent(MailSent { message_id: "m2".into() });
        assert!(plan(&[rec(5, end(&["h1"])), rec(6, end(&["h2"])), rec(7, cancel("A")), rec(8, mail)]).is_ok());
    }

    #[test]
    fn an_admin_session_opened_is_undone_one_ended_is_refused() {
        let open =
            Change::Admin(AdminChange::SessionOpened { session: "s".into(), expires_at: at(), client_addr: None });
        assert_eq!(plan(&[rec(1, open)]).unwrap(), vec![Step::CloseSession { session: "s".into() }]);
        let close = Change::Admin(AdminChange::SessionEnded { session: "t".into() });
        assert_eq!(plan(&[rec(2, close)]).unwrap_err().lsn, 2);
    }
}
