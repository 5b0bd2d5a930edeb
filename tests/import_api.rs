//! Catalog imports through the real HTTP client against the fixture API, into a real node.
mod common;

use actix_web::http::StatusCode;
use chrono::{NaiveDateTime, TimeZone};
use common::{fixture_day, run_import, sample_dir, spawn_app_with, wait_for_import, FixtureApi, TestApp};
use diesel::prelude::*;
use marquee::actors::importer::{ImportJob, JobState, Trigger};
use marquee::catalog::movie_key;
use marquee::catalog::zone::theater_zone;
use marquee::db::schema::{bookings, movies, shows, theaters};
use marquee::importer::{load_dir, Fault, FixtureMovie};
use marquee::web::WebError;
use std::collections::HashSet;
use std::time::Duration;

/// What the catalog holds, down to every row's values, and the length of the write log.
async fn catalog_state(app: &TestApp) -> Vec<i64> {
    let queries = [
        "SELECT COUNT(*) AS n FROM write_log WHERE kind NOT IN ('membership', 'epoch_start')",
        "SELECT COUNT(*) AS n FROM layouts",
        "SELECT COUNT(*) AS n FROM theaters",
        "SELECT COUNT(*) AS n FROM movies",
        "SELECT COUNT(*) AS n FROM shows",
        "SELECT CAST(COALESCE(SUM(CRC32(CONCAT_WS('|', id, external_id, tid, name, latitude, longitude, layout_id))), 0)
         AS SIGNED) AS n FROM theaters",
        "SELECT CAST(COALESCE(SUM(CRC32(CONCAT_WS('|', id, external_key, title, duration_minutes, poster_url))), 0)
         AS SIGNED) AS n FROM movies",
        "SELECT CAST(COALESCE(SUM(CRC32(CONCAT_WS('|', id, theater_id, movie_id, layout_id, starts_at_local,
         starts_at_utc, in_feed))), 0) AS SIGNED) AS n FROM shows",
    ];
    let mut state = Vec::new();
    for q in queries {
        state.push(app.count(q).await);
    }
    state
}

/// Theaters, movies and shows the bundled data set should become.
fn expected_rows() -> (usize, usize, usize) {
    let feed = load_dir(&sample_dir(), Some(fixture_day())).unwrap();
    let movies: HashSet<String> = feed.theaters.iter().flat_map(|t| &t.movies).map(|m| movie_key(&m.title)).collect();
    let mut shows = HashSet::new();
    for t in &feed.theaters {
        let tz = theater_zone(t.theater.latitude, t.theater.longitude, marquee::catalog::DEFAULT_FEED_TIMEZONE);
        for m in &t.movies {
            for time in &m.times {
                let local = m.date.and_time(*time);
                if tz.from_local_datetime(&local).earliest().is_some() {
                    shows.insert((t.theater.external_id.clone(), movie_key(&m.title), local));
                }
            }
        }
    }
    (feed.theaters.len(), movies.len(), shows.len())
}

fn done(job: &ImportJob) -> &marquee::catalog::ImportCounts {
    assert_eq!(job.state, JobState::Done, "the import failed: {:?}", job.error);
    job.counts.as_ref().expect("a finished import has counts")
}

