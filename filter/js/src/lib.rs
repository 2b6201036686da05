//! adtap's core for JavaScript: the filter's own configuration validation, capture and encoding,
//! compiled with wasm-bindgen so control planes, CI and downstream readers use the very code the
//! filter runs instead of a re-implementation that drifts.
//!
//! Layout:
//! - `lib.rs` (this file): the five exports and their TypeScript types; it only converts
//!   between JavaScript values and JSON text (`JSON.parse`/`JSON.stringify`), so every number and
//!   field name is exactly what serde writes.
//! - [`preview`] holds `validateConfig` and `previewEvent` as pure functions over JSON.
//! - [`request`] reads the sample request a caller describes.
//! - [`decode`] implements `decodeRecord`.
//! - [`native`] implements `nativeFilter` (the core's native Envoy pre-filter, without secrets).
//! - `eventSchema` is the core's published JSON Schema of the event value, as text.
//!
//! Errors cross to JavaScript as `Error` objects with a message that names what is wrong.

pub mod decode;
pub mod native;
pub mod preview;
pub mod request;

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** One configuration problem, with the JSON path of the offending field (`$` for the document). */
export interface ConfigError { path: string; message: string; }

/** Result of `validateConfig`. */
export interface ValidationResult { ok: boolean; errors: ConfigError[]; }

/** A request as the filter would observe it. */
export interface SampleRequest {
  /** `:method`, default `GET`. */
  method?: string;
  /** `:path` including the query string. */
  path: string;
  /** `:authority`; defaults to the `host` header. */
  host?: string;
  headers?: Record<string, string> | [string, string][];
  /** Request body (UTF-8 text); captured only when the matching rule has `capture_body`. */
  body?: string;
  status?: number;
  durationUs?: number;
  requestBytes?: number;
  responseBytes?: number;
  route?: string;
  upstream?: string;
  /** `ip:port` of the peer; the client IP source unless `x-forwarded-for` hops are trusted. */
  peerAddress?: string;
  /** Arrival time, Unix ms (default: now). */
  ts?: number;
}

/** An adtap event as encoded in record values (schema `v`). */
export interface AdtapEvent {
  v: number; id: string; type: string; ts: number; request_id?: string;
  method: string; host: string; path: string;
  /** Allow-listed query parameters (after rename) and request headers (lower-case names). */
  query?: Record<string, string>; headers?: Record<string, string>;
  user_agent?: string; referer?: string; client_ip?: string;
  status?: number; duration_us?: number; request_bytes?: number; response_bytes?: number;
  route?: string; upstream?: string;
  body?: string; body_base64?: boolean; body_truncated?: boolean;
}

/** The HTTP request that would ship the record, in one REST dialect. Credentials are redacted. */
export interface PreviewHttpRequest {
  path: string | null;
  headers: Record<string, string>;
  body: string;
  /** Set when `body` is base64 of non-UTF-8 bytes. */
  bodyBase64?: boolean;
}

/** Result of `previewEvent`. */
export interface PreviewResult {
  matched: boolean;
  reason?: "no_rule_matched" | "sampled_out" | "invalid_config";
  /** With `invalid_config`: every configuration error. */
  errors?: ConfigError[];
  /** Index of the matching rule. */
  rule?: number;
  eventType?: string;
  topic?: string;
  key?: string | null;
  /** The rule's sampling probability; the preview shows the event as if sampled in. */
  sampleRate?: number;
  event?: AdtapEvent;
  record?: {
    topic: string; key: string | null;
    /** v3 record headers beyond content-type and adtap-schema: CloudEvents `ce_*`, then `record_headers`. */
    headers?: { name: string; value: string }[];
    /** With `cloudevents`: attributes as v3 record headers, or the value as the envelope. */
    cloudEvents?: "binary" | "structured";
    valueBase64: string; valueText?: string; size: number;
  };
  requests?: { confluent_v2: PreviewHttpRequest; confluent_v3: PreviewHttpRequest; redpanda: PreviewHttpRequest };
}

export type RecordFormat = "json" | "msgpack";

/** Where the module runs in Envoy. */
export type Deployment = "access-logger" | "http-filter";

/** Result of `nativeFilter`. */
export interface NativeFilterResult {
  ok: boolean;
  /** With `ok: false`: every configuration error. */
  errors?: ConfigError[];
  deployment?: Deployment;
  /** Indices of the rules the deployment captures. */
  rules?: number[];
  /** The native part alone: the access log `filter`, or the composite matcher's predicate. */
  filter?: unknown;
  /** The whole `access_log` / `http_filters` entry; adtap's configuration is `@ADTAP_CONFIG@`. */
  entry?: unknown;
  /** Set when the deployment captures no rule. */
  warning?: string;
}
"#;

/// The configuration as JSON text: a string is taken as is, anything else is stringified.
fn json_text(value: &JsValue, what: &str) -> Result<String, JsError> {
    if let Some(s) = value.as_string() {
        return Ok(s);
    }
    if value.is_undefined() || value.is_null() {
        return Err(JsError::new(&format!("{what} is missing")));
    }
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| JsError::new(&format!("{what} cannot be converted to JSON")))
}

