//! The e-ticket: the confirmation page and the booking look-up show the show, the seats,
//! the total and a QR code of a token signed with TICKET_KEY.
mod common;

use chrono::Duration;
use common::browser::Browser;
use common::{spawn_app_with, TestApp};
use marquee::config::Secret;
use marquee::domain::{BookingCode, TicketKey};

const KEY: &str = "the door's ticket key";

async fn app() -> TestApp {
    spawn_app_with(|s| s.ticket_key = Some(Secret::new(KEY))).await
}

fn between<'s>(html: &'s str, start: &str, end: &str) -> &'s str {
    let a = html.find(start).unwrap_or_else(|| panic!("'{start}' not in page")) + start.len();
    let b = html[a..].find(end).unwrap() + a;
    &html[a..b]
}

/// Holds `seats` and confirms them through the pages; returns the confirmation page.
async fn book(b: &mut Browser, show: i64, seats: &[&str], email: &str) -> common::browser::Page {
    b.get(&format!("/shows/{show}")).await;
    let form: Vec<(&str, &str)> = seats.iter().map(|s| ("seat", *s)).collect();
    let held = b.post(&format!("/shows/{show}/hold"), &form).await;
    assert_eq!(held.status, 303, "{}", held.body);
    let hold = held.location.unwrap();
    b.get(&hold).await;
    b.post(&format!("{hold}/confirm"), &[("name", "Ann"), ("email", email)]).await
}

#[actix_web::test]
async fn the_confirmation_page_shows_an_e_ticket_with_a_signed_qr_code() {
    let app = app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let mut b = Browser::new(&app.address);
    let done = book(&mut b, show, &["B3", "B4"], "ann@example.com").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let code = between(&done.body, "data-booking-code=\"", "\"").to_string();

    let ticket = between(&done.body, "<section class=\"e-ticket\"", "</section>");
    let token = between(ticket, "data-ticket=\"", "\"");
    // The token is the booking code signed with the configured key, so the door can check
    // it with nothing but the key.
    let key = TicketKey::from_secret(KEY);
    assert_eq!(key.verify(token), Ok(BookingCode::parse(&code).unwrap()));
    assert_eq!(TicketKey::from_secret("another key").verify(token).ok(), None);
    // The QR code is that token, inline (the page's CSP allows no outside images).
    assert!(ticket.contains(&key.sign(&BookingCode::parse(&code).unwrap()).qr_svg()), "the QR code of the token");
    assert!(ticket.contains("B3, B4"), "the seats");
    let total = between(&done.body, "<dt>Total</dt><dd>", "</dd>");
    assert!(total.starts_with('$'), "{total}");
    assert!(ticket.contains(&format!("<dt>Total</dt><dd>{total}</dd>")), "the total");
    assert!(ticket.contains("Test Movie"), "the show");
}

#[actix_web::test]
async fn the_booking_look_up_shows_the_e_ticket_until_it_is_cancelled() {
    let app = app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let mut b = Browser::new(&app.address);
    let done = book(&mut b, show, &["A1"], "bea@example.com").await;
    let code = between(&done.body, "data-booking-code=\"", "\"").to_string();
    let confirmed_token = between(&done.body, "data-ticket=\"", "\"").to_string();

    b.get("/bookings").await;
    let found = b.post("/bookings/lookup", &[("code", &code), ("email", "bea@example.com")]).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(between(&found.body, "data-ticket=\"", "\""), confirmed_token, "the same ticket");
    assert!(found.body.contains("<svg"));

    let cancelled = b.post(&format!("/bookings/{code}/cancel"), &[("email", "bea@example.com")]).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert!(!cancelled.body.contains("data-ticket="), "a cancelled booking has no e-ticket");
    let again = b.post("/bookings/lookup", &[("code", &code), ("email", "bea@example.com")]).await;
    assert_eq!(again.status, 200);
    assert!(!again.body.contains("data-ticket=") && !again.body.contains("<svg"));
}

/// The JSON API gives the same signed token: on confirming and on looking up, none once
/// the booking is cancelled.
#[actix_web::test]
async fn the_api_answers_carry_the_e_ticket_token() {
    let app = app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["C5"]).await;
    let (status, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Cy", "cy@example.com").await;
    assert_eq!(status, 201, "{booking}");
    let code = booking["code"].as_str().unwrap();
    let token = booking["ticket"].as_str().expect("a ticket");
    assert_eq!(TicketKey::from_secret(KEY).verify(token), Ok(BookingCode::parse(code).unwrap()));
    let (status, found) = app.get_json(&format!("/api/bookings/{code}?email=cy@example.com")).await;
    assert_eq!(status, 200);
    assert_eq!(found["ticket"].as_str(), Some(token));
    let (status, _) =
        app.post_json(&format!("/api/bookings/{code}/cancel"), &serde_json::json!({"email": "cy@example.com"})).await;
    assert_eq!(status, 200);
    let (_, found) = app.get_json(&format!("/api/bookings/{code}?email=cy@example.com")).await;
    assert_eq!(found["state"], "cancelled");
    assert!(found["ticket"].is_null(), "{found}");
}
