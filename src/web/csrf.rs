//! CSRF protection for forms: the double-submit cookie. A page puts a random token both
//! in an HttpOnly, SameSite=Strict cookie and in a hidden form field; a POST is accepted
//! only when the two match. A site on another origin can neither read the cookie nor set it.
use super::error::WebError;
use crate::domain::random_token;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;

pub const COOKIE: &str = "marquee_csrf";
pub const FIELD: &str = "csrf_token";
const LEN: usize = 32;

/// The token for a page, and the cookie to set when the browser has none yet.
pub fn token(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    if let Some(c) = req.cookie(COOKIE).filter(|c| well_formed(c.value())) {
        return (c.value().to_string(), None);
    }
    let token = random_token(LEN);
    let cookie = Cookie::build(COOKIE, token.clone()).path("/").http_only(true).same_site(SameSite::Strict).finish();
    (token, Some(cookie))
}

/// Checks a submitted form's token against the cookie.
pub fn verify(req: &HttpRequest, submitted: Option<&str>) -> Result<(), WebError> {
    let refused = || {
        WebError::Forbidden("the form has expired or did not come from this site; reload the page and try again".into())
    };
    let cookie = req.cookie(COOKIE).ok_or_else(refused)?;
    let submitted = submitted.ok_or_else(refused)?;
    if well_formed(submitted) && constant_time_eq(cookie.value().as_bytes(), submitted.as_bytes()) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// The header a script sends its token in (the admin's JSON endpoints).
pub const HEADER: &str = "X-CSRF-Token";

/// Checks the token a script sent in the [`HEADER`] against the cookie.
pub fn verify_header(req: &HttpRequest) -> Result<(), WebError> {
    verify(req, req.headers().get(HEADER).and_then(|v| v.to_str().ok()))
}

fn well_formed(t: &str) -> bool {
    t.len() == LEN && t.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_matching_token_passes_and_others_do_not() {
        let t = random_token(LEN);
        let req = TestRequest::default().cookie(Cookie::new(COOKIE, t.clone())).to_http_request();
        assert!(verify(&req, Some(&t)).is_ok());
        assert!(verify(&req, Some(&random_token(LEN))).is_err());
        assert!(verify(&req, None).is_err());
        let bare = TestRequest::default().to_http_request();
        assert!(verify(&bare, Some(&t)).is_err());
    }
}
