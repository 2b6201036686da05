//! The published JSON Schema (draft 2020-12) of the event value: what downstream teams register
//! and validate against.
//!
//! [`event_schema`] builds it from the same constants the capture and validation code bound
//! values with ([`crate::capture::MAX_QUERY_VALUE_BYTES`], [`crate::config::MAX_BODY_BYTES`],
//! …), so a bound cannot change in one place only. The committed copy,
//! `filter/core/schema/event.v1.schema.json` ([`SCHEMA_FILE`]), is what the repository and the JS
//! package publish; `tests/event_schema.rs` proves it is [`event_schema_text`] byte for byte,
//! that its properties are exactly the fields of [`crate::Event`], and that records written by
//! [`crate::record`] validate (both formats, every field, values at their bounds) while values
//! past a bound do not. Regenerate it with `ADTAP_BLESS_SCHEMA=1 cargo test -p adtap-core
//! --test event_schema`.
//!
//! Byte bounds become `maxLength` (which counts characters): a value of at most N bytes has at
//! most N characters, so the schema never refuses what adtap writes. The filter does not call
//! this module, so it adds nothing to the Wasm module.

use crate::capture::{MAX_HEADER_VALUE_BYTES, MAX_QUERY_VALUE_BYTES};
use crate::config::{MAX_BODY_BYTES, MAX_EVENT_TYPE_BYTES, MAX_HEADERS, MAX_QUERY_PARAMS};
use crate::event::SCHEMA_VERSION;
use crate::json_text::b64_len;
use serde_json::{json, Value};

/// Where the committed schema lives, relative to the repository root.
pub const SCHEMA_FILE: &str = "filter/core/schema/event.v1.schema.json";

/// The committed schema file's text, byte for byte (what the JS package and the CLI print):
/// the test that keeps the file current keeps this current too.
pub const EVENT_SCHEMA_JSON: &str = include_str!("../schema/event.v1.schema.json");

/// The schema's `$id` (and the CloudEvents `dataschema`): names the schema version, so a
/// registry keeps v1 and a later v2 apart.
pub const SCHEMA_ID: &str = "urn:adtap:event:v1";

/// The JSON Schema of the event value, version [`SCHEMA_VERSION`]. JSON values validate
/// directly; a MessagePack value validates once decoded to its JSON equivalent (its maps have
/// the same keys, integers and strings the same values).
pub fn event_schema() -> Value {
    let header_value = json!({"type": "string", "maxLength": MAX_HEADER_VALUE_BYTES});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "adtap event",
        "description": format!(
            "One captured ad request, the value of one Kafka record (JSON, or MessagePack with the same keys). Schema version {SCHEMA_VERSION}: a change of field names or types comes with a new `v`. Optional fields are absent, never null."
        ),
        "type": "object",
        "additionalProperties": false,
        "required": ["v", "id", "type", "ts", "method", "host", "path"],
        "properties": {
            "v": {
                "description": "Schema version.",
                "const": SCHEMA_VERSION
            },
            "id": {
                "description": "Unique event id: the VM's random 64-bit id (16 hex digits), `-`, the VM's sequence number (hex). Also the CloudEvents `id`.",
                "type": "string",
                "pattern": "^[0-9a-f]{16}-[0-9a-f]{1,16}$"
            },
            "type": {
                "description": "Event type of the matching rule.",
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_EVENT_TYPE_BYTES,
                "pattern": "^[A-Za-z0-9_.-]+$"
            },
            "ts": {
                "description": "Unix milliseconds: when the request began if its duration was read, else when Envoy logged it.",
                "type": "integer", "minimum": 0, "maximum": u64::MAX
            },
            "request_id": {
                "description": "`x-request-id` of the request.",
                "type": "string", "maxLength": MAX_HEADER_VALUE_BYTES
            },
            "method": {"description": "HTTP method.", "type": "string"},
            "host": {"description": "`:authority` as sent (may carry a port).", "type": "string"},
            "path": {"description": "Path without the query string.", "type": "string"},
            "query": {
                "description": "Allow-listed query parameters (percent-decoded, renamed), in allow-list order.",
                "type": "object",
                "minProperties": 1,
                "maxProperties": MAX_QUERY_PARAMS,
                "additionalProperties": {"type": "string", "maxLength": MAX_QUERY_VALUE_BYTES}
            },
            "headers": {
                "description": "Allow-listed request headers (lower-case names), in allow-list order.",
                "type": "object",
                "minProperties": 1,
                "maxProperties": MAX_HEADERS,
                "propertyNames": {"pattern": "^[a-z0-9!#$%&'*+.^_`|~-]+$"},
                "additionalProperties": header_value
            },
            "user_agent": {"description": "`user-agent`.", "type": "string", "maxLength": MAX_HEADER_VALUE_BYTES},
            "referer": {"description": "`referer`.", "type": "string", "maxLength": MAX_HEADER_VALUE_BYTES},
            "client_ip": {
                "description": "Client IP per `client_ip.mode`: the address (`full`), its /24 or /48 (`truncate`), or 32 hex digits of a salted SHA-256 (`hash`).",
                "type": "string",
                "anyOf": [
                    {"format": "ipv4"},
                    {"format": "ipv6"},
                    {"pattern": "^[0-9a-f]{32}$"}
                ]
            },
            "status": {
                "description": "Response status (absent if the stream ended without a response).",
                "type": "integer", "minimum": 0, "maximum": u16::MAX
            },
            "duration_us": {"description": "Request duration, microseconds.", "type": "integer", "minimum": 0, "maximum": u64::MAX},
            "request_bytes": {"description": "Request size (headers and body), bytes.", "type": "integer", "minimum": 0, "maximum": u64::MAX},
            "response_bytes": {"description": "Response size, bytes.", "type": "integer", "minimum": 0, "maximum": u64::MAX},
            "route": {"description": "Envoy route name.", "type": "string"},
            "upstream": {"description": "Upstream cluster name.", "type": "string"},
            "body": {
                "description": "Captured request body: UTF-8 text as is, else standard base64 (`body_base64`); at most `body.max_bytes` bytes before any base64.",
                "type": "string",
                "maxLength": b64_len(MAX_BODY_BYTES)
            },
            "body_base64": {"description": "Present (true) when `body` is base64 of non-UTF-8 bytes.", "const": true},
            "body_truncated": {"description": "Present (true) when the body was cut at `body.max_bytes`.", "const": true}
        },
        "if": {"required": ["body_base64"]},
        "then": {"properties": {"body": {"contentEncoding": "base64", "pattern": "^[A-Za-z0-9+/]*={0,2}$"}}},
        "else": {"properties": {"body": {"maxLength": MAX_BODY_BYTES}}},
        "dependentRequired": {
            "body_base64": ["body"],
            "body_truncated": ["body"]
        }
    })
}

/// [`event_schema`] as the committed file holds it: pretty-printed, two-space indent, with a
/// final newline.
pub fn event_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&event_schema()).unwrap_or_default();
    text.push('\n');
    text
}
