//! CloudEvents 1.0 for the records, opt-in (`cloudevents` in the configuration), following the
//! CloudEvents Kafka protocol binding.
//!
//! - Binary mode, on Confluent v3 (the one dialect with record headers): the value is the event
//!   as without CloudEvents; the attributes travel as record headers `ce_specversion`, `ce_id`,
//!   `ce_source`, `ce_type`, `ce_time`, `ce_dataschema`, next to the `content-type` header that
//!   v3 records always carry (the binding maps `content-type` to `datacontenttype`).
//! - Structured mode, on v2 and Redpanda (no record headers): the value is the JSON envelope
//!   (`application/cloudevents+json`) with the attributes and the event as `data` (JSON format)
//!   or as `data_base64` of its MessagePack bytes (MessagePack format).
//!
//! The mapping, identical in both modes: `id` is the event id, `source` the configured source,
//! `type` the configured prefix followed by the event type (`adtap.click` by default), `time`
//! the event's `ts` in RFC 3339, UTC, with milliseconds (`2026-11-25T06:30:00.123Z`),
//! `dataschema` the published schema's id ([`crate::schema::SCHEMA_ID`]), `datacontenttype`
//! `application/json` or `application/msgpack`.
//!
//! Layout: [`CloudEventsConfig`] (as written, checked by [`check`]); [`mode`]; the writers
//! [`push_binary_headers`] and [`write_structured`], which [`crate::record`] (the hot path) and
//! [`crate::encode`] (serde's reference path) both call, so the two cannot disagree;
//! [`max_extra_bytes`] for the body bound; [`decode_structured`] for readers. Nothing here
//! runs in the filter unless `cloudevents` is configured.

use crate::config::{ConfigError, Dialect, ValueFormat};
use crate::encode::{decode_value, write_rfc3339_ms, EncodeError};
use crate::event::Event;
use crate::json_text::{write_base64, write_json_str, write_json_str_parts};
use crate::schema::SCHEMA_ID;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;

/// The CloudEvents version written as `specversion`.
pub const SPEC_VERSION: &str = "1.0";

/// Content type of a structured-mode value (v2, Redpanda).
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json";

/// The default `type_prefix`: `type` is `adtap.` and the event type.
pub const DEFAULT_TYPE_PREFIX: &str = "adtap.";

/// Longest `cloudevents.source`, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024;

/// Longest `cloudevents.type_prefix`, in bytes.
pub const MAX_TYPE_PREFIX_BYTES: usize = 128;

/// `cloudevents` in the configuration: `{"source": "//ads.example.com/edge"}`, optionally with
/// a `type_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudEventsConfig {
    /// The `source` attribute: a non-empty URI reference naming this deployment.
    pub source: String,
    /// Prepended to the event type to make the `type` attribute (default `adtap.`).
    #[serde(default = "default_type_prefix")]
    pub type_prefix: String,
}

fn default_type_prefix() -> String {
    DEFAULT_TYPE_PREFIX.to_string()
}

/// How the attributes travel in a dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Record headers (`ce_*`), the value unchanged: Confluent v3.
    Binary,
    /// A JSON envelope as the value: v2 and Redpanda, which have no record headers.
    Structured,
}

/// The mode used in `dialect`.
pub fn mode(dialect: Dialect) -> Mode {
    match dialect {
        Dialect::ConfluentV3 => Mode::Binary,
        Dialect::ConfluentV2 | Dialect::Redpanda => Mode::Structured,
    }
}

/// Bytes a URI reference may not contain unescaped (RFC 3986), beside controls and spaces.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b)
}

