//! The admin area over HTTP: the password gate, sessions, CSRF, imports and bookings.
mod common;

use actix_web::http::StatusCode;
use chrono::Duration;
use common::{spawn_app, spawn_app_with, FixtureApi, TestApp};
use marquee::actors::importer::CurrentImport;
use marquee::domain::AdminPassword;
use serde_json::Value;
use std::collections::BTreeMap;

const PASSWORD: &str = "correct horse battery";

/// A browser: keeps every cookie it is given (the CSRF cookie, the admin session).
struct Browser<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> Answer {
        let req = self.app.client.get(self.app.url(path)).insert_header(("Cookie", self.cookie_header()));
        let res = req.send().await.unwrap();
        self.read(res).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = self.app.client.post(self.app.url(path)).insert_header(("Cookie", self.cookie_header()));
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let res = req.content_type("application/x-www-form-urlencoded").send_body(body).await.unwrap();
        self.read(res).await
    }

    async fn post_api(&mut self, path: &str, csrf: Option<&str>) -> Answer {
        let mut req = self.app.client.post(self.app.url(path)).insert_header(("Cookie", self.cookie_header()));
        if let Some(t) = csrf {
            req = req.insert_header(("X-CSRF-Token", t));
        }
        let res = req.send().await.unwrap();
        self.read(res).await
    }

    async fn read(
        &mut self,
        mut res: awc::ClientResponse<
            impl futures::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>> + Unpin,
        >,
    ) -> Answer {
        let set_cookies: Vec<String> =
            res.headers().get_all("set-cookie").map(|c| c.to_str().unwrap().to_string()).collect();
        for c in &set_cookies {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        let body = String::from_utf8(res.body().limit(4 << 20).await.unwrap().to_vec()).unwrap();
        Answer { status: res.status(), location, set_cookies, body }
    }

    /// Loads the login page and logs in.
    async fn log_in(&mut self, password: &str) -> Answer {
        let page = self.get("/admin/login").await;
        let csrf = token(&page.body);
        self.post("/admin/login", &[("password", password), ("next", "/admin"), ("csrf_token", &csrf)]).await
    }
}

fn token(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").expect("a form with a CSRF token")
        + "name=\"csrf_token\" value=\"".len();
    html[at..at + 32].to_string()
}

async fn admin_app() -> TestApp {
    spawn_app_with(|s| s.admin_password = Some(AdminPassword::hash(PASSWORD).unwrap())).await
}

#[actix_web::test]
async fn without_admin_password_the_admin_area_is_closed_and_says_how_to_open_it() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    for path in ["/admin", "/admin/login", "/admin/shows", "/admin/shows/1"] {
        let res = b.get(path).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
        assert!(res.body.contains("ADMIN_PASSWORD"), "{path}: {}", res.body);
    }
    let res = b.post("/admin/login", &[("password", PASSWORD)]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    for path in ["/admin/api/imports", "/admin/api/imports/current"] {
        let res = b.get(path).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
        assert!(res.json()["error"].as_str().unwrap().contains("ADMIN_PASSWORD"));
        assert!(res.json().get("job").is_none() && res.json().get("jobs").is_none());
    }
    assert_eq!(b.post_api("/admin/api/imports", None).await.status, StatusCode::FORBIDDEN);
    assert!(app.state.importer.send(CurrentImport).await.unwrap().is_none(), "no import started");
}

