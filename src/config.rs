//! Settings, read once from environment variables (each documented in the README).
use crate::domain::AdminPassword;
use crate::importer::{FlixsterConfig, DEFAULT_BASE_URL};
use chrono::Duration;
use std::env;
use std::fmt;
use std::str::FromStr;

/// The key sent to an API that is not the real one (`marquee fixture-api`) when
/// FLIXSTER_API_KEY is unset: the fixture wants the header, not a particular key.
pub const LOCAL_API_KEY: &str = "marquee-local";

#[derive(Debug, Clone)]
pub struct Settings {
    /// DATABASE_URL: this node's own database (created and migrated on start).
    pub database_url: String,
    /// MARQUEE_BIND: where the node listens.
    pub bind: String,
    /// INTERNAL_BIND: where the node-to-node endpoints (`/internal/`) listen, on a listener
    /// of their own; the public one then answers 404 for them. None (unset, or the same as
    /// MARQUEE_BIND): everything on the one listener.
    pub internal_bind: Option<String>,
    /// LIVE_BIND: where the live seat maps' websockets (`/shows/{id}/live`) also listen, on a
    /// listener with workers of its own (LIVE_WORKERS), so that fanning a change out to
    /// thousands of sockets never delays a hold on the site's workers. The site's listener
    /// serves them too (a page reached without a proxy still works). None (unset, or the
    /// same as MARQUEE_BIND): only the site's listener.
    pub live_bind: Option<String>,
    /// LIVE_WORKERS: the live listener's worker threads (default: half the CPUs, at least
    /// one, so that a fan-out leaves the rest to the site's workers).
    pub live_workers: usize,
    /// HOLD_MINUTES: how long a hold keeps its seats (fractions allowed, e.g. 0.1).
    pub hold_duration: Duration,
    /// CANCEL_CUTOFF_MINUTES: no cancelling later than this before the show.
    pub cancel_cutoff: Duration,
    /// DB_POOL_SIZE: connections for reads and show loads.
    pub db_pool_size: u32,
    /// MARQUEE_WORKERS: HTTP worker threads (and show-actor arbiters).
    pub workers: usize,
    /// MARQUEE_TEMPLATES / MARQUEE_ASSETS: where the pages and static files are.
    pub templates_dir: String,
    pub assets_dir: String,
    /// MAX_BODY_BYTES: the largest request body accepted.
    pub max_body_bytes: usize,
    /// NODE_ID, PEERS / PEER_DISCOVERY, CLUSTER_SECRET and the timeouts.
    pub cluster: crate::cluster::ClusterConfig,
    /// FLIXSTER_BASE_URL, FLIXSTER_API_KEY, FLIXSTER_API_HOST, IMPORT_ZIP,
    /// IMPORT_RADIUS_MILES: where and what the importer fetches. The key never shows in
    /// logs (`FlixsterConfig`'s Debug hides it).
    pub flixster: FlixsterConfig,
    /// IMPORT_INTERVAL: run an import this often (`90s`, `30m`, `6h`, or minutes).
    pub import_interval: Option<std::time::Duration>,
    /// ADMIN_PASSWORD, kept only as its Argon2 hash. Without it the admin area is closed.
    pub admin_password: Option<AdminPassword>,
    /// ADMIN_SESSION_KEY, else CLUSTER_SECRET: signs admin session cookies, so every node
    /// with the same secret accepts them. A random key per process when neither is set.
    pub admin_session_secret: Option<Secret>,
    /// TICKET_KEY, else CLUSTER_SECRET: signs the e-tickets' QR codes, so the door (any
    /// node with the same secret) can check them offline. A random key per process when
    /// neither is set (tickets then verify on that process only).
    pub ticket_key: Option<Secret>,
    /// SMTP_URL (`smtp://[user:password@]host[:port]`, plain SMTP): where booking emails
    /// go. Unset: no email is sent (one log line at start says so).
    pub smtp_url: Option<Secret>,
    /// MAIL_FROM: the emails' sender (default `Marquee <tickets@localhost>`).
    pub mail_from: String,
    /// SMTP_TIMEOUT_SECONDS: how long one SMTP exchange may take before the try fails and
    /// is retried later (default 10).
    pub smtp_timeout: std::time::Duration,
    /// ADMIN_SESSION_HOURS: how long an admin session lasts (default 12).
    pub admin_session_hours: i64,
    /// TRUSTED_PROXIES: the proxies whose X-Forwarded-For and X-Forwarded-Proto are
    /// believed (addresses or networks, comma-separated; default none).
    pub trusted_proxies: crate::web::client::TrustedProxies,
    /// MAX_HELD_SEATS, MAX_HOLDS_PER_MINUTE, HOLD_COOLOFF_SECONDS: the seat-spinning
    /// limits per client and show.
    pub hold_limits: crate::actors::seat_map::HoldLimits,
    /// LONELY_SEAT_RULE (`on`, `off`): whether auditoriums that refuse selections leaving
    /// a lonely seat do so on this node (default on).
    pub lonely_seat_rule: bool,
}

