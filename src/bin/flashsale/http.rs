//! The JSON API as the clients speak it: requests, replies, and what came back.
use actix_web::web::Bytes;
use awc::error::{PayloadError, SendRequestError};
use futures::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest a single request may take before it counts as a transport error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn http_client(connections: usize) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(connections).conn_keep_alive(Duration::from_secs(60)))
        .timeout(REQUEST_TIMEOUT)
        .disable_redirects()
        .finish()
}

/// What one request came back with.
pub enum Answer<T> {
    /// The expected status, with its body.
    Ok(T),
    /// Another status (its body is read and dropped, so the connection is reused).
    Status(u16),
    /// No HTTP answer (connect, timeout, broken body): a short description.
    Transport(String),
}

/// A hold: two seats by name, or "the best N" chosen by the show actor.
#[derive(Serialize)]
#[serde(untagged)]
pub enum HoldRequest<'a> {
    Seats { seats: &'a [String; 2] },
    Best { best: u32 },
}

#[derive(Serialize)]
pub struct ConfirmRequest {
    pub name: String,
    pub email: String,
}

#[derive(Deserialize)]
pub struct HoldReply {
    pub hold_id: String,
}

#[derive(Deserialize)]
pub struct BookingReply {
    pub code: String,
    pub seats: Vec<String>,
}

#[derive(Deserialize)]
pub struct SeatMapReply {
    pub free: usize,
    pub rows: Vec<RowReply>,
}

#[derive(Deserialize)]
pub struct RowReply {
    pub seats: Vec<SeatReply>,
}

#[derive(Deserialize)]
pub struct SeatReply {
    pub seat: String,
    pub state: String,
}

impl SeatMapReply {
    pub fn free_seats(self) -> Vec<String> {
        self.rows.into_iter().flat_map(|r| r.seats).filter(|s| s.state == "free").map(|s| s.seat).collect()
    }
}

#[derive(Deserialize)]
pub struct StatsReply {
    pub log_transactions: u64,
    pub log_records: u64,
    pub shows_loaded: u64,
}

pub async fn answer<T: DeserializeOwned>(
    sent: Result<awc::ClientResponse<impl Stream<Item = Result<Bytes, PayloadError>> + Unpin>, SendRequestError>,
    expect: u16,
    limit: usize,
) -> Answer<T> {
    let mut res = match sent {
        Ok(res) => res,
        Err(e) => return Answer::Transport(transport_kind(&e.to_string())),
    };
    let status = res.status().as_u16();
    match res.body().limit(limit).await {
        Ok(body) if status == expect => match serde_json::from_slice(&body) {
            Ok(v) => Answer::Ok(v),
            Err(e) => Answer::Transport(format!("{status} with an unexpected body ({e})")),
        },
        Ok(_) => Answer::Status(status),
        Err(e) => Answer::Transport(transport_kind(&format!("body: {e}"))),
    }
}

pub async fn post<T: DeserializeOwned>(client: &awc::Client, url: String, body: &impl Serialize) -> Answer<T> {
    answer(client.post(url).send_json(body).await, 201, 1 << 20).await
}

pub async fn get<T: DeserializeOwned>(client: &awc::Client, url: String) -> Answer<T> {
    answer(client.get(url).send().await, 200, 64 << 20).await
}

/// Error messages carry addresses and numbers; keep the kind so they can be counted.
pub fn transport_kind(msg: &str) -> String {
    msg.split(':').next().unwrap_or(msg).trim().to_string()
}

/// The node's counters; a failed connection is tried again a few times, and its whole
/// message kept.
pub async fn node_stats(client: &awc::Client, base: &str) -> Result<StatsReply, String> {
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            actix_rt::time::sleep(Duration::from_millis(200)).await;
        }
        match client.get(format!("{base}/api/stats")).send().await {
            Ok(mut res) if res.status().as_u16() == 200 => {
                return res.json::<StatsReply>().await.map_err(|e| format!("/api/stats: {e}"))
            }
            Ok(res) => return Err(format!("/api/stats answered {}", res.status())),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("/api/stats: {last}"))
}
