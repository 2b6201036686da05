//! A serialized `google.protobuf.Struct`, decoded into the JSON value it stands for.
//!
//! Plain Envoy lets an operator write the plugin configuration as YAML:
//! `configuration: {"@type": type.googleapis.com/google.protobuf.Struct, value: {...}}`. Envoy
//! 1.40 then hands `proxy_on_configure` the Any's payload as is (`MessageUtil::anyToBytes`
//! unwraps only `StringValue` and `BytesValue`), that is the Struct in protobuf's binary wire
//! format; checked in the real Envoy by `host-tests/stack/tests/struct_config.rs`, whose probe
//! module logs the bytes it receives. [`decode`] turns those bytes into the
//! [`serde_json::Value`] the JSON-string form parses to, so one validator serves both.
//!
//! The messages involved (`google/protobuf/struct.proto`):
//!
//! | message     | field                                   | wire type         |
//! |-------------|-----------------------------------------|-------------------|
//! | `Struct`    | 1 `fields`: map entry {1 key, 2 value}  | length-delimited  |
//! | `Value`     | 1 `null_value` (enum)                   | varint            |
//! |             | 2 `number_value` (double)               | 64-bit            |
//! |             | 3 `string_value`                        | length-delimited  |
//! |             | 4 `bool_value`                          | varint            |
//! |             | 5 `struct_value`, 6 `list_value`        | length-delimited  |
//! | `ListValue` | 1 `values` (repeated `Value`)           | length-delimited  |
//!
//! The decoder is strict where protobuf is lenient, because it also decides which form arrived
//! (see [`looks_like_struct`]): an unknown field or wire type, a `Value` with two kinds, a
//! repeated map key, a truncated length, invalid UTF-8 or nesting deeper than [`MAX_DEPTH`] is an
//! error. Struct numbers are doubles: a whole number of magnitude below 2^64 becomes a JSON
//! integer (so `max_events: 500` passes an integer field), anything else stays a float (so
//! `2.5` or `1e30` is refused by the field's own type check, with its path); NaN and infinities
//! have no JSON form and are refused here, with the path.
//!
//! Envoy's own YAML loader writes floats and integers outside `i32` as strings (see
//! [`number_from_text`]); a Struct read from a JSON file or received over xDS has real doubles
//! (the YAML and JSON-file cases measured in Envoy 1.40 by the stack tests; xDS carries protobuf,
//! so doubles). Both reach the same validator.
//!
//! Error messages name the path and the problem, never a value (secrets may be anywhere).

use serde_json::{Map, Number, Value};

/// Nesting (structs and lists) accepted at most; adtap's configuration is 4 levels deep.
pub const MAX_DEPTH: usize = 32;

/// A decoding problem: where (`rules[0].path`, `$` for the document) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructError {
    /// Path of the value being decoded, in `serde_path_to_error`'s syntax.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Whether `bytes` should be read as a serialized `Struct`: its first byte is the tag of
/// `Struct.fields` (field 1, length-delimited: `0x0a`). A JSON document starts with `{` after
/// optional whitespace; `0x0a` is also a newline, so [`crate::config`] falls back to JSON when
/// such a document does not decode as a Struct and its first visible byte is `{`.
pub fn looks_like_struct(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x0a)
}

/// Decodes a serialized `google.protobuf.Struct` into a JSON object.
pub fn decode(bytes: &[u8]) -> Result<Value, StructError> {
    let mut path = Vec::new();
    decode_struct(bytes, &mut path, 0)
}

/// One step of a path.
enum Seg {
    Key(String),
    Index(usize),
}

fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push('$');
    }
    out
}

fn err(path: &[Seg], message: impl Into<String>) -> StructError {
    StructError {
        path: path_text(path),
        message: message.into(),
    }
}

