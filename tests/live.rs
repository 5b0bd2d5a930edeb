//! The live seat map websocket, spoken to as a page's script does.
mod common;

use actix_web::http::StatusCode;
use awc::ws::{Frame, Message};
use chrono::Duration;
use common::{spawn_app, spawn_app_with, TestApp};
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde_json::Value;
use std::fmt::Debug;
use std::time::Duration as StdDuration;

/// How long to wait for a frame before failing (bounded; nothing here is timed).
const WAIT: StdDuration = StdDuration::from_secs(15);

fn ws_url(app: &TestApp, show: impl std::fmt::Display) -> String {
    app.url(&format!("/shows/{show}/live")).replacen("http://", "ws://", 1)
}

async fn connect(
    app: &TestApp,
    show: i64,
) -> impl Stream<Item = Result<Frame, impl Debug>> + Sink<Message, Error = impl Debug> + Unpin {
    connect_to(ws_url(app, show)).await
}

async fn connect_to(
    url: String,
) -> impl Stream<Item = Result<Frame, impl Debug>> + Sink<Message, Error = impl Debug> + Unpin {
    let (res, socket) = awc::Client::new().ws(url).connect().await.expect("the socket opens");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

/// The next text frame as JSON; answers pings on the way.
async fn next_json<S, E, F>(ws: &mut S) -> Value
where
    S: Stream<Item = Result<Frame, E>> + Sink<Message, Error = F> + Unpin,
    E: Debug,
    F: Debug,
{
    loop {
        let frame = actix_rt::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame within the bound")
            .expect("the socket is open")
            .expect("a valid frame");
        match frame {
            Frame::Text(bytes) => return serde_json::from_slice(&bytes).expect("JSON"),
            Frame::Ping(p) => ws.send(Message::Pong(p)).await.unwrap(),
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads changes until one mentions `seat`; returns its version and the seat's state.
async fn change_for<S, E, F>(ws: &mut S, seat: &str) -> (u64, String)
where
    S: Stream<Item = Result<Frame, E>> + Sink<Message, Error = F> + Unpin,
    E: Debug,
    F: Debug,
{
    loop {
        let msg = next_json(ws).await;
        assert_eq!(msg["type"], "change", "{msg}");
        if let Some(s) = msg["seats"].as_array().unwrap().iter().find(|s| s[0] == seat) {
            return (msg["version"].as_u64().unwrap(), s[1].as_str().unwrap().to_string());
        }
    }
}

fn seat_state(snapshot: &Value, seat: &str) -> String {
    snapshot["seats"].as_array().unwrap().iter().find(|s| s[0] == seat).expect("the seat is in the snapshot")[1]
        .as_str()
        .unwrap()
        .to_string()
}

#[actix_web::test]
async fn a_socket_gets_the_map_then_every_change() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let (status, _) = app.hold(show, &["A1"]).await;
    assert_eq!(status, StatusCode::CREATED);

    let mut ws = connect(&app, show).await;
    let snap = next_json(&mut ws).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["seats"].as_array().unwrap().len(), 32);
    assert_eq!(seat_state(&snap, "A1"), "held");
    assert_eq!(seat_state(&snap, "B2"), "free");
    let mut version = snap["version"].as_u64().unwrap();

    // A hold, a booking and a cancel each reach the socket, in order.
    let (status, hold) = app.hold(show, &["B2", "B3"]).await;
    assert_eq!(status, StatusCode::CREATED);
    let (v, state) = change_for(&mut ws, "B2").await;
    assert!(v > version);
    assert_eq!(state, "held");
    version = v;

    let (status, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    assert_eq!(status, StatusCode::CREATED);
    let (v, state) = change_for(&mut ws, "B2").await;
    assert!(v > version);
    assert_eq!(state, "booked");
    version = v;

    let code = booking["code"].as_str().unwrap();
    let (status, _) =
        app.post_json(&format!("/api/bookings/{code}/cancel"), &serde_json::json!({"email": "ann@example.com"})).await;
    assert_eq!(status, StatusCode::OK);
    let (v, state) = change_for(&mut ws, "B3").await;
    assert!(v > version);
    assert_eq!(state, "free");
}

#[actix_web::test]
async fn an_expired_hold_reaches_watchers() {
    let app = spawn_app_with(|s| s.hold_duration = Duration::seconds(2)).await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let mut ws = connect(&app, show).await;
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    app.hold(show, &["C4"]).await;
    assert_eq!(change_for(&mut ws, "C4").await.1, "held");
    assert_eq!(change_for(&mut ws, "C4").await.1, "free");
}

#[actix_web::test]
async fn every_watcher_gets_the_change_and_a_reconnect_starts_from_the_current_map() {
    let app = spawn_app().await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let mut first = connect(&app, show).await;
    let mut second = connect(&app, show).await;
    next_json(&mut first).await;
    next_json(&mut second).await;
    app.hold(show, &["D8"]).await;
    assert_eq!(change_for(&mut first, "D8").await.1, "held");
    assert_eq!(change_for(&mut second, "D8").await.1, "held");

    // The second page goes away; a change happens while it is gone; it comes back.
    drop(second);
    app.hold(show, &["D7"]).await;
    let mut again = connect(&app, show).await;
    let snap = next_json(&mut again).await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(seat_state(&snap, "D7"), "held");
    assert_eq!(seat_state(&snap, "D8"), "held");
}

#[actix_web::test]
async fn unknown_shows_and_plain_requests_are_refused_before_upgrading() {
    let app = spawn_app().await;
    let show = app.seed_show(2, 4, Duration::days(1)).await;
    for path in ["99999", "x", "-1"] {
        match awc::Client::new().ws(ws_url(&app, path)).connect().await {
            Err(awc::error::WsClientError::InvalidResponseStatus(s)) => assert_eq!(s, StatusCode::NOT_FOUND, "{path}"),
            other => panic!("{path}: expected a 404, got {:?}", other.map(|(r, _)| r.status())),
        }
    }
    // Not a websocket handshake.
    let res = app.client.get(app.url(&format!("/shows/{show}/live"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn client_chatter_is_ignored_and_oversized_frames_close_the_socket() {
    let app = spawn_app().await;
    let show = app.seed_show(2, 4, Duration::days(1)).await;
    let mut ws = connect(&app, show).await;
    next_json(&mut ws).await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    ws.send(Message::Ping("are you there".into())).await.unwrap();
    let pong = actix_rt::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(pong, Frame::Pong(ref p) if &p[..] == b"are you there"), "{pong:?}");
    app.hold(show, &["A2"]).await;
    assert_eq!(change_for(&mut ws, "A2").await.1, "held");

    ws.send(Message::Text("x".repeat(64 * 1024).into())).await.unwrap();
    let end = actix_rt::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(Frame::Close(reason))) => return reason,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("the server ends the socket");
    if let Some(reason) = end {
        assert_eq!(reason.code, awc::ws::CloseCode::Size);
    }
}

/// The live listener (LIVE_BIND): `/shows/{id}/live` on workers of its own. Sockets on it and
/// on the site's listener see the same changes in the same order, while holds from several
/// clients at once are taken on the site's workers; the live port serves nothing else.
#[actix_web::test]
async fn the_live_listener_serves_the_same_changes_and_nothing_else() {
    let app = spawn_app_with(|s| {
        s.live_bind = Some("127.0.0.1:0".into());
        s.live_workers = 2;
    })
    .await;
    let live = app.live_address.clone().expect("a live listener of its own");
    assert_ne!(live, app.address);
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let live_url = format!("{}/shows/{show}/live", live.replacen("http://", "ws://", 1));

    // Watchers on both listeners, several per worker of the live listener.
    let mut on_live = Vec::new();
    for _ in 0..6 {
        let mut ws = connect_to(live_url.clone()).await;
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
        on_live.push(ws);
    }
    let mut on_site = connect(&app, show).await;
    assert_eq!(next_json(&mut on_site).await["type"], "snapshot");

    // Eight holds at once (the ends of each row, so that none leaves a lonely seat).
    let seats: Vec<String> = ["A1", "A8", "B1", "B8", "C1", "C8", "D1", "D8"].map(String::from).to_vec();
    let holds = futures::future::join_all(seats.iter().map(|seat| {
        let app = &app;
        async move { app.hold(show, &[seat.as_str()]).await }
    }))
    .await;
    assert!(holds.iter().all(|(status, _)| *status == StatusCode::CREATED), "{holds:?}");

    // Every watcher reads every seat held, in increasing versions, and the same sequence.
    async fn read_all<S, E, F>(ws: &mut S, n: usize) -> Vec<(u64, String)>
    where
        S: Stream<Item = Result<Frame, E>> + Sink<Message, Error = F> + Unpin,
        E: Debug,
        F: Debug,
    {
        let mut seen = Vec::new();
        while seen.len() < n {
            let msg = next_json(ws).await;
            assert_eq!(msg["type"], "change", "{msg}");
            let version = msg["version"].as_u64().unwrap();
            for s in msg["seats"].as_array().unwrap() {
                assert_eq!(s[1], "held", "{msg}");
                seen.push((version, s[0].as_str().unwrap().to_string()));
            }
        }
        seen
    }
    let expected = read_all(&mut on_site, seats.len()).await;
    assert!(expected.windows(2).all(|w| w[0].0 <= w[1].0), "versions only grow: {expected:?}");
    let mut held: Vec<&str> = expected.iter().map(|(_, s)| s.as_str()).collect();
    held.sort();
    assert_eq!(held, seats.iter().map(String::as_str).collect::<Vec<_>>());
    for ws in &mut on_live {
        assert_eq!(read_all(ws, seats.len()).await, expected);
    }

    // The live port is for sockets only.
    for path in [format!("/api/shows/{show}/seats"), "/".to_string(), "/admin".to_string(), "/internal/status".into()] {
        let res = app.client.get(format!("{live}{path}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let res = app.client.get(format!("{live}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    match awc::Client::new().ws(format!("{}/shows/99999/live", live.replacen("http://", "ws://", 1))).connect().await {
        Err(awc::error::WsClientError::InvalidResponseStatus(s)) => assert_eq!(s, StatusCode::NOT_FOUND),
        other => panic!("expected a 404, got {:?}", other.map(|(r, _)| r.status())),
    }
}
