//! Attacks a ticketing site meets from its own customers' scripts, each refused while an
//! honest client is served at the same moment: seat spinning, forged client addresses,
//! password guessing, booking-code guessing, and copied admin cookies.
mod common;

use chrono::Duration;
use common::browser::Browser;
use common::{spawn_app_with, TestApp};
use marquee::actors::seat_map::HoldLimits;
use marquee::config::Settings;
use marquee::domain::AdminPassword;
use marquee::web::client::TrustedProxies;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";
/// A script's address and an honest customer's, as nginx would forward them.
const SCRIPT: &str = "203.0.113.66";
const HONEST: &str = "198.51.100.7";

/// A node with the defaults a real site runs with, behind a proxy at 127.0.0.1.
fn behind_proxy(s: &mut Settings) {
    s.hold_limits = HoldLimits::default();
    s.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    s.admin_password = Some(AdminPassword::hash(PASSWORD).unwrap());
}

fn seat(row: usize, n: usize) -> String {
    format!("{}{}", (b'A' + row as u8) as char, n)
}

/// Holds through the JSON API as `who`; the status, Retry-After and body.
async fn hold(b: &mut Browser, show: i64, seats: &[String]) -> (u16, Option<u64>, serde_json::Value) {
    let p = b.post_json(&format!("/api/shows/{show}/holds"), &json!({ "seats": seats })).await;
    (p.status, p.retry_after, p.json())
}

async fn held_seats(app: &TestApp) -> i64 {
    app.count("SELECT COALESCE(SUM(LENGTH(seats) - LENGTH(REPLACE(seats, ',', '')) + 1), 0) AS n FROM holds WHERE state = 'active'").await
}

#[actix_web::test]
async fn a_script_holding_a_whole_house_stops_at_the_limit_while_another_client_books() {
    let app = spawn_app_with(behind_proxy).await;
    let show = app.seed_show(8, 12, Duration::days(1)).await;
    let mut script = Browser::new(&app.address).via_proxy_for(SCRIPT);
    let mut honest = Browser::new(&app.address).via_proxy_for(HONEST);
    // The script asks for the whole house, two seats at a time; the customer books two
    // seats of the last row meanwhile.
    let spin = async {
        let mut answers = Vec::new();
        for i in 0..40 {
            let (row, n) = (i / 6, (i % 6) * 2 + 1);
            answers.push(hold(&mut script, show, &[seat(row, n), seat(row, n + 1)]).await);
        }
        answers
    };
    let book = async {
        let (status, _, held) = hold(&mut honest, show, &[seat(7, 5), seat(7, 6)]).await;
        assert_eq!(status, 201, "{held}");
        let hold_id = held["hold_id"].as_str().unwrap().to_string();
        let p = honest
            .post_json(&format!("/api/holds/{hold_id}/confirm"), &json!({"name": "Ann", "email": "ann@example.com"}))
            .await;
        assert_eq!(p.status, 201, "{}", p.body);
    };
    let (answers, ()) = futures::join!(spin, book);
    let placed = answers.iter().filter(|(s, _, _)| *s == 201).count();
    assert_eq!(placed, 5, "five holds of two seats: the limit of ten");
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(refused.len(), 35, "every other attempt refused: {answers:?}");
    for (_, retry_after, body) in refused {
        assert!(retry_after.is_some_and(|s| s >= 1), "a Retry-After");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains("at most 10 can be held at once"), "{message}");
    }
    assert_eq!(held_seats(&app).await, 10, "the script holds ten seats, no more");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bookings").await, 1, "the customer's booking");

    // The seat map's form says the same, as a page with Retry-After.
    script.get(&format!("/shows/{show}")).await;
    let p = script.post(&format!("/shows/{show}/hold"), &[("seat", "H1")]).await;
    assert_eq!(p.status, 429);
    assert!(p.retry_after.is_some());
    assert!(p.body.contains("at most 10 can be held at once"), "the page says why");
    // Releasing a hold gives the room back.
    let first = answers.iter().find(|(s, _, _)| *s == 201).unwrap().2["hold_id"].as_str().unwrap().to_string();
    assert_eq!(script.post_json(&format!("/api/holds/{first}/release"), &json!({})).await.status, 200);
    assert_eq!(hold(&mut script, show, &[seat(6, 1)]).await.0, 201);
}

#[actix_web::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // No trusted proxy: the peer (127.0.0.1) is the client, whatever the header claims.
    let app = spawn_app_with(|s| {
        behind_proxy(s);
        s.trusted_proxies = TrustedProxies::default();
    })
    .await;
    let show = app.seed_show(4, 12, Duration::days(1)).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        // A new "address" every time.
        let mut b = Browser::new(&app.address).via_proxy_for(&format!("192.0.2.{}", i + 1));
        statuses.push(hold(&mut b, show, &[seat(i / 4, (i % 4) * 3 + 1), seat(i / 4, (i % 4) * 3 + 2)]).await.0);
    }
    assert_eq!(statuses, vec![201, 201, 201, 201, 201, 429, 429, 429]);
}