/// The problems of `cloudevents`, each with its path (`cloudevents.source`, …).
pub fn check(ce: &CloudEventsConfig) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut push = |path: &str, message: String| {
        errors.push(ConfigError {
            path: path.to_string(),
            message,
        })
    };
    let s = &ce.source;
    if s.is_empty() {
        push(
            "cloudevents.source",
            "must not be empty: CloudEvents requires a source (a URI reference such as `//ads.example.com/edge` or `urn:example:edge-eu-1`)".into(),
        );
    } else if s.len() > MAX_SOURCE_BYTES {
        push(
            "cloudevents.source",
            format!(
                "is {} bytes long, at most {MAX_SOURCE_BYTES} allowed",
                s.len()
            ),
        );
    } else if !s.bytes().all(is_uri_char) {
        push(
            "cloudevents.source",
            "must be a URI reference: printable ASCII without spaces, quotes or any of \\ < > ^ ` { | } (percent-encode them)".into(),
        );
    }
    let p = &ce.type_prefix;
    if p.len() > MAX_TYPE_PREFIX_BYTES {
        push(
            "cloudevents.type_prefix",
            format!(
                "is {} bytes long, at most {MAX_TYPE_PREFIX_BYTES} allowed",
                p.len()
            ),
        );
    } else if !p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        push(
            "cloudevents.type_prefix",
            "may contain only letters, digits, `_`, `.` and `-` (a reverse-DNS prefix such as `com.example.ads.`)".into(),
        );
    }
    errors
}

/// How many headers binary mode writes ([`push_binary_headers`]).
pub const BINARY_HEADERS: usize = 6;

/// Names of the binary-mode headers, in the order written.
const BINARY_HEADER_NAMES: [&str; BINARY_HEADERS] = [
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_dataschema",
];

/// The envelope's text beside the event, the id, the source and the type (for the bound).
const ENVELOPE_FIXED: &str = r#"{"specversion":"1.0","id":"","source":"","type":"","time":"2026-01-01T00:00:00.000Z","dataschema":"urn:adtap:event:v1","datacontenttype":"application/msgpack","data_base64":""}"#;

/// Longest event id text: 16 hex digits, `-`, 16 hex digits.
const MAX_ID_BYTES: usize = 33;

/// The most bytes CloudEvents adds to a record's [`crate::Record::size`] in `dialect`: the
/// `ce_*` headers (binary mode) or the envelope around the event (structured mode; with
/// MessagePack, the event's growth to base64 is the caller's: see
/// [`crate::config::max_body_bytes`]). The event type is at most
/// [`crate::config::MAX_EVENT_TYPE_BYTES`].
pub fn max_extra_bytes(ce: &CloudEventsConfig, dialect: Dialect, _format: ValueFormat) -> usize {
    let ty = ce.type_prefix.len() + crate::config::MAX_EVENT_TYPE_BYTES;
    match mode(dialect) {
        Mode::Binary => {
            let names: usize = BINARY_HEADER_NAMES.iter().map(|n| n.len()).sum();
            let values =
                SPEC_VERSION.len() + MAX_ID_BYTES + ce.source.len() + ty + 24 + SCHEMA_ID.len();
            names + values + BINARY_HEADER_NAMES.len() * crate::event::HEADER_OVERHEAD_BYTES
        }
        // The longer (MessagePack) content type and `data_base64` key; nothing in the
        // attributes needs escaping (the source and prefix are checked, ids are hex).
        Mode::Structured => ENVELOPE_FIXED.len() + MAX_ID_BYTES + ce.source.len() + ty,
    }
}

/// Appends the binary-mode record headers of one event to `out`: `ce_specversion`, `ce_id`,
/// `ce_source`, `ce_type`, `ce_time`, `ce_dataschema`, as (name, value) text. `id` is the
/// event id's text.
pub fn push_binary_headers(
    ce: &CloudEventsConfig,
    id: String,
    event_type: &str,
    ts_ms: u64,
    out: &mut Vec<(String, String)>,
) {
    let mut time = Vec::with_capacity(24);
    write_rfc3339_ms(&mut time, ts_ms);
    let mut ce_type = String::with_capacity(ce.type_prefix.len() + event_type.len());
    ce_type.push_str(&ce.type_prefix);
    ce_type.push_str(event_type);
    out.reserve(BINARY_HEADERS);
    out.push(("ce_specversion".into(), SPEC_VERSION.into()));
    out.push(("ce_id".into(), id));
    out.push(("ce_source".into(), ce.source.clone()));
    out.push(("ce_type".into(), ce_type));
    // Only ASCII digits and punctuation were written.
    out.push((
        "ce_time".into(),
        String::from_utf8(time).unwrap_or_default(),
    ));
    out.push(("ce_dataschema".into(), SCHEMA_ID.into()));
}

