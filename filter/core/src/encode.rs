//! Encoders: record values (JSON / MessagePack), record keys, and the HTTP request for one batch
//! in each REST dialect (Confluent v2 json/binary, Confluent v3 concatenated records, Redpanda).
//!
//! Layout:
//! - [`encode_value`] / [`decode_value`]: an [`Event`] as a record value and back. MessagePack
//!   uses named fields, so every decoder sees a map with the same keys as the JSON object.
//! - [`record_key`] and [`to_record`]: the per-event work, done once when the event is finished
//!   (the key, the CloudEvents form when configured).
//! - [`build_request`]: the per-batch work. Bodies are written straight into one `Vec<u8>` sized
//!   up front; record values are already encoded, so JSON values are spliced in as raw bytes
//!   and MessagePack values are base64-encoded in place. No `serde_json::Value` is built.
//!
//! Wire shapes (Confluent REST Proxy's API reference for v2, which Redpanda's HTTP Proxy serves
//! a subset of; for v3 the `ProduceRequest` schema of confluentinc/kafka-rest's
//! `api/v3/openapi.yaml`):
//!
//! | dialect              | format  | content-type                          | record                                              |
//! |----------------------|---------|---------------------------------------|-----------------------------------------------------|
//! | v2, redpanda         | json    | `application/vnd.kafka.json.v2+json`   | `{"key":"k","value":<json>}` in `{"records":[…]}`   |
//! | v2, redpanda         | msgpack | `application/vnd.kafka.binary.v2+json` | `{"key":"<b64>","value":"<b64>"}` in `{"records":[…]}` |
//! | v3                   | json    | `application/json`                    | `{"headers":[…],"key":{"type":"STRING",…},"value":{"type":"JSON","data":<json>},"timestamp":…}` |
//! | v3                   | msgpack | `application/json`                    | same, with `"value":{"type":"BINARY","data":"<b64>"}` |
//!
//! v3 bodies are concatenated JSON objects, one per record, separated by a single `\n`. The
//! OpenAPI says "simply concatenate the records"; the server reads them as a stream of JSON
//! values (Jackson's `MappingIterator`), which skips whitespace between values, and the newline
//! keeps bodies readable in captures and compatible with line-oriented tools.

use crate::cloudevents::{self, Mode};
use crate::config::{AuthConfig, Config, Dialect, KeySource, ValueFormat};
use crate::event::{Event, Record, SCHEMA_VERSION};
use crate::json_text::{b64_len, write_base64, write_json_str};
use crate::key::{joined, Key};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;

/// Why an event could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An HTTP request to the REST proxy, ready for `dispatch_http_call`.
///
/// Its `Debug` output shows header values only for the headers this module writes that carry
/// no secret (`:method`, `:path`, `:authority`, `content-type`, `accept`); every other header
/// (the auth header, whatever its name) prints as `<redacted>`, and the body as its length.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// All headers including `:method`, `:path`, `:authority`, content type, accept and auth.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A header's value, for tests and logs.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Headers whose values are safe to print.
const PRINTABLE_HEADERS: [&str; 5] = [":method", ":path", ":authority", "content-type", "accept"];

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_list();
                for (name, value) in self.0 {
                    if PRINTABLE_HEADERS.contains(&name.as_str()) {
                        list.entry(&(name, value));
                    } else {
                        list.entry(&(name, "<redacted>"));
                    }
                }
                list.finish()
            }
        }
        f.debug_struct("HttpRequest")
            .field("headers", &Headers(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Encodes an event as a record value.
pub fn encode_value(format: ValueFormat, event: &Event) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(estimate_event_len(event));
    encode_value_into(format, event, &mut out)?;
    Ok(out)
}

/// Encodes an event into `out` (cleared first). A caller that encodes many events keeps one
/// `out` as scratch space: it stops growing after the first few events, and copying the result
/// out gives each record a value of exactly its length (buffer bytes are then real bytes).
pub fn encode_value_into(
    format: ValueFormat,
    event: &Event,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.clear();
    match format {
        ValueFormat::Json => serde_json::to_writer(&mut *out, event)
            .map_err(|e| EncodeError(format!("json encoding failed: {e}"))),
        ValueFormat::Msgpack => {
            let mut ser = rmp_serde::Serializer::new(&mut *out).with_struct_map();
            serde::Serialize::serialize(event, &mut ser)
                .map_err(|e| EncodeError(format!("msgpack encoding failed: {e}")))
        }
    }
}

/// Decodes a record value back into an event (downstream readers, JS `decodeRecord`, tests).
pub fn decode_value(format: ValueFormat, bytes: &[u8]) -> Result<Event, EncodeError> {
    match format {
        ValueFormat::Json => serde_json::from_slice(bytes)
            .map_err(|e| EncodeError(format!("json decoding failed: {e}"))),
        ValueFormat::Msgpack => rmp_serde::from_slice(bytes)
            .map_err(|e| EncodeError(format!("msgpack decoding failed: {e}"))),
    }
}

/// A generous guess of an event's encoded size, so encoding rarely reallocates: the variable
/// strings plus room for field names, numbers and punctuation.
fn estimate_event_len(e: &Event) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let pairs =
        |p: &[(String, String)]| p.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>();
    192 + e.id.len()
        + e.event_type.len()
        + e.method.len()
        + e.host.len()
        + e.path.len()
        + pairs(&e.query)
        + pairs(&e.headers)
        + opt(&e.request_id)
        + opt(&e.user_agent)
        + opt(&e.referer)
        + opt(&e.client_ip)
        + opt(&e.route)
        + opt(&e.upstream)
        + opt(&e.body)
}

