//! An auditorium's layout in the plain text an operator writes, parsed into a
//! [`LayoutText`]. Lines:
//!
//! ```text
//! # a comment
//! S = Standard 12.50        a category: one capital letter, a name, a price
//! P = Premium 16.50
//! A: SS_SSSSSSSS_SS         a row, front (screen) first: its label, then one symbol a place
//! B: WC_SSSSSSSS_CW
//! ```
//!
//! Row symbols: a category letter is a standard seat of that category, `W` a wheelchair
//! space, `C` a companion seat (beside a wheelchair space, no aisle between), `_` an aisle,
//! `.` a gap (no seat, e.g. to line up a shorter row). Seats are numbered from 1 along the
//! row, aisles and gaps not counted. Wheelchair spaces and companion seats are priced in the
//! cheapest category. Every error names the line, and for a row its label and the column.
use std::collections::HashSet;
use std::fmt;

/// The most rows a layout may have, and the most places (seats, aisles, gaps) in a row.
pub const MAX_ROWS: usize = 40;
pub const MAX_ROW_PLACES: usize = 60;
/// The most price categories a layout may have.
pub const MAX_CATEGORIES: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeatKind {
    Standard,
    Wheelchair,
    Companion,
}

impl SeatKind {
    pub fn name(self) -> &'static str {
        match self {
            SeatKind::Standard => "standard",
            SeatKind::Wheelchair => "wheelchair",
            SeatKind::Companion => "companion",
        }
    }
}

/// One place in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A seat: its kind and its category letter.
    Seat(SeatKind, char),
    Aisle,
    Gap,
}

impl Place {
    pub fn symbol(self) -> char {
        match self {
            Place::Seat(SeatKind::Standard, c) => c,
            Place::Seat(SeatKind::Wheelchair, _) => 'W',
            Place::Seat(SeatKind::Companion, _) => 'C',
            Place::Aisle => '_',
            Place::Gap => '.',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryText {
    pub letter: char,
    pub name: String,
    pub price_cents: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowText {
    pub label: String,
    pub places: Vec<Place>,
}

impl RowText {
    pub fn seat_count(&self) -> usize {
        self.places.iter().filter(|p| matches!(p, Place::Seat(..))).count()
    }

    /// The row's places as symbols, e.g. `SS_WC`: what `layout_rows.seats` stores.
    pub fn pattern(&self) -> String {
        self.places.iter().map(|p| p.symbol()).collect()
    }
}

/// A valid layout: at least one category and one row, every symbol known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutText {
    pub categories: Vec<CategoryText>,
    pub rows: Vec<RowText>,
    /// Whether seats picked by hand may leave a seat alone (the no-lonely-seat rule off).
    /// Always false for a parsed layout; the benchmarks' plain grids turn it on.
    pub lonely_seats_allowed: bool,
}

/// Why a layout text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("the layout has no rows")]
    NoRows,
    #[error("the layout defines no category (a line like `S = Standard 12.50`)")]
    NoCategories,
    #[error("the layout has more than {MAX_CATEGORIES} categories")]
    TooManyCategories,
    #[error("the layout has more than {MAX_ROWS} rows")]
    TooManyRows,
    #[error("line {line}: expected a row like `A: SS_SS` or a category like `S = Standard 12.50`")]
    BadLine { line: usize },
    #[error("line {line}: '{label}' is not a row label (one to three capital letters)")]
    BadRowLabel { line: usize, label: String },
    #[error("line {line}: row {row} appears twice")]
    DuplicateRow { line: usize, row: String },
    #[error("line {line}: row {row} has no seats")]
    EmptyRow { line: usize, row: String },
    #[error("line {line}: row {row} has more than {MAX_ROW_PLACES} places")]
    RowTooLong { line: usize, row: String },
    #[error(
        "line {line}, row {row}, column {column}: '{symbol}' is not a seat symbol (a category letter, W, C, _ or .)"
    )]
    BadSymbol { line: usize, row: String, column: usize, symbol: char },
    #[error("line {line}, row {row}, column {column}: no category '{letter}' is defined")]
    UnknownCategory { line: usize, row: String, column: usize, letter: char },
    #[error("line {line}, row {row}, column {column}: a companion seat must be beside a wheelchair space")]
    LoneCompanion { line: usize, row: String, column: usize },
    #[error("line {line}: a category letter must be one capital letter other than W and C, not '{letter}'")]
    BadCategoryLetter { line: usize, letter: String },
    #[error("line {line}: category {letter} is defined twice")]
    DuplicateCategory { line: usize, letter: char },
    #[error("line {line}: a category needs a name and a price, like `S = Standard 12.50`")]
    BadCategory { line: usize },
    #[error("line {line}: '{price}' is not a price (like 12.50, at most 1000)")]
    BadPrice { line: usize, price: String },
}