/// Writes the structured-mode value of one event into `out` (cleared first): the envelope
/// `{"specversion":"1.0","id":…,"source":…,"type":…,"time":…,"dataschema":…,
/// "datacontenttype":…,"data":…}` around `data`, the event already encoded in `format`: JSON
/// is spliced in as `data`, MessagePack goes as `data_base64`.
///
/// `write_id` writes the id as a JSON string literal (the hot path writes it from its parts).
pub fn write_structured(
    out: &mut Vec<u8>,
    ce: &CloudEventsConfig,
    write_id: impl FnOnce(&mut Vec<u8>),
    event_type: &str,
    ts_ms: u64,
    format: ValueFormat,
    data: &[u8],
) {
    out.clear();
    out.reserve(data.len() / 3 * 4 + 4 + 192 + ce.source.len() + ce.type_prefix.len());
    out.extend_from_slice(b"{\"specversion\":\"1.0\",\"id\":");
    write_id(out);
    out.extend_from_slice(b",\"source\":");
    write_json_str(out, &ce.source);
    out.extend_from_slice(b",\"type\":");
    write_json_str_parts(out, &[&ce.type_prefix, event_type]);
    out.extend_from_slice(b",\"time\":\"");
    write_rfc3339_ms(out, ts_ms);
    out.extend_from_slice(b"\",\"dataschema\":");
    write_json_str(out, SCHEMA_ID);
    match format {
        ValueFormat::Json => {
            out.extend_from_slice(b",\"datacontenttype\":\"application/json\",\"data\":");
            out.extend_from_slice(data);
        }
        ValueFormat::Msgpack => {
            out.extend_from_slice(
                b",\"datacontenttype\":\"application/msgpack\",\"data_base64\":\"",
            );
            write_base64(out, data);
            out.push(b'"');
        }
    }
    out.push(b'}');
}

/// A structured-mode value read back ([`decode_structured`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Structured {
    /// The envelope's attributes as written: every member but `data` / `data_base64`.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// The format of the event inside (from `datacontenttype`).
    pub format: ValueFormat,
    /// The event.
    pub event: Event,
}

/// Reads a structured-mode value (v2, Redpanda with `cloudevents`): the envelope's attributes
/// and the event in `data` (`application/json`) or `data_base64` (`application/msgpack`), for
/// readers of records (the JS package's decoder, the CLI, tests).
pub fn decode_structured(value: &[u8]) -> Result<Structured, EncodeError> {
    let err = |m: String| EncodeError(format!("cloudevents envelope: {m}"));
    let mut attributes: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(value).map_err(|e| err(format!("not a JSON object: {e}")))?;
    if attributes.get("specversion").and_then(|v| v.as_str()) != Some(SPEC_VERSION) {
        return Err(err(format!("`specversion` is not \"{SPEC_VERSION}\"")));
    }
    let content_type = attributes
        .get("datacontenttype")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let (format, event) = match content_type.as_str() {
        "application/json" => {
            let data = attributes
                .remove("data")
                .ok_or_else(|| err("`data` missing".into()))?;
            let event = serde_json::from_value(data)
                .map_err(|e| err(format!("`data` is not an adtap event: {e}")))?;
            (ValueFormat::Json, event)
        }
        "application/msgpack" => {
            let data = attributes
                .remove("data_base64")
                .ok_or_else(|| err("`data_base64` missing".into()))?;
            let bytes = data
                .as_str()
                .and_then(|b| STANDARD.decode(b).ok())
                .ok_or_else(|| err("`data_base64` is not base64".into()))?;
            (
                ValueFormat::Msgpack,
                decode_value(ValueFormat::Msgpack, &bytes)?,
            )
        }
        other => {
            return Err(err(format!(
                "`datacontenttype` {other:?} is neither application/json nor application/msgpack"
            )))
        }
    };
    Ok(Structured {
        attributes,
        format,
        event,
    })
}

#[cfg(test)]
mod tests;
