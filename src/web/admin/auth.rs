//! Who may enter the admin area: the password (ADMIN_PASSWORD, kept as an Argon2 hash, or
//! the one an operator set since, from the log), a session, and a throttle that slows down
//! repeated wrong passwords from one address.
//!
//! Sessions live on the server: logging in writes a session into the log (every node gets
//! it), and logging out, "log out everywhere" and a password change end sessions the same
//! way, so a copied cookie stops working on every node. The cookie carries the session's
//! secret and expiry, signed (HMAC) with a key derived from ADMIN_SESSION_KEY or
//! CLUSTER_SECRET; the database keeps only the secret's SHA-256.
use super::super::error::WebError;
use super::super::throttle::Guard;
use super::super::AppState;
use crate::config::Secret;
use crate::domain::{random_token, AdminPassword};
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use sha2::{Digest, Sha512};
use std::net::IpAddr;
use std::time::Duration;

pub const SESSION_COOKIE: &str = "marquee_admin";
/// How long a login lasts unless ADMIN_SESSION_HOURS says otherwise.
pub const SESSION_HOURS: i64 = 12;

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
    throttle: Guard,
    hours: i64,
}

/// A session about to be opened: its cookie, and what the log records of it.
pub struct NewSession {
    pub cookie: Cookie<'static>,
    /// The SHA-256 of the session's secret, in hex.
    pub id: String,
    pub expires_at: DateTime<Utc>,
}

