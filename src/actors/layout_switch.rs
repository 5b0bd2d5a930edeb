//! Whether a show takes its auditorium's new layout: only a show nobody holds or has booked
//! a seat of, and that has not started. Its [`super::show::ShowActor`] decides, in mailbox
//! order with holds, so no hold can fall between this answer and the switch; the rule
//! itself is plain data, tested without an actix System.
use super::seat_map::Occupancy;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a show keeps the layout it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum KeepReason {
    /// It has bookings (and maybe holds): their seats must stay where they are.
    Bookings { bookings: usize, holds: usize },
    /// Seats are held: a customer is choosing or paying for them.
    Holds { holds: usize },
    /// It has started: nobody books it any more.
    Started,
    /// Its seat map could not be asked (it did not load, or this node stopped taking writes).
    Unavailable { message: String },
}

impl KeepReason {
    /// The reason in words, for the answer page.
    pub fn describe(&self) -> String {
        let n = |count: usize, one: &str, many: &str| format!("{count} {}", if count == 1 { one } else { many });
        match self {
            KeepReason::Bookings { bookings, holds: 0 } => n(*bookings, "booking", "bookings"),
            KeepReason::Bookings { bookings, holds } => {
                format!("{} and {}", n(*bookings, "booking", "bookings"), n(*holds, "hold", "holds"))
            }
            KeepReason::Holds { holds } => n(*holds, "hold", "holds"),
            KeepReason::Started => "already started".into(),
            KeepReason::Unavailable { message } => format!("could not be checked: {message}"),
        }
    }
}

/// Whether a show with `occupancy`, starting at `starts_at`, takes a new layout at `now`.
pub fn decide(occupancy: Occupancy, starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), KeepReason> {
    let Occupancy { holds, bookings } = occupancy;
    if bookings > 0 {
        return Err(KeepReason::Bookings { bookings, holds });
    }
    if holds > 0 {
        return Err(KeepReason::Holds { holds });
    }
    if starts_at <= now {
        return Err(KeepReason::Started);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::seat_map::{BookingEntry, Category, HoldStatus, HoldTerms, Layout, SeatMap};
    use crate::domain::{Client, SeatSelection};
    use chrono::Duration;
    use std::sync::Arc;

    fn map() -> SeatMap {
        let cats = vec![Category { code: "standard".into(), name: "Standard".into(), price_cents: 1000 }];
        SeatMap::new(Arc::new(Layout::new(cats, &[("A".into(), 4, 0)])))
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn hold(map: &mut SeatMap, id: &str, seats: &[&str], status: HoldStatus) {
        let idx = map.check_free(&SeatSelection::parse(seats).unwrap()).unwrap();
        let terms = HoldTerms {
            placed_at: now(),
            expires_at: now() + Duration::minutes(8),
            key: None,
            client: Client::default(),
        };
        map.place_hold(id, idx, terms, status);
    }

    fn entry(hold_id: &str, seats: Vec<usize>) -> BookingEntry {
        BookingEntry {
            hold_id: hold_id.into(),
            name: "Ann".into(),
            email: "ann@example.com".into(),
            seats,
            total_cents: 1000,
            cancelled: false,
        }
    }

    #[test]
    fn an_empty_upcoming_show_takes_the_new_layout() {
        assert_eq!(decide(map().occupancy(), now() + Duration::hours(1), now()), Ok(()));
    }

    #[test]
    fn a_hold_in_any_live_state_keeps_the_layout() {
        let later = now() + Duration::hours(1);
        for status in [HoldStatus::Pending, HoldStatus::Active, HoldStatus::Confirming, HoldStatus::Releasing] {
            let mut m = map();
            hold(&mut m, "h1", &["A1"], status.clone());
            assert_eq!(decide(m.occupancy(), later, now()), Err(KeepReason::Holds { holds: 1 }), "{status:?}");
        }
    }

    #[test]
    fn a_hold_that_ended_does_not_count_but_a_booking_does_even_cancelled() {
        let later = now() + Duration::hours(1);
        let mut m = map();
        hold(&mut m, "h1", &["A1"], HoldStatus::Active);
        m.expire_hold("h1");
        m.restore_ended("h0");
        assert_eq!(m.occupancy(), Occupancy { holds: 0, bookings: 0 });
        assert_eq!(decide(m.occupancy(), later, now()), Ok(()));

        hold(&mut m, "h2", &["A2", "A3"], HoldStatus::Active);
        m.begin_confirm("h2", now()).unwrap();
        m.finish_confirm("CODE2345", entry("h2", vec![1, 2]));
        hold(&mut m, "h3", &["A4"], HoldStatus::Active);
        assert_eq!(m.occupancy(), Occupancy { holds: 1, bookings: 1 }, "a booked hold is its booking");
        assert_eq!(decide(m.occupancy(), later, now()), Err(KeepReason::Bookings { bookings: 1, holds: 1 }));

        m.end_hold("h3");
        m.cancel("CODE2345");
        assert_eq!(
            decide(m.occupancy(), later, now()),
            Err(KeepReason::Bookings { bookings: 1, holds: 0 }),
            "a cancelled booking still names its seats"
        );
    }

    #[test]
    fn a_show_that_started_keeps_its_layout() {
        assert_eq!(decide(map().occupancy(), now(), now()), Err(KeepReason::Started));
        assert_eq!(decide(map().occupancy(), now() - Duration::minutes(1), now()), Err(KeepReason::Started));
    }

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(KeepReason::Bookings { bookings: 1, holds: 0 }.describe(), "1 booking");
        assert_eq!(KeepReason::Bookings { bookings: 2, holds: 1 }.describe(), "2 bookings and 1 hold");
        assert_eq!(KeepReason::Holds { holds: 3 }.describe(), "3 holds");
        assert_eq!(KeepReason::Started.describe(), "already started");
    }
}
