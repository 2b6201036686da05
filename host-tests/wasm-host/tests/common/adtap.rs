//! Shared by the scenario suite (`tests/scenarios_*.rs`): the release `adtap.wasm`, configs,
//! one-call request helpers, the accounting read from the published metrics, and decoders for
//! the batches the filter sends.
//!
//! The module is the harness's one path (`adtap_harness::paths::wasm()`: `ADTAP_WASM`, else
//! `dist/adtap.wasm`, what `./build.sh build` ships). It is required: a missing module fails the
//! test with the command that builds it.
//!
//! Configurations start from the harness's one base (`adtap_harness::config::base`), patched
//! once here for the scenarios ([`config`]), then by each scenario; patches are RFC 7396 merge
//! patches (`null` deletes a key).
//!
//! Metrics are published by the filter on every tick (deltas since the last one), so
//! [`check`] ticks at the current instant, then reads them and asserts the invariant
//! `captured = delivered + dropped + in_flight + buffered`. An extra tick at the current instant
//! is what Envoy does anyway every `tick_ms`; it can only dispatch what is due already.

use adtap_core::config::{Dialect, ValueFormat};
use adtap_core::encode;
use adtap_core::Event;
use adtap_harness::config::{base, merge};
use adtap_harness::paths;
use adtap_wasm_host::{compile_file, Host, HostOptions, HttpCall};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::Module;

/// The dialect and format most scenarios use.
pub const V2: Dialect = Dialect::ConfluentV2;
/// JSON record values.
pub const JSON: ValueFormat = ValueFormat::Json;

/// The host's clock at start, in ms (`HostOptions::default().start_time_ns`).
pub const T0_MS: u64 = 1_700_000_000_000;
/// The cluster every config names (the harness's).
pub use adtap_harness::config::CLUSTER;
/// The repository root (the harness's).
#[allow(unused_imports)] // not every test binary reads a file of the repository
pub use adtap_harness::paths::repo_root;

/// The filter, compiled once per test binary. Panics (fails the test) when it is missing.
pub fn filter_module() -> &'static Module {
    static MODULE: OnceLock<Module> = OnceLock::new();
    MODULE.get_or_init(|| {
        let path = paths::wasm();
        assert!(
            path.exists(),
            "{} is missing: build it with `./build.sh build` (or set ADTAP_WASM)",
            path.display()
        );
        compile_file(&path).unwrap_or_else(|e| panic!("compiling {}: {e:#}", path.display()))
    })
}

/// Host options for a filter configuration given as the bytes Envoy hands over (JSON, or a
/// serialized `google.protobuf.Struct`): the harness's cluster known, everything else default.
pub fn opts_bytes(plugin_config: Vec<u8>) -> HostOptions {
    HostOptions {
        plugin_config,
        root_id: "adtap".into(),
        vm_id: "adtap".into(),
        known_clusters: Some(vec![CLUSTER.into()]),
        ..Default::default()
    }
}

/// [`opts_bytes`] for a JSON configuration.
pub fn opts(config: &Value) -> HostOptions {
    opts_bytes(serde_json::to_vec(config).unwrap())
}

/// The scenarios' one patch of the harness's base: two rules of their own, `GET /imp`
/// (topic `imps`) and `POST /bid` with its body (topic `bids`), capturing the `n` query
/// parameter (scenarios number their requests with it); a 100 ms tick and batches flushed by
/// count (or after a minute); and every other field of the base removed, so the filter's
/// defaults apply and each scenario states what it depends on.
fn scenario_patch() -> Value {
    json!({
        "rules": [
            {"event_type": "impression", "topic": "imps", "method": "GET", "path": {"prefix": "/imp"}},
            {"event_type": "bid", "topic": "bids", "method": "POST", "path": {"exact": "/bid"},
             "capture_body": true}
        ],
        "query_params": ["n", "campaign_id"],
        "tick_ms": 100,
        "batch": {"max_events": 100, "max_age_ms": 60_000, "max_bytes": null},
        "timeout_ms": null, "headers": null, "client_ip": null, "response_fields": null,
        "key": null, "body": null, "buffer": null, "max_in_flight": null, "retry": null,
        "shutdown_deadline_ms": null
    })
}