/// The record key for an event, or `None` when a source field is absent or empty (the rule
/// [`crate::record::write`] follows; tests hold the two to the same keys). A key of several
/// fields is joined as [`crate::key::joined`] joins it.
pub fn record_key(key: &Key, event: &Event) -> Option<String> {
    match key {
        Key::Field(source) => field_key(source, event),
        Key::Joined(parts) => joined(parts.iter().map(|k| field_key(k, event))),
    }
}

/// The value of one key field in an event, or `None` when it is absent or empty.
pub fn field_key(source: &KeySource, event: &Event) -> Option<String> {
    let pair = |pairs: &[(String, String)], name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match source {
        KeySource::Query(name) => pair(&event.query, name),
        KeySource::Header(name) => pair(&event.headers, name),
        KeySource::ClientIp => event.client_ip.clone(),
        KeySource::RequestId => event.request_id.clone(),
        KeySource::Host => Some(event.host.clone()),
        KeySource::Path => Some(event.path.clone()),
        KeySource::EventType => Some(event.event_type.clone()),
    }
    .filter(|k| !k.is_empty())
}

/// Encodes a finished event into a [`Record`] for the given rule's topic and key, with its
/// CloudEvents form when `cloudevents` is configured: the `ce_*` headers in
/// [`Record::headers`] (v3) or the structured envelope as the value (v2, Redpanda).
///
/// `record_headers` come from the request, which an event does not keep: this path adds none
/// ([`crate::record::write`], the filter's path, does).
pub fn to_record(cfg: &Config, rule: usize, event: &Event) -> Result<Record, EncodeError> {
    to_record_with(cfg, rule, event, &mut Vec::new())
}

/// [`to_record`] encoding through a caller-kept scratch buffer (see [`encode_value_into`]):
/// the hot path's form, one exact-size allocation per value.
pub fn to_record_with(
    cfg: &Config,
    rule: usize,
    event: &Event,
    scratch: &mut Vec<u8>,
) -> Result<Record, EncodeError> {
    let r = cfg
        .rules
        .get(rule)
        .ok_or_else(|| EncodeError(format!("no rule #{rule}")))?;
    encode_value_into(cfg.format, event, scratch)?;
    let mut headers = Vec::new();
    let value = match &cfg.cloudevents {
        None => scratch.as_slice().to_vec(),
        Some(ce) => match cloudevents::mode(cfg.dialect) {
            Mode::Binary => {
                let (id, ty) = (event.id.clone(), &event.event_type);
                cloudevents::push_binary_headers(ce, id, ty, event.ts, &mut headers);
                scratch.as_slice().to_vec()
            }
            Mode::Structured => {
                let mut envelope = Vec::new();
                let write_id = |o: &mut Vec<u8>| write_json_str(o, &event.id);
                cloudevents::write_structured(
                    &mut envelope,
                    ce,
                    write_id,
                    &event.event_type,
                    event.ts,
                    cfg.format,
                    scratch,
                );
                envelope
            }
        },
    };
    Ok(Record {
        topic: r.topic,
        key: r.key.as_ref().and_then(|k| record_key(k, event)),
        value,
        headers,
        ts_ms: event.ts,
    })
}

