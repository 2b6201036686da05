//! `validateConfig` and `previewEvent` as pure functions returning serialisable results, so
//! they are unit-tested natively; `lib.rs` only converts to and from JavaScript values.
//!
//! A preview runs the filter's own capture: `Config::parse` (as `on_configure`), then the core's
//! [`Session`] on a [`Worker`] over [`SampleHost`], a host whose stream is the sample request
//! (the reads the filter makes, answered from the sample), the record it writes, then `build_request`
//! once per REST dialect.

use crate::request::{RequestHeaders, SampleRequest};
use adtap_core::capture::{self, BodyCapture};
use adtap_core::cloudevents;
use adtap_core::config::{AuthConfig, Dialect, ValueFormat};
use adtap_core::encode::{self, HttpRequest};
use adtap_core::headers::HeaderPairs;
use adtap_core::host::{Host, HostError, LogLevel, MetricKind, Property};
use adtap_core::session::{self, Decision, Deployment, Session};
use adtap_core::worker::Worker;
use adtap_core::{Config, ConfigError, Event, Record};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::ser::{SerializeMap as _, Serializer};
use serde::Serialize;

/// Event id used in previews, so that the same request always previews to the same bytes.
pub const PREVIEW_EVENT_ID: &str = "preview-0";

/// Kafka cluster id used for the `confluent_v3` request when the configuration has none.
pub const PREVIEW_CLUSTER_ID: &str = "preview-cluster";

/// One configuration problem as JavaScript sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorView {
    /// JSON path of the field.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn error_views(errors: Vec<ConfigError>) -> Vec<ErrorView> {
    errors
        .into_iter()
        .map(|e| ErrorView {
            path: e.path,
            message: e.message,
        })
        .collect()
}

/// Result of `validateConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    /// True when the filter would accept the configuration.
    pub ok: bool,
    /// Every problem found (empty when `ok`).
    pub errors: Vec<ErrorView>,
}

/// Validates a configuration document with exactly the errors the filter's `on_configure`
/// reports.
pub fn validate_config(json: &[u8]) -> Validation {
    match Config::parse(json) {
        Ok(_) => Validation {
            ok: true,
            errors: Vec::new(),
        },
        Err(errors) => Validation {
            ok: false,
            errors: error_views(errors),
        },
    }
}

/// Result of `previewEvent`. Serialised field by field, so the event keeps its wire field order
/// (`v`, `id`, `type`, `ts`, …) on the JavaScript side.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Whether the request produces an event.
    pub matched: bool,
    /// Why not: `no_rule_matched`, `sampled_out` or `invalid_config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// With `invalid_config`: every configuration error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ErrorView>>,
    /// Index of the matching rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// The rule's event type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The rule's topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The record key (`null` when its source is absent from the request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Option<String>>,
    /// The rule's sampling probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// The event, as consumers decode it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Event>,
    /// The encoded record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordView>,
    /// The batch request carrying the record, per REST dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<Requests>,
}

/// The record as buffered and sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordView {
    /// Topic name.
    pub topic: String,
    /// Record key.
    pub key: Option<String>,
    /// Record headers beyond `content-type` and `adtap-schema` (v3): the CloudEvents
    /// attributes, then the configured request headers; as text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<RecordHeader>,
    /// With `cloudevents` configured: `binary` (attributes as v3 record headers) or
    /// `structured` (the value is the `application/cloudevents+json` envelope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_events: Option<&'static str>,
    /// The value, base64.
    pub value_base64: String,
    /// The value as text, for the JSON format and the structured CloudEvents envelope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_text: Option<String>,
    /// Bytes counted against buffer and batch limits.
    pub size: usize,
}

/// One record header, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordHeader {
    /// Header name.
    pub name: String,
    /// Header value (text; v3 sends it base64-encoded).
    pub value: String,
}

/// Whether the configured dialect gets the structured CloudEvents envelope as its value.
fn structured(cfg: &Config) -> bool {
    cfg.cloudevents.is_some() && cloudevents::mode(cfg.dialect) == cloudevents::Mode::Structured
}

/// The event a record value carries: the value itself, or the `data` / `data_base64` of a
/// structured CloudEvents envelope.
fn event_of(cfg: &Config, value: &[u8]) -> Result<Event, String> {
    let decoded = if structured(cfg) {
        crate::decode::decode_envelope(value, cfg.format)
    } else {
        encode::decode_value(cfg.format, value).map_err(|e| e.0)
    };
    decoded.map_err(|e| format!("cannot decode the record: {e}"))
}

