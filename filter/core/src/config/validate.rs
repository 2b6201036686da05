//! Range checks of a [`RawConfig`], collecting every problem with its JSON path.
//!
//! [`validate`] walks the document section by section (connection, limits, client IP, body,
//! allow-lists, auth, keys, rules) and pushes one [`ConfigError`] per problem, so an operator
//! fixes everything in one round. Paths use the same syntax as the structural errors of
//! `serde_path_to_error` (`rules[1].sample_rate`, `auth.header.name`).
//!
//! Normalisation happens here too, so the rest of the core can rely on it: the authority
//! defaults to the cluster, rule hosts are lower-case without port, header names are
//! lower-case, topics are deduplicated into [`Config::topics`] and each rule's key falls back to
//! the top-level one.
//!
//! Messages never quote secrets (auth password, token or header value, the IP salt).

use super::raw::{RawConfig, RawRule};
use super::sections::{
    AuthConfig, Dialect, PathMatch, QueryParamSpec, ResponseFields, ValueFormat,
};
use super::{Config, ConfigError, KeySource, Rule};
use crate::capture::MAX_HEADER_VALUE_BYTES;
use crate::cloudevents;
use crate::event::HEADER_OVERHEAD_BYTES;
use crate::ip::{host_without_port, IpMode};
use crate::key::{Key, RawKey, MAX_KEY_FIELDS};
use std::fmt::Display;

/// Rules allowed at most; each is scanned on every request.
pub const MAX_RULES: usize = 256;
/// Query parameters in the allow-list at most.
pub const MAX_QUERY_PARAMS: usize = 64;
/// Headers in the allow-list at most.
pub const MAX_HEADERS: usize = 64;
/// Request headers carried as record headers at most (`record_headers`).
pub const MAX_RECORD_HEADERS: usize = 16;
/// Longest query-parameter name or rename, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest event type.
pub const MAX_EVENT_TYPE_BYTES: usize = 64;
/// Trusted proxies in front of Envoy at most.
pub const MAX_TRUSTED_HOPS: u32 = 16;
/// Largest body capture.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest rule path (`exact` or `prefix`), in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest rule host, authority or cluster name, in bytes (a DNS name is at most 253).
pub const MAX_HOST_BYTES: usize = 255;
/// Longest `path_prefix`, in bytes.
pub const MAX_PATH_PREFIX_BYTES: usize = 256;
/// Longest rule method, in bytes (the longest registered HTTP method has 17).
pub const MAX_METHOD_BYTES: usize = 32;
/// Longest header name (`headers`, `auth.header.name`), in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 256;
/// Longest auth value (token, user name, password, header value), in bytes: far above any real
/// credential (JWTs run to a few KiB) and within what a REST proxy accepts in one header.
pub const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Room left in a record for everything but the body when bounding `body.max_bytes` by
/// `batch.max_bytes` (see [`max_body_bytes`]): id, type, timestamps, method, host, path, a
/// user agent, the client IP, the status and the body flags fit in it. An event whose other
/// fields are longer (long headers or query values) can still be too large for a batch; it is
/// counted as `adtap_dropped_too_large`.
pub const EVENT_RESERVE_BYTES: usize = 1024;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Headers adtap sets itself on calls to the REST proxy (or that frame the request), which the
/// auth header must not replace.
const RESERVED_AUTH_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
];

