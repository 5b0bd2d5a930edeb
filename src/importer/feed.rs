//! Typed parsing of the Flixster answers ("parse, don't validate").
//!
//! The two answers the importer reads are turned into clean domain values here,
//! at the edge: [`parse_theater_list`] for `GET /theaters/list` and
//! [`parse_theater_detail`] for `GET /theaters/detail`. Everything past this
//! module can rely on trimmed, non-empty, length-checked names, coordinates in
//! range, parsed dates and times, and optional fields that are either sane or
//! `None`. Fields the importer does not know are ignored.
//!
//! Every [`FeedError`] says what is wrong and where (which theater, which
//! movie, which field), in words fit for the admin page.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveTime, Timelike};
use serde::Deserialize;
use serde_json::Value;

/// Longest theater id we accept (the `theaters.external_id` column).
pub const MAX_EXTERNAL_ID_LEN: usize = 64;
/// Longest `tid` we accept (the `theaters.tid` column).
pub const MAX_TID_LEN: usize = 32;
/// Longest theater name or movie title, in characters.
pub const MAX_NAME_LEN: usize = 255;
/// Longest poster URL kept; a longer one becomes `None`.
pub const MAX_POSTER_URL_LEN: usize = 1024;
/// Durations outside this range (minutes) become `None`.
pub const DURATION_RANGE: std::ops::RangeInclusive<i64> = 1..=600;

/// The list file inside a data-set directory.
pub const LIST_FILE: &str = "theaters-list.json";
/// The folder of detail files (`<id>.json`) inside a data-set directory.
pub const DETAIL_DIR: &str = "theaters-detail";

/// One theater from `GET /theaters/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct TheaterListing {
    /// Flixster's theater id (`id`), used for `/theaters/detail?id=`.
    pub external_id: String,
    /// Flixster's short theater code (`tid`); empty when the answer has none.
    pub tid: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// One movie playing at one theater on one day, from `GET /theaters/detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct MovieShowtimes {
    pub title: String,
    pub duration_minutes: Option<i32>,
    pub poster_url: Option<String>,
    /// The local date the showtimes are for (`displayDate`).
    pub date: NaiveDate,
    /// Local times of day, sorted, without duplicates (merged across variants,
    /// amenity groups and repeated entries of the same title). May be empty.
    pub times: Vec<NaiveTime>,
}

/// A theater and what it plays.
#[derive(Debug, Clone, PartialEq)]
pub struct TheaterFeed {
    pub theater: TheaterListing,
    pub movies: Vec<MovieShowtimes>,
}

/// The whole catalog: every listed theater with its movies, in list order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CatalogFeed {
    pub theaters: Vec<TheaterFeed>,
}

impl CatalogFeed {
    /// Number of theater-movie pairs.
    pub fn pair_count(&self) -> usize {
        self.theaters.iter().map(|t| t.movies.len()).sum()
    }

    /// Number of showtimes over all theaters and movies.
    pub fn showtime_count(&self) -> usize {
        self.theaters.iter().flat_map(|t| &t.movies).map(|m| m.times.len()).sum()
    }

    /// The earliest date of any movie in the catalog.
    pub fn earliest_date(&self) -> Option<NaiveDate> {
        self.theaters.iter().flat_map(|t| &t.movies).map(|m| m.date).min()
    }
}

/// Which answer a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    TheaterList,
    TheaterDetail,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::TheaterList => "theater list",
            Answer::TheaterDetail => "theater detail",
        })
    }
}

/// What is wrong with a feed, and where.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The bytes are not JSON at all (truncated, HTML error page, ...).
    #[error("{answer} is not valid JSON: {source}")]
    Json {
        answer: Answer,
        #[source]
        source: serde_json::Error,
    },
    /// The JSON does not have the expected shape, or a value is out of range.
    /// `location` is e.g. `theater #3 (id "abc")` or `movie #2 ("Dune")`.
    #[error("{answer}, {location}: {problem}")]
    Invalid { answer: Answer, location: String, problem: String },
    /// A problem inside one theater's detail answer.
    #[error("theater {id} ({name}): {source}")]
    Theater {
        id: String,
        name: String,
        #[source]
        source: Box<FeedError>,
    },
    /// A data-set file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Moving the dates would leave chrono's calendar.
    #[error("cannot shift {date} by {days} days")]
    DateShift { date: NaiveDate, days: i64 },
}

impl FeedError {
    fn invalid(answer: Answer, location: impl Into<String>, problem: impl Into<String>) -> Self {
        FeedError::Invalid { answer, location: location.into(), problem: problem.into() }
    }

