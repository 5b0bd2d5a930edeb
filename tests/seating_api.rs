//! Auditorium layouts, wheelchair spaces, the no-lonely-seat rule and "find me N seats"
//! through the JSON API, against a real node and a real MariaDB.
mod common;

use actix_web::http::StatusCode;
use chrono::Duration;
use common::{show_change, spawn_app, TestApp};
use marquee::catalog::layout::{default_auditorium, text_change};
use marquee::domain::LayoutText;
use marquee::wal::Change;
use serde_json::{json, Value};

/// A show in a hall laid out as `text`.
async fn seed(app: &TestApp, base: i64, text: &LayoutText) -> i64 {
    let (mut change, id) = show_change(base, 1, 1, Duration::days(2));
    let layout = text_change(base, "Hall", text);
    change.layouts = layout.layouts;
    change.categories = layout.categories;
    change.rows = layout.rows;
    app.writable().await;
    app.state.writer.append(Change::Catalog(Box::new(change))).await.expect("seed");
    id
}

async fn hold(app: &TestApp, show: i64, body: Value) -> (StatusCode, Value) {
    app.post_json(&format!("/api/shows/{show}/holds"), &body).await
}

fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[actix_web::test]
async fn the_default_auditorium_draws_aisles_and_wheelchair_spaces_are_only_for_who_needs_one() {
    let app = spawn_app().await;
    let show = seed(&app, 1000, &default_auditorium(12, 16, 6)).await;
    // L1 is a wheelchair space, L2 its companion seat.
    let (status, body) = hold(&app, show, json!({"seats": ["L1", "L2"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error(&body).contains("L1 is a wheelchair space"), "{body}");
    assert!(error(&body).contains("I need a wheelchair space"), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM holds").await, 0, "a refusal changes nothing");
    let (status, body) = hold(&app, show, json!({"seats": ["L1", "L2"], "wheelchair": true})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["seats"], json!(["L1", "L2"]));
    // A companion seat alone is anyone's.
    let (status, body) = hold(&app, show, json!({"seats": ["L15"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[actix_web::test]
async fn a_selection_that_leaves_a_lonely_seat_is_refused_naming_it() {
    let app = spawn_app().await;
    let show = seed(&app, 1000, &default_auditorium(12, 16, 6)).await;
    // A1-A3 is the block left of the aisle: A2 and A3 would leave A1 alone.
    let (status, body) = hold(&app, show, json!({"seats": ["A2", "A3"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error(&body).contains("seat A1 empty on its own"), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM holds").await, 0);
    // Between a taken seat and the aisle.
    let (status, _) = hold(&app, show, json!({"seats": ["B4", "B5"]})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = hold(&app, show, json!({"seats": ["B7", "B8"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(error(&body).contains("seat B6"), "{body}");
    let (status, body) = hold(&app, show, json!({"seats": ["A1", "A2"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "A3 would be alone by the aisle: {body}");
    let (status, body) = hold(&app, show, json!({"seats": ["A1", "A2", "A3"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[actix_web::test]
async fn best_available_is_central_not_at_the_front_of_a_category_and_says_when_split() {
    let app = spawn_app().await;
    let show = seed(&app, 1000, &default_auditorium(12, 16, 6)).await;
    let (status, body) = hold(&app, show, json!({"best": 2})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["seats"], json!(["H8", "H9"]), "two thirds back, in the middle");
    assert!(body.get("note").is_none());
    let (status, body) = hold(&app, show, json!({"best": 3, "category": "standard"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let rows: Vec<&str> = body["seats"].as_array().unwrap().iter().map(|s| &s.as_str().unwrap()[..1]).collect();
    assert!(rows.iter().all(|r| *r < "G"), "rows A-F are standard: {body}");

    let small = LayoutText::parse("S = Standard 10\nA: SSS\nB: SSS\n").unwrap();
    let show = seed(&app, 2000, &small).await;
    let (status, body) = hold(&app, show, json!({"best": 4})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["seats"].as_array().unwrap().len(), 4);
    assert!(body["note"].as_str().unwrap().contains("two groups"), "{body}");
    let (status, body) = hold(&app, show, json!({"best": 3})).await;
    assert_eq!(status, StatusCode::CONFLICT, "two seats left: {body}");
    assert!(error(&body).contains("no 3 free seats together"), "{body}");
}

#[actix_web::test]
async fn bad_best_requests_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let show = seed(&app, 1000, &default_auditorium(12, 16, 6)).await;
    for (body, want) in [
        (json!({"best": 0}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"best": 11}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"best": 2, "category": "gold"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"best": 2, "category": "no such!"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"best": 2, "seats": ["A1"]}), StatusCode::BAD_REQUEST),
        (json!({"seats": ["A1"], "category": "standard"}), StatusCode::BAD_REQUEST),
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"best": "two"}), StatusCode::BAD_REQUEST),
    ] {
        let (status, answer) = hold(&app, show, body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
    }
    let (_, body) = hold(&app, show, json!({"best": 11})).await;
    assert_eq!(error(&body), "ask for 1 to 10 seats, not 11");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM holds").await, 0);
}

#[actix_web::test]
async fn the_seat_map_draws_aisles_and_names_wheelchair_and_companion_seats() {
    let app = spawn_app().await;
    let show = seed(&app, 1000, &default_auditorium(12, 16, 6)).await;
    let (status, map) = app.get_json(&format!("/api/shows/{show}/seats")).await;
    assert_eq!(status, StatusCode::OK, "{map}");
    let back = &map["rows"][11]["seats"];
    assert_eq!(back[0]["kind"], "wheelchair");
    assert_eq!(back[1]["kind"], "companion");
    assert_eq!(back[2]["space_before"], 1, "an aisle before L3");
    assert_eq!(map["rows"][0]["seats"][3]["space_before"], 1, "and before A4");
    let page =
        app.client.get(app.url(&format!("/shows/{show}"))).send().await.unwrap().body().limit(4 << 20).await.unwrap();
    let html = String::from_utf8(page.to_vec()).unwrap();
    assert!(html.contains("Row L seat 1, wheelchair space,"), "screen-reader text for the kind");
    assert!(html.contains("Row L seat 2, companion seat beside a wheelchair space,"));
    assert!(html.contains("class=\"aisle\""));
    assert!(html.contains("Wheelchair space (tick"), "the legend");
}
