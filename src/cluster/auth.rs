//! Node-to-node requests carry an HMAC-SHA256 of their body, path, sender, timestamp and
//! a random nonce, keyed with CLUSTER_SECRET. Without the secret nobody can make a valid
//! one; a captured request is refused if it comes again (the receiver remembers the nonces
//! of the window, [`ReplayGuard`]) and stops working after the window anyway.
//!
//! The answer to a signed request is signed too ([`sign_answer`]): an HMAC over the
//! request's nonce, the status and the answer's body, in the same header. A node that
//! calls another refuses an answer without a valid one, so nobody between them (or in
//! their place) can feed it a forged answer, nor one recorded from another request.
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{HashSet, VecDeque};

pub const HEADER_NODE: &str = "X-Marquee-Node";
pub const HEADER_TIME: &str = "X-Marquee-Time";
pub const HEADER_SIGNATURE: &str = "X-Marquee-Signature";
pub const HEADER_NONCE: &str = "X-Marquee-Nonce";
/// How far a request's timestamp may be from our clock.
pub const MAX_SKEW_SECS: i64 = 30;

fn mac(secret: &str, node: u64, time: i64, nonce: &str, path: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(format!("{node}\n{time}\n{nonce}\n{path}\n").as_bytes());
    m.update(body);
    m
}

pub fn sign(secret: &str, node: u64, time: i64, nonce: &str, path: &str, body: &[u8]) -> String {
    hex(&mac(secret, node, time, nonce, path, body).finalize().into_bytes())
}

fn answer_mac(secret: &str, nonce: &str, status: u16, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    // A request's signed text starts with a node id, never with this word, so a request's
    // signature is never an answer's.
    m.update(format!("answer\n{nonce}\n{status}\n").as_bytes());
    m.update(body);
    m
}

/// The signature of an answer with `status` and `body` to the request that carried `nonce`.
pub fn sign_answer(secret: &str, nonce: &str, status: u16, body: &[u8]) -> String {
    hex(&answer_mac(secret, nonce, status, body).finalize().into_bytes())
}

/// Checks an answer's signature against the nonce of the request it answers.
pub fn verify_answer(secret: &str, nonce: &str, status: u16, body: &[u8], signature: &str) -> Result<(), AuthError> {
    if secret.is_empty() {
        return Err(AuthError::BadSignature);
    }
    let bytes = unhex(signature).ok_or(AuthError::Missing)?;
    answer_mac(secret, nonce, status, body).verify_slice(&bytes).map_err(|_| AuthError::BadSignature)
}

/// The signature of a streamed answer (a backup): the body is too long to be signed in a
/// header before it is sent, so its last line carries an HMAC over the request's nonce and
/// every byte before that line, and then the last line's own content. It starts as a 200
/// answer's signature would, with a word no JSON answer starts with, so neither passes for
/// the other.
#[derive(Clone)]
pub struct StreamMac(Hmac<Sha256>);