/// What the load generators and fault tools (flashsale, wsbench, the campaign, the
/// deployment test) set on the nodes they start: all their clients are one address, so the
/// seat-spinning limits, which a real site keeps, are lifted for them (and they say so).
pub const LOAD_TEST_LIMITS: [(&str, &str); 4] = [
    ("MAX_HELD_SEATS", "1000000"),
    ("MAX_HOLDS_PER_MINUTE", "1000000"),
    ("HOLD_COOLOFF_SECONDS", "0"),
    ("LONELY_SEAT_RULE", "off"),
];

/// The line a load tool prints about [`LOAD_TEST_LIMITS`].
pub fn load_test_limits_note() -> String {
    let set: Vec<String> = LOAD_TEST_LIMITS.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("seat-spinning limits lifted on the nodes under test (one client address): {}", set.join(" "))
}

/// A setting that must not show in logs or Debug output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{name} is not valid: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

fn var<T: FromStr>(name: &'static str, default: T) -> Result<T, ConfigError> {
    match env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().map_err(|_| ConfigError { name, reason: format!("cannot parse '{v}'") })
        }
        _ => Ok(default),
    }
}

fn minutes(name: &'static str, default: f64) -> Result<Duration, ConfigError> {
    let m: f64 = var(name, default)?;
    if !(0.0..=24.0 * 60.0).contains(&m) {
        return Err(ConfigError { name, reason: "must be between 0 and 1440 minutes".into() });
    }
    Ok(Duration::milliseconds((m * 60_000.0) as i64))
}

fn optional(name: &'static str) -> Option<String> {
    env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// `90s`, `30m`, `6h`, `1d`, or a bare number of minutes; at least a minute.
pub fn parse_interval(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => raw.split_at(at),
        None => (raw, "m"),
    };
    let n: f64 = number.parse().map_err(|_| format!("'{raw}' is not a duration like 30m or 6h"))?;
    let seconds = match unit.trim() {
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("'{raw}' is not a duration like 30m or 6h")),
    };
    if !(60.0..=30.0 * 86400.0).contains(&seconds) {
        return Err("must be between 1 minute and 30 days".into());
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// INTERNAL_BIND or LIVE_BIND (`name`): a `host:port` of its own, or None when unset or the
/// same as `bind`.
fn own_bind(name: &'static str, raw: Option<String>, bind: &str) -> Result<Option<String>, ConfigError> {
    match raw {
        None => Ok(None),
        Some(addr) if addr == bind => Ok(None),
        Some(addr) => match addr.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>())) {
            Some((host, Ok(_))) if !host.is_empty() => Ok(Some(addr)),
            _ => Err(ConfigError { name, reason: format!("'{addr}' is not host:port") }),
        },
    }
}

