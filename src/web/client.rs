//! Who sent a request. Behind nginx the peer is nginx itself, so the client's address comes
//! from `X-Forwarded-For`, but only when the peer is one of `TRUSTED_PROXIES`: anyone else
//! could write that header. Every handler that counts or limits clients asks here.
use super::AppState;
use crate::domain::Client;
use actix_web::HttpRequest;
use std::net::IpAddr;

/// A network, `address/prefix` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(raw: &str) -> Result<Self, String> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("'{raw}' is not an address or a network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => {
                p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("'{raw}': bad prefix"))?
            }
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net) as u128, 32, self.prefix) == masked(u32::from(ip) as u128, 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix) == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// TRUSTED_PROXIES: the proxies whose `X-Forwarded-For` is believed (default: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// A comma-separated list of addresses and networks (`172.16.0.0/12, 127.0.0.1`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Network::parse).collect::<Result<_, _>>().map(Self)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// right-most address of `X-Forwarded-For` that is not itself a trusted proxy (each
    /// proxy appends the address it heard from, so everything left of that was written by
    /// the client and may be forged). A header that does not parse is ignored.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: &[&str]) -> Option<IpAddr> {
        let peer = peer.map(canonical)?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let mut hops = Vec::new();
        for header in forwarded_for {
            for hop in header.split(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(canonical(ip)),
                    // A malformed list cannot be read from the right: stop at the proxy.
                    Err(_) => return Some(peer),
                }
            }
        }
        Some(hops.into_iter().rev().find(|ip| !self.trusts(*ip)).unwrap_or(peer))
    }

    /// Whether the request came over HTTPS: directly, or per `X-Forwarded-Proto` from a
    /// trusted proxy.
    pub fn over_https(&self, peer: Option<IpAddr>, scheme: &str, forwarded_proto: Option<&str>) -> bool {
        match (peer.map(canonical), forwarded_proto) {
            (Some(p), Some(proto)) if self.trusts(p) => proto.trim().eq_ignore_ascii_case("https"),
            _ => scheme == "https",
        }
    }
}

/// The client's address (see [`TrustedProxies::client_ip`]).
pub fn client_ip(state: &AppState, req: &HttpRequest) -> Option<IpAddr> {
    let headers: Vec<&str> = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect();
    state.settings.trusted_proxies.client_ip(req.peer_addr().map(|a| a.ip()), &headers)
}

/// The client as the abuse limits count it: its address and the site's session cookie.
pub fn client(state: &AppState, req: &HttpRequest) -> Client {
    let session = req.cookie(super::csrf::COOKIE);
    Client::new(client_ip(state, req), session.as_ref().map(|c| c.value()))
}

/// Whether the request came over HTTPS (see [`TrustedProxies::over_https`]).
pub fn over_https(state: &AppState, req: &HttpRequest) -> bool {
    let proto = req.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok());
    state.settings.trusted_proxies.over_https(
        req.peer_addr().map(|a| a.ip()),
        req.uri().scheme_str().unwrap_or("http"),
        proto,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_match() {
        let t = TrustedProxies::parse(" 172.16.0.0/12, 127.0.0.1 ,fd00::/8").unwrap();
        assert!(t.trusts(ip("172.18.0.5")));
        assert!(!t.trusts(ip("172.32.0.1")));
        assert!(t.trusts(ip("127.0.0.1")));
        assert!(t.trusts(ip("::ffff:127.0.0.1")), "IPv4-mapped IPv6");
        assert!(!t.trusts(ip("127.0.0.2")));
        assert!(t.trusts(ip("fd12::1")));
        assert!(!t.trusts(ip("fe80::1")));
        assert_eq!(TrustedProxies::parse("").unwrap(), TrustedProxies::default());
        assert!(TrustedProxies::parse("0.0.0.0/0").unwrap().trusts(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nginx", "10.0.0.0/x", "::/129"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let nginx = TrustedProxies::parse("10.0.0.2").unwrap();
        let peer = Some(ip("10.0.0.2"));
        // Without trusted proxies, the peer is the client, whatever the header says.
        assert_eq!(none.client_ip(peer, &["1.2.3.4"]), peer);
        // A forged header from an untrusted peer is ignored.
        assert_eq!(nginx.client_ip(Some(ip("9.9.9.9")), &["1.2.3.4"]), Some(ip("9.9.9.9")));
        // From nginx: the address nginx appended, not what the client wrote before it.
        assert_eq!(nginx.client_ip(peer, &["6.6.6.6, 5.5.5.5"]), Some(ip("5.5.5.5")));
        assert_eq!(nginx.client_ip(peer, &["6.6.6.6", "5.5.5.5"]), Some(ip("5.5.5.5")));
        // Chained trusted proxies are skipped.
        let two = TrustedProxies::parse("10.0.0.0/24").unwrap();
        assert_eq!(two.client_ip(peer, &["5.5.5.5, 10.0.0.7"]), Some(ip("5.5.5.5")));
        // No header, or one that does not parse: the proxy itself.
        assert_eq!(nginx.client_ip(peer, &[]), peer);
        assert_eq!(nginx.client_ip(peer, &["5.5.5.5, garbage"]), peer);
        assert_eq!(nginx.client_ip(None, &["5.5.5.5"]), None);
    }

    #[test]
    fn https_is_believed_from_a_trusted_proxy_only() {
        let nginx = TrustedProxies::parse("10.0.0.2").unwrap();
        assert!(nginx.over_https(Some(ip("10.0.0.2")), "http", Some("https")));
        assert!(!nginx.over_https(Some(ip("10.0.0.9")), "http", Some("https")));
        assert!(!nginx.over_https(Some(ip("10.0.0.2")), "http", Some("http")));
        assert!(nginx.over_https(Some(ip("10.0.0.9")), "https", None));
    }
}
