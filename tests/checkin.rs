//! Check-in at the door: `/admin/checkin` and `POST /admin/api/checkin` (also
//! `/api/admin/checkin`) `{"ticket": token}`. The first scan admits, a second says when and
//! through which node, a cancelled or forged ticket is refused, and a follower takes scans.
mod common;

use chrono::Duration;
use common::browser::Browser;
use common::cluster::{Cluster, ADMIN_PASSWORD, SECRET};
use common::{spawn_app_with, TestApp};
use marquee::config::Secret;
use marquee::domain::{AdminPassword, BookingCode, TicketKey};
use serde_json::json;

const KEY: &str = "the door's ticket key";
const PASSWORD: &str = "correct horse battery";

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.ticket_key = Some(Secret::new(KEY));
        s.admin_password = Some(AdminPassword::hash(PASSWORD).unwrap());
    })
    .await
}

fn ticket(key: &str, code: &str) -> String {
    TicketKey::from_secret(key).sign(&BookingCode::parse(code).unwrap()).to_string()
}

/// A logged-in operator on the check-in page (which gives the CSRF token).
async fn door(base: &str, password: &str) -> Browser {
    let mut b = Browser::logged_in(base, password).await;
    let p = b.get("/admin/checkin").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("name=\"ticket\"") && p.body.contains("/assets/checkin.js"));
    b
}

async fn admissions(app: &TestApp) -> (i64, i64) {
    (
        app.count("SELECT COUNT(*) AS n FROM admissions").await,
        app.count("SELECT COUNT(*) AS n FROM write_log WHERE kind = 'admission'").await,
    )
}

#[actix_web::test]
async fn the_first_scan_admits_and_a_second_says_when_and_through_which_node() {
    let app = app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let code = app.book(show, &["C1", "C2"]).await;
    let mut b = door(&app.address, PASSWORD).await;

    let first = b.post_json_csrf("/admin/api/checkin", &json!({ "ticket": ticket(KEY, &code) })).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let a = first.json();
    assert_eq!(a["result"], "admitted");
    assert_eq!(a["seats"], json!(["C1", "C2"]));
    assert_eq!(a["message"], "Admit 2: C1, C2");
    assert_eq!(a["node"], 1);
    assert!(a["show"]["movie_title"].as_str().unwrap().starts_with("Test Movie"));

    // The scanner may type it in lower case: the same ticket.
    let second = b.post_json_csrf("/api/admin/checkin", &json!({ "ticket": ticket(KEY, &code).to_lowercase() })).await;
    assert_eq!(second.status, 409, "{}", second.body);
    let s = second.json();
    assert_eq!(s["result"], "already_admitted");
    assert_eq!(s["at"], a["at"], "the time of the first scan");
    assert_eq!(s["message"], format!("already admitted at {} through node 1", a["at"].as_str().unwrap()));
    assert_eq!(admissions(&app).await, (1, 1), "one admission, one log entry");
}

#[actix_web::test]
async fn forged_malformed_and_cancelled_tickets_are_refused_and_change_nothing() {
    let app = app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let code = app.book(show, &["A1"]).await;
    let other = app.book(show, &["A2"]).await;
    let mut b = door(&app.address, PASSWORD).await;
    let before = app.write_footprint().await;

    let forged = b.post_json_csrf("/admin/api/checkin", &json!({ "ticket": ticket("a guessed key", &code) })).await;
    assert_eq!(forged.status, 422, "{}", forged.body);
    assert!(forged.json()["error"].as_str().unwrap().contains("signature"));
    let tampered = ticket(KEY, &code).replace(&code, &other);
    assert_eq!(b.post_json_csrf("/admin/api/checkin", &json!({ "ticket": tampered })).await.status, 422);
    for bad in
        [json!({ "ticket": "hello" }), json!({ "ticket": 5 }), json!({}), json!({ "ticket": "x".repeat(100_000) })]
    {
        let p = b.post_json_csrf("/admin/api/checkin", &bad).await;
        assert!(p.status == 400 || p.status == 413, "{bad:.40}: {} {}", p.status, p.body);
    }
    // No session, or no CSRF token: refused before anything is read.
    let mut stranger = Browser::new(&app.address);
    assert_eq!(stranger.post_json("/admin/api/checkin", &json!({ "ticket": ticket(KEY, &code) })).await.status, 401);
    assert_eq!(b.post_json("/admin/api/checkin", &json!({ "ticket": ticket(KEY, &code) })).await.status, 403);
    assert_eq!(app.write_footprint().await, before);
    assert_eq!(admissions(&app).await, (0, 0));

    let (status, _) =
        app.post_json(&format!("/api/bookings/{other}/cancel"), &json!({"email": "ann@example.com"})).await;
    assert_eq!(status, 200);
    let cancelled = b.post_json_csrf("/admin/api/checkin", &json!({ "ticket": ticket(KEY, &other) })).await;
    assert_eq!(cancelled.status, 410, "{}", cancelled.body);
    assert!(cancelled.json()["error"].as_str().unwrap().contains("cancelled"));
    assert_eq!(admissions(&app).await, (0, 0));
}

