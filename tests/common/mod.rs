//! Test helpers: a real node on port 0 against a fresh MariaDB schema, dropped afterwards.
#![allow(dead_code)]
pub mod browser;
pub mod cluster;
use actix_web::http::StatusCode;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use marquee::catalog::layout::layout_change;
use marquee::config::Settings;
use marquee::db::models::{Movie, Show, Theater};
use marquee::startup::Application;
use marquee::wal::Change;
use marquee::web::AppState;
use serde_json::Value;
use std::net::TcpListener;
use std::sync::atomic::{AtomicI64, Ordering};

/// The MariaDB server to use, without a database: MARQUEE_TEST_DATABASE_URL, or the private
/// server that scripts/mariadb.sh starts.
pub fn server_url() -> String {
    std::env::var("MARQUEE_TEST_DATABASE_URL").unwrap_or_else(|_| "mysql://root:marquee@127.0.0.1:3307".into())
}

/// Drops a schema a test made (one that no `TestApp` drops for it).
pub fn drop_schema(name: &str) {
    let mut conn = diesel::MysqlConnection::establish(&server_url()).unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS `{name}`")).execute(&mut conn).unwrap();
}

pub fn fresh_db_name() -> String {
    format!("marquee_t_{}", marquee::domain::random_token(10).to_lowercase())
}

pub fn test_settings(db_name: &str) -> Settings {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut s = Settings::from_env().expect("settings");
    s.database_url = format!("{}/{}", server_url(), db_name);
    s.bind = "127.0.0.1:0".into();
    // One listener unless a test asks for an internal one (whatever the environment says).
    s.internal_bind = None;
    s.live_bind = None;
    s.workers = 2;
    s.db_pool_size = 8;
    s.templates_dir = format!("{root}/templates");
    s.assets_dir = format!("{root}/assets");
    // Every test client is 127.0.0.1: the seat-spinning limits are lifted unless a test
    // sets them (tests/abuse.rs).
    s.hold_limits.max_held_seats = 100_000;
    s.hold_limits.max_holds_per_minute = 100_000;
    s.hold_limits.cooloff = chrono::Duration::zero();
    s
}

pub struct TestApp {
    pub address: String,
    /// Where the node-to-node endpoints listen: `address`, unless the node was given a
    /// listener of their own (`internal_bind`, port 0 in tests).
    pub internal_address: String,
    /// The live seat maps' own listener (`live_bind`), when the node was given one.
    pub live_address: Option<String>,
    pub state: AppState,
    pub db_name: String,
    pub client: awc::Client,
    next_id: AtomicI64,
    drop_db: bool,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let db_name = fresh_db_name();
    let app = spawn_on(&db_name, tweak, true);
    app.writable().await;
    app
}