/// The scenarios' configuration ([`scenario_patch`] on the harness's base) with `overrides`
/// merged in (RFC 7396: objects merge, `null` deletes, anything else replaces).
pub fn config(overrides: Value) -> Value {
    let mut cfg = base(V2, JSON);
    merge(&mut cfg, &scenario_patch());
    merge(&mut cfg, &overrides);
    cfg
}

/// A started, configured filter.
pub fn start(config: &Value) -> Host {
    Host::start(filter_module(), opts(config)).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Unwraps a host step's result, failing with the guest's logs (a trap names its callback).
pub fn must<T>(host: &Host, r: wasmtime::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e:#}\nlogs:\n{}", host.dump_logs()))
}

/// Runs one host step (`|h| h.fail_call(t)`) and [`must`]s its result.
pub fn ok<T>(host: &mut Host, f: impl FnOnce(&mut Host) -> wasmtime::Result<T>) -> T {
    let r = f(host);
    must(host, r)
}

/// One whole request in Envoy's order: request headers (end of stream), response headers,
/// `response.code`, `on_log`, `on_done`/`on_delete`. Returns the context id.
pub fn request(host: &mut Host, path: &str) -> u32 {
    request_with(host, "GET", path, &[], Some(200))
}

/// [`request`] with a method, extra request headers and an optional response status (`None`:
/// the stream ends with no response at all).
pub fn request_with(
    host: &mut Host,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    status: Option<u16>,
) -> u32 {
    let id = ok(host, |h| h.new_http_context());
    let mut headers = vec![
        (":method", method),
        (":path", path),
        (":authority", "ads.example"),
        (":scheme", "https"),
    ];
    headers.extend_from_slice(extra);
    let r = host.request_headers(id, &headers, true);
    must(host, r);
    if let Some(status) = status {
        let s = status.to_string();
        let r = host.response_headers(id, &[(":status", s.as_str())], true);
        must(host, r);
        ok(host, |h| {
            h.set_property_u64(id, &["response", "code"], u64::from(status))
        });
    }
    let r = host.complete_stream(id);
    must(host, r);
    id
}

/// `n` impressions numbered `first..first+n` (`/imp?n=i`).
pub fn impressions(host: &mut Host, first: u32, n: u32) {
    for i in first..first + n {
        request(host, &format!("/imp?n={i}"));
    }
}

/// The accounting as the filter published it (0 for a metric never published).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub captured: i64,
    pub delivered: i64,
    pub dropped: i64,
    pub buffer_full: i64,
    pub retry_exhausted: i64,
    pub rejected: i64,
    pub encode: i64,
    pub too_large: i64,
    pub shutdown: i64,
    pub in_flight: i64,
    pub buffered: i64,
    pub held_bytes: i64,
    pub batches_sent: i64,
    pub batches_failed: i64,
    pub retries: i64,
    pub unmatched: i64,
    pub sampled_out: i64,
    pub body_truncated: i64,
    pub dispatch_errors: i64,
}

impl Counts {
    /// The published metrics, as they are now (no tick).
    pub fn read(host: &Host) -> Counts {
        let m = |name: &str| host.metric(name).unwrap_or(0);
        Counts {
            captured: m("adtap_captured"),
            delivered: m("adtap_delivered"),
            dropped: m("adtap_dropped"),
            buffer_full: m("adtap_dropped_buffer_full"),
            retry_exhausted: m("adtap_dropped_retry_exhausted"),
            rejected: m("adtap_dropped_rejected"),
            encode: m("adtap_dropped_encode"),
            too_large: m("adtap_dropped_too_large"),
            shutdown: m("adtap_dropped_shutdown"),
            in_flight: m("adtap_in_flight"),
            buffered: m("adtap_buffered"),
            held_bytes: m("adtap_held_bytes"),
            batches_sent: m("adtap_batches_sent"),
            batches_failed: m("adtap_batches_failed"),
            retries: m("adtap_retries"),
            unmatched: m("adtap_requests_unmatched"),
            sampled_out: m("adtap_requests_sampled_out"),
            body_truncated: m("adtap_body_truncated"),
            dispatch_errors: m("adtap_dispatch_errors"),
        }
    }

    /// Sum of the per-reason drop counters.
    pub fn dropped_by_reason(&self) -> i64 {
        self.buffer_full
            + self.retry_exhausted
            + self.rejected
            + self.encode
            + self.too_large
            + self.shutdown
    }
}

/// Asserts named fields of a [`Counts`] (or any value) at once: `assert_fields!(c, delivered:
/// 1, rejected: 2)`, the core's test macro.
#[allow(unused_imports)] // Not every test binary that compiles this module asserts fields.
pub use adtap_core::assert_fields;

