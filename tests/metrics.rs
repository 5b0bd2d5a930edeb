//! `GET /metrics` against real nodes and a real MariaDB: the counters match the operations
//! a test made, the histograms and cluster gauges are there, and the page is on the
//! internal listener only when there is one.
mod common;

use actix_web::http::StatusCode;
use awc::ws::Frame;
use chrono::Duration;
use common::cluster::Cluster;
use common::{run_import, spawn_app_with, FixtureApi, TestApp};
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration as StdDuration;

/// A scraped page: each series (name and labels as written) and its value.
fn parse(page: &str) -> HashMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample line: {l}"));
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("not a number in: {l}")),
            };
            (series.to_string(), value)
        })
        .collect()
}

async fn scrape_url(client: &awc::Client, url: &str) -> (StatusCode, String) {
    let mut res = client.get(url).send().await.expect("request");
    let body = res.body().limit(4 << 20).await.expect("body");
    (res.status(), String::from_utf8(body.to_vec()).expect("UTF-8"))
}

async fn scrape(app: &TestApp, base: &str) -> HashMap<String, f64> {
    let (status, page) = scrape_url(&app.client, &format!("{base}/metrics")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    parse(&page)
}

/// The value of `series`, 0 when the page does not have it (a counter never incremented).
fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

fn writes(m: &HashMap<String, f64>, op: &str, outcome: &str) -> f64 {
    get(m, &format!(r#"marquee_seat_writes_total{{op="{op}",outcome="{outcome}"}}"#))
}

#[actix_web::test]
async fn the_counters_match_the_operations_made() {
    let fixture = FixtureApi::start();
    let app = spawn_app_with(|s| fixture.configure(s)).await;
    let show = app.seed_show(4, 8, Duration::days(2)).await;
    let live = app.url(&format!("/shows/{show}/live")).replacen("http://", "ws://", 1);
    let (_, mut socket) = awc::Client::new().ws(live).connect().await.expect("the socket opens");

    let (status, first) = app.hold(show, &["A1", "A2"]).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = app.hold(show, &["B1"]).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (status, taken) = app.hold(show, &["A2", "A3"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");
    let (status, third) = app.hold(show, &["C1"]).await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    let (status, _) =
        app.post_json(&format!("/api/holds/{}/release", third["hold_id"].as_str().unwrap()), &json!({})).await;
    assert_eq!(status.as_u16() / 100, 2);
    let (status, booking) = app.confirm(first["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    let (status, other) = app.confirm(second["hold_id"].as_str().unwrap(), "Bo", "bo@example.com").await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let code = booking["code"].as_str().unwrap();
    let cancel = format!("/api/bookings/{code}/cancel");
    let (status, _) = app.post_json(&cancel, &json!({"email": "someone@else.com"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post_json(&cancel, &json!({"email": "ann@example.com"})).await;
    assert_eq!(status, StatusCode::OK);
    let job = run_import(&app).await;
    assert_eq!(job.state.as_str(), "done", "{:?}", job.error);

    // The snapshot, then a change for each of the 7 writes that changed seats.
    let mut texts = 0;
    while texts < 8 {
        let frame = actix_rt::time::timeout(StdDuration::from_secs(15), socket.next()).await;
        match frame {
            Ok(Some(Ok(Frame::Text(_)))) => texts += 1,
            Ok(Some(Ok(Frame::Ping(_)))) => {}
            other => panic!("{texts} text frames, then {other:?}"),
        }
    }

    let m = scrape(&app, &app.address).await;
    assert_eq!(writes(&m, "hold", "ok"), 3.0);
    assert_eq!(writes(&m, "hold", "seats_taken"), 1.0);
    assert_eq!(writes(&m, "release", "ok"), 1.0);
    assert_eq!(writes(&m, "confirm", "ok"), 2.0);
    assert_eq!(writes(&m, "cancel", "ok"), 1.0);
    assert_eq!(writes(&m, "cancel", "booking_not_found"), 1.0);
    let seat_writes: f64 = m.iter().filter(|(k, _)| k.starts_with("marquee_seat_writes_total{")).map(|(_, v)| v).sum();
    assert_eq!(seat_writes, 9.0, "no other seat write was counted");

    let requests = |route: &str, method: &str, status: u16| {
        get(&m, &format!(r#"marquee_http_requests_total{{route="{route}",method="{method}",status="{status}"}}"#))
    };
    assert_eq!(requests("/api/shows/{id}/holds", "POST", 201), 3.0);
    assert_eq!(requests("/api/shows/{id}/holds", "POST", 409), 1.0);
    assert_eq!(requests("/api/holds/{hold_id}/confirm", "POST", 201), 2.0);
    assert_eq!(requests("/api/bookings/{code}/cancel", "POST", 404), 1.0);
    assert_eq!(requests("/api/bookings/{code}/cancel", "POST", 200), 1.0);
    assert_eq!(requests("/shows/{id}/live", "GET", 101), 1.0);
    assert!(!m.keys().any(|k| k.contains(code)), "a raw path made it into a label");

    // Group commit: at least one commit per write acknowledged one after the other (the
    // seed, 7 seat writes, the import), and every change in some commit.
    let commits = get(&m, "marquee_group_commit_size_count");
    assert!(commits >= 9.0, "{commits} commits");
    assert!(get(&m, "marquee_group_commit_size_sum") >= 9.0);
    assert_eq!(get(&m, r#"marquee_group_commit_size_bucket{le="+Inf"}"#), commits);
    assert_eq!(get(&m, "marquee_commit_duration_seconds_count"), commits);
    assert_eq!(get(&m, r#"marquee_commit_duration_seconds_bucket{le="+Inf"}"#), commits);
    assert!(get(&m, "marquee_commit_duration_seconds_sum") > 0.0);

    // A node of its own: master, writable, the only voter, in an epoch of its own.
    assert_eq!(get(&m, r#"marquee_role{role="master"}"#), 1.0);
    assert_eq!(get(&m, r#"marquee_role{role="follower"}"#), 0.0);
    assert_eq!(m.get("marquee_epoch").copied(), Some(app.state.cluster.epoch() as f64));
    assert!(get(&m, "marquee_epoch") >= 1.0);
    assert_eq!(get(&m, "marquee_writable"), 1.0);
    assert_eq!(get(&m, "marquee_master_id"), app.state.cluster.node_id as f64);
    assert_eq!(get(&m, r#"marquee_members{kind="voter"}"#), 1.0);
    assert!(get(&m, "marquee_elections_total") >= 1.0);

    assert_eq!(get(&m, "marquee_websocket_connections"), 1.0);
    assert!(get(&m, "marquee_websocket_fanout_seconds_count") >= 7.0);
    assert_eq!(get(&m, r#"marquee_import_jobs_total{outcome="done"}"#), 1.0);
    assert_eq!(m.get(r#"marquee_import_jobs_total{outcome="failed"}"#).copied(), Some(0.0));

    // The socket closed: the gauge comes back down.
    drop(socket);
    let mut open = 1.0;
    for _ in 0..100 {
        open = get(&scrape(&app, &app.address).await, "marquee_websocket_connections");
        if open == 0.0 {
            break;
        }
        actix_rt::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(open, 0.0, "the closed socket is no longer counted");
    fixture.stop().await;
}

#[actix_web::test]
async fn with_an_internal_listener_metrics_are_served_there_only() {
    let app = spawn_app_with(|s| s.internal_bind = Some("127.0.0.1:0".into())).await;
    assert_ne!(app.internal_address, app.address);
    let (status, _) = scrape_url(&app.client, &app.url("/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the public site does not show them");
    let m = scrape(&app, &app.internal_address).await;
    assert_eq!(get(&m, r#"marquee_role{role="master"}"#), 1.0);
    let (status, _) = scrape_url(&app.client, &format!("{}/no-such-endpoint", app.internal_address)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The requests on either listener are counted, by route, and the unknown path as such.
    let m = scrape(&app, &app.internal_address).await;
    assert!(get(&m, r#"marquee_http_requests_total{route="/metrics",method="GET",status="200"}"#) >= 1.0);
    assert_eq!(get(&m, r#"marquee_http_requests_total{route="unmatched",method="GET",status="404"}"#), 2.0);
}

#[actix_web::test]
async fn the_master_reports_each_followers_lag() {
    let cluster = Cluster::start(2, 4, 8).await;
    let master = cluster.wait_for_master(StdDuration::from_secs(30)).await.expect("a master");
    let follower = 1 - master;
    let follower_id = cluster.nodes[follower].id;
    let client = &cluster.client;
    let (status, page) = scrape_url(client, &cluster.url(master, "/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let m = parse(&page);
    assert_eq!(get(&m, r#"marquee_role{role="master"}"#), 1.0);
    assert_eq!(get(&m, r#"marquee_members{kind="voter"}"#), 2.0);
    let lag = format!(r#"marquee_replication_lag_entries{{follower="{follower_id}"}}"#);
    assert!(m.contains_key(&lag), "{page}");
    assert!(m.contains_key(&format!(r#"marquee_replication_lag_seconds{{follower="{follower_id}"}}"#)), "{page}");
    assert!(m.contains_key(&format!(r#"marquee_follower_last_ack_seconds{{follower="{follower_id}"}}"#)), "{page}");

    let (status, page) = scrape_url(client, &cluster.url(follower, "/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let f = parse(&page);
    assert_eq!(get(&f, r#"marquee_role{role="follower"}"#), 1.0);
    assert_eq!(get(&f, "marquee_master_id"), cluster.nodes[master].id as f64);
    assert_eq!(get(&f, "marquee_epoch"), get(&m, "marquee_epoch"));
    assert!(!f.keys().any(|k| k.starts_with("marquee_replication_lag")), "a follower reports no lag of others");
}
