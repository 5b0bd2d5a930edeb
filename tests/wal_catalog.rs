//! A catalog entry is applied in a few multi-row upserts: a second import over the first
//! changes exactly what the feed changed, on the master and on a follower alike (they share
//! the code). Real MariaDB schemas, the real log writer.
mod common;

use chrono::NaiveDateTime;
use diesel::{QueryDsl, RunQueryDsl, SelectableHelper};
use marquee::db::models::{Layout, LayoutRow, Movie, SeatCategory, Show, Theater};
use marquee::db::schema::{layout_rows, layouts, movies, seat_categories, shows, theaters};
use marquee::wal::change::CatalogChange;
use marquee::wal::{Change, LogRecord};

fn record(lsn: i64, change: CatalogChange) -> LogRecord {
    let at = NaiveDateTime::parse_from_str("2026-12-06 12:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    LogRecord { lsn, epoch: 1, lamport: lsn, origin: 1, created_at: at, change: Change::Catalog(Box::new(change)) }
}

#[actix_web::test]
async fn a_second_import_changes_every_column_it_names_and_keeps_what_it_leaves_out() {
    let (name, db, writer) = common::follower_writer();
    let (mut first, _) = common::show_change(900, 4, 6, chrono::Duration::days(2));
    // Show times are DATETIME, whole seconds (the feed's are whole minutes).
    use chrono::Timelike;
    for s in &mut first.shows {
        s.starts_at_local = s.starts_at_local.with_nanosecond(0).unwrap();
        s.starts_at_utc = s.starts_at_utc.with_nanosecond(0).unwrap();
    }
    assert!(
        first.categories.iter().all(|c| c.letter.is_some()) && first.rows.iter().all(|r| r.seats.is_some()),
        "the first import gives what the second leaves out"
    );
    writer.persist(None, vec![record(1, first.clone())]).await.unwrap();

    // Every column that is not a key changes, and a few values only text can get wrong:
    // quotes, non-ASCII, a latitude with many digits, a movie losing its poster.
    let mut second = first.clone();
    for l in &mut second.layouts {
        l.name = format!("{} (it's new)", l.name);
        l.no_lonely_seats = !l.no_lonely_seats;
    }
    for c in &mut second.categories {
        c.name = "Loge « lux »".into();
        c.price_cents += 150;
        c.letter = None; // leaves the stored letter (the changeset skips a None)
    }
    for r in &mut second.rows {
        r.position += 10;
        r.seats = None; // leaves the stored places
    }
    for t in &mut second.theaters {
        t.name = "Théâtre \"Lumière\"; DROP TABLE shows; --".into();
        t.latitude = 34.052_234_567_891_23;
        t.longitude = -118.243_685_000_000_01;
        t.timezone = "America/Phoenix".into();
        t.tid = "T-2".into();
    }
    for m in &mut second.movies {
        m.title = format!("{} — director's cut", m.title);
        m.duration_minutes = Some(m.duration_minutes.unwrap_or(90) + 7);
        m.poster_url = None; // a movie stores its None as given
    }
    for s in &mut second.shows {
        s.starts_at_local += chrono::Duration::minutes(15);
        s.starts_at_utc += chrono::Duration::minutes(15);
        s.in_feed = false;
    }
    writer.persist(None, vec![record(2, second.clone())]).await.unwrap();

    let mut conn = db.get().unwrap();
    let stored_layouts: Vec<Layout> =
        layouts::table.order(layouts::id).select(Layout::as_select()).load(&mut conn).unwrap();
    assert_eq!(stored_layouts, second.layouts);
    let stored: Vec<SeatCategory> =
        seat_categories::table.order(seat_categories::id).select(SeatCategory::as_select()).load(&mut conn).unwrap();
    let expected: Vec<SeatCategory> = second
        .categories
        .iter()
        .zip(&first.categories)
        .map(|(new, old)| SeatCategory { letter: old.letter.clone(), ..new.clone() })
        .collect();
    assert_eq!(stored, expected);
    let stored: Vec<LayoutRow> = layout_rows::table
        .order((layout_rows::layout_id, layout_rows::row_label))
        .select(LayoutRow::as_select())
        .load(&mut conn)
        .unwrap();
    let mut expected: Vec<LayoutRow> = second
        .rows
        .iter()
        .zip(&first.rows)
        .map(|(new, old)| LayoutRow { seats: old.seats.clone(), ..new.clone() })
        .collect();
    expected.sort_by(|a, b| (a.layout_id, &a.row_label).cmp(&(b.layout_id, &b.row_label)));
    assert_eq!(stored, expected);
    let stored: Vec<Theater> =
        theaters::table.order(theaters::id).select(Theater::as_select()).load(&mut conn).unwrap();
    assert_eq!(stored, second.theaters, "every column, the doubles to the last bit");
    let stored: Vec<Movie> = movies::table.order(movies::id).select(Movie::as_select()).load(&mut conn).unwrap();
    assert_eq!(stored, second.movies);
    let stored: Vec<Show> = shows::table.order(shows::id).select(Show::as_select()).load(&mut conn).unwrap();
    assert_eq!(stored, second.shows);

    drop(conn);
    drop(writer);
    drop(db);
    common::drop_schema(&name);
}
