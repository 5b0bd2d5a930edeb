//! A browser for tests: keeps the cookies it is given (the CSRF cookie, an admin session),
//! posts forms with the CSRF token of the last page, and can claim to come through a proxy
//! from a given client address (`X-Forwarded-For`).
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Browser {
    pub base: String,
    client: awc::Client,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page that carried a form.
    pub csrf: String,
    forwarded_for: Option<String>,
}

/// An answer: status, `Retry-After`, `Location` and body.
pub struct Page {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Browser {
    pub fn new(base: impl Into<String>) -> Self {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).disable_redirects().finish();
        Self { base: base.into(), client, cookies: BTreeMap::new(), csrf: String::new(), forwarded_for: None }
    }

    /// Every request says it was forwarded for `addr` (as nginx would say).
    pub fn via_proxy_for(mut self, addr: &str) -> Self {
        self.forwarded_for = Some(addr.to_string());
        self
    }

    /// A browser logged in to the admin area with `password` (panics if refused).
    pub async fn logged_in(base: impl Into<String>, password: &str) -> Self {
        let mut b = Self::new(base);
        let p = b.log_in(password).await;
        assert_eq!(p.status, 303, "logged in: {}", p.body);
        b
    }

    /// Opens the login page, then posts the password.
    pub async fn log_in(&mut self, password: &str) -> Page {
        self.get("/admin/login").await;
        self.post("/admin/login", &[("password", password), ("next", "/admin")]).await
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn request(&self, method: awc::http::Method, path: &str) -> awc::ClientRequest {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        req = req.insert_header(("Cookie", self.cookie_header()));
        if let Some(addr) = &self.forwarded_for {
            req = req.insert_header(("X-Forwarded-For", addr.as_str()));
        }
        req
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let res = self.request(awc::http::Method::GET, path).send().await.expect("request");
        self.read(res).await
    }

    /// Posts a form with the CSRF token the last page carried.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut pairs = form.to_vec();
        pairs.push(("csrf_token", &csrf));
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let req = self.request(awc::http::Method::POST, path).content_type("application/x-www-form-urlencoded");
        let res = req.send_body(body).await.expect("request");
        self.read(res).await
    }

    /// Posts JSON with the CSRF token of the last page in `X-CSRF-Token` (as admin scripts do).
    pub async fn post_json_csrf(&mut self, path: &str, body: &Value) -> Page {
        let req = self.request(awc::http::Method::POST, path).insert_header(("X-CSRF-Token", self.csrf.clone()));
        let res = req.send_json(body).await.expect("request");
        self.read(res).await
    }

    pub async fn post_json(&mut self, path: &str, body: &Value) -> Page {
        let res = self.request(awc::http::Method::POST, path).send_json(body).await.expect("request");
        self.read(res).await
    }

    async fn read(
        &mut self,
        mut res: awc::ClientResponse<
            impl futures::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>> + Unpin,
        >,
    ) -> Page {
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || attrs.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let header = |name| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = header("retry-after").and_then(|v| v.parse().ok());
        let location = header("location");
        let body = String::from_utf8_lossy(&res.body().limit(4 << 20).await.expect("body")).into_owned();
        let marker = "name=\"csrf_token\" value=\"";
        if let Some(at) = body.find(marker) {
            self.csrf = body[at + marker.len()..at + marker.len() + 32].to_string();
        }
        Page { status: res.status().as_u16(), retry_after, location, body }
    }
}
