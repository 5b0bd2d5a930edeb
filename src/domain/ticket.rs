//! The e-ticket: a booking code signed with the ticket key, so the door can tell a real
//! ticket from a forged one without asking anybody. The token is what the QR code holds:
//! `MQT1.<booking code>.<32 hex digits>`, all in QR's alphanumeric alphabet (upper case,
//! digits, `.`), so the code stays small. The digits are the first 128 bits of
//! HMAC-SHA256(key, "marquee ticket v1\0" + code).
use super::{BookingCode, DomainError};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const PREFIX: &str = "MQT1";
const DOMAIN: &[u8] = b"marquee ticket v1\0";
const TAG_BYTES: usize = 16;
/// Longer input is not a ticket; nothing past this is read.
const MAX_TOKEN_LEN: usize = 64;

/// The key that signs and checks e-tickets (TICKET_KEY, else CLUSTER_SECRET).
#[derive(Clone)]
pub struct TicketKey([u8; 32]);

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(<redacted>)")
    }
}

impl TicketKey {
    /// The key from a configured secret: every node with the same secret signs alike.
    pub fn from_secret(secret: &str) -> Self {
        Self(Sha256::new().chain_update(b"marquee ticket key v1\0").chain_update(secret.as_bytes()).finalize().into())
    }

    /// A key of this process alone (no secret configured): its tickets verify only here.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    fn mac(&self, code: &BookingCode) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(code.as_str().as_bytes());
        mac
    }

    /// The signed token of a booking.
    pub fn sign(&self, code: &BookingCode) -> TicketToken {
        let tag = self.mac(code).finalize().into_bytes();
        let hex: String = tag[..TAG_BYTES].iter().map(|b| format!("{b:02X}")).collect();
        TicketToken(format!("{PREFIX}.{code}.{hex}"))
    }

    /// The booking a token names, if this key signed it. A scanner may type it in lower
    /// case or with spaces around it; anything else that is not a token is `BadTicket`,
    /// and a well-formed token with a wrong signature is `ForgedTicket`.
    pub fn verify(&self, raw: &str) -> Result<BookingCode, DomainError> {
        let raw = raw.trim();
        if raw.len() > MAX_TOKEN_LEN {
            return Err(DomainError::BadTicket);
        }
        let upper = raw.to_ascii_uppercase();
        let mut parts = upper.split('.');
        let (Some(PREFIX), Some(code), Some(hex), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DomainError::BadTicket);
        };
        let code = BookingCode::parse(code).map_err(|_| DomainError::BadTicket)?;
        let tag = decode_hex(hex).ok_or(DomainError::BadTicket)?;
        self.mac(&code).verify_truncated_left(&tag).map_err(|_| DomainError::ForgedTicket)?;
        Ok(code)
    }
}

fn decode_hex(hex: &str) -> Option<[u8; TAG_BYTES]> {
    if hex.len() != TAG_BYTES * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; TAG_BYTES];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A signed ticket, as the QR code carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketToken(String);

impl TicketToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token as a QR code, an `<svg>` element to put inline in a page or an email
    /// (dark modules on white, a quiet zone around, medium error correction).
    pub fn qr_svg(&self) -> String {
        use qrcode::render::svg;
        let code = qrcode::QrCode::with_error_correction_level(self.0.as_bytes(), qrcode::EcLevel::M)
            .expect("a token of 46 characters fits a QR code");
        let svg = code
            .render::<svg::Color>()
            .min_dimensions(200, 200)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build();
        // The renderer starts with an XML declaration, which has no place inside HTML.
        match svg.find("<svg") {
            Some(at) => svg[at..].to_string(),
            None => svg,
        }
    }
}

