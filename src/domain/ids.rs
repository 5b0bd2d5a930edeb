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

/// Any text gives a hold id or `BadHoldId`, an idempotency key or `BadIdempotencyKey`; an
/// accepted hold id is canonical and names its show. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    /// Text shaped like a hold id, often almost one: a sign, leading zeros, a show id too
    /// large for i64, a secret one character short or long or with a stray character.
    fn hold_id_like() -> impl Strategy<Value = String> {
        "[+-]?0?[0-9]{1,20}-[A-Za-z0-9]{19,21}[-<]?"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_text_is_a_canonical_hold_id_or_bad_hold_id(raw in prop_oneof![text(), hold_id_like()]) {
            match HoldId::parse(&raw) {
                Ok(id) => {
                    prop_assert!(id.show().0 > 0);
                    let (show, secret) = raw.split_once('-').unwrap();
                    prop_assert_eq!(show, id.show().to_string(), "the show id is written as the show's");
                    prop_assert_eq!(secret.len(), HOLD_SECRET_LEN);
                    prop_assert_eq!(id.as_str(), raw.as_str());
                    prop_assert_eq!(HoldId::parse(id.as_str()), Ok(id));
                }
                Err(DomainError::BadHoldId(echo)) => prop_assert!(echo.chars().count() <= 64),
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }

        #[test]
        fn a_generated_hold_id_parses_and_names_its_show(show in 1..=i64::MAX) {
            let id = HoldId::generate(ShowId(show));
            prop_assert_eq!(HoldId::parse(id.as_str()).map(|p| p.show()), Ok(ShowId(show)));
        }

        #[test]
        fn any_text_is_a_visible_ascii_key_or_bad_key(raw in prop_oneof![text(), "[!-~ ]{0,130}"]) {
            match IdempotencyKey::parse(&raw) {
                Ok(key) => {
                    prop_assert_eq!(key.as_str(), raw.as_str());
                    prop_assert!((1..=128).contains(&key.as_str().len()));
                    prop_assert!(key.as_str().bytes().all(|b| b.is_ascii_graphic()));
                }
                Err(e) => prop_assert_eq!(e, DomainError::BadIdempotencyKey),
            }
        }
    }
}
