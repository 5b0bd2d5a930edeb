//! Every answer of the public listener carries the security headers (CSP without inline
//! script or eval, no framing, nosniff, same-origin referrers), every page works under that
//! policy (no inline script, handler attribute or style attribute for it to block), and an
//! error page shows the input it complains about escaped.
mod common;

use chrono::Duration;
use common::{spawn_app_with, TestApp};
use marquee::domain::AdminPassword;
use std::collections::BTreeMap;

const PASSWORD: &str = "correct horse battery";

struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A browser that keeps its cookies (the CSRF cookie, the admin session).
struct Browser<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> Answer {
        let res = self.app.client.get(self.app.url(path)).insert_header(("Cookie", self.cookie_header())).send();
        self.read(res.await.unwrap()).await
    }

    async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let res = self
            .app
            .client
            .post(self.app.url(path))
            .insert_header(("Cookie", self.cookie_header()))
            .content_type("application/x-www-form-urlencoded")
            .send_body(body);
        self.read(res.await.unwrap()).await
    }

    async fn post_json(&mut self, path: &str, json: &serde_json::Value) -> Answer {
        let res = self.app.client.post(self.app.url(path)).send_json(json);
        self.read(res.await.unwrap()).await
    }

    async fn read(
        &mut self,
        mut res: awc::ClientResponse<
            impl futures::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>> + Unpin,
        >,
    ) -> Answer {
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.insert(name.to_string(), value.to_string());
        }
        let headers =
            res.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string())).collect();
        let body = String::from_utf8_lossy(&res.body().limit(4 << 20).await.unwrap()).to_string();
        Answer { status: res.status().as_u16(), headers, body }
    }
}

fn token(html: &str) -> String {
    let at = html.find("name=\"csrf_token\" value=\"").expect("a form with a CSRF token")
        + "name=\"csrf_token\" value=\"".len();
    html[at..at + 32].to_string()
}

