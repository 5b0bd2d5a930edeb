//! Who a visitor is, as the abuse limits count them: the client's address (behind nginx,
//! from `X-Forwarded-For`, see `web::client`) and the site's session (a hash of the browser's
//! session cookie, never the cookie itself). Either may be unknown.
use super::DomainError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The client that asked for a write. Travels with a forwarded write and is stored with
/// each hold, so the master (which serializes a show's writes) applies the limits, and a
/// new master rebuilds them from the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The client's IP address, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// The first 16 bytes of SHA-256 of the session cookie, in hex (32 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// The hex length of a session tag.
const SESSION_TAG_LEN: usize = 32;

impl Client {
    /// A client from its address and the value of its session cookie, if any.
    pub fn new(addr: Option<IpAddr>, session_cookie: Option<&str>) -> Self {
        let session = session_cookie.filter(|c| !c.is_empty()).map(|c| {
            let digest = Sha256::new().chain_update(b"marquee session\0").chain_update(c.as_bytes()).finalize();
            digest[..SESSION_TAG_LEN / 2].iter().map(|b| format!("{b:02x}")).collect()
        });
        Self { addr: addr.map(|a| a.to_string()), session }
    }

    /// Checks a client that came from elsewhere (a forwarded write, a log entry).
    pub fn parse(addr: Option<&str>, session: Option<&str>) -> Result<Self, DomainError> {
        let addr = addr
            .map(|a| a.parse::<IpAddr>().map(|ip| ip.to_string()).map_err(|_| DomainError::BadClient))
            .transpose()?;
        let session = session
            .map(|s| {
                if s.len() == SESSION_TAG_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(s.to_ascii_lowercase())
                } else {
                    Err(DomainError::BadClient)
                }
            })
            .transpose()?;
        Ok(Self { addr, session })
    }

    /// A client that came from elsewhere, checked.
    pub fn checked(self) -> Result<Self, DomainError> {
        Self::parse(self.addr.as_deref(), self.session.as_deref())
    }

    /// The keys the limits count by: each is a budget of its own, and a write must fit
    /// every one ("whichever is stricter").
    pub fn keys(&self) -> impl Iterator<Item = String> + '_ {
        self.addr.iter().map(|a| format!("a:{a}")).chain(self.session.iter().map(|s| format!("s:{s}")))
    }

    pub fn is_known(&self) -> bool {
        self.addr.is_some() || self.session.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_keeps_a_hash_of_its_session_never_the_cookie() {
        let c = Client::new(Some(IpAddr::from([10, 1, 2, 3])), Some("cookie-value-123"));
        assert_eq!(c.addr.as_deref(), Some("10.1.2.3"));
        let tag = c.session.clone().unwrap();
        assert_eq!(tag.len(), 32);
        assert!(!tag.contains("cookie"));
        assert_eq!(Client::new(None, Some("cookie-value-123")).session, Some(tag));
        assert_ne!(Client::new(None, Some("another")).session, c.session);
        assert_eq!(c.keys().collect::<Vec<_>>(), vec!["a:10.1.2.3".to_string(), format!("s:{}", c.session.unwrap())]);
        assert!(!Client::new(None, Some("")).is_known());
    }

    #[test]
    fn a_client_from_elsewhere_is_checked() {
        let c = Client::new(Some("::1".parse().unwrap()), Some("x"));
        assert_eq!(c.clone().checked().unwrap(), c);
        assert_eq!(Client::parse(Some("300.1.1.1"), None), Err(DomainError::BadClient));
        assert_eq!(Client::parse(None, Some("zz")), Err(DomainError::BadClient));
        assert_eq!(Client::parse(None, Some(&"g".repeat(32))), Err(DomainError::BadClient));
        assert_eq!(Client::parse(None, None).unwrap(), Client::default());
    }
}
