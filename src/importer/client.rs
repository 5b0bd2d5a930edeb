//! The HTTP client for the Flixster API (through RapidAPI), over awc.
//!
//! [`FlixsterClient::fetch_catalog`] reads the theater list, then every
//! theater's detail with a bounded number of requests in flight, retrying
//! 429 and 5xx answers with backoff. Any failure fails the whole fetch, so a
//! bad, slow or partial answer never reaches the catalog.
//!
//! awc's client is not `Send`: call this from inside an actix System (an
//! actor, `actix_rt::System`, or an actix-web handler).

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use awc::error::{PayloadError, SendRequestError};
use futures::{StreamExt, TryFutureExt};
use rand::Rng;

use super::feed::{
    parse_theater_detail, parse_theater_list, CatalogFeed, FeedError, MovieShowtimes, TheaterFeed, TheaterListing,
};

/// RapidAPI's host name for the Flixster API (the `X-RapidAPI-Host` header).
pub const DEFAULT_API_HOST: &str = "flixster.p.rapidapi.com";
/// The real API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://flixster.p.rapidapi.com";

/// Where and how to fetch. `Debug` never shows the key.
#[derive(Clone)]
pub struct FlixsterConfig {
    /// e.g. `https://flixster.p.rapidapi.com`, or the fixture's `http://127.0.0.1:8091`.
    pub base_url: String,
    /// Sent as `X-RapidAPI-Key`; without one the API answers 401.
    pub api_key: Option<String>,
    /// Sent as `X-RapidAPI-Host`.
    pub api_host: String,
    /// `zipCode` of the theater search.
    pub zip: String,
    /// `radius` of the theater search, in miles.
    pub radius_miles: u32,
    /// Detail requests in flight at once.
    pub concurrency: usize,
    /// Limit for one request, answer body included.
    pub timeout: Duration,
    /// Largest answer accepted.
    pub max_body_bytes: usize,
    /// Retries of one request after a 429, a 5xx or a broken connection.
    pub max_retries: u32,
    /// First backoff delay; doubles with every retry (with jitter).
    pub retry_base_delay: Duration,
    /// Cap on any wait between retries, `Retry-After` included.
    pub max_retry_delay: Duration,
    /// FEED_TIMEZONE: the zone of a theater the feed gives no coordinates for (the feed's
    /// show times are local times).
    pub feed_timezone: chrono_tz::Tz,
}

impl Default for FlixsterConfig {
    fn default() -> Self {
        FlixsterConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            api_host: DEFAULT_API_HOST.to_owned(),
            zip: "90002".to_owned(),
            radius_miles: 50,
            concurrency: 4,
            timeout: Duration::from_secs(10),
            max_body_bytes: 4 * 1024 * 1024,
            max_retries: 3,
            retry_base_delay: Duration::from_millis(250),
            max_retry_delay: Duration::from_secs(30),
            feed_timezone: crate::catalog::DEFAULT_FEED_TIMEZONE,
        }
    }
}

impl fmt::Debug for FlixsterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlixsterConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_host", &self.api_host)
            .field("zip", &self.zip)
            .field("radius_miles", &self.radius_miles)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_retries", &self.max_retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("max_retry_delay", &self.max_retry_delay)
            .finish()
    }
}

/// How far a fetch has come: `done` of `total` theaters have their detail.
/// Reported once after the list (`done == 0`) and after each theater.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// A complete catalog and what it took to get it.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchReport {
    pub feed: CatalogFeed,
    /// HTTP requests sent, retries included.
    pub requests: u32,
    /// Requests that were sent again after a 429, a 5xx or a broken connection.
    pub retries: u32,
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Transport(String),
    #[error("HTTP {status}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        status: StatusCode,
        /// The API's own `message`, shortened.
        message: Option<String>,
    },
    #[error("answer larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the answer failed: {0}")]
    Body(String),
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp {
        attempts: u32,
        #[source]
        last: Box<FetchError>,
    },
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// Why a whole fetch failed; the message names the theater when one is to blame.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("invalid importer settings: {0}")]
    Config(String),
    /// The list request failed.
    #[error("theater list: {0}")]
    List(#[source] FetchError),
    /// The list arrived but is not a valid theater list.
    #[error(transparent)]
    Feed(FeedError),
    /// One theater's detail failed.
    #[error("theater {id} ({name}): {source}")]
    Theater {
        id: String,
        name: String,
        #[source]
        source: FetchError,
    },
}