    /// Wraps an error found in one theater's detail answer.
    pub fn in_theater(self, theater: &TheaterListing) -> Self {
        FeedError::Theater { id: theater.external_id.clone(), name: theater.name.clone(), source: Box::new(self) }
    }
}

// ---- The answers as they come over the wire -------------------------------
// Only the fields the importer reads; serde ignores the others.

#[derive(Deserialize)]
#[serde(expecting = "a theater object")]
struct RawTheater {
    id: String,
    tid: Option<String>,
    name: String,
    latitude: f64,
    longitude: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a movie object")]
struct RawMovie {
    name: String,
    duration_minutes: Option<i64>,
    poster_image: Option<RawPoster>,
    movie_variants: Option<Vec<RawVariant>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a poster object")]
struct RawPoster {
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a movie variant object")]
struct RawVariant {
    amenity_groups: Option<Vec<RawAmenityGroup>>,
}

#[derive(Deserialize)]
#[serde(expecting = "an amenity group object")]
struct RawAmenityGroup {
    showtimes: Option<Vec<RawShowtime>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a showtime object")]
struct RawShowtime {
    provider_time: String,
}

// ---- Parsing ----------------------------------------------------------------

/// Parses the answer of `GET /theaters/list`.
///
/// Fails on the first theater that lacks a required field (`id`, `name`,
/// `latitude`, `longitude`), has a value of the wrong type or out of range,
/// or repeats an id already listed.
pub fn parse_theater_list(body: &[u8]) -> Result<Vec<TheaterListing>, FeedError> {
    let answer = Answer::TheaterList;
    let root: Value = serde_json::from_slice(body).map_err(|source| FeedError::Json { answer, source })?;
    let items = array_at(&root, &["data", "theaters"], answer)?;

    let mut seen = HashSet::new();
    let mut theaters = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let location = item_location("theater", index, item.get("id"));
        let raw: RawTheater = typed(item, answer, &location)?;
        let theater = theater_from_raw(raw).map_err(|p| FeedError::invalid(answer, &location, p))?;
        if !seen.insert(theater.external_id.clone()) {
            return Err(FeedError::invalid(answer, location, "this id is listed twice"));
        }
        theaters.push(theater);
    }
    Ok(theaters)
}

/// Parses the answer of `GET /theaters/detail?id=..` into one entry per movie.
///
/// `displayDate` and every movie's `name` and every showtime's
/// `providerTime` are required; `durationMinutes`, `posterImage` and empty or
/// missing variant lists are optional. A title listed twice is merged into one
/// entry (times united, the first known duration and poster kept).
pub fn parse_theater_detail(body: &[u8]) -> Result<Vec<MovieShowtimes>, FeedError> {
    let answer = Answer::TheaterDetail;
    let root: Value = serde_json::from_slice(body).map_err(|source| FeedError::Json { answer, source })?;
    let groupings = object_at(&root, &["data", "theaterShowtimeGroupings"], answer)?;

    let date_path = "data.theaterShowtimeGroupings.displayDate";
    let date = match groupings.get("displayDate") {
        None | Some(Value::Null) => return Err(FeedError::invalid(answer, date_path, "missing field `displayDate`")),
        Some(Value::String(s)) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| FeedError::invalid(answer, date_path, format!("{s:?} is not a date (YYYY-MM-DD)")))?,
        Some(other) => {
            return Err(FeedError::invalid(
                answer,
                date_path,
                format!("expected a date string, found {}", json_kind(other)),
            ))
        }
    };
    let items = array_at(&root, &["data", "theaterShowtimeGroupings", "movies"], answer)?;

    let mut movies: Vec<MovieShowtimes> = Vec::with_capacity(items.len());
    let mut by_title: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let location = item_location("movie", index, item.get("name"));
        let raw: RawMovie = typed(item, answer, &location)?;
        let movie = movie_from_raw(raw, date).map_err(|p| FeedError::invalid(answer, &location, p))?;
        match by_title.get(&movie.title) {
            Some(&at) => merge_movie(&mut movies[at], movie),
            None => {
                by_title.insert(movie.title.clone(), movies.len());
                movies.push(movie);
            }
        }
    }
    Ok(movies)
}

/// Deserializes one list item; an error names the field (path) at fault,
/// e.g. `theater #3 (id "abc"), field `latitude`: invalid type: ...`.
fn typed<T: serde::de::DeserializeOwned>(item: &Value, answer: Answer, location: &str) -> Result<T, FeedError> {
    serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        let location = match path.as_str() {
            "." => location.to_owned(),
            _ if e.inner().to_string().starts_with("missing field") => {
                format!("{location}, in `{path}`")
            }
            _ => format!("{location}, field `{path}`"),
        };
        FeedError::invalid(answer, location, e.into_inner().to_string())
    })
}