#[actix_web::test]
async fn holds_a_minute_are_limited_and_an_expired_hold_cools_off_for_its_client_only() {
    let app = spawn_app_with(|s| {
        behind_proxy(s);
        s.hold_duration = Duration::milliseconds(600);
    })
    .await;
    let show = app.seed_show(4, 12, Duration::days(1)).await;
    let mut script = Browser::new(&app.address).via_proxy_for(SCRIPT);
    let mut honest = Browser::new(&app.address).via_proxy_for(HONEST);
    // Hold and let go, again and again: six holds a minute, then 429.
    let mut statuses = Vec::new();
    for i in 0..7 {
        let (status, _, body) = hold(&mut script, show, &[seat(0, i + 1)]).await;
        statuses.push(status);
        if status == 201 {
            let id = body["hold_id"].as_str().unwrap();
            script.post_json(&format!("/api/holds/{id}/release"), &json!({})).await;
        } else {
            assert!(body["error"].as_str().unwrap().contains("at most 6 a minute"), "{body}");
        }
    }
    assert_eq!(statuses, vec![201, 201, 201, 201, 201, 201, 429]);

    // The customer's hold expires unconfirmed: the same seats are refused to them for a
    // while, not to anyone else.
    let (status, _, _) = hold(&mut honest, show, &[seat(2, 1), seat(2, 2)]).await;
    assert_eq!(status, 201);
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (status, retry_after, body) = hold(&mut honest, show, &[seat(2, 2), seat(2, 3)]).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("B2") || body["error"].as_str().unwrap().contains("C2"));
    assert!(retry_after.unwrap() > 60);
    assert_eq!(hold(&mut honest, show, &[seat(2, 3)]).await.0, 201, "other seats are fine");
    let mut other = Browser::new(&app.address).via_proxy_for("198.51.100.8");
    assert_eq!(hold(&mut other, show, &[seat(2, 1), seat(2, 2)]).await.0, 201, "another client gets them");
}

#[actix_web::test]
async fn fifty_wrong_passwords_from_one_address_do_not_lock_out_the_operator() {
    let app = spawn_app_with(behind_proxy).await;
    let mut attackers: Vec<Browser> = Vec::new();
    for _ in 0..50 {
        let mut b = Browser::new(&app.address).via_proxy_for(SCRIPT);
        b.get("/admin/login").await;
        attackers.push(b);
    }
    let attack = futures::future::join_all(
        attackers.iter_mut().map(|b| async { b.post("/admin/login", &[("password", "wrong guess!")]).await.status }),
    );
    let operator = async {
        // Let the attack's first wave arrive first.
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut op = Browser::new(&app.address).via_proxy_for(HONEST);
        op.log_in(PASSWORD).await.status
    };
    let (attack, operator) = futures::join!(attack, operator);
    assert_eq!(operator, 303, "the operator logs in");
    assert!(attack.iter().all(|s| *s == 401 || *s == 429), "{attack:?}");
    let refused = attack.iter().filter(|s| **s == 429).count();
    assert!(refused >= 40, "most guesses are refused without a check: {attack:?}");
}

