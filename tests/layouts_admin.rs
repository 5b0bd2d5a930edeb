//! Auditorium layouts in the admin area: the theaters list, an auditorium's page drawn as
//! the seat map, and a change that applies to shows without holds or bookings and leaves
//! the others alone; through the log to a follower too.
mod common;

use chrono::Duration;
use common::browser::Browser;
use common::cluster::{Cluster, ADMIN_PASSWORD};
use common::{show_change, spawn_app_with, TestApp};
use marquee::domain::AdminPassword;
use marquee::wal::Change;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

/// The new layout every test writes: 3 rows (the old one has 4 of 4 seats), aisles, a
/// wheelchair space with its companion seat.
const NEW_LAYOUT: &str = "S = Standard 10\nP = Premium 15.50\nA: SS_SS\nB: SSSS\nC: WC_PP\n";

async fn admin_app() -> TestApp {
    spawn_app_with(|s| s.admin_password = Some(AdminPassword::hash(PASSWORD).unwrap())).await
}

/// A theater (4 rows of 4 seats) with three upcoming shows and one that started; returns
/// the theater id and the shows' ids.
async fn seed(app: &TestApp) -> (i64, [i64; 4]) {
    let (mut change, first) = show_change(500, 4, 4, Duration::days(1));
    let show = change.shows[0].clone();
    for (n, hours) in [(1, 26), (2, 28), (3, -1)] {
        let mut s = show.clone();
        s.id = first + n;
        s.starts_at_utc += Duration::hours(hours - 24);
        s.starts_at_local += Duration::hours(hours - 24);
        change.shows.push(s);
    }
    let theater = change.theaters[0].id;
    app.writable().await;
    app.state.writer.append(Change::Catalog(Box::new(change))).await.expect("seed");
    (theater, [first, first + 1, first + 2, first + 3])
}

async fn map(app: &TestApp, show: i64) -> Value {
    let (status, map) = app.get_json(&format!("/api/shows/{show}/seats")).await;
    assert_eq!(status, 200, "{map}");
    map
}

/// Each row's seats as the seat map gives them: `label:kind:space_before`.
fn shape(map: &Value) -> Vec<Vec<String>> {
    map["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["seats"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    format!("{}:{}:{}", s["seat"].as_str().unwrap(), s["kind"].as_str().unwrap(), s["space_before"])
                })
                .collect()
        })
        .collect()
}

fn new_shape() -> Vec<Vec<String>> {
    let row = |r: &str| {
        vec![
            format!("{r}1:standard:0"),
            format!("{r}2:standard:0"),
            format!("{r}3:standard:1"),
            format!("{r}4:standard:0"),
        ]
    };
    let mut b = row("B");
    b[2] = "B3:standard:0".into();
    let mut c = row("C");
    c[0] = "C1:wheelchair:0".into();
    c[1] = "C2:companion:0".into();
    vec![row("A"), b, c]
}

async fn layout_of(app: &TestApp, table: &str, id: i64) -> i64 {
    app.count(&format!("SELECT layout_id AS n FROM {table} WHERE id = {id}")).await
}

async fn layout_entries(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM write_log WHERE kind = 'layout_changed'").await
}