/// The importer's settings from FLIXSTER_* and IMPORT_*.
fn flixster_from_env() -> Result<FlixsterConfig, ConfigError> {
    let defaults = FlixsterConfig::default();
    let base_url = var("FLIXSTER_BASE_URL", defaults.base_url.clone())?;
    let api_key = optional("FLIXSTER_API_KEY")
        .or_else(|| (base_url.trim_end_matches('/') != DEFAULT_BASE_URL).then(|| LOCAL_API_KEY.to_string()));
    Ok(FlixsterConfig {
        api_key,
        api_host: var("FLIXSTER_API_HOST", defaults.api_host.clone())?,
        zip: var("IMPORT_ZIP", defaults.zip.clone())?,
        radius_miles: var("IMPORT_RADIUS_MILES", defaults.radius_miles)?,
        base_url,
        feed_timezone: var("FEED_TIMEZONE", defaults.feed_timezone)?,
        ..defaults
    })
}

/// The seat-spinning limits from MAX_HELD_SEATS, MAX_HOLDS_PER_MINUTE and
/// HOLD_COOLOFF_SECONDS (each at least 1, the cool-off at least 0).
fn hold_limits_from_env() -> Result<crate::actors::seat_map::HoldLimits, ConfigError> {
    let d = crate::actors::seat_map::HoldLimits::default();
    let at_least_one = |name: &'static str, v: usize| {
        if v >= 1 {
            Ok(v)
        } else {
            Err(ConfigError { name, reason: "must be at least 1".into() })
        }
    };
    Ok(crate::actors::seat_map::HoldLimits {
        max_held_seats: at_least_one("MAX_HELD_SEATS", var("MAX_HELD_SEATS", d.max_held_seats)?)?,
        max_holds_per_minute: at_least_one(
            "MAX_HOLDS_PER_MINUTE",
            var("MAX_HOLDS_PER_MINUTE", d.max_holds_per_minute)?,
        )?,
        cooloff: Duration::seconds(var("HOLD_COOLOFF_SECONDS", d.cooloff.num_seconds() as u32)?.min(86_400) as i64),
    })
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let cluster =
            crate::cluster::ClusterConfig::from_env().map_err(|e| ConfigError { name: "cluster", reason: e.0 })?;
        let database_url: String = var("DATABASE_URL", "mysql://root@127.0.0.1:3306/marquee".to_string())?;
        let bind: String = var("MARQUEE_BIND", "0.0.0.0:8000".to_string())?;
        let internal_bind = own_bind("INTERNAL_BIND", optional("INTERNAL_BIND"), &bind)?;
        let live_bind = own_bind("LIVE_BIND", optional("LIVE_BIND"), &bind)?;
        if live_bind.is_some() && live_bind == internal_bind {
            return Err(ConfigError { name: "LIVE_BIND", reason: "is INTERNAL_BIND's address".into() });
        }
        Ok(Self {
            // `{node_id}` gives each node of a shared server its own schema.
            database_url: database_url.replace("{node_id}", &cluster.node_id.to_string()),
            cluster,
            bind,
            internal_bind,
            live_bind,
            live_workers: var("LIVE_WORKERS", (cpus / 2).max(1))?.max(1),
            hold_duration: minutes("HOLD_MINUTES", 8.0)?,
            cancel_cutoff: minutes("CANCEL_CUTOFF_MINUTES", 60.0)?,
            db_pool_size: var("DB_POOL_SIZE", 16)?,
            workers: var("MARQUEE_WORKERS", cpus)?.max(1),
            templates_dir: var("MARQUEE_TEMPLATES", "templates".to_string())?,
            assets_dir: var("MARQUEE_ASSETS", "assets".to_string())?,
            max_body_bytes: var("MAX_BODY_BYTES", 64 * 1024)?,
            flixster: flixster_from_env()?,
            import_interval: optional("IMPORT_INTERVAL")
                .map(|v| parse_interval(&v).map_err(|reason| ConfigError { name: "IMPORT_INTERVAL", reason }))
                .transpose()?,
            admin_password: optional("ADMIN_PASSWORD")
                .map(|p| AdminPassword::hash(&p).map_err(|reason| ConfigError { name: "ADMIN_PASSWORD", reason }))
                .transpose()?,
            admin_session_secret: optional("ADMIN_SESSION_KEY").or_else(|| optional("CLUSTER_SECRET")).map(Secret),
            ticket_key: optional("TICKET_KEY").or_else(|| optional("CLUSTER_SECRET")).map(Secret),
            smtp_url: optional("SMTP_URL").map(Secret),
            mail_from: var("MAIL_FROM", "Marquee <tickets@localhost>".to_string())?,
            smtp_timeout: std::time::Duration::from_secs(var("SMTP_TIMEOUT_SECONDS", 10u64)?.clamp(1, 300)),
            admin_session_hours: match var("ADMIN_SESSION_HOURS", 12i64)? {
                h @ 1..=720 => h,
                _ => return Err(ConfigError { name: "ADMIN_SESSION_HOURS", reason: "must be 1 to 720 hours".into() }),
            },
            trusted_proxies: crate::web::client::TrustedProxies::parse(&var("TRUSTED_PROXIES", String::new())?)
                .map_err(|reason| ConfigError { name: "TRUSTED_PROXIES", reason })?,
            hold_limits: hold_limits_from_env()?,
            lonely_seat_rule: match var("LONELY_SEAT_RULE", "on".to_string())?.to_ascii_lowercase().as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => return Err(ConfigError { name: "LONELY_SEAT_RULE", reason: "must be on or off".into() }),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_with_or_without_a_unit() {
        let secs = |s: &str| parse_interval(s).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("6h"), Ok(21600));
        assert_eq!(secs("1d"), Ok(86400));
        assert_eq!(secs("45"), Ok(2700));
        assert!(parse_interval("5s").is_err());
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("3w").is_err());
    }

    #[test]
    fn the_internal_listener_is_separate_only_when_given_another_address() {
        assert_eq!(own_bind("INTERNAL_BIND", None, "0.0.0.0:8000").unwrap(), None);
        assert_eq!(
            own_bind("INTERNAL_BIND", Some("0.0.0.0:8000".into()), "0.0.0.0:8000").unwrap(),
            None,
            "the same listener"
        );
        assert_eq!(
            own_bind("INTERNAL_BIND", Some("0.0.0.0:8001".into()), "0.0.0.0:8000").unwrap().as_deref(),
            Some("0.0.0.0:8001")
        );
        assert_eq!(
            own_bind("INTERNAL_BIND", Some("[::1]:8001".into()), "0.0.0.0:8000").unwrap().as_deref(),
            Some("[::1]:8001")
        );
        assert!(own_bind("INTERNAL_BIND", Some("8001".into()), "0.0.0.0:8000").is_err());
        assert!(own_bind("INTERNAL_BIND", Some("host:port".into()), "0.0.0.0:8000").is_err());
        assert!(own_bind("INTERNAL_BIND", Some(":8001".into()), "0.0.0.0:8000").is_err());
        let e = own_bind("LIVE_BIND", Some("8002".into()), "0.0.0.0:8000").unwrap_err();
        assert_eq!(e.name, "LIVE_BIND", "the error names the variable");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", Secret::new("hunter2-hunter2")), "Secret(<redacted>)");
    }
}

/// `IMPORT_INTERVAL` takes any text: a duration of a minute to 30 days, or an error.
/// Cases per run: `CASES`.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_text_is_an_interval_in_range_or_an_error(
            raw in prop_oneof![text(), "[ ]?[0-9.]{0,400}[ ]?(s|m|min|h|d|w|)[ ]?"]
        ) {
            if let Ok(d) = parse_interval(&raw) {
                prop_assert!((60.0..=30.0 * 86400.0).contains(&d.as_secs_f64()), "{:?}", d);
            }
        }
    }
}
