use super::DomainError;
use rand::{rngs::OsRng, RngCore};
use std::fmt;

/// Letters and digits that cannot be mistaken for one another (no 0/O, 1/I/L, U/V).
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTWXYZ";
const CODE_LEN: usize = 8;

/// A random string over the unambiguous alphabet, from the OS's random source. The bytes
/// are read in one batch (one system call per token, not one per character) and mapped
/// without bias: bytes at or above the largest multiple of the alphabet's size are dropped.
pub fn random_token(len: usize) -> String {
    let n = ALPHABET.len();
    let unbiased = 256 - 256 % n;
    let mut token = String::with_capacity(len);
    let mut bytes = [0u8; 64];
    while token.len() < len {
        OsRng.fill_bytes(&mut bytes);
        let fresh = bytes.iter().map(|&b| b as usize).filter(|&b| b < unbiased);
        token.extend(fresh.take(len - token.len()).map(|b| ALPHABET[b % n] as char));
    }
    token
}

/// A booking's public code: 8 characters, about 39 bits, unguessable, easy to read aloud.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BookingCode(String);

impl BookingCode {
    pub fn generate() -> Self {
        Self(random_token(CODE_LEN))
    }

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_ascii_uppercase();
        if s.len() == CODE_LEN && s.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(Self(s))
        } else {
            Err(DomainError::BadBookingCode(raw.chars().take(16).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BookingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_length_asked_and_use_the_alphabet() {
        for len in [0, 1, 8, 20, 63, 64, 65, 200] {
            let t = random_token(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| ALPHABET.contains(&b)), "{t}");
        }
        let many: String = (0..200).map(|_| random_token(20)).collect();
        assert!(ALPHABET.iter().all(|c| many.as_bytes().contains(c)), "every character turns up");
    }

    #[test]
    fn generated_codes_parse_back() {
        for _ in 0..100 {
            let c = BookingCode::generate();
            assert_eq!(BookingCode::parse(c.as_str()).unwrap(), c);
        }
    }

    #[test]
    fn refuses_ambiguous_or_wrong_length() {
        assert!(BookingCode::parse("ABCD0FGH").is_err());
        assert!(BookingCode::parse("ABCDEFG").is_err());
        assert!(BookingCode::parse("ABCDEFGHJ").is_err());
        assert_eq!(BookingCode::parse(" abcdefgh ").unwrap().as_str(), "ABCDEFGH");
    }
}

/// Any text gives a code or `BadBookingCode`; every code over the alphabet parses, typed
/// in any case with spaces around. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    fn code_chars() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(ALPHABET), CODE_LEN)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_text_is_a_code_or_bad_booking_code(raw in prop_oneof![text(), "[ ]?[a-zA-Z0-9]{7,9}[ ]?"]) {
            match BookingCode::parse(&raw) {
                Ok(code) => {
                    prop_assert_eq!(code.as_str(), raw.trim().to_ascii_uppercase());
                    prop_assert_eq!(code.as_str().len(), CODE_LEN);
                    prop_assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
                }
                Err(DomainError::BadBookingCode(echo)) => prop_assert!(echo.chars().count() <= 16),
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }

        #[test]
        fn a_code_over_the_alphabet_parses_in_any_case(chars in code_chars(), lower in any::<bool>()) {
            let code = String::from_utf8(chars).unwrap();
            let typed = if lower { format!(" {} ", code.to_lowercase()) } else { code.clone() };
            prop_assert_eq!(BookingCode::parse(&typed).map(|c| c.to_string()), Ok(code));
        }

        #[test]
        fn one_ambiguous_character_spoils_a_code(chars in code_chars(), at in 0..CODE_LEN, bad in prop::sample::select(&b"01ILOUV"[..])) {
            let mut chars = chars;
            chars[at] = bad;
            let typed = String::from_utf8(chars).unwrap();
            prop_assert!(matches!(BookingCode::parse(&typed), Err(DomainError::BadBookingCode(_))));
        }
    }
}
