use super::DomainError;
use std::collections::HashSet;
use std::fmt;

/// The most seats one hold may take.
pub const MAX_SEATS_PER_HOLD: usize = 10;

/// A seat as printed on a ticket: row letters then seat number, like `C7` or `AA12`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatLabel {
    row: String,
    number: u16,
}

impl SeatLabel {
    pub fn new(row: &str, number: u16) -> Result<Self, DomainError> {
        Self::parse(&format!("{row}{number}"))
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_ascii_uppercase();
        let split = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
        let (row, num) = s.split_at(split);
        let row_ok = (1..=3).contains(&row.len()) && row.chars().all(|c| c.is_ascii_uppercase());
        let number = num.parse::<u16>().ok().filter(|n| (1..=999).contains(n) && !num.starts_with('0'));
        match (row_ok, number) {
            (true, Some(number)) => Ok(Self { row: row.to_string(), number }),
            _ => Err(DomainError::BadSeat(raw.chars().take(16).collect())),
        }
    }

    pub fn row(&self) -> &str {
        &self.row
    }

    pub fn number(&self) -> u16 {
        self.number
    }
}

impl fmt::Display for SeatLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.row, self.number)
    }
}

/// The seats one customer asks to hold: 1 to 10 distinct, well-formed labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatSelection(Vec<SeatLabel>);

impl SeatSelection {
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, DomainError> {
        if raw.is_empty() {
            return Err(DomainError::NoSeats);
        }
        if raw.len() > MAX_SEATS_PER_HOLD {
            return Err(DomainError::TooManySeats { max: MAX_SEATS_PER_HOLD, got: raw.len() });
        }
        let mut seen = HashSet::new();
        let mut seats = Vec::with_capacity(raw.len());
        for r in raw {
            let seat = SeatLabel::parse(r.as_ref())?;
            if !seen.insert(seat.clone()) {
                return Err(DomainError::DuplicateSeat(seat.to_string()));
            }
            seats.push(seat);
        }
        Ok(Self(seats))
    }

    pub fn seats(&self) -> &[SeatLabel] {
        &self.0
    }
}

/// "Find me N seats": how many (1 to [`MAX_SEATS_PER_HOLD`]) and, if the customer chose
/// one, the category's code (e.g. `premium`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestRequest {
    count: usize,
    category: Option<String>,
}