/// The headers every answer must carry, and the policy's parts that matter.
fn assert_secured(what: &str, a: &Answer) {
    let h = |name: &str| a.headers.get(name).unwrap_or_else(|| panic!("{what} ({}): no {name}", a.status)).as_str();
    let csp = h("content-security-policy");
    let directives: BTreeMap<&str, &str> =
        csp.split(';').filter_map(|d| d.trim().split_once(' ')).map(|(name, sources)| (name, sources.trim())).collect();
    assert_eq!(directives.get("default-src"), Some(&"'self'"), "{what}: {csp}");
    assert_eq!(directives.get("script-src"), Some(&"'self'"), "{what}: scripts only from the site: {csp}");
    assert_eq!(directives.get("style-src"), Some(&"'self'"), "{what}: {csp}");
    assert_eq!(directives.get("frame-ancestors"), Some(&"'none'"), "{what}: {csp}");
    assert_eq!(directives.get("object-src"), Some(&"'none'"), "{what}: {csp}");
    assert_eq!(directives.get("base-uri"), Some(&"'self'"), "{what}: {csp}");
    assert_eq!(directives.get("form-action"), Some(&"'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("referrer-policy"), "same-origin", "{what}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
}

/// A page has nothing the policy would block: every script is a file of the site, and no
/// element carries an event handler, a style attribute or a `javascript:` URL.
fn assert_no_inline_code(what: &str, html: &str) {
    let lower = html.to_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("<script") {
        let tag_end = rest[at..].find('>').unwrap() + at;
        let tag = &rest[at..=tag_end];
        assert!(tag.contains(" src=\"/assets/"), "{what}: an inline script: {tag}");
        assert!(rest[tag_end + 1..].starts_with("</script>"), "{what}: code inside a script tag");
        rest = &rest[tag_end..];
    }
    for bad in [" style=", "javascript:"] {
        assert!(!lower.contains(bad), "{what}: '{bad}' in the page");
    }
    for handler in ["onclick", "onload", "onerror", "onsubmit", "onchange", "oninput", "onmouseover", "onfocus"] {
        assert!(!lower.contains(&format!(" {handler}=")), "{what}: an inline {handler} handler");
    }
}

#[actix_web::test]
async fn every_page_and_answer_carries_the_security_headers() {
    let app = spawn_app_with(|s| s.admin_password = Some(AdminPassword::hash(PASSWORD).unwrap())).await;
    let show = app.seed_show(6, 10, Duration::days(1)).await;
    // seed_show's ids: the theater, the movie, then the show.
    let (theater, movie) = (show - 2, show - 1);
    let mut b = Browser::new(&app);

    let mut pages = vec![
        ("home", "/".to_string(), 200),
        ("a theater's listing", format!("/?theater={theater}"), 200),
        ("a movie", format!("/movies/{movie}"), 200),
        ("a show", format!("/shows/{show}"), 200),
        ("the booking look-up", "/bookings".to_string(), 200),
        ("the not-found page", "/no/such/page".to_string(), 404),
        ("a missing movie", "/movies/999999".to_string(), 404),
        ("an error page", "/?date=yesterday".to_string(), 400),
        ("the admin login", "/admin/login".to_string(), 200),
        ("the admin area, logged out", "/admin".to_string(), 401),
    ];
    // A hold and its checkout page, a booking and its look-up.
    let held = b.post_json(&format!("/api/shows/{show}/holds"), &serde_json::json!({"seats": ["A1", "A2"]})).await;
    assert_secured("the JSON answer to a hold", &held);
    assert_eq!(held.status, 201, "{}", held.body);
    let hold_id =
        serde_json::from_str::<serde_json::Value>(&held.body).unwrap()["hold_id"].as_str().unwrap().to_string();
    pages.push(("a checkout page", format!("/holds/{hold_id}"), 200));
    for (what, path, status) in &pages {
        let a = b.get(path).await;
        assert_eq!(a.status, *status, "{what} ({path}): {}", a.body);
        assert_secured(what, &a);
        if a.headers.get("content-type").is_some_and(|c| c.starts_with("text/html")) {
            assert_no_inline_code(what, &a.body);
        }
    }
    let page = b.get(&format!("/shows/{show}")).await;
    let csrf = token(&page.body);
    let confirmed = b
        .post_form(
            &format!("/holds/{hold_id}/confirm"),
            &[("name", "Ann"), ("email", "ann@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_secured("the confirmation page", &confirmed);
    assert_no_inline_code("the confirmation page", &confirmed.body);
    let code_at = confirmed.body.find("data-booking-code=\"").unwrap() + "data-booking-code=\"".len();
    let code = confirmed.body[code_at..code_at + 8].to_string();
    let found =
        b.post_form("/bookings/lookup", &[("code", &code), ("email", "ann@example.com"), ("csrf_token", &csrf)]).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_secured("a booking looked up", &found);
    assert_no_inline_code("a booking looked up", &found.body);
    let refused = b.post_form(&format!("/shows/{show}/hold"), &[("seat", "A1")]).await;
    assert_eq!(refused.status, 403, "a form without its CSRF token: {}", refused.body);
    assert_secured("a refused form", &refused);

    // The JSON API, answers and errors; health; a static file.
    for (what, path, status) in [
        ("the seat map", format!("/api/shows/{show}/seats"), 200),
        ("the cluster view", "/api/cluster".to_string(), 200),
        ("a booking by code", format!("/api/bookings/{code}?email=ann@example.com"), 200),
        ("an API error", "/api/shows/abc/seats".to_string(), 404),
        ("an unknown hold", "/api/holds/nope".to_string(), 404),
        ("health", "/healthz".to_string(), 200),
        ("a script", "/assets/site.js".to_string(), 200),
    ] {
        let a = b.get(&path).await;
        assert_eq!(a.status, status, "{what} ({path}): {}", a.body);
        assert_secured(what, &a);
    }
    let bad = b.post_json(&format!("/api/shows/{show}/holds"), &serde_json::json!({"seats": "A1"})).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_secured("a malformed API request", &bad);

    // The admin area, logged in.
    let login = b.get("/admin/login").await;
    let csrf = token(&login.body);
    let in_ = b.post_form("/admin/login", &[("password", PASSWORD), ("next", "/admin"), ("csrf_token", &csrf)]).await;
    assert_eq!(in_.status, 303, "{}", in_.body);
    assert_secured("the login's redirect", &in_);
    for (what, path) in [
        ("the admin dashboard", "/admin".to_string()),
        ("the admin's shows", "/admin/shows".to_string()),
        ("the admin's show", format!("/admin/shows/{show}")),
        ("the admin's import list", "/admin/api/imports".to_string()),
    ] {
        let a = b.get(&path).await;
        assert_eq!(a.status, 200, "{what}: {}", a.body);
        assert_secured(what, &a);
        if a.headers.get("content-type").is_some_and(|c| c.starts_with("text/html")) {
            assert_no_inline_code(what, &a.body);
        }
    }
}

#[actix_web::test]
async fn error_pages_show_the_input_they_refuse_escaped() {
    let app = spawn_app_with(|_| {}).await;
    let mut b = Browser::new(&app);
    let attack = "<script>alert(1)</script>";
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("date", attack).finish();
    let page = b.get(&format!("/?{query}")).await;
    assert_eq!(page.status, 400);
    assert_secured("the error page", &page);
    assert!(!page.body.contains(attack), "the input must not come back as markup: {}", page.body);
    // Quoted (cut short), escaped.
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;&#x2F;sc"), "{}", page.body);
    for path in ["/movies/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/shows/%3Cscript%3Ealert(1)%3C%2Fscript%3E"] {
        let page = b.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(!page.body.contains(attack), "{path}: {}", page.body);
        assert_no_inline_code(path, &page.body);
    }
    // The JSON API's errors are JSON, which a browser does not sniff into a page.
    let api = b.get("/api/bookings/%3Cscript%3E?email=a@b.c").await;
    assert!(api.headers["content-type"].starts_with("application/json"), "{:?}", api.headers);
    assert_eq!(api.headers["x-content-type-options"], "nosniff");
}
