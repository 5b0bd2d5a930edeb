//! A url-encoded form body, with repeated keys kept (`seat=A1&seat=A2`).
use super::error::WebError;

pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn required(&self, key: &'static str) -> Result<&str, WebError> {
        self.get(key).ok_or_else(|| WebError::BadRequest(format!("the form is missing '{key}'")))
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
}
