//! A local stand-in for the Flixster API: serves a data-set directory in the
//! API's exact shape, so a new user gets a full catalog with no key and no
//! internet, and tests import through the real HTTP client.
//!
//! `GET /theaters/list?zipCode=..&radius=..` and `GET /theaters/detail?id=..`
//! answer with the files of the directory (read into memory at start), their
//! dates moved so that the data set's first day is today in Los Angeles. Both
//! RapidAPI headers are required, as by the real API. A [`Fault`] makes the
//! detail answers slow, failing or malformed, and a [`FixtureHandle`] changes
//! the fault or the data while the server runs.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::{dev::Server, http::StatusCode, web, App, HttpRequest, HttpResponse, HttpServer};
use chrono::{NaiveDate, NaiveTime};
use serde_json::{json, Value};

use super::client::DEFAULT_API_HOST;
use super::feed::{days_between, shift_days, DETAIL_DIR, LIST_FILE};

/// Extra bytes a [`Fault::Oversized`] answer carries: more than the client's
/// default cap of 4 MiB.
pub const OVERSIZED_PADDING_BYTES: usize = 5 * 1024 * 1024;

/// How the fixture misbehaves. Faults touch `/theaters/detail` answers only;
/// the theater list is always served as is. Request numbers count the detail
/// requests since the fault was set, from 1.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fault {
    /// Answer correctly.
    #[default]
    None,
    /// Wait this long before answering each detail request.
    Slow(Duration),
    /// Answer 500 to detail requests number `every_nth`, `2 * every_nth`, ...
    /// (`1`: every one; `0`: none).
    ServerError { every_nth: u32 },
    /// Answer 429 with `Retry-After: 1` to the first `first_n` detail requests.
    RateLimited { first_n: u32 },
    /// Cut the JSON of one theater's detail in half (every theater's if `None`).
    BrokenJson { theater_id: Option<String> },
    /// Leave the required `displayDate` out of every detail answer.
    MissingField,
    /// Give the first movie of every detail answer a number for its `name`.
    WrongType,
    /// Answer every detail request with this HTTP status (e.g. 404, 503).
    Status(u16),
    /// Pad every detail answer with [`OVERSIZED_PADDING_BYTES`] of filler.
    Oversized,
}

/// A movie to add to a theater with [`FixtureHandle::add_movie`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureMovie {
    pub title: String,
    pub duration_minutes: Option<i32>,
    pub poster_url: Option<String>,
    /// `providerTime` values, `HH:MM:SS`.
    pub times: Vec<String>,
}

/// Why an edit of the fixture's data could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("the fixture has no theater {0:?}")]
    UnknownTheater(String),
    #[error("theater {theater_id:?} shows no movie {title:?}")]
    UnknownMovie { theater_id: String, title: String },
    #[error("{title:?} at theater {theater_id:?} has no showtime {time:?}")]
    UnknownShowtime { theater_id: String, title: String, time: String },
}

/// Settings of the fixture server.
#[derive(Debug, Clone)]
pub struct FixtureConfig {
    /// A directory laid out like `data/flixster-la-2024-04`.
    pub dir: PathBuf,
    /// Where [`serve_fixture`] listens.
    pub bind: String,
    /// When set, `X-RapidAPI-Key` must be exactly this; otherwise any non-empty key.
    pub required_key: Option<String>,
    /// The `X-RapidAPI-Host` value accepted.
    pub api_host: String,
    /// The day the data set's first date becomes; today in Los Angeles if `None`.
    pub today: Option<NaiveDate>,
    /// The fault the server starts with.
    pub fault: Fault,
    /// Shared with the running server: change the fault or the data through it.
    pub handle: FixtureHandle,
}

impl FixtureConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FixtureConfig {
            dir: dir.into(),
            bind: "127.0.0.1:8091".to_owned(),
            required_key: None,
            api_host: DEFAULT_API_HOST.to_owned(),
            today: None,
            fault: Fault::None,
            handle: FixtureHandle::default(),
        }
    }
}