/// Fetches the catalog from the Flixster API. Cheap to clone and `Send`; each
/// fetch opens its own connections.
#[derive(Debug, Clone)]
pub struct FlixsterClient {
    cfg: FlixsterConfig,
    key: Option<HeaderValue>,
    host: HeaderValue,
}

/// Counts shared by the requests of one fetch (all on one thread).
#[derive(Default)]
struct Counters {
    requests: Cell<u32>,
    retries: Cell<u32>,
}

/// One failed attempt, and whether it is worth another.
struct Failure {
    error: FetchError,
    retry: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn fatal(error: FetchError) -> Self {
        Failure { error, retry: false, retry_after: None }
    }

    fn transient(error: FetchError) -> Self {
        Failure { error, retry: true, retry_after: None }
    }
}

impl FlixsterClient {
    /// Checks the settings.
    pub fn new(mut cfg: FlixsterConfig) -> Result<Self, ImportError> {
        let bad = |m: &str| Err(ImportError::Config(m.to_owned()));
        cfg.base_url = cfg.base_url.trim().trim_end_matches('/').to_owned();
        let lower = cfg.base_url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return bad("the API base URL must start with http:// or https://");
        }
        if cfg.zip.trim().is_empty() {
            return bad("the zip code is empty");
        }
        if cfg.concurrency == 0 {
            return bad("concurrency must be at least 1");
        }
        if cfg.timeout.is_zero() {
            return bad("the request timeout must be more than zero");
        }
        if cfg.max_body_bytes == 0 {
            return bad("the answer size cap must be more than zero");
        }
        let key = match cfg.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            Some(key) => {
                let Ok(mut value) = HeaderValue::from_str(key) else {
                    return bad("the API key has characters an HTTP header cannot carry");
                };
                value.set_sensitive(true);
                Some(value)
            }
        };
        let Ok(host) = HeaderValue::from_str(cfg.api_host.trim()) else {
            return bad("the API host has characters an HTTP header cannot carry");
        };
        Ok(FlixsterClient { cfg, key, host })
    }

    pub fn config(&self) -> &FlixsterConfig {
        &self.cfg
    }

    /// Fetches the theater list and every theater's detail. Fails as a whole
    /// on the first request that fails for good, naming the theater.
    pub async fn fetch_catalog(&self, mut progress: impl FnMut(Progress)) -> Result<FetchReport, ImportError> {
        ensure_crypto_provider();
        let http = awc::Client::builder()
            .timeout(self.cfg.timeout)
            .add_default_header(("X-RapidAPI-Host", self.host.clone()))
            .finish();
        let counters = Counters::default();

        let list_query = [("zipCode", self.cfg.zip.trim().to_owned()), ("radius", self.cfg.radius_miles.to_string())];
        let body = self.get(&http, "/theaters/list", &list_query, &counters).await.map_err(ImportError::List)?;
        let listings = parse_theater_list(&body).map_err(ImportError::Feed)?;
        let total = listings.len();
        log::info!("Flixster: {total} theaters listed, fetching their showtimes");
        progress(Progress { done: 0, total });

        let mut movies: Vec<Option<Vec<MovieShowtimes>>> = vec![None; total];
        let mut details = futures::stream::iter(listings.iter().enumerate())
            .map(|(index, theater)| {
                self.fetch_detail(&http, theater, &counters).map_ok(move |found| (index, found)).map_err(|source| {
                    ImportError::Theater { id: theater.external_id.clone(), name: theater.name.clone(), source }
                })
            })
            .buffer_unordered(self.cfg.concurrency);
        let mut done = 0;
        while let Some(result) = details.next().await {
            let (index, found) = result.inspect_err(|e| log::warn!("Flixster import failed: {e}"))?;
            movies[index] = Some(found);
            done += 1;
            progress(Progress { done, total });
        }
        drop(details);

        let theaters = listings
            .into_iter()
            .zip(movies)
            .map(|(theater, movies)| TheaterFeed { theater, movies: movies.unwrap_or_default() })
            .collect();
        let report = FetchReport {
            feed: CatalogFeed { theaters },
            requests: counters.requests.get(),
            retries: counters.retries.get(),
        };
        log::info!(
            "Flixster: fetched {} theaters, {} theater-movie pairs ({} requests, {} retries)",
            report.feed.theaters.len(),
            report.feed.pair_count(),
            report.requests,
            report.retries
        );
        Ok(report)
    }

    async fn fetch_detail(
        &self,
        http: &awc::Client,
        theater: &TheaterListing,
        counters: &Counters,
    ) -> Result<Vec<MovieShowtimes>, FetchError> {
        let query = [("id", theater.external_id.clone())];
        let body = self.get(http, "/theaters/detail", &query, counters).await?;
        Ok(parse_theater_detail(&body)?)
    }

    /// One GET, retried on 429, 5xx and broken connections.
    async fn get(
        &self,
        http: &awc::Client,
        path: &str,
        query: &[(&str, String)],
        counters: &Counters,
    ) -> Result<Bytes, FetchError> {
        let url = format!("{}{path}", self.cfg.base_url);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            counters.requests.set(counters.requests.get() + 1);
            log::debug!("GET {url} {query:?} (attempt {attempt})");
            let sent = actix_rt::time::timeout(self.cfg.timeout, self.attempt(http, &url, query));
            let failure = match sent.await {
                Ok(Ok(body)) => return Ok(body),
                Ok(Err(failure)) => failure,
                Err(_elapsed) => Failure::fatal(FetchError::Timeout(self.cfg.timeout)),
            };
            if !failure.retry || attempt > self.cfg.max_retries {
                return Err(match attempt {
                    1 => failure.error,
                    attempts => FetchError::GaveUp { attempts, last: Box::new(failure.error) },
                });
            }
            let delay = failure.retry_after.unwrap_or_else(|| self.backoff(attempt)).min(self.cfg.max_retry_delay);
            log::warn!("GET {url} {query:?}: {}; retrying in {} ms", failure.error, delay.as_millis());
            counters.retries.set(counters.retries.get() + 1);
            actix_rt::time::sleep(delay).await;
        }
    }

    /// `retry_base_delay * 2^(attempt-1)`, between half and all of it.
    fn backoff(&self, attempt: u32) -> Duration {
        let full = self.cfg.retry_base_delay.saturating_mul(1 << attempt.saturating_sub(1).min(16));
        let half = full / 2;
        half + half.mul_f64(rand::thread_rng().gen::<f64>())
    }

    async fn attempt(&self, http: &awc::Client, url: &str, query: &[(&str, String)]) -> Result<Bytes, Failure> {
        let mut request = http
            .get(url)
            .query(&query)
            .map_err(|e| Failure::fatal(FetchError::Transport(format!("bad query: {e}"))))?;
        if let Some(key) = &self.key {
            request = request.insert_header(("X-RapidAPI-Key", key.clone()));
        }
        let mut response = request.send().await.map_err(|e| match e {
            SendRequestError::Timeout => Failure::fatal(FetchError::Timeout(self.cfg.timeout)),
            SendRequestError::Url(e) => Failure::fatal(FetchError::Transport(e.to_string())),
            other => Failure::transient(FetchError::Transport(other.to_string())),
        })?;

        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = response.body().limit(64 * 1024).await.unwrap_or_default();
            return Err(Failure {
                error: FetchError::Status {
                    status,
                    message: api_message(&body).filter(|m| Some(m.as_str()) != status.canonical_reason()),
                },
                retry: status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
                retry_after,
            });
        }

        response.body().limit(self.cfg.max_body_bytes).await.map_err(|e| match e {
            PayloadError::Overflow => Failure::fatal(FetchError::TooLarge { limit: self.cfg.max_body_bytes }),
            other => Failure::transient(FetchError::Body(other.to_string())),
        })
    }
}

