//! Strategies shared by the property tests of the parsers at the edge (test builds only):
//! hostile text and hostile bytes. Each parser's properties sit beside it.
use proptest::prelude::*;

/// Any text: every Unicode scalar value can turn up (control characters, combining marks,
/// right-to-left marks, the characters proptest favours such as `\0`, `\u{FEFF}`, `%`),
/// short most of the time and sometimes thousands of characters long.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::collection::vec(any::<char>(), 0..40),
        1 => prop::collection::vec(any::<char>(), 0..5_000),
    ]
    .prop_map(String::from_iter)
}

/// Any bytes, mostly not UTF-8; sometimes several kilobytes.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..8_192),
    ]
}