impl BestRequest {
    pub fn parse(count: i64, category: Option<&str>) -> Result<Self, DomainError> {
        if !(1..=MAX_SEATS_PER_HOLD as i64).contains(&count) {
            return Err(DomainError::BadBestCount { max: MAX_SEATS_PER_HOLD, got: count });
        }
        let category = match category.map(str::trim) {
            None | Some("") => None,
            Some(c) if c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                Some(c.to_ascii_lowercase())
            }
            Some(c) => return Err(DomainError::BadCategory(c.chars().take(64).collect())),
        };
        Ok(Self { count: count as usize, category })
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn category(&self) -> Option<&str> {
        self.category.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_asks_for_one_to_ten_seats_of_a_category_or_any() {
        assert_eq!(BestRequest::parse(0, None), Err(DomainError::BadBestCount { max: 10, got: 0 }));
        assert_eq!(BestRequest::parse(11, None), Err(DomainError::BadBestCount { max: 10, got: 11 }));
        assert_eq!(BestRequest::parse(-1, None), Err(DomainError::BadBestCount { max: 10, got: -1 }));
        let b = BestRequest::parse(10, Some(" Premium ")).unwrap();
        assert_eq!((b.count(), b.category()), (10, Some("premium")));
        assert_eq!(BestRequest::parse(1, Some("")).unwrap().category(), None);
        assert_eq!(BestRequest::parse(2, Some("a b")), Err(DomainError::BadCategory("a b".into())));
    }

    #[test]
    fn parses_labels() {
        let s = SeatLabel::parse(" c7 ").unwrap();
        assert_eq!(s.to_string(), "C7");
        assert_eq!(s.row(), "C");
        assert_eq!(s.number(), 7);
        assert_eq!(SeatLabel::parse("AA12").unwrap().to_string(), "AA12");
    }

    #[test]
    fn refuses_bad_labels() {
        for bad in ["", "7", "C", "C0", "C07", "C-1", "ABCD1", "C1000", "<b>C7</b>", "É7"] {
            assert!(SeatLabel::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn selection_rules() {
        assert_eq!(SeatSelection::parse::<&str>(&[]), Err(DomainError::NoSeats));
        let eleven: Vec<String> = (1..=11).map(|n| format!("A{n}")).collect();
        assert!(matches!(SeatSelection::parse(&eleven), Err(DomainError::TooManySeats { got: 11, .. })));
        assert_eq!(SeatSelection::parse(&["C7", "c7"]), Err(DomainError::DuplicateSeat("C7".into())));
        assert_eq!(SeatSelection::parse(&["C7", "C8"]).unwrap().seats().len(), 2);
    }
}

/// Any text gives a label or `BadSeat`, any list a selection or its typed error; what is
/// accepted is canonical. Cases per run: `CASES` for each property.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    /// Text shaped like a label, often almost one (lower case, spaces, leading zeros,
    /// four letters, four digits).
    fn label_like() -> impl Strategy<Value = String> {
        "[ \t]{0,1}[A-Za-z]{0,4}[0-9]{0,4}[ \t\n]{0,1}"
    }

    fn any_label_text() -> impl Strategy<Value = String> {
        prop_oneof![label_like(), text(), "[A-C][1-4]"]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_text_is_a_canonical_label_or_bad_seat(raw in any_label_text()) {
            match SeatLabel::parse(&raw) {
                Ok(label) => {
                    prop_assert_eq!(label.to_string(), raw.trim().to_ascii_uppercase());
                    prop_assert!((1..=3).contains(&label.row().len()));
                    prop_assert!(label.row().bytes().all(|b| b.is_ascii_uppercase()));
                    prop_assert!((1..=999).contains(&label.number()));
                    prop_assert_eq!(SeatLabel::parse(&label.to_string()), Ok(label));
                }
                Err(DomainError::BadSeat(echo)) => prop_assert!(echo.chars().count() <= 16),
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }

        #[test]
        fn a_valid_label_prints_and_parses_back(row in "[A-Z]{1,3}", number in 1u16..=999, lower in any::<bool>()) {
            let label = SeatLabel::new(&row, number).unwrap();
            prop_assert_eq!(label.to_string(), format!("{row}{number}"));
            let typed = if lower { label.to_string().to_lowercase() } else { format!(" {label}\t") };
            prop_assert_eq!(SeatLabel::parse(&typed), Ok(label));
        }

        #[test]
        fn a_selection_is_one_to_ten_distinct_seats_or_a_typed_error(
            raw in prop_oneof![
                8 => prop::collection::vec(any_label_text(), 0..14),
                1 => prop::collection::vec("[A-Z][0-9]{1,3}", 0..250),
            ]
        ) {
            let parsed: Vec<_> = raw.iter().map(|r| SeatLabel::parse(r)).collect();
            match SeatSelection::parse(&raw) {
                Ok(sel) => {
                    let seats = sel.seats();
                    prop_assert!((1..=MAX_SEATS_PER_HOLD).contains(&seats.len()));
                    prop_assert_eq!(seats.len(), raw.len());
                    prop_assert_eq!(seats.iter().collect::<HashSet<_>>().len(), seats.len(), "no seat twice");
                    for (seat, p) in seats.iter().zip(&parsed) {
                        prop_assert_eq!(Ok(seat), p.as_ref());
                    }
                }
                Err(DomainError::NoSeats) => prop_assert!(raw.is_empty()),
                Err(DomainError::TooManySeats { max, got }) => {
                    prop_assert_eq!((max, got), (MAX_SEATS_PER_HOLD, raw.len()));
                    prop_assert!(got > max);
                }
                Err(DomainError::DuplicateSeat(seat)) => {
                    let twice = parsed.iter().filter(|p| p.as_ref().is_ok_and(|s| s.to_string() == seat)).count();
                    prop_assert!(twice >= 2, "{} is not listed twice", seat);
                }
                Err(DomainError::BadSeat(_)) => prop_assert!(parsed.iter().any(Result::is_err)),
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }
    }
}