/// The shows of `title` at the theater with this external id, by start time.
async fn shows_of(app: &TestApp, theater: &str, title: &str) -> Vec<(i64, NaiveDateTime, bool)> {
    let (theater, title) = (theater.to_string(), title.to_string());
    app.state
        .db
        .run(move |c| {
            Ok(shows::table
                .inner_join(theaters::table)
                .inner_join(movies::table)
                .filter(theaters::external_id.eq(theater))
                .filter(movies::title.eq(title))
                .order(shows::starts_at_local.asc())
                .select((shows::id, shows::starts_at_local, shows::in_feed))
                .load(c)?)
        })
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_full_import_then_the_same_again_then_a_changed_feed() {
    let api = FixtureApi::start();
    let app = spawn_app_with(|s| api.configure(s)).await;
    let (want_theaters, want_movies, want_shows) = expected_rows();

    // 1. The whole data set, through 111 requests and one write.
    let log_before =
        app.count("SELECT COUNT(*) AS n FROM write_log WHERE kind NOT IN ('membership', 'epoch_start')").await;
    let first = run_import(&app).await;
    let c = done(&first);
    assert_eq!((c.theaters.created, c.movies.created, c.shows.created), (110, want_movies as u32, want_shows as u32));
    assert_eq!((c.theaters.updated, c.movies.updated, c.shows.updated), (0, 0, 0));
    assert_eq!((first.requests, first.retries), (111, 0));
    assert_eq!((first.theaters_done, first.theaters_total), (110, Some(110)));
    assert!(first.lsn.is_some());
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM write_log WHERE kind NOT IN ('membership', 'epoch_start')").await,
        log_before + 1,
        "one log entry"
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM theaters").await, want_theaters as i64);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM movies").await, want_movies as i64);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM shows").await, want_shows as i64);

    // 2. The same answers again change nothing, and write nothing.
    let before = catalog_state(&app).await;
    let second = run_import(&app).await;
    let c = done(&second);
    assert_eq!(
        (c.theaters.unchanged, c.movies.unchanged, c.shows.unchanged),
        (110, want_movies as u32, want_shows as u32)
    );
    assert_eq!(
        (c.theaters.created, c.movies.created, c.shows.created, c.shows_removed, c.shows_withdrawn),
        (0, 0, 0, 0, 0)
    );
    assert_eq!((c.theaters.updated, c.movies.updated, c.shows.updated), (0, 0, 0));
    assert_eq!(second.lsn, None);
    assert_eq!(catalog_state(&app).await, before);

    // 3. The feed changes: a movie is added, a show with a booking and a show without
    //    one are dropped.
    let theater = api.handle.theater_ids()[0].clone();
    let feed = load_dir(&sample_dir(), Some(fixture_day())).unwrap();
    let playing = feed.theaters.iter().find(|t| t.theater.external_id == theater).unwrap();
    let movie = playing.movies.iter().find(|m| m.times.len() >= 2).expect("a movie with two showtimes");
    let listed = shows_of(&app, &theater, &movie.title).await;
    let ((booked_show, booked_at, _), (bare_show, bare_at, _)) = (listed[0], listed[1]);
    // C4-C5: the imported auditorium has an aisle before C4, and C5-C6 would leave C4 alone.
    let (status, hold) = app.hold(booked_show, &["C4", "C5"]).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let code = booking["code"].as_str().unwrap().to_string();

    api.handle
        .add_movie(
            &theater,
            &FixtureMovie {
                title: "Marquee Test Pattern".into(),
                duration_minutes: Some(95),
                poster_url: None,
                times: vec!["13:00:00".into(), "20:30:00".into()],
            },
        )
        .unwrap();
    for at in [booked_at, bare_at] {
        api.handle.drop_showtime(&theater, &movie.title, &at.format("%H:%M:%S").to_string()).unwrap();
    }
    let third = run_import(&app).await;
    let c = done(&third);
    assert_eq!((c.movies.created, c.shows.created, c.shows_removed, c.shows_withdrawn), (1, 2, 1, 1));
    assert_eq!((c.theaters.created, c.theaters.updated, c.movies.updated, c.shows.updated), (0, 0, 0, 0));
    assert_eq!(shows_of(&app, &theater, "Marquee Test Pattern").await.len(), 2);

    let left = shows_of(&app, &theater, &movie.title).await;
    assert!(left.iter().all(|(id, _, _)| *id != bare_show), "the show without bookings is deleted");
    let kept = left.iter().find(|(id, _, _)| *id == booked_show).expect("the show with a booking is kept");
    assert!(!kept.2, "and marked as gone from the feed");
    let booking_state: String = {
        let code = code.clone();
        app.state.db.run(move |c| Ok(bookings::table.find(code).select(bookings::state).first(c)?)).await.unwrap()
    };
    assert_eq!(booking_state, "confirmed", "its booking is kept");
    let (status, found) = app.get_json(&format!("/api/bookings/{code}?email=ann@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let (_, map) = app.get_json(&format!("/api/shows/{booked_show}/seats")).await;
    assert_eq!(map["on_sale"], false, "the loaded show actor heard it left the feed");
    let (status, _) = app.hold(booked_show, &["D1"]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // 4. And importing that feed again changes nothing more.
    let before = catalog_state(&app).await;
    let fourth = run_import(&app).await;
    let c = done(&fourth);
    assert_eq!(
        (c.movies.created, c.shows.created, c.shows.updated, c.shows_removed, c.shows_withdrawn),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(catalog_state(&app).await, before);
    api.stop().await;
}

#[actix_web::test]
async fn every_failure_leaves_the_catalog_as_it_was() {
    let api = FixtureApi::start();
    let app = spawn_app_with(|s| {
        api.configure(s);
        s.flixster.timeout = Duration::from_millis(1500);
        s.flixster.max_retries = 1;
        s.flixster.max_body_bytes = 1024 * 1024;
    })
    .await;
    done(&run_import(&app).await);
    // Change the feed, so that an import that got through would change the catalog.
    let ids = api.handle.theater_ids();
    let movie = FixtureMovie {
        title: "Only If It All Arrives".into(),
        duration_minutes: Some(90),
        poster_url: None,
        times: vec!["18:00:00".into()],
    };
    api.handle.add_movie(&ids[0], &movie).unwrap();
    let middle = ids[55].clone();
    let names_middle = format!("theater {middle} (");
    let before = catalog_state(&app).await;

    let cases: Vec<(&str, Fault, Vec<&str>)> = vec![
        ("a timeout", Fault::Slow(Duration::from_secs(4)), vec!["theater ", "no answer within 1500 ms"]),
        (
            "server errors",
            Fault::ServerError { every_nth: 1 },
            vec!["theater ", "gave up after 2 attempts: HTTP 500 Internal Server Error"],
        ),
        ("rate limiting", Fault::RateLimited { first_n: 10_000 }, vec!["theater ", "HTTP 429 Too Many Requests"]),
        ("a non-2xx status", Fault::Status(404), vec!["theater ", "HTTP 404 Not Found"]),
        (
            "invalid JSON from one theater",
            Fault::BrokenJson { theater_id: Some(middle.clone()) },
            vec![&names_middle, "theater detail is not valid JSON"],
        ),
        ("a missing required field", Fault::MissingField, vec!["theater ", "missing field `displayDate`"]),
        ("a wrong type", Fault::WrongType, vec!["theater ", "field `name`", "invalid type: integer `42`"]),
        ("an oversized answer", Fault::Oversized, vec!["theater ", "answer larger than 1048576 bytes"]),
    ];
    for (what, fault, want) in cases {
        api.handle.set_fault(fault);
        let job = run_import(&app).await;
        assert_eq!(job.state, JobState::Failed, "{what}: the import should fail");
        let error = job.error.clone().unwrap_or_default();
        for w in want {
            assert!(error.contains(w), "{what}: the error should say '{w}', it says: {error}");
        }
        assert!(job.counts.is_none() && job.lsn.is_none(), "{what}: nothing is written");
        assert_eq!(catalog_state(&app).await, before, "{what}: the catalog changed");
    }

    // The same feed, answered well, goes through.
    api.handle.set_fault(Fault::None);
    let job = run_import(&app).await;
    assert_eq!(done(&job).movies.created, 1);
    assert_ne!(catalog_state(&app).await, before);
    api.stop().await;
}

#[actix_web::test]
async fn only_one_import_runs_at_a_time_and_retries_are_counted() {
    let api = FixtureApi::start();
    let app = spawn_app_with(|s| api.configure(s)).await;
    api.handle.set_fault(Fault::RateLimited { first_n: 3 });
    let job = marquee::web::admin::start_import(&app.state, Trigger::Admin).await.unwrap();
    let busy = marquee::web::admin::start_import(&app.state, Trigger::Schedule).await.unwrap_err();
    match &busy {
        WebError::Conflict { message, .. } => {
            assert!(message.contains(&format!("import #{} is already running", job.id)), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let finished = wait_for_import(&app, job.id).await;
    done(&finished);
    assert_eq!((finished.requests, finished.retries), (114, 3));
    let next = run_import(&app).await;
    assert_eq!(next.id, job.id + 1);
    api.stop().await;
}

#[actix_web::test]
async fn without_a_key_the_real_api_is_not_called() {
    let app = spawn_app_with(|s| {
        s.flixster = marquee::importer::FlixsterConfig::default();
    })
    .await;
    let job = run_import(&app).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.as_deref().unwrap_or("").contains("FLIXSTER_API_KEY is not set"), "{:?}", job.error);
    assert_eq!(job.requests, 0);
}

#[actix_web::test]
async fn the_import_history_outlives_a_restart() {
    use marquee::actors::importer::RecentImports;
    let api = FixtureApi::start();
    let app = spawn_app_with(|s| api.configure(s)).await;
    api.handle.set_fault(Fault::Status(503));
    let failed = run_import(&app).await;
    assert_eq!(failed.state, JobState::Failed);
    // A job that a stopped node left running.
    app.state
        .db
        .run(|c| {
            diesel::sql_query(
                "INSERT INTO import_jobs (id, state, requested_by, queued_at, theaters_done, requests, retries)
                 VALUES (99, 'running', 'schedule', NOW(3), 3, 4, 0)",
            )
            .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();

    let again = common::spawn_on(&app.db_name, |s| api.configure(s), false);
    let jobs = again.state.importer.send(RecentImports).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![99, failed.id]);
    assert_eq!(jobs[0].state, JobState::Failed);
    assert!(jobs[0].error.as_deref().unwrap().contains("the node stopped during this import"));
    assert_eq!(jobs[1].error, failed.error);
    api.handle.set_fault(Fault::None);
    let next = run_import(&again).await;
    assert_eq!(next.id, 100, "numbering goes on");
    done(&next);
    api.stop().await;
}