/// The record headers the filter took from the request (`record_headers`): those after the
/// CloudEvents attributes, which come first and are rebuilt with the preview id.
fn request_record_headers(cfg: &Config, record: &Record) -> Vec<(String, String)> {
    let ce = record
        .headers
        .iter()
        .take_while(|(name, _)| cfg.cloudevents.is_some() && name.starts_with("ce_"))
        .count();
    record.headers.iter().skip(ce).cloned().collect()
}

/// The record of `event` under `cfg` (its CloudEvents form included), with `extra` record
/// headers after the CloudEvents ones, as the filter's writer orders them.
fn record_for(
    cfg: &Config,
    rule: usize,
    event: &Event,
    extra: &[(String, String)],
) -> Result<Record, String> {
    let mut record = encode::to_record(cfg, rule, event)
        .map_err(|e| format!("cannot encode the event: {}", e.0))?;
    record.headers.extend(extra.iter().cloned());
    Ok(record)
}

/// The same record shipped in each REST dialect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requests {
    /// Confluent REST Proxy v2.
    pub confluent_v2: RequestView,
    /// Confluent REST Proxy v3.
    pub confluent_v3: RequestView,
    /// Redpanda HTTP Proxy.
    pub redpanda: RequestView,
}

/// An HTTP request to the REST proxy, credentials redacted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// `:path`.
    pub path: Option<String>,
    /// Headers in the order sent, as an object.
    pub headers: HeaderMap,
    /// Body: text, or base64 when not UTF-8 (then `bodyBase64`).
    pub body: String,
    /// Set when `body` is base64.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub body_base64: bool,
}

/// Header pairs serialised as a JSON object in their original order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap(pub Vec<(String, String)>);

impl Serialize for HeaderMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// What `request` would become under `config`: the event, its record and the batch request in
/// each dialect, or why there is none. `Err` only for a malformed request or an event that
/// cannot be encoded; an invalid configuration is a normal answer (`reason: "invalid_config"`).
pub fn preview(config: &[u8], request: &SampleRequest, ts_ms: u64) -> Result<Preview, String> {
    let cfg = match Config::parse(config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            return Ok(Preview {
                reason: Some("invalid_config"),
                errors: Some(error_views(errors)),
                ..Preview::default()
            })
        }
    };
    let headers = request.header_pairs()?;
    let host_name = request.authority(&headers);
    // Sampling is random in the filter; a preview shows the event as if sampled in and reports
    // the probability, except at rate 0 where no request is ever captured.
    let mut sampled_in = cfg.clone();
    for r in &mut sampled_in.rules {
        if r.sample_rate > 0.0 {
            r.sample_rate = 1.0;
        }
    }
    let mut worker = Worker::new(sampled_in, 0);
    let mut host = SampleHost::new(request, &headers, &host_name);
    // The HTTP filter: the deployment that sees bodies, so every rule previews.
    let session = match Session::begin(&mut worker, &mut host, Deployment::HttpFilter) {
        Decision::Capture(session) => session,
        Decision::Skip => {
            let rule = capture::match_rule(
                &cfg,
                capture::RequestHead {
                    method: &request.method,
                    host: &host_name,
                    path: &request.path,
                },
            );
            let Some(rule_idx) = rule else {
                return Ok(Preview {
                    reason: Some("no_rule_matched"),
                    ..Preview::default()
                });
            };
            let rule = cfg.rules.get(rule_idx);
            return Ok(Preview {
                reason: Some("sampled_out"),
                rule: Some(rule_idx),
                event_type: rule.map(|r| r.event_type.clone()),
                topic: rule.and_then(|r| cfg.topics.get(r.topic).cloned()),
                sample_rate: rule.map(|r| r.sample_rate),
                ..Preview::default()
            });
        }
    };
    let rule_idx = session.rule();
    let rule = cfg
        .rules
        .get(rule_idx)
        .ok_or_else(|| format!("internal: rule {rule_idx} out of range"))?;
    let topic = cfg.topics.get(rule.topic).cloned().unwrap_or_default();
    let matched = Preview {
        rule: Some(rule_idx),
        event_type: Some(rule.event_type.clone()),
        topic: Some(topic.clone()),
        sample_rate: Some(rule.sample_rate),
        ..Preview::default()
    };
    let mut session = session;
    if let Some(body) = request.body.as_deref().filter(|b| !b.is_empty()) {
        // As the filter does: the body streams by in one chunk, read up to what is wanted.
        let mut cap = BodyCapture::new(cfg.body.max_bytes);
        host.body = body.as_bytes();
        session::collect_body(&mut cap, &mut host, body.len());
        session.attach_body(&worker, cap);
    }
    // The filter's timestamp is the log time, less the duration when it is read.
    let log_time = ts_ms.saturating_add(request.duration_us.unwrap_or(0) / 1_000);
    let record = session
        .complete(&mut worker, &mut host, log_time)
        .map_err(|e| format!("cannot encode the event: {}", e.0))?;
    // The preview shows a fixed id rather than the random one the filter draws: the record is
    // rebuilt with it by the core's serde path (`to_record`, byte for byte the writer's, with
    // the CloudEvents form), keeping the configured record headers the filter took from the
    // request (an event does not carry them). The key never depends on the id.
    let mut event = event_of(&cfg, &record.value)?;
    event.id = PREVIEW_EVENT_ID.to_string();
    let from_request = request_record_headers(&cfg, &record);
    let record = record_for(&cfg, rule_idx, &event, &from_request)?;
    let value_text = std::str::from_utf8(&record.value)
        .ok()
        .filter(|_| cfg.format == ValueFormat::Json || structured(&cfg))
        .map(str::to_string);
    let auth = auth_header_name(&cfg);
    // Each dialect's request carries that dialect's record: CloudEvents travel as headers on
    // v3 and as an envelope on v2 and Redpanda, and only v3 has record headers.
    let request_in = |dialect: Dialect| -> Result<RequestView, String> {
        let mut c = cfg.clone();
        c.dialect = dialect;
        if dialect == Dialect::ConfluentV3 && c.cluster_id.is_none() {
            c.cluster_id = Some(PREVIEW_CLUSTER_ID.to_string());
        }
        let extra: &[(String, String)] = if dialect == Dialect::ConfluentV3 {
            &from_request
        } else {
            &[]
        };
        let r = record_for(&c, rule_idx, &event, extra)?;
        let req = encode::build_request(&c, r.topic, std::iter::once(&r));
        Ok(request_view(&req, auth.as_deref()))
    };
    let requests = Requests {
        confluent_v2: request_in(Dialect::ConfluentV2)?,
        confluent_v3: request_in(Dialect::ConfluentV3)?,
        redpanda: request_in(Dialect::Redpanda)?,
    };
    let cloud_events = cfg.cloudevents.as_ref().map(|_| {
        if structured(&cfg) {
            "structured"
        } else {
            "binary"
        }
    });

    Ok(Preview {
        matched: true,
        key: Some(record.key.clone()),
        event: Some(event),
        record: Some(RecordView {
            topic,
            key: record.key.clone(),
            headers: record
                .headers
                .iter()
                .map(|(name, value)| RecordHeader {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            cloud_events,
            value_base64: BASE64.encode(&record.value),
            value_text,
            size: record.size(),
        }),
        requests: Some(requests),
        ..matched
    })
}

/// The sample request as the filter's host: its headers (with the pseudo-headers), its body,
/// and what Envoy would answer to the log phase's reads.
pub struct SampleHost<'a> {
    request: &'a SampleRequest,
    headers: HeaderPairs,
    body: &'a [u8],
}