fn theater_from_raw(raw: RawTheater) -> Result<TheaterListing, String> {
    let external_id = raw.id.trim().to_owned();
    if external_id.is_empty() {
        return Err("field `id` is empty".into());
    }
    if external_id.len() > MAX_EXTERNAL_ID_LEN
        || !external_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!("field `id` must be 1 to {MAX_EXTERNAL_ID_LEN} letters, digits, '-' or '_'"));
    }
    let tid = raw.tid.unwrap_or_default().trim().to_owned();
    if tid.chars().count() > MAX_TID_LEN {
        return Err(format!("field `tid` is longer than {MAX_TID_LEN} characters"));
    }
    let name = clean_name(&raw.name, "name")?;
    if !(raw.latitude.is_finite() && (-90.0..=90.0).contains(&raw.latitude)) {
        return Err(format!("field `latitude` {} is not within -90..90", raw.latitude));
    }
    if !(raw.longitude.is_finite() && (-180.0..=180.0).contains(&raw.longitude)) {
        return Err(format!("field `longitude` {} is not within -180..180", raw.longitude));
    }
    Ok(TheaterListing { external_id, tid, name, latitude: raw.latitude, longitude: raw.longitude })
}

fn movie_from_raw(raw: RawMovie, date: NaiveDate) -> Result<MovieShowtimes, String> {
    let title = clean_name(&raw.name, "name")?;
    let duration_minutes =
        raw.duration_minutes.filter(|d| DURATION_RANGE.contains(d)).and_then(|d| i32::try_from(d).ok());
    let poster_url = raw.poster_image.and_then(|p| p.url).and_then(|u| clean_url(&u));

    let mut times = BTreeSet::new();
    let showtimes = raw
        .movie_variants
        .into_iter()
        .flatten()
        .flat_map(|v| v.amenity_groups.into_iter().flatten())
        .flat_map(|g| g.showtimes.into_iter().flatten());
    for showtime in showtimes {
        times.insert(parse_time(&showtime.provider_time)?);
    }
    Ok(MovieShowtimes { title, duration_minutes, poster_url, date, times: times.into_iter().collect() })
}

fn merge_movie(into: &mut MovieShowtimes, other: MovieShowtimes) {
    into.duration_minutes = into.duration_minutes.or(other.duration_minutes);
    if into.poster_url.is_none() {
        into.poster_url = other.poster_url;
    }
    into.times.extend(other.times);
    into.times.sort_unstable();
    into.times.dedup();
}

/// Trims a name and checks it is not empty and not too long.
fn clean_name(raw: &str, field: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(format!("field `{field}` is empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!("field `{field}` is longer than {MAX_NAME_LEN} characters"));
    }
    Ok(name.to_owned())
}

/// Keeps a poster URL only if it is a short enough http(s) URL.
fn clean_url(raw: &str) -> Option<String> {
    let url = raw.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    let has_host = url.split_once("//").is_some_and(|(_, rest)| !rest.is_empty());
    let clean = scheme_ok
        && has_host
        && url.len() <= MAX_POSTER_URL_LEN
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    clean.then(|| url.to_owned())
}

/// Parses `HH:MM:SS` or `HH:MM` (a local time of day).
fn parse_time(raw: &str) -> Result<NaiveTime, String> {
    let s = raw.trim();
    NaiveTime::parse_from_str(s, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
        // chrono accepts a leap second ("23:59:60"); a showtime never is one.
        .filter(|t| t.nanosecond() < 1_000_000_000)
        .ok_or_else(|| format!("field `providerTime` {raw:?} is not a time of day (HH:MM:SS)"))
}

/// `theater #3 (id "abc")` / `movie #2 ("Dune")`, counted from 1.
fn item_location(kind: &str, index: usize, key: Option<&Value>) -> String {
    let number = index + 1;
    match (kind, key.and_then(Value::as_str)) {
        ("theater", Some(id)) => format!("theater #{number} (id {:?})", shorten(id)),
        (_, Some(name)) => format!("{kind} #{number} ({:?})", shorten(name)),
        (_, None) => format!("{kind} #{number}"),
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        s.chars().take(MAX).chain("…".chars()).collect()
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Walks `path` from `root`, requiring an object at every step.
fn value_at<'a>(root: &'a Value, path: &[&str], answer: Answer) -> Result<&'a Value, FeedError> {
    let mut here = root;
    for (depth, key) in path.iter().enumerate() {
        let walked = path[..depth].join(".");
        let Some(object) = here.as_object() else {
            let at = if walked.is_empty() { "the answer".to_owned() } else { format!("`{walked}`") };
            return Err(FeedError::invalid(
                answer,
                path.join("."),
                format!("expected {at} to be an object, found {}", json_kind(here)),
            ));
        };
        here = match object.get(*key) {
            Some(Value::Null) | None => {
                return Err(FeedError::invalid(answer, path.join("."), format!("missing field `{key}`")))
            }
            Some(v) => v,
        };
    }
    Ok(here)
}

fn array_at<'a>(root: &'a Value, path: &[&str], answer: Answer) -> Result<&'a Vec<Value>, FeedError> {
    let v = value_at(root, path, answer)?;
    v.as_array()
        .ok_or_else(|| FeedError::invalid(answer, path.join("."), format!("expected an array, found {}", json_kind(v))))
}