/// Protobuf wire types used here.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// A cursor over one message's bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self, path: &[Seg]) -> Result<u64, StructError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some((&b, tail)) = self.rest.split_first() else {
                return Err(err(path, "not a google.protobuf.Struct: truncated varint"));
            };
            self.rest = tail;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(err(path, "not a google.protobuf.Struct: varint too long"))
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    fn tag(&mut self, path: &[Seg]) -> Result<Option<(u64, u8)>, StructError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let t = self.varint(path)?;
        Ok(Some((t >> 3, (t & 7) as u8)))
    }

    fn bytes(&mut self, path: &[Seg]) -> Result<&'a [u8], StructError> {
        let len = self.varint(path)?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > self.rest.len() {
            return Err(err(
                path,
                "not a google.protobuf.Struct: a length runs past the end",
            ));
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn fixed64(&mut self, path: &[Seg]) -> Result<u64, StructError> {
        if self.rest.len() < 8 {
            return Err(err(path, "not a google.protobuf.Struct: truncated double"));
        }
        let (head, tail) = self.rest.split_at(8);
        self.rest = tail;
        let mut b = [0u8; 8];
        b.copy_from_slice(head);
        Ok(u64::from_le_bytes(b))
    }
}

fn text<'a>(bytes: &'a [u8], path: &[Seg]) -> Result<&'a str, StructError> {
    std::str::from_utf8(bytes)
        .map_err(|_| err(path, "not a google.protobuf.Struct: a string is not UTF-8"))
}

fn unexpected(path: &[Seg], message: &str, field: u64, wire: u8) -> StructError {
    err(
        path,
        format!("not a google.protobuf.Struct: unexpected field {field} (wire type {wire}) in {message}"),
    )
}