/// Asserts the accounting invariant on the metrics as published, and that the VM never trapped.
pub fn assert_balanced(host: &Host) -> Counts {
    assert!(host.trapped().is_none(), "trapped: {:?}", host.trapped());
    let c = Counts::read(host);
    assert_eq!(
        c.captured,
        c.delivered + c.dropped + c.in_flight + c.buffered,
        "accounting invariant broken: {c:?}\nlogs:\n{}",
        host.dump_logs()
    );
    assert_eq!(c.dropped, c.dropped_by_reason(), "drop reasons: {c:?}");
    assert!(
        c.in_flight >= 0 && c.buffered >= 0 && c.held_bytes >= 0,
        "negative gauge: {c:?}"
    );
    c
}

/// Ticks at the current instant (publishing the metrics), then [`assert_balanced`].
pub fn check(host: &mut Host) -> Counts {
    let r = host.tick();
    must(host, r);
    assert_balanced(host)
}

/// `advance_and_tick`, failing with the logs on a trap.
pub fn pass(host: &mut Host, ms: u64) {
    let r = host.advance_and_tick(Duration::from_millis(ms));
    must(host, r);
}

/// Answers call `token` with `status` and a JSON `body`, as a REST proxy does.
pub fn respond_json(host: &mut Host, token: u32, status: u16, body: &str) {
    let json = [("content-type", "application/json")];
    let r = host.respond(token, status, &json, body.as_bytes());
    must(host, r);
}

/// Answers a call with 200 and a body acknowledging all its records.
pub fn respond_ok(host: &mut Host, call: &HttpCall, dialect: Dialect, format: ValueFormat) {
    let n = decode_call(call, dialect, format).len();
    respond_json(host, call.token, 200, &ok_body(dialect, n));
}

/// A success body for `n` records in `dialect` (v2: one offset per record; Redpanda: one
/// partition entry; v3: `n` concatenated delivery reports).
pub fn ok_body(dialect: Dialect, n: usize) -> String {
    match dialect {
        Dialect::ConfluentV2 => {
            let offsets: Vec<Value> = (0..n)
                .map(|i| json!({"partition": 0, "offset": i, "error_code": null, "error": null}))
                .collect();
            json!({"key_schema_id": null, "value_schema_id": null, "offsets": offsets}).to_string()
        }
        Dialect::Redpanda => json!({"offsets": [{"partition": 0, "offset": 7}]}).to_string(),
        Dialect::ConfluentV3 => (0..n)
            .map(|i| {
                json!({"error_code": 200, "cluster_id": "lkc-1", "topic_name": "t",
                       "partition_id": 0, "offset": i, "timestamp": "2023-11-14T22:13:20.000Z"})
                .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A v2 body with one offsets entry per record: `None` delivered, `Some(code)` failed.
pub fn v2_partial_body(codes: &[Option<i64>]) -> String {
    let offsets: Vec<Value> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            None => json!({"partition": 0, "offset": i, "error_code": null, "error": null}),
            Some(code) => json!({"partition": null, "offset": null, "error_code": code,
                                 "error": "failed"}),
        })
        .collect();
    json!({"offsets": offsets}).to_string()
}

/// One record of a dispatched batch, decoded.
#[derive(Debug, Clone)]
pub struct SentRecord {
    /// The record key as sent (decoded from base64 for binary v2).
    pub key: Option<String>,
    /// The record value bytes (JSON text or MessagePack).
    pub value: Vec<u8>,
    /// The value decoded back into an event.
    pub event: Event,
    /// The whole record object as sent (v3: with headers and timestamp).
    pub raw: Value,
}

impl SentRecord {
    /// The `n` query parameter of its event (scenario request number).
    pub fn n(&self) -> Option<u32> {
        query(&self.event, "n").and_then(|v| v.parse().ok())
    }
}

/// A captured query parameter of an event.
pub fn query<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event
        .query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The records of a request body in `dialect`/`format`; panics on anything malformed.
pub fn decode_body(body: &[u8], dialect: Dialect, format: ValueFormat) -> Vec<SentRecord> {
    let binary = format == ValueFormat::Msgpack;
    let objects: Vec<Value> = match dialect {
        Dialect::ConfluentV2 | Dialect::Redpanda => {
            let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!(
                    "v2 body is not JSON ({e}): {}",
                    String::from_utf8_lossy(body)
                )
            });
            let obj = v.as_object().expect("v2 body is an object");
            assert_eq!(obj.len(), 1, "v2 body has only `records`: {v}");
            obj["records"].as_array().expect("records array").clone()
        }
        Dialect::ConfluentV3 => serde_json::Deserializer::from_slice(body)
            .into_iter::<Value>()
            .map(|r| r.expect("v3 body is concatenated JSON objects"))
            .collect(),
    };
    // JSON values parsed straight into events keep their field order (query and header maps
    // are ordered pairs), which `serde_json::Value` would sort.
    let mut typed = if binary {
        Vec::new()
    } else {
        typed_json_events(body, dialect)
    }
    .into_iter();
    objects
        .into_iter()
        .map(|raw| {
            let (key, value) = match dialect {
                Dialect::ConfluentV2 | Dialect::Redpanda => {
                    let key = raw.get("key").map(|k| {
                        let s = k.as_str().expect("key is a string").to_string();
                        if binary {
                            String::from_utf8(B64.decode(s).expect("key base64")).unwrap()
                        } else {
                            s
                        }
                    });
                    let value = if binary {
                        B64.decode(raw["value"].as_str().expect("binary value is a string"))
                            .expect("value base64")
                    } else {
                        json_value_bytes(body, typed.next())
                    };
                    (key, value)
                }
                Dialect::ConfluentV3 => {
                    let key = raw.get("key").map(|k| {
                        assert_eq!(k["type"], "STRING", "{raw}");
                        k["data"].as_str().unwrap().to_string()
                    });
                    let v = &raw["value"];
                    let value = if binary {
                        assert_eq!(v["type"], "BINARY", "{raw}");
                        B64.decode(v["data"].as_str().unwrap()).unwrap()
                    } else {
                        assert_eq!(v["type"], "JSON", "{raw}");
                        json_value_bytes(body, typed.next())
                    };
                    (key, value)
                }
            };
            let event = encode::decode_value(format, &value)
                .unwrap_or_else(|e| panic!("record value does not decode: {e}: {raw}"));
            SentRecord {
                key,
                value,
                event,
                raw,
            }
        })
        .collect()
}

