//! Auditorium layouts as catalog rows. Every theater the importer finds gets
//! [`default_auditorium`] (the feed has none): 12 rows of 16 seats with two aisles, standard
//! at the front, premium in the middle-back rows, and two wheelchair spaces, each with a
//! companion seat, at the ends of the back row.
use crate::db::models::{Layout, LayoutRow, SeatCategory};
use crate::domain::{CategoryText, LayoutText, Place, RowText, SeatKind};
use crate::wal::change::CatalogChange;

pub const STANDARD_CENTS: i32 = 1250;
pub const PREMIUM_CENTS: i32 = 1650;
/// The longest category code (`seat_categories.code`).
const MAX_CODE: usize = 20;

/// The default auditorium: `rows` rows of `seats` seats, rows from `premium_from` (0-based)
/// on premium; aisles three seats in from each side (when a row has at least 8 seats), and
/// a wheelchair space with its companion seat at each end of the back row, an aisle beside
/// each pair.
pub fn default_auditorium(rows: usize, seats: usize, premium_from: usize) -> LayoutText {
    let mut text = grid(rows, seats, premium_from);
    text.lonely_seats_allowed = false;
    for row in &mut text.rows {
        if seats >= 8 {
            row.places.insert(seats - 3, Place::Aisle);
            row.places.insert(3, Place::Aisle);
        }
    }
    if let Some(back) = text.rows.last_mut() {
        if seats >= 5 {
            // Each pair on its own by an aisle, so holding it leaves no seat alone.
            let cat = if rows > premium_from { 'P' } else { 'S' };
            let mut places =
                vec![Place::Seat(SeatKind::Wheelchair, 'S'), Place::Seat(SeatKind::Companion, 'S'), Place::Aisle];
            places.extend(vec![Place::Seat(SeatKind::Standard, cat); seats - 4]);
            places.extend([
                Place::Aisle,
                Place::Seat(SeatKind::Companion, 'S'),
                Place::Seat(SeatKind::Wheelchair, 'S'),
            ]);
            back.places = places;
        }
    }
    text
}

/// A plain grid: `rows` rows of `seats` standard seats, no aisles: the benchmarks' and
/// tests' halls, whose clients pick seats at random, so with lonely seats allowed.
pub fn grid(rows: usize, seats: usize, premium_from: usize) -> LayoutText {
    LayoutText {
        lonely_seats_allowed: true,
        categories: vec![
            CategoryText { letter: 'S', name: "Standard".into(), price_cents: STANDARD_CENTS },
            CategoryText { letter: 'P', name: "Premium".into(), price_cents: PREMIUM_CENTS },
        ],
        rows: (0..rows)
            .map(|i| RowText {
                label: row_label(i),
                places: vec![Place::Seat(SeatKind::Standard, if i >= premium_from { 'P' } else { 'S' }); seats],
            })
            .collect(),
    }
}

/// A grid layout with `rows` rows of `seats` seats; rows from `premium_from` (0-based) on
/// are premium.
pub fn layout_change(layout_id: i64, name: &str, rows: usize, seats: usize, premium_from: usize) -> CatalogChange {
    text_change(layout_id, name, &grid(rows, seats, premium_from))
}

/// The catalog rows of a layout. Ids come from `layout_id` (categories get
/// `layout_id * 10 + n`, so a layout has at most 9 categories: see
/// [`crate::domain::MAX_CATEGORIES`]).
pub fn text_change(layout_id: i64, name: &str, text: &LayoutText) -> CatalogChange {
    let mut categories: Vec<SeatCategory> = Vec::new();
    for (n, c) in text.categories.iter().enumerate() {
        // `seat_categories.code` holds 20 characters: room for the slug and a `-x` suffix.
        let mut code: String = slug(&c.name).chars().take(MAX_CODE - 2).collect();
        code = code.trim_end_matches('-').to_string();
        if code.is_empty() || categories.iter().any(|k| k.code == code) {
            code = format!("{code}-{}", c.letter.to_ascii_lowercase()).trim_start_matches('-').to_string();
        }
        categories.push(SeatCategory {
            id: layout_id * 10 + n as i64 + 1,
            layout_id,
            code,
            name: c.name.clone(),
            price_cents: c.price_cents,
            letter: Some(c.letter.to_string()),
        });
    }
    let category_of = |letter: char| categories.iter().find(|c| c.letter() == letter).map_or(0, |c| c.id);
    let rows = text
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let first = r.places.iter().find_map(|p| match p {
                Place::Seat(_, c) => Some(*c),
                _ => None,
            });
            LayoutRow {
                layout_id,
                row_label: r.label.clone(),
                position: i as i32,
                seat_count: r.seat_count() as i32,
                category_id: category_of(first.unwrap_or('S')),
                seats: Some(r.pattern()),
            }
        })
        .collect();
    CatalogChange {
        layouts: vec![Layout { id: layout_id, name: name.to_string(), no_lonely_seats: !text.lonely_seats_allowed }],
        categories,
        rows,
        ..Default::default()
    }
}