/// The largest `body.max_bytes` whose worst-case body still lets the event fit a batch of
/// `batch_max_bytes` (an event larger than `batch.max_bytes` can never be sent and is dropped as
/// `too_large`; `pipeline` compares [`crate::Record::size`], the encoded value, key and record
/// headers, with
/// it).
///
/// Derived from what `encode` does with a body of `n` bytes (`capture::BodyCapture` keeps
/// UTF-8 text as is and base64-encodes anything else):
/// - `json`: serde_json writes the text as a JSON string, escaping each control character
///   other than `\b \t \n \f \r` as `\u00XX`: 6 bytes per body byte at worst (a base64
///   body is 4/3 and never escaped);
/// - `msgpack`: a str of the text as is (1 byte per byte), or of its base64 for non-UTF-8
///   bytes: `4·⌈n/3⌉` at worst.
///
/// [`EVENT_RESERVE_BYTES`] is kept for the rest of the event, and `extra_bytes` for what the
/// record carries beside its event ([`record_extra_bytes`]); `value_in_base64` when the event
/// travels as base64 inside the value (MessagePack in a CloudEvents envelope: 4 bytes per 3 of
/// the whole event). `(0, false)` is a record without CloudEvents or record headers.
pub fn max_body_bytes(
    format: ValueFormat,
    batch_max_bytes: usize,
    extra_bytes: usize,
    value_in_base64: bool,
) -> usize {
    let room = batch_max_bytes.saturating_sub(extra_bytes);
    let room = if value_in_base64 { room / 4 * 3 } else { room };
    let room = room.saturating_sub(EVENT_RESERVE_BYTES);
    match format {
        ValueFormat::Json => room / JSON_WORST_EXPANSION,
        ValueFormat::Msgpack => room / 4 * 3,
    }
}

/// Bytes a record counts beyond its event at most, as [`crate::Record::size`] counts them:
/// the CloudEvents envelope or headers ([`cloudevents::max_extra_bytes`]) and each record header
/// at its longest value, and whether the event goes as base64 inside the value.
pub fn record_extra_bytes(
    dialect: Dialect,
    format: ValueFormat,
    ce: Option<&cloudevents::CloudEventsConfig>,
    record_headers: &[String],
) -> (usize, bool) {
    let ce_bytes = ce.map_or(0, |ce| cloudevents::max_extra_bytes(ce, dialect, format));
    let headers: usize = record_headers
        .iter()
        .map(|n| n.len() + MAX_HEADER_VALUE_BYTES + HEADER_OVERHEAD_BYTES)
        .sum();
    let base64 = ce.is_some()
        && format == ValueFormat::Msgpack
        && cloudevents::mode(dialect) == cloudevents::Mode::Structured;
    (ce_bytes + headers, base64)
}

/// Bytes a JSON string literal spends on one body byte at worst (`\u00XX`).
const JSON_WORST_EXPANSION: usize = 6;

