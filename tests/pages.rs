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

/// The local date a show is listed under.
async fn listed_date(app: &TestApp, show: i64) -> chrono::NaiveDate {
    use diesel::prelude::*;
    use marquee::db::schema::shows;
    app.state.db.run(move |c| Ok(shows::table.find(show).select(shows::local_date).first(c)?)).await.unwrap()
}

/// The state a seat has on a show page (its `title` ends with it).
fn seat_state(html: &str, seat: &str) -> String {
    between(html, &format!("title=\"{seat} · "), "\"").rsplit(" · ").next().unwrap().to_string()
}

/// The listing is rendered once per catalog version, and a catalog entry appended through
/// the log changes the version: the very next request shows the change, whether it adds a
/// show or takes one out of the feed.
#[actix_web::test]
async fn a_catalog_change_shows_on_the_very_next_listing_request() {
    use marquee::wal::Change;
    let app = spawn_app().await;
    let first = app.seed_show(4, 4, Duration::hours(30)).await;
    let date = listed_date(&app, first).await;
    let dated = format!("/?date={date}");
    let mut b = Browser::new(&app);
    for path in ["/", dated.as_str()] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&format!("Test Movie {}", first - 3)), "{path}: {}", page.body);
        assert!(page.body.contains("1 movie<"), "{path}");
        assert_eq!(b.get(path).await.body, page.body, "{path}: the same page again");
    }

    // A second movie on the same day, appended through the writer as an import does.
    let (mut change, second) = common::show_change(5000, 4, 4, Duration::hours(30));
    change.shows[0].local_date = date;
    app.state.writer.append(Change::Catalog(Box::new(change.clone()))).await.unwrap();
    for path in ["/", dated.as_str()] {
        let page = b.get(path).await;
        assert!(page.body.contains("Test Movie 5000"), "{path}: the new movie at once: {}", page.body);
        assert!(page.body.contains(&format!("Test Movie {}", first - 3)), "{path}");
        assert!(page.body.contains("2 movies<"), "{path}");
    }

    // Out of the feed: gone from the very next page.
    let withdrawn = marquee::wal::change::CatalogChange { shows_out_of_feed: vec![second], ..Default::default() };
    app.state.writer.append(Change::Catalog(Box::new(withdrawn))).await.unwrap();
    for path in ["/", dated.as_str()] {
        let page = b.get(path).await;
        assert!(!page.body.contains("Test Movie 5000"), "{path}: withdrawn at once");
        assert!(page.body.contains("1 movie<"), "{path}");
    }

    // A write that is not a catalog entry (a booking) leaves the listing as it was.
    let before = b.get(&dated).await.body;
    app.book(first, &["A1"]).await;
    assert_eq!(b.get(&dated).await.body, before);
}

/// Each date, theater and search is its own page: asking for one never gets another's,
/// in whatever order they are asked for, again and again.
#[actix_web::test]
async fn the_listing_never_serves_one_date_theater_or_search_for_another() {
    let app = spawn_app().await;
    let early = app.seed_show(4, 4, Duration::hours(30)).await;
    let late = app.seed_show(4, 4, Duration::hours(54)).await;
    let (d1, d2) = (listed_date(&app, early).await, listed_date(&app, late).await);
    assert_ne!(d1, d2);
    let (m1, m2) = (format!("Test Movie {}", early - 3), format!("Test Movie {}", late - 3));
    let (t1, t2) = (early - 2, late - 2);
    let cases: Vec<(String, Option<&str>, Option<&str>, String)> = vec![
        (format!("/?date={d1}"), Some(&m1), Some(&m2), d1.to_string()),
        (format!("/?date={d2}"), Some(&m2), Some(&m1), d2.to_string()),
        ("/".into(), Some(&m1), Some(&m2), d1.to_string()),
        (format!("/?date={d1}&theater={t1}"), Some(&m1), Some(&m2), d1.to_string()),
        (format!("/?date={d1}&theater={t2}"), None, Some(&m1), d1.to_string()),
        (format!("/?date={d2}&theater={t2}"), Some(&m2), Some(&m1), d2.to_string()),
        (format!("/?date={d1}&q=test+movie"), Some(&m1), Some(&m2), d1.to_string()),
        (format!("/?date={d1}&q=nothing+like+it"), None, Some(&m1), d1.to_string()),
        (format!("/?date={d2}&q={}", late - 3), Some(&m2), Some(&m1), d2.to_string()),
        (format!("/?date={d2}&q={}", early - 3), None, Some(&m2), d2.to_string()),
    ];
    let mut b = Browser::new(&app);
    for round in 0..3 {
        let order: Vec<usize> = if round == 1 { (0..cases.len()).rev().collect() } else { (0..cases.len()).collect() };
        for i in order {
            let (path, shown, hidden, date) = &cases[i];
            let page = b.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            match shown {
                Some(m) => assert!(page.body.contains(*m), "{path} (round {round}) lists {m}"),
                None => assert!(page.body.contains("No movies found."), "{path} (round {round}) lists nothing"),
            }
            if let Some(m) = hidden {
                assert!(!page.body.contains(*m), "{path} (round {round}) does not list {m}");
            }
            assert!(page.body.contains(&format!("<option value=\"{date}\" selected>")), "{path}: {date} selected");
        }
    }
    let searched = b.get(&format!("/?date={d1}&q=nothing+like+it")).await;
    assert!(searched.body.contains("value=\"nothing like it\""), "the search box keeps the text");
    let selected = b.get(&format!("/?date={d1}&theater={t2}")).await;
    assert!(selected.body.contains(&format!("<option value=\"{t2}\" selected>")), "the theater stays selected");
}

