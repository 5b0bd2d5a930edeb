//! The Flixster client against the fixture server, over real HTTP on port 0.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use chrono::{NaiveDate, NaiveTime};
use marquee::importer::{
    load_dir, CatalogFeed, Fault, FetchError, FixtureConfig, FixtureHandle, FixtureMovie, FlixsterClient,
    FlixsterConfig, ImportError, Progress,
};

const KEY: &str = "test-key-not-secret";

fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/flixster-la-2024-04")
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2030, 6, 1).unwrap()
}

/// The sample as the fixture serves it: first day moved to `today()`.
fn expected_feed() -> CatalogFeed {
    load_dir(&sample_dir(), Some(today())).unwrap()
}

struct Fixture {
    base_url: String,
    handle: FixtureHandle,
    server: ServerHandle,
}

impl Fixture {
    async fn start(fault: Fault) -> Fixture {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let mut cfg = FixtureConfig::new(sample_dir());
        cfg.required_key = Some(KEY.to_owned());
        cfg.today = Some(today());
        cfg.fault = fault;
        let handle = cfg.handle.clone();
        let server = marquee::importer::start_fixture(cfg, listener).unwrap();
        let server_handle = server.handle();
        actix_rt::spawn(server);
        Fixture { base_url, handle, server: server_handle }
    }

    fn client(&self, adjust: impl FnOnce(&mut FlixsterConfig)) -> FlixsterClient {
        let mut cfg = FlixsterConfig {
            base_url: self.base_url.clone(),
            api_key: Some(KEY.to_owned()),
            retry_base_delay: Duration::from_millis(10),
            ..FlixsterConfig::default()
        };
        adjust(&mut cfg);
        FlixsterClient::new(cfg).unwrap()
    }