/// Builds the HTTP request that ships `records` (all of one topic) in the configured dialect.
///
/// An out-of-range `topic` (not produced by a validated config) gives an empty topic name in
/// the path, which the proxy answers with 404: never a panic.
pub fn build_request<'a>(
    cfg: &Config,
    topic: usize,
    records: impl Iterator<Item = &'a Record>,
) -> HttpRequest {
    // Collecting the references first lets the body be sized once; it is n pointers.
    let records: Vec<&Record> = records.collect();
    let topic_name = cfg.topics.get(topic).map_or("", String::as_str);
    let binary = cfg.format == ValueFormat::Msgpack;

    let (path, content_type, accept, body) = match cfg.dialect {
        Dialect::ConfluentV2 | Dialect::Redpanda => {
            let path = format!("{}/topics/{}", cfg.path_prefix, topic_name);
            let content_type = if binary {
                "application/vnd.kafka.binary.v2+json"
            } else {
                "application/vnd.kafka.json.v2+json"
            };
            (
                path,
                content_type,
                "application/vnd.kafka.v2+json",
                v2_body(&records, binary),
            )
        }
        Dialect::ConfluentV3 => {
            // Validation requires `cluster_id` for v3; an empty segment would be answered 404.
            let cluster_id = cfg.cluster_id.as_deref().unwrap_or_default();
            let path = format!(
                "{}/v3/clusters/{}/topics/{}/records",
                cfg.path_prefix, cluster_id, topic_name
            );
            (
                path,
                "application/json",
                "application/json",
                v3_body(&records, binary),
            )
        }
    };

    let mut headers = Vec::with_capacity(6);
    headers.push((":method".to_string(), "POST".to_string()));
    headers.push((":path".to_string(), path));
    headers.push((":authority".to_string(), cfg.authority.clone()));
    headers.push(("content-type".to_string(), content_type.to_string()));
    headers.push(("accept".to_string(), accept.to_string()));
    if let Some(auth) = &cfg.auth {
        headers.push(auth_header(auth));
    }
    HttpRequest { headers, body }
}

/// The auth header for `auth`: name (lower case) and value.
fn auth_header(auth: &AuthConfig) -> (String, String) {
    match auth {
        AuthConfig::Basic { username, password } => {
            let mut value = String::from("Basic ");
            STANDARD.encode_string(format!("{username}:{password}"), &mut value);
            ("authorization".to_string(), value)
        }
        AuthConfig::Bearer(token) => ("authorization".to_string(), format!("Bearer {token}")),
        AuthConfig::Header { name, value } => (name.to_ascii_lowercase(), value.clone()),
    }
}

/// Bytes of a JSON string literal for `s`, at worst (every byte escaped as `\u00XX`) it is
/// 6× longer; keys are short, so the common case (no escapes) plus slack is the estimate.
fn json_str_estimate(s: &str) -> usize {
    s.len() + s.len() / 8 + 2
}

