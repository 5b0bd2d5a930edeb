//! Strategies shared by the property tests of the parsers at the edge (test builds only):
//! hostile text, hostile bytes and arbitrary JSON. Each parser's properties sit beside it.
use proptest::prelude::*;
use serde_json::Value;

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

/// A JSON number of any kind: small, huge, negative, fractional.
pub fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..700).prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("JSON has no NaN or infinity", |f| serde_json::Number::from_f64(f).map(Value::Number)),
    ]
}

/// Any JSON value, nested a few levels, whose object keys are often one of `keys` (the
/// names the parser under test looks for, so the values behind them get tried too).
pub fn json_with_keys(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        text().prop_map(Value::String),
    ];
    let key = prop_oneof![3 => prop::sample::select(keys).prop_map(str::to_string), 1 => text()];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Any JSON value, nested a few levels.
pub fn json() -> impl Strategy<Value = Value> {
    json_with_keys(&["", "a", "data", "id"])
}

/// Bytes that are almost JSON: `value` printed, then cut short, or with one byte changed.
pub fn broken_json(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    (value, any::<prop::sample::Index>(), any::<u8>(), any::<bool>()).prop_map(|(v, at, byte, cut)| {
        let mut b = v.to_string().into_bytes();
        let i = at.index(b.len());
        if cut {
            b.truncate(i);
        } else {
            b[i] = byte;
        }
        b
    })
}

/// Values that JSON parsers often get wrong.
fn awkward_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Array(vec![])),
        Just(Value::Object(Default::default())),
        Just(Value::String(String::new())),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(1e308)),
        Just(Value::from(-0.5)),
        json(),
    ]
}

/// `original` with one to four changes, each at a node picked at random (the whole value,
/// a field, an element, at any depth): the node dropped (removed from its object or array)
/// or replaced by an awkward value (null, empty, huge, negative, fractional, anything).
pub fn mutations_of(original: Value) -> impl Strategy<Value = Value> {
    let change = (any::<prop::sample::Index>(), prop::option::weighted(0.6, awkward_value()));
    prop::collection::vec(change, 1..5).prop_map(move |changes| {
        let mut v = original.clone();
        for (at, replacement) in changes {
            let mut k = at.index(nodes(&v));
            if k == 0 {
                v = replacement.unwrap_or(Value::Null);
            } else {
                k -= 1;
                change_child(&mut v, &mut k, &replacement);
            }
        }
        v
    })
}

fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(nodes).sum(),
        Value::Object(o) => o.values().map(nodes).sum(),
        _ => 0,
    }
}

/// Changes the `k`-th descendant of `v` (pre-order, counted from 0); true once done.
fn change_child(v: &mut Value, k: &mut usize, replacement: &Option<Value>) -> bool {
    match v {
        Value::Array(a) => {
            for i in 0..a.len() {
                if *k == 0 {
                    match replacement {
                        Some(r) => a[i] = r.clone(),
                        None => drop(a.remove(i)),
                    }
                    return true;
                }
                *k -= 1;
                if change_child(&mut a[i], k, replacement) {
                    return true;
                }
            }
            false
        }
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for key in keys {
                if *k == 0 {
                    match replacement {
                        Some(r) => drop(o.insert(key, r.clone())),
                        None => drop(o.remove(&key)),
                    }
                    return true;
                }
                *k -= 1;
                if change_child(o.get_mut(&key).unwrap(), k, replacement) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}
