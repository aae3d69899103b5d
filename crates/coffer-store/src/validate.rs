//! The data rules of the API: key grammar, path normalisation, size limits.

use crate::error::StoreError;

/// Size and count limits.
pub mod limits {
    /// Entries in one batch.
    pub const MAX_BATCH: usize = 1000;
    /// Bytes of a key.
    pub const MAX_KEY_BYTES: usize = 256;
    /// Bytes of a path.
    pub const MAX_PATH_BYTES: usize = 1024;
    /// Bytes of a value.
    pub const MAX_VALUE_BYTES: usize = 64 * 1024;
    /// Bytes of a comment.
    pub const MAX_COMMENT_BYTES: usize = 4 * 1024;
    /// Tags on one secret.
    pub const MAX_TAGS: usize = 32;
    /// Characters of a tag.
    pub const MAX_TAG_CHARS: usize = 64;
    /// Characters of an app name.
    pub const MAX_APP_NAME_CHARS: usize = 64;
    /// Characters of an app description (Phase's limit).
    pub const MAX_APP_DESCRIPTION_CHARS: usize = 10_000;
    /// Characters of an environment name.
    pub const MAX_ENV_NAME_CHARS: usize = 64;
}

use limits::*;

/// Phase's key rule: the key trimmed and upper-cased; any key Phase accepts is accepted
/// (`1PASSWORD_TOKEN`, `MY KEY`), except one that is blank, longer than
/// [`MAX_KEY_BYTES`] or holds a control character.
pub fn normalize_key(key: &str) -> Result<String, StoreError> {
    let trimmed = key.trim();
    if trimmed.is_empty() {
        return Err(StoreError::MissingKey);
    }
    let upper = upper_case_key(trimmed);
    if upper.len() > MAX_KEY_BYTES || upper.chars().any(char::is_control) {
        return Err(StoreError::InvalidKey(key.to_owned()));
    }
    Ok(upper)
}

/// How a key is upper-cased, for storage and for the uniqueness digest alike.
pub fn upper_case_key(key: &str) -> String {
    key.to_uppercase()
}

/// Normalises a path: repeated `/` collapse, a leading `/` is added, a trailing `/` is
/// removed, `""` is the root. Segments `.`/`..`, blank segments and control characters
/// are refused.
pub fn normalize_path(path: &str) -> Result<String, StoreError> {
    let invalid = || StoreError::InvalidPath(path.to_owned());
    if path.len() > MAX_PATH_BYTES {
        return Err(StoreError::FieldTooLarge {
            field: "path",
            limit: MAX_PATH_BYTES,
        });
    }
    if path.chars().any(char::is_control) {
        return Err(invalid());
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." || segment.trim().is_empty() {
            return Err(invalid());
        }
        normalized.push('/');
        normalized.push_str(segment);
    }
    if normalized.is_empty() {
        normalized.push('/');
    }
    // The added leading `/` can take a path of exactly the limit over it; the stored
    // (normalised) path is what must fit, so that it is accepted again as given.
    if normalized.len() > MAX_PATH_BYTES {
        return Err(StoreError::FieldTooLarge {
            field: "path",
            limit: MAX_PATH_BYTES,
        });
    }
    Ok(normalized)
}

/// Checks value and comment sizes.
pub fn check_sizes(value: Option<&str>, comment: Option<&str>) -> Result<(), StoreError> {
    if value.is_some_and(|v| v.len() > MAX_VALUE_BYTES) {
        return Err(StoreError::FieldTooLarge {
            field: "value",
            limit: MAX_VALUE_BYTES,
        });
    }
    if comment.is_some_and(|c| c.len() > MAX_COMMENT_BYTES) {
        return Err(StoreError::FieldTooLarge {
            field: "comment",
            limit: MAX_COMMENT_BYTES,
        });
    }
    Ok(())
}

