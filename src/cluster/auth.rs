//! Node-to-node requests carry an HMAC-SHA256 of their body, the sender and a timestamp,
//! keyed with CLUSTER_SECRET. Without the secret nobody can make a valid one; a captured
//! request stops working after a short window, and epochs fence older ones anyway.
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER_NODE: &str = "X-Marquee-Node";
pub const HEADER_TIME: &str = "X-Marquee-Time";
pub const HEADER_SIGNATURE: &str = "X-Marquee-Signature";
/// How far a request's timestamp may be from our clock.
pub const MAX_SKEW_SECS: i64 = 30;

fn mac(secret: &str, node: u64, time: i64, path: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(format!("{node}\n{time}\n{path}\n").as_bytes());
    m.update(body);
    m
}

pub fn sign(secret: &str, node: u64, time: i64, path: &str, body: &[u8]) -> String {
    mac(secret, node, time, path, body).finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed authentication headers")]
    Missing,
    #[error("the request is too old or from the future")]
    Stale,
    #[error("bad signature")]
    BadSignature,
}

pub fn verify(
    secret: &str,
    node: u64,
    time: i64,
    now: i64,
    path: &str,
    body: &[u8],
    signature: &str,
) -> Result<(), AuthError> {
    if secret.is_empty() {
        return Err(AuthError::BadSignature);
    }
    if (now - time).abs() > MAX_SKEW_SECS {
        return Err(AuthError::Stale);
    }
    let bytes: Option<Vec<u8>> = (0..signature.len())
        .step_by(2)
        .map(|i| signature.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    let bytes = bytes.ok_or(AuthError::Missing)?;
    mac(secret, node, time, path, body).verify_slice(&bytes).map_err(|_| AuthError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_unchanged() {
        let s = sign("secret-secret-123", 2, 1000, "/internal/heartbeat", b"{}");
        assert!(verify("secret-secret-123", 2, 1000, 1005, "/internal/heartbeat", b"{}", &s).is_ok());
        assert_eq!(
            verify("other-secret-1234", 2, 1000, 1005, "/internal/heartbeat", b"{}", &s),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify("secret-secret-123", 3, 1000, 1005, "/internal/heartbeat", b"{}", &s),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify("secret-secret-123", 2, 1000, 1005, "/internal/append", b"{}", &s),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify("secret-secret-123", 2, 1000, 1005, "/internal/heartbeat", b"{ }", &s),
            Err(AuthError::BadSignature)
        );
        assert_eq!(verify("secret-secret-123", 2, 1000, 1100, "/internal/heartbeat", b"{}", &s), Err(AuthError::Stale));
        assert_eq!(
            verify("secret-secret-123", 2, 1000, 1000, "/internal/heartbeat", b"{}", "zz"),
            Err(AuthError::Missing)
        );
        assert_eq!(verify("", 2, 1000, 1000, "/internal/heartbeat", b"{}", &s), Err(AuthError::BadSignature));
    }
}
