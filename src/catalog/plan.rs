//! Turns a feed into one catalog change against what is stored: new rows get the next
//! ids, changed rows are updated, unchanged ones are left out, and shows that left the
//! feed are deleted, or kept and marked when something was sold or is held for them.
use super::layout::{default_auditorium, text_change};
use super::zone::{local_to_utc, theater_zone, zone_named};
use crate::db::models::{hold_state, Movie, Show, Theater};
use crate::db::schema::{bookings, holds, layouts, movies, shows, theaters};
use crate::db::DbError;
use crate::importer::feed::CatalogFeed;
use crate::wal::change::CatalogChange;
use chrono::NaiveDate;
use diesel::mysql::MysqlConnection;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Seats of the default layout every new theater gets.
pub const DEFAULT_ROWS: usize = 12;
pub const DEFAULT_SEATS_PER_ROW: usize = 16;
pub const DEFAULT_PREMIUM_FROM: usize = 6;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    pub theaters: Counts,
    pub movies: Counts,
    pub shows: Counts,
    /// Shows gone from the feed and deleted (nothing sold or held).
    pub shows_removed: u32,
    /// Shows gone from the feed but kept for their bookings.
    pub shows_withdrawn: u32,
}

/// The key a movie is known by across imports: its title, lower-cased, spaces folded.
pub fn movie_key(title: &str) -> String {
    title.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// `feed_timezone` is the zone of a theater without coordinates; every other theater's
/// zone comes from where it is, and its show times are read as that zone's wall clock.
pub fn plan(
    conn: &mut MysqlConnection,
    feed: &CatalogFeed,
    feed_timezone: chrono_tz::Tz,
) -> Result<(CatalogChange, ImportCounts), DbError> {
    let mut change = CatalogChange::default();
    let mut counts = ImportCounts::default();

    let max_layout: Option<i64> = layouts::table.select(diesel::dsl::max(layouts::id)).first(conn)?;
    let mut next_layout = max_layout.unwrap_or(0) + 1;
    let max_theater: Option<i64> = theaters::table.select(diesel::dsl::max(theaters::id)).first(conn)?;
    let mut next_theater = max_theater.unwrap_or(0) + 1;
    let max_movie: Option<i64> = movies::table.select(diesel::dsl::max(movies::id)).first(conn)?;
    let mut next_movie = max_movie.unwrap_or(0) + 1;
    let max_show: Option<i64> = shows::table.select(diesel::dsl::max(shows::id)).first(conn)?;
    let mut next_show = max_show.unwrap_or(0) + 1;

    let stored_theaters: HashMap<String, Theater> = theaters::table
        .select(Theater::as_select())
        .load(conn)?
        .into_iter()
        .map(|t| (t.external_id.clone(), t))
        .collect();
    let mut stored_movies: HashMap<String, Movie> =
        movies::table.select(Movie::as_select()).load(conn)?.into_iter().map(|m| (m.external_key.clone(), m)).collect();

    // Theaters.
    let mut theater_rows: Vec<Theater> = Vec::new();
    for tf in &feed.theaters {
        let l = &tf.theater;
        match stored_theaters.get(&l.external_id) {
            Some(old) => {
                let new = Theater {
                    tid: l.tid.clone(),
                    name: l.name.clone(),
                    latitude: l.latitude,
                    longitude: l.longitude,
                    timezone: theater_zone(l.latitude, l.longitude, feed_timezone).name().to_string(),
                    ..old.clone()
                };
                if &new == old {
                    counts.theaters.unchanged += 1;
                } else {
                    counts.theaters.updated += 1;
                    change.theaters.push(new.clone());
                }
                theater_rows.push(new);
            }
            None => {
                let layout_id = next_layout;
                next_layout += 1;
                let layout = text_change(
                    layout_id,
                    &format!("{} — main auditorium", l.name),
                    &default_auditorium(DEFAULT_ROWS, DEFAULT_SEATS_PER_ROW, DEFAULT_PREMIUM_FROM),
                );
                change.layouts.extend(layout.layouts);
                change.categories.extend(layout.categories);
                change.rows.extend(layout.rows);
                let t = Theater {
                    id: next_theater,
                    external_id: l.external_id.clone(),
                    tid: l.tid.clone(),
                    name: l.name.clone(),
                    latitude: l.latitude,
                    longitude: l.longitude,
                    timezone: theater_zone(l.latitude, l.longitude, feed_timezone).name().to_string(),
                    layout_id,
                };
                next_theater += 1;
                counts.theaters.created += 1;
                change.theaters.push(t.clone());
                theater_rows.push(t);
            }
        }
    }

    // Movies (the same title in many theaters is one movie).
    let mut seen_movies: HashMap<String, i64> = HashMap::new();
    for tf in &feed.theaters {
        for mf in &tf.movies {
            let key = movie_key(&mf.title);
            if seen_movies.contains_key(&key) {
                continue;
            }
            let id = match stored_movies.get(&key) {
                Some(old) => {
                    let new = Movie {
                        title: mf.title.clone(),
                        duration_minutes: mf.duration_minutes.or(old.duration_minutes),
                        poster_url: mf.poster_url.clone().or_else(|| old.poster_url.clone()),
                        ..old.clone()
                    };
                    if &new == old {
                        counts.movies.unchanged += 1;
                    } else {
                        counts.movies.updated += 1;
                        change.movies.push(new);
                    }
                    old.id
                }
                None => {
                    let m = Movie {
                        id: next_movie,
                        external_key: key.clone(),
                        title: mf.title.clone(),
                        duration_minutes: mf.duration_minutes,
                        poster_url: mf.poster_url.clone(),
                    };
                    next_movie += 1;
                    counts.movies.created += 1;
                    change.movies.push(m.clone());
                    stored_movies.insert(key.clone(), m);
                    next_movie - 1
                }
            };
            seen_movies.insert(key, id);
        }
    }

    // Shows, per theater and date the feed covers.
    let theater_ids: Vec<i64> =
        theater_rows.iter().filter(|t| t.id < max_theater.unwrap_or(0) + 1).map(|t| t.id).collect();
    let stored_shows: Vec<Show> = if theater_ids.is_empty() {
        Vec::new()
    } else {
        shows::table.filter(shows::theater_id.eq_any(&theater_ids)).select(Show::as_select()).load(conn)?
    };
    let mut by_key: HashMap<(i64, i64, chrono::NaiveDateTime), &Show> =
        stored_shows.iter().map(|s| ((s.theater_id, s.movie_id, s.starts_at_local), s)).collect();
    let mut covered: HashSet<(i64, NaiveDate)> = HashSet::new();
    let mut in_feed: HashSet<i64> = HashSet::new();
    for (tf, theater) in feed.theaters.iter().zip(&theater_rows) {
        let tz = zone_named(&theater.timezone, feed_timezone);
        for mf in &tf.movies {
            covered.insert((theater.id, mf.date));
            let movie_id = seen_movies[&movie_key(&mf.title)];
            for time in &mf.times {
                let local = mf.date.and_time(*time);
                let Some(utc) = local_to_utc(tz, local) else {
                    continue; // a time that does not exist (the spring DST gap)
                };
                match by_key.remove(&(theater.id, movie_id, local)) {
                    Some(old) => {
                        in_feed.insert(old.id);
                        let new = Show { starts_at_utc: utc, in_feed: true, ..old.clone() };
                        if &new == old {
                            counts.shows.unchanged += 1;
                        } else {
                            counts.shows.updated += 1;
                            change.shows.push(new);
                        }
                    }
                    None => {
                        if change
                            .shows
                            .iter()
                            .any(|s| s.theater_id == theater.id && s.movie_id == movie_id && s.starts_at_local == local)
                        {
                            continue;
                        }
                        change.shows.push(Show {
                            id: next_show,
                            theater_id: theater.id,
                            movie_id,
                            layout_id: theater.layout_id,
                            local_date: mf.date,
                            starts_at_local: local,
                            starts_at_utc: utc,
                            in_feed: true,
                        });
                        next_show += 1;
                        counts.shows.created += 1;
                    }
                }
            }
        }
    }
    let gone: Vec<i64> = stored_shows
        .iter()
        .filter(|s| s.in_feed && !in_feed.contains(&s.id) && covered.contains(&(s.theater_id, s.local_date)))
        .map(|s| s.id)
        .collect();
    if !gone.is_empty() {
        let sold: HashSet<i64> = bookings::table
            .filter(bookings::show_id.eq_any(&gone))
            .select(bookings::show_id)
            .distinct()
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        let held: HashSet<i64> = holds::table
            .filter(holds::show_id.eq_any(&gone))
            .filter(holds::state.eq(hold_state::ACTIVE))
            .select(holds::show_id)
            .distinct()
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        for id in gone {
            if sold.contains(&id) || held.contains(&id) {
                change.shows_out_of_feed.push(id);
                counts.shows_withdrawn += 1;
            } else {
                change.shows_deleted.push(id);
                counts.shows_removed += 1;
            }
        }
    }
    Ok((change, counts))
}
