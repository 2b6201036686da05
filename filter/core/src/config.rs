//! The plugin configuration: the JSON an operator puts in the Envoy plugin's `configuration`.
//!
//! Parsing happens in two steps so that an operator sees every problem at once:
//! 1. serde reads the JSON into [`RawConfig`] with unknown fields rejected; a structural error
//!    (wrong type, unknown field, missing required field) stops there and names its path
//!    (via `serde_path_to_error`);
//! 2. [`RawConfig::validate`] range-checks every value and collects *all* semantic errors, each
//!    with the JSON path of the offending field.
//!
//! The result is a [`Config`], whose values are known to be in range, so the rest of the core
//! never re-checks them.

use serde::Deserialize;
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

/// How the client IP appears in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    /// The address as seen.
    Full,
    /// IPv4 truncated to /24, IPv6 to /48.
    #[default]
    Truncate,
    /// Salted hash (hex), stable for a given salt: usable as a key, not reversible.
    Hash,
    /// No client IP in the event.
    Omit,
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
/// exactly one key (see [`one_of`]).
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
/// object with exactly one of `basic`, `bearer`, `header` (see [`one_of`]).
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

/// A choice written as an object with exactly one key, one of [`OneOf::KINDS`] (the
/// `{"exact": …}` / `{"basic": …}` choices).
trait OneOf: Sized {
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
fn one_of<'de, D: serde::Deserializer<'de>, T: OneOf>(d: D) -> Result<T, D::Error> {
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
pub(crate) struct Obj<T>(pub(crate) T);

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
fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Obj::<T>::deserialize(d).map(|o| o.0)
}

/// `deserialize_with` for `rules`: a list of objects ([`Obj`]).
fn rule_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<RawRule>, D::Error> {
    let rules: Vec<Obj<RawRule>> = Deserialize::deserialize(d)?;
    Ok(rules.into_iter().map(|r| r.0).collect())
}

/// One capture rule as written in the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Event type written into events (`impression`, `click`, … or any name).
    pub event_type: String,
    /// Kafka topic the events go to.
    pub topic: String,
    /// HTTP method to match (any when absent). Case-sensitive, as HTTP methods are.
    #[serde(default)]
    pub method: Option<String>,
    /// Path match (exact or prefix).
    pub path: PathMatch,
    /// `:authority` / Host to match, port ignored (any when absent). Case-insensitive.
    #[serde(default)]
    pub host: Option<String>,
    /// Fraction of matching requests captured, 0.0-1.0.
    #[serde(default = "default_sample_rate")]
    pub sample_rate: f64,
    /// Capture the request body (bounded by `body.max_bytes`).
    #[serde(default)]
    pub capture_body: bool,
    /// Record key source for this rule; overrides the top-level `key`.
    #[serde(default)]
    pub key: Option<String>,
}

fn default_sample_rate() -> f64 {
    1.0
}

/// Client IP settings. `Debug` shows the salt as `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientIpConfig {
    /// How the IP is written.
    pub mode: IpMode,
    /// Salt for `hash` mode (required there).
    pub salt: Option<String>,
    /// Trusted proxies in front of Envoy: 0 uses the peer address; N takes the N-th address
    /// from the right of `X-Forwarded-For` (falling back to the peer address).
    pub trusted_hops: u32,
}

impl fmt::Debug for ClientIpConfig {
    // The salt is a secret (it makes hashed IPs reversible by brute force over IPv4).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIpConfig")
            .field("mode", &self.mode)
            .field("salt", &self.salt.as_ref().map(|_| "<redacted>"))
            .field("trusted_hops", &self.trusted_hops)
            .finish()
    }
}