    async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// The name the list gives a theater id.
fn theater_name(id: &str) -> String {
    let feed = expected_feed();
    let theater = feed.theaters.iter().find(|t| t.theater.external_id == id);
    theater.unwrap().theater.name.clone()
}

/// The failing theater's id, checking the message names it with its name.
fn failing_theater(err: &ImportError) -> String {
    let ImportError::Theater { id, name, .. } = err else {
        panic!("expected a theater's failure, got: {err}");
    };
    assert_eq!(*name, theater_name(id));
    assert!(err.to_string().starts_with(&format!("theater {id} ({name}): ")), "{err}");
    id.clone()
}

#[actix_rt::test]
async fn a_full_fetch_brings_every_theater_with_its_dates_moved() {
    let fixture = Fixture::start(Fault::None).await;
    let mut seen = Vec::new();
    let report = fixture.client(|_| {}).fetch_catalog(|p| seen.push(p)).await.unwrap();

    assert_eq!(report.feed.theaters.len(), 110);
    assert_eq!(report.feed.pair_count(), 1168);
    assert_eq!(report.feed, expected_feed());
    assert_eq!(report.feed.earliest_date(), Some(today()));
    assert_eq!((report.requests, report.retries), (111, 0));

    assert_eq!(seen.len(), 111);
    assert_eq!(seen[0], Progress { done: 0, total: 110 });
    assert!(seen.windows(2).all(|w| w[1].done == w[0].done + 1));
    assert_eq!(seen.last(), Some(&Progress { done: 110, total: 110 }));
    assert_eq!((fixture.handle.list_requests(), fixture.handle.detail_requests()), (1, 110));
    fixture.stop().await;
}

#[actix_rt::test]
async fn rate_limited_requests_are_retried_after_the_wait_asked_for() {
    let fixture = Fixture::start(Fault::RateLimited { first_n: 2 }).await;
    let report = fixture.client(|_| {}).fetch_catalog(|_| {}).await.unwrap();
    assert_eq!(report.feed, expected_feed());
    assert_eq!((report.requests, report.retries), (113, 2));
    assert_eq!(fixture.handle.detail_requests(), 112);
    fixture.stop().await;
}

#[actix_rt::test]
async fn occasional_server_errors_are_retried() {
    let fixture = Fixture::start(Fault::ServerError { every_nth: 5 }).await;
    let report = fixture.client(|c| c.concurrency = 1).fetch_catalog(|_| {}).await.unwrap();
    assert_eq!(report.feed, expected_feed());
    assert!(report.retries > 0);
    assert_eq!(u64::from(report.requests), 1 + fixture.handle.detail_requests());
    fixture.stop().await;
}

#[actix_rt::test]
async fn server_errors_beyond_the_retries_fail_naming_the_theater() {
    let fixture = Fixture::start(Fault::ServerError { every_nth: 1 }).await;
    let err = fixture.client(|c| c.max_retries = 2).fetch_catalog(|_| {}).await.unwrap_err();
    let id = failing_theater(&err);
    assert!(fixture.handle.theater_ids().contains(&id));
    assert!(err.to_string().ends_with("gave up after 3 attempts: HTTP 500 Internal Server Error"), "{err}");
    fixture.stop().await;
}

#[actix_rt::test]
async fn broken_json_fails_naming_the_theater() {
    let fixture = Fixture::start(Fault::None).await;
    let broken = fixture.handle.theater_ids()[2].clone();
    fixture.handle.set_fault(Fault::BrokenJson { theater_id: Some(broken.clone()) });
    let err = fixture.client(|_| {}).fetch_catalog(|_| {}).await.unwrap_err();
    assert_eq!(failing_theater(&err), broken);
    assert!(matches!(err, ImportError::Theater { source: FetchError::Feed(_), .. }), "{err:?}");
    assert!(err.to_string().contains("theater detail is not valid JSON"), "{err}");
    fixture.stop().await;
}

#[actix_rt::test]
async fn a_missing_required_field_fails_naming_theater_and_field() {
    let fixture = Fixture::start(Fault::MissingField).await;
    let err = fixture.client(|_| {}).fetch_catalog(|_| {}).await.unwrap_err();
    failing_theater(&err);
    assert!(err.to_string().contains("missing field `displayDate`"), "{err}");
    fixture.stop().await;
}

#[actix_rt::test]
async fn an_oversized_answer_fails() {
    let fixture = Fixture::start(Fault::Oversized).await;
    let err = fixture.client(|_| {}).fetch_catalog(|_| {}).await.unwrap_err();
    failing_theater(&err);
    assert!(matches!(err, ImportError::Theater { source: FetchError::TooLarge { limit: 4_194_304 }, .. }), "{err:?}");
    assert!(err.to_string().ends_with("answer larger than 4194304 bytes"), "{err}");
    fixture.stop().await;
}

#[actix_rt::test]
async fn a_slow_answer_beyond_the_timeout_fails() {
    let fixture = Fixture::start(Fault::Slow(Duration::from_secs(2))).await;
    let err = fixture.client(|c| c.timeout = Duration::from_millis(300)).fetch_catalog(|_| {}).await.unwrap_err();
    failing_theater(&err);
    assert!(matches!(err, ImportError::Theater { source: FetchError::Timeout(_), .. }), "{err:?}");
    assert!(err.to_string().ends_with("no answer within 300 ms"), "{err}");
    fixture.stop().await;
}

#[actix_rt::test]
async fn a_missing_or_wrong_key_is_refused_like_rapidapi_does() {
    let fixture = Fixture::start(Fault::None).await;

    let err = fixture.client(|c| c.api_key = None).fetch_catalog(|_| {}).await.unwrap_err();
    assert!(matches!(err, ImportError::List(FetchError::Status { .. })), "{err:?}");
    assert!(err.to_string().starts_with("theater list: HTTP 401 Unauthorized: Invalid API key"), "{err}");

    let err = fixture.client(|c| c.api_key = Some("someone-elses-key".into())).fetch_catalog(|_| {}).await.unwrap_err();
    assert_eq!(err.to_string(), "theater list: HTTP 403 Forbidden: You are not subscribed to this API.");

    let err = fixture.client(|c| c.api_host = "other.p.rapidapi.com".into()).fetch_catalog(|_| {}).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 403 Forbidden"), "{err}");
    assert_eq!(fixture.handle.list_requests(), 0, "refused requests are not served");
    fixture.stop().await;
}

#[actix_rt::test]
async fn the_fixture_checks_headers_and_parameters() {
    let fixture = Fixture::start(Fault::None).await;
    let http = awc::Client::default();
    let id = fixture.handle.theater_ids()[0].clone();
    let url = |path: &str| format!("{}{path}", fixture.base_url);
    let status = |req: awc::ClientRequest| async move { req.send().await.unwrap().status().as_u16() };
    let with_headers = |path: &str| {
        http.get(url(path))
            .insert_header(("X-RapidAPI-Key", KEY))
            .insert_header(("X-RapidAPI-Host", "flixster.p.rapidapi.com"))
    };
    let detail = format!("/theaters/detail?id={id}");

    assert_eq!(status(with_headers(&detail)).await, 200);
    assert_eq!(status(http.get(url(&detail))).await, 401);
    let no_host = http.get(url(&detail)).insert_header(("X-RapidAPI-Key", KEY));
    assert_eq!(status(no_host).await, 401);
    let no_key = http.get(url(&detail)).insert_header(("X-RapidAPI-Host", "flixster.p.rapidapi.com"));
    assert_eq!(status(no_key).await, 401);
    let wrong_key = with_headers(&detail).insert_header(("X-RapidAPI-Key", "nope"));
    assert_eq!(status(wrong_key).await, 403);
    let wrong_host = with_headers(&detail).insert_header(("X-RapidAPI-Host", "x.p.rapidapi.com"));
    assert_eq!(status(wrong_host).await, 403);

    assert_eq!(status(with_headers("/theaters/detail?id=NoSuchTheater")).await, 404);
    assert_eq!(status(with_headers("/theaters/detail")).await, 400);
    assert_eq!(status(with_headers("/theaters/list?radius=50")).await, 400);
    assert_eq!(status(with_headers("/theaters/list?zipCode=90002")).await, 400);
    assert_eq!(status(with_headers("/theaters/list?zipCode=90002&radius=far")).await, 400);
    assert_eq!(status(with_headers("/theaters/list?zipCode=90002&radius=50")).await, 200);
    assert_eq!(status(with_headers("/movies/list")).await, 404);

    let mut res = with_headers(&detail).send().await.unwrap();
    let body: serde_json::Value = res.json().limit(1 << 20).await.unwrap();
    assert_eq!(body["data"]["theaterShowtimeGroupings"]["displayDate"], "2030-06-01");
    fixture.stop().await;
}

#[actix_rt::test]
async fn faults_and_data_can_change_between_imports() {
    let fixture = Fixture::start(Fault::None).await;
    let client = fixture.client(|_| {});
    let first = client.fetch_catalog(|_| {}).await.unwrap();

    fixture.handle.set_fault(Fault::BrokenJson { theater_id: None });
    assert!(client.fetch_catalog(|_| {}).await.is_err());
    fixture.handle.set_fault(Fault::None);

    let theater = first.feed.theaters[0].clone();
    let dropped = theater.movies[0].clone();
    let time = dropped.times[0].format("%H:%M:%S").to_string();
    fixture.handle.drop_showtime(&theater.theater.external_id, &dropped.title, &time).unwrap();
    let added = FixtureMovie {
        title: "A Film Added For The Test".into(),
        duration_minutes: Some(95),
        poster_url: Some("https://example.com/poster.jpg".into()),
        times: vec!["18:45:00".into(), "21:10:00".into()],
    };
    fixture.handle.add_movie(&theater.theater.external_id, &added).unwrap();

    let second = client.fetch_catalog(|_| {}).await.unwrap();
    let changed = &second.feed.theaters[0];
    assert_eq!(changed.theater, theater.theater);
    let before = changed.movies.iter().find(|m| m.title == dropped.title).unwrap();
    assert_eq!(before.times, dropped.times[1..]);
    let new = changed.movies.iter().find(|m| m.title == added.title).unwrap();
    assert_eq!(new.duration_minutes, Some(95));
    assert_eq!(new.date, today());
    let at = |s| NaiveTime::parse_from_str(s, "%H:%M:%S").unwrap();
    assert_eq!(new.times, [at("18:45:00"), at("21:10:00")]);
    assert_eq!(second.feed.theaters[1..], first.feed.theaters[1..]);
    fixture.stop().await;
}

#[actix_rt::test]
async fn an_https_url_speaks_tls_and_fails_cleanly_against_plain_http() {
    let fixture = Fixture::start(Fault::None).await;
    let https = fixture.base_url.replace("http://", "https://");
    let err = fixture.client(|c| c.base_url = https).fetch_catalog(|_| {}).await.unwrap_err();
    assert!(matches!(err, ImportError::List(_)), "{err:?}");
    assert!(err.to_string().contains("connection failed"), "{err}");
    assert_eq!(fixture.handle.list_requests(), 0);
    fixture.stop().await;
}