#[actix_web::test]
async fn an_edit_changes_the_empty_shows_and_leaves_those_with_holds_or_bookings_alone() {
    let app = admin_app().await;
    let (theater, [empty, booked, held, started]) = seed(&app).await;
    let code = app.book(booked, &["A1", "A2"]).await;
    let (status, hold) = app.hold(held, &["D4"]).await;
    assert_eq!(status, 201, "{hold}");
    let old_layout = layout_of(&app, "theaters", theater).await;
    let booked_before = map(&app, booked).await;
    assert_eq!(map(&app, empty).await["rows"].as_array().unwrap().len(), 4, "loaded before the change");

    let mut b = Browser::logged_in(&app.address, PASSWORD).await;
    let list = b.get("/admin").await;
    assert!(list.body.contains("href=\"/admin/theaters\""), "the dashboard links the auditoriums");
    let list = b.get("/admin/theaters").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("Test Theater"), "{}", list.body);
    assert!(list.body.contains(&format!("href=\"/admin/theaters/{theater}\"")));

    // The auditorium drawn as the seat map draws it, its text, categories and prices.
    let page = b.get(&format!("/admin/theaters/{theater}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for part in ["A: SSSS", "D: PPPP", "S = Standard 12.50", "P = Premium 16.50", "$16.50", "data-seat=\"D4\""] {
        assert!(page.body.contains(part), "{part} in the page");
    }
    assert!(page.body.contains("class=\"seatmap\""), "the seat map's own markup");
    assert!(!page.body.contains("name=\"no_lonely_seats\" value=\"1\" checked"), "the test hall allows lonely seats");

    let answer =
        b.post(&format!("/admin/theaters/{theater}/layout"), &[("layout", NEW_LAYOUT), ("no_lonely_seats", "1")]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("data-figure=\"changed\">1<"), "{}", answer.body);
    assert!(answer.body.contains("data-figure=\"kept\">2<"), "{}", answer.body);
    assert!(answer.body.contains(&format!("data-changed=\"{empty}\"")));
    assert!(answer.body.contains(&format!("data-kept=\"{booked}\"")) && answer.body.contains("1 booking"));
    assert!(answer.body.contains(&format!("data-kept=\"{held}\"")) && answer.body.contains("1 hold"));
    assert!(answer.body.contains("1 that already started"), "{}", answer.body);

    // One entry in the log; the theater and the empty show point at the new layout.
    assert_eq!(layout_entries(&app).await, 1);
    let new_layout = layout_of(&app, "theaters", theater).await;
    assert_ne!(new_layout, old_layout);
    assert_eq!(layout_of(&app, "shows", empty).await, new_layout);
    for kept in [booked, held, started] {
        assert_eq!(layout_of(&app, "shows", kept).await, old_layout, "show {kept}");
    }
    assert_eq!(app.count(&format!("SELECT no_lonely_seats AS n FROM layouts WHERE id = {new_layout}")).await, 1);

    // The empty show's seat map (loaded before the change) has the new shape and rule.
    let changed = map(&app, empty).await;
    assert_eq!(shape(&changed), new_shape(), "{changed}");
    let cats: Vec<&str> =
        changed["categories"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(cats, ["Standard", "Premium"]);
    assert_eq!(app.hold(empty, &["D1"]).await.0, 422, "row D is gone");
    let (status, lonely) = app.hold(empty, &["B2"]).await;
    assert_eq!(status, 422, "the no-lonely-seat rule is on: {lonely}");
    assert_eq!(app.hold(empty, &["B1", "B2"]).await.0, 201);

    // The booked show is as it was: its map, its booking; the held one keeps its hold.
    let booked_after = map(&app, booked).await;
    assert_eq!(shape(&booked_after), shape(&booked_before));
    assert_eq!(booked_after["rows"].as_array().unwrap().len(), 4);
    assert_eq!(app.seat_states(booked).await["A1"], "booked");
    let (status, booking) = app.get_json(&format!("/api/bookings/{code}?email=ann@example.com")).await;
    assert_eq!(status, 200, "{booking}");
    assert_eq!(booking["seats"], json!(["A1", "A2"]));
    assert_eq!(app.seat_states(held).await["D4"], "held");
    let (status, _) = app.confirm(hold["hold_id"].as_str().unwrap(), "Bo", "bo@example.com").await;
    assert_eq!(status, 201, "the kept hold still confirms");

    // The page now shows the new layout and says one show kept an older one... two do.
    let page = b.get(&format!("/admin/theaters/{theater}")).await;
    assert!(page.body.contains("C: WC_PP") && page.body.contains("checked"), "{}", page.body);
    assert!(page.body.contains("2 kept an older one"), "{}", page.body);
}

#[actix_web::test]
async fn a_malformed_layout_is_refused_naming_row_and_column_and_changes_nothing() {
    let app = admin_app().await;
    let (theater, [empty, ..]) = seed(&app).await;
    let shape_before = shape(&map(&app, empty).await);
    let mut b = Browser::logged_in(&app.address, PASSWORD).await;
    b.get(&format!("/admin/theaters/{theater}")).await;
    let before = (layout_of(&app, "theaters", theater).await, app.write_footprint().await);

    let bad = "S = Standard 10\nA: SS_SS\nB: SS!SS\n";
    let page = b.post(&format!("/admin/theaters/{theater}/layout"), &[("layout", bad)]).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("line 3, row B, column 3"), "{}", page.body);
    assert!(page.body.contains("B: SS!SS"), "the text posted stays in the form to fix");
    let res = b
        .post_json_csrf(&format!("/admin/api/theaters/{theater}/layout"), &json!({ "text": "S = S 1\nA: SQ\n" }))
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(res.json()["error"].as_str().unwrap().contains("row A, column 2"), "{}", res.body);
    let res = b.post_json_csrf(&format!("/admin/api/theaters/{theater}/layout"), &json!({ "rows": 3 })).await;
    assert_eq!(res.status, 400, "{}", res.body);

    assert_eq!((layout_of(&app, "theaters", theater).await, app.write_footprint().await), before);
    assert_eq!(layout_entries(&app).await, 0);
    assert_eq!(shape(&map(&app, empty).await), shape_before);
}