impl Default for ClientIpConfig {
    fn default() -> Self {
        ClientIpConfig {
            mode: IpMode::Truncate,
            salt: None,
            trusted_hops: 0,
        }
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

/// The configuration exactly as written (after serde, before range checks).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Envoy cluster that fronts the Kafka REST proxy (required).
    pub cluster: String,
    /// `:authority` of calls to the REST proxy (default: the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    /// REST API dialect.
    #[serde(default)]
    pub dialect: Dialect,
    /// Kafka cluster id for `confluent_v3` (required there).
    #[serde(default)]
    pub cluster_id: Option<String>,
    /// Prefix before the API path (e.g. `/kafka` for Confluent Cloud). Empty or starting `/`.
    #[serde(default)]
    pub path_prefix: String,
    /// Record value format.
    #[serde(default)]
    pub format: ValueFormat,
    /// Auth header to the REST proxy.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Timeout of each call to the REST proxy.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Tick period: how often the worker checks batch age and retry timers.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// Capture rules, first match wins (at least one).
    #[serde(deserialize_with = "rule_list")]
    pub rules: Vec<RawRule>,
    /// Query parameters captured (allow-list).
    #[serde(default)]
    pub query_params: Vec<QueryParamSpec>,
    /// Request headers captured (allow-list, case-insensitive).
    #[serde(default)]
    pub headers: Vec<String>,
    /// Client IP handling.
    #[serde(default, deserialize_with = "object")]
    pub client_ip: ClientIpConfig,
    /// Body capture bounds.
    #[serde(default, deserialize_with = "object")]
    pub body: BodyConfig,
    /// Fields read from Envoy when the stream ends (default: `status`).
    #[serde(default = "ResponseField::defaults")]
    pub response_fields: Vec<ResponseField>,
    /// Which rules an HTTP filter loaded with this configuration captures (the access logger
    /// always captures the rules without `capture_body`, since it sees no body).
    #[serde(default)]
    pub http_filter_rules: HttpFilterRules,
    /// Default record key source (see [`KeySource`]).
    #[serde(default)]
    pub key: Option<String>,
    /// Batch triggers.
    #[serde(default, deserialize_with = "object")]
    pub batch: BatchConfig,
    /// Buffer bounds.
    #[serde(default, deserialize_with = "object")]
    pub buffer: BufferConfig,
    /// Calls to the REST proxy in flight at once per worker.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Retry policy.
    #[serde(default, deserialize_with = "object")]
    pub retry: RetryConfig,
    /// How long `on_done` may wait for the final flush before letting Envoy tear down.
    #[serde(default = "default_shutdown_deadline_ms")]
    pub shutdown_deadline_ms: u64,
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_tick_ms() -> u64 {
    100
}
fn default_max_in_flight() -> usize {
    4
}
fn default_shutdown_deadline_ms() -> u64 {
    5_000
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
    pub key: Option<KeySource>,
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

impl RawConfig {
    /// Reads the configuration as Envoy hands it to `proxy_on_configure`: the JSON text of a
    /// `google.protobuf.StringValue` configuration, or the binary `google.protobuf.Struct` of
    /// a YAML/Struct one (Envoy passes a Struct Any's payload as is; see [`crate::pb_struct`]).
    ///
    /// Which form arrived: a document whose first byte is `0x0a` (the tag of `Struct.fields`)
    /// is decoded as a Struct; if that fails and its first non-whitespace byte is `{`, it is a
    /// JSON text after a newline and is parsed as JSON; otherwise the Struct error is reported.
    /// Any other document is JSON. An empty document (an empty Struct, or no configuration) is
    /// JSON's "EOF" error, as before. The Struct is turned into the JSON value it stands for
    /// and read by the same code as a JSON text, so both forms get the same checks and messages.
    pub fn from_bytes(bytes: &[u8]) -> Result<RawConfig, ConfigError> {
        if crate::pb_struct::looks_like_struct(bytes) {
            match crate::pb_struct::decode(bytes) {
                Ok(mut doc) => {
                    numbers_from_yaml_strings(&mut doc);
                    let json = serde_json::to_vec(&doc).map_err(|e| ConfigError {
                        path: "$".into(),
                        message: format!("the google.protobuf.Struct has no JSON form: {e}"),
                    })?;
                    return RawConfig::from_json(&json);
                }
                Err(e) => {
                    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
                    if first != Some(&b'{') {
                        return Err(ConfigError {
                            path: e.path,
                            message: e.message,
                        });
                    }
                }
            }
        }
        RawConfig::from_json(bytes)
    }

    /// Reads the JSON into a [`RawConfig`]; structural errors name the path.
    pub fn from_json(json: &[u8]) -> Result<RawConfig, ConfigError> {
        // serde's derive would also read a struct from a JSON array (fields by position).
        let first = json.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            return Err(ConfigError {
                path: "$".into(),
                message: "the configuration must be a JSON object (or a google.protobuf.Struct)"
                    .into(),
            });
        }
        let mut de = serde_json::Deserializer::from_slice(json);
        let raw = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            // `?` is serde_path_to_error's "no position in the document" (syntax errors).
            let path = if matches!(path.as_str(), "." | "" | "?") {
                "$".to_string()
            } else {
                path
            };
            let inner = e.into_inner();
            // A syntax error has no path: its line and column are the only pointer to it.
            let message = if inner.is_syntax() || inner.is_eof() {
                inner.to_string()
            } else {
                redact_secrets(json, &strip_serde_position(&inner.to_string()))
            };
            ConfigError { path, message }
        })?;
        // serde_path_to_error does not check for trailing input.
        de.end().map_err(|e| ConfigError {
            path: "$".into(),
            message: e.to_string(),
        })?;
        Ok(raw)
    }

