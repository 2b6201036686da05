//! Encoders: record values (JSON / MessagePack), record keys, and the HTTP request for one batch
//! in each REST dialect (Confluent v2 json/binary, Confluent v3 concatenated records, Redpanda).
//!
//! STUB: interfaces agreed; implementation pending.

use crate::config::{Config, KeySource, ValueFormat};
use crate::event::{Event, Record};

/// Why an event could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

/// An HTTP request to the REST proxy, ready for `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// All headers including `:method`, `:path`, `:authority`, content type, accept and auth.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A header's value, for tests and logs.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Encodes an event as a record value.
pub fn encode_value(format: ValueFormat, event: &Event) -> Result<Vec<u8>, EncodeError> {
    let _ = (format, event);
    Err(EncodeError("not implemented".into()))
}

/// Decodes a record value back into an event (downstream readers, JS `decodeRecord`, tests).
pub fn decode_value(format: ValueFormat, bytes: &[u8]) -> Result<Event, EncodeError> {
    let _ = (format, bytes);
    Err(EncodeError("not implemented".into()))
}

/// The record key for an event, or `None` when the source field is absent.
pub fn record_key(source: &KeySource, event: &Event) -> Option<String> {
    let _ = (source, event);
    None
}

/// Encodes a finished event into a [`Record`] for the given rule's topic and key.
pub fn to_record(cfg: &Config, rule: usize, event: &Event) -> Result<Record, EncodeError> {
    let _ = (cfg, rule, event);
    Err(EncodeError("not implemented".into()))
}

/// Builds the HTTP request that ships `records` (all of one topic) in the configured dialect.
pub fn build_request<'a>(
    cfg: &Config,
    topic: usize,
    records: impl Iterator<Item = &'a Record>,
) -> HttpRequest {
    let _ = (cfg, topic, records.count());
    HttpRequest { headers: Vec::new(), body: Vec::new() }
}
