//! Who may enter the admin area: the password (ADMIN_PASSWORD, kept as an Argon2 hash),
//! a signed session cookie, and a throttle that slows down repeated wrong passwords.
//!
//! The session is stateless: the cookie carries its expiry, signed (HMAC) with a key
//! derived from ADMIN_SESSION_KEY or CLUSTER_SECRET, so every node with the same secret
//! accepts it; without either, each process has a random key (sessions end at restart).
use super::super::error::WebError;
use super::super::AppState;
use crate::config::Secret;
use crate::domain::{random_token, AdminPassword};
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use futures::future::{ready, Ready};
use sha2::{Digest, Sha512};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "marquee_admin";
/// How long a login lasts.
pub const SESSION_HOURS: i64 = 8;

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the admin area is closed")]
    Closed,
    #[error("wrong password")]
    WrongPassword,
    #[error("too many wrong passwords; try again in {} seconds", .0.as_secs().max(1))]
    TooMany(Duration),
}

/// The admin area's lock: its password, the key that signs sessions, and the throttle.
pub struct AdminGate {
    password: Option<AdminPassword>,
    key: Key,
    throttle: Mutex<Throttle>,
}

impl AdminGate {
    pub fn new(password: Option<AdminPassword>, secret: Option<&Secret>) -> Self {
        let key = match secret {
            // 64 bytes: HMAC key and encryption key, both from the shared secret.
            Some(s) => Key::from(
                &Sha512::new().chain_update(b"marquee admin session v1\0").chain_update(s.expose()).finalize(),
            ),
            None => Key::generate(),
        };
        Self { password, key, throttle: Mutex::new(Throttle::default()) }
    }

    /// Whether ADMIN_PASSWORD is set.
    pub fn is_open(&self) -> bool {
        self.password.is_some()
    }

