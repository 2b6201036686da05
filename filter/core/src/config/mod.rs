//! The plugin configuration: the JSON an operator puts in the Envoy plugin's `configuration`,
//! and the validated [`Config`] the rest of the core reads.
//!
//! Parsing happens in two steps so that an operator sees every problem at once:
//! 1. `raw.rs`: serde reads the document (JSON text or `google.protobuf.Struct`) into a
//!    [`RawConfig`] with unknown fields rejected; a structural error (wrong type, unknown field,
//!    missing required field) stops there and names its path (via `serde_path_to_error`);
//! 2. `validate.rs`: [`RawConfig::validate`] takes the `RawConfig` apart (by move, in one place),
//!    range-checks every value, collects *all* semantic errors, each with the JSON path of the
//!    offending field, and builds the [`Config`] from the checked parts.
//!
//! The module's files, from the bottom up:
//! - `shape.rs`: serde helpers for how values must be written (objects only, choices written
//!   as an object with exactly one key);
//! - `sections.rs`: the types a configuration is made of (`batch`, `buffer`, `retry`, `auth`,
//!   rules' path matches, …), read by serde and kept as they are in the validated [`Config`];
//! - `mod.rs`: [`Config`], [`Rule`], [`KeySource`] and [`ConfigError`];
//! - `raw.rs`: [`RawConfig`] and [`RawRule`], the document as written, and its decoding;
//! - `validate.rs`: the range checks, the limits they enforce and the normalisation, from a
//!   `RawConfig` to a `Config`.
//!
//! The client IP section ([`crate::ip::ClientIpConfig`], [`crate::ip::IpMode`]) lives with
//! the code that applies it, in [`crate::ip`]; `config` depends on `ip`, never the reverse.
//!
//! A [`Config`]'s values are known to be in range, so the rest of the core never re-checks
//! them. Every item is reached as `config::Item`; the files are private.

mod raw;
mod sections;
mod shape;
mod validate;

pub use raw::{RawConfig, RawRule};
pub use sections::{
    AuthConfig, BatchConfig, BodyConfig, BufferConfig, Dialect, HttpFilterRules, Overflow,
    PathMatch, QueryParamSpec, ResponseField, ResponseFields, RetryConfig, ValueFormat,
};
pub use validate::{
    max_body_bytes, record_extra_bytes, EVENT_RESERVE_BYTES, MAX_BODY_BYTES, MAX_EVENT_TYPE_BYTES,
    MAX_HEADERS, MAX_HEADER_NAME_BYTES, MAX_HOST_BYTES, MAX_METHOD_BYTES, MAX_NAME_BYTES,
    MAX_PATH_BYTES, MAX_PATH_PREFIX_BYTES, MAX_QUERY_PARAMS, MAX_RECORD_HEADERS, MAX_RULES,
    MAX_SECRET_BYTES, MAX_TRUSTED_HOPS,
};

use crate::cloudevents::CloudEventsConfig;
use crate::ip::ClientIpConfig;
use crate::key::Key;
use std::fmt;

/// One configuration problem: the JSON path of the field (e.g. `rules[1].sample_rate`) and what
/// is wrong with it. Never contains secret values (the auth value is never echoed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending field, `$` for the document itself.
    pub path: String,
    /// Human-readable description of the problem.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Where a record key comes from, parsed from strings such as `query.campaign_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A captured query parameter, by its name in the event (after rename).
    Query(String),
    /// A captured request header (lower-case name).
    Header(String),
    /// The client IP as written in the event (so `hash` mode gives a hashed key).
    ClientIp,
    /// The request's `x-request-id`.
    RequestId,
    /// The request host.
    Host,
    /// The request path.
    Path,
    /// The event type.
    EventType,
}

impl KeySource {
    /// Parses `query.NAME`, `header.NAME`, `client_ip`, `request_id`, `host`, `path`,
    /// `event_type`.
    pub fn parse(s: &str) -> Result<KeySource, String> {
        if let Some(name) = s.strip_prefix("query.") {
            if name.is_empty() {
                return Err("`query.` needs a parameter name".into());
            }
            return Ok(KeySource::Query(name.to_string()));
        }
        if let Some(name) = s.strip_prefix("header.") {
            if name.is_empty() {
                return Err("`header.` needs a header name".into());
            }
            return Ok(KeySource::Header(name.to_ascii_lowercase()));
        }
        match s {
            "client_ip" => Ok(KeySource::ClientIp),
            "request_id" => Ok(KeySource::RequestId),
            "host" => Ok(KeySource::Host),
            "path" => Ok(KeySource::Path),
            "event_type" => Ok(KeySource::EventType),
            other => Err(format!(
                "unknown key source `{other}` (expected query.NAME, header.NAME, client_ip, request_id, host, path or event_type)"
            )),
        }
    }
}

/// A validated capture rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Event type written into events.
    pub event_type: String,
    /// Index into [`Config::topics`].
    pub topic: usize,
    /// Method to match, if any.
    pub method: Option<String>,
    /// Path match.
    pub path: PathMatch,
    /// Lower-case host to match (port stripped), if any.
    pub host: Option<String>,
    /// Sampling rate, 0.0-1.0.
    pub sample_rate: f64,
    /// Whether the request body is captured.
    pub capture_body: bool,
    /// Key source (rule's own, else the top-level one).
    pub key: Option<Key>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Envoy cluster of the REST proxy.
    pub cluster: String,
    /// `:authority` for calls.
    pub authority: String,
    /// REST dialect.
    pub dialect: Dialect,
    /// Kafka cluster id (v3).
    pub cluster_id: Option<String>,
    /// Path prefix before the API path.
    pub path_prefix: String,
    /// Record value format.
    pub format: ValueFormat,
    /// Auth header.
    pub auth: Option<AuthConfig>,
    /// Call timeout.
    pub timeout_ms: u64,
    /// Tick period.
    pub tick_ms: u64,
    /// Rules in match order.
    pub rules: Vec<Rule>,
    /// Distinct topics, in order of first use by a rule.
    pub topics: Vec<String>,
    /// Query-parameter allow-list.
    pub query_params: Vec<QueryParamSpec>,
    /// Header allow-list, lower-case.
    pub headers: Vec<String>,
    /// Client IP handling.
    pub client_ip: ClientIpConfig,
    /// Body bounds.
    pub body: BodyConfig,
    /// Fields read from Envoy in `on_log`.
    pub response_fields: ResponseFields,
    /// Which rules the HTTP filter deployment captures.
    pub http_filter_rules: HttpFilterRules,
    /// Batch triggers.
    pub batch: BatchConfig,
    /// Buffer bounds.
    pub buffer: BufferConfig,
    /// Calls in flight per worker.
    pub max_in_flight: usize,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Shutdown flush deadline.
    pub shutdown_deadline_ms: u64,
    /// Request headers carried as record headers (lower-case names; empty unless v3).
    pub record_headers: Vec<String>,
    /// CloudEvents attributes, when enabled.
    pub cloudevents: Option<CloudEventsConfig>,
}

impl Config {
    /// Parses and validates a configuration document, a JSON text or a serialized
    /// `google.protobuf.Struct` (see [`RawConfig::from_bytes`]). On error returns every problem
    /// found (one when the document itself is malformed or of the wrong shape).
    pub fn parse(bytes: &[u8]) -> Result<Config, Vec<ConfigError>> {
        RawConfig::from_bytes(bytes)
            .map_err(|e| vec![e])
            .and_then(|raw| raw.validate())
    }
}