/// A session's id as the database keeps it: the SHA-256 of its secret, in hex.
fn session_id(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` looks like a session id (64 hex characters).
pub fn is_session_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl AdminGate {
    /// A gate with sessions of [`SESSION_HOURS`].
    pub fn new(password: Option<AdminPassword>, secret: Option<&Secret>) -> Self {
        Self::with_hours(password, secret, SESSION_HOURS)
    }

    pub fn with_hours(password: Option<AdminPassword>, secret: Option<&Secret>, hours: i64) -> Self {
        let key = match secret {
            // 64 bytes: HMAC key and encryption key, both from the shared secret.
            Some(s) => Key::from(
                &Sha512::new().chain_update(b"marquee admin session v1\0").chain_update(s.expose()).finalize(),
            ),
            None => Key::generate(),
        };
        Self { password, key, throttle: Guard::default(), hours: hours.max(1) }
    }

    /// Whether ADMIN_PASSWORD is set.
    pub fn is_open(&self) -> bool {
        self.password.is_some()
    }

    /// A new session, valid for ADMIN_SESSION_HOURS: its cookie is `HttpOnly`,
    /// `SameSite=Strict`, `Path=/admin`, and `Secure` when the request came over HTTPS.
    pub fn new_session(&self, now: DateTime<Utc>, secure: bool) -> NewSession {
        let expires_at = now + chrono::Duration::hours(self.hours);
        let secret = random_token(32);
        let value = format!("{}.{secret}", expires_at.timestamp());
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.key).add(
            Cookie::build(SESSION_COOKIE, value)
                .path("/admin")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(secure)
                .max_age(actix_web::cookie::time::Duration::hours(self.hours))
                .finish(),
        );
        let cookie = jar.get(SESSION_COOKIE).cloned().expect("the cookie was just added");
        NewSession { cookie, id: session_id(&secret), expires_at }
    }

    /// The id of the session the request's cookie names, if this key signed the cookie and
    /// it has not expired. Whether the session is still open is the database's to say.
    pub fn session_of(&self, req: &HttpRequest, now: DateTime<Utc>) -> Option<String> {
        let cookie = req.cookie(SESSION_COOKIE)?;
        let mut jar = CookieJar::new();
        jar.add_original(cookie.into_owned());
        let verified = jar.signed(&self.key).get(SESSION_COOKIE)?;
        let (expires, secret) = verified.value().split_once('.')?;
        let expires = expires.parse::<i64>().ok()?;
        let alive = now.timestamp() < expires && expires <= (now + chrono::Duration::hours(self.hours)).timestamp();
        (alive && !secret.is_empty()).then(|| session_id(secret))
    }

    /// The cookie that ends a session in the browser.
    pub fn logout_cookie() -> Cookie<'static> {
        let mut c =
            Cookie::build(SESSION_COOKIE, "").path("/admin").http_only(true).same_site(SameSite::Strict).finish();
        c.make_removal();
        c
    }

    /// Checks a password (`current`, the one an operator set, else ADMIN_PASSWORD): waits
    /// its turn in the throttle first (without blocking a thread), then verifies on the
    /// blocking pool.
    pub async fn login(
        &self,
        who: Option<IpAddr>,
        attempt: String,
        current: Option<AdminPassword>,
    ) -> Result<(), LoginError> {
        let configured = self.password.clone().ok_or(LoginError::Closed)?;
        let password = current.unwrap_or(configured);
        self.throttle.wait_turn(who).await.map_err(LoginError::TooMany)?;
        let ok = web::block(move || password.verify(&attempt)).await.unwrap_or(false);
        self.throttle.record(who, ok);
        if ok {
            Ok(())
        } else {
            Err(LoginError::WrongPassword)
        }
    }
}

/// Proof that the request carries an open admin session (its id). As a handler argument
/// it refuses everyone else before the handler runs: 403 while the admin area is closed,
/// else 401 (the login page for pages, JSON under `/admin/api/`).
pub struct AdminSession {
    pub id: String,
}

impl FromRequest for AdminSession {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { check_session(&req).await })
    }
}

/// Whether the session `id` is open, by this node's database. A session opened a moment
/// ago through the master may still be on its way to a follower: a miss there is asked
/// again for a short while.
pub async fn session_open(state: &AppState, id: &str) -> Result<bool, WebError> {
    let id = id.to_string();
    crate::web::writes::read_own_write(state, || {
        let id = id.clone();
        async move {
            let now = Utc::now().naive_utc();
            match state.db.run(move |c| crate::db::admin::session_open(c, &id, now)).await? {
                true => Ok(()),
                false => Err(WebError::NotFound("no such session".into())),
            }
        }
    })
    .await
    .map(|()| true)
    .or_else(|e| match e {
        WebError::NotFound(_) => Ok(false),
        other => Err(other),
    })
}

async fn check_session(req: &HttpRequest) -> Result<AdminSession, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Err(WebError::Internal("no application state".into()).into());
    };
    let api = req.path().starts_with("/admin/api/") || req.path().starts_with("/api/");
    let refusal = if !state.admin.is_open() {
        if api {
            WebError::Forbidden(super::CLOSED_MESSAGE.into()).error_response()
        } else {
            super::pages::closed_page(state, req)
        }
    } else {
        if let Some(id) = state.admin.session_of(req, Utc::now()) {
            if session_open(state, &id).await? {
                return Ok(AdminSession { id });
            }
        }
        if api {
            WebError::Unauthorized("log in at /admin first".into()).error_response()
        } else {
            super::pages::login_page(state, req, None, actix_web::http::StatusCode::UNAUTHORIZED)
        }
    };
    Err(actix_web::error::InternalError::from_response("admin session required", refusal).into())
}

/// Whether the request came over HTTPS (directly or, per X-Forwarded-Proto, via nginx).
pub fn over_https(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<AppState>>().is_some_and(|state| crate::web::client::over_https(state, req))
}

/// The response that logs in: the session cookie and a redirect.
pub fn logged_in(session: NewSession, to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .cookie(session.cookie)
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
    fn a_session_cookie_names_its_session_until_it_expires_and_only_if_signed() {
        let g = gate(None);
        let now = Utc::now();
        let s = g.new_session(now, false);
        let c = &s.cookie;
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Strict));
        assert_eq!(c.path(), Some("/admin"));
        assert_eq!(c.secure(), Some(false));
        assert!(is_session_id(&s.id));
        assert!(!c.value().contains(&s.id), "the cookie holds the secret, the table its hash");
        assert_eq!(g.session_of(&with_cookie(c), now), Some(s.id.clone()));
        assert_eq!(s.expires_at, now + chrono::Duration::hours(SESSION_HOURS));
        assert_eq!(
            g.session_of(&with_cookie(c), now + chrono::Duration::hours(SESSION_HOURS) + chrono::Duration::seconds(1)),
            None
        );
        // Another key (another process without a shared secret) does not accept it.
        assert_eq!(gate(None).session_of(&with_cookie(c), now), None);
        // A changed value breaks the signature.
        let (mac, value) = c.value().split_at(44);
        let far = format!("{mac}{}{}", (now.timestamp() + 999_999), &value[value.find('.').unwrap()..]);
        assert_eq!(g.session_of(&with_cookie(&Cookie::new(SESSION_COOKIE, far)), now), None);
        assert_eq!(g.session_of(&with_cookie(&Cookie::new(SESSION_COOKIE, "1.x")), now), None);
        assert_eq!(g.session_of(&TestRequest::default().to_http_request(), now), None);
        // Two logins are two sessions.
        assert_ne!(g.new_session(now, false).id, s.id);
    }

    #[test]
    fn nodes_with_the_same_secret_read_each_others_cookies_for_the_hours_set() {
        let secret = Secret::new("a shared secret of some length");
        let a = AdminGate::with_hours(None, Some(&secret), 2);
        let b = AdminGate::with_hours(None, Some(&secret), 2);
        let now = Utc::now();
        let s = a.new_session(now, true);
        assert_eq!(s.cookie.secure(), Some(true));
        assert_eq!(b.session_of(&with_cookie(&s.cookie), now), Some(s.id.clone()));
        assert_eq!(b.session_of(&with_cookie(&s.cookie), now + chrono::Duration::hours(2)), None);
        assert_eq!(gate(Some("another secret entirely......")).session_of(&with_cookie(&s.cookie), now), None);
    }
}
