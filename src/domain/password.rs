//! The admin password, kept only as its Argon2id hash (a PHC string with its own salt).
//! The clear text is hashed once at start and never stored, logged or compared directly.
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::fmt;

/// Shortest admin password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Clone)]
pub struct AdminPassword {
    phc: String,
}

impl AdminPassword {
    /// Hashes `plain` with Argon2id (the crate's defaults: 19 MiB, 2 passes) and a random salt.
    pub fn hash(plain: &str) -> Result<Self, String> {
        if plain.chars().count() < MIN_PASSWORD_LEN {
            return Err(format!("must be at least {MIN_PASSWORD_LEN} characters"));
        }
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::default().hash_password(plain.as_bytes(), &salt).map_err(|e| e.to_string())?.to_string();
        Ok(Self { phc })
    }

    /// A stored hash (a PHC string, as [`AdminPassword::phc`] gave it), checked.
    pub fn from_phc(phc: &str) -> Result<Self, String> {
        PasswordHash::new(phc).map_err(|e| e.to_string())?;
        Ok(Self { phc: phc.to_string() })
    }

    /// The hash as a PHC string (algorithm, parameters, salt and hash), to store.
    pub fn phc(&self) -> &str {
        &self.phc
    }

    /// Whether `attempt` is the password. Argon2 recomputes the hash and compares it in
    /// constant time; this is slow on purpose (tens of milliseconds): call it off the
    /// async threads.
    pub fn verify(&self, attempt: &str) -> bool {
        match PasswordHash::new(&self.phc) {
            Ok(hash) => Argon2::default().verify_password(attempt.as_bytes(), &hash).is_ok(),
            Err(_) => false,
        }
    }
}

impl fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminPassword(<argon2id hash>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_verifies_and_nothing_shows_it() {
        let p = AdminPassword::hash("correct horse").unwrap();
        assert!(p.verify("correct horse"));
        assert!(!p.verify("correct horse "));
        assert!(!p.verify(""));
        assert!(!p.phc.contains("correct"));
        assert!(p.phc.starts_with("$argon2id$"));
        assert!(!format!("{p:?}").contains("argon2id$"));
        assert!(AdminPassword::hash("short").is_err());
    }
}

/// The admin login form hands any text to `verify`: it answers true for the password
/// only, and never panics. Argon2 is slow on purpose, so only `CASES` per run.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    pub const CASES: u32 = 24;

    fn password() -> &'static AdminPassword {
        static P: OnceLock<AdminPassword> = OnceLock::new();
        P.get_or_init(|| AdminPassword::hash("correct horse").unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_attempt_but_the_password_is_refused(attempt in text()) {
            prop_assert_eq!(password().verify(&attempt), attempt == "correct horse");
        }

        #[test]
        fn any_text_hashes_or_is_too_short(plain in prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter)) {
            match AdminPassword::hash(&plain) {
                Ok(p) => {
                    prop_assert!(plain.chars().count() >= MIN_PASSWORD_LEN);
                    prop_assert!(p.verify(&plain));
                }
                Err(_) => prop_assert!(plain.chars().count() < MIN_PASSWORD_LEN),
            }
        }
    }
}
