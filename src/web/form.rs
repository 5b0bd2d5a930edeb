//! A url-encoded form body, with repeated keys kept (`seat=A1&seat=A2`).
use super::error::WebError;

pub struct FormData(Vec<(String, String)>);

impl FormData {
    /// Decodes `application/x-www-form-urlencoded` as browsers send it (`+` is a space,
    /// `%XX` a byte, a `%` not followed by two hex digits is itself). A key or value whose
    /// bytes are not UTF-8 is refused (400) rather than patched with replacement
    /// characters: a name is kept as it was typed or not at all.
    pub fn parse(body: &[u8]) -> Result<Self, WebError> {
        let mut pairs = Vec::new();
        for part in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match part.iter().position(|&b| b == b'=') {
                Some(at) => (&part[..at], &part[at + 1..]),
                None => (part, &[][..]),
            };
            pairs.push((decode(key)?, decode(value)?));
        }
        Ok(Self(pairs))
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

fn decode(raw: &[u8]) -> Result<String, WebError> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let escaped = match raw[i..] {
            [b'%', h, l, ..] => hex(h).zip(hex(l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (raw[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| WebError::BadRequest("the form is not valid UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_browser_encodes() {
        let f = FormData::parse(b"seat=A1&seat=A2&name=Ann+L%C3%A9e&x&=v&&pct=100%&h=%4a%zz%+f").unwrap();
        assert_eq!(f.all("seat"), ["A1", "A2"]);
        assert_eq!(f.get("name"), Some("Ann Lée"));
        assert_eq!(f.get("x"), Some(""));
        assert_eq!(f.get(""), Some("v"));
        assert_eq!(f.get("pct"), Some("100%"));
        assert_eq!(f.get("h"), Some("J%zz% f"), "only two hex digits make an escape");
        assert!(f.required("nope").is_err());
    }

    #[test]
    fn refuses_text_that_is_not_utf8() {
        for body in [&b"name=\xff\xfe"[..], b"name=%FF%FE", b"\xc3=a", b"name=%C3", b"n=%ED%A0%80"] {
            assert!(matches!(FormData::parse(body), Err(WebError::BadRequest(_))), "{body:?}");
        }
    }
}

/// Any bytes give a form or a 400; a form is what `form_urlencoded` (the encoder's own
/// crate) reads from the same bytes, and every list of pairs survives encoding and
/// decoding. Cases per run: `CASES` each.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::{bytes, text};
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    /// Bodies made of the characters that matter to the format.
    fn form_like() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop::sample::select(&[b'a', b'=', b'&', b'+', b'%', b'2', b'F', b'f', b'C', b'3', b'A', 0xff, 0xc3][..]),
            0..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_body_is_the_form_it_encodes_or_bad_request(body in prop_oneof![bytes(), form_like()]) {
            let lossy: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
            match FormData::parse(&body) {
                Ok(form) => prop_assert_eq!(form.0, lossy),
                Err(WebError::BadRequest(_)) => prop_assert!(
                    lossy.iter().any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}')),
                    "refused, yet every byte decodes"
                ),
                Err(other) => prop_assert!(false, "unexpected error {:?}", other),
            }
        }

        #[test]
        fn encoded_pairs_decode_to_themselves(pairs in prop::collection::vec((text(), text()), 0..6)) {
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            let form = FormData::parse(body.as_bytes()).unwrap();
            prop_assert_eq!(form.0, pairs);
        }
    }
}
