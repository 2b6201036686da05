//! The sections a configuration is made of, as serde reads them and as the validated
//! [`Config`](super::Config) keeps them: connection choices ([`Dialect`], [`ValueFormat`],
//! [`AuthConfig`]), what is captured ([`PathMatch`], [`QueryParamSpec`], [`ResponseField`],
//! [`HttpFilterRules`]) and the delivery bounds ([`BodyConfig`], [`BatchConfig`],
//! [`BufferConfig`], [`RetryConfig`]). Defaults live here, next to each type.

use super::shape::{one_of, Obj, OneOf};
use serde::Deserialize;
use std::fmt;

/// Which Kafka REST API the batches are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Confluent REST Proxy v2: `POST /topics/{topic}`, per-record offsets.
    #[default]
    ConfluentV2,
    /// Confluent REST Proxy v3: `POST /v3/clusters/{id}/topics/{topic}/records`, concatenated
    /// records and concatenated delivery reports.
    ConfluentV3,
    /// Redpanda HTTP Proxy: v2 bodies, one offsets entry per partition.
    Redpanda,
}

/// How each event is serialised into a Kafka record value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ValueFormat {
    /// A JSON object (v2: embedded json format; v3: `JSON` data).
    #[default]
    Json,
    /// MessagePack (rmp-serde, named fields), sent as binary (base64 on the wire).
    Msgpack,
}

/// What to do with a new event when the per-worker buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Reject the new event (counted as `dropped_buffer_full`).
    #[default]
    DropNewest,
    /// Evict the oldest buffered events to make room (counted as `dropped_buffer_full`).
    DropOldest,
}

/// A field read from Envoy when the stream ends. Each one is a host call (about a microsecond in
/// Envoy's V8), so an operator who does not need one can leave it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseField {
    /// `status` (`response.code`).
    Status,
    /// `duration_us` (`request.duration`).
    Duration,
    /// `request_bytes` and `response_bytes` (`request.total_size`, `response.total_size`).
    Sizes,
    /// `route` (`xds.route_name`).
    Route,
    /// `upstream` (`xds.cluster_name`).
    Upstream,
}

impl ResponseField {
    /// The default set: the status, which the log phase reads from the response header map.
    /// The other fields are each a property read (about a microsecond in Envoy's V8 per event)
    /// that an ad analytics consumer does not usually need.
    pub fn defaults() -> Vec<ResponseField> {
        vec![ResponseField::Status]
    }

    /// Every field.
    pub fn all() -> Vec<ResponseField> {
        vec![
            ResponseField::Status,
            ResponseField::Duration,
            ResponseField::Sizes,
            ResponseField::Route,
            ResponseField::Upstream,
        ]
    }
}

/// Which [`ResponseField`]s are read in `on_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFields {
    /// Read `response.code`.
    pub status: bool,
    /// Read `request.duration`.
    pub duration: bool,
    /// Read the request and response total sizes.
    pub sizes: bool,
    /// Read the route name.
    pub route: bool,
    /// Read the upstream cluster name.
    pub upstream: bool,
}

impl Default for ResponseFields {
    fn default() -> Self {
        ResponseFields::from_list(&ResponseField::defaults())
    }
}

impl ResponseFields {
    /// Every field read.
    pub fn all() -> ResponseFields {
        ResponseFields::from_list(&ResponseField::all())
    }
}

impl ResponseFields {
    /// The set named by a list (duplicates are harmless).
    pub fn from_list(list: &[ResponseField]) -> ResponseFields {
        let has = |f| list.contains(&f);
        ResponseFields {
            status: has(ResponseField::Status),
            duration: has(ResponseField::Duration),
            sizes: has(ResponseField::Sizes),
            route: has(ResponseField::Route),
            upstream: has(ResponseField::Upstream),
        }
    }
}

/// Which rules the HTTP filter deployment captures.
///
/// adtap runs as Envoy's Wasm access logger (one VM entry per request, no bodies) or as a Wasm
/// HTTP filter (what Istio and Envoy Gateway load; it can read request bodies). Both may run in
/// one Envoy with the same configuration, sharing the worker's VM and its buffer: then the
/// logger takes the rules without `capture_body` and the filter only the rules with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HttpFilterRules {
    /// The HTTP filter captures every rule (it is the only deployment).
    #[default]
    All,
    /// The HTTP filter captures only the rules with `capture_body`; an access logger with the
    /// same configuration captures the others.
    BodyOnly,
}

/// How a rule matches the request path. Written `{"exact": "/i"}` or `{"prefix": "/c/"}`:
/// exactly one key (see `config/shape.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// The path (without query string) equals this.
    Exact(String),
    /// The path (without query string) starts with this.
    Prefix(String),
}

/// A query parameter to capture: either a bare name or `{ "name": …, "as": … }` (`as`
/// optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryParamSpec {
    /// Capture under its own name.
    Name(String),
    /// Capture `name`, store it as `as`.
    Renamed {
        /// Name in the query string.
        name: String,
        /// Name in the event.
        rename: String,
    },
}