/// A show page is rendered once per snapshot of its seat map: a hold, a booking and a
/// cancel each show on the next request, every visitor gets a token of their own, and a
/// show that starts says so on the next request.
#[actix_web::test]
async fn a_hold_a_booking_and_a_cancel_show_on_the_next_show_page_request() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 4, Duration::days(1)).await;
    let path = format!("/shows/{show}");
    let (mut ann, mut bob) = (Browser::new(&app), Browser::new(&app));
    let (a, b) = (ann.get(&path).await, bob.get(&path).await);
    assert_eq!((seat_state(&a.body, "A1"), seat_state(&b.body, "A1")), ("free".into(), "free".into()));
    let (ta, tb) = (token(&a.body), token(&b.body));
    assert_ne!(ta, tb, "each visitor has a token of their own");
    assert_eq!(ann.cookie.as_deref(), Some(format!("marquee_csrf={ta}").as_str()));
    assert_eq!(bob.cookie.as_deref(), Some(format!("marquee_csrf={tb}").as_str()));
    assert_eq!(token(&ann.get(&path).await.body), ta, "the same visitor keeps their token");

    let (status, hold) = app.hold(show, &["A1", "A2"]).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let page = bob.get(&path).await.body;
    assert_eq!((seat_state(&page, "A1"), seat_state(&page, "A3")), ("held".into(), "free".into()));
    let (status, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    assert_eq!(status.as_u16() / 100, 2, "{booking}");
    assert_eq!(seat_state(&bob.get(&path).await.body, "A1"), "booked");
    let code = booking["code"].as_str().unwrap();
    let (status, _) =
        app.post_json(&format!("/api/bookings/{code}/cancel"), &serde_json::json!({"email": "ann@example.com"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seat_state(&bob.get(&path).await.body, "A1"), "free");
    // Bob's form still carries his own token, and a hold through it works.
    let page = bob.get(&path).await;
    let held = bob.post(&format!("/shows/{show}/hold"), &[("seat", "B2"), ("csrf_token", &token(&page.body))]).await;
    assert_eq!(held.status, StatusCode::SEE_OTHER, "{}", held.body);
    assert_eq!(seat_state(&ann.get(&path).await.body, "B2"), "held");

    // A show about to start: bookable now, and not on the first request after its start.
    let soon = app.seed_show(2, 2, Duration::seconds(4)).await;
    let soon_path = format!("/shows/{soon}");
    let before = ann.get(&soon_path).await.body;
    assert!(before.contains("id=\"seat-form\"") && !before.contains("already started"));
    let starts = app.state.shows.get(marquee::domain::ShowId(soon)).send(marquee::actors::show::GetSeatMap).await;
    let starts = starts.unwrap().unwrap().starts_at;
    let wait = (starts - chrono::Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(50);
    actix_rt::time::sleep(wait).await;
    let after = ann.get(&soon_path).await.body;
    assert!(after.contains("already started") && !after.contains("id=\"seat-form\""), "{after}");
}

/// The listing's "Next:" is the first show still to come: a cached listing gives way to a
/// new one on the first request after a show it lists starts.
#[actix_web::test]
async fn the_listing_moves_on_to_the_next_show_once_one_starts() {
    use marquee::catalog::zone::local_time_label;
    use marquee::wal::Change;
    let app = spawn_app().await;
    let (mut change, first) = common::show_change(7000, 2, 2, Duration::seconds(3));
    let mut later = change.shows[0].clone();
    later.id = first + 1;
    later.starts_at_utc += Duration::seconds(60);
    later.starts_at_local += Duration::seconds(60);
    change.shows.push(later.clone());
    app.state.writer.append(Change::Catalog(Box::new(change.clone()))).await.unwrap();
    let la = chrono_tz::America::Los_Angeles;
    let next = |utc| format!("Next: {} at Test Theater", local_time_label(la, utc));
    let path = format!("/?date={}", change.shows[0].local_date);
    let mut b = Browser::new(&app);
    let before = b.get(&path).await.body;
    assert!(before.contains(&next(change.shows[0].starts_at_utc)), "{before}");
    assert_eq!(b.get(&path).await.body, before);
    let wait = (change.shows[0].starts_at_utc.and_utc() - chrono::Utc::now()).to_std().unwrap_or_default();
    actix_rt::time::sleep(wait + std::time::Duration::from_millis(50)).await;
    let after = b.get(&path).await.body;
    assert!(after.contains(&next(later.starts_at_utc)), "{after}");
    assert!(after.contains("2 shows"), "both still listed for the day");
}