/// Validates `raw` into a [`Config`], or returns every problem found.
pub(super) fn validate(raw: RawConfig) -> Result<Config, Vec<ConfigError>> {
    // Taken apart once, by move: every field is named here (a new one does not compile until
    // it is), checked below, and moved into the `Config` at the end.
    let RawConfig {
        cluster,
        authority,
        dialect,
        cluster_id,
        path_prefix,
        format,
        auth,
        timeout_ms,
        tick_ms,
        rules: raw_rules,
        query_params,
        headers: raw_headers,
        client_ip,
        body,
        response_fields,
        http_filter_rules,
        key,
        batch,
        buffer,
        max_in_flight,
        retry,
        shutdown_deadline_ms,
        record_headers,
        cloudevents,
    } = raw;
    let mut e = Errors::default();

    // Connection to the REST proxy.
    if !is_cluster_name(&cluster) {
        e.push(
            "cluster",
            "must name an Envoy cluster: 1-255 visible ASCII characters, no spaces",
        );
    }
    if let Some(a) = &authority {
        if a.len() > MAX_HOST_BYTES {
            e.push("authority", too_long(MAX_HOST_BYTES, a.len()));
        } else if a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic()) {
            e.push(
                "authority",
                "must be non-empty visible ASCII without spaces when given (it defaults to the cluster name)",
            );
        }
    }
    match (&dialect, &cluster_id) {
        (Dialect::ConfluentV3, None) => e.push(
            "cluster_id",
            "is required when dialect is \"confluent_v3\" (the id from GET /v3/clusters)",
        ),
        (_, Some(id)) if !is_cluster_id(id) => e.push(
            "cluster_id",
            "must be 1-255 characters of A-Z a-z 0-9 . _ - (a Kafka cluster id)",
        ),
        _ => {}
    }
    if path_prefix.len() > MAX_PATH_PREFIX_BYTES {
        e.push(
            "path_prefix",
            too_long(MAX_PATH_PREFIX_BYTES, path_prefix.len()),
        );
    } else if !is_path_prefix(&path_prefix) {
        e.push(
            "path_prefix",
            "must be empty or start with '/', not end with '/', and contain no '?', '#' or spaces",
        );
    }
    e.range("timeout_ms", timeout_ms, 1, 300_000, " ms");
    e.range("tick_ms", tick_ms, 10, 60_000, " ms");
    e.range("max_in_flight", max_in_flight, 1, 64, "");
    e.range(
        "shutdown_deadline_ms",
        shutdown_deadline_ms,
        0,
        60_000,
        " ms",
    );

    // Batches and buffer.
    e.range("batch.max_events", batch.max_events, 1, 10_000, "");
    e.range("batch.max_bytes", batch.max_bytes, KIB, 16 * MIB, " bytes");
    e.range("batch.max_age_ms", batch.max_age_ms, 1, 600_000, " ms");
    // A cross-field bound is only checked against a referenced value that is itself valid:
    // one mistake gives one error.
    let batch_events_ok = (1..=10_000).contains(&batch.max_events);
    let batch_bytes_ok = (KIB..=16 * MIB).contains(&batch.max_bytes);
    if (batch_events_ok && buffer.max_events < batch.max_events) || buffer.max_events > 1_000_000 {
        e.push(
            "buffer.max_events",
            format!(
                "must be between batch.max_events ({}) and 1000000, got {}",
                batch.max_events, buffer.max_events
            ),
        );
    }
    if (batch_bytes_ok && buffer.max_bytes < batch.max_bytes) || buffer.max_bytes > 256 * MIB {
        e.push(
            "buffer.max_bytes",
            format!(
                "must be between batch.max_bytes ({}) and {} bytes (256 MiB), got {}",
                batch.max_bytes,
                256 * MIB,
                buffer.max_bytes
            ),
        );
    }

    // Retries.
    e.range(
        "retry.initial_backoff_ms",
        retry.initial_backoff_ms,
        1,
        60_000,
        " ms",
    );
    let initial_ok = (1..=60_000).contains(&retry.initial_backoff_ms);
    if (initial_ok && retry.max_backoff_ms < retry.initial_backoff_ms)
        || retry.max_backoff_ms > 600_000
    {
        e.push(
            "retry.max_backoff_ms",
            format!(
                "must be between retry.initial_backoff_ms ({}) and 600000 ms, got {}",
                retry.initial_backoff_ms, retry.max_backoff_ms
            ),
        );
    }
    e.range_f64("retry.multiplier", retry.multiplier, 1.0, 10.0);
    e.range_f64("retry.jitter", retry.jitter, 0.0, 1.0);
    e.range("retry.budget_ms", retry.budget_ms, 0, 3_600_000, " ms");
    // `retry::backoff_ms` draws the first delay from `initial·(1−jitter)` up, rounded and at
    // least 1 ms: a smaller non-zero budget lets no record ever be retried.
    let jitter_ok = retry.jitter.is_finite() && (0.0..=1.0).contains(&retry.jitter);
    if initial_ok && jitter_ok && retry.budget_ms > 0 {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let first = (retry.initial_backoff_ms as f64 * (1.0 - retry.jitter))
            .round()
            .max(1.0) as u64;
        if retry.budget_ms < first {
            e.push(
                "retry.budget_ms",
                format!(
                    "must be 0 (no retries) or at least {first} ms, the shortest first retry delay (retry.initial_backoff_ms × (1 − retry.jitter)): no record could ever be retried, got {}",
                    retry.budget_ms
                ),
            );
        }
    }

    // Client IP and body.
    let ip = &client_ip;
    match (ip.mode, ip.salt.as_deref()) {
        (IpMode::Hash, None | Some("")) => e.push(
            "client_ip.salt",
            "is required (non-empty) when client_ip.mode is \"hash\"",
        ),
        (IpMode::Hash, Some(_)) | (_, None) => {}
        (_, Some(_)) => e.push(
            "client_ip.salt",
            "is only used when client_ip.mode is \"hash\": remove it or set the mode to hash",
        ),
    }
    if ip.trusted_hops > MAX_TRUSTED_HOPS {
        e.push(
            "client_ip.trusted_hops",
            format!(
                "must be between 0 and {MAX_TRUSTED_HOPS}, got {}",
                ip.trusted_hops
            ),
        );
    }
    e.range(
        "body.max_bytes",
        body.max_bytes,
        0,
        MAX_BODY_BYTES,
        " bytes",
    );
    let body_ok = body.max_bytes <= MAX_BODY_BYTES;
    let captures_bodies = raw_rules.iter().any(|r| r.capture_body);
    if body_ok && batch_bytes_ok && captures_bodies {
        // CloudEvents and record headers count only when they are valid themselves.
        let ce = cloudevents
            .as_ref()
            .filter(|ce| cloudevents::check(ce).is_empty());
        let headers_ok = record_headers.len() <= MAX_RECORD_HEADERS
            && record_headers
                .iter()
                .all(|n| n.len() <= MAX_HEADER_NAME_BYTES);
        let headers_for_bound = if headers_ok { &record_headers[..] } else { &[] };
        let (extra, base64) = record_extra_bytes(dialect, format, ce, headers_for_bound);
        let max = max_body_bytes(format, batch.max_bytes, extra, base64);
        if body.max_bytes > max {
            let (format, why) = match format {
                ValueFormat::Json => (
                    "json",
                    "a body escapes to up to 6 bytes per byte in a JSON record (control characters as \\u00XX)",
                ),
                ValueFormat::Msgpack => (
                    "msgpack",
                    "a non-UTF-8 body is base64 in a MessagePack record (4 bytes per 3)",
                ),
            };
            e.push(
                "body.max_bytes",
                format!(
                    "must be at most {max} bytes with batch.max_bytes {} and format \"{format}\": {why}, {EVENT_RESERVE_BYTES} bytes are kept for the event's other fields{}, and an event larger than batch.max_bytes is dropped as too large; got {}",
                    batch.max_bytes,
                    if extra > 0 {
                        format!(" and {extra} for its CloudEvents attributes and record headers")
                    } else {
                        String::new()
                    },
                    body.max_bytes
                ),
            );
        }
    }

    // Allow-lists.
    let query_targets = check_query_params(&mut e, &query_params);
    let headers = check_headers(&mut e, "headers", &raw_headers, MAX_HEADERS);
    let record_headers = check_record_headers(&mut e, dialect, &record_headers);
    if let Some(ce) = &cloudevents {
        e.0.extend(cloudevents::check(ce));
    }

    if let Some(auth) = &auth {
        check_auth(&mut e, auth);
    }

    // Keys: the top-level one is checked once, at `key`; rules inheriting it add no errors.
    let keys = KeyContext {
        query_targets: &query_targets,
        headers: &headers,
        ip_mode: ip.mode,
    };
    let default_key = key
        .as_ref()
        .and_then(|k| keys.check(&mut e, "key".into(), k));

    // Rules.
    if raw_rules.is_empty() || raw_rules.len() > MAX_RULES {
        e.push(
            "rules",
            format!(
                "must hold between 1 and {MAX_RULES} rules, got {}",
                raw_rules.len()
            ),
        );
    }
    let mut topics: Vec<String> = Vec::new();
    let mut rules = Vec::with_capacity(raw_rules.len());
    // Valid rules with their index, for the shadowing check.
    let mut checked: Vec<(usize, Rule)> = Vec::with_capacity(raw_rules.len());
    for (i, r) in raw_rules.into_iter().enumerate() {
        if r.capture_body && body.max_bytes == 0 {
            e.push(
                format!("rules[{i}].capture_body"),
                "needs body.max_bytes greater than 0",
            );
        }
        if let Some(rule) = check_rule(&mut e, &keys, i, r, &mut topics) {
            if let Some((j, earlier)) = checked.iter().find(|(_, earlier)| covers(earlier, &rule)) {
                e.push(format!("rules[{i}]"), shadowed_message(*j, earlier, &rule));
            }
            let rule = Rule {
                key: rule.key.or_else(|| default_key.clone()),
                ..rule
            };
            checked.push((i, rule.clone()));
            rules.push(rule);
        }
    }

    if !e.0.is_empty() {
        return Err(e.0);
    }
    let auth = auth.map(|a| match a {
        AuthConfig::Header { name, value } => AuthConfig::Header {
            name: name.to_ascii_lowercase(),
            value,
        },
        other => other,
    });
    Ok(Config {
        authority: authority.unwrap_or_else(|| cluster.clone()),
        cluster,
        dialect,
        cluster_id,
        path_prefix,
        format,
        auth,
        timeout_ms,
        tick_ms,
        rules,
        topics,
        query_params,
        headers,
        client_ip,
        body,
        response_fields: ResponseFields::from_list(&response_fields),
        http_filter_rules,
        batch,
        buffer,
        max_in_flight,
        retry,
        shutdown_deadline_ms,
        record_headers,
        cloudevents,
    })
}