#[actix_web::test]
async fn guessing_booking_codes_is_throttled_while_a_customer_looks_up_theirs() {
    let app = spawn_app_with(behind_proxy).await;
    let show = app.seed_show(4, 12, Duration::days(1)).await;
    let (_, held) = app.hold(show, &["A1"]).await;
    let (_, booking) = app.confirm(held["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    let code = booking["code"].as_str().unwrap().to_string();
    // A script tries twenty codes of the right shape at once.
    let mut guessers: Vec<Browser> = (0..20).map(|_| Browser::new(&app.address).via_proxy_for(SCRIPT)).collect();
    let guess = futures::future::join_all(guessers.iter_mut().enumerate().map(|(i, g)| async move {
        let guess = format!("ZZZZZZ{}", ["AB", "CD", "EF", "GH", "JK"][i % 5]).replace('Z', &"XY"[i % 2..i % 2 + 1]);
        let p = g.get(&format!("/api/bookings/{guess}?email=ann@example.com")).await;
        if p.status == 429 {
            assert!(p.retry_after.is_some());
        }
        p.status
    }));
    let look_up = async {
        let mut customer = Browser::new(&app.address).via_proxy_for(HONEST);
        let p = customer.get(&format!("/api/bookings/{code}?email=ann@example.com")).await;
        assert_eq!(p.status, 200, "{}", p.body);
        customer.get("/bookings").await;
        let page = customer.post("/bookings/lookup", &[("code", &code), ("email", "ann@example.com")]).await;
        assert_eq!(page.status, 200);
    };
    // And through the look-up page, in the middle of the flood.
    let mut on_page = Browser::new(&app.address).via_proxy_for(SCRIPT);
    on_page.get("/bookings").await;
    let page_guess = async {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        on_page.post("/bookings/lookup", &[("code", "ZZZZZZZZ"), ("email", "x@example.com")]).await
    };
    let (statuses, (), page) = futures::join!(guess, look_up, page_guess);
    assert!(statuses.iter().all(|s| *s == 404 || *s == 429), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 10, "{statuses:?}");
    assert_eq!(page.status, 429);
    assert!(page.retry_after.is_some());
    assert!(page.body.contains("too many look-ups"));
}

#[actix_web::test]
async fn logout_everywhere_and_a_password_change_end_every_session() {
    let app = spawn_app_with(behind_proxy).await;
    let mut a = Browser::logged_in(&app.address, PASSWORD).await;
    let mut b = Browser::logged_in(&app.address, PASSWORD).await;
    assert_eq!(a.get("/admin/account").await.status, 200);
    assert!(a.get("/admin/account").await.body.contains("2 admin sessions are open"));

    // A copied cookie stops working once its session logs out.
    let mut copy = Browser::new(&app.address);
    copy.cookies = b.cookies.clone();
    assert_eq!(copy.get("/admin").await.status, 200);
    b.get("/admin").await;
    let out = b.post("/admin/logout", &[]).await;
    assert_eq!((out.status, out.location.as_deref()), (303, Some("/admin/login?done=logout")));
    assert_eq!(copy.get("/admin").await.status, 401, "the copied cookie after logout");
    assert_eq!(a.get("/admin").await.status, 200, "other sessions go on");

    // Log out everywhere.
    let mut c = Browser::logged_in(&app.address, PASSWORD).await;
    a.get("/admin/account").await;
    assert_eq!(a.post("/admin/logout-everywhere", &[]).await.status, 303);
    assert_eq!(a.get("/admin").await.status, 401);
    assert_eq!(c.get("/admin").await.status, 401);

    // A password change: bad input changes nothing, then every session ends and only the
    // new password opens.
    let mut d = Browser::logged_in(&app.address, PASSWORD).await;
    d.get("/admin/account").await;
    let p = d
        .post("/admin/password", &[("current", PASSWORD), ("new", "another pass 1"), ("repeat", "another pass 2")])
        .await;
    assert_eq!(p.status, 422);
    let p = d
        .post(
            "/admin/password",
            &[("current", "not it at all"), ("new", "another pass 1"), ("repeat", "another pass 1")],
        )
        .await;
    assert_eq!(p.status, 403);
    let p = d.post("/admin/password", &[("current", PASSWORD), ("new", "short"), ("repeat", "short")]).await;
    assert_eq!(p.status, 422);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM admin_credentials").await, 0);
    let mut e = Browser::logged_in(&app.address, PASSWORD).await;
    d.get("/admin/account").await;
    let p = d
        .post("/admin/password", &[("current", PASSWORD), ("new", "another pass 1"), ("repeat", "another pass 1")])
        .await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/admin/login?done=password")));
    assert_eq!(e.get("/admin").await.status, 401, "sessions from before end");
    assert_eq!(Browser::new(&app.address).log_in(PASSWORD).await.status, 401, "the old password");
    let mut f = Browser::logged_in(&app.address, "another pass 1").await;
    assert_eq!(f.get("/admin").await.status, 200);
    // Nothing secret is stored: sessions by hash, the password as Argon2.
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM admin_credentials WHERE password_hash LIKE '$argon2id$%'").await,
        1
    );
    let cookie = f.cookies.get("marquee_admin").unwrap().clone();
    let secret = cookie.rsplit('.').next().unwrap().to_string();
    assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM admin_sessions WHERE id LIKE '%{secret}%'")).await, 0);
}

#[actix_web::test]
async fn admin_session_cookies_are_http_only_same_site_and_secure_behind_https() {
    let app = spawn_app_with(behind_proxy).await;
    let mut b = Browser::new(&app.address);
    b.get("/admin/login").await;
    let client = awc::Client::builder().disable_redirects().finish();
    let csrf = b.csrf.clone();
    let body = format!("password={}&csrf_token={csrf}", PASSWORD.replace(' ', "+"));
    let cookie = format!("marquee_csrf={}", b.cookies["marquee_csrf"]);
    for (proto, secure) in [("https", true), ("http", false)] {
        let res = client
            .post(app.url("/admin/login"))
            .insert_header(("Cookie", cookie.as_str()))
            .insert_header(("X-Forwarded-Proto", proto))
            .content_type("application/x-www-form-urlencoded")
            .send_body(body.clone())
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let set = res
            .headers()
            .get_all("set-cookie")
            .map(|c| c.to_str().unwrap().to_string())
            .find(|c| c.starts_with("marquee_admin="))
            .unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        assert_eq!(set.contains("Secure"), secure, "{set}");
        assert!(set.contains("Max-Age=43200"), "twelve hours: {set}");
    }
}
