//! The sample request a caller describes to `previewEvent`, read from its JSON form.
//!
//! Field names are camelCase as JavaScript writes them. Unknown fields are rejected so that a
//! typo (`peerAddr`) is reported instead of silently previewing a different request.

use adtap_core::capture::Completion;
use serde::Deserialize;
use serde_json::Value;

/// A request as the filter would observe it: the head when headers arrive, the body chunks,
/// and what `on_log` learns once the stream is done.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampleRequest {
    /// `:method` (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// `:path`, query string included.
    pub path: String,
    /// `:authority`; when absent the `host` header is used.
    #[serde(default)]
    pub host: Option<String>,
    /// Request headers: `{ "name": "value" }` or `[["name", "value"], …]`.
    #[serde(default)]
    pub headers: Value,
    /// Request body (UTF-8 text).
    #[serde(default)]
    pub body: Option<String>,
    /// Response status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Request duration, microseconds.
    #[serde(default)]
    pub duration_us: Option<u64>,
    /// Request size in bytes.
    #[serde(default)]
    pub request_bytes: Option<u64>,
    /// Response size in bytes.
    #[serde(default)]
    pub response_bytes: Option<u64>,
    /// Envoy route name.
    #[serde(default)]
    pub route: Option<String>,
    /// Upstream cluster name.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Peer address (`ip:port`), the client IP source when no `x-forwarded-for` is trusted.
    #[serde(default)]
    pub peer_address: Option<String>,
    /// Arrival time, Unix ms (the binding defaults it to now).
    #[serde(default)]
    pub ts: Option<u64>,
}

fn default_method() -> String {
    "GET".to_string()
}

impl SampleRequest {
    /// Reads a request from its JSON text, with a message naming the offending field.
    pub fn from_json(json: &str) -> Result<SampleRequest, String> {
        serde_json::from_str(json).map_err(|e| format!("invalid request: {e}"))
    }

    /// The headers as (lower-case name, value) pairs, in the order given.
    pub fn header_pairs(&self) -> Result<RequestHeaders, String> {
        let mut pairs = Vec::new();
        match &self.headers {
            Value::Null => {}
            Value::Object(map) => {
                for (name, value) in map {
                    pairs.push((name.to_ascii_lowercase(), header_value(name, value)?));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match item.as_array().map(Vec::as_slice) {
                        Some([Value::String(name), value]) => {
                            pairs.push((name.to_ascii_lowercase(), header_value(name, value)?));
                        }
                        _ => {
                            return Err(format!(
                                "invalid request: headers[{i}] must be a [name, value] pair of strings"
                            ))
                        }
                    }
                }
            }
            _ => {
                return Err(
                    "invalid request: headers must be an object {name: value} or an array of [name, value] pairs"
                        .to_string(),
                )
            }
        }
        Ok(RequestHeaders(pairs))
    }

    /// The `:authority`: the explicit `host`, else the `host` header, else empty.
    pub fn authority(&self, headers: &RequestHeaders) -> String {
        match &self.host {
            Some(h) => h.clone(),
            None => headers.header("host").unwrap_or_default(),
        }
    }

    /// What `on_log` would learn about this request.
    pub fn completion(&self) -> Completion {
        Completion {
            status: self.status,
            duration_us: self.duration_us,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            route: self.route.clone(),
            upstream: self.upstream.clone(),
            peer_address: self.peer_address.clone(),
        }
    }
}

/// Header values are strings; numbers and booleans are accepted as their text, since a
/// hand-written request often says `{"content-length": 12}`.
fn header_value(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!(
            "invalid request: header `{name}` must have a string value"
        )),
    }
}

/// Request headers with lower-case names; a repeated header yields its first value, as Envoy's
/// `get_http_request_header` does.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders(pub Vec<(String, String)>);

impl RequestHeaders {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_object_or_pairs_are_lower_cased() {
        let a = SampleRequest::from_json(r#"{"path":"/i","headers":{"User-Agent":"ua","X-N":3}}"#)
            .unwrap();
        let h = a.header_pairs().unwrap();
        assert_eq!(h.header("user-agent").as_deref(), Some("ua"));
        assert_eq!(h.header("x-n").as_deref(), Some("3"));
        assert_eq!(a.method, "GET");

        let b = SampleRequest::from_json(
            r#"{"method":"POST","path":"/b","headers":[["Host","ads.example:8080"],["host","second"]]}"#,
        )
        .unwrap();
        let h = b.header_pairs().unwrap();
        assert_eq!(b.authority(&h), "ads.example:8080");
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let e = SampleRequest::from_json(r#"{"path":"/i","peerAddr":"1.2.3.4:5"}"#).unwrap_err();
        assert!(e.contains("peerAddr"), "{e}");
        let e = SampleRequest::from_json(r#"{"host":"x"}"#).unwrap_err();
        assert!(e.contains("path"), "{e}");
        let r = SampleRequest::from_json(r#"{"path":"/i","headers":[["a"]]}"#).unwrap();
        assert!(r.header_pairs().unwrap_err().contains("headers[0]"));
        let r = SampleRequest::from_json(r#"{"path":"/i","headers":"a: b"}"#).unwrap();
        assert!(r.header_pairs().is_err());
    }
}