/// The problems found so far.
#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn range<T: PartialOrd + Display>(&mut self, path: &str, v: T, lo: T, hi: T, unit: &str) {
        if v < lo || v > hi {
            self.push(
                path,
                format!("must be between {lo} and {hi}{unit}, got {v}"),
            );
        }
    }

    fn range_f64(&mut self, path: &str, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.push(
                path,
                format!("must be a finite number between {lo:.1} and {hi:.1}, got {v}"),
            );
        }
    }
}

/// What a record key may refer to.
struct KeyContext<'a> {
    query_targets: &'a [&'a str],
    headers: &'a [String],
    ip_mode: IpMode,
}

impl KeyContext<'_> {
    /// Checks a key of one field or a list of fields (each part as a single key is, at
    /// `key[i]`); a list needs 2 to [`MAX_KEY_FIELDS`] distinct fields.
    fn check(&self, e: &mut Errors, path: String, key: &RawKey) -> Option<Key> {
        let fields = match key {
            RawKey::One(field) => return self.check_field(e, path, field).map(Key::Field),
            RawKey::Many(fields) => fields,
        };
        if fields.len() < 2 {
            e.push(
                path,
                format!(
                    "a key list needs 2 to {MAX_KEY_FIELDS} fields, got {}: write a key of one field as a string (\"key\": \"query.campaign_id\")",
                    fields.len()
                ),
            );
            return None;
        }
        let before = e.0.len();
        let mut parts: Vec<KeySource> = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            let Some(src) = self.check_field(e, format!("{path}[{i}]"), field) else {
                continue;
            };
            if parts.contains(&src) {
                e.push(
                    format!("{path}[{i}]"),
                    format!("`{field}` is listed twice: each field of a key appears once"),
                );
            }
            parts.push(src);
        }
        (e.0.len() == before).then_some(Key::Joined(parts))
    }

    /// Parses a key source and checks that it can ever be present in an event.
    fn check_field(&self, e: &mut Errors, path: String, key: &str) -> Option<KeySource> {
        let src = match KeySource::parse(key) {
            Ok(src) => src,
            Err(msg) => {
                e.push(path, msg);
                return None;
            }
        };
        let problem = match &src {
            KeySource::Query(n) if !self.query_targets.contains(&n.as_str()) => Some(format!(
                "`query.{n}` is not a captured query parameter: add it to query_params (keys use the name after any rename)"
            )),
            KeySource::Header(n) if !self.headers.contains(n) => Some(format!(
                "`header.{n}` is not a captured header: add it to headers"
            )),
            KeySource::ClientIp if self.ip_mode == IpMode::Omit => Some(
                "`client_ip` can never be present while client_ip.mode is \"omit\"".to_string(),
            ),
            _ => None,
        };
        match problem {
            Some(msg) => {
                e.push(path, msg);
                None
            }
            None => Some(src),
        }
    }
}