#[actix_web::test]
async fn strangers_forged_forms_and_unknown_theaters_are_refused() {
    let app = admin_app().await;
    let (theater, _) = seed(&app).await;
    let path = format!("/admin/theaters/{theater}/layout");
    let api = format!("/admin/api/theaters/{theater}/layout");

    let mut stranger = Browser::new(&app.address);
    assert_eq!(stranger.get("/admin/theaters").await.status, 401);
    assert_eq!(stranger.get(&format!("/admin/theaters/{theater}")).await.status, 401);
    assert_eq!(stranger.post(&path, &[("layout", NEW_LAYOUT)]).await.status, 401);
    assert_eq!(stranger.get("/admin/api/theaters").await.status, 401);
    assert_eq!(stranger.post_json_csrf(&api, &json!({ "text": NEW_LAYOUT })).await.status, 401);

    let mut b = Browser::logged_in(&app.address, PASSWORD).await;
    b.get(&format!("/admin/theaters/{theater}")).await;
    let token = b.csrf.clone();
    b.csrf = "forged-forged-forged-forged-forg".into();
    assert_eq!(b.post(&path, &[("layout", NEW_LAYOUT)]).await.status, 403, "a forged CSRF token");
    assert_eq!(b.post_json(&api, &json!({ "text": NEW_LAYOUT })).await.status, 403);
    b.csrf = token;

    for unknown in ["/admin/theaters/99999", "/admin/theaters/abc", "/admin/api/theaters/99999/layout"] {
        assert_eq!(b.get(unknown).await.status, 404, "{unknown}");
    }
    assert_eq!(b.post("/admin/theaters/99999/layout", &[("layout", NEW_LAYOUT)]).await.status, 404);
    assert_eq!(b.post_json_csrf("/admin/api/theaters/99999/layout", &json!({ "text": NEW_LAYOUT })).await.status, 404);
    assert_eq!(layout_entries(&app).await, 0, "nothing was written");
}