/// Checks tag count and lengths; trims names, drops blank and repeated ones (keeping
/// the first).
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, StoreError> {
    if tags.len() > MAX_TAGS {
        return Err(StoreError::TooManyTags { max: MAX_TAGS });
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        // As Phase: a name is trimmed, and one empty after trimming is skipped.
        let tag = tag.trim();
        if tag.is_empty() {
            continue;
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(StoreError::TagTooLong(
                tag.chars().take(MAX_TAG_CHARS).collect(),
            ));
        }
        if !out.iter().any(|kept| kept == tag) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

/// Whether a display name (apps, tokens) is acceptable: 1–64 characters, no control
/// characters, not starting with whitespace (so it is never blank).
pub fn is_valid_display_name(name: &str) -> bool {
    let starts_visible = name.chars().next().is_some_and(|c| !c.is_whitespace());
    starts_visible
        && name.chars().count() <= MAX_APP_NAME_CHARS
        && !name.chars().any(char::is_control)
}

/// Checks an app name (see [`is_valid_display_name`]).
pub fn check_app_name(name: &str) -> Result<String, StoreError> {
    if !is_valid_display_name(name) {
        return Err(StoreError::InvalidAppName(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// Checks an app description: at most [`MAX_APP_DESCRIPTION_CHARS`] characters.
pub fn check_app_description(description: &str) -> Result<(), StoreError> {
    match description.chars().count() > MAX_APP_DESCRIPTION_CHARS {
        true => Err(StoreError::DescriptionTooLong),
        false => Ok(()),
    }
}

/// Checks an environment name against `^[a-zA-Z0-9\-_]{1,64}$`.
pub fn check_env_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ENV_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidEnvironmentName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_upper_cased_and_checked() {
        assert_eq!(normalize_key("db_url").unwrap(), "DB_URL");
        assert_eq!(normalize_key("_a.b-c9").unwrap(), "_A.B-C9");
        // Any key Phase accepts, trimmed and upper-cased.
        for (given, stored) in [
            ("1password_token", "1PASSWORD_TOKEN"),
            ("my key", "MY KEY"),
            ("  padded  ", "PADDED"),
            ("a/b=c", "A/B=C"),
            ("kéy", "KÉY"),
        ] {
            assert_eq!(normalize_key(given).unwrap(), stored, "{given:?}");
        }
        assert!(matches!(normalize_key(""), Err(StoreError::MissingKey)));
        assert!(matches!(normalize_key("   "), Err(StoreError::MissingKey)));
        for bad in ["A\0B", "A\nB", "TAB\tKEY", "\u{7f}"] {
            assert!(
                matches!(normalize_key(bad), Err(StoreError::InvalidKey(k)) if k == bad),
                "{bad:?}"
            );
        }
        assert!(normalize_key(&"K".repeat(256)).is_ok());
        let long = "K".repeat(257);
        assert!(matches!(normalize_key(&long), Err(StoreError::InvalidKey(k)) if k == long));
    }

    #[test]
    fn paths_are_normalised() {
        for (given, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("a", "/a"),
            ("/a/", "/a"),
            ("//a//b///", "/a/b"),
            ("/a.b/c..d", "/a.b/c..d"),
        ] {
            assert_eq!(normalize_path(given).unwrap(), want, "{given:?}");
        }
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in ["/a/../b", "/.", "..", "/a/ /b", "/a\n", "/a\0b", "/a\u{7f}"] {
            assert!(
                matches!(normalize_path(bad), Err(StoreError::InvalidPath(p)) if p == bad),
                "{bad:?}"
            );
        }
        assert!(matches!(
            normalize_path(&"/a".repeat(513)),
            Err(StoreError::FieldTooLarge {
                field: "path",
                limit: 1024
            })
        ));
    }

    #[test]
    fn sizes_are_limited() {
        assert!(check_sizes(Some(&"v".repeat(65536)), Some(&"c".repeat(4096))).is_ok());
        assert!(matches!(
            check_sizes(Some(&"v".repeat(65537)), None),
            Err(StoreError::FieldTooLarge {
                field: "value",
                limit: 65536
            })
        ));
        assert!(matches!(
            check_sizes(None, Some(&"c".repeat(4097))),
            Err(StoreError::FieldTooLarge {
                field: "comment",
                limit: 4096
            })
        ));
    }

    #[test]
    fn tags_are_limited() {
        let long = "t".repeat(70);
        assert!(matches!(normalize_tags(&[long]), Err(StoreError::TagTooLong(t)) if t.len() == 64));
        assert_eq!(
            normalize_tags(&["".into(), "a".into(), "".into()]).unwrap(),
            ["a"]
        );
        let many: Vec<String> = (0..33).map(|i| i.to_string()).collect();
        assert!(matches!(
            normalize_tags(&many),
            Err(StoreError::TooManyTags { max: 32 })
        ));
        assert_eq!(
            normalize_tags(&["a".into(), "b".into(), "a".into()]).unwrap(),
            vec!["a", "b"]
        );
        // Trimmed as Phase trims them: blank is empty, padding makes no other tag.
        assert_eq!(
            normalize_tags(&[" a ".into(), "  ".into(), "a".into(), "\tb".into()]).unwrap(),
            vec!["a", "b"]
        );
        assert!(matches!(
            normalize_tags(&[format!(" {} ", "t".repeat(64))]),
            Ok(tags) if tags == ["t".repeat(64)]
        ));
    }

    #[test]
    fn app_descriptions_are_limited_in_characters() {
        assert!(check_app_description(&"é".repeat(10_000)).is_ok());
        assert!(matches!(
            check_app_description(&"x".repeat(10_001)),
            Err(StoreError::DescriptionTooLong)
        ));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_env_name("Prod_2-eu").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert!(matches!(
                check_env_name(bad),
                Err(StoreError::InvalidEnvironmentName(_))
            ));
        }
        assert_eq!(check_app_name("shop 2 ").unwrap(), "shop 2 ");
        for bad in ["", " shop", "  ", "a\u{7}b", "a\u{85}"] {
            assert!(
                matches!(check_app_name(bad), Err(StoreError::InvalidAppName(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            check_app_name(&"x".repeat(65)),
            Err(StoreError::InvalidAppName(_))
        ));
    }
}