/// The events of a JSON-format body, parsed in order.
fn typed_json_events(body: &[u8], dialect: Dialect) -> Vec<Event> {
    #[derive(serde::Deserialize)]
    struct V2 {
        records: Vec<V2Record>,
    }
    #[derive(serde::Deserialize)]
    struct V2Record {
        value: Event,
    }
    #[derive(serde::Deserialize)]
    struct V3Record {
        value: V3Value,
    }
    #[derive(serde::Deserialize)]
    struct V3Value {
        data: Event,
    }
    match dialect {
        Dialect::ConfluentV2 | Dialect::Redpanda => serde_json::from_slice::<V2>(body)
            .expect("v2 json values are events")
            .records
            .into_iter()
            .map(|r| r.value)
            .collect(),
        Dialect::ConfluentV3 => serde_json::Deserializer::from_slice(body)
            .into_iter::<V3Record>()
            .map(|r| r.expect("v3 json values are events").value.data)
            .collect(),
    }
}

/// The bytes of a JSON record value as they appear in the body: the filter writes the event's
/// canonical encoding, so re-encoding the parsed event must give bytes found verbatim in it.
fn json_value_bytes(body: &[u8], event: Option<Event>) -> Vec<u8> {
    let event = event.expect("one typed event per record");
    let bytes = encode::encode_value(ValueFormat::Json, &event).unwrap();
    assert!(
        body.windows(bytes.len()).any(|w| w == bytes.as_slice()),
        "the value is not the event's canonical encoding: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

/// [`decode_body`] of a call.
pub fn decode_call(call: &HttpCall, dialect: Dialect, format: ValueFormat) -> Vec<SentRecord> {
    decode_body(&call.body, dialect, format)
}

/// The `n` numbers of a call's records, in request order.
pub fn ns(call: &HttpCall, dialect: Dialect, format: ValueFormat) -> Vec<u32> {
    decode_call(call, dialect, format)
        .iter()
        .map(|r| r.n().expect("record has an n"))
        .collect()
}

/// Pending calls, oldest first.
pub fn calls(host: &Host) -> Vec<HttpCall> {
    host.pending_calls()
}