#[actix_web::test]
async fn the_admin_api_lists_shows_and_changes_a_layout() {
    let app = admin_app().await;
    let (theater, [empty, booked, ..]) = seed(&app).await;
    app.book(booked, &["B2"]).await;
    let mut b = Browser::logged_in(&app.address, PASSWORD).await;
    let list = b.get("/admin/api/theaters").await.json();
    let t = list["theaters"].as_array().unwrap().iter().find(|t| t["id"] == theater).cloned().unwrap();
    assert_eq!((t["seats"].as_i64(), t["upcoming"].as_i64()), (Some(16), Some(3)), "{t}");

    let layout = b.get(&format!("/admin/api/theaters/{theater}/layout")).await.json();
    assert!(layout["text"].as_str().unwrap().contains("A: SSSS"), "{layout}");
    assert_eq!(layout["rows"].as_array().unwrap().len(), 4);

    b.get("/admin/theaters").await;
    let res = b.post_json_csrf(&format!("/admin/api/theaters/{theater}/layout"), &json!({ "text": NEW_LAYOUT })).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let outcome = res.json();
    assert_eq!(outcome["changed"].as_array().unwrap().len(), 2, "{outcome}");
    assert_eq!(outcome["kept"][0]["show_id"], booked);
    assert_eq!(outcome["kept"][0]["why"], json!({ "reason": "bookings", "bookings": 1, "holds": 0 }));
    assert_eq!(shape(&map(&app, empty).await), new_shape());
    let rule =
        app.count(&format!("SELECT no_lonely_seats AS n FROM layouts WHERE id = {}", outcome["layout_id"])).await;
    assert_eq!(rule, 0, "left out, the rule stays as it was (off)");

    // Long category names (the parser takes 40 characters) fit the stored codes.
    let long = "P = Premium recliner seats, extra legroom 20\nQ = Premium recliner seats, extra legroom+ 22\nA: PQQP\n";
    let res = b.post_json_csrf(&format!("/admin/api/theaters/{theater}/layout"), &json!({ "text": long })).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let cats = map(&app, empty).await["categories"].clone();
    assert_eq!(cats[1]["name"], "Premium recliner seats, extra legroom+", "{cats}");
}

