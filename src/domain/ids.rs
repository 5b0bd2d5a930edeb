use super::{random_token, DomainError};
use std::fmt;

/// A show's id in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ShowId(pub i64);

impl fmt::Display for ShowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A hold's public id, `<show id>-<20 random characters>`: it names the show that owns it
/// (so any node can route it) and is unguessable (it is the customer's proof of the hold).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HoldId {
    show: ShowId,
    text: String,
}

const HOLD_SECRET_LEN: usize = 20;

impl HoldId {
    pub fn generate(show: ShowId) -> Self {
        Self { show, text: format!("{}-{}", show.0, random_token(HOLD_SECRET_LEN)) }
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::BadHoldId(raw.chars().take(64).collect());
        let (show, secret) = raw.split_once('-').ok_or_else(bad)?;
        // Plain decimal, as `generate` writes it: no sign, no leading zero.
        if show.starts_with('0') || !show.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let show: i64 = show.parse().map_err(|_| bad())?;
        if show <= 0 || secret.len() != HOLD_SECRET_LEN || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        Ok(Self { show: ShowId(show), text: raw.to_string() })
    }

    pub fn show(&self) -> ShowId {
        self.show
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The client's `Idempotency-Key`: a retry carrying the same key gets the first answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_string()))
        } else {
            Err(DomainError::BadIdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_ids_round_trip_and_name_their_show() {
        let id = HoldId::generate(ShowId(42));
        let back = HoldId::parse(id.as_str()).unwrap();
        assert_eq!(back.show(), ShowId(42));
        assert_eq!(back, id);
    }

    #[test]
    fn refuses_malformed_hold_ids() {
        for bad in
            ["", "42", "42-", "x-ABCDEFGHJKMNPQRSTWXY", "-1-ABCDEFGHJKMNPQRSTWXY", "42-short", "42-ABCDEFGHJKMNPQRST<>"]
        {
            assert!(HoldId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hold_id_is_written_one_way_only() {
        // "+1-..." and "01-..." parsed as hold ids of show 1 that no hold can have.
        for bad in
            ["+1-AAAAaAA0AaAA00AAAa0a", "01-AAAAaAA0AaAA00AAAa0a", "0-AAAAaAA0AaAA00AAAa0a", "١-AAAAaAA0AaAA00AAAa0a"]
        {
            assert!(HoldId::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(HoldId::parse("1-AAAAaAA0AaAA00AAAa0a").unwrap().show(), ShowId(1));
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("abc-123").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }
}
