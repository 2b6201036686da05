//! Record keys: one field (`"key": "query.campaign_id"`) or several joined
//! (`"key": ["query.campaign", "query.creative"]`).
//!
//! A key of one field is that field's value as is. A key of several fields is the compact JSON
//! array of their values, in the order listed (`["c-42","cr-7"]`), with strings escaped as
//! `serde_json` escapes them: unambiguous whatever the values contain (a separator character
//! could occur in a percent-decoded query value), the same bytes for the same values (so the
//! same partition), and read back by any JSON parser.
//!
//! The absent-field rule is the single key's, applied to every part: when any field is absent
//! from the event or empty, the record has no key. A key missing one part would not group the
//! events its full form groups, and an empty key sends every such event to one partition,
//! which having no key avoids.
//!
//! Layout: [`RawKey`] (as written: a string or a list), [`Key`] (validated, the config's
//! form), [`joined`] (the writer both the hot path and serde's reference path use).

use crate::config::KeySource;
use crate::json_text::write_json_str;
use serde::Deserialize;
use std::fmt;

/// Fields a joined key may list at most.
pub const MAX_KEY_FIELDS: usize = 8;

/// A key source as written: one field name, or a list of 2 to [`MAX_KEY_FIELDS`] of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKey {
    /// `"query.campaign_id"`.
    One(String),
    /// `["query.campaign", "query.creative"]`.
    Many(Vec<String>),
}

// Hand-written rather than `#[serde(untagged)]`, whose one message for every mistake ("data
// did not match any variant") does not say what was expected.
impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess, Visitor};

        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = RawKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key source such as \"query.NAME\", or a list of them")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<RawKey, E> {
                Ok(RawKey::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawKey, A::Error> {
                let mut fields = Vec::new();
                while let Some(f) = seq.next_element::<String>()? {
                    // Bounded here so a hostile list is not read whole before validation.
                    if fields.len() == MAX_KEY_FIELDS {
                        return Err(A::Error::custom(format!(
                            "a key lists at most {MAX_KEY_FIELDS} fields"
                        )));
                    }
                    fields.push(f);
                }
                Ok(RawKey::Many(fields))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// A validated record key: where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// One field: the key is its value.
    Field(KeySource),
    /// Two or more fields: the key is the JSON array of their values (see [`joined`]).
    Joined(Vec<KeySource>),
}

/// The key joined from `parts` (the values of the listed fields, in order, `None` when absent):
/// `["a","b"]`, or `None` when any part is absent or empty.
///
/// The parts are walked twice (the rule and the exact length first, so that the key is one
/// allocation of its length, escapes aside), so `parts` is a cheap iterator to clone.
pub fn joined<S, I>(parts: I) -> Option<String>
where
    S: AsRef<str>,
    I: IntoIterator<Item = Option<S>>,
    I::IntoIter: Clone,
{
    let parts = parts.into_iter();
    let mut len = 1;
    for part in parts.clone() {
        let part = part.filter(|p| !p.as_ref().is_empty())?;
        len += part.as_ref().len() + 3;
    }
    let mut out = Vec::with_capacity(len);
    out.push(b'[');
    for (i, part) in parts.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(&mut out, part.as_ref().map_or("", AsRef::as_ref));
    }
    out.push(b']');
    // Only UTF-8 text and ASCII punctuation were written.
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_is_a_compact_json_array() {
        let key = joined([Some("c-42"), Some("cr-7")]).unwrap();
        assert_eq!(key, r#"["c-42","cr-7"]"#);
        assert_eq!(
            key.capacity(),
            key.len(),
            "one allocation of the exact length"
        );
        // Values a separator would make ambiguous stay apart, escaped as serde_json does.
        let tricky = ["a\",\"b", "\\", "é\n\u{1}", "|"];
        let key = joined(tricky.iter().map(|s| Some(*s))).unwrap();
        assert_eq!(key, serde_json::to_string(&tricky).unwrap());
        let back: Vec<String> = serde_json::from_str(&key).unwrap();
        assert_eq!(back, tricky);
    }

    #[test]
    fn any_absent_or_empty_part_gives_no_key() {
        assert_eq!(joined([Some("a"), None]), None::<String>);
        assert_eq!(joined([None, Some("b")]), None);
        assert_eq!(joined([Some("a"), Some("")]), None);
        assert_eq!(joined([Some(""), Some("b"), Some("c")]), None);
    }

    #[test]
    fn raw_keys_read_a_string_or_a_list() {
        let read = |j: &str| serde_json::from_str::<RawKey>(j).map_err(|e| e.to_string());
        assert_eq!(read(r#""host""#), Ok(RawKey::One("host".into())));
        assert_eq!(
            read(r#"["query.a", "path"]"#),
            Ok(RawKey::Many(vec!["query.a".into(), "path".into()]))
        );
        assert_eq!(
            read("3").unwrap_err(),
            "invalid type: integer `3`, expected a key source such as \"query.NAME\", or a list of them at line 1 column 1"
        );
        assert!(read("[1]")
            .unwrap_err()
            .starts_with("invalid type: integer `1`, expected a string"));
        let nine = serde_json::to_string(&vec!["host"; 9]).unwrap();
        assert!(read(&nine)
            .unwrap_err()
            .starts_with("a key lists at most 8 fields"));
    }
}