    /// A new session cookie, valid for [`SESSION_HOURS`]: `HttpOnly`, `SameSite=Strict`,
    /// `Path=/admin`, `Secure` when the request came over HTTPS.
    pub fn session_cookie(&self, now: DateTime<Utc>, secure: bool) -> Cookie<'static> {
        let expires = now + chrono::Duration::hours(SESSION_HOURS);
        let value = format!("{}.{}", expires.timestamp(), random_token(16));
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key).add(
            Cookie::build(SESSION_COOKIE, value)
                .path("/admin")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(secure)
                .max_age(actix_web::cookie::time::Duration::hours(SESSION_HOURS))
                .finish(),
        );
        jar.get(SESSION_COOKIE).cloned().expect("the cookie was just added")
    }

    /// Whether the request carries a session cookie that this key signed and that has not
    /// expired.
    pub fn has_session(&self, req: &HttpRequest, now: DateTime<Utc>) -> bool {
        let Some(cookie) = req.cookie(SESSION_COOKIE) else { return false };
        let mut jar = CookieJar::new();
        jar.add_original(cookie.into_owned());
        let Some(verified) = jar.signed(&self.key).get(SESSION_COOKIE) else { return false };
        session_alive(verified.value(), now)
    }

    /// The cookie that ends a session in the browser.
    pub fn logout_cookie() -> Cookie<'static> {
        let mut c =
            Cookie::build(SESSION_COOKIE, "").path("/admin").http_only(true).same_site(SameSite::Strict).finish();
        c.make_removal();
        c
    }

    /// Checks a password: waits its turn in the throttle first (without blocking a
    /// thread), then verifies on the blocking pool.
    pub async fn login(&self, who: Option<IpAddr>, attempt: String) -> Result<(), LoginError> {
        let password = self.password.clone().ok_or(LoginError::Closed)?;
        let wait = self.throttle().admit(who, Instant::now()).map_err(LoginError::TooMany)?;
        if !wait.is_zero() {
            actix_web::rt::time::sleep(wait).await;
        }
        let ok = web::block(move || password.verify(&attempt)).await.unwrap_or(false);
        let mut throttle = self.throttle();
        if ok {
            throttle.succeeded(who);
            Ok(())
        } else {
            throttle.failed(who, Instant::now());
            Err(LoginError::WrongPassword)
        }
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `"<expiry unix seconds>.<nonce>"`, still before its expiry.
fn session_alive(value: &str, now: DateTime<Utc>) -> bool {
    let expires = value.split_once('.').and_then(|(t, _)| t.parse::<i64>().ok());
    expires.is_some_and(|t| now.timestamp() < t && t <= (now + chrono::Duration::hours(SESSION_HOURS)).timestamp())
}

/// Slows down wrong passwords, per client address: after `n` failures each attempt waits
/// its turn, `BASE * 2^(n-1)` after the previous one (at most `CAP`), so attempts in
/// parallel queue up instead of running together. An attempt that would wait longer than
/// `MAX_WAIT` is refused at once. A success, or `FORGET` without failures, clears it.
#[derive(Debug, Default)]
pub struct Throttle {
    clients: HashMap<Option<IpAddr>, Strikes>,
}

#[derive(Debug)]
struct Strikes {
    failures: u32,
    next_turn: Instant,
    last_failure: Instant,
}

impl Throttle {
    pub const BASE: Duration = Duration::from_millis(500);
    pub const CAP: Duration = Duration::from_secs(8);
    pub const MAX_WAIT: Duration = Duration::from_secs(30);
    pub const FORGET: Duration = Duration::from_secs(15 * 60);

    fn delay(failures: u32) -> Duration {
        match failures {
            0 => Duration::ZERO,
            n => Self::BASE.saturating_mul(1 << (n - 1).min(10)).min(Self::CAP),
        }
    }

    /// How long this attempt must wait before it is checked, or how long until one may be
    /// tried again when the queue is too long.
    pub fn admit(&mut self, who: Option<IpAddr>, now: Instant) -> Result<Duration, Duration> {
        self.clients.retain(|_, s| now.saturating_duration_since(s.last_failure) < Self::FORGET);
        let Some(s) = self.clients.get_mut(&who) else { return Ok(Duration::ZERO) };
        let wait = s.next_turn.saturating_duration_since(now);
        if wait > Self::MAX_WAIT {
            return Err(wait);
        }
        s.next_turn = s.next_turn.max(now) + Self::delay(s.failures);
        Ok(wait)
    }

    pub fn failed(&mut self, who: Option<IpAddr>, now: Instant) {
        let s = self.clients.entry(who).or_insert(Strikes { failures: 0, next_turn: now, last_failure: now });
        s.failures = s.failures.saturating_add(1);
        s.last_failure = now;
        s.next_turn = s.next_turn.max(now + Self::delay(s.failures));
    }

    pub fn succeeded(&mut self, who: Option<IpAddr>) {
        self.clients.remove(&who);
    }
}

/// Proof that the request carries a valid admin session. As a handler argument it refuses
/// everyone else before the handler runs: 403 while the admin area is closed, else 401
/// (the login page for pages, JSON under `/admin/api/`).
pub struct AdminSession;

impl FromRequest for AdminSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check_session(req))
    }
}

fn check_session(req: &HttpRequest) -> Result<AdminSession, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Err(WebError::Internal("no application state".into()).into());
    };
    let api = req.path().starts_with("/admin/api/");
    let refusal = if !state.admin.is_open() {
        if api {
            WebError::Forbidden(super::CLOSED_MESSAGE.into()).error_response()
        } else {
            super::pages::closed_page(state, req)
        }
    } else if state.admin.has_session(req, Utc::now()) {
        return Ok(AdminSession);
    } else if api {
        WebError::Unauthorized("log in at /admin first".into()).error_response()
    } else {
        super::pages::login_page(state, req, None, actix_web::http::StatusCode::UNAUTHORIZED)
    };
    Err(actix_web::error::InternalError::from_response("admin session required", refusal).into())
}