impl LayoutText {
    pub fn parse(text: &str) -> Result<Self, LayoutError> {
        let mut categories: Vec<CategoryText> = Vec::new();
        let mut rows_raw: Vec<(usize, String, &str)> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let colon = content.find(':');
            let equals = content.find('=');
            match (colon, equals) {
                (Some(c), e) if e.is_none_or(|e| c < e) => {
                    let label = content[..c].trim();
                    if !(1..=3).contains(&label.len()) || !label.chars().all(|ch| ch.is_ascii_uppercase()) {
                        return Err(LayoutError::BadRowLabel { line, label: label.to_string() });
                    }
                    if rows_raw.iter().any(|(_, l, _)| l == label) {
                        return Err(LayoutError::DuplicateRow { line, row: label.to_string() });
                    }
                    rows_raw.push((line, label.to_string(), content[c + 1..].trim()));
                }
                (_, Some(e)) => {
                    let cat = parse_category(line, content[..e].trim(), content[e + 1..].trim())?;
                    if categories.iter().any(|c| c.letter == cat.letter) {
                        return Err(LayoutError::DuplicateCategory { line, letter: cat.letter });
                    }
                    categories.push(cat);
                }
                _ => return Err(LayoutError::BadLine { line }),
            }
        }
        if categories.is_empty() {
            return Err(LayoutError::NoCategories);
        }
        if categories.len() > MAX_CATEGORIES {
            return Err(LayoutError::TooManyCategories);
        }
        if rows_raw.is_empty() {
            return Err(LayoutError::NoRows);
        }
        if rows_raw.len() > MAX_ROWS {
            return Err(LayoutError::TooManyRows);
        }
        let letters: HashSet<char> = categories.iter().map(|c| c.letter).collect();
        let cheapest = categories.iter().min_by_key(|c| c.price_cents).map(|c| c.letter).unwrap_or('S');
        let rows = rows_raw
            .into_iter()
            .map(|(line, label, symbols)| parse_row(line, label, symbols, &letters, cheapest))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { categories, rows, lonely_seats_allowed: false })
    }

    /// How many seats of each kind.
    pub fn count(&self, kind: SeatKind) -> usize {
        self.rows.iter().flat_map(|r| &r.places).filter(|p| matches!(p, Place::Seat(k, _) if *k == kind)).count()
    }
}

impl fmt::Display for LayoutText {
    /// The text [`LayoutText::parse`] reads back to the same layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.categories {
            writeln!(f, "{} = {} {}.{:02}", c.letter, c.name, c.price_cents / 100, c.price_cents % 100)?;
        }
        for r in &self.rows {
            writeln!(f, "{}: {}", r.label, r.pattern())?;
        }
        Ok(())
    }
}

fn parse_category(line: usize, letter: &str, rest: &str) -> Result<CategoryText, LayoutError> {
    let mut chars = letter.chars();
    let l = match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_uppercase() && c != 'W' && c != 'C' => c,
        _ => return Err(LayoutError::BadCategoryLetter { line, letter: letter.to_string() }),
    };
    let Some((name, price)) = rest.rsplit_once(char::is_whitespace) else {
        return Err(LayoutError::BadCategory { line });
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
        return Err(LayoutError::BadCategory { line });
    }
    let price_cents = parse_price(price).ok_or_else(|| LayoutError::BadPrice { line, price: price.to_string() })?;
    Ok(CategoryText { letter: l, name: name.to_string(), price_cents })
}

