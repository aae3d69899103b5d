//! `normalize_path` never panics; what it accepts it normalises to a fixed point that
//! starts with `/`, holds no `//`, no trailing `/` (except the root) and no `.`/`..`
//! segment.
#![no_main]

use coffer_store::normalize_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(normalized) = normalize_path(input) else {
        return;
    };
    assert!(normalized.starts_with('/'), "{normalized:?} from {input:?}");
    assert!(!normalized.contains("//"), "{normalized:?} from {input:?}");
    assert!(
        normalized == "/" || !normalized.ends_with('/'),
        "{normalized:?} from {input:?}"
    );
    assert!(
        !normalized.chars().any(char::is_control),
        "{normalized:?} from {input:?}"
    );
    assert!(
        normalized
            .split('/')
            .skip(1)
            .all(|segment| segment != "." && segment != ".."),
        "{normalized:?} from {input:?}"
    );
    let again = normalize_path(&normalized)
        .unwrap_or_else(|e| panic!("normalised {normalized:?} refused again: {e}"));
    assert_eq!(again, normalized, "normalising twice changes {input:?}");
});