impl<'a> SampleHost<'a> {
    fn new(request: &'a SampleRequest, headers: &RequestHeaders, authority: &str) -> Self {
        let mut pairs: Vec<(&str, &str)> = vec![
            (":method", request.method.as_str()),
            (":path", request.path.as_str()),
            (":authority", authority),
        ];
        pairs.extend(headers.0.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        SampleHost {
            request,
            headers: HeaderPairs::from_pairs(&pairs),
            body: &[],
        }
    }
}

impl Host for SampleHost<'_> {
    fn request_headers(&mut self) -> Option<HeaderPairs> {
        Some(self.headers.clone())
    }
    fn response_status(&mut self) -> Option<u16> {
        self.request.status
    }
    fn property(&mut self, property: Property) -> Option<Vec<u8>> {
        let r = self.request;
        let int = |v: Option<u64>| v.map(|v| v.to_le_bytes().to_vec());
        let text = |v: &Option<String>| v.as_ref().map(|s| s.clone().into_bytes());
        match property {
            Property::RequestDuration => int(r.duration_us.map(|us| us * 1_000)),
            Property::RequestTotalSize => int(r.request_bytes),
            Property::ResponseTotalSize => int(r.response_bytes),
            Property::RouteName => text(&r.route),
            Property::ClusterName => text(&r.upstream),
            Property::SourceAddress => text(&r.peer_address),
            Property::PluginName => None,
        }
    }
    fn request_body(&mut self, max: usize) -> Option<Vec<u8>> {
        Some(self.body.get(..max.min(self.body.len()))?.to_vec())
    }
    fn call_response_status(&mut self) -> Option<u16> {
        None
    }
    fn call_response_body(&mut self, _: usize) -> Option<Vec<u8>> {
        None
    }
    fn dispatch(&mut self, _: &str, _: &HttpRequest, _: u64) -> Result<u32, HostError> {
        Err(HostError::BadArgument)
    }
    fn set_tick_period_ms(&mut self, _: u64) -> Result<(), HostError> {
        Ok(())
    }
    fn done(&mut self) -> Result<(), HostError> {
        Ok(())
    }
    fn log(&mut self, _: LogLevel, _: &str) {}
    fn define_metric(&mut self, _: MetricKind, _: &str) -> Result<u32, HostError> {
        Err(HostError::NotFound)
    }
    fn increment_metric(&mut self, _: u32, _: i64) -> Result<(), HostError> {
        Ok(())
    }
    fn record_metric(&mut self, _: u32, _: u64) -> Result<(), HostError> {
        Ok(())
    }
}

