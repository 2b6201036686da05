//! serde helpers for how a configuration value must be written: [`Obj`] (a struct only from
//! an object, never from an array) and [`one_of`] (a choice written as an object with exactly
//! one key), each with the message an operator needs when it is written otherwise.

use serde::Deserialize;
use std::fmt;

/// A choice written as an object with exactly one key, one of [`OneOf::KINDS`] (the
/// `{"exact": …}` / `{"basic": …}` choices).
pub(super) trait OneOf: Sized {
    /// The keys, one of which must be the object's only key.
    const KINDS: &'static [&'static str];
    /// Reads the value of `kind` (one of [`OneOf::KINDS`]) from `map`.
    fn read_kind<'de, A: serde::de::MapAccess<'de>>(
        kind: &str,
        map: &mut A,
    ) -> Result<Self, A::Error>;
}

/// Reads a [`OneOf`] choice.
///
/// serde's derived enums misdescribe the other cases (`expected value at line 1 column 115`
/// for two kinds or an unknown one); here an unknown kind is ``unknown variant `x`, expected
/// one of …``, and a second key is `exactly one of "exact", "prefix" expected, found "exact",
/// "prefix"`. The first kind's value is read before a second key is seen, so a bad value there
/// is reported first.
pub(super) fn one_of<'de, D: serde::Deserializer<'de>, T: OneOf>(d: D) -> Result<T, D::Error> {
    use serde::de::{Error, IgnoredAny, MapAccess, Visitor};

    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: OneOf> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "an object with exactly one of {}", quoted(T::KINDS))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let exactly = format!("exactly one of {} expected", quoted(T::KINDS));
            let Some(kind) = map.next_key::<String>()? else {
                return Err(A::Error::custom(format!("{exactly}, found none")));
            };
            if !T::KINDS.contains(&kind.as_str()) {
                return Err(A::Error::unknown_variant(&kind, T::KINDS));
            }
            let v = T::read_kind(&kind, &mut map)?;
            let mut found = vec![kind];
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                found.push(k);
            }
            if found.len() > 1 {
                let found: Vec<&str> = found.iter().map(String::as_str).collect();
                return Err(A::Error::custom(format!(
                    "{exactly}, found {}",
                    quoted(&found)
                )));
            }
            Ok(v)
        }
    }
    d.deserialize_map(V(std::marker::PhantomData))
}

/// `"a", "b", "c"`.
fn quoted(names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    list.join(", ")
}

/// A struct read only from an object. serde's derive also reads a struct from an array, by
/// position (`"batch": [10, 2048, 100]`); an operator who writes that almost certainly meant
/// something else, so it is refused with `invalid type: sequence, expected an object`.
pub(super) struct Obj<T>(pub(super) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{MapAccess, Visitor};
        struct ObjVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(ObjVisitor(std::marker::PhantomData))
    }
}

/// `deserialize_with` for a struct field that must be an object ([`Obj`]).
pub(super) fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Obj::<T>::deserialize(d).map(|o| o.0)
}
