//! The configuration exactly as written: [`RawConfig`] and [`RawRule`], read by serde from a
//! JSON text or a `google.protobuf.Struct`, with structural errors naming their path and never
//! quoting a secret. [`RawConfig::validate`] turns it into a [`Config`].

use super::sections::{
    AuthConfig, BatchConfig, BodyConfig, BufferConfig, Dialect, HttpFilterRules, PathMatch,
    QueryParamSpec, ResponseField, RetryConfig, ValueFormat,
};
use super::shape::{object, Obj};
use super::{Config, ConfigError};
use crate::cloudevents::CloudEventsConfig;
use crate::ip::ClientIpConfig;
use crate::key::RawKey;
use serde::Deserialize;

/// `deserialize_with` for an optional section that must be an object when present ([`Obj`]).
fn optional_object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Obj::<T>::deserialize(d).map(|o| Some(o.0))
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
    /// Record key source for this rule (one field or a list); overrides the top-level `key`.
    #[serde(default)]
    pub key: Option<RawKey>,
}

fn default_sample_rate() -> f64 {
    1.0
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
    /// Default record key source: one field or a list (see [`KeySource`](super::KeySource),
    /// [`crate::key`]).
    #[serde(default)]
    pub key: Option<RawKey>,
    /// Request headers carried as Kafka record headers (Confluent v3 only).
    #[serde(default)]
    pub record_headers: Vec<String>,
    /// CloudEvents attributes on every record (see [`crate::cloudevents`]); off when absent.
    #[serde(default, deserialize_with = "optional_object")]
    pub cloudevents: Option<CloudEventsConfig>,
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
        super::validate::validate(self)
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
/// `<redacted>` wherever the message quotes it, and so is each of `auth`'s own keys (the kind)
/// that is not a word of the schema; a misspelt field elsewhere stays readable.
fn redact_secrets(json: &[u8], message: &str) -> String {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(json) else {
        return message.to_string();
    };
    let mut secrets = Vec::new();
    if let Some(v) = doc.get("auth") {
        scalars(v, &mut secrets);
        // The kind's position (`auth`'s own keys) is where a credential pasted in the wrong
        // place lands (`auth: {"Bearer eyJ…": ""}`), and serde quotes an unknown kind: those
        // keys count too. The schema's words are spared below; deeper keys (a misspelt
        // `auth.basic.user`) stay readable.
        if let Some(map) = v.as_object() {
            secrets.extend(map.keys().cloned());
        }
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