impl StreamMac {
    pub fn new(secret: &str, nonce: &str) -> Self {
        let mut m = answer_mac(secret, nonce, 200, b"");
        m.update(b"stream\n");
        Self(m)
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn sign(self) -> String {
        hex(&self.0.finalize().into_bytes())
    }

    /// Checks the signature the stream's last line carries.
    pub fn verify(self, signature: &str) -> Result<(), AuthError> {
        let bytes = unhex(signature).ok_or(AuthError::Missing)?;
        self.0.verify_slice(&bytes).map_err(|_| AuthError::BadSignature)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// A fresh nonce for one request: 128 random bits in hex.
pub fn nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The nonces seen within the window, so a request is taken at most once. Memory is
/// bounded: at most `cap` nonces (only requests with a valid signature are remembered, so
/// filling it takes the secret); past the cap the oldest is forgotten.
#[derive(Debug)]
pub struct ReplayGuard {
    seen: HashSet<(u64, String)>,
    order: VecDeque<(i64, u64, String)>,
    cap: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::with_capacity(1_000_000)
    }
}

impl ReplayGuard {
    pub fn with_capacity(cap: usize) -> Self {
        Self { seen: HashSet::new(), order: VecDeque::new(), cap: cap.max(1) }
    }

    /// Takes a verified request's nonce (sent at `time`, seen at `now`): false if it came
    /// before.
    pub fn admit(&mut self, node: u64, nonce: &str, time: i64, now: i64) -> bool {
        // A request older than the window is refused as stale before it gets here, so a
        // nonce need not be kept past its time plus the window.
        while let Some((t, _, _)) = self.order.front() {
            if *t >= now - MAX_SKEW_SECS && self.order.len() < self.cap {
                break;
            }
            if let Some((_, n, k)) = self.order.pop_front() {
                self.seen.remove(&(n, k));
            }
        }
        if !self.seen.insert((node, nonce.to_string())) {
            return false;
        }
        self.order.push_back((time, node, nonce.to_string()));
        true
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed authentication headers")]
    Missing,
    #[error("the request is too old or from the future")]
    Stale,
    #[error("bad signature")]
    BadSignature,
    #[error("a request seen before (replayed)")]
    Replayed,
}

#[allow(clippy::too_many_arguments)]
pub fn verify(
    secret: &str,
    node: u64,
    time: i64,
    nonce: &str,
    now: i64,
    path: &str,
    body: &[u8],
    signature: &str,
) -> Result<(), AuthError> {
    if secret.is_empty() {
        return Err(AuthError::BadSignature);
    }
    if now.abs_diff(time) > MAX_SKEW_SECS as u64 {
        return Err(AuthError::Stale);
    }
    let bytes = unhex(signature).ok_or(AuthError::Missing)?;
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(AuthError::Missing);
    }
    mac(secret, node, time, nonce, path, body).verify_slice(&bytes).map_err(|_| AuthError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_unchanged() {
        let n = "0123456789abcdef0123456789abcdef";
        let s = sign("secret-secret-123", 2, 1000, n, "/internal/heartbeat", b"{}");
        let v = |secret, node, now, nonce, path, body: &[u8], sig: &str| {
            verify(secret, node, 1000, nonce, now, path, body, sig)
        };
        assert!(v("secret-secret-123", 2, 1005, n, "/internal/heartbeat", b"{}", &s).is_ok());
        assert_eq!(v("other-secret-1234", 2, 1005, n, "/internal/heartbeat", b"{}", &s), Err(AuthError::BadSignature));
        assert_eq!(v("secret-secret-123", 3, 1005, n, "/internal/heartbeat", b"{}", &s), Err(AuthError::BadSignature));
        assert_eq!(v("secret-secret-123", 2, 1005, n, "/internal/append", b"{}", &s), Err(AuthError::BadSignature));
        assert_eq!(v("secret-secret-123", 2, 1005, n, "/internal/heartbeat", b"{ }", &s), Err(AuthError::BadSignature));
        assert_eq!(
            v("secret-secret-123", 2, 1005, "fedcba9876543210fedcba9876543210", "/internal/heartbeat", b"{}", &s),
            Err(AuthError::BadSignature),
            "the nonce is signed"
        );
        assert_eq!(v("secret-secret-123", 2, 1100, n, "/internal/heartbeat", b"{}", &s), Err(AuthError::Stale));
        assert_eq!(v("secret-secret-123", 2, 1000, n, "/internal/heartbeat", b"{}", "zz"), Err(AuthError::Missing));
        assert_eq!(v("secret-secret-123", 2, 1000, "", "/internal/heartbeat", b"{}", &s), Err(AuthError::Missing));
        assert_eq!(v("", 2, 1000, n, "/internal/heartbeat", b"{}", &s), Err(AuthError::BadSignature));
    }

    #[test]
    fn a_timestamp_at_the_ends_of_i64_is_stale_not_a_panic() {
        // `now - time` overflowed for a time near i64::MIN: a panic in debug builds, from
        // anyone who can reach /internal/ (the time is checked before the signature).
        let now = 1_800_000_000;
        for time in [i64::MIN, i64::MIN + now, i64::MAX] {
            assert_eq!(verify("secret-secret-123", 0, time, "n", now, "/", b"", ""), Err(AuthError::Stale), "{time}");
        }
        assert_eq!(verify("secret-secret-123", 0, i64::MIN, "n", i64::MAX, "/", b"", ""), Err(AuthError::Stale));
    }

    #[test]
    fn an_answer_verifies_only_unchanged_and_only_for_its_request() {
        let (secret, n) = ("secret-secret-123", "0123456789abcdef0123456789abcdef");
        let body = br#"{"from":3,"epoch":2,"lamport":9,"body":{}}"#;
        let s = sign_answer(secret, n, 200, body);
        assert_eq!(verify_answer(secret, n, 200, body, &s), Ok(()));
        assert_eq!(verify_answer("other-secret-1234", n, 200, body, &s), Err(AuthError::BadSignature));
        assert_eq!(
            verify_answer(secret, "fedcba9876543210fedcba9876543210", 200, body, &s),
            Err(AuthError::BadSignature),
            "an answer to another request"
        );
        assert_eq!(verify_answer(secret, n, 503, body, &s), Err(AuthError::BadSignature), "the status is signed");
        assert_eq!(
            verify_answer(secret, n, 200, br#"{"from":3,"epoch":7,"lamport":9,"body":{}}"#, &s),
            Err(AuthError::BadSignature),
            "the body is signed"
        );
        assert_eq!(verify_answer(secret, n, 200, body, ""), Err(AuthError::BadSignature), "no signature");
        assert_eq!(verify_answer(secret, n, 200, body, "xyz"), Err(AuthError::Missing), "not hex");
        assert_eq!(verify_answer("", n, 200, body, &s), Err(AuthError::BadSignature), "no secret, no trust");
        // A request's signature over the same bytes is not an answer's.
        let request = sign(secret, 3, 1000, n, "/internal/status", body);
        assert_eq!(verify_answer(secret, n, 200, body, &request), Err(AuthError::BadSignature));
    }

    #[test]
    fn a_nonce_is_taken_once_within_the_window_and_memory_stays_bounded() {
        let mut g = ReplayGuard::with_capacity(3);
        assert!(g.admit(1, "a", 100, 100));
        assert!(!g.admit(1, "a", 100, 101), "replayed");
        assert!(g.admit(2, "a", 100, 101), "another node's nonce is its own");
        // Past the window the old ones are forgotten (a replay of them is stale anyway).
        assert!(g.admit(1, "b", 140, 140));
        assert_eq!(g.len(), 1);
        for (i, k) in ["c", "d", "e", "f"].iter().enumerate() {
            assert!(g.admit(1, k, 141, 141 + i as i64));
        }
        assert!(g.len() <= 3, "bounded: {}", g.len());
        assert!(!g.admit(1, "f", 141, 145));
        assert_ne!(nonce(), nonce());
    }
}

/// Anyone can send `/internal/` requests, so `verify` takes any headers: it answers Ok
/// only for the signature over exactly this request made with the secret, within the
/// window, and an `AuthError` for everything else. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::{bytes, text};
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    /// Timestamps anywhere, the ends of i64 included.
    fn time() -> impl Strategy<Value = i64> {
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), 1_700_000_000i64..1_900_000_000, any::<i64>(),]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_headers_verify_only_with_the_signature(
            node in any::<u64>(),
            time in time(),
            now in time(),
            nonce in prop_oneof![text(), "[0-9a-f]{32}"],
            path in prop_oneof![text(), Just("/internal/message".to_string())],
            body in bytes(),
            signature in prop_oneof![text(), "[0-9a-fA-F+]{0,66}"],
        ) {
            let secret = "secret-secret-123";
            if verify(secret, node, time, &nonce, now, &path, &body, &signature).is_ok() {
                let real = sign(secret, node, time, &nonce, &path, &body);
                prop_assert_eq!(signature.to_ascii_lowercase(), real);
            }
        }

        #[test]
        fn a_signed_request_verifies_within_the_window_only(
            node in any::<u64>(),
            time in time(),
            skew in -40i64..40,
            nonce in "[0-9a-f]{1,64}",
            body in bytes(),
        ) {
            let secret = "secret-secret-123";
            let now = time.saturating_add(skew);
            let signature = sign(secret, node, time, &nonce, "/internal/writes", &body);
            let got = verify(secret, node, time, &nonce, now, "/internal/writes", &body, &signature);
            let want = if now.abs_diff(time) <= MAX_SKEW_SECS as u64 { Ok(()) } else { Err(AuthError::Stale) };
            prop_assert_eq!(got, want);
        }
    }
}