/// The fixture's shared state: fault, data and request counters.
///
/// Clone it before starting the server (it is `FixtureConfig::handle`); one
/// handle serves one server.
#[derive(Clone, Default)]
pub struct FixtureHandle {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FixtureHandle {
    /// The fault and counters; not the (large) data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("FixtureHandle")
            .field("fault", &state.fault)
            .field("theaters", &state.details.len())
            .field("list_requests", &state.list_requests)
            .field("detail_requests", &state.detail_requests)
            .finish()
    }
}

#[derive(Default)]
struct State {
    fault: Fault,
    /// Detail requests since the fault was set.
    fault_requests: u64,
    list_requests: u64,
    detail_requests: u64,
    list: Value,
    details: HashMap<String, Value>,
}

impl FixtureHandle {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the fault from the next request on.
    pub fn set_fault(&self, fault: Fault) {
        let mut state = self.lock();
        state.fault = fault;
        state.fault_requests = 0;
    }

    pub fn fault(&self) -> Fault {
        self.lock().fault.clone()
    }

    /// `/theaters/list` requests that got past the header check.
    pub fn list_requests(&self) -> u64 {
        self.lock().list_requests
    }

    /// `/theaters/detail` requests that got past the header check.
    pub fn detail_requests(&self) -> u64 {
        self.lock().detail_requests
    }

    /// The listed theater ids, in list order.
    pub fn theater_ids(&self) -> Vec<String> {
        let state = self.lock();
        let theaters = state.list.pointer("/data/theaters").and_then(Value::as_array);
        theaters.into_iter().flatten().filter_map(|t| t.get("id").and_then(Value::as_str).map(str::to_owned)).collect()
    }

    /// Adds a movie to a theater's detail answer (on its `displayDate`).
    pub fn add_movie(&self, theater_id: &str, movie: &FixtureMovie) -> Result<(), EditError> {
        let showtimes: Vec<Value> = movie.times.iter().map(|t| json!({ "providerTime": t })).collect();
        let entry = json!({
            "name": movie.title,
            "durationMinutes": movie.duration_minutes,
            "posterImage": movie.poster_url.as_ref().map(|url| json!({ "url": url })),
            "movieVariants": [{ "amenityGroups": [{ "showtimes": showtimes }] }],
        });
        let mut state = self.lock();
        let movies = movies_mut(&mut state, theater_id)?;
        movies.push(entry);
        Ok(())
    }

    /// Removes a movie (every entry with that title) from a theater.
    pub fn remove_movie(&self, theater_id: &str, title: &str) -> Result<(), EditError> {
        let mut state = self.lock();
        let movies = movies_mut(&mut state, theater_id)?;
        let before = movies.len();
        movies.retain(|m| m.get("name").and_then(Value::as_str) != Some(title));
        if movies.len() == before {
            return Err(EditError::UnknownMovie { theater_id: theater_id.to_owned(), title: title.to_owned() });
        }
        Ok(())
    }

    /// Removes one showtime (`HH:MM:SS` or `HH:MM`) of a movie at a theater,
    /// from every variant and amenity group that has it.
    pub fn drop_showtime(&self, theater_id: &str, title: &str, time: &str) -> Result<(), EditError> {
        let unknown_showtime = || EditError::UnknownShowtime {
            theater_id: theater_id.to_owned(),
            title: title.to_owned(),
            time: time.to_owned(),
        };
        let wanted = parse_time(time).ok_or_else(unknown_showtime)?;
        let mut state = self.lock();
        let movies = movies_mut(&mut state, theater_id)?;
        let mut found_movie = false;
        let mut dropped = false;
        for movie in movies.iter_mut().filter(|m| m.get("name").and_then(Value::as_str) == Some(title)) {
            found_movie = true;
            for list in showtime_lists_mut(movie) {
                let before = list.len();
                list.retain(|s| {
                    let given = s.get("providerTime").and_then(Value::as_str);
                    given.and_then(parse_time) != Some(wanted)
                });
                dropped |= list.len() != before;
            }
        }
        match (found_movie, dropped) {
            (true, true) => Ok(()),
            (false, _) => Err(EditError::UnknownMovie { theater_id: theater_id.to_owned(), title: title.to_owned() }),
            (true, false) => Err(unknown_showtime()),
        }
    }

