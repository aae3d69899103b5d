//! Cursors of paginated secret listings: the last (path, key) of a page, bound to the
//! filters the page was made with, so that a cursor passed with other filters is
//! refused instead of silently skipping or repeating secrets.

use coffer_store::ListPosition;
use sha2::{Digest, Sha256};

const FINGERPRINT_LEN: usize = 8;

/// What a listing cursor is bound to: every query parameter that changes the set.
#[derive(Debug)]
pub struct ListScope<'a> {
    /// The environment listed.
    pub env_id: uuid::Uuid,
    /// `path`, `key`, `tags` as given.
    pub filters: [Option<&'a str>; 3],
}

impl ListScope<'_> {
    fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        let mut hash = Sha256::new();
        hash.update(self.env_id.as_bytes());
        for filter in self.filters {
            // Length-prefixed, so that no two different filter sets hash alike.
            let text = filter.unwrap_or("");
            hash.update([u8::from(filter.is_some())]);
            hash.update((text.len() as u64).to_be_bytes());
            hash.update(text.as_bytes());
        }
        let digest = hash.finalize();
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        out
    }

    /// The cursor that continues after `position`.
    pub fn cursor(&self, position: &ListPosition) -> String {
        format!(
            "{}.{}.{}",
            hex::encode(self.fingerprint()),
            hex::encode(&position.path),
            hex::encode(&position.key)
        )
    }

    /// The position a cursor continues from; `None` when it is malformed or was made
    /// for other filters.
    pub fn position(&self, cursor: &str) -> Option<ListPosition> {
        let mut parts = cursor.split('.');
        let (Some(fingerprint), Some(path), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if hex::decode(fingerprint).ok()? != self.fingerprint() {
            return None;
        }
        let text = |part: &str| String::from_utf8(hex::decode(part).ok()?).ok();
        Some(ListPosition {
            path: text(path)?,
            key: text(key)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_only_under_its_own_filters() {
        let env_id = uuid::Uuid::new_v4();
        let scope = ListScope {
            env_id,
            filters: [Some("/db"), None, Some("a,b")],
        };
        let at = ListPosition {
            path: "/db".into(),
            key: "URL.X".into(),
        };
        let cursor = scope.cursor(&at);
        assert_eq!(scope.position(&cursor), Some(at));
        for other in [
            ListScope {
                env_id,
                filters: [Some("/db"), None, Some("a")],
            },
            ListScope {
                env_id,
                filters: [Some("/db"), Some(""), Some("a,b")],
            },
            ListScope {
                env_id: uuid::Uuid::new_v4(),
                filters: [Some("/db"), None, Some("a,b")],
            },
        ] {
            assert_eq!(other.position(&cursor), None);
        }
        for malformed in ["", "abc", "zz.00.00", &format!("{cursor}.00"), &cursor[1..]] {
            assert_eq!(scope.position(malformed), None, "{malformed}");
        }
    }
}