    /// Range-checks every value, collecting all problems.
    pub fn validate(self) -> Result<Config, Vec<ConfigError>> {
        crate::validate::validate(self)
    }
}

/// Every numeric field of the schema, as a path of keys (`*`: each element of a list).
/// [`numbers_from_yaml_strings`] converts a string holding a number at these paths; the test
/// `filter/core/tests/struct_config.rs` (`every_number_as_a_yaml_string`) fails if a numeric
/// field is missing here.
const NUMERIC_FIELDS: &[&[&str]] = &[
    &["timeout_ms"],
    &["tick_ms"],
    &["max_in_flight"],
    &["shutdown_deadline_ms"],
    &["client_ip", "trusted_hops"],
    &["body", "max_bytes"],
    &["batch", "max_events"],
    &["batch", "max_bytes"],
    &["batch", "max_age_ms"],
    &["buffer", "max_events"],
    &["buffer", "max_bytes"],
    &["retry", "initial_backoff_ms"],
    &["retry", "max_backoff_ms"],
    &["retry", "multiplier"],
    &["retry", "jitter"],
    &["retry", "budget_ms"],
    &["rules", "*", "sample_rate"],
];

/// In a document decoded from a Struct, turns the strings Envoy's YAML loader made of numbers
/// (`"0.25"`, `"2.5"`, see [`crate::pb_struct::number_from_text`]) back into numbers at the
/// schema's [`NUMERIC_FIELDS`], so that `sample_rate: 0.25` in YAML works and `max_events: 2.5`
/// is refused as a fraction, by name. Strings anywhere else stay strings (a topic may be
/// `"2024"`), and a string that is not a number stays one, refused by the field's type check.
fn numbers_from_yaml_strings(doc: &mut serde_json::Value) {
    fn walk(v: &mut serde_json::Value, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            if let serde_json::Value::String(s) = v {
                if let Some(n) = crate::pb_struct::number_from_text(s) {
                    *v = n;
                }
            }
            return;
        };
        match (*first, v) {
            ("*", serde_json::Value::Array(items)) => {
                items.iter_mut().for_each(|i| walk(i, rest));
            }
            (key, serde_json::Value::Object(map)) => {
                if let Some(child) = map.get_mut(key) {
                    walk(child, rest);
                }
            }
            _ => {}
        }
    }
    for path in NUMERIC_FIELDS {
        walk(doc, path);
    }
}

/// serde quotes the offending value in its messages (``unknown variant `Bearer SECRET` ``,
/// ``invalid type: integer `9876543210123` ``, `invalid type: string "…"`). Every scalar under
/// `auth` and `client_ip.salt` is a secret whatever its shape, so each one is replaced by
/// `<redacted>` wherever the message quotes it; keys (a misspelt field or kind) stay readable.
fn redact_secrets(json: &[u8], message: &str) -> String {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(json) else {
        return message.to_string();
    };
    let mut secrets = Vec::new();
    if let Some(v) = doc.get("auth") {
        scalars(v, &mut secrets);
    }
    if let Some(v) = doc.get("client_ip").and_then(|c| c.get("salt")) {
        scalars(v, &mut secrets);
    }
    let mut out = message.to_string();
    // A secret equal to a word of the schema (a kind or field name the message quotes by
    // itself, as in ``expected one of `basic`, `bearer` ``) would only blank that word: the
    // message says it whatever the configuration holds, so it gives nothing away.
    let vocabulary = [
        "basic", "bearer", "header", "username", "password", "name", "value", "salt",
    ];
    for secret in secrets
        .iter()
        .filter(|s| !s.is_empty() && !vocabulary.contains(&s.as_str()))
    {
        for quoted in [
            format!("`{secret}`"),
            format!("\"{secret}\""),
            format!("{secret:?}"),
        ] {
            out = out.replace(&quoted, "<redacted>");
        }
    }
    out
}

/// Every scalar leaf of `v` as text (strings as themselves, numbers and booleans as written).
fn scalars(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Bool(b) => out.push(b.to_string()),
        serde_json::Value::Null => {}
        serde_json::Value::Array(items) => items.iter().for_each(|i| scalars(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| scalars(i, out)),
    }
}

/// serde_json appends " at line L column C" to messages; the path says more and the position
/// is noise in a one-line log.
fn strip_serde_position(msg: &str) -> String {
    let end = msg.rfind(" at line ").unwrap_or(msg.len());
    msg.get(..end).unwrap_or(msg).to_string()
}
