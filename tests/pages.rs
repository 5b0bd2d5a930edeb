//! The site through plain forms, as a browser without JavaScript uses it.
mod common;

use actix_web::http::StatusCode;
use chrono::Duration;
use common::{spawn_app, TestApp};

/// A browser session: keeps the CSRF cookie and reads the form token from pages.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let mut req = self.app.client.get(self.app.url(path));
        if let Some(c) = &self.cookie {
            req = req.insert_header(("Cookie", c.clone()));
        }
        let res = req.send().await.unwrap();
        self.read(res).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut req = self.app.client.post(self.app.url(path));
        if let Some(c) = &self.cookie {
            req = req.insert_header(("Cookie", c.clone()));
        }
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let res = req.content_type("application/x-www-form-urlencoded").send_body(body).await.unwrap();
        self.read(res).await
    }

    async fn read(
        &mut self,
        mut res: awc::ClientResponse<
            impl futures::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>> + Unpin,
        >,
    ) -> Answer {
        if let Some(c) = res.headers().get("set-cookie") {
            self.cookie = Some(c.to_str().unwrap().split(';').next().unwrap().to_string());
        }
        let location = res.headers().get("location").map(|l| l.to_str().unwrap().to_string());
        let body = String::from_utf8(res.body().limit(4 << 20).await.unwrap().to_vec()).unwrap();
        Answer { status: res.status(), location, body }
    }
}

fn token(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").expect("a form with a CSRF token")
        + "name=\"csrf_token\" value=\"".len();
    html[at..at + 32].to_string()
}

fn between<'s>(html: &'s str, start: &str, end: &str) -> &'s str {
    let a = html.find(start).unwrap_or_else(|| panic!("'{start}' not in page")) + start.len();
    let b = html[a..].find(end).unwrap() + a;
    &html[a..b]
}