#[actix_web::test]
async fn a_change_made_on_a_follower_reaches_every_node() {
    let c = Cluster::start(3, 4, 4).await;
    let master = c.wait_for_master(std::time::Duration::from_secs(20)).await.unwrap();
    let follower = (0..3).find(|i| *i != master).unwrap();
    let theater = 101; // show_change(100, ..): layout 100, theater 101
    for i in 0..3 {
        // Every node has the show's seat map loaded before the change.
        let res = c.client.get(c.url(i, &format!("/api/shows/{}/seats", c.show))).send().await;
        assert!(res.is_ok());
    }
    let mut op = Browser::logged_in(c.url(follower, ""), ADMIN_PASSWORD).await;
    op.get(&format!("/admin/theaters/{theater}")).await;
    let answer = op.post(&format!("/admin/theaters/{theater}/layout"), &[("layout", NEW_LAYOUT)]).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.body, c.tail_logs());
    assert!(answer.body.contains("data-figure=\"changed\">1<"), "{}", answer.body);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for i in 0..3 {
        loop {
            let mut res = c.client.get(c.url(i, &format!("/api/shows/{}/seats", c.show))).send().await.unwrap();
            let map: Value = res.json().limit(1 << 20).await.unwrap_or(Value::Null);
            if map["rows"].is_array() && shape(&map) == new_shape() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node {} still has {map}", i + 1);
            actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    for i in 0..3 {
        let kinds: Vec<String> = c.log(i).into_iter().map(|e| e.3).filter(|k| k == "layout_changed").collect();
        assert_eq!(kinds.len(), 1, "node {}", i + 1);
    }
}

#[actix_web::test]
async fn holds_racing_an_edit_either_keep_the_show_on_its_layout_or_find_the_new_one() {
    let app = admin_app().await;
    let (theater, [empty, ..]) = seed(&app).await;
    map(&app, empty).await;
    let mut b = Browser::logged_in(&app.address, PASSWORD).await;
    b.get(&format!("/admin/theaters/{theater}")).await;
    // Row D exists only in the old layout: a hold on it succeeds only before the switch.
    let customer = &app;
    let holds = futures::future::join_all(["D1", "D2", "D3", "D4"].map(|seat| async move {
        actix_rt::time::sleep(std::time::Duration::from_millis(2)).await;
        customer.hold(empty, &[seat]).await.0
    }));
    let api = format!("/admin/api/theaters/{theater}/layout");
    let body = json!({ "text": NEW_LAYOUT });
    let (statuses, answer) = futures::join!(holds, b.post_json_csrf(&api, &body));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let held = statuses.iter().filter(|s| s.as_u16() == 201).count();
    assert!(statuses.iter().all(|s| matches!(s.as_u16(), 201 | 422)), "{statuses:?}");
    let outcome = answer.json();
    let changed = outcome["changed"].as_array().unwrap().iter().any(|s| *s == empty);
    let now_shape = shape(&map(&app, empty).await);
    if changed {
        assert_eq!(held, 0, "no hold on the old layout may slip in before the switch: {outcome}");
        assert_eq!(now_shape, new_shape());
    } else {
        assert!(held > 0, "kept only for a hold: {outcome}");
        assert_eq!(now_shape.len(), 4, "still the old layout");
        assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM holds WHERE show_id = {empty}")).await, held as i64);
    }
}

/// A live page open on a show whose layout changes is sent a snapshot of the new map on its
/// open socket (the page then offers a reload): the reload in place closes the old map's
/// watch queue, and the socket subscribes again.
#[actix_web::test]
async fn a_live_page_gets_the_new_map_when_its_show_changes_layout() {
    let app = admin_app().await;
    let (theater, [empty, ..]) = seed(&app).await;
    let url = app.url(&format!("/shows/{empty}/live")).replacen("http://", "ws://", 1);
    let (_, mut ws) = awc::Client::new().ws(url).connect().await.expect("the socket opens");
    let first = next_text(&mut ws).await;
    assert_eq!((first["type"].as_str(), first["seats"].as_array().map(Vec::len)), (Some("snapshot"), Some(16)));

    let mut b = Browser::logged_in(&app.address, PASSWORD).await;
    b.get("/admin/theaters").await;
    let res = b.post_json_csrf(&format!("/admin/api/theaters/{theater}/layout"), &json!({ "text": NEW_LAYOUT })).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.json()["changed"].as_array().unwrap().contains(&json!(empty)), "{}", res.body);

    let again = next_text(&mut ws).await;
    assert_eq!(again["type"], "snapshot", "{again}");
    let seats: Vec<&str> = again["seats"].as_array().unwrap().iter().map(|s| s[0].as_str().unwrap()).collect();
    let expected: Vec<String> =
        new_shape().into_iter().flatten().map(|s| s.split(':').next().unwrap().to_string()).collect();
    assert_eq!(seats, expected, "the new layout's seats");
}

/// The socket's next text frame as JSON, answering pings on the way (bounded wait).
async fn next_text<S, E, F>(ws: &mut S) -> Value
where
    S: futures::Stream<Item = Result<awc::ws::Frame, E>> + futures::Sink<awc::ws::Message, Error = F> + Unpin,
    E: std::fmt::Debug,
    F: std::fmt::Debug,
{
    use futures::{SinkExt, StreamExt};
    loop {
        let frame = actix_rt::time::timeout(std::time::Duration::from_secs(15), ws.next())
            .await
            .expect("a frame within the bound")
            .expect("the socket is open")
            .expect("a valid frame");
        match frame {
            awc::ws::Frame::Text(bytes) => return serde_json::from_slice(&bytes).expect("JSON"),
            awc::ws::Frame::Ping(p) => ws.send(awc::ws::Message::Pong(p)).await.unwrap(),
            other => panic!("unexpected frame {other:?}"),
        }
    }
}
