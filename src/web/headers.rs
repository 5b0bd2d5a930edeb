//! The security headers every answer of the public listener carries: scripts, styles and
//! everything else only from this site (no inline script, no `eval`; the pages' scripts are
//! files under `/assets/`), posters from any https host (the catalog API's images live on
//! other hosts), no framing, no content-type sniffing, and no full URLs in Referer to
//! other sites. A handler that sets one of these itself keeps its own.
use actix_web::middleware::DefaultHeaders;

/// `connect-src 'self'` covers the live seat map's websocket (same host, `ws:`/`wss:`).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: https:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

pub const HEADERS: [(&str, &str); 4] = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    // For browsers older than CSP's frame-ancestors.
    ("X-Frame-Options", "DENY"),
];

pub fn security_headers() -> DefaultHeaders {
    HEADERS.iter().fold(DefaultHeaders::new(), |h, (name, value)| h.add((*name, *value)))
}
