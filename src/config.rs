//! Settings, read once from environment variables (each documented in the README).
use chrono::Duration;
use std::env;
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Settings {
    /// DATABASE_URL: this node's own database (created and migrated on start).
    pub database_url: String,
    /// MARQUEE_BIND: where the node listens.
    pub bind: String,
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

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let cluster =
            crate::cluster::ClusterConfig::from_env().map_err(|e| ConfigError { name: "cluster", reason: e.0 })?;
        let database_url: String = var("DATABASE_URL", "mysql://root@127.0.0.1:3306/marquee".to_string())?;
        Ok(Self {
            // `{node_id}` gives each node of a shared server its own schema.
            database_url: database_url.replace("{node_id}", &cluster.node_id.to_string()),
            cluster,
            bind: var("MARQUEE_BIND", "0.0.0.0:8000".to_string())?,
            hold_duration: minutes("HOLD_MINUTES", 8.0)?,
            cancel_cutoff: minutes("CANCEL_CUTOFF_MINUTES", 60.0)?,
            db_pool_size: var("DB_POOL_SIZE", 16)?,
            workers: var("MARQUEE_WORKERS", cpus)?.max(1),
            templates_dir: var("MARQUEE_TEMPLATES", "templates".to_string())?,
            assets_dir: var("MARQUEE_ASSETS", "assets".to_string())?,
            max_body_bytes: var("MAX_BODY_BYTES", 64 * 1024)?,
        })
    }
}
