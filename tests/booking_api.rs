//! The JSON API against a real node and a real MariaDB.
mod common;

use actix_web::http::StatusCode;
use chrono::Duration;
use common::{spawn_app, spawn_app_with, spawn_on};
use serde_json::json;

#[actix_web::test]
async fn hold_confirm_look_up_and_cancel() {
    let app = spawn_app().await;
    let show = app.seed_show(6, 10, Duration::days(2)).await;

    let (status, hold) = app.hold(show, &["C7", "c8"]).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    assert_eq!(hold["seats"], json!(["C7", "C8"]));
    let hold_id = hold["hold_id"].as_str().unwrap();
    assert_eq!(app.seat_states(show).await["C7"], "held");

    let (status, booking) = app.confirm(hold_id, "Ann Lee", "Ann@Example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let code = booking["code"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    // Row C of 6 is standard (rows from 3 on are premium): 2 x 12.50.
    assert_eq!(booking["total_cents"], 2500);
    assert_eq!(app.seat_states(show).await["C8"], "booked");

    let (status, found) = app.get_json(&format!("/api/bookings/{code}?email=ann@example.com")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["seats"], json!(["C7", "C8"]));
    let (status, _) = app.get_json(&format!("/api/bookings/{code}?email=someone@else.com")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, cancelled) =
        app.post_json(&format!("/api/bookings/{code}/cancel"), &json!({"email": "ann@example.com"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(app.seat_states(show).await["C7"], "free");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM booking_seats").await, 0);
    // The seats can be sold again.
    let (status, _) = app.hold(show, &["C7"]).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn names_with_quotes_backslashes_and_emoji_are_stored_as_given() {
    // The log writer sends rows to MariaDB as SQL text: nothing in a value may change it.
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(2)).await;
    let (_, hold) = app.hold(show, &["A1"]).await;
    let name = "O'Brien \\ \"Zoë\" 🎬'); DROP TABLE bookings; --";
    let (status, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), name, "zoe+x@example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let code = booking["code"].as_str().unwrap();
    let (status, found) = app.get_json(&format!("/api/bookings/{code}?email=zoe%2Bx@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["name"], name);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bookings").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM write_log WHERE payload LIKE '%DROP TABLE%'").await, 1);
}

#[actix_web::test]
async fn a_taken_seat_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (status, _) = app.hold(show, &["A1", "A2"]).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = app.write_footprint().await;
    let (status, body) = app.hold(show, &["A3", "A2"]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["taken"], json!(["A2"]));
    assert!(body["error"].as_str().unwrap().contains("A2"));
    assert_eq!(app.write_footprint().await, before);
    assert_eq!(app.seat_states(show).await["A3"], "free");
}

#[actix_web::test]
async fn confirming_twice_returns_the_same_booking() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["B1"]).await;
    let hold_id = hold["hold_id"].as_str().unwrap();
    let (first, second) =
        futures::join!(app.confirm(hold_id, "Ann", "ann@example.com"), app.confirm(hold_id, "Bob", "bob@example.com"));
    assert_eq!(first.0, StatusCode::CREATED);
    assert_eq!(second.0, StatusCode::CREATED);
    assert_eq!(first.1["code"], second.1["code"]);
    let (third_status, third) = app.confirm(hold_id, "Ann", "ann@example.com").await;
    assert_eq!(third_status, StatusCode::CREATED);
    assert_eq!(third["code"], first.1["code"]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bookings").await, 1);
}

#[actix_web::test]
async fn an_idempotency_key_replays_the_first_hold() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let send = || async {
        let mut res = app
            .client
            .post(app.url(&format!("/api/shows/{show}/holds")))
            .insert_header(("Idempotency-Key", "retry-123"))
            .send_json(&json!({"seats": ["D4"]}))
            .await
            .unwrap();
        (res.status(), res.json::<serde_json::Value>().await.unwrap())
    };
    let (s1, h1) = send().await;
    let (s2, h2) = send().await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(h1["hold_id"], h2["hold_id"]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM holds").await, 1);
    let (status, _) = app
        .client
        .post(app.url(&format!("/api/shows/{show}/holds")))
        .insert_header(("Idempotency-Key", "has spaces"))
        .send_json(&json!({"seats": ["D5"]}))
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let past = app.seed_show(4, 8, Duration::hours(-1)).await;
    let (_, other_hold) = app.hold(show, &["A1"]).await;
    let real_hold = other_hold["hold_id"].as_str().unwrap().to_string();
    let before = app.write_footprint().await;

    let eleven: Vec<String> = (1..=8).map(|n| format!("A{n}")).chain((1..=3).map(|n| format!("B{n}"))).collect();
    let cases: Vec<(&str, String, serde_json::Value, StatusCode)> = vec![
        ("unknown show", "/api/shows/987654/holds".into(), json!({"seats": ["A1"]}), StatusCode::NOT_FOUND),
        ("show id not a number", "/api/shows/abc/holds".into(), json!({"seats": ["A1"]}), StatusCode::NOT_FOUND),
        (
            "unknown seat",
            format!("/api/shows/{show}/holds"),
            json!({"seats": ["Z9"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "malformed seat",
            format!("/api/shows/{show}/holds"),
            json!({"seats": ["<b>"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "duplicate seats",
            format!("/api/shows/{show}/holds"),
            json!({"seats": ["B2", "b2"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("no seats", format!("/api/shows/{show}/holds"), json!({"seats": []}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "eleven seats",
            format!("/api/shows/{show}/holds"),
            json!({ "seats": eleven }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("wrong shape", format!("/api/shows/{show}/holds"), json!({"seats": "A1"}), StatusCode::BAD_REQUEST),
        (
            "unknown field",
            format!("/api/shows/{show}/holds"),
            json!({"seats": ["A2"], "price": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "show in the past",
            format!("/api/shows/{past}/holds"),
            json!({"seats": ["A1"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "malformed hold id",
            "/api/holds/nonsense/confirm".into(),
            json!({"name": "A", "email": "a@b.co"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "foreign hold",
            format!("/api/holds/{past}-{}/confirm", &real_hold[real_hold.len() - 20..]),
            json!({"name": "A", "email": "a@b.co"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "malformed email",
            format!("/api/holds/{real_hold}/confirm"),
            json!({"name": "A", "email": "not-an-email"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "empty name",
            format!("/api/holds/{real_hold}/confirm"),
            json!({"name": "  ", "email": "a@b.co"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("missing email", format!("/api/holds/{real_hold}/confirm"), json!({"name": "A"}), StatusCode::BAD_REQUEST),
        ("bad booking code", "/api/bookings/0000/cancel".into(), json!({"email": "a@b.co"}), StatusCode::NOT_FOUND),
        ("unknown booking", "/api/bookings/ABCDEFGH/cancel".into(), json!({"email": "a@b.co"}), StatusCode::NOT_FOUND),
    ];
    for (what, path, body, want) in cases {
        let (status, answer) = app.post_json(&path, &body).await;
        assert_eq!(status, want, "{what}: {answer}");
        if status != StatusCode::NOT_FOUND || path.starts_with("/api/") {
            assert!(answer["error"].is_string(), "{what}: error message missing: {answer}");
        }
    }

    // Not JSON, and too large.
    let mut res = app
        .client
        .post(app.url(&format!("/api/shows/{show}/holds")))
        .content_type("application/json")
        .send_body("{seats: A1")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    let res = app
        .client
        .post(app.url(&format!("/api/shows/{show}/holds")))
        .content_type("text/plain")
        .send_body(r#"{"seats":["A3"]}"#)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let huge = format!(r#"{{"seats":["{}"]}}"#, "A".repeat(200_000));
    let res = app
        .client
        .post(app.url(&format!("/api/shows/{show}/holds")))
        .content_type("application/json")
        .send_body(huge)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(app.write_footprint().await, before, "a refused request wrote something");
}

#[actix_web::test]
async fn an_expired_hold_is_gone_and_its_seats_are_free() {
    let app = spawn_app_with(|s| s.hold_duration = Duration::milliseconds(400)).await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["C3", "C4"]).await;
    let hold_id = hold["hold_id"].as_str().unwrap().to_string();
    actix_web::rt::time::sleep(std::time::Duration::from_millis(900)).await;
    let (status, body) = app.confirm(&hold_id, "Ann", "ann@example.com").await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(app.seat_states(show).await["C3"], "free");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bookings").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM holds WHERE state = 'expired'").await, 1);
    let (status, _) = app.hold(show, &["C3"]).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// A hold whose confirmation was still in the log when its time ran out, and then failed,
/// expires like any other: the expiry timer that fired meanwhile passed it over (it was
/// being confirmed), so the failed confirmation must arm another.
#[actix_web::test]
async fn a_hold_whose_confirmation_fails_after_its_time_has_run_out_still_expires() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let app = spawn_app_with(|s| s.hold_duration = Duration::milliseconds(600)).await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["C3"]).await;
    let hold_id = hold["hold_id"].as_str().unwrap().to_string();

    // Another transaction has seat C3's sale row: the log writer's insert waits for its
    // lock, then fails on the key once that transaction commits.
    let url = format!("{}/{}", common::server_url(), app.db_name);
    let mut blocker = diesel::MysqlConnection::establish(&url).unwrap();
    blocker
        .batch_execute(&format!(
            "SET SESSION foreign_key_checks = 0; BEGIN; \
             INSERT INTO booking_seats (show_id, seat, booking_code) VALUES ({show}, 'C3', 'BLOCKER')"
        ))
        .unwrap();
    let confirm = {
        let (client, url) = (app.client.clone(), app.url(&format!("/api/holds/{hold_id}/confirm")));
        actix_web::rt::spawn(async move {
            client.post(url).send_json(&json!({ "name": "Ann", "email": "ann@example.com" })).await.map(|r| r.status())
        })
    };
    // Past the hold's time, while it is being confirmed (the timer fires now and skips it).
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1500)).await;
    blocker.batch_execute("COMMIT").unwrap();
    let status = confirm.await.unwrap().unwrap();
    assert!(status.is_server_error() || status == StatusCode::CONFLICT, "the confirmation failed: {status}");
    blocker.batch_execute("DELETE FROM booking_seats WHERE booking_code = 'BLOCKER'").unwrap();

    let mut tries = 0;
    while app.seat_states(show).await["C3"] != "free" {
        tries += 1;
        assert!(tries < 100, "the hold never expired: seat C3 stays held");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM holds WHERE state = 'expired'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bookings").await, 0);
    let (status, _) = app.hold(show, &["C3"]).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[actix_web::test]
async fn cancelling_is_refused_after_the_cut_off() {
    let app = spawn_app_with(|s| s.cancel_cutoff = Duration::hours(2)).await;
    let show = app.seed_show(4, 8, Duration::minutes(90)).await;
    let (_, hold) = app.hold(show, &["A1"]).await;
    let (_, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    let code = booking["code"].as_str().unwrap();
    let before = app.write_footprint().await;
    let (status, body) =
        app.post_json(&format!("/api/bookings/{code}/cancel"), &json!({"email": "ann@example.com"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(app.write_footprint().await, before);
    assert_eq!(app.seat_states(show).await["A1"], "booked");
}

#[actix_web::test]
async fn a_restarted_node_rebuilds_seat_maps_from_the_database() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["A1", "A2"]).await;
    let (_, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    let (_, open_hold) = app.hold(show, &["B5"]).await;
    let before = app.seat_states(show).await;

    let second = spawn_on(&app.db_name, |_| {}, false);
    let after = second.seat_states(show).await;
    assert_eq!(before, after);
    // The rebuilt actor knows the booking and the hold.
    let (status, again) = second.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["code"], booking["code"]);
    let (status, _) = second.confirm(open_hold["hold_id"].as_str().unwrap(), "Bo", "bo@example.com").await;
    assert_eq!(status, StatusCode::CREATED);
    // The log continues where it was.
    assert_eq!(
        second.count("SELECT COUNT(DISTINCT lsn) AS n FROM write_log").await,
        second.count("SELECT MAX(lsn) AS n FROM write_log").await
    );
}

#[actix_web::test]
async fn every_write_is_in_the_log_with_increasing_lamport_times() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["A1"]).await;
    app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM write_log WHERE kind NOT IN ('membership', 'epoch_start')").await,
        3
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM write_log w1 JOIN write_log w2 ON w2.lsn = w1.lsn + 1 WHERE w2.lamport <= w1.lamport").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM write_log WHERE kind = 'booking_confirmed'").await, 1);
}