    fn install(&self, data: Data, fault: Fault) {
        let mut state = self.lock();
        state.list = data.list;
        state.details = data.details;
        state.fault = fault;
        state.fault_requests = 0;
    }
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M")).ok()
}

fn movies_mut<'a>(state: &'a mut State, theater_id: &str) -> Result<&'a mut Vec<Value>, EditError> {
    state
        .details
        .get_mut(theater_id)
        .and_then(|d| d.pointer_mut("/data/theaterShowtimeGroupings/movies"))
        .and_then(Value::as_array_mut)
        .ok_or_else(|| EditError::UnknownTheater(theater_id.to_owned()))
}

fn showtime_lists_mut(movie: &mut Value) -> Vec<&mut Vec<Value>> {
    let variants = movie.get_mut("movieVariants").and_then(Value::as_array_mut);
    variants
        .into_iter()
        .flatten()
        .filter_map(|v| v.get_mut("amenityGroups").and_then(Value::as_array_mut))
        .flatten()
        .filter_map(|g| g.get_mut("showtimes").and_then(Value::as_array_mut))
        .collect()
}

/// Today's date in Los Angeles, where the bundled theaters are.
pub fn today_in_los_angeles() -> NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::America::Los_Angeles).date_naive()
}

// ---- Loading the directory ------------------------------------------------------

struct Data {
    list: Value,
    details: HashMap<String, Value>,
}

fn invalid_data(path: &Path, problem: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {problem}", path.display()))
}

fn read_json(path: &Path) -> std::io::Result<Value> {
    let bytes = std::fs::read(path).map_err(|e| invalid_data(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid_data(path, e))
}

/// Reads the list and every detail file, and shifts the dates so that the
/// earliest `displayDate` becomes `today`.
fn load_data(dir: &Path, today: NaiveDate) -> std::io::Result<Data> {
    let list = read_json(&dir.join(LIST_FILE))?;
    let mut details = HashMap::new();
    let detail_dir = dir.join(DETAIL_DIR);
    for entry in std::fs::read_dir(&detail_dir).map_err(|e| invalid_data(&detail_dir, e))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        if let Some(id) = path.file_stem().and_then(|s| s.to_str()) {
            details.insert(id.to_owned(), read_json(&path)?);
        }
    }

    let earliest = details.values().filter_map(display_date).min();
    if let Some(earliest) = earliest {
        let days = days_between(earliest, today);
        for detail in details.values_mut() {
            shift_detail(detail, days);
        }
    }
    Ok(Data { list, details })
}

fn display_date(detail: &Value) -> Option<NaiveDate> {
    let s = detail.pointer("/data/theaterShowtimeGroupings/displayDate")?.as_str()?;
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Moves `displayDate` and every `displayDates` entry; other fields stay.
fn shift_detail(detail: &mut Value, days: i64) {
    let shift = |v: &mut Value| {
        let moved =
            v.as_str().and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).and_then(|d| shift_days(d, days));
        if let Some(d) = moved {
            *v = Value::String(d.format("%Y-%m-%d").to_string());
        }
    };
    let Some(groupings) = detail.pointer_mut("/data/theaterShowtimeGroupings") else {
        return;
    };
    if let Some(date) = groupings.get_mut("displayDate") {
        shift(date);
    }
    if let Some(dates) = groupings.get_mut("displayDates").and_then(Value::as_array_mut) {
        dates.iter_mut().for_each(shift);
    }
}

// ---- Serving ------------------------------------------------------------------------

struct AppState {
    handle: FixtureHandle,
    required_key: Option<String>,
    api_host: String,
}