/// Installs rustls' ring provider as the process default, unless one is
/// already installed: awc's HTTPS connector needs one and would panic if two
/// providers were compiled in and neither was chosen.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The `message` of a RapidAPI error answer, printable and at most 200 characters.
fn api_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = value.get("message")?.as_str()?;
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let cfg = FlixsterConfig { api_key: Some("s3cr3t-key".into()), ..FlixsterConfig::default() };
        assert!(!format!("{cfg:?}").contains("s3cr3t"));
        let client = FlixsterClient::new(cfg).unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let cases = [
            (FlixsterConfig { base_url: "ftp://x".into(), ..Default::default() }, "must start with http"),
            (FlixsterConfig { concurrency: 0, ..Default::default() }, "concurrency"),
            (FlixsterConfig { api_key: Some("a\nb".into()), ..Default::default() }, "API key has characters"),
            (FlixsterConfig { timeout: Duration::ZERO, ..Default::default() }, "timeout"),
        ];
        for (cfg, want) in cases {
            let msg = FlixsterClient::new(cfg).unwrap_err().to_string();
            assert!(msg.contains(want), "{msg}");
        }
        let ok =
            FlixsterClient::new(FlixsterConfig { base_url: " http://127.0.0.1:8091/ ".into(), ..Default::default() })
                .unwrap();
        assert_eq!(ok.config().base_url, "http://127.0.0.1:8091");
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped_by_the_caller() {
        let client = FlixsterClient::new(FlixsterConfig::default()).unwrap();
        for attempt in 1..=4 {
            let full = Duration::from_millis(250) * 2u32.pow(attempt - 1);
            let d = client.backoff(attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(client.backoff(100) <= Duration::from_millis(250) * (1 << 16));
    }

    #[test]
    fn error_messages_read_well() {
        let e = FetchError::GaveUp {
            attempts: 4,
            last: Box::new(FetchError::Status { status: StatusCode::INTERNAL_SERVER_ERROR, message: None }),
        };
        assert_eq!(e.to_string(), "gave up after 4 attempts: HTTP 500 Internal Server Error");
        let e = ImportError::Theater {
            id: "abc".into(),
            name: "Rex".into(),
            source: FetchError::Timeout(Duration::from_millis(300)),
        };
        assert_eq!(e.to_string(), "theater abc (Rex): no answer within 300 ms");
        assert_eq!(
            api_message(br#"{"message": "You are not\nsubscribed."}"#).as_deref(),
            Some("You are not subscribed.")
        );
        assert_eq!(api_message(b"<html>"), None);
    }
}

/// An error answer's body is whatever the API sent: its `message` is taken only as
/// printable text of at most 200 characters. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::{bytes, json_with_keys, text};
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    fn check(body: &[u8]) -> Result<(), TestCaseError> {
        if let Some(m) = api_message(body) {
            prop_assert!(!m.is_empty() && m.chars().count() <= 200);
            prop_assert!(!m.chars().any(char::is_control));
            prop_assert_eq!(m.trim(), m.as_str());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_error_body_gives_a_short_printable_message_or_none(
            body in prop_oneof![bytes(), json_with_keys(&["message"]).prop_map(|v| v.to_string().into_bytes())],
            message in text(),
        ) {
            check(&body)?;
            check(serde_json::json!({ "message": message }).to_string().as_bytes())?;
        }
    }
}
