use crate::cluster::NodeId;
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
    /// The first entry of a master's epoch (committing it commits everything before it).
    EpochStart,
    /// Who is in the cluster from this entry on.
    Membership(MembershipRecord),
    /// Admin sessions and the admin password.
    Admin(AdminChange),
    /// A booking's ticket was scanned at the door and let in.
    Admission(Admission),
    /// The SMTP server took an outbox message: no master sends it again.
    MailSent(MailSent),
    /// An operator gave a theater's auditorium a new layout.
    Layout(Box<LayoutChanged>),
}

/// An operator's new layout for a theater's auditorium. It is a new layout, with ids of
/// its own, never an edit of the old one: shows that had holds or bookings keep the old
/// layout (their seats must keep existing), and every node's cache of layouts by id stays
/// right. From this entry on, the theater and `shows` (the ones its show actors found with
/// no hold and no booking) use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutChanged {
    pub theater_id: i64,
    pub layout: Layout,
    pub categories: Vec<SeatCategory>,
    pub rows: Vec<LayoutRow>,
    pub shows: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSent {
    pub message_id: String,
}

/// A booking admitted at the door at `at` (UTC); the node it was scanned through is the
/// entry's origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    pub code: String,
    pub show_id: i64,
    pub at: NaiveDateTime,
}

/// What an operator did to the admin area's sessions or password. Sessions are named by
/// the SHA-256 of their secret, never the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminChange {
    SessionOpened {
        session: String,
        expires_at: NaiveDateTime,
        client_addr: Option<String>,
    },
    SessionEnded {
        session: String,
    },
    /// "Log out everywhere": every session open when the entry applies ends.
    AllSessionsEnded,
    /// A new password (its Argon2 hash); every session ends with it.
    PasswordChanged {
        password_hash: String,
    },
}

/// The cluster's membership as the log stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRecord {
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldPlaced {
    pub hold_id: String,
    pub show_id: i64,
    pub seats: Vec<String>,
    pub expires_at: NaiveDateTime,
    pub idempotency_key: Option<String>,
    pub created_at: NaiveDateTime,
    /// Who asked for it (the seat-spinning limits); empty in entries from before.
    #[serde(default)]
    pub client: crate::domain::Client,
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
            Change::EpochStart => "epoch_start",
            Change::Membership(_) => "membership",
            Change::Admin(_) => "admin",
            Change::Admission(_) => "admission",
            Change::MailSent(_) => "mail_sent",
            Change::Layout(_) => "layout_changed",
        }
    }

    /// The show whose seat map this change touches, if any.
    pub fn show_id(&self) -> Option<i64> {
        match self {
            Change::HoldPlaced(c) => Some(c.show_id),
            Change::HoldsEnded(c) => Some(c.show_id),
            Change::BookingConfirmed(c) => Some(c.show_id),
            Change::BookingCancelled(c) => Some(c.show_id),
            // An admission changes no seat.
            Change::Catalog(_)
            | Change::EpochStart
            | Change::Membership(_)
            | Change::Admin(_)
            | Change::Admission(_)
            | Change::MailSent(_)
            | Change::Layout(_) => None,
        }
    }
}

/// Where a write was made: on the node that logs it (a visitor there, an import, an
/// expiry), or on another node that passed it on, at that node's Lamport time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Here,
    Forwarded { node: NodeId, lamport: u64 },
}

impl Origin {
    /// The Lamport time of the write on the node it was made on, if that is another node.
    pub fn remote_time(&self) -> u64 {
        match self {
            Origin::Here => 0,
            Origin::Forwarded { lamport, .. } => *lamport,
        }
    }

    /// The node the write came through, given the node that logs it.
    pub fn node(&self, here: NodeId) -> NodeId {
        match self {
            Origin::Here => here,
            Origin::Forwarded { node, .. } => *node,
        }
    }
}

/// A committed change with its place in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub lsn: i64,
    pub epoch: i64,
    pub lamport: i64,
    /// The node the write came through (0: logged by a node that did not record it).
    #[serde(default)]
    pub origin: NodeId,
    pub created_at: NaiveDateTime,
    pub change: Change,
}

impl LogRecord {
    pub fn to_row(&self) -> Result<WriteLogRow, serde_json::Error> {
        Ok(WriteLogRow {
            lsn: self.lsn,
            epoch: self.epoch,
            lamport: self.lamport,
            origin: self.origin as i64,
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
            origin: row.origin.max(0) as NodeId,
            created_at: row.created_at,
            change: serde_json::from_str(&row.payload)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(origin: NodeId) -> LogRecord {
        LogRecord {
            lsn: 7,
            epoch: 2,
            lamport: 31,
            origin,
            created_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc(),
            change: Change::HoldsEnded(HoldsEnded {
                show_id: 4,
                hold_ids: vec!["4-x".into()],
                state: "expired".into(),
            }),
        }
    }

    #[test]
    fn a_record_keeps_its_origin_through_the_wire_and_the_table() {
        let r = record(3);
        let wire: LogRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(wire, r);
        let row = r.to_row().unwrap();
        assert_eq!(row.origin, 3);
        assert_eq!(LogRecord::from_row(row).unwrap(), r);
    }

    #[test]
    fn a_record_from_a_node_that_does_not_send_origins_reads_as_origin_0() {
        let mut v = serde_json::to_value(record(3)).unwrap();
        v.as_object_mut().unwrap().remove("origin");
        let r: LogRecord = serde_json::from_value(v).unwrap();
        assert_eq!(r, record(0));
    }

    #[test]
    fn an_origin_names_the_node_a_write_came_through_and_its_time_there() {
        assert_eq!(Origin::Here.node(5), 5);
        assert_eq!(Origin::Here.remote_time(), 0);
        let o = Origin::Forwarded { node: 2, lamport: 90 };
        assert_eq!((o.node(5), o.remote_time()), (2, 90));
    }
}
