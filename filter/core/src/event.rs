//! The event model: what one captured ad request becomes, and the encoded record it travels as.
//!
//! Field names are the wire contract for downstream consumers (JSON keys and MessagePack map
//! keys alike); [`SCHEMA_VERSION`] changes when they do.

use serde::{Deserialize, Serialize};

/// Version of the event schema, sent as the `v` field and as the `adtap-schema` record header (v3).
pub const SCHEMA_VERSION: u32 = 1;

/// One captured ad event. Optional fields are omitted from the encoding when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u32,
    /// Unique id: the VM's random id and a per-VM sequence, `vvvvvvvvvvvvvvvv-seq` in hex.
    pub id: String,
    /// Event type from the matching rule.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the request arrived, Unix milliseconds.
    pub ts: u64,
    /// `x-request-id` of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Host (`:authority`), as sent.
    pub host: String,
    /// Path without the query string.
    pub path: String,
    /// Allow-listed query parameters (after rename), in allow-list order. Encoded as an object
    /// `{name: value}` in that order (see [`pairs_as_map`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "pairs_as_map")]
    pub query: Vec<(String, String)>,
    /// Allow-listed request headers (lower-case names), in allow-list order. Encoded as an
    /// object `{name: value}` in that order (see [`pairs_as_map`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "pairs_as_map")]
    pub headers: Vec<(String, String)>,
    /// `user-agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// `referer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referer: Option<String>,
    /// Client IP per the configured mode (absent in `omit` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Response status (absent if the stream ended without a response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Request duration in microseconds, as Envoy measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// Request size in bytes (headers and body), as Envoy counted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    /// Response size in bytes, as Envoy counted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    /// Envoy route name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Upstream cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Captured request body: UTF-8 text as is, otherwise base64 (see `body_base64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// True when `body` is base64 of non-UTF-8 bytes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub body_base64: bool,
    /// True when the body was longer than `body.max_bytes` and was cut.
    #[serde(default, skip_serializing_if = "is_false")]
    pub body_truncated: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Serde for ordered name/value pairs as a map (`{"name": "value", …}` in JSON, a map in
/// MessagePack), so downstream readers index by name instead of walking arrays of pairs.
/// Order is kept both ways; a repeated name on input is kept as a repeated pair.
pub mod pairs_as_map {
    use serde::de::{MapAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// Writes the pairs as a map, in order.
    pub fn serialize<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
    }

    /// Reads a map back into pairs, in input order.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // The size hint comes from the input: bound it so a hostile length prefix
                // cannot make us reserve a huge vector up front.
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    out.push(pair);
                }
                Ok(out)
            }
        }
        d.deserialize_map(PairsVisitor)
    }
}

/// What one record header counts beyond its name and value ([`Record::size`]): about what it
/// costs in memory (its slot in the list, the allocator's headers of its two texts) and on the
/// wire (the `{"name":…,"value":…}` framing of a v3 header, and its value's base64).
pub const HEADER_OVERHEAD_BYTES: usize = 32;

/// An event encoded for Kafka: the unit that is buffered, batched, sent and accounted.
///
/// Encoding happens once, when the event is finalised, so the buffer's byte bound is exact and
/// a retry re-sends the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Index of the topic in [`crate::config::Config::topics`].
    pub topic: usize,
    /// Record key, if the key source was present.
    pub key: Option<String>,
    /// Encoded value (JSON text or MessagePack bytes; with CloudEvents on v2 or Redpanda, the
    /// structured envelope's JSON text).
    pub value: Vec<u8>,
    /// Record headers beyond the two every v3 record carries (`content-type`, `adtap-schema`):
    /// the CloudEvents attributes (binary mode) and the configured `record_headers` present on
    /// the request, as (name, value) text, in that order. Empty (no allocation) unless one of
    /// them is configured; always empty on dialects without record headers.
    pub headers: Vec<(String, String)>,
    /// Event timestamp, Unix ms (v3 record timestamp).
    pub ts_ms: u64,
}

impl Record {
    /// Bytes this record counts against buffer and batch byte limits: value, key, and each
    /// header's name and value plus [`HEADER_OVERHEAD_BYTES`].
    pub fn size(&self) -> usize {
        self.value.len()
            + self.key.as_ref().map_or(0, |k| k.len())
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + HEADER_OVERHEAD_BYTES)
                .sum::<usize>()
    }
}