impl std::fmt::Display for TicketToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> BookingCode {
        BookingCode::parse(s).unwrap()
    }

    #[test]
    fn a_signed_ticket_verifies_to_its_booking() {
        let key = TicketKey::from_secret("door secret");
        let t = key.sign(&code("ABCD2345"));
        assert_eq!(t.as_str().len(), 4 + 1 + 8 + 1 + 32);
        assert!(t.as_str().starts_with("MQT1.ABCD2345."));
        assert_eq!(key.verify(t.as_str()), Ok(code("ABCD2345")));
        assert_eq!(key.verify(&format!("  {}\n", t.as_str().to_ascii_lowercase())), Ok(code("ABCD2345")));
    }

    #[test]
    fn the_same_secret_signs_alike_on_every_node() {
        let a = TicketKey::from_secret("s3cret").sign(&code("ZZZZ2222"));
        let b = TicketKey::from_secret("s3cret").sign(&code("ZZZZ2222"));
        assert_eq!(a, b);
        assert_ne!(a, TicketKey::from_secret("other").sign(&code("ZZZZ2222")));
    }

    #[test]
    fn a_ticket_signed_with_another_key_or_for_another_booking_is_forged() {
        let key = TicketKey::from_secret("door secret");
        let other = TicketKey::from_secret("not the door secret").sign(&code("ABCD2345"));
        assert_eq!(key.verify(other.as_str()), Err(DomainError::ForgedTicket));
        let t = key.sign(&code("ABCD2345"));
        let swapped = t.as_str().replace("ABCD2345", "ABCD2346");
        assert_eq!(key.verify(&swapped), Err(DomainError::ForgedTicket));
        let mut flipped = t.as_str().to_string();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(key.verify(&flipped), Err(DomainError::ForgedTicket));
    }

    #[test]
    fn what_is_not_a_token_is_a_bad_ticket() {
        let key = TicketKey::from_secret("k");
        let good = key.sign(&code("ABCD2345")).to_string();
        for bad in [
            "",
            "ABCD2345",
            "MQT1.ABCD2345",
            "MQT2.ABCD2345.00000000000000000000000000000000",
            "MQT1.ABCD0345.00000000000000000000000000000000",
            "MQT1.ABCD2345.0000000000000000000000000000000",
            "MQT1.ABCD2345.000000000000000000000000000000000",
            "MQT1.ABCD2345.0000000000000000000000000000000G",
            "MQT1.ABCD2345.+0000000000000000000000000000000",
            &format!("{good}.x"),
            &format!("{good}{}", "0".repeat(10_000)),
        ] {
            assert_eq!(key.verify(bad), Err(DomainError::BadTicket), "{bad:.60}");
        }
    }

    #[test]
    fn the_qr_code_is_an_inline_svg_element() {
        let svg = TicketKey::from_secret("k").sign(&code("ABCD2345")).qr_svg();
        assert!(svg.starts_with("<svg"), "{svg:.80}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
    }

    #[test]
    fn keys_do_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", TicketKey::from_secret("hunter2")), "TicketKey(<redacted>)");
    }
}

/// Any text given to `verify` is a booking (only for a token this key signed) or an
/// error, never a panic. Cases per run: `CASES`.
#[cfg(test)]
mod properties {
    use super::*;
    use crate::testing::text;
    use proptest::prelude::*;

    pub const CASES: u32 = 1_000;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn any_text_is_a_signed_booking_or_refused(raw in prop_oneof![text(), "MQT1\\.[2-9A-Z]{8}\\.[0-9A-F]{32}"]) {
            let key = TicketKey::from_secret("prop");
            if let Ok(code) = key.verify(&raw) {
                prop_assert_eq!(key.sign(&code).to_string(), raw.trim().to_ascii_uppercase());
            }
        }

        #[test]
        fn every_booking_code_signs_to_a_token_that_verifies(c in "[2-9A-HJKMNP-TW-Z]{8}") {
            let key = TicketKey::from_secret("prop");
            let code = BookingCode::parse(&c).unwrap();
            let token = key.sign(&code);
            prop_assert_eq!(key.verify(token.as_str()), Ok(code.clone()));
            prop_assert_eq!(TicketKey::from_secret("other").verify(token.as_str()), Err(DomainError::ForgedTicket));
        }
    }
}