/// Checks one rule; returns it normalised when its own fields are valid (the topic is then
/// registered in `topics`).
fn check_rule(
    e: &mut Errors,
    keys: &KeyContext<'_>,
    i: usize,
    r: RawRule,
    topics: &mut Vec<String>,
) -> Option<Rule> {
    let before = e.0.len();
    let p = |field: &str| format!("rules[{i}].{field}");

    if !is_event_type(&r.event_type) {
        e.push(
            p("event_type"),
            format!("must be 1-{MAX_EVENT_TYPE_BYTES} characters of A-Z a-z 0-9 _ . -"),
        );
    }
    if !is_topic(&r.topic) {
        e.push(
            p("topic"),
            "must be a Kafka topic name: 1-249 characters of a-z A-Z 0-9 . _ -, not \".\" or \"..\"",
        );
    }
    if let Some(m) = &r.method {
        if m.len() > MAX_METHOD_BYTES {
            e.push(p("method"), too_long(MAX_METHOD_BYTES, m.len()));
        } else if !is_token(m) {
            e.push(
                p("method"),
                "must be an HTTP method token such as GET or POST",
            );
        }
    }
    let (kind, path) = match &r.path {
        PathMatch::Exact(s) => ("exact", s),
        PathMatch::Prefix(s) => ("prefix", s),
    };
    if path.len() > MAX_PATH_BYTES {
        e.push(
            p(&format!("path.{kind}")),
            too_long(MAX_PATH_BYTES, path.len()),
        );
    } else if !path.starts_with('/')
        || path.contains(['?', '#'])
        || path.contains(char::is_whitespace)
    {
        e.push(
            p(&format!("path.{kind}")),
            "must start with '/' and contain no '?', '#' or spaces (paths are matched without the query string)",
        );
    }
    let host = r
        .host
        .as_deref()
        .map(|h| host_without_port(h).to_ascii_lowercase());
    let raw_host_len = r.host.as_ref().map_or(0, String::len);
    if raw_host_len > MAX_HOST_BYTES {
        e.push(p("host"), too_long(MAX_HOST_BYTES, raw_host_len));
    } else if let Some(h) = &host {
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_graphic()) {
            e.push(
                p("host"),
                "must be a non-empty host name without spaces when given (port ignored, case-insensitive)",
            );
        }
    }
    if !(r.sample_rate.is_finite() && (0.0..=1.0).contains(&r.sample_rate)) {
        e.push(
            p("sample_rate"),
            format!(
                "must be a finite number between 0.0 and 1.0, got {}",
                r.sample_rate
            ),
        );
    }
    let key = r.key.as_ref().and_then(|k| keys.check(e, p("key"), k));
    if e.0.len() != before {
        return None;
    }
    let topic = match topics.iter().position(|t| *t == r.topic) {
        Some(t) => t,
        None => {
            topics.push(r.topic);
            topics.len() - 1
        }
    };
    Some(Rule {
        event_type: r.event_type,
        topic,
        method: r.method,
        path: r.path,
        host,
        sample_rate: r.sample_rate,
        capture_body: r.capture_body,
        key,
    })
}

