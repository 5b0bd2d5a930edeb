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

#[cfg(test)]
mod tests {
    use super::*;

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
