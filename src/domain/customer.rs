use super::DomainError;
use std::fmt;

/// The name a booking is made under: trimmed, 1 to 100 characters, no control characters.
/// It may contain anything else (pages escape it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerName(String);

impl CustomerName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        let len = s.chars().count();
        if (1..=100).contains(&len) && !s.chars().any(char::is_control) {
            Ok(Self(s.to_string()))
        } else {
            Err(DomainError::BadName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, stored lower-cased, and checked for the shape `local@domain.tld` once
/// lower-cased (so that the stored address parses again to itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim().to_lowercase();
        let bad = || DomainError::BadEmail(s.chars().take(64).collect());
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.contains(['<', '>', '"', ',', ';', '(', ')', '[', ']', '\\']);
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|part| {
                !part.is_empty()
                    && part.len() <= 63
                    && part.chars().all(|c| c.is_alphanumeric() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if local_ok && domain_ok {
            Ok(Self(s))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        assert!(Email::parse("a.b+c@mail.example.org").is_ok());
        for bad in ["", "ann", "ann@", "@x.com", "ann@x", "a b@x.com", "ann@x..com", "<a>@x.com", "ann@-x.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_accepted_email_parses_again_to_itself() {
        // Lower-casing came after the checks: "a@İ.a" was accepted as "a@i\u{307}.a", whose
        // combining dot a domain may not have, so the master refused the address a follower
        // passed on; and "Ⱥ" (2 bytes) lower-cases to 3, past the 64 bytes of a local part.
        assert!(Email::parse("a@İ.a").is_err());
        assert!(Email::parse(&format!("{}@x.com", "Ⱥ".repeat(30))).is_err());
        let e = Email::parse("ÉLODIE@Exemple.FR").unwrap();
        assert_eq!(e.as_str(), "élodie@exemple.fr");
        assert_eq!(Email::parse(e.as_str()), Ok(e));
    }

    #[test]
    fn names() {
        assert_eq!(CustomerName::parse("  Ann <b>Lee</b> ").unwrap().as_str(), "Ann <b>Lee</b>");
        assert!(CustomerName::parse("   ").is_err());
        assert!(CustomerName::parse(&"x".repeat(101)).is_err());
        assert!(CustomerName::parse("a\u{0}b").is_err());
    }
}

/// Any text gives a name or `BadName`, an email or `BadEmail`; what is accepted is
/// trimmed, within its limits, and parses again to itself (a follower passes the parsed
/// value on to the master, which parses it again). Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    /// Characters whose lower case is longer (`Ⱥ`, 2 bytes, becomes `ⱥ`, 3), shorter (the
    /// Kelvin sign becomes `k`) or not a letter at all (`İ` becomes `i` and a combining
    /// dot), with the ones addresses are made of, and now and then anything.
    fn email_char(usual: &'static [char]) -> impl Strategy<Value = char> {
        prop_oneof![
            6 => prop::sample::select(usual),
            2 => prop::sample::select(&['İ', 'Ⱥ', 'K', 'ẞ', 'Σ', 'é'][..]),
            1 => any::<char>(),
        ]
    }

    fn email_like() -> impl Strategy<Value = String> {
        let local = prop::collection::vec(email_char(&['a', 'Z', '0', '.', '+', '_']), 1..50);
        let domain = prop::collection::vec(email_char(&['a', 'Z', '0', '-']), 1..12);
        (local, domain, "[a-zA-Z]{1,4}", " ?").prop_map(|(local, domain, tld, pad)| {
            format!("{pad}{}@{}.{tld}", String::from_iter(local), String::from_iter(domain))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_text_is_a_trimmed_name_or_bad_name(raw in prop_oneof![text(), "[ ]{0,2}[a-zA-Z<> ]{0,110}"]) {
            match CustomerName::parse(&raw) {
                Ok(name) => {
                    prop_assert_eq!(name.as_str(), raw.trim());
                    prop_assert!((1..=100).contains(&name.as_str().chars().count()));
                    prop_assert!(!name.as_str().chars().any(char::is_control));
                    prop_assert_eq!(CustomerName::parse(name.as_str()), Ok(name));
                }
                Err(e) => prop_assert_eq!(e, DomainError::BadName),
            }
        }

        #[test]
        fn any_text_is_a_lower_case_email_or_bad_email(raw in prop_oneof![text(), email_like()]) {
            match Email::parse(&raw) {
                Ok(email) => {
                    let s = email.as_str();
                    prop_assert_eq!(s, raw.trim().to_lowercase());
                    prop_assert!(s.len() <= 254);
                    prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
                    let (local, domain) = s.rsplit_once('@').unwrap();
                    prop_assert!(!local.is_empty() && local.len() <= 64);
                    prop_assert!(domain.contains('.'));
                    prop_assert_eq!(Email::parse(s), Ok(email.clone()), "parsing again changes {:?}", s);
                }
                Err(DomainError::BadEmail(echo)) => prop_assert!(echo.chars().count() <= 64),
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }
    }
}