/// The configuration's bytes as `on_configure` would get them: a `Uint8Array` as is (for
/// instance a serialized `google.protobuf.Struct`, which the core reads as Envoy hands it on),
/// else its JSON text ([`json_text`]).
fn config_bytes(value: &JsValue) -> Result<Vec<u8>, JsError> {
    if let Some(array) = value.dyn_ref::<js_sys::Uint8Array>() {
        return Ok(array.to_vec());
    }
    json_text(value, "config").map(String::into_bytes)
}

/// A value serialised by serde_json, handed to JavaScript as a plain object. Going through JSON
/// text keeps serde's field names and order, and numbers as JSON numbers.
fn to_js(value: &impl serde::Serialize) -> Result<JsValue, JsError> {
    let text = serde_json::to_string(value).map_err(|e| JsError::new(&e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|_| JsError::new("internal: result is not valid JSON"))
}

/// Validates an adtap configuration (JSON text, an object, or the bytes Envoy hands the filter,
/// such as a serialized `google.protobuf.Struct`) with the filter's own rules and returns every
/// error, each with the JSON path of its field.
#[wasm_bindgen(js_name = validateConfig, unchecked_return_type = "ValidationResult")]
pub fn validate_config(
    #[wasm_bindgen(unchecked_param_type = "string | object | Uint8Array")] config: JsValue,
) -> Result<JsValue, JsError> {
    to_js(&preview::validate_config(&config_bytes(&config)?))
}

/// Shows the event, record and REST requests that `request` would produce under `config`, or
/// why it produces none. Throws on a malformed request.
#[wasm_bindgen(js_name = previewEvent, unchecked_return_type = "PreviewResult")]
pub fn preview_event(
    #[wasm_bindgen(unchecked_param_type = "string | object | Uint8Array")] config: JsValue,
    #[wasm_bindgen(unchecked_param_type = "SampleRequest")] request: JsValue,
) -> Result<JsValue, JsError> {
    let config = config_bytes(&config)?;
    let request = json_text(&request, "request")?;
    let request = request::SampleRequest::from_json(&request).map_err(|e| JsError::new(&e))?;
    // The filter stamps events with the host clock; in JavaScript that is `Date.now()`.
    let ts = request.ts.unwrap_or_else(|| js_sys::Date::now() as u64);
    let result = preview::preview(&config, &request, ts).map_err(|e| JsError::new(&e))?;
    to_js(&result)
}

/// Decodes a record value (a `Uint8Array`, or base64 text) in the given format back into the
/// event it carries. Throws an `Error` saying what is wrong with the input.
#[wasm_bindgen(js_name = decodeRecord, unchecked_return_type = "AdtapEvent")]
pub fn decode_record(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | string")] record: JsValue,
    #[wasm_bindgen(unchecked_param_type = "RecordFormat")] format: JsValue,
) -> Result<JsValue, JsError> {
    let format = format
        .as_string()
        .ok_or_else(|| JsError::new("format must be \"json\" or \"msgpack\""))?;
    let format = decode::parse_format(&format).map_err(|e| JsError::new(&e))?;
    let bytes = if let Some(text) = record.as_string() {
        decode::bytes_from_base64(&text).map_err(|e| JsError::new(&e))?
    } else if let Some(array) = record.dyn_ref::<js_sys::Uint8Array>() {
        array.to_vec()
    } else {
        return Err(JsError::new(
            "record must be a Uint8Array or a base64 string",
        ));
    };
    to_js(&decode::decode(&bytes, format).map_err(|e| JsError::new(&e))?)
}

/// The native Envoy pre-filter for `config`'s rules (`deployment`: `"access-logger"` or
/// `"http-filter"`), the module loaded from `wasm_path` (default `/etc/envoy/adtap.wasm`). The
/// entry holds the placeholder `@ADTAP_CONFIG@` instead of the configuration, which may hold
/// secrets. An invalid configuration is a normal answer (`ok: false` and its errors).
#[wasm_bindgen(js_name = nativeFilter, unchecked_return_type = "NativeFilterResult")]
pub fn native_filter(
    #[wasm_bindgen(unchecked_param_type = "string | object | Uint8Array")] config: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Deployment")] deployment: JsValue,
    wasm_path: Option<String>,
) -> Result<JsValue, JsError> {
    let config = config_bytes(&config)?;
    let deployment = deployment
        .as_string()
        .ok_or_else(|| JsError::new("deployment must be \"access-logger\" or \"http-filter\""))?;
    let deployment = native::parse_deployment(&deployment).map_err(|e| JsError::new(&e))?;
    let wasm = match wasm_path {
        None => native::DEFAULT_WASM.to_string(),
        Some(p) if p.is_empty() => {
            return Err(JsError::new("wasm_path must be a non-empty string"))
        }
        Some(p) => p,
    };
    to_js(&native::native_filter(&config, deployment, &wasm))
}

/// The published JSON Schema (draft 2020-12) of the event value: the core's committed file
/// (`schema::EVENT_SCHEMA_JSON`, kept equal to what the core generates by its own test), byte
/// for byte the package's `schema/event.v1.schema.json`.
#[wasm_bindgen(js_name = eventSchema)]
pub fn event_schema() -> String {
    adtap_core::schema::EVENT_SCHEMA_JSON.to_string()
}