/// `{"records":[{"key":…,"value":…},…]}` for v2 and Redpanda.
fn v2_body(records: &[&Record], binary: bool) -> Vec<u8> {
    let cap = 14
        + records
            .iter()
            .map(|r| {
                let value = if binary {
                    b64_len(r.value.len()) + 2
                } else {
                    r.value.len()
                };
                let key = r.key.as_ref().map_or(0, |k| {
                    8 + if binary {
                        b64_len(k.len()) + 2
                    } else {
                        json_str_estimate(k)
                    }
                });
                value + key + 12
            })
            .sum::<usize>();
    let mut out = Vec::with_capacity(cap);
    out.extend_from_slice(b"{\"records\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        if let Some(key) = &r.key {
            out.extend_from_slice(b"\"key\":");
            if binary {
                write_b64_str(&mut out, key.as_bytes());
            } else {
                write_json_str(&mut out, key);
            }
            out.push(b',');
        }
        out.extend_from_slice(b"\"value\":");
        if binary {
            write_b64_str(&mut out, &r.value);
        } else {
            out.extend_from_slice(&r.value);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// Base64 of the `content-type` record header values, and of the schema version.
const CT_JSON_B64: &str = "YXBwbGljYXRpb24vanNvbg=="; // application/json
const CT_MSGPACK_B64: &str = "YXBwbGljYXRpb24vbXNncGFjaw=="; // application/msgpack

/// Writes the standard padded base64 of `input` as a JSON string literal (base64 needs no
/// escaping).
fn write_b64_str(out: &mut Vec<u8>, input: &[u8]) {
    out.push(b'"');
    write_base64(out, input);
    out.push(b'"');
}

/// Concatenated v3 `ProduceRequest` objects, one per record, separated by `\n`.
fn v3_body(records: &[&Record], binary: bool) -> Vec<u8> {
    // Everything that is the same for every record of the batch is written once here.
    let mut headers = Vec::with_capacity(128);
    headers.extend_from_slice(b"\"headers\":[{\"name\":\"content-type\",\"value\":\"");
    headers.extend_from_slice(if binary { CT_MSGPACK_B64 } else { CT_JSON_B64 }.as_bytes());
    headers.extend_from_slice(b"\"},{\"name\":\"adtap-schema\",\"value\":");
    write_b64_str(&mut headers, SCHEMA_VERSION.to_string().as_bytes());
    headers.push(b'}');

    let cap = records
        .iter()
        .map(|r| {
            let value = if binary {
                b64_len(r.value.len()) + 2
            } else {
                r.value.len()
            };
            let key = r.key.as_ref().map_or(0, |k| 32 + json_str_estimate(k));
            let own_headers = r
                .headers
                .iter()
                .map(|(n, v)| 22 + json_str_estimate(n) + b64_len(v.len()))
                .sum::<usize>();
            headers.len() + own_headers + value + key + 80
        })
        .sum::<usize>();
    let mut out = Vec::with_capacity(cap);
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        out.push(b'{');
        out.extend_from_slice(&headers);
        for (name, value) in &r.headers {
            out.extend_from_slice(b",{\"name\":");
            write_json_str(&mut out, name);
            out.extend_from_slice(b",\"value\":");
            write_b64_str(&mut out, value.as_bytes());
            out.push(b'}');
        }
        out.push(b']');
        if let Some(key) = &r.key {
            out.extend_from_slice(b",\"key\":{\"type\":\"STRING\",\"data\":");
            write_json_str(&mut out, key);
            out.push(b'}');
        }
        if binary {
            out.extend_from_slice(b",\"value\":{\"type\":\"BINARY\",\"data\":");
            write_b64_str(&mut out, &r.value);
        } else {
            out.extend_from_slice(b",\"value\":{\"type\":\"JSON\",\"data\":");
            out.extend_from_slice(&r.value);
        }
        out.extend_from_slice(b"},\"timestamp\":\"");
        write_rfc3339_ms(&mut out, r.ts_ms);
        out.extend_from_slice(b"\"}");
    }
    out
}

/// The latest instant RFC 3339 can write with a four-digit year: 9999-12-31T23:59:59.999Z.
const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// Formats Unix milliseconds as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-11-25T06:30:00.123Z`. Instants past year 9999 are clamped to its last millisecond.
pub fn rfc3339_ms(ts_ms: u64) -> String {
    let mut out = Vec::with_capacity(24);
    write_rfc3339_ms(&mut out, ts_ms);
    // Only ASCII digits and punctuation were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Writes [`rfc3339_ms`] of `ts_ms` (24 bytes) at the end of `out`.
pub(crate) fn write_rfc3339_ms(out: &mut Vec<u8>, ts_ms: u64) {
    let ts_ms = ts_ms.min(MAX_RFC3339_MS);
    let ms = ts_ms % 1000;
    let secs = ts_ms / 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    write_digits(out, year, 4);
    out.push(b'-');
    write_digits(out, month, 2);
    out.push(b'-');
    write_digits(out, day, 2);
    out.push(b'T');
    write_digits(out, sod / 3600, 2);
    out.push(b':');
    write_digits(out, sod % 3600 / 60, 2);
    out.push(b':');
    write_digits(out, sod % 60, 2);
    out.push(b'.');
    write_digits(out, ms, 3);
    out.push(b'Z');
}

/// Writes the last `width` decimal digits of `n`, zero-padded.
fn write_digits(out: &mut Vec<u8>, n: u64, width: u32) {
    let mut div = 10u64.pow(width.saturating_sub(1));
    while div > 0 {
        // `n / div % 10` is a single digit, so the cast cannot truncate.
        out.push(b'0' + (n / div % 10) as u8);
        div /= 10;
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01, for non-negative
/// counts (Howard Hinnant's `civil_from_days`, restricted to days ≥ 0 so it stays unsigned).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so that leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_in_place_matches_the_engine() {
        for n in 0..10 {
            let input: Vec<u8> = (0..n).map(|i: u8| i.wrapping_mul(37)).collect();
            let mut out = b"x".to_vec();
            write_b64_str(&mut out, &input);
            assert_eq!(
                out,
                format!("x\"{}\"", STANDARD.encode(&input)).into_bytes()
            );
        }
    }

    #[test]
    fn civil_dates_against_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29)); // divisible by 400: leap
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28)); // divisible by 100: not leap
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(2_932_896), (9999, 12, 31));
    }

    #[test]
    fn digits_are_padded_and_cut() {
        let mut out = Vec::new();
        write_digits(&mut out, 7, 3);
        write_digits(&mut out, 12_345, 2);
        assert_eq!(out, b"00745");
    }
}
