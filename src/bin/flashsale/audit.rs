//! The database against what the clients were told.
use crate::load::Ack;
use diesel::mysql::MysqlConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use std::collections::{HashMap, HashSet};

#[derive(QueryableByName)]
pub struct SeatRow {
    #[diesel(sql_type = BigInt)]
    pub show_id: i64,
    #[diesel(sql_type = Text)]
    pub seat: String,
    #[diesel(sql_type = Text)]
    pub booking_code: String,
}

#[derive(QueryableByName)]
pub struct Doubled {
    #[diesel(sql_type = BigInt)]
    pub show_id: i64,
    #[diesel(sql_type = Text)]
    pub seat: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

#[derive(QueryableByName)]
pub struct Code {
    #[diesel(sql_type = Text)]
    pub code: String,
}

/// Checks the database against what the clients were told; prints and returns whether it
/// holds: no seat sold twice, every acknowledged booking stored with its seats, and as many
/// bookings stored as acknowledged.
pub fn audit(conn: &mut MysqlConnection, acks: &[Ack]) -> Result<bool, String> {
    let q = |e: diesel::result::Error| format!("audit query failed: {e}");
    let doubled: Vec<Doubled> = diesel::sql_query(
        "SELECT show_id, seat, COUNT(*) AS n FROM booking_seats GROUP BY show_id, seat HAVING COUNT(*) > 1",
    )
    .load(conn)
    .map_err(q)?;
    let codes: HashSet<String> = diesel::sql_query("SELECT code FROM bookings")
        .load::<Code>(conn)
        .map_err(q)?
        .into_iter()
        .map(|c| c.code)
        .collect();
    let owners: HashMap<(i64, String), String> =
        diesel::sql_query("SELECT show_id, seat, booking_code FROM booking_seats")
            .load::<SeatRow>(conn)
            .map_err(q)?
            .into_iter()
            .map(|r| ((r.show_id, r.seat), r.booking_code))
            .collect();
    let lost: Vec<&Ack> = acks.iter().filter(|a| !codes.contains(&a.code)).collect();
    let misplaced: Vec<(&Ack, &String)> = acks
        .iter()
        .flat_map(|a| a.seats.iter().map(move |s| (a, s)))
        .filter(|(a, s)| owners.get(&(a.show, (*s).clone())) != Some(&a.code))
        .collect();
    let distinct_acks: HashSet<&str> = acks.iter().map(|a| a.code.as_str()).collect();
    println!("check of the database:");
    println!("  seats sold twice (booking_seats GROUP BY show_id, seat HAVING COUNT(*) > 1): {}", doubled.len());
    for d in doubled.iter().take(10) {
        println!("    show {} seat {} sold {} times", d.show_id, d.seat, d.n);
    }
    println!(
        "  bookings acknowledged {} ({} distinct codes), rows in bookings {}, booking_seats rows {}",
        acks.len(),
        distinct_acks.len(),
        codes.len(),
        owners.len()
    );
    println!("  acknowledged codes missing from bookings: {}", lost.len());
    for a in lost.iter().take(10) {
        println!("    {} (show {})", a.code, a.show);
    }
    println!("  acknowledged seats not owned by their booking in booking_seats: {}", misplaced.len());
    let ok = doubled.is_empty()
        && lost.is_empty()
        && misplaced.is_empty()
        && distinct_acks.len() == acks.len()
        && codes.len() == acks.len();
    println!("  verdict: {}", if ok { "OK" } else { "FAILED" });
    Ok(ok)
}