#[actix_web::test]
async fn no_entry_without_the_password() {
    let app = admin_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let mut b = Browser::new(&app);

    for path in ["/admin", "/admin/shows", &format!("/admin/shows/{show}")] {
        let res = b.get(path).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(res.body.contains("type=\"password\""), "{path}: the login form");
        assert!(!res.body.contains("Test Movie") && !res.body.contains("Import now"), "{path}: no data");
    }
    for path in ["/admin/api/imports", "/admin/api/imports/current", "/admin/api/imports/1", "/admin/api/nothing"] {
        let res = b.get(path).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(res.json().get("job").is_none() && res.json().get("jobs").is_none(), "{path}");
    }
    // A form posted without a session starts nothing, token or not.
    let page = b.get("/admin/login").await;
    let csrf = token(&page.body);
    assert_eq!(b.post("/admin/imports", &[("csrf_token", &csrf)]).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(b.post_api("/admin/api/imports", Some(&csrf)).await.status, StatusCode::UNAUTHORIZED);
    assert!(app.state.importer.send(CurrentImport).await.unwrap().is_none());

    // A made-up session cookie is no session.
    b.cookies.insert("marquee_admin".into(), "4102444800.forged".into());
    assert_eq!(b.get("/admin").await.status, StatusCode::UNAUTHORIZED);
    b.cookies.remove("marquee_admin");

    // A wrong password, and a login without its CSRF token, are refused.
    let wrong = b.log_in("incorrect horse").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong password"));
    assert!(!b.cookies.contains_key("marquee_admin"));
    let no_token = b.post("/admin/login", &[("password", PASSWORD)]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("marquee_admin"));

    // The password opens a session: a signed, HttpOnly, SameSite=Strict cookie for /admin.
    let ok = b.log_in(PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/admin"));
    let session = ok.set_cookies.iter().find(|c| c.starts_with("marquee_admin=")).expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age="] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains(PASSWORD));
    let dashboard = b.get("/admin").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains("Import now") && dashboard.body.contains("id=\"cluster\""));
    // The cluster card lists the log's last entries: here the seeded show's catalog entry.
    assert!(dashboard.body.contains("id=\"log-entries\""), "{}", dashboard.body);
    assert!(
        dashboard.body.contains("<td>catalog</td>") && dashboard.body.contains("(this node)"),
        "{}",
        dashboard.body
    );
    let current = b.get("/admin/api/imports/current").await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(current.json(), serde_json::json!({ "job": null }));

    // Logging out ends it.
    let csrf = token(&dashboard.body);
    let out = b.post("/admin/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!b.cookies.contains_key("marquee_admin"));
    assert_eq!(b.get("/admin").await.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn admin_forms_without_their_csrf_token_are_refused() {
    let api = FixtureApi::start();
    let app = spawn_app_with(|s| {
        api.configure(s);
        s.admin_password = Some(AdminPassword::hash(PASSWORD).unwrap());
    })
    .await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["A1"]).await;
    let (_, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    let code = booking["code"].as_str().unwrap().to_string();

    let mut b = Browser::new(&app);
    assert_eq!(b.log_in(PASSWORD).await.status, StatusCode::SEE_OTHER);
    let forged = "ABCDEFGHJKMNPQRSTWXYZ23456789ABC";
    for form in [vec![], vec![("csrf_token", forged)]] {
        let res = b.post("/admin/imports", &form).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{form:?}");
        let res = b.post(&format!("/admin/bookings/{code}/cancel"), &form).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{form:?}");
        assert_eq!(b.post("/admin/logout", &form).await.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(b.post_api("/admin/api/imports", None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(b.post_api("/admin/api/imports", Some(forged)).await.status, StatusCode::FORBIDDEN);
    assert!(app.state.importer.send(CurrentImport).await.unwrap().is_none(), "no import started");
    let (_, found) = app.get_json(&format!("/api/bookings/{code}?email=ann@example.com")).await;
    assert_eq!(found["state"], "confirmed", "the booking is not cancelled");
    assert!(b.cookies.contains_key("marquee_admin"), "still logged in");
    api.stop().await;
}

#[actix_web::test]
async fn an_import_started_from_the_page_is_seen_to_finish() {
    let api = FixtureApi::start();
    let app = spawn_app_with(|s| {
        api.configure(s);
        s.admin_password = Some(AdminPassword::hash(PASSWORD).unwrap());
    })
    .await;
    let mut b = Browser::new(&app);
    assert_eq!(b.log_in(PASSWORD).await.status, StatusCode::SEE_OTHER);
    let page = b.get("/admin").await;
    assert!(page.body.contains("No import has run"));
    let started = b.post("/admin/imports", &[("csrf_token", &token(&page.body))]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);

    // What the page's script polls, until the job is done (at most two minutes).
    let mut states = Vec::new();
    let job = loop {
        let res = b.get("/admin/api/imports/current").await;
        assert_eq!(res.status, StatusCode::OK);
        let job = res.json()["job"].clone();
        states.push(job["state"].as_str().unwrap().to_string());
        if !job["active"].as_bool().unwrap() {
            break job;
        }
        assert!(states.len() < 1200, "the import did not finish: {job}");
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["percent"], 100);
    assert_eq!(job["trigger"], "admin");
    assert_eq!((job["theaters_done"].as_u64(), job["theaters_total"].as_u64()), (Some(110), Some(110)));
    assert_eq!(job["counts"]["theaters"]["created"], 110);
    assert!(job["counts"]["shows"]["created"].as_u64().unwrap() > 3000);
    assert!(job["error"].is_null());

    let page = b.get("/admin").await;
    assert!(page.body.contains("badge-done"), "the history shows it");
    let history = b.get("/admin/api/imports").await.json();
    assert_eq!(history["jobs"][0]["id"], job["id"]);

    // Through the JSON API too, with the token in a header.
    let res = b.post_api("/admin/api/imports", Some(&token(&page.body))).await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let id = res.json()["job"]["id"].as_u64().unwrap();
    let finished = common::wait_for_import(&app, id).await;
    assert_eq!(finished.counts.unwrap().shows.created, 0, "nothing new the second time");
    api.stop().await;
}

#[actix_web::test]
async fn bookings_per_show_and_an_admin_cancel() {
    let app = admin_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let other = app.seed_show(4, 8, Duration::days(2)).await;
    let (_, hold) = app.hold(show, &["B3", "B4"]).await;
    let (status, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Bea <b>", "bea@example.com").await;
    assert_eq!(status, StatusCode::CREATED);
    let code = booking["code"].as_str().unwrap().to_string();
    let total = booking["total_cents"].as_i64().unwrap();
    app.hold(show, &["A1"]).await;

    let mut b = Browser::new(&app);
    assert_eq!(b.log_in(PASSWORD).await.status, StatusCode::SEE_OTHER);
    let list = b.get("/admin/shows").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains(&format!("/admin/shows/{show}\"")), "the show with bookings is listed");
    assert!(!list.body.contains(&format!("/admin/shows/{other}\"")), "a show without any is not");
    let all = b.get("/admin/shows?all=1").await;
    assert!(all.body.contains(&format!("/admin/shows/{other}\"")));
    let none = b.get("/admin/shows?q=no%20such%20movie").await;
    assert!(none.body.contains("No shows found"));
    // Times are on the theater's clock (Los Angeles), with the zone's abbreviation.
    let utc: chrono::NaiveDateTime = app
        .state
        .db
        .run(move |c| {
            use diesel::prelude::*;
            use marquee::db::schema::shows;
            Ok(shows::table.find(show).select(shows::starts_at_utc).first(c)?)
        })
        .await
        .unwrap();
    let at_la = chrono::TimeZone::from_utc_datetime(&chrono_tz::America::Los_Angeles, &utc);
    let when = at_la.format("%a %-d %b %H:%M %Z").to_string();
    assert!(when.ends_with(" PST") || when.ends_with(" PDT"), "{when}");
    assert!(list.body.contains(&when), "the list shows {when}: {}", list.body);

    let page = b.get(&format!("/admin/shows/{show}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let figure = |name: &str| {
        let at = page.body.find(&format!("data-figure=\"{name}\">")).unwrap() + name.len() + 15;
        page.body[at..].split('<').next().unwrap().to_string()
    };
    assert_eq!((figure("sold"), figure("held"), figure("free")), ("2".into(), "1".into(), "29".into()));
    assert_eq!(figure("revenue"), format!("${}.{:02}", total / 100, total % 100));
    assert!(page.body.contains(&code) && page.body.contains("bea@example.com"));
    assert!(page.body.contains("Bea &lt;b&gt;"), "names are escaped");
    assert!(page.body.contains(&at_la.format("%a %-d %b %Y %H:%M %Z").to_string()), "the show's time and zone");

    let cancelled = b.post(&format!("/admin/bookings/{code}/cancel"), &[("csrf_token", &token(&page.body))]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER, "{}", cancelled.body);
    let page = b.get(cancelled.location.as_deref().unwrap()).await;
    assert!(page.body.contains(&format!("Booking {code} is cancelled")));
    let (_, found) = app.get_json(&format!("/api/bookings/{code}?email=bea@example.com")).await;
    assert_eq!(found["state"], "cancelled");
    let seats = app.seat_states(show).await;
    assert_eq!((seats["B3"].as_str(), seats["B4"].as_str()), ("free", "free"));
    let missing = b.post("/admin/bookings/ZZZZZZZZ/cancel", &[("csrf_token", &token(&page.body))]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