#[actix_web::test]
async fn the_whole_flow_works_with_plain_forms() {
    let app = spawn_app().await;
    let show = app.seed_show(6, 10, Duration::days(1)).await;
    let mut b = Browser::new(&app);

    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    let page = b.get(&format!("/shows/{show}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-seat=\"C7\""));
    let csrf = token(&page.body);

    let held = b.post(&format!("/shows/{show}/hold"), &[("seat", "C7"), ("seat", "C8"), ("csrf_token", &csrf)]).await;
    assert_eq!(held.status, StatusCode::SEE_OTHER, "{}", held.body);
    let hold_path = held.location.unwrap();
    let checkout = b.get(&hold_path).await;
    assert_eq!(checkout.status, StatusCode::OK);
    assert!(checkout.body.contains("C7") && checkout.body.contains("$25.00"));

    // A bad email re-renders the form with the error and keeps the name.
    let wrong =
        b.post(&format!("{hold_path}/confirm"), &[("name", "Ann"), ("email", "nope"), ("csrf_token", &csrf)]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("not a valid email"));

    let done = b
        .post(
            &format!("{hold_path}/confirm"),
            &[("name", "<script>alert(1)</script>"), ("email", "ann@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(!done.body.contains("<script>alert(1)</script>"), "the name must be escaped");
    assert!(done.body.contains("&lt;script&gt;"));
    let code = between(&done.body, "data-booking-code=\"", "\"").to_string();
    assert_eq!(code.len(), 8);

    let found = b
        .post(
            "/bookings/lookup",
            &[("code", &code.to_lowercase()), ("email", "ANN@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.body.contains(&code));
    assert!(!found.body.contains("<script>alert(1)</script>"));

    let cancelled =
        b.post(&format!("/bookings/{code}/cancel"), &[("email", "ann@example.com"), ("csrf_token", &csrf)]).await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert!(cancelled.body.to_lowercase().contains("cancelled"));
    assert_eq!(app.seat_states(show).await["C7"], "free");
}

#[actix_web::test]
async fn forms_without_their_csrf_token_are_refused() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let mut b = Browser::new(&app);
    b.get(&format!("/shows/{show}")).await;
    let before = app.write_footprint().await;
    let no_token = b.post(&format!("/shows/{show}/hold"), &[("seat", "A1")]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let wrong = b
        .post(&format!("/shows/{show}/hold"), &[("seat", "A1"), ("csrf_token", "ABCDEFGHJKMNPQRSTWXYZ23456789ABC")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // A browser without the cookie (another site posting) is refused too.
    let mut stranger = Browser::new(&app);
    let page = b.get(&format!("/shows/{show}")).await;
    let forged =
        stranger.post(&format!("/shows/{show}/hold"), &[("seat", "A1"), ("csrf_token", &token(&page.body))]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("<html") || forged.body.contains("<!doctype") || forged.body.contains("<!DOCTYPE"));
    assert_eq!(app.write_footprint().await, before);
}

#[actix_web::test]
async fn taken_seats_and_bad_pages_get_clear_pages() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    app.hold(show, &["A1"]).await;
    let mut b = Browser::new(&app);
    let page = b.get(&format!("/shows/{show}")).await;
    let csrf = token(&page.body);
    let taken = b.post(&format!("/shows/{show}/hold"), &[("seat", "A1"), ("csrf_token", &csrf)]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.body.contains("A1") && taken.body.contains("taken"));
    let none = b.post(&format!("/shows/{show}/hold"), &[("csrf_token", &csrf)]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    for path in ["/shows/99999", "/shows/x", "/movies/99999", "/holds/garbage", "/no/such/page"] {
        let res = b.get(path).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert!(res.body.contains("Not found"), "{path}");
    }
    let bad_date = b.get("/?date=yesterday").await;
    assert_eq!(bad_date.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn an_expired_hold_gets_its_own_page_that_leads_back_to_the_seats() {
    let app = common::spawn_app_with(|s| s.hold_duration = Duration::milliseconds(300)).await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let mut b = Browser::new(&app);
    let page = b.get(&format!("/shows/{show}")).await;
    assert!(page.body.contains("/assets/live.js"), "the show page loads the live map");
    let csrf = token(&page.body);
    let held = b.post(&format!("/shows/{show}/hold"), &[("seat", "B2"), ("csrf_token", &csrf)]).await;
    let hold_path = held.location.expect("a redirect to the hold");
    actix_rt::time::sleep(std::time::Duration::from_millis(600)).await;

    let gone = b.get(&hold_path).await;
    assert_eq!(gone.status, StatusCode::GONE);
    assert!(gone.body.contains("Your hold has expired"), "{}", gone.body);
    assert!(gone.body.contains(&format!("href=\"/shows/{show}\"")));
    let late = b
        .post(&format!("{hold_path}/confirm"), &[("name", "Ann"), ("email", "ann@example.com"), ("csrf_token", &csrf)])
        .await;
    assert_eq!(late.status, StatusCode::GONE);
    assert!(late.body.contains("Your hold has expired"));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bookings").await, 0);
    // The actor frees the seats on its timer; wait for it, within a bound.
    let mut tries = 0;
    while app.seat_states(show).await["B2"] != "free" {
        tries += 1;
        assert!(tries < 100, "B2 was never freed");
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A theater's show times are its own wall clock, stored as UTC: a theater in New York (by
/// its coordinates) shows "19:15 EST" (or EDT), whatever FEED_TIMEZONE says, and a theater
/// the feed gives no coordinates (0/0) falls back to FEED_TIMEZONE (Tokyo here).
#[actix_web::test]
async fn each_theater_shows_its_own_local_time_with_the_zone() {
    use chrono::{NaiveTime, TimeZone};
    use diesel::prelude::*;
    use marquee::db::schema::{shows, theaters};
    use marquee::importer::{CatalogFeed, MovieShowtimes, TheaterFeed, TheaterListing};

    let app = common::spawn_app_with(|s| s.flixster.feed_timezone = chrono_tz::Asia::Tokyo).await;
    let date = (chrono::Utc::now() + Duration::days(3)).date_naive();
    let evening = NaiveTime::from_hms_opt(19, 15, 0).unwrap();
    let theater = |id: &str, name: &str, latitude: f64, longitude: f64| TheaterFeed {
        theater: TheaterListing { external_id: id.into(), tid: id.into(), name: name.into(), latitude, longitude },
        movies: vec![MovieShowtimes {
            title: format!("Evening at {name}"),
            duration_minutes: Some(100),
            poster_url: None,
            date,
            times: vec![evening],
        }],
    };
    let feed = CatalogFeed {
        theaters: vec![
            theater("ny1", "Broadway Cinema", 40.7580, -73.9855),
            theater("nz1", "Nowhere Cinema", 0.0, 0.0),
        ],
    };
    let (db, writer) = (&app.state.db, &app.state.writer);
    marquee::catalog::import_feed(db, writer, Some(&app.state.shows), feed, chrono_tz::Asia::Tokyo)
        .await
        .expect("the import");

    let stored: Vec<(String, String, i64, i64, chrono::NaiveDateTime, chrono::NaiveDateTime)> = app
        .state
        .db
        .run(|c| {
            Ok(shows::table
                .inner_join(theaters::table)
                .select((
                    theaters::external_id,
                    theaters::timezone,
                    shows::id,
                    shows::movie_id,
                    shows::starts_at_local,
                    shows::starts_at_utc,
                ))
                .order(theaters::external_id.asc())
                .load(c)?)
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");
    let local = date.and_time(evening);
    for ((id, zone, _, _, at_local, at_utc), (want_id, want_zone)) in
        stored.iter().zip([("ny1", chrono_tz::America::New_York), ("nz1", chrono_tz::Asia::Tokyo)])
    {
        assert_eq!((id.as_str(), zone.as_str()), (want_id, want_zone.name()));
        assert_eq!(*at_local, local);
        assert_eq!(*at_utc, want_zone.from_local_datetime(&local).unwrap().naive_utc(), "{id} stored as UTC");
    }
    let ny_label =
        if chrono_tz::America::New_York.from_local_datetime(&local).unwrap().format("%Z").to_string() == "EDT" {
            "19:15 EDT"
        } else {
            "19:15 EST"
        };

    let mut b = Browser::new(&app);
    let (_, _, ny_show, ny_movie, _, _) = &stored[0];
    let movie = b.get(&format!("/movies/{ny_movie}")).await;
    assert_eq!(movie.status, StatusCode::OK);
    assert!(movie.body.contains(ny_label), "the movie page shows New York's time: {}", movie.body);
    assert!(!movie.body.contains("PST") && !movie.body.contains("PDT"), "no Los Angeles time on the page");
    let show = b.get(&format!("/shows/{ny_show}")).await;
    assert!(show.body.contains(ny_label), "the show page shows New York's time: {}", show.body);
    let (_, _, nz_show, _, _, _) = &stored[1];
    let show = b.get(&format!("/shows/{nz_show}")).await;
    assert!(show.body.contains("19:15 JST"), "no coordinates: FEED_TIMEZONE's time: {}", show.body);
    let home = b.get(&format!("/?date={date}")).await;
    assert!(home.body.contains(&format!("{ny_label} at Broadway Cinema")), "the listing: {}", home.body);
}

#[actix_web::test]
async fn the_show_page_finds_the_best_seats_and_refuses_a_bad_count() {
    let app = spawn_app().await;
    let show = app.seed_show(6, 10, Duration::days(1)).await;
    let mut b = Browser::new(&app);
    let page = b.get(&format!("/shows/{show}")).await;
    assert!(page.body.contains("id=\"best-form\""), "the form is there without JS");
    assert!(page.body.contains("I need a wheelchair space"));
    let csrf = token(&page.body);

    let bad = b.post(&format!("/shows/{show}/hold"), &[("best", "11"), ("csrf_token", &csrf)]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("ask for 1 to 10 seats, not 11"), "{}", bad.body);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM holds").await, 0);

    let held =
        b.post(&format!("/shows/{show}/hold"), &[("best", "3"), ("category", "premium"), ("csrf_token", &csrf)]).await;
    assert_eq!(held.status, StatusCode::SEE_OTHER, "{}", held.body);
    let checkout = b.get(&held.location.unwrap()).await;
    // Six rows: the best are two thirds back (row D, premium from row D on), in the middle.
    assert!(
        checkout.body.contains("D4") && checkout.body.contains("D5") && checkout.body.contains("D6"),
        "{}",
        checkout.body
    );
}