fn object_at<'a>(
    root: &'a Value,
    path: &[&str],
    answer: Answer,
) -> Result<&'a serde_json::Map<String, Value>, FeedError> {
    let v = value_at(root, path, answer)?;
    v.as_object().ok_or_else(|| {
        FeedError::invalid(answer, path.join("."), format!("expected an object, found {}", json_kind(v)))
    })
}

// ---- Dates -------------------------------------------------------------------

/// Moves `date` by `days` (negative moves back); `None` off chrono's calendar.
///
/// Used by [`load_dir`] and by the fixture server, which shift the sample's
/// April 2024 dates so that its first day becomes today.
pub fn shift_days(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    date.checked_add_signed(chrono::TimeDelta::try_days(days)?)
}

/// Days to add to every date so that `earliest` becomes `target`.
pub fn days_between(earliest: NaiveDate, target: NaiveDate) -> i64 {
    (target - earliest).num_days()
}

// ---- A data set on disk --------------------------------------------------------

/// Reads a directory laid out like the bundled data set: `theaters-list.json`
/// and `theaters-detail/<id>.json` for every listed theater.
///
/// With `shift_to = Some(d)`, every date moves by the same number of days so
/// that the earliest `displayDate` of the data set becomes `d`.
pub fn load_dir(dir: &Path, shift_to: Option<NaiveDate>) -> Result<CatalogFeed, FeedError> {
    let listings = parse_theater_list(&read_file(&dir.join(LIST_FILE))?)?;
    let mut theaters = Vec::with_capacity(listings.len());
    for theater in listings {
        let path = detail_path(dir, &theater.external_id);
        let movies =
            read_file(&path).and_then(|body| parse_theater_detail(&body)).map_err(|e| e.in_theater(&theater))?;
        theaters.push(TheaterFeed { theater, movies });
    }
    let mut feed = CatalogFeed { theaters };
    if let (Some(target), Some(earliest)) = (shift_to, feed.earliest_date()) {
        shift_feed(&mut feed, days_between(earliest, target))?;
    }
    Ok(feed)
}

/// Moves every date in `feed` by `days`.
pub fn shift_feed(feed: &mut CatalogFeed, days: i64) -> Result<(), FeedError> {
    for movie in feed.theaters.iter_mut().flat_map(|t| &mut t.movies) {
        movie.date = shift_days(movie.date, days).ok_or(FeedError::DateShift { date: movie.date, days })?;
    }
    Ok(())
}

/// `dir/theaters-detail/<id>.json`; `id` is one [`parse_theater_list`] accepted,
/// so it cannot leave the folder.
pub fn detail_path(dir: &Path, external_id: &str) -> PathBuf {
    dir.join(DETAIL_DIR).join(format!("{external_id}.json"))
}

