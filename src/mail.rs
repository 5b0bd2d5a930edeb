//! Booking emails: what they say (text and HTML, the e-ticket in both), their stable
//! Message-ID, and when a failed one is tried again. Plain data and functions; the
//! [`Mailer`](crate::actors::mailer::Mailer) actor sends them.
use crate::db::models::{split_seats, Booking};
use crate::domain::TicketToken;
use std::time::Duration;

/// Why a message is in the outbox.
pub mod mail_kind {
    pub const CONFIRMED: &str = "confirmed";
    pub const CANCELLED: &str = "cancelled";
}

/// The Message-ID of a booking's email of `kind`: the same on every node and every try, so
/// a message resent after a failover is recognisably the same message.
pub fn message_id(code: &str, kind: &str) -> String {
    format!("<booking-{code}-{kind}@marquee.invalid>")
}

/// The show as an email names it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowFacts {
    pub movie: String,
    pub theater: String,
    /// Local date and time, e.g. "Fri 4 Dec 19:30".
    pub when: String,
}

/// An email's subject and its two bodies.
#[derive(Debug, Clone, PartialEq)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn money(cents: i32) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The email of `kind` for booking `b`; a confirmation carries the e-ticket (`ticket`).
pub fn compose(kind: &str, b: &Booking, show: &ShowFacts, ticket: Option<&TicketToken>) -> Letter {
    let seats = split_seats(&b.seats).join(", ");
    let total = money(b.total_cents);
    let facts = format!(
        "Movie: {}\nWhere: {}\nWhen: {}\nSeats: {seats}\nTotal: {total}\nBooking code: {}\n",
        show.movie, show.theater, show.when, b.code
    );
    let html_facts = format!(
        "<dl><dt>Movie</dt><dd>{}</dd><dt>Where</dt><dd>{}</dd><dt>When</dt><dd>{}</dd><dt>Seats</dt><dd>{}</dd>\
         <dt>Total</dt><dd>{}</dd><dt>Booking code</dt><dd>{}</dd></dl>",
        escape(&show.movie),
        escape(&show.theater),
        escape(&show.when),
        escape(&seats),
        escape(&total),
        escape(&b.code)
    );
    let hello = format!("Hello {},", b.name);
    if kind == mail_kind::CANCELLED {
        return Letter {
            subject: format!("Cancelled: {} ({})", show.movie, b.code),
            text: format!("{hello}\n\nYour booking {} is cancelled; its seats are free again.\n\n{facts}", b.code),
            html: format!(
                "<!doctype html><html><body><p>{}</p><p>Your booking {} is cancelled; its seats are free \
                 again.</p>{html_facts}</body></html>",
                escape(&hello),
                escape(&b.code)
            ),
        };
    }
    let (ticket_text, ticket_html) = match ticket {
        Some(t) => (
            format!("\nYour e-ticket (show it at the door): {t}\n"),
            format!("<h2>Your e-ticket</h2>{}<p><code>{}</code></p>", t.qr_svg(), escape(t.as_str())),
        ),
        None => (String::new(), String::new()),
    };
    Letter {
        subject: format!("Your tickets: {} ({})", show.movie, b.code),
        text: format!("{hello}\n\nYou're booked.\n\n{facts}{ticket_text}\nLook up or cancel it with the code and this email address.\n"),
        html: format!(
            "<!doctype html><html><body><p>{}</p><p>You're booked.</p>{html_facts}{ticket_html}</body></html>",
            escape(&hello)
        ),
    }
}

/// How long to wait after the `failures`-th failed try: 1 s, 2 s, 4 s, ... up to 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BookingCode, TicketKey};

    fn booking() -> Booking {
        Booking {
            code: "ABCD2345".into(),
            show_id: 3,
            hold_id: "3-x".into(),
            name: "Ann <b>".into(),
            email: "ann@example.com".into(),
            seats: "B3,B4".into(),
            total_cents: 2500,
            state: "confirmed".into(),
            created_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap().naive_utc(),
            cancelled_at: None,
        }
    }

    fn show() -> ShowFacts {
        ShowFacts { movie: "Heat".into(), theater: "Roxy".into(), when: "Fri 4 Dec 19:30".into() }
    }

    #[test]
    fn a_booking_has_one_message_id_per_kind_on_every_node() {
        assert_eq!(message_id("ABCD2345", mail_kind::CONFIRMED), message_id("ABCD2345", mail_kind::CONFIRMED));
        assert_ne!(message_id("ABCD2345", mail_kind::CONFIRMED), message_id("ABCD2345", mail_kind::CANCELLED));
        assert_eq!(message_id("ABCD2345", "confirmed"), "<booking-ABCD2345-confirmed@marquee.invalid>");
    }

    #[test]
    fn a_confirmation_carries_the_show_the_seats_the_total_and_the_e_ticket() {
        let t = TicketKey::from_secret("k").sign(&BookingCode::parse("ABCD2345").unwrap());
        let l = compose(mail_kind::CONFIRMED, &booking(), &show(), Some(&t));
        for part in ["Heat", "Roxy", "Fri 4 Dec 19:30", "B3, B4", "$25.00", "ABCD2345"] {
            assert!(l.text.contains(part) && l.html.contains(part), "{part}");
        }
        assert!(l.text.contains(t.as_str()));
        assert!(l.html.contains("<svg") && l.html.contains(t.as_str()));
        assert!(l.html.contains("Ann &lt;b&gt;") && !l.html.contains("Ann <b>"), "the name is escaped");
    }

    #[test]
    fn a_cancellation_says_so_and_carries_no_ticket() {
        let l = compose(mail_kind::CANCELLED, &booking(), &show(), None);
        assert!(l.subject.starts_with("Cancelled"));
        assert!(l.text.contains("is cancelled") && !l.html.contains("<svg"));
    }

    #[test]
    fn retries_back_off_to_five_minutes() {
        let secs: Vec<u64> = (1..=12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(0).as_secs(), 1);
        assert_eq!(backoff(u32::MAX).as_secs(), 300);
    }
}