// Hand-written rather than `#[serde(untagged)]`: untagged enums accept unknown fields and
// report every mistake as "data did not match any variant", where an operator needs
// "unknown field `x`" or "missing field `name`" at the right path.
impl<'de> Deserialize<'de> for QueryParamSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, Visitor};

        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = QueryParamSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a parameter name or an object {\"name\": …, \"as\": …}")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<QueryParamSpec, E> {
                Ok(QueryParamSpec::Name(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<QueryParamSpec, A::Error> {
                let (mut name, mut rename): (Option<String>, Option<String>) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" if name.is_some() => return Err(A::Error::duplicate_field("name")),
                        "as" if rename.is_some() => return Err(A::Error::duplicate_field("as")),
                        "name" => name = Some(map.next_value()?),
                        "as" => rename = Some(map.next_value()?),
                        other => return Err(A::Error::unknown_field(other, &["name", "as"])),
                    }
                }
                let name = name.ok_or_else(|| A::Error::missing_field("name"))?;
                Ok(match rename {
                    Some(rename) => QueryParamSpec::Renamed { name, rename },
                    None => QueryParamSpec::Name(name),
                })
            }
        }
        d.deserialize_any(SpecVisitor)
    }
}

impl QueryParamSpec {
    /// The name looked up in the request's query string.
    pub fn source(&self) -> &str {
        match self {
            QueryParamSpec::Name(n) => n,
            QueryParamSpec::Renamed { name, .. } => name,
        }
    }
    /// The name the value is stored under in the event.
    pub fn target(&self) -> &str {
        match self {
            QueryParamSpec::Name(n) => n,
            QueryParamSpec::Renamed { rename, .. } => rename,
        }
    }
}

/// Authentication header sent with every call to the REST proxy. Never logged. Written as an
/// object with exactly one of `basic`, `bearer`, `header` (see `config/shape.rs`).
#[derive(Clone, PartialEq, Eq)]
pub enum AuthConfig {
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name (Confluent Cloud: the API key).
        username: String,
        /// Password (Confluent Cloud: the API secret).
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// Any header name and value.
    Header {
        /// Header name (lower-case is sent).
        name: String,
        /// Header value.
        value: String,
    },
}

impl fmt::Debug for AuthConfig {
    // Secrets never reach logs, even through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthConfig::Basic { .. } => f.write_str("Basic(<redacted>)"),
            AuthConfig::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            AuthConfig::Header { name, .. } => write!(f, "Header({name}: <redacted>)"),
        }
    }
}

impl<'de> Deserialize<'de> for PathMatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d)
    }
}

impl OneOf for PathMatch {
    const KINDS: &'static [&'static str] = &["exact", "prefix"];
    fn read_kind<'de, A: serde::de::MapAccess<'de>>(
        kind: &str,
        map: &mut A,
    ) -> Result<Self, A::Error> {
        let path: String = map.next_value()?;
        Ok(if kind == "exact" {
            PathMatch::Exact(path)
        } else {
            PathMatch::Prefix(path)
        })
    }
}

/// `auth.basic` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicFields {
    username: String,
    password: String,
}

/// `auth.header` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderFields {
    name: String,
    value: String,
}

impl<'de> Deserialize<'de> for AuthConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d)
    }
}

impl OneOf for AuthConfig {
    const KINDS: &'static [&'static str] = &["basic", "bearer", "header"];
    fn read_kind<'de, A: serde::de::MapAccess<'de>>(
        kind: &str,
        map: &mut A,
    ) -> Result<Self, A::Error> {
        Ok(match kind {
            "basic" => {
                let Obj(b): Obj<BasicFields> = map.next_value()?;
                AuthConfig::Basic {
                    username: b.username,
                    password: b.password,
                }
            }
            "bearer" => AuthConfig::Bearer(map.next_value()?),
            _ => {
                let Obj(h): Obj<HeaderFields> = map.next_value()?;
                AuthConfig::Header {
                    name: h.name,
                    value: h.value,
                }
            }
        })
    }
}

/// Body capture settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BodyConfig {
    /// Bytes kept at most; the rest is not read and the event is marked `body_truncated`.
    pub max_bytes: usize,
}

impl Default for BodyConfig {
    fn default() -> Self {
        BodyConfig {
            max_bytes: 16 * 1024,
        }
    }
}

/// Batch triggers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Send when a topic's batch holds this many events.
    pub max_events: usize,
    /// Send when a topic's batch holds this many encoded bytes.
    pub max_bytes: usize,
    /// Send when a topic's oldest buffered event is this old.
    pub max_age_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: 500,
            max_bytes: 1024 * 1024,
            max_age_ms: 1000,
        }
    }
}

/// Per-worker buffer bounds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Events held at most (buffered + awaiting retry + in flight).
    pub max_events: usize,
    /// Encoded bytes held at most (buffered + awaiting retry + in flight).
    pub max_bytes: usize,
    /// Policy when full.
    pub overflow: Overflow,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_events: 10_000,
            max_bytes: 8 * 1024 * 1024,
            overflow: Overflow::DropNewest,
        }
    }
}

/// Retry policy for failed records.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First backoff.
    pub initial_backoff_ms: u64,
    /// Backoff cap.
    pub max_backoff_ms: u64,
    /// Growth factor between attempts (1.0-10.0).
    pub multiplier: f64,
    /// Jitter as a fraction of the backoff (0.0-1.0): the delay is drawn from
    /// `[b·(1-jitter), b·(1+jitter)]`, capped at `max_backoff_ms`.
    pub jitter: f64,
    /// Total time a record may spend retrying, from its first failure; past it the record is
    /// dropped as `dropped_retry_exhausted`. 0 disables retries.
    pub budget_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 10_000,
            multiplier: 2.0,
            jitter: 0.2,
            budget_ms: 60_000,
        }
    }
}
