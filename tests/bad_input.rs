//! Hostile requests against a real node: over-long fields, bodies that are not UTF-8 or
//! nested too deep or too large, very long paths and query strings. Each gets a 4xx, the
//! node goes on serving, and nothing is written (no log entry, hold or booking, and the
//! show's seat map as it was).
mod common;

use actix_web::http::StatusCode;
use chrono::Duration;
use common::{spawn_app, TestApp};
use serde_json::json;
use std::collections::HashMap;
use std::io::{Read, Write};

/// A show with one seat held and one booked, and what the node holds before the test.
struct Scene {
    show: i64,
    hold_id: String,
    code: String,
    seats: HashMap<String, String>,
    footprint: (i64, i64, i64, i64),
}

async fn scene(app: &TestApp) -> Scene {
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (_, booked) = app.hold(show, &["A1"]).await;
    let (status, booking) = app.confirm(booked["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let (_, held) = app.hold(show, &["B2"]).await;
    let seats = app.seat_states(show).await;
    assert_eq!((seats["A1"].as_str(), seats["B2"].as_str()), ("booked", "held"));
    Scene {
        show,
        hold_id: held["hold_id"].as_str().unwrap().to_string(),
        code: booking["code"].as_str().unwrap().to_string(),
        seats,
        footprint: app.write_footprint().await,
    }
}

impl Scene {
    /// Nothing was written: the same rows, the same seat map, and the node still answers.
    async fn unchanged(&self, app: &TestApp) {
        assert_eq!(app.write_footprint().await, self.footprint, "a refused request wrote something");
        assert_eq!(app.seat_states(self.show).await, self.seats, "a refused request changed the seat map");
        let (status, _) = app.get_json("/healthz").await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[actix_web::test]
async fn over_long_fields_on_the_json_api_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let (show, hold, code) = (s.show, &s.hold_id, &s.code);
    let long_name = "N".repeat(10_000);
    let long_email = format!("{}@example.com", "e".repeat(988));
    let seats_200: Vec<String> = (1..=200).map(|n| format!("C{n}")).collect();

    let cases: Vec<(&str, String, serde_json::Value, StatusCode)> = vec![
        (
            "200 seats",
            format!("/api/shows/{show}/holds"),
            json!({ "seats": seats_200 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a 10,000-character seat",
            format!("/api/shows/{show}/holds"),
            json!({ "seats": [long_name] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a 10,000-character name",
            format!("/api/holds/{hold}/confirm"),
            json!({ "name": long_name, "email": "bo@example.com" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a 1,000-character email",
            format!("/api/holds/{hold}/confirm"),
            json!({ "name": "Bo", "email": long_email }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "a 1,000-character email to cancel with",
            format!("/api/bookings/{code}/cancel"),
            json!({ "email": long_email }),
            StatusCode::NOT_FOUND,
        ),
        (
            "a 10,000-character hold id",
            format!("/api/holds/{show}-{long_name}/confirm"),
            json!({ "name": "Bo", "email": "bo@example.com" }),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, path, body, want) in cases {
        let (status, answer) = app.post_json(&path, &body).await;
        assert_eq!(status, want, "{what}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| e.len() < 300), "{what}: a short error message: {answer}");
    }

    let (status, _) = app.get_json(&format!("/api/bookings/{code}?email={long_email}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a 1,000-character email to look up with");
    let mut res = app
        .client
        .post(app.url(&format!("/api/shows/{show}/holds")))
        .insert_header(("Idempotency-Key", "k".repeat(10_000)))
        .send_json(&json!({"seats": ["C1"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "a 10,000-character Idempotency-Key");
    assert!(res.json::<serde_json::Value>().await.unwrap()["error"].is_string());

    s.unchanged(&app).await;
}

/// A browser session: the CSRF cookie and the form token of the show's page.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: String,
    token: String,
}

impl<'a> Browser<'a> {
    async fn open(app: &'a TestApp, show: i64) -> Browser<'a> {
        let mut res = app.client.get(app.url(&format!("/shows/{show}"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
        let html = String::from_utf8(res.body().limit(4 << 20).await.unwrap().to_vec()).unwrap();
        let marker = "name=\"csrf_token\" value=\"";
        let at = html.find(marker).expect("a form with a CSRF token") + marker.len();
        Browser { app, cookie, token: html[at..at + 32].to_string() }
    }

    /// Posts `body` as a url-encoded form with the CSRF token appended.
    async fn post_raw(&self, path: &str, body: &[u8]) -> StatusCode {
        let mut body = body.to_vec();
        body.extend_from_slice(format!("&csrf_token={}", self.token).as_bytes());
        self.app
            .client
            .post(self.app.url(path))
            .insert_header(("Cookie", self.cookie.clone()))
            .content_type("application/x-www-form-urlencoded")
            .send_body(body)
            .await
            .unwrap()
            .status()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> StatusCode {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.post_raw(path, body.as_bytes()).await
    }
}

#[actix_web::test]
async fn over_long_fields_on_the_forms_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let (show, hold, code) = (s.show, &s.hold_id, &s.code);
    let b = Browser::open(&app, show).await;
    let long_name = "N".repeat(10_000);
    let long_email = format!("{}@example.com", "e".repeat(988));

    let seats_200: Vec<(&str, String)> = (1..=200).map(|n| ("seat", format!("C{n}"))).collect();
    let seats_200: Vec<(&str, &str)> = seats_200.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let status = b.post(&format!("/shows/{show}/hold"), &seats_200).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "200 seats");
    let status = b.post(&format!("/shows/{show}/hold"), &[("seat", &long_name)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a 10,000-character seat");
    let status = b.post(&format!("/holds/{hold}/confirm"), &[("name", &long_name), ("email", "bo@example.com")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a 10,000-character name");
    let status = b.post(&format!("/holds/{hold}/confirm"), &[("name", "Bo"), ("email", &long_email)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a 1,000-character email");
    let status = b.post(&format!("/bookings/{code}/cancel"), &[("email", &long_email)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a 1,000-character email to cancel with");
    let status = b.post("/bookings/lookup", &[("code", &long_name), ("email", &long_email)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a 10,000-character code to look up");

    s.unchanged(&app).await;
}

#[actix_web::test]
async fn a_form_body_that_is_not_utf8_is_a_400_and_changes_nothing() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let b = Browser::open(&app, s.show).await;
    let hold = &s.hold_id;

    let cases: [(&str, String, &[u8]); 4] = [
        ("raw bytes in a seat", format!("/shows/{}/hold", s.show), b"seat=C1&seat=\xff\xfe"),
        ("escaped bytes in a seat", format!("/shows/{}/hold", s.show), b"seat=C%FF%FE"),
        ("raw bytes in a name", format!("/holds/{hold}/confirm"), b"name=Bo\xff\xfe&email=bo%40example.com"),
        ("escaped bytes in a name", format!("/holds/{hold}/confirm"), b"name=Bo%C3&email=bo%40example.com"),
    ];
    for (what, path, body) in cases {
        assert_eq!(b.post_raw(&path, body).await, StatusCode::BAD_REQUEST, "{what}");
    }
    // The same forms in UTF-8 are taken: the token and cookie are right.
    assert_eq!(b.post(&format!("/shows/{}/hold", s.show), &[("seat", "Ç1")]).await, StatusCode::UNPROCESSABLE_ENTITY);

    s.unchanged(&app).await;
}

#[actix_web::test]
async fn json_nested_10000_levels_deep_is_a_400_and_the_node_still_answers() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let deep = |inner: &str| format!("{}{inner}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies = [
        (format!("/api/shows/{}/holds", s.show), format!(r#"{{"seats":{}}}"#, deep("\"C1\""))),
        (format!("/api/shows/{}/holds", s.show), deep("")),
        (format!("/api/holds/{}/confirm", s.hold_id), format!(r#"{{"name":{},"email":"a@b.co"}}"#, deep("1"))),
        (format!("/api/bookings/{}/cancel", s.code), "{\"email\":".repeat(5_000)),
    ];
    for (path, body) in bodies {
        let mut res = app.client.post(app.url(&path)).content_type("application/json").send_body(body).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        let answer = res.json::<serde_json::Value>().await.unwrap();
        assert!(answer["error"].as_str().is_some_and(|e| e.contains("not valid JSON")), "{path}: {answer}");
    }
    s.unchanged(&app).await;
    let (status, _) = app.hold(s.show, &["C1"]).await;
    assert_eq!(status, StatusCode::CREATED, "the node still takes writes");
}

/// Sends `request` as it is over a new connection and returns the answer's status, or
/// None when the node closed the connection without one. No answer within 10 s fails the
/// test (a hang).
async fn raw_status(app: &TestApp, request: Vec<u8>) -> Option<u16> {
    let address = app.address.trim_start_matches("http://").to_string();
    actix_rt::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        // The node may answer and close before it has read everything.
        let _ = stream.write_all(&request);
        let mut answer = Vec::new();
        if let Err(e) = stream.read_to_end(&mut answer) {
            let hang = matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
            assert!(!hang, "no answer within 10 s");
        }
        let answer = String::from_utf8_lossy(&answer);
        answer.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok())
    })
    .await
    .unwrap()
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").into_bytes()
}

#[actix_web::test]
async fn very_long_paths_and_query_strings_are_4xx_and_the_node_serves_the_next_request() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let long = "a".repeat(100 * 1024);
    let targets = [
        format!("/{long}"),
        format!("/api/holds/{long}"),
        format!("/?q={long}"),
        format!("/api/shows/{}/seats?{long}", s.show),
        format!("/api/bookings/{}?email={long}", s.code),
        // Below the node's limit on a request head, so the handlers see them.
        format!("/api/holds/{}-{}", s.show, &long[..20_000]),
        format!("/api/bookings/{}?email={}", s.code, &long[..20_000]),
        format!("/?q={}&date={}", &long[..20_000], &long[..10]),
    ];
    for target in targets {
        let status = raw_status(&app, get(&target)).await;
        assert!(status.is_some_and(|s| (400..500).contains(&s)), "{}...: {status:?}", &target[..40]);
        let (status, _) = app.get_json("/healthz").await;
        assert_eq!(status, StatusCode::OK, "the node serves the next request");
    }
    s.unchanged(&app).await;
}

#[actix_web::test]
async fn a_listing_date_outside_the_calendar_is_a_400() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    for date in ["-0001-01-01", "99999-01-01", "+262143-12-31", "0000-01-01", "2024-02-30", "2024-1-1x"] {
        let res = app.client.get(app.url(&format!("/?date={date}"))).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{date}");
    }
    let res = app.client.get(app.url("/?date=2030-01-01")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    s.unchanged(&app).await;
}

#[actix_web::test]
async fn a_body_over_max_body_bytes_is_a_413_and_changes_nothing() {
    let app = spawn_app().await;
    let s = scene(&app).await;
    let b = Browser::open(&app, s.show).await;
    let limit = app.state.settings.max_body_bytes;
    let name = "N".repeat(limit + 1);

    let status =
        b.post(&format!("/holds/{}/confirm", s.hold_id), &[("name", &name), ("email", "bo@example.com")]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "a form");
    let (status, answer) = app
        .post_json(&format!("/api/holds/{}/confirm", s.hold_id), &json!({"name": name, "email": "bo@example.com"}))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "JSON: {answer}");
    assert_eq!(answer["status"], 413);
    let seats: Vec<String> = (0..limit / 4).map(|n| format!("C{}", n % 8 + 1)).collect();
    let (status, _) = app.post_json(&format!("/api/shows/{}/holds", s.show), &json!({ "seats": seats })).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "JSON, many seats");

    s.unchanged(&app).await;
}

#[actix_web::test]
async fn node_to_node_requests_with_bad_headers_or_bodies_are_4xx_and_change_nothing() {
    use marquee::cluster::auth::{nonce, sign, HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME};
    const SECRET: &str = "bad-input-test-secret-0123";
    let app = common::spawn_app_with(|s| s.cluster.secret = SECRET.into()).await;
    let s = scene(&app).await;
    let send = |path: &'static str, time: i64, signed: bool, body: Vec<u8>| {
        let n = nonce();
        let signature = if signed { sign(SECRET, 2, time, &n, path, &body) } else { "ab".repeat(32) };
        app.client
            .post(app.url(path))
            .insert_header((HEADER_NODE, "2"))
            .insert_header((HEADER_TIME, time.to_string()))
            .insert_header((HEADER_NONCE, n))
            .insert_header((HEADER_SIGNATURE, signature))
            .content_type("application/json")
            .send_body(body)
    };
    let now = chrono::Utc::now().timestamp();

    // Timestamps at the ends of i64 (i64::MIN overflowed the skew check: a panic).
    for time in [i64::MIN, i64::MIN + now, i64::MAX] {
        for signed in [false, true] {
            let res = send("/internal/message", time, signed, b"{}".to_vec()).await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "time {time}, signed {signed}");
        }
    }
    // Signed bodies that are not a message: not JSON, the wrong shape, nested 10,000 deep.
    let deep = format!(r#"{{"from":2,"epoch":0,"lamport":1,"body":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    let bodies: [(&'static str, Vec<u8>); 4] = [
        ("/internal/message", b"\xff\xfe{".to_vec()),
        ("/internal/writes", br#"{"from":2,"epoch":0,"lamport":1,"body":{"writes":{"op":"hold"}}}"#.to_vec()),
        ("/internal/writes", deep.clone().into_bytes()),
        ("/internal/status", deep.into_bytes()),
    ];
    for (path, body) in bodies {
        let res = send(path, now, true, body).await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    s.unchanged(&app).await;
}
