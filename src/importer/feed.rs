//! The Flixster answers, parsed into a typed feed ("parse, don't validate"). Unknown
//! fields are ignored; a missing or malformed required field is an error naming where.
use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("{context}: invalid answer: {cause}")]
    Invalid { context: String, cause: String },
    #[error("{context}: cannot read: {cause}")]
    Io { context: String, cause: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TheaterListing {
    pub external_id: String,
    pub tid: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MovieShowtimes {
    pub title: String,
    pub duration_minutes: Option<i32>,
    pub poster_url: Option<String>,
    pub date: NaiveDate,
    /// Sorted, without duplicates.
    pub times: Vec<NaiveTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TheaterFeed {
    pub theater: TheaterListing,
    pub movies: Vec<MovieShowtimes>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogFeed {
    pub theaters: Vec<TheaterFeed>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct ListData {
    theaters: Vec<RawTheater>,
}

#[derive(Deserialize)]
struct RawTheater {
    id: String,
    #[serde(default)]
    tid: Option<String>,
    name: String,
    latitude: f64,
    longitude: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailData {
    theater_showtime_groupings: Groupings,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Groupings {
    display_date: String,
    #[serde(default)]
    movies: Vec<RawMovie>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMovie {
    name: String,
    #[serde(default)]
    duration_minutes: Option<serde_json::Value>,
    #[serde(default)]
    poster_image: Option<PosterImage>,
    #[serde(default)]
    movie_variants: Vec<Variant>,
}

#[derive(Deserialize)]
struct PosterImage {
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Variant {
    #[serde(default)]
    amenity_groups: Vec<AmenityGroup>,
}

#[derive(Deserialize)]
struct AmenityGroup {
    #[serde(default)]
    showtimes: Vec<Showtime>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Showtime {
    provider_time: String,
}

fn invalid(context: &str, cause: impl ToString) -> FeedError {
    FeedError::Invalid { context: context.to_string(), cause: cause.to_string() }
}

fn clean_text(context: &str, field: &str, s: &str, max: usize) -> Result<String, FeedError> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(invalid(context, format!("{field} must be 1 to {max} characters of text")));
    }
    Ok(t.to_string())
}

/// Parses `GET /theaters/list`.
pub fn parse_theater_list(body: &[u8]) -> Result<Vec<TheaterListing>, FeedError> {
    let ctx = "theater list";
    let env: Envelope<ListData> = serde_json::from_slice(body).map_err(|e| invalid(ctx, e))?;
    env.data
        .theaters
        .into_iter()
        .map(|t| {
            let ctx = format!("theater {}", t.id.chars().take(64).collect::<String>());
            let external_id = clean_text(&ctx, "id", &t.id, 64)?;
            if !external_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(invalid(&ctx, "id must be letters and digits"));
            }
            if !(-90.0..=90.0).contains(&t.latitude) || !(-180.0..=180.0).contains(&t.longitude) {
                return Err(invalid(&ctx, "latitude/longitude out of range"));
            }
            Ok(TheaterListing {
                tid: t.tid.map(|s| s.trim().chars().take(32).collect()).unwrap_or_default(),
                name: clean_text(&ctx, "name", &t.name, 255)?,
                external_id,
                latitude: t.latitude,
                longitude: t.longitude,
            })
        })
        .collect()
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M")).ok()
}

/// Parses `GET /theaters/detail?id=..` for the theater named in `context`.
pub fn parse_theater_detail(body: &[u8], context: &str) -> Result<Vec<MovieShowtimes>, FeedError> {
    let env: Envelope<DetailData> = serde_json::from_slice(body).map_err(|e| invalid(context, e))?;
    let g = env.data.theater_showtime_groupings;
    let date = NaiveDate::parse_from_str(g.display_date.trim(), "%Y-%m-%d").map_err(|_| {
        invalid(context, format!("displayDate '{}' is not a date", g.display_date.chars().take(20).collect::<String>()))
    })?;
    let mut out: Vec<MovieShowtimes> = Vec::new();
    for m in g.movies {
        let title = clean_text(context, "movie name", &m.name, 255)?;
        let mctx = format!("{context}, movie '{title}'");
        let mut times = BTreeSet::new();
        for st in m.movie_variants.iter().flat_map(|v| &v.amenity_groups).flat_map(|a| &a.showtimes) {
            let t = parse_time(st.provider_time.trim()).ok_or_else(|| {
                invalid(
                    &mctx,
                    format!("providerTime '{}' is not a time", st.provider_time.chars().take(20).collect::<String>()),
                )
            })?;
            times.insert(t);
        }
        let duration_minutes =
            m.duration_minutes.and_then(|v| v.as_i64()).filter(|d| (1..=600).contains(d)).map(|d| d as i32);
        let poster_url = m
            .poster_image
            .and_then(|p| p.url)
            .map(|u| u.trim().to_string())
            .filter(|u| u.len() <= 1024 && (u.starts_with("https://") || u.starts_with("http://")));
        // The same movie may come twice (variants listed apart): merge its times.
        if let Some(existing) = out.iter_mut().find(|o| o.title == title) {
            existing.times.extend(times);
            existing.times.sort();
            existing.times.dedup();
            continue;
        }
        out.push(MovieShowtimes { title, duration_minutes, poster_url, date, times: times.into_iter().collect() });
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, FeedError> {
    std::fs::read(path).map_err(|e| FeedError::Io { context: path.display().to_string(), cause: e.to_string() })
}

/// Reads a directory laid out like the bundled sample (`theaters-list.json`,
/// `theaters-detail/<id>.json`). With `shift_to`, the data set's earliest date becomes
/// that date and every other date moves with it.
pub fn load_dir(dir: &Path, shift_to: Option<NaiveDate>) -> Result<CatalogFeed, FeedError> {
    let listings = parse_theater_list(&read(&dir.join("theaters-list.json"))?)?;
    let mut theaters = Vec::with_capacity(listings.len());
    for theater in listings {
        let path = dir.join("theaters-detail").join(format!("{}.json", theater.external_id));
        let ctx = format!("theater {} ({})", theater.external_id, theater.name);
        let movies = if path.exists() { parse_theater_detail(&read(&path)?, &ctx)? } else { Vec::new() };
        theaters.push(TheaterFeed { theater, movies });
    }
    let mut feed = CatalogFeed { theaters };
    if let Some(target) = shift_to {
        shift_days(&mut feed, target);
    }
    Ok(feed)
}

/// Moves every date of the feed so that its earliest date becomes `target`.
pub fn shift_days(feed: &mut CatalogFeed, target: NaiveDate) {
    let Some(first) = feed.theaters.iter().flat_map(|t| &t.movies).map(|m| m.date).min() else { return };
    let delta = target - first;
    for m in feed.theaters.iter_mut().flat_map(|t| &mut t.movies) {
        m.date += delta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/flixster-la-2024-04")
    }

    #[test]
    fn the_bundled_sample_parses_whole() {
        let feed = load_dir(&sample(), None).unwrap();
        assert_eq!(feed.theaters.len(), 110);
        let pairs: usize = feed.theaters.iter().map(|t| t.movies.len()).sum();
        assert_eq!(pairs, 1168);
    }

    #[test]
    fn shifting_moves_the_first_date() {
        let d = NaiveDate::from_ymd_opt(2030, 1, 2).unwrap();
        let feed = load_dir(&sample(), Some(d)).unwrap();
        assert_eq!(feed.theaters.iter().flat_map(|t| &t.movies).map(|m| m.date).min(), Some(d));
    }

    #[test]
    fn unknown_fields_are_ignored_and_bad_answers_named() {
        let ok = br#"{"data":{"theaterShowtimeGroupings":{"displayDate":"2024-04-15","extra":1,"movies":[{"name":"X","durationMinutes":null,"movieVariants":[{"amenityGroups":[{"showtimes":[{"providerTime":"19:00:00","x":2},{"providerTime":"12:30"}]}]}]}]}}}"#;
        let m = parse_theater_detail(ok, "t1").unwrap();
        assert_eq!(m[0].times.len(), 2);
        assert_eq!(m[0].duration_minutes, None);
        let missing = br#"{"data":{"theaterShowtimeGroupings":{"movies":[]}}}"#;
        assert!(parse_theater_detail(missing, "t1").unwrap_err().to_string().contains("displayDate"));
        let wrong_type = br#"{"data":{"theaters":[{"id":"a","name":"A","latitude":"north","longitude":1}]}}"#;
        assert!(parse_theater_list(wrong_type).is_err());
        let broken = br#"{"data":{"theaters":[{"id":"a""#;
        assert!(parse_theater_list(broken).unwrap_err().to_string().contains("theater list"));
        let bad_time = br#"{"data":{"theaterShowtimeGroupings":{"displayDate":"2024-04-15","movies":[{"name":"X","movieVariants":[{"amenityGroups":[{"showtimes":[{"providerTime":"25:99"}]}]}]}]}}}"#;
        assert!(parse_theater_detail(bad_time, "theater T").unwrap_err().to_string().contains("theater T"));
    }
}
