//! The default auditorium every theater gets (the feed has none): 12 rows of 16 seats,
//! standard at the front, premium in the middle-back rows, stored like any other layout.
use crate::db::models::{Layout, LayoutRow, SeatCategory};
use crate::wal::change::CatalogChange;

pub const STANDARD_CENTS: i32 = 1250;
pub const PREMIUM_CENTS: i32 = 1650;

/// A layout with `rows` rows of `seats` seats; rows from `premium_from` (0-based) on are
/// premium. Ids come from `layout_id` (categories get `layout_id * 10 + n`).
pub fn layout_change(layout_id: i64, name: &str, rows: usize, seats: usize, premium_from: usize) -> CatalogChange {
    let standard = SeatCategory {
        id: layout_id * 10 + 1,
        layout_id,
        code: "standard".into(),
        name: "Standard".into(),
        price_cents: STANDARD_CENTS,
    };
    let premium = SeatCategory {
        id: layout_id * 10 + 2,
        layout_id,
        code: "premium".into(),
        name: "Premium".into(),
        price_cents: PREMIUM_CENTS,
    };
    let rows = (0..rows)
        .map(|i| LayoutRow {
            layout_id,
            row_label: row_label(i),
            position: i as i32,
            seat_count: seats as i32,
            category_id: if i >= premium_from { premium.id } else { standard.id },
        })
        .collect();
    CatalogChange {
        layouts: vec![Layout { id: layout_id, name: name.to_string() }],
        categories: vec![standard, premium],
        rows,
        ..Default::default()
    }
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
    fn default_layout_has_two_categories() {
        let c = layout_change(1, "Default", 12, 16, 6);
        assert_eq!(c.categories.len(), 2);
        assert_eq!(c.rows.len(), 12);
        assert_eq!(c.rows[0].row_label, "A");
        assert_eq!(c.rows[11].category_id, 12);
        assert_eq!(row_label(26), "AA");
        assert_eq!(row_label(27), "AB");
    }
}