/// Whether the request came over HTTPS (directly or, per X-Forwarded-Proto, via nginx).
pub fn over_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// The response that logs in: the session cookie and a redirect.
pub fn logged_in(gate: &AdminGate, req: &HttpRequest, to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .cookie(gate.session_cookie(Utc::now(), over_https(req)))
        .insert_header(("Location", to.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn gate(secret: Option<&str>) -> AdminGate {
        AdminGate::new(Some(AdminPassword::hash("correct horse").unwrap()), secret.map(Secret::new).as_ref())
    }

    fn with_cookie(c: &Cookie<'static>) -> HttpRequest {
        TestRequest::default().cookie(c.clone()).to_http_request()
    }

    #[test]
    fn a_session_cookie_is_accepted_until_it_expires_and_only_if_signed() {
        let g = gate(None);
        let now = Utc::now();
        let c = g.session_cookie(now, false);
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Strict));
        assert_eq!(c.path(), Some("/admin"));
        assert!(g.has_session(&with_cookie(&c), now));
        assert!(!g.has_session(
            &with_cookie(&c),
            now + chrono::Duration::hours(SESSION_HOURS) + chrono::Duration::seconds(1)
        ));
        // Another key (another process without a shared secret) does not accept it.
        assert!(!gate(None).has_session(&with_cookie(&c), now));
        // A changed value breaks the signature.
        let (mac, value) = c.value().split_at(44);
        let far = format!("{mac}{}{}", (now.timestamp() + 999_999), &value[value.find('.').unwrap()..]);
        assert!(!g.has_session(&with_cookie(&Cookie::new(SESSION_COOKIE, far)), now));
        assert!(!g.has_session(&with_cookie(&Cookie::new(SESSION_COOKIE, "1.x")), now));
        assert!(!g.has_session(&TestRequest::default().to_http_request(), now));
    }

    #[test]
    fn nodes_with_the_same_secret_accept_each_others_sessions() {
        let (a, b) = (gate(Some("a shared secret of some length")), gate(Some("a shared secret of some length")));
        let c = a.session_cookie(Utc::now(), true);
        assert_eq!(c.secure(), Some(true));
        assert!(b.has_session(&with_cookie(&c), Utc::now()));
        assert!(!gate(Some("another secret entirely......")).has_session(&with_cookie(&c), Utc::now()));
    }

    #[test]
    fn wrong_passwords_make_later_attempts_wait_longer() {
        let mut t = Throttle::default();
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        let other = Some(IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        assert_eq!(t.admit(ip, t0), Ok(Duration::ZERO));
        t.failed(ip, t0);
        assert_eq!(t.admit(ip, t0), Ok(Throttle::BASE));
        t.failed(ip, t0 + Throttle::BASE);
        // Two attempts at once queue up one after the other.
        let now = t0 + Throttle::BASE;
        let first = t.admit(ip, now).unwrap();
        let second = t.admit(ip, now).unwrap();
        assert_eq!(first, Throttle::BASE * 2);
        assert_eq!(second, Throttle::BASE * 4);
        assert_eq!(t.admit(other, now), Ok(Duration::ZERO), "other clients are not slowed");
        for _ in 0..20 {
            t.failed(ip, now);
        }
        let queue: Vec<_> = (0..10).map(|_| t.admit(ip, now)).collect();
        assert!(queue.iter().all(|w| w.is_err() || *w <= Ok(Throttle::MAX_WAIT)));
        assert!(queue.last().unwrap().is_err(), "a long queue is refused at once");
        t.succeeded(ip);
        assert_eq!(t.admit(ip, now), Ok(Duration::ZERO));
        t.failed(ip, now);
        assert_eq!(t.admit(ip, now + Throttle::FORGET), Ok(Duration::ZERO), "forgotten after a while");
        assert_eq!(Throttle::delay(30), Throttle::CAP);
    }

    #[test]
    fn session_values_are_checked() {
        let now = Utc::now();
        let ok = format!("{}.abc", now.timestamp() + 60);
        assert!(session_alive(&ok, now));
        assert!(!session_alive(&format!("{}.abc", now.timestamp() - 1), now));
        assert!(!session_alive(&format!("{}.abc", now.timestamp() + 10 * 3600), now), "longer than a session");
        assert!(!session_alive("soon.abc", now));
    }
}