/// A node on an existing schema (to restart "the same" node); it does not drop it.
pub fn spawn_on(db_name: &str, tweak: impl FnOnce(&mut Settings), drop_db: bool) -> TestApp {
    let mut settings = test_settings(db_name);
    tweak(&mut settings);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build_on(settings, listener).expect("the node starts");
    let internal_port = app.internal_port();
    let live_port = app.live_port();
    let (port, state) = app.spawn();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        internal_address: format!("http://127.0.0.1:{internal_port}"),
        live_address: live_port.map(|p| format!("http://127.0.0.1:{p}")),
        state,
        db_name: db_name.to_string(),
        client: awc::Client::builder().disable_redirects().timeout(std::time::Duration::from_secs(30)).finish(),
        next_id: AtomicI64::new(1000),
        drop_db,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.drop_db {
            if let Ok(mut c) = MysqlConnection::establish(&server_url()) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS `{}`", self.db_name)).execute(&mut c);
            }
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl TestApp {
    /// Waits (a few seconds at most) until the node takes writes: a node of its own founds
    /// its cluster and elects itself in its first moments.
    pub async fn writable(&self) {
        for _ in 0..500 {
            if self.state.cluster.writable() {
                return;
            }
            actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Adds a theater with a `rows` x `seats` layout and one show starting `starts_in` from
    /// now; returns the show id.
    pub async fn seed_show(&self, rows: usize, seats: usize, starts_in: chrono::Duration) -> i64 {
        let base = self.next_id.fetch_add(10, Ordering::SeqCst);
        let (change, id) = show_change(base, rows, seats, starts_in);
        self.writable().await;
        self.state.writer.append(Change::Catalog(Box::new(change))).await.expect("seed");
        id
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let sql = sql.to_string();
        self.state.db.run(move |c| Ok(diesel::sql_query(sql).get_result::<Count>(c)?.n)).await.expect("count query")
    }

    /// Rows in the tables a write touches: a refused request must change none of them.
    pub async fn write_footprint(&self) -> (i64, i64, i64, i64) {
        (
            self.count("SELECT COUNT(*) AS n FROM write_log WHERE kind NOT IN ('membership', 'epoch_start')").await,
            self.count("SELECT COUNT(*) AS n FROM holds").await,
            self.count("SELECT COUNT(*) AS n FROM bookings").await,
            self.count("SELECT COUNT(*) AS n FROM booking_seats").await,
        )
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut res = self.client.post(self.url(path)).send_json(body).await.expect("request");
        let status = res.status();
        let body = res.json::<Value>().limit(1 << 20).await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let mut res = self.client.get(self.url(path)).send().await.expect("request");
        let status = res.status();
        let body = res.json::<Value>().limit(4 << 20).await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn hold(&self, show: i64, seats: &[&str]) -> (StatusCode, Value) {
        self.post_json(&format!("/api/shows/{show}/holds"), &serde_json::json!({ "seats": seats })).await
    }

    pub async fn confirm(&self, hold_id: &str, name: &str, email: &str) -> (StatusCode, Value) {
        self.post_json(&format!("/api/holds/{hold_id}/confirm"), &serde_json::json!({ "name": name, "email": email }))
            .await
    }

    /// Holds and confirms `seats` through the API (as Ann); returns the booking code.
    pub async fn book(&self, show: i64, seats: &[&str]) -> String {
        let (status, hold) = self.hold(show, seats).await;
        assert_eq!(status, StatusCode::CREATED, "{hold}");
        let (status, booking) = self.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
        assert_eq!(status.as_u16() / 100, 2, "{booking}");
        booking["code"].as_str().unwrap().to_string()
    }

    pub async fn seat_states(&self, show: i64) -> std::collections::HashMap<String, String> {
        let (status, map) = self.get_json(&format!("/api/shows/{show}/seats")).await;
        assert_eq!(status, StatusCode::OK);
        map["rows"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["seats"].as_array().unwrap().iter())
            .map(|s| (s["seat"].as_str().unwrap().to_string(), s["state"].as_str().unwrap().to_string()))
            .collect()
    }
}

/// A catalog change with one theater (a `rows` x `seats` layout), one movie and one show
/// starting `starts_in` from now; ids from `base` on. Returns it and the show's id.
pub fn show_change(
    base: i64,
    rows: usize,
    seats: usize,
    starts_in: chrono::Duration,
) -> (marquee::wal::change::CatalogChange, i64) {
    let layout_id = base;
    let mut change = layout_change(layout_id, "Test hall", rows, seats, rows / 2);
    let theater = Theater {
        id: base + 1,
        external_id: format!("T{layout_id}"),
        tid: "AAAAA".into(),
        name: "Test Theater".into(),
        latitude: 34.0,
        longitude: -118.2,
        timezone: "America/Los_Angeles".into(),
        layout_id,
    };
    let movie = Movie {
        id: base + 2,
        external_key: format!("movie {layout_id}"),
        title: format!("Test Movie {layout_id}"),
        duration_minutes: Some(120),
        poster_url: None,
    };
    let start_utc = (chrono::Utc::now() + starts_in).naive_utc();
    let tz: chrono_tz::Tz = theater.timezone.parse().unwrap();
    let local = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(start_utc, chrono::Utc)
        .with_timezone(&tz)
        .naive_local();
    let show = Show {
        id: base + 3,
        theater_id: theater.id,
        movie_id: movie.id,
        layout_id,
        local_date: local.date(),
        starts_at_local: local,
        starts_at_utc: start_utc,
        in_feed: true,
    };
    let id = show.id;
    change.theaters.push(theater);
    change.movies.push(movie);
    change.shows.push(show);
    (change, id)
}

/// The key the test fixture API wants.
pub const API_KEY: &str = "test-key-not-secret";

pub fn sample_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/flixster-la-2024-04")
}

/// The day the fixture moves the data set to: a few days ahead, so every show can be booked.
pub fn fixture_day() -> chrono::NaiveDate {
    marquee::importer::today_in_los_angeles() + chrono::Duration::days(3)
}

/// The Flixster stand-in on port 0, serving the bundled data set.
pub struct FixtureApi {
    pub base_url: String,
    pub handle: marquee::importer::FixtureHandle,
    server: actix_web::dev::ServerHandle,
}

impl FixtureApi {
    pub fn start() -> FixtureApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let mut cfg = marquee::importer::FixtureConfig::new(sample_dir());
        cfg.required_key = Some(API_KEY.to_owned());
        cfg.today = Some(fixture_day());
        let handle = cfg.handle.clone();
        let server = marquee::importer::start_fixture(cfg, listener).unwrap();
        let server_handle = server.handle();
        actix_rt::spawn(server);
        FixtureApi { base_url, handle, server: server_handle }
    }

    /// Points a node's importer here, with short waits between retries.
    pub fn configure(&self, s: &mut Settings) {
        s.flixster.base_url = self.base_url.clone();
        s.flixster.api_key = Some(API_KEY.to_owned());
        s.flixster.retry_base_delay = std::time::Duration::from_millis(10);
        s.flixster.max_retry_delay = std::time::Duration::from_millis(50);
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// Waits (at most two minutes) until the import is no longer queued or running.
pub async fn wait_for_import(app: &TestApp, id: u64) -> marquee::actors::importer::ImportJob {
    use marquee::actors::importer::GetImport;
    for _ in 0..2400 {
        let job = app.state.importer.send(GetImport(id)).await.unwrap().expect("the job exists");
        if !job.state.is_active() {
            return job;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("import #{id} did not finish within two minutes");
}

/// Starts an import the way the admin page does and waits for its end.
pub async fn run_import(app: &TestApp) -> marquee::actors::importer::ImportJob {
    use marquee::actors::importer::Trigger;
    app.writable().await;
    let job = marquee::web::admin::start_import(&app.state, Trigger::Admin).await.expect("the import starts");
    wait_for_import(app, job.id).await
}

/// A fresh schema and a follower's log writer on it (node 1, no cluster): for tests of
/// what `persist` stores. Returns the schema's name, its pool and the writer.
pub fn follower_writer() -> (String, marquee::db::Db, marquee::wal::LogWriter) {
    let name = fresh_db_name();
    let db = marquee::startup::open_database(&test_settings(&name)).expect("database");
    let writer = marquee::wal::LogWriter::start(
        db.clone(),
        marquee::actors::lamport::SharedClock::starting_at(0),
        1,
        std::sync::Arc::new(marquee::wal::WriteGate::default()),
        std::sync::Arc::new(marquee::wal::CommitTracker::default()),
        None,
        std::time::Duration::from_secs(1),
        marquee::metrics::Metrics::new(),
    )
    .expect("writer");
    (name, db, writer)
}