fn read_file(path: &Path) -> Result<Vec<u8>, FeedError> {
    std::fs::read(path).map_err(|source| FeedError::Io { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flixster-la-2024-04")
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn time(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M:%S").unwrap()
    }

    fn detail(movies: Value) -> Vec<u8> {
        json!({"data": {"theaterShowtimeGroupings": {
            "displayDates": ["2024-04-15"],
            "displayDate": "2024-04-15",
            "movies": movies,
        }}})
        .to_string()
        .into_bytes()
    }

    fn movie(name: &str, times: &[&str]) -> Value {
        let showtimes: Vec<Value> = times.iter().map(|t| json!({"providerTime": t})).collect();
        json!({
            "name": name,
            "durationMinutes": 120,
            "posterImage": {"url": "https://example.com/p.jpg"},
            "movieVariants": [{"amenityGroups": [{"showtimes": showtimes}]}],
        })
    }

    fn list(theaters: Value) -> Vec<u8> {
        json!({"data": {"theaters": theaters}}).to_string().into_bytes()
    }

    fn theater(id: &str) -> Value {
        json!({"id": id, "tid": "AAA", "name": "Rex", "latitude": 34.0, "longitude": -118.2})
    }

    #[test]
    fn the_sample_parses_with_the_counts_its_readme_gives() {
        let feed = load_dir(&sample_dir(), None).unwrap();
        assert_eq!(feed.theaters.len(), 110);
        assert_eq!(feed.pair_count(), 1168);
        assert_eq!(feed.earliest_date(), Some(date("2024-04-15")));
        for movie in feed.theaters.iter().flat_map(|t| &t.movies) {
            assert!(movie.times.windows(2).all(|w| w[0] < w[1]), "{}", movie.title);
        }
        // One name in the sample carries trailing spaces.
        assert!(feed.theaters.iter().any(|t| t.theater.name == "AMC Anaheim GardenWalk 6"));
    }

    #[test]
    fn load_dir_shifts_the_first_date_to_the_target() {
        let target = date("2031-01-30");
        let plain = load_dir(&sample_dir(), None).unwrap();
        let shifted = load_dir(&sample_dir(), Some(target)).unwrap();
        assert_eq!(shifted.earliest_date(), Some(target));
        let days = days_between(date("2024-04-15"), target);
        for (a, b) in plain.theaters.iter().zip(&shifted.theaters) {
            for (m, n) in a.movies.iter().zip(&b.movies) {
                assert_eq!(shift_days(m.date, days), Some(n.date));
                assert_eq!(m.times, n.times);
            }
        }
    }

    #[test]
    fn shift_days_moves_both_ways_and_refuses_overflow() {
        assert_eq!(shift_days(date("2024-04-15"), 20), Some(date("2024-05-05")));
        assert_eq!(shift_days(date("2024-03-01"), -1), Some(date("2024-02-29")));
        assert_eq!(shift_days(date("2024-03-01"), i64::MAX), None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let body = br#"{"data":{"theaters":[{"id":"a1","tid":"T","name":"Rex","latitude":1,
            "longitude":2,"address":{"city":"LA"},"extra":[1,2]}],"meta":true},"x":1}"#;
        let theaters = parse_theater_list(body).unwrap();
        assert_eq!(theaters[0].external_id, "a1");
        assert_eq!(theaters[0].latitude, 1.0);

        let mut m = movie("Dune", &["19:00:00"]);
        m["tomatoRating"] = json!({"tomatometer": 92});
        m["movieVariants"][0]["format"] = json!("IMAX");
        m["movieVariants"][0]["amenityGroups"][0]["showtimes"][0]["tms"] = json!("x");
        let movies = parse_theater_detail(&detail(json!([m]))).unwrap();
        assert_eq!(movies[0].times, vec![time("19:00:00")]);
    }

    #[test]
    fn times_are_merged_sorted_and_deduplicated() {
        let mut m = movie("Dune", &["21:00:00", "19:00"]);
        m["movieVariants"]
            .as_array_mut()
            .unwrap()
            .push(json!({"amenityGroups": [{"showtimes": [{"providerTime": "19:00:00"}]},
                                           {"showtimes": [{"providerTime": "10:30:00"}]}]}));
        let again = movie("Dune", &["23:15:00", "21:00:00"]);
        let movies = parse_theater_detail(&detail(json!([m, again]))).unwrap();
        assert_eq!(movies.len(), 1, "a repeated title is one entry");
        let want = ["10:30:00", "19:00:00", "21:00:00", "23:15:00"].map(time);
        assert_eq!(movies[0].times, want);
        assert_eq!(movies[0].date, date("2024-04-15"));
    }

    #[test]
    fn optional_fields_may_be_null_missing_or_unusable() {
        let movies = json!([
            {"name": "A", "durationMinutes": null, "posterImage": null,
             "movieVariants": [{"amenityGroups": [{"showtimes": [{"providerTime": "10:00:00"}]}]}]},
            {"name": "B", "posterImage": {"url": null}, "movieVariants": null},
            {"name": "C", "durationMinutes": 0, "posterImage": {"url": "ftp://x/p.jpg"},
             "movieVariants": [{"amenityGroups": null}]},
            {"name": "D", "durationMinutes": 601, "posterImage": {"url": "javascript:alert(1)"},
             "movieVariants": [{"amenityGroups": [{"showtimes": null}]}]},
            {"name": "E", "durationMinutes": -5, "posterImage": {"url": format!("https://x/{}", "a".repeat(1100))}},
            {"name": "F", "durationMinutes": 600, "posterImage": {"url": " HTTP://x.org/p.jpg "}},
        ]);
        let got = parse_theater_detail(&detail(movies)).unwrap();
        let durations: Vec<_> = got.iter().map(|m| m.duration_minutes).collect();
        assert_eq!(durations, [None, None, None, None, None, Some(600)]);
        let posters: Vec<_> = got.iter().map(|m| m.poster_url.as_deref()).collect();
        assert_eq!(posters, [None, None, None, None, None, Some("HTTP://x.org/p.jpg")]);
        assert_eq!(got[0].times.len(), 1);
        assert!(got[1..].iter().all(|m| m.times.is_empty()));
    }

    #[test]
    fn invalid_json_is_reported_as_such() {
        let err = parse_theater_list(b"{\"data\": {\"theaters\": [").unwrap_err();
        assert!(matches!(err, FeedError::Json { answer: Answer::TheaterList, .. }), "{err}");
        assert!(err.to_string().starts_with("theater list is not valid JSON"), "{err}");
        let err = parse_theater_detail(b"<html>502 Bad Gateway</html>").unwrap_err();
        assert!(err.to_string().starts_with("theater detail is not valid JSON"), "{err}");
    }

    #[test]
    fn a_missing_required_theater_field_names_the_theater_and_field() {
        for field in ["id", "name", "latitude", "longitude"] {
            let mut t = theater("b2");
            t.as_object_mut().unwrap().remove(field);
            let err = parse_theater_list(&list(json!([theater("a1"), t]))).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("theater #2"), "{msg}");
            assert!(msg.contains(&format!("missing field `{field}`")), "{msg}");
            if field != "id" {
                assert!(msg.contains("\"b2\""), "{msg}");
            }
        }
    }

    #[test]
    fn a_missing_envelope_is_named() {
        let err = parse_theater_list(br#"{"data": {}}"#).unwrap_err();
        assert_eq!(err.to_string(), "theater list, data.theaters: missing field `theaters`");
        let err = parse_theater_list(br#"{"message": "You are not subscribed"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `data`"), "{err}");
        let err = parse_theater_list(b"[]").unwrap_err();
        assert!(err.to_string().contains("expected the answer to be an object, found an array"));
        let err = parse_theater_detail(br#"{"data": {"theaterShowtimeGroupings": {"displayDate": "2024-04-15"}}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("missing field `movies`"), "{err}");
    }

    #[test]
    fn a_wrong_type_names_the_field_and_what_was_expected() {
        let mut t = theater("a1");
        t["latitude"] = json!("34.0");
        let msg = parse_theater_list(&list(json!([t]))).unwrap_err().to_string();
        assert_eq!(
            msg,
            "theater list, theater #1 (id \"a1\"), field `latitude`: \
             invalid type: string \"34.0\", expected f64"
        );

        let msg = parse_theater_list(br#"{"data": {"theaters": [42]}}"#).unwrap_err().to_string();
        assert_eq!(msg, "theater list, theater #1: invalid type: integer `42`, expected a theater object");

        let msg = parse_theater_list(br#"{"data": {"theaters": {"id": 1}}}"#).unwrap_err().to_string();
        assert!(msg.contains("data.theaters: expected an array, found an object"), "{msg}");

        let mut m = movie("Dune", &["19:00:00"]);
        m["durationMinutes"] = json!("166 min");
        let msg = parse_theater_detail(&detail(json!([m]))).unwrap_err().to_string();
        assert!(
            msg.contains(
                "movie #1 (\"Dune\"), field `durationMinutes`: \
                 invalid type: string \"166 min\", expected i64"
            ),
            "{msg}"
        );

        let mut m = movie("Dune", &["19:00:00"]);
        m["movieVariants"][0]["amenityGroups"][0]["showtimes"] = json!("19:00");
        let msg = parse_theater_detail(&detail(json!([m]))).unwrap_err().to_string();
        assert!(msg.contains("field `movieVariants[0].amenityGroups[0].showtimes`: invalid type"), "{msg}");

        let mut body: Value = serde_json::from_slice(&detail(json!([]))).unwrap();
        body["data"]["theaterShowtimeGroupings"]["displayDate"] = json!(20240415);
        let msg = parse_theater_detail(body.to_string().as_bytes()).unwrap_err().to_string();
        assert!(msg.contains("displayDate: expected a date string, found a number"), "{msg}");
    }

    #[test]
    fn a_missing_required_detail_field_is_named() {
        let mut body: Value = serde_json::from_slice(&detail(json!([]))).unwrap();
        body["data"]["theaterShowtimeGroupings"].as_object_mut().unwrap().remove("displayDate");
        let msg = parse_theater_detail(body.to_string().as_bytes()).unwrap_err().to_string();
        assert!(msg.contains("missing field `displayDate`"), "{msg}");

        let mut m = movie("Dune", &["19:00:00"]);
        m.as_object_mut().unwrap().remove("name");
        let msg = parse_theater_detail(&detail(json!([movie("Civil War", &[]), m]))).unwrap_err().to_string();
        assert!(msg.contains("movie #2: missing field `name`"), "{msg}");

        let mut m = movie("Dune", &["19:00:00"]);
        m["movieVariants"][0]["amenityGroups"][0]["showtimes"][0] = json!({"date": "x"});
        let msg = parse_theater_detail(&detail(json!([m]))).unwrap_err().to_string();
        assert!(
            msg.contains(
                "movie #1 (\"Dune\"), in `movieVariants[0].amenityGroups[0].showtimes[0]`: \
                 missing field `providerTime`"
            ),
            "{msg}"
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let cases = [
            ("latitude", json!(91.5), "field `latitude` 91.5 is not within -90..90"),
            ("longitude", json!(-180.5), "field `longitude` -180.5 is not within -180..180"),
            ("name", json!("   "), "field `name` is empty"),
            ("name", json!("x".repeat(256)), "longer than 255 characters"),
            ("id", json!("../../etc/passwd"), "field `id` must be 1 to 64"),
            ("id", json!(""), "field `id` is empty"),
        ];
        for (field, value, want) in cases {
            let mut t = theater("a1");
            t[field] = value;
            let msg = parse_theater_list(&list(json!([t]))).unwrap_err().to_string();
            assert!(msg.contains(want), "{field}: {msg}");
        }
        let msg = parse_theater_list(&list(json!([theater("a1"), theater("a1")]))).unwrap_err().to_string();
        assert!(msg.contains("theater #2 (id \"a1\"): this id is listed twice"), "{msg}");

        let ok = parse_theater_list(&list(json!([{"id": "z", "name": " Rex  ", "latitude": -90,
            "longitude": 180}])))
        .unwrap();
        assert_eq!((ok[0].name.as_str(), ok[0].tid.as_str()), ("Rex", ""));
    }

    #[test]
    fn bad_dates_and_times_are_refused() {
        for bad in ["25:00:00", "19h00", "", "7pm", "23:59:60"] {
            let msg = parse_theater_detail(&detail(json!([movie("Dune", &[bad])]))).unwrap_err().to_string();
            assert!(msg.contains("is not a time of day"), "{bad}: {msg}");
        }
        let mut body: Value = serde_json::from_slice(&detail(json!([]))).unwrap();
        body["data"]["theaterShowtimeGroupings"]["displayDate"] = json!("15/04/2024");
        let msg = parse_theater_detail(body.to_string().as_bytes()).unwrap_err().to_string();
        assert!(msg.contains("\"15/04/2024\" is not a date"), "{msg}");
    }

    #[test]
    fn a_bad_file_in_a_data_set_names_its_theater() {
        let dir = std::env::temp_dir().join(format!("marquee-feed-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(DETAIL_DIR)).unwrap();
        std::fs::write(dir.join(LIST_FILE), list(json!([theater("a1"), theater("b2")]))).unwrap();
        std::fs::write(detail_path(&dir, "a1"), detail(json!([movie("Dune", &["19:00"])]))).unwrap();

        let msg = load_dir(&dir, None).unwrap_err().to_string();
        assert!(msg.starts_with("theater b2 (Rex): cannot read"), "{msg}");

        std::fs::write(detail_path(&dir, "b2"), b"{\"data\": ").unwrap();
        let msg = load_dir(&dir, None).unwrap_err().to_string();
        assert!(msg.starts_with("theater b2 (Rex): theater detail is not valid JSON"), "{msg}");

        std::fs::write(detail_path(&dir, "b2"), detail(json!([]))).unwrap();
        let feed = load_dir(&dir, Some(date("2030-01-01"))).unwrap();
        assert_eq!(feed.pair_count(), 1);
        assert_eq!(feed.theaters[0].movies[0].date, date("2030-01-01"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Any answer, whether bytes, JSON of any shape, or a real answer of the bundled data set
/// with fields dropped or changed (nulls, wrong types, huge numbers, empty arrays), gives
/// clean values or a `Json`/`Invalid` error; never a panic. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::{broken_json, bytes, json_with_keys, mutations_of};
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    pub const CASES: u32 = 300;

    const KEYS: &[&str] = &[
        "data",
        "theaters",
        "id",
        "tid",
        "name",
        "latitude",
        "longitude",
        "theaterShowtimeGroupings",
        "displayDate",
        "movies",
        "durationMinutes",
        "posterImage",
        "url",
        "movieVariants",
        "amenityGroups",
        "showtimes",
        "providerTime",
    ];

    fn sample(file: &str) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flixster-la-2024-04").join(file);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// The largest detail answer of the data set.
    const DETAIL: &str = "theaters-detail/NXRfWXfkVcm1soG.json";

    fn check_list(body: &[u8]) -> Result<(), TestCaseError> {
        match parse_theater_list(body) {
            Ok(theaters) => {
                let ids: HashSet<_> = theaters.iter().map(|t| &t.external_id).collect();
                prop_assert_eq!(ids.len(), theaters.len(), "an id listed twice");
                for t in &theaters {
                    prop_assert!((1..=MAX_EXTERNAL_ID_LEN).contains(&t.external_id.len()));
                    prop_assert!(t.external_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                    prop_assert!(t.tid.chars().count() <= MAX_TID_LEN);
                    prop_assert!(!t.name.is_empty() && t.name.chars().count() <= MAX_NAME_LEN);
                    prop_assert_eq!(t.name.trim(), t.name.as_str());
                    prop_assert!((-90.0..=90.0).contains(&t.latitude) && (-180.0..=180.0).contains(&t.longitude));
                }
            }
            Err(
                FeedError::Json { answer: Answer::TheaterList, .. }
                | FeedError::Invalid { answer: Answer::TheaterList, .. },
            ) => {}
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
        Ok(())
    }

    fn check_detail(body: &[u8]) -> Result<(), TestCaseError> {
        match parse_theater_detail(body) {
            Ok(movies) => {
                let titles: HashSet<_> = movies.iter().map(|m| &m.title).collect();
                prop_assert_eq!(titles.len(), movies.len(), "a title listed twice");
                for m in &movies {
                    prop_assert!(!m.title.is_empty() && m.title.chars().count() <= MAX_NAME_LEN);
                    prop_assert!(m.times.windows(2).all(|w| w[0] < w[1]), "times not sorted: {:?}", m.times);
                    prop_assert!(m.duration_minutes.is_none_or(|d| DURATION_RANGE.contains(&i64::from(d))));
                    prop_assert!(m
                        .poster_url
                        .as_ref()
                        .is_none_or(|u| u.len() <= MAX_POSTER_URL_LEN && u.to_ascii_lowercase().starts_with("http")));
                }
            }
            Err(
                FeedError::Json { answer: Answer::TheaterDetail, .. }
                | FeedError::Invalid { answer: Answer::TheaterDetail, .. },
            ) => {}
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_bytes_are_an_answer_or_a_typed_error(body in bytes()) {
            check_list(&body)?;
            check_detail(&body)?;
        }

        #[test]
        fn any_json_is_an_answer_or_a_typed_error(v in json_with_keys(KEYS)) {
            let body = v.to_string().into_bytes();
            check_list(&body)?;
            check_detail(&body)?;
            let wrapped = serde_json::json!({"data": {"theaters": v.clone(), "theaterShowtimeGroupings": v}});
            check_list(wrapped.to_string().as_bytes())?;
            check_detail(wrapped.to_string().as_bytes())?;
        }

        #[test]
        fn a_real_list_changed_anywhere_is_theaters_or_a_typed_error(v in mutations_of(sample(LIST_FILE))) {
            check_list(v.to_string().as_bytes())?;
        }

        #[test]
        fn a_real_detail_changed_anywhere_is_movies_or_a_typed_error(v in mutations_of(sample(DETAIL))) {
            check_detail(v.to_string().as_bytes())?;
        }

        #[test]
        fn a_real_answer_cut_short_or_with_a_byte_changed_is_an_answer_or_a_typed_error(
            list in broken_json(Just(sample(LIST_FILE))),
            detail in broken_json(Just(sample(DETAIL))),
        ) {
            check_list(&list)?;
            check_detail(&detail)?;
        }
    }

    #[test]
    fn the_unchanged_samples_parse() {
        assert_eq!(parse_theater_list(sample(LIST_FILE).to_string().as_bytes()).unwrap().len(), 110);
        assert!(!parse_theater_detail(sample(DETAIL).to_string().as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn deep_nesting_is_a_json_error_not_a_stack_overflow() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(parse_theater_list(body.as_bytes()), Err(FeedError::Json { .. })));
        let body = format!("{}{}", "{\"data\":".repeat(100_000), "}".repeat(100_000));
        assert!(matches!(parse_theater_detail(body.as_bytes()), Err(FeedError::Json { .. })));
    }
}