/// Checks the query allow-list; returns the target names (valid or not, for key checks).
fn check_query_params<'a>(e: &mut Errors, specs: &'a [QueryParamSpec]) -> Vec<&'a str> {
    if specs.len() > MAX_QUERY_PARAMS {
        e.push(
            "query_params",
            format!(
                "must hold at most {MAX_QUERY_PARAMS} parameters, got {}",
                specs.len()
            ),
        );
    }
    let name_ok = |s: &str| !s.is_empty() && s.len() <= MAX_NAME_BYTES;
    let bad_name = format!("must be a non-empty name of at most {MAX_NAME_BYTES} bytes");
    let mut targets: Vec<&str> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let (source_path, target_path) = match spec {
            QueryParamSpec::Name(_) => (format!("query_params[{i}]"), format!("query_params[{i}]")),
            QueryParamSpec::Renamed { .. } => (
                format!("query_params[{i}].name"),
                format!("query_params[{i}].as"),
            ),
        };
        if !name_ok(spec.source()) {
            e.push(source_path.clone(), bad_name.clone());
        }
        let target = spec.target();
        if matches!(spec, QueryParamSpec::Renamed { .. }) && !name_ok(target) {
            e.push(target_path, bad_name.clone());
        } else if targets.contains(&target) {
            e.push(
                target_path,
                format!("captures into `{target}` twice: event names must be unique"),
            );
        }
        targets.push(target);
    }
    targets
}

