//! `normalize_key` never panics; an accepted key matches `^[A-Za-z_][A-Za-z0-9_.\-]*$`,
//! is at most 256 bytes, is the upper-cased input, and is accepted again unchanged.
#![no_main]

use coffer_store::{limits, normalize_key};
use libfuzzer_sys::fuzz_target;

fn matches_grammar(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match normalize_key(input) {
        Ok(key) => {
            assert!(matches_grammar(&key), "{key:?} from {input:?}");
            assert!(key.len() <= limits::MAX_KEY_BYTES, "{key:?}");
            assert_eq!(key, input.to_ascii_uppercase());
            assert!(!key.bytes().any(|b| b.is_ascii_lowercase()), "{key:?}");
            assert_eq!(normalize_key(&key).ok().as_deref(), Some(key.as_str()));
        }
        Err(_) => assert!(
            !matches_grammar(input) || input.len() > limits::MAX_KEY_BYTES,
            "a key of the grammar was refused: {input:?}"
        ),
    }
});