/// Lower-case name of the header carrying the REST proxy credentials, if any.
fn auth_header_name(cfg: &Config) -> Option<String> {
    match cfg.auth.as_ref()? {
        AuthConfig::Basic { .. } | AuthConfig::Bearer(_) => Some("authorization".to_string()),
        AuthConfig::Header { name, .. } => Some(name.to_ascii_lowercase()),
    }
}

/// The credentials header is shown redacted: a preview is for reading and sharing, and secrets
/// never leave the filter's configuration.
fn request_view(req: &HttpRequest, auth: Option<&str>) -> RequestView {
    let headers = req
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if Some(name.to_ascii_lowercase().as_str()) == auth {
                "<redacted>".to_string()
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect();
    let (body, body_base64) = match std::str::from_utf8(&req.body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (BASE64.encode(&req.body), true),
    };
    RequestView {
        path: req.header(":path").map(str::to_string),
        headers: HeaderMap(headers),
        body,
        body_base64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_json_is_one_error() {
        let v = validate_config(b"{not json");
        assert!(!v.ok);
        assert_eq!(v.errors.len(), 1);
    }

    #[test]
    fn preview_of_an_invalid_config_says_so() {
        let req = SampleRequest::from_json(r#"{"path":"/i"}"#).unwrap();
        let v = preview(b"[]", &req, 0).unwrap();
        assert!(!v.matched);
        assert_eq!(v.reason, Some("invalid_config"));
        assert!(!v.errors.unwrap().is_empty());
        let json = serde_json::to_value(preview(b"[]", &req, 0).unwrap()).unwrap();
        assert_eq!(json["matched"], json!(false));
        assert!(json.get("event").is_none());
    }

    #[test]
    fn cloudevents_use_the_preview_id_in_every_dialect() {
        let cfg = br#"{"cluster": "c", "dialect": "confluent_v3", "cluster_id": "k",
            "cloudevents": {"source": "/s"}, "record_headers": ["traceparent"],
            "rules": [{"event_type": "i", "topic": "t", "path": {"prefix": "/i"}}]}"#;
        let req =
            SampleRequest::from_json(r#"{"path":"/i","headers":{"traceparent":"00-1"}}"#).unwrap();
        let p = preview(cfg, &req, 1_000).unwrap();
        let record = p.record.unwrap();
        assert_eq!(record.cloud_events, Some("binary"));
        let names: Vec<_> = record.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ce_specversion",
                "ce_id",
                "ce_source",
                "ce_type",
                "ce_time",
                "ce_dataschema",
                "traceparent"
            ]
        );
        assert_eq!(record.headers[1].value, PREVIEW_EVENT_ID);
        let requests = p.requests.unwrap();
        // v2: the structured envelope, with the same id; no record headers.
        let v2: serde_json::Value = serde_json::from_str(&requests.confluent_v2.body).unwrap();
        assert_eq!(v2["records"][0]["value"]["id"], json!(PREVIEW_EVENT_ID));
        assert_eq!(
            v2["records"][0]["value"]["data"]["id"],
            json!(PREVIEW_EVENT_ID)
        );
        assert!(!requests.confluent_v2.body.contains("traceparent"));
        assert!(requests.confluent_v3.body.contains("\"ce_id\""));
    }

    #[test]
    fn auth_headers_are_redacted() {
        let req = HttpRequest {
            headers: vec![
                (":path".into(), "/topics/t".into()),
                ("authorization".into(), "Basic c2VjcmV0".into()),
            ],
            body: b"{}".to_vec(),
        };
        let v = serde_json::to_value(request_view(&req, Some("authorization"))).unwrap();
        assert_eq!(v["path"], json!("/topics/t"));
        assert_eq!(v["headers"]["authorization"], json!("<redacted>"));
        assert_eq!(v["body"], json!("{}"));
        let v = serde_json::to_value(request_view(
            &HttpRequest {
                headers: vec![],
                body: vec![0xff],
            },
            None,
        ))
        .unwrap();
        assert_eq!(v["body"], json!("/w=="));
        assert_eq!(v["bodyBase64"], json!(true));
    }
}