fn too_deep(path: &[Seg], depth: usize) -> Result<(), StructError> {
    if depth >= MAX_DEPTH {
        return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(())
}

fn decode_struct(bytes: &[u8], path: &mut Vec<Seg>, depth: usize) -> Result<Value, StructError> {
    too_deep(path, depth)?;
    let mut r = Reader { rest: bytes };
    let mut map = Map::new();
    while let Some((field, wire)) = r.tag(path)? {
        if (field, wire) != (1, LEN) {
            return Err(unexpected(path, "a Struct", field, wire));
        }
        let entry = r.bytes(path)?;
        let (key, value) = decode_entry(entry, path, depth)?;
        if map.contains_key(&key) {
            path.push(Seg::Key(key));
            let e = err(path, "is given twice");
            path.pop();
            return Err(e);
        }
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

/// One `map<string, Value>` entry: `{1: key, 2: value}`. A missing value is `null`.
fn decode_entry(
    bytes: &[u8],
    path: &mut Vec<Seg>,
    depth: usize,
) -> Result<(String, Value), StructError> {
    let mut r = Reader { rest: bytes };
    let (mut key, mut value): (Option<String>, Option<&[u8]>) = (None, None);
    while let Some((field, wire)) = r.tag(path)? {
        match (field, wire) {
            (1, LEN) if key.is_none() => key = Some(text(r.bytes(path)?, path)?.to_owned()),
            (2, LEN) if value.is_none() => value = Some(r.bytes(path)?),
            _ => return Err(unexpected(path, "a Struct entry", field, wire)),
        }
    }
    let key = key.unwrap_or_default();
    path.push(Seg::Key(key));
    let v = match value {
        Some(v) => decode_value(v, path, depth + 1),
        None => Ok(Value::Null),
    };
    let Some(Seg::Key(key)) = path.pop() else {
        return Err(err(path, "internal: path out of step"));
    };
    Ok((key, v?))
}

fn decode_list(bytes: &[u8], path: &mut Vec<Seg>, depth: usize) -> Result<Value, StructError> {
    too_deep(path, depth)?;
    let mut r = Reader { rest: bytes };
    let mut items = Vec::new();
    while let Some((field, wire)) = r.tag(path)? {
        if (field, wire) != (1, LEN) {
            return Err(unexpected(path, "a ListValue", field, wire));
        }
        let item = r.bytes(path)?;
        path.push(Seg::Index(items.len()));
        let v = decode_value(item, path, depth + 1);
        path.pop();
        items.push(v?);
    }
    Ok(Value::Array(items))
}

fn decode_value(bytes: &[u8], path: &mut Vec<Seg>, depth: usize) -> Result<Value, StructError> {
    let mut r = Reader { rest: bytes };
    let mut out: Option<Value> = None;
    while let Some((field, wire)) = r.tag(path)? {
        let v = match (field, wire) {
            (1, VARINT) => {
                r.varint(path)?;
                Value::Null
            }
            (2, FIXED64) => number(f64::from_bits(r.fixed64(path)?), path)?,
            (3, LEN) => Value::String(text(r.bytes(path)?, path)?.to_owned()),
            (4, VARINT) => Value::Bool(r.varint(path)? != 0),
            (5, LEN) => decode_struct(r.bytes(path)?, path, depth)?,
            (6, LEN) => decode_list(r.bytes(path)?, path, depth)?,
            _ => return Err(unexpected(path, "a Value", field, wire)),
        };
        if out.is_some() {
            return Err(err(
                path,
                "not a google.protobuf.Struct: a Value holds two kinds",
            ));
        }
        out = Some(v);
    }
    // A Value with no kind set has no JSON form; `null` is the closest and what Envoy's own
    // JSON conversion of an empty Value prints.
    Ok(out.unwrap_or(Value::Null))
}

/// 2^64 as a double: whole numbers below it in magnitude are exact integers in `u64`/`i64`.
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// A Struct number as JSON: whole numbers in range as integers, others as floats.
fn number(x: f64, path: &[Seg]) -> Result<Value, StructError> {
    json_number(x).ok_or_else(|| {
        err(
            path,
            "must be a finite number (NaN and infinity have no JSON form)",
        )
    })
}

/// A double as the JSON number it stands for: a whole number of magnitude below 2^64 as an
/// integer, any other finite one as a float; `None` for NaN and infinities.
pub fn json_number(x: f64) -> Option<Value> {
    if !x.is_finite() {
        return None;
    }
    if x.fract() == 0.0 {
        // The casts are exact: `x` is whole and within the target's range.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        if (0.0..TWO_POW_64).contains(&x) {
            return Some(Value::Number(Number::from(x as u64)));
        }
        #[allow(clippy::cast_possible_truncation)]
        if (-TWO_POW_63..0.0).contains(&x) {
            return Some(Value::Number(Number::from(x as i64)));
        }
    }
    Number::from_f64(x).map(Value::Number)
}

/// A number Envoy's YAML loader wrote as a string, as a JSON number: `"0.25"`, `"1e3"`,
/// `"4294967296"`. `None` for anything else (`"abc"`, `" 1"`, `"inf"`, `"NaN"`).
///
/// Envoy reads a YAML (or JSON) bootstrap through yaml-cpp into a `Struct`: a plain scalar
/// that is a boolean or an integer within `i32` becomes a `bool_value` or `number_value`;
/// every other plain scalar, floats and larger integers included, becomes a `string_value`
/// (proto3's JSON mapping lets a string stand for a number, and Envoy relies on the message
/// type to convert it back). A Struct that reaches the module has no message type, so
/// [`crate::config`] converts such strings back where its schema expects a number.
pub fn number_from_text(s: &str) -> Option<Value> {
    let looks_numeric = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !looks_numeric {
        return None;
    }
    // YAML allows `+1.5`, `.5` and `1.`, which JSON's grammar does not; serde_json's parser
    // is used (not `f64::from_str`) because the module already carries it.
    let unsigned = s.strip_prefix('+').unwrap_or(s);
    let (sign, digits) = match unsigned.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", unsigned),
    };
    let mut text = String::with_capacity(s.len() + 2);
    text.push_str(sign);
    if digits.starts_with('.') {
        text.push('0');
    }
    text.push_str(digits);
    let text = match text.find(['e', 'E']) {
        Some(i) if text.get(..i).is_some_and(|m| m.ends_with('.')) => {
            format!(
                "{}0{}",
                text.get(..i).unwrap_or_default(),
                text.get(i..).unwrap_or_default()
            )
        }
        None if text.ends_with('.') => format!("{text}0"),
        _ => text,
    };
    serde_json::from_str::<f64>(&text)
        .ok()
        .and_then(json_number)
}