#[actix_web::test]
async fn the_page_checks_in_with_a_plain_form() {
    let app = app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let code = app.book(show, &["D4"]).await;
    let mut b = door(&app.address, PASSWORD).await;

    let first = b.post("/admin/checkin", &[("ticket", &ticket(KEY, &code))]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("data-result=\"admitted\"") && first.body.contains("Admit 1: D4"));
    let second = b.post("/admin/checkin", &[("ticket", &ticket(KEY, &code))]).await;
    assert_eq!(second.status, 409);
    assert!(second.body.contains("data-result=\"already_admitted\"") && second.body.contains("through node 1"));
    let forged = b.post("/admin/checkin", &[("ticket", &ticket("nope", &code))]).await;
    assert_eq!(forged.status, 422);
    assert!(forged.body.contains("data-result=\"refused\""));
    // Without a session: the login page.
    let mut stranger = Browser::new(&app.address);
    assert_eq!(stranger.get("/admin/checkin").await.status, 401);
}

/// Admissions are writes through the log: a follower takes a scan (the master records it,
/// naming the follower), and a second scan through any other node knows.
#[actix_web::test]
async fn a_follower_takes_scans_and_every_node_knows_who_is_in() {
    let c = Cluster::start(3, 4, 8).await;
    let master = c.wait_for_master(std::time::Duration::from_secs(30)).await.unwrap();
    let follower = (master + 1) % 3;
    let other = (master + 2) % 3;
    let base = |i: usize| c.url(i, "");
    let outcome =
        common::cluster::book(&c.client, &base(follower), c.show, &["B1".to_string(), "B2".to_string()], 1).await;
    let code = match outcome {
        common::cluster::Outcome::Booked(code) => code,
        o => panic!("not booked: {o:?}"),
    };
    let token = ticket(SECRET, &code);

    let mut at_follower = door(&base(follower), ADMIN_PASSWORD).await;
    let first = at_follower.post_json_csrf("/admin/api/checkin", &json!({ "ticket": token })).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["node"], c.nodes[follower].id);

    for i in [master, other] {
        let mut at = door(&base(i), ADMIN_PASSWORD).await;
        let again = at.post_json_csrf("/admin/api/checkin", &json!({ "ticket": token })).await;
        assert_eq!(again.status, 409, "node {}: {}", c.nodes[i].id, again.body);
        assert!(
            again.json()["message"].as_str().unwrap().ends_with(&format!("through node {}", c.nodes[follower].id)),
            "{}",
            again.body
        );
    }
    assert!(c.wait_converged(std::time::Duration::from_secs(10)).await);
}

/// Two doors scan the same ticket at the same moment: exactly one admits.
#[actix_web::test]
async fn of_simultaneous_scans_of_one_ticket_exactly_one_admits() {
    let app = app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let code = app.book(show, &["D1"]).await;
    let token = ticket(KEY, &code);
    let mut doors = Vec::new();
    for _ in 0..6 {
        doors.push(door(&app.address, PASSWORD).await);
    }
    let body = json!({ "ticket": token });
    let scans = doors.iter_mut().map(|d| d.post_json_csrf("/admin/api/checkin", &body));
    let mut statuses: Vec<u16> = futures::future::join_all(scans).await.iter().map(|p| p.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409]);
    assert_eq!(admissions(&app).await, (1, 1));
}
