//! Time zones: a theater's zone from its coordinates, a feed's local show time to UTC, and
//! a stored UTC time back to the theater's wall clock ("19:15 PST").
use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use std::sync::LazyLock;
use tzf_rs::EmbeddedFinder;

/// tzf-rs's embedded zone map (the lite boundaries, ~4 MB in the binary), opened once on
/// the first lookup. It is read-only data, not a setting.
static FINDER: LazyLock<EmbeddedFinder> = LazyLock::new(EmbeddedFinder::new);

/// The zone of a theater at `latitude`, `longitude`. The feed sends 0/0 for a theater it
/// has no coordinates for (Null Island is in the sea); that, a point no zone covers, or a
/// zone chrono-tz does not know gives `fallback` (FEED_TIMEZONE).
pub fn theater_zone(latitude: f64, longitude: f64, fallback: Tz) -> Tz {
    if !has_coordinates(latitude, longitude) {
        return fallback;
    }
    FINDER.get_tz_name(longitude, latitude).parse().unwrap_or(fallback)
}

fn has_coordinates(latitude: f64, longitude: f64) -> bool {
    latitude.is_finite()
        && longitude.is_finite()
        && (-90.0..=90.0).contains(&latitude)
        && (-180.0..=180.0).contains(&longitude)
        && !(latitude == 0.0 && longitude == 0.0)
}

/// A stored zone name, or `fallback` when it is not one chrono-tz knows.
pub fn zone_named(name: &str, fallback: Tz) -> Tz {
    name.parse().unwrap_or(fallback)
}

/// The UTC instant of the wall-clock time `local` in `zone`. A time the spring change skips
/// does not exist (None); a time the autumn change repeats is the first of the two.
pub fn local_to_utc(zone: Tz, local: NaiveDateTime) -> Option<NaiveDateTime> {
    zone.from_local_datetime(&local).earliest().map(|t| t.naive_utc())
}

/// `utc` on the wall clock of `zone`, with the zone's abbreviation: "19:15 PST".
pub fn local_time_label(zone: Tz, utc: NaiveDateTime) -> String {
    zone.from_utc_datetime(&utc).format("%H:%M %Z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::{America, Asia, Europe, Pacific};

    const FALLBACK: Tz = America::Los_Angeles;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap()
    }

    #[test]
    fn known_places_get_their_own_zone() {
        // A non-LA fallback, so that a lookup that silently fell back cannot pass for LA.
        let fallback = Pacific::Honolulu;
        assert_eq!(theater_zone(34.0522, -118.2437, fallback), America::Los_Angeles, "Los Angeles");
        assert_eq!(theater_zone(40.7580, -73.9855, fallback), America::New_York, "Times Square");
        assert_eq!(theater_zone(51.5074, -0.1278, fallback), Europe::London, "London");
        assert_eq!(theater_zone(35.6812, 139.7671, fallback), Asia::Tokyo, "Tokyo");
    }

    #[test]
    fn a_theater_without_coordinates_gets_the_feed_zone() {
        assert_eq!(theater_zone(0.0, 0.0, FALLBACK), FALLBACK);
        assert_eq!(theater_zone(0.0, 0.0, Asia::Tokyo), Asia::Tokyo);
        assert_eq!(theater_zone(f64::NAN, -118.2, FALLBACK), FALLBACK);
        assert_eq!(theater_zone(91.0, 10.0, FALLBACK), FALLBACK);
    }

    #[test]
    fn a_stored_zone_name_is_read_back_or_falls_back() {
        assert_eq!(zone_named("America/New_York", FALLBACK), America::New_York);
        assert_eq!(zone_named("Mars/Olympus_Mons", FALLBACK), FALLBACK);
        assert_eq!(zone_named("", Asia::Tokyo), Asia::Tokyo);
    }

    #[test]
    fn local_times_are_stored_as_utc_across_the_spring_change() {
        let la = America::Los_Angeles;
        // 8 March 2026, 02:00 PST becomes 03:00 PDT.
        assert_eq!(local_to_utc(la, at(2026, 3, 8, 1, 30)), Some(at(2026, 3, 8, 9, 30)), "PST is UTC-8");
        assert_eq!(local_to_utc(la, at(2026, 3, 8, 2, 30)), None, "02:30 does not exist that night");
        assert_eq!(local_to_utc(la, at(2026, 3, 8, 3, 30)), Some(at(2026, 3, 8, 10, 30)), "PDT is UTC-7");
        // The same evening show on either side of the change is an hour apart in UTC.
        assert_eq!(local_to_utc(la, at(2026, 3, 7, 19, 15)), Some(at(2026, 3, 8, 3, 15)));
        assert_eq!(local_to_utc(la, at(2026, 3, 8, 19, 15)), Some(at(2026, 3, 9, 2, 15)));
    }

    #[test]
    fn a_repeated_autumn_hour_is_the_first_one() {
        let ny = America::New_York;
        // 1 November 2026, 02:00 EDT becomes 01:00 EST: 01:30 happens twice.
        assert_eq!(local_to_utc(ny, at(2026, 11, 1, 1, 30)), Some(at(2026, 11, 1, 5, 30)), "01:30 EDT");
        assert_eq!(local_to_utc(ny, at(2026, 11, 1, 19, 15)), Some(at(2026, 11, 2, 0, 15)), "EST is UTC-5");
    }

    #[test]
    fn labels_show_the_wall_clock_and_the_abbreviation_of_that_day() {
        assert_eq!(local_time_label(America::Los_Angeles, at(2026, 1, 16, 3, 15)), "19:15 PST");
        assert_eq!(local_time_label(America::Los_Angeles, at(2026, 7, 16, 2, 15)), "19:15 PDT");
        assert_eq!(local_time_label(America::New_York, at(2026, 1, 17, 0, 15)), "19:15 EST");
        assert_eq!(local_time_label(Asia::Tokyo, at(2026, 7, 16, 10, 15)), "19:15 JST");
        // Local times round-trip through their UTC instant on both sides of each change.
        let la = America::Los_Angeles;
        for (local, label) in [
            (at(2026, 3, 8, 1, 59), "01:59 PST"),
            (at(2026, 3, 8, 3, 0), "03:00 PDT"),
            (at(2026, 11, 1, 0, 30), "00:30 PDT"),
            (at(2026, 11, 1, 2, 0), "02:00 PST"),
        ] {
            assert_eq!(local_to_utc(la, local).map(|utc| local_time_label(la, utc)).as_deref(), Some(label));
        }
    }
}