/// Checks a list of request header names (`headers`, `record_headers`) holding at most `max`;
/// returns it lower-cased.
fn check_headers(e: &mut Errors, field: &str, names: &[String], max: usize) -> Vec<String> {
    if names.len() > max {
        e.push(
            field,
            format!("must hold at most {max} headers, got {}", names.len()),
        );
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        if name.len() > MAX_HEADER_NAME_BYTES {
            e.push(
                format!("{field}[{i}]"),
                too_long(MAX_HEADER_NAME_BYTES, name.len()),
            );
        } else if name.starts_with(':') {
            e.push(
                format!("{field}[{i}]"),
                "must not be a pseudo-header (:method, :path… are captured as fields already)",
            );
        } else if !is_token(name) {
            e.push(
                format!("{field}[{i}]"),
                "must be a valid header name (letters, digits and !#$%&'*+-.^_`|~)",
            );
        } else if out.contains(&lower) {
            e.push(
                format!("{field}[{i}]"),
                format!("`{lower}` is listed twice (names are case-insensitive)"),
            );
        }
        out.push(lower);
    }
    out
}

/// Record header names adtap writes itself on v3 records: `content-type`, `adtap-schema`, and
/// the CloudEvents attributes (`ce_` and the attribute).
fn is_reserved_record_header(name: &str) -> bool {
    name == "content-type" || name == "adtap-schema" || name.starts_with("ce_")
}

/// Checks `record_headers`: Confluent v3 only (the other dialects have no record headers, and
/// a header silently left out would be lost), valid distinct names not reserved by adtap;
/// returns them lower-cased.
fn check_record_headers(e: &mut Errors, dialect: Dialect, names: &[String]) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    if dialect != Dialect::ConfluentV3 {
        e.push(
            "record_headers",
            "needs dialect \"confluent_v3\": the v2 and Redpanda APIs have no record headers (capture the header in the event with `headers` instead)",
        );
    }
    let names = check_headers(e, "record_headers", names, MAX_RECORD_HEADERS);
    for (i, name) in names.iter().enumerate() {
        if is_reserved_record_header(name) {
            e.push(
                format!("record_headers[{i}]"),
                format!("`{name}` is a record header adtap writes itself (content-type, adtap-schema, ce_*)"),
            );
        }
    }
    names
}

/// Checks the auth header settings without ever quoting a secret.
fn check_auth(e: &mut Errors, auth: &AuthConfig) {
    match auth {
        AuthConfig::Basic { username, password } => {
            if username.len() > MAX_SECRET_BYTES {
                e.push("auth.basic.username", secret_too_long());
            } else if username.is_empty()
                || username.contains(':')
                || username.chars().any(char::is_control)
            {
                e.push(
                    "auth.basic.username",
                    "must be non-empty, without ':' or control characters",
                );
            }
            if password.len() > MAX_SECRET_BYTES {
                e.push("auth.basic.password", secret_too_long());
            }
        }
        AuthConfig::Bearer(token) => {
            if token.len() > MAX_SECRET_BYTES {
                e.push("auth.bearer", secret_too_long());
            } else if token.is_empty() || token.chars().any(char::is_control) {
                e.push(
                    "auth.bearer",
                    "must be non-empty and contain no control characters (CR, LF…)",
                );
            }
        }
        AuthConfig::Header { name, value } => {
            if name.len() > MAX_HEADER_NAME_BYTES {
                e.push(
                    "auth.header.name",
                    too_long(MAX_HEADER_NAME_BYTES, name.len()),
                );
            } else if name.starts_with(':') {
                e.push("auth.header.name", "must not be a pseudo-header");
            } else if !is_token(name) {
                e.push(
                    "auth.header.name",
                    "must be a valid header name (letters, digits and !#$%&'*+-.^_`|~)",
                );
            } else if RESERVED_AUTH_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                e.push(
                    "auth.header.name",
                    "must not be a header adtap sets itself (content-type, content-length, transfer-encoding, host, connection)",
                );
            }
            // Tab is legal inside a header value; other controls (CR, LF, NUL) are not.
            if value.len() > MAX_SECRET_BYTES {
                e.push("auth.header.value", secret_too_long());
            } else if value.is_empty() || value.chars().any(|c| c.is_control() && c != '\t') {
                e.push(
                    "auth.header.value",
                    "must be non-empty and contain no control characters (CR, LF…)",
                );
            }
        }
    }
}