/// Builds the fixture server on `listener` (port 0 in tests). The caller
/// spawns or awaits the returned server, inside an actix System.
pub fn start_fixture(cfg: FixtureConfig, listener: TcpListener) -> std::io::Result<Server> {
    let today = cfg.today.unwrap_or_else(today_in_los_angeles);
    let data = load_data(&cfg.dir, today)?;
    log::info!(
        "fixture API: {} theater details from {}, first day moved to {today}",
        data.details.len(),
        cfg.dir.display()
    );
    cfg.handle.install(data, cfg.fault);
    let state = web::Data::new(AppState { handle: cfg.handle, required_key: cfg.required_key, api_host: cfg.api_host });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/theaters/list", web::get().to(theater_list))
            .route("/theaters/detail", web::get().to(theater_detail))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Serves `cfg.dir` on `cfg.bind` until the process is stopped
/// (`marquee fixture-api --dir DIR --bind ADDR`).
pub async fn serve_fixture(cfg: FixtureConfig) -> std::io::Result<()> {
    let listener = TcpListener::bind(&cfg.bind)?;
    log::info!("fixture API listening on http://{}", listener.local_addr()?);
    start_fixture(cfg, listener)?.await
}

fn message(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "message": text }))
}

fn json_body(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(body)
}

/// RapidAPI's gate: both headers, and the right key and host. Returns the
/// refusal to send, if any.
fn refusal(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let header =
        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let Some(key) = header("X-RapidAPI-Key") else {
        return Some(message(
            StatusCode::UNAUTHORIZED,
            "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info.",
        ));
    };
    let Some(host) = header("X-RapidAPI-Host") else {
        return Some(message(StatusCode::UNAUTHORIZED, "Missing X-RapidAPI-Host header."));
    };
    let key_ok = state.required_key.as_deref().is_none_or(|k| k == key);
    if !key_ok || host != state.api_host {
        return Some(message(StatusCode::FORBIDDEN, "You are not subscribed to this API."));
    }
    None
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

async fn theater_list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refused) = refusal(&req, &state) {
        return refused;
    }
    let query = query(&req);
    let param = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    if param("zipCode").is_none() {
        return message(StatusCode::BAD_REQUEST, "Missing required parameter: zipCode");
    }
    match param("radius").map(str::parse::<f64>) {
        None => return message(StatusCode::BAD_REQUEST, "Missing required parameter: radius"),
        Some(Err(_)) => return message(StatusCode::BAD_REQUEST, "radius must be a number"),
        Some(Ok(_)) => {}
    }
    let body = {
        let mut st = state.handle.lock();
        st.list_requests += 1;
        serde_json::to_vec(&st.list)
    };
    match body {
        Ok(body) => json_body(body),
        Err(_) => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

async fn theater_detail(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refused) = refusal(&req, &state) {
        return refused;
    }
    let query = query(&req);
    let Some(id) = query.get("id").map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return message(StatusCode::BAD_REQUEST, "Missing required parameter: id");
    };
    let (fault, number, detail) = {
        let mut st = state.handle.lock();
        st.detail_requests += 1;
        st.fault_requests += 1;
        (st.fault.clone(), st.fault_requests, st.details.get(id).cloned())
    };
    let Some(mut detail) = detail else {
        return message(StatusCode::NOT_FOUND, "Theater not found");
    };
    log::debug!("fixture API: detail {id} (request {number}, fault {fault:?})");

    match fault {
        Fault::None => {}
        Fault::Slow(delay) => actix_rt::time::sleep(delay).await,
        Fault::ServerError { every_nth } => {
            if every_nth > 0 && number % u64::from(every_nth) == 0 {
                return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        }
        Fault::RateLimited { first_n } => {
            if number <= u64::from(first_n) {
                let mut res = message(
                    StatusCode::TOO_MANY_REQUESTS,
                    "You have exceeded the rate limit per second for your plan.",
                );
                res.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static("1"),
                );
                return res;
            }
        }
        Fault::BrokenJson { theater_id } => {
            if theater_id.as_deref().is_none_or(|t| t == id) {
                let mut body = serde_json::to_vec(&detail).unwrap_or_default();
                body.truncate(body.len() / 2);
                return json_body(body);
            }
        }
        Fault::MissingField => {
            if let Some(g) = detail.pointer_mut("/data/theaterShowtimeGroupings") {
                g.as_object_mut().map(|g| g.remove("displayDate"));
            }
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return message(status, status.canonical_reason().unwrap_or("Error"));
        }
        Fault::WrongType => {
            if let Some(movie) = detail.pointer_mut("/data/theaterShowtimeGroupings/movies/0") {
                movie["name"] = json!(42);
            }
        }
        Fault::Oversized => {
            detail["padding"] = Value::String("x".repeat(OVERSIZED_PADDING_BYTES));
        }
    }
    match serde_json::to_vec(&detail) {
        Ok(body) => json_body(body),
        Err(_) => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    let text = format!("Endpoint '{}' does not exist", req.path());
    message(StatusCode::NOT_FOUND, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flixster-la-2024-04")
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn loading_shifts_every_display_date_and_keeps_the_rest() {
        let data = load_data(&sample_dir(), date("2030-06-01")).unwrap();
        assert_eq!(data.details.len(), 110);
        let firsts: Vec<_> = data.details.values().filter_map(display_date).collect();
        assert!(firsts.iter().all(|d| *d == date("2030-06-01")), "{firsts:?}");
        // The longest displayDates list runs to 2024-12-16, 245 days after the first.
        let last = data
            .details
            .values()
            .filter_map(|d| d.pointer("/data/theaterShowtimeGroupings/displayDates")?.as_array()?.last())
            .filter_map(|v| v.as_str().map(date))
            .max();
        assert_eq!(last, shift_days(date("2030-06-01"), 245));
        let original = read_json(&sample_dir().join("theaters-detail/Oy0fdRfgBTrMTwl.json")).unwrap();
        let shifted = &data.details["Oy0fdRfgBTrMTwl"];
        assert_eq!(
            original.pointer("/data/theaterShowtimeGroupings/movies"),
            shifted.pointer("/data/theaterShowtimeGroupings/movies")
        );
    }

    fn handle_with_sample() -> FixtureHandle {
        let handle = FixtureHandle::default();
        handle.install(load_data(&sample_dir(), date("2030-06-01")).unwrap(), Fault::None);
        handle
    }

    fn titles(handle: &FixtureHandle, theater: &str) -> Vec<String> {
        let st = handle.lock();
        let movies = st.details[theater].pointer("/data/theaterShowtimeGroupings/movies").unwrap();
        let movies = movies.as_array().unwrap();
        movies.iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn edits_change_what_is_served_and_report_unknown_targets() {
        let handle = handle_with_sample();
        let theater = handle.theater_ids()[1].clone();
        let movie = FixtureMovie {
            title: "Test Pattern".into(),
            duration_minutes: Some(90),
            poster_url: None,
            times: vec!["12:00:00".into(), "15:30:00".into()],
        };
        handle.add_movie(&theater, &movie).unwrap();
        assert!(titles(&handle, &theater).contains(&"Test Pattern".to_owned()));
        handle.drop_showtime(&theater, "Test Pattern", "15:30").unwrap();
        assert_eq!(
            handle.drop_showtime(&theater, "Test Pattern", "15:30:00"),
            Err(EditError::UnknownShowtime {
                theater_id: theater.clone(),
                title: "Test Pattern".into(),
                time: "15:30:00".into()
            })
        );
        handle.remove_movie(&theater, "Test Pattern").unwrap();
        assert!(!titles(&handle, &theater).contains(&"Test Pattern".to_owned()));
        assert_eq!(handle.add_movie("nope", &movie), Err(EditError::UnknownTheater("nope".into())));
        assert!(matches!(handle.remove_movie(&theater, "Test Pattern"), Err(EditError::UnknownMovie { .. })));
    }
}