/// `12`, `12.5` or `12.50` → 1250; at most 1000.00.
fn parse_price(s: &str) -> Option<i32> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "00"));
    if whole.is_empty() || whole.len() > 4 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cents = whole.parse::<i32>().ok()? * 100 + format!("{frac:0<2}").parse::<i32>().ok()?;
    (cents <= 100_000).then_some(cents)
}

fn parse_row(
    line: usize,
    label: String,
    symbols: &str,
    letters: &HashSet<char>,
    cheapest: char,
) -> Result<RowText, LayoutError> {
    if symbols.chars().count() > MAX_ROW_PLACES {
        return Err(LayoutError::RowTooLong { line, row: label });
    }
    let mut places = Vec::new();
    for (i, ch) in symbols.chars().enumerate() {
        let column = i + 1;
        let place = match ch {
            '_' => Place::Aisle,
            '.' => Place::Gap,
            'W' => Place::Seat(SeatKind::Wheelchair, cheapest),
            'C' => Place::Seat(SeatKind::Companion, cheapest),
            c if letters.contains(&c) => Place::Seat(SeatKind::Standard, c),
            c if c.is_ascii_uppercase() => {
                return Err(LayoutError::UnknownCategory { line, row: label, column, letter: c })
            }
            c => return Err(LayoutError::BadSymbol { line, row: label, column, symbol: c }),
        };
        places.push(place);
    }
    let is_wheelchair = |p: Option<&Place>| matches!(p, Some(Place::Seat(SeatKind::Wheelchair, _)));
    for (i, p) in places.iter().enumerate() {
        if matches!(p, Place::Seat(SeatKind::Companion, _))
            && !is_wheelchair(i.checked_sub(1).and_then(|j| places.get(j)))
            && !is_wheelchair(places.get(i + 1))
        {
            return Err(LayoutError::LoneCompanion { line, row: label, column: i + 1 });
        }
    }
    let row = RowText { label, places };
    if row.seat_count() == 0 {
        return Err(LayoutError::EmptyRow { line, row: row.label });
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATS: &str = "S = Standard 12.50\nP = Premium 16.50\n";

    fn parse(rows: &str) -> Result<LayoutText, LayoutError> {
        LayoutText::parse(&format!("{CATS}{rows}"))
    }

    #[test]
    fn parses_rows_of_different_lengths_with_aisles_gaps_and_kinds() {
        let l = parse("# front\nA: .SS_SSSS_SS.\nB: WC_SSPPSS_CW  # back\n").unwrap();
        assert_eq!(l.categories.len(), 2);
        assert_eq!(l.categories[1], CategoryText { letter: 'P', name: "Premium".into(), price_cents: 1650 });
        assert_eq!(l.rows.len(), 2);
        assert_eq!(l.rows[0].label, "A");
        assert_eq!(l.rows[0].seat_count(), 8);
        assert_eq!(l.rows[0].places[0], Place::Gap);
        assert_eq!(l.rows[0].places[3], Place::Aisle);
        assert_eq!(l.rows[1].places[0], Place::Seat(SeatKind::Wheelchair, 'S'));
        assert_eq!(l.rows[1].places[1], Place::Seat(SeatKind::Companion, 'S'));
        assert_eq!(l.rows[1].places[5], Place::Seat(SeatKind::Standard, 'P'));
        assert_eq!(l.count(SeatKind::Wheelchair), 2);
        assert_eq!(l.count(SeatKind::Companion), 2);
        assert_eq!(l.rows[1].pattern(), "WC_SSPPSS_CW");
    }

    #[test]
    fn prints_back_to_the_same_layout() {
        let l = parse("A: SS_SS\nB: WC_PP\n").unwrap();
        assert_eq!(LayoutText::parse(&l.to_string()).unwrap(), l);
    }

    #[test]
    fn wheelchair_spaces_are_priced_in_the_cheapest_category() {
        let l = LayoutText::parse("P = Premium 16\nS = Standard 9.5\nA: PWC\n").unwrap();
        assert_eq!(l.rows[0].places[1], Place::Seat(SeatKind::Wheelchair, 'S'));
        assert_eq!(l.categories[1].price_cents, 950);
    }

    #[test]
    fn every_error_names_where_it_is() {
        use LayoutError::*;
        let cases: Vec<(&str, LayoutError)> = vec![
            ("A: SS\nB: SX_S\n", BadSymbol { line: 4, row: "B".into(), column: 2, symbol: 'x' }),
            ("A: SS\nB: S?S\n", BadSymbol { line: 4, row: "B".into(), column: 2, symbol: '?' }),
            ("A: SSQS\n", UnknownCategory { line: 3, row: "A".into(), column: 3, letter: 'Q' }),
            ("A: SS_CW\nB: SS_C_W\n", LoneCompanion { line: 4, row: "B".into(), column: 4 }),
            ("A: __..\n", EmptyRow { line: 3, row: "A".into() }),
            ("A:\n", EmptyRow { line: 3, row: "A".into() }),
            ("A: SS\nA: SS\n", DuplicateRow { line: 4, row: "A".into() }),
            ("a1: SS\n", BadRowLabel { line: 3, label: "a1".into() }),
            (": SS\n", BadRowLabel { line: 3, label: "".into() }),
            ("ABCD: SS\n", BadRowLabel { line: 3, label: "ABCD".into() }),
            ("A SS\n", BadLine { line: 3 }),
            ("W = Wide 10\nA: SS\n", BadCategoryLetter { line: 3, letter: "W".into() }),
            ("SS = Double 10\nA: SS\n", BadCategoryLetter { line: 3, letter: "SS".into() }),
            ("S = Again 10\nA: SS\n", DuplicateCategory { line: 3, letter: 'S' }),
            ("V = 10\nA: SS\n", BadCategory { line: 3 }),
            ("V = Vip\nA: SS\n", BadCategory { line: 3 }),
            ("V = Vip 1.234\nA: SS\n", BadPrice { line: 3, price: "1.234".into() }),
            ("V = Vip -3\nA: SS\n", BadPrice { line: 3, price: "-3".into() }),
            ("V = Vip 1000.01\nA: SS\n", BadPrice { line: 3, price: "1000.01".into() }),
            ("", NoRows),
        ];
        for (rows, want) in cases {
            let got = parse(&rows.replace('X', "x")).unwrap_err();
            assert_eq!(got, want, "for {rows:?}");
        }
        assert_eq!(LayoutText::parse("A: SS\n").unwrap_err(), NoCategories);
        let cats: String = "ABDEFGHIJK".chars().map(|c| format!("{c} = Cat {c} 10\n")).collect();
        assert_eq!(LayoutText::parse(&format!("{cats}A: AB\n")).unwrap_err(), TooManyCategories);
        let many: String = (0..=MAX_ROWS).map(|i| format!("{}: SS\n", row_name(i))).collect();
        assert_eq!(parse(&many).unwrap_err(), TooManyRows);
        let long = format!("A: {}\n", "S".repeat(MAX_ROW_PLACES + 1));
        assert_eq!(parse(&long).unwrap_err(), RowTooLong { line: 3, row: "A".into() });
    }

    #[test]
    fn error_messages_name_row_and_column() {
        let e = parse("A: SS\nB: SS_S!\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 4, row B, column 5: '!' is not a seat symbol (a category letter, W, C, _ or .)"
        );
    }

    fn row_name(i: usize) -> String {
        let a = (b'A' + (i / 26) as u8) as char;
        let b = (b'A' + (i % 26) as u8) as char;
        format!("{a}{b}")
    }
}