/// The layout text of a stored layout (its categories and rows, in order): what an
/// operator edits. Rows stored before rows had patterns are their seats in their category.
pub fn stored_text(categories: &[SeatCategory], rows: &[LayoutRow]) -> LayoutText {
    let cheapest = categories.iter().min_by_key(|c| c.price_cents).map_or('S', |c| c.letter());
    let letter_of = |id: i64| categories.iter().find(|c| c.id == id).map_or(cheapest, |c| c.letter());
    LayoutText {
        categories: categories
            .iter()
            .map(|c| CategoryText { letter: c.letter(), name: c.name.clone(), price_cents: c.price_cents })
            .collect(),
        rows: rows
            .iter()
            .map(|r| RowText {
                label: r.row_label.clone(),
                places: match &r.seats {
                    Some(pattern) => pattern
                        .chars()
                        .map(|ch| match ch {
                            '_' => Place::Aisle,
                            '.' => Place::Gap,
                            'W' => Place::Seat(SeatKind::Wheelchair, cheapest),
                            'C' => Place::Seat(SeatKind::Companion, cheapest),
                            c => Place::Seat(SeatKind::Standard, c),
                        })
                        .collect(),
                    None => {
                        vec![Place::Seat(SeatKind::Standard, letter_of(r.category_id)); r.seat_count.max(0) as usize]
                    }
                },
            })
            .collect(),
        lonely_seats_allowed: false,
    }
}

fn slug(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

/// A, B, ..., Z, AA, AB, ...
pub fn row_label(i: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if i < 26 {
        (letters[i] as char).to_string()
    } else {
        format!("{}{}", letters[(i / 26 - 1) % 26] as char, letters[i % 26] as char)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_layout_has_two_categories() {
        let c = layout_change(1, "Default", 12, 16, 6);
        assert_eq!(c.categories.len(), 2);
        assert_eq!(c.rows.len(), 12);
        assert_eq!(c.rows[0].row_label, "A");
        assert_eq!(c.rows[0].seats.as_deref(), Some("SSSSSSSSSSSSSSSS"));
        assert_eq!(c.rows[11].category_id, 12);
        assert_eq!(c.categories[1].letter(), 'P');
        assert_eq!(row_label(26), "AA");
        assert_eq!(row_label(27), "AB");
    }

    #[test]
    fn default_auditorium_has_aisles_and_two_wheelchair_spaces_with_companions() {
        let text = default_auditorium(12, 16, 6);
        assert_eq!(text.rows[0].pattern(), "SSS_SSSSSSSSSS_SSS");
        assert_eq!(text.rows[11].pattern(), "WC_PPPPPPPPPPPP_CW");
        assert_eq!(text.count(SeatKind::Wheelchair), 2);
        assert_eq!(text.count(SeatKind::Companion), 2);
        assert!(text.rows.iter().all(|r| r.seat_count() == 16));
        // It is a layout an operator could have written.
        assert_eq!(LayoutText::parse(&text.to_string()).unwrap(), text);
        let change = text_change(3, "Main", &text);
        assert_eq!(change.rows[11].seats.as_deref(), Some("WC_PPPPPPPPPPPP_CW"));
        assert_eq!(change.rows[11].category_id, 31, "the row's first seat is priced standard");
        assert_eq!(change.rows[11].seat_count, 16);
        assert!(change.layouts[0].no_lonely_seats, "the rule is on");
        assert!(!layout_change(4, "Bench", 2, 2, 1).layouts[0].no_lonely_seats);
    }

    #[test]
    fn a_stored_layout_reads_back_as_the_text_it_was_written_from() {
        let text = LayoutText::parse("P = Premium 16.50\nS = Standard 12\nA: .SS_SS.\nB: WC_PPSS_CW\n").unwrap();
        let change = text_change(7, "Hall", &text);
        let back = stored_text(&change.categories, &change.rows);
        assert_eq!(back, text);
        assert_eq!(back.to_string(), "P = Premium 16.50\nS = Standard 12.00\nA: .SS_SS.\nB: WC_PPSS_CW\n");
        // Rows stored before patterns: their seats, in their category.
        let mut old = layout_change(8, "Old", 2, 3, 1);
        for r in &mut old.rows {
            r.seats = None;
        }
        assert_eq!(
            stored_text(&old.categories, &old.rows).to_string(),
            "S = Standard 12.50\nP = Premium 16.50\nA: SSS\nB: PPP\n"
        );
    }

    #[test]
    fn category_codes_are_unique_slugs() {
        let text = LayoutText::parse("S = Standard 10\nT = Standard 11\nV = !! 20\nA: STV\n").unwrap();
        let change = text_change(2, "Hall", &text);
        let codes: Vec<&str> = change.categories.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["standard", "standard-t", "v"]);
        assert_eq!(change.categories[2].id, 23);
        // Names of up to 40 characters give codes the column holds, still unique.
        let long = "Premium recliner seats with extra legroom";
        let text = LayoutText::parse(&format!("P = {} 20\nQ = {} 22\nA: PQ\n", &long[..40], &long[..40])).unwrap();
        let codes: Vec<String> = text_change(3, "Hall", &text).categories.into_iter().map(|c| c.code).collect();
        assert_eq!(codes, ["premium-recliner-s", "premium-recliner-s-q"]);
        assert!(codes.iter().all(|c| c.len() <= MAX_CODE));
    }
}