/// "must be at most N bytes, got M" (for values that are not secrets).
fn too_long(max: usize, got: usize) -> String {
    format!("must be at most {max} bytes, got {got}")
}

/// The length message for a secret: neither its value nor its length is said.
fn secret_too_long() -> String {
    format!("must be at most {MAX_SECRET_BYTES} bytes")
}

/// Whether every request `later` matches is matched by `earlier` (so, first match winning in
/// every deployment — `session` lets the first matching rule decide even when it belongs to the
/// other deployment —, `later` can never match).
///
/// Sound, not complete: it holds when `earlier`'s method is absent or the same, its host is
/// absent or the same (both lower-case, port stripped), and its path is the same exact path or
/// a prefix of `later`'s exact path or prefix. A rule covered only by several earlier rules
/// together (a `GET` rule and a `POST` rule before a method-less one) is not detected.
fn covers(earlier: &Rule, later: &Rule) -> bool {
    let method = earlier.method.is_none() || earlier.method == later.method;
    let host = earlier.host.is_none() || earlier.host == later.host;
    let path = match (&earlier.path, &later.path) {
        (PathMatch::Exact(a), PathMatch::Exact(b)) => a == b,
        (PathMatch::Exact(_), PathMatch::Prefix(_)) => false,
        (PathMatch::Prefix(a), PathMatch::Exact(b) | PathMatch::Prefix(b)) => {
            b.starts_with(a.as_str())
        }
    };
    method && host && path
}

/// Why `later` can never match: identical to `earlier` (`rules[j]`) or covered by it.
fn shadowed_message(j: usize, earlier: &Rule, later: &Rule) -> String {
    let same =
        earlier.method == later.method && earlier.host == later.host && earlier.path == later.path;
    if same {
        return format!(
            "matches exactly what rules[{j}] matches (same method, host and path), and the first matching rule wins: it can never match; remove one of them"
        );
    }
    let path = match &earlier.path {
        PathMatch::Exact(p) => format!("exact path {p:?}"),
        PathMatch::Prefix(p) => format!("prefix {p:?}"),
    };
    format!(
        "can never match: rules[{j}] comes first and matches every request it matches ({path}, {} method, {} host); move it before rules[{j}] or remove it",
        if earlier.method.is_none() { "any" } else { "the same" },
        if earlier.host.is_none() { "any" } else { "the same" },
    )
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token`: header names and methods.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Envoy accepts almost any cluster name; we require what fits in a header and a log line.
fn is_cluster_name(s: &str) -> bool {
    (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Kafka cluster ids are base64url-ish; it is spliced into a URL path unescaped.
fn is_cluster_id(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_path_prefix(s: &str) -> bool {
    s.is_empty()
        || (s.starts_with('/')
            && !s.ends_with('/')
            && !s.contains(['?', '#'])
            && s.bytes().all(|b| b.is_ascii_graphic()))
}

fn is_event_type(s: &str) -> bool {
    (1..=MAX_EVENT_TYPE_BYTES).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Kafka's own rule (`Topic.validate`): 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn is_topic(s: &str) -> bool {
    (1..=249).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests;
