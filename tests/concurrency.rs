//! 200 clients race for the same seats of one show: exactly one wins each seat.
mod common;

use actix_web::http::StatusCode;
use chrono::Duration;
use common::spawn_app;
use futures::future::join_all;
use std::collections::HashMap;

#[actix_web::test]
async fn two_hundred_clients_race_for_the_same_seats() {
    let app = spawn_app().await;
    let show = app.seed_show(2, 10, Duration::days(1)).await;
    // Every client wants two seats out of the same six, in different pairs.
    let wanted = ["A1", "A2", "A3", "A4", "A5", "A6"];
    let clients = (0..200).map(|i| {
        let pair = [wanted[i % 6], wanted[(i / 6 + i + 1) % 6]];
        let pair: Vec<&str> = if pair[0] == pair[1] { vec![pair[0]] } else { pair.to_vec() };
        let app = &app;
        async move {
            let (status, body) = app.hold(show, &pair).await;
            if status != StatusCode::CREATED {
                return (pair, status, None);
            }
            let (cstatus, booking) = app
                .confirm(body["hold_id"].as_str().unwrap(), &format!("Client {i}"), &format!("c{i}@example.com"))
                .await;
            assert_eq!(cstatus, StatusCode::CREATED, "{booking}");
            (pair, status, Some(booking["code"].as_str().unwrap().to_string()))
        }
    });
    let results = join_all(clients).await;

    let mut owner: HashMap<String, String> = HashMap::new();
    let mut winners = 0;
    for (pair, status, code) in &results {
        match code {
            Some(code) => {
                winners += 1;
                for seat in pair {
                    assert!(owner.insert(seat.to_string(), code.clone()).is_none(), "seat {seat} sold twice");
                }
            }
            None => assert_eq!(*status, StatusCode::CONFLICT, "a loser must get 409"),
        }
    }
    assert!(winners >= 3, "at least three disjoint pairs can win");
    assert_eq!(results.len() - winners, results.iter().filter(|r| r.1 == StatusCode::CONFLICT).count());
    // The database agrees: one row per sold seat, owned by the winner we saw.
    let sold = app.count(&format!("SELECT COUNT(*) AS n FROM booking_seats WHERE show_id = {show}")).await;
    assert_eq!(sold as usize, owner.len());
    for (seat, code) in &owner {
        let n = app.count(&format!("SELECT COUNT(*) AS n FROM booking_seats WHERE show_id = {show} AND seat = '{seat}' AND booking_code = '{code}'")).await;
        assert_eq!(n, 1, "{seat} is not {code}'s in the database");
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM bookings").await as usize, winners);
}
