//! What a record carries beside its event, natively: CloudEvents (binary mode on v3, the
//! structured envelope on v2 and Redpanda), the configured request headers as record headers,
//! and keys joined from several fields.
//!
//! - exact bytes: the v3 body with the `ce_*` and request headers, the v2 body with the
//!   structured envelope, joined keys on the wire;
//! - the rules: an absent request header gives no record header, values are bounded like every
//!   captured value, headers count in `Record::size`, any absent or empty key part gives no
//!   key;
//! - over generated requests: `record::write` (the filter's path) gives exactly what serde's
//!   reference path (`encode::to_record` of the decoded event) gives, in every dialect and
//!   format, and the event inside an envelope is the event without CloudEvents.

#![cfg(test)]

use adtap_core::capture::{Completion, MAX_HEADER_VALUE_BYTES};
use adtap_core::config::{Config, ValueFormat};
use adtap_core::encode::{self, build_request, decode_value};
use adtap_core::event::{Record, HEADER_OVERHEAD_BYTES};
use adtap_core::headers::HeaderPairs;
use adtap_core::record::{self, EventId, Scratch};
use adtap_core::testkit::{self, head, MAX_ID};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{json, Value};

/// One rule (`click` on `/c`, topic `clicks`), v3, two query parameters, no response fields,
/// no client IP; `extra` merged in.
fn config(extra: Value) -> Config {
    let base = json!({
        "cluster": "kafka_rest", "dialect": "confluent_v3", "cluster_id": "lkc-1",
        "rules": [{"event_type": "click", "topic": "clicks", "path": {"prefix": "/c"}}],
        "query_params": ["campaign", {"name": "crid", "as": "creative"}],
        "response_fields": [],
        "client_ip": {"mode": "omit"},
    });
    testkit::config_patched(base, &extra)
}

const ID: EventId = EventId {
    vm: 0xab,
    seq: 0x1f,
};
const TS: u64 = 1_764_657_000_123; // 2025-12-02T06:30:00.123Z
/// A click with both query parameters [`config`] captures.
const CLICK: &str = "/c?campaign=c-42&crid=cr-7";

fn write(cfg: &Config, path: &str, headers: &[(&str, &str)]) -> Record {
    let headers = HeaderPairs::from_pairs(headers);
    let done = Completion::default();
    let fields = testkit::fields(
        ID,
        TS,
        head("GET", "ads.example.com", path),
        &headers,
        &done,
        None,
    );
    record::write(cfg, &fields, &mut Scratch::new()).unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

const EVENT: &str = r#"{"v":1,"id":"00000000000000ab-1f","type":"click","ts":1764657000123,"method":"GET","host":"ads.example.com","path":"/c","query":{"campaign":"c-42","creative":"cr-7"}}"#;

#[test]
fn v3_body_carries_cloudevents_and_request_headers_exactly() {
    let cfg = config(json!({
        "cloudevents": {"source": "//ads.example.com/edge"},
        "record_headers": ["traceparent", "X-Request-Id", "x-absent"],
        "key": ["query.campaign", "query.creative"],
    }));
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let rec = write(
        &cfg,
        CLICK,
        &[("traceparent", tp), ("x-request-id", "req-1")],
    );
    // Binary mode: the value is the event as without CloudEvents.
    assert_eq!(
        text(&rec.value),
        EVENT.replace(
            r#""ts":1764657000123,"#,
            r#""ts":1764657000123,"request_id":"req-1","#
        )
    );
    assert_eq!(rec.key.as_deref(), Some(r#"["c-42","cr-7"]"#));
    let want_headers = [
        ("ce_specversion", "1.0"),
        ("ce_id", "00000000000000ab-1f"),
        ("ce_source", "//ads.example.com/edge"),
        ("ce_type", "adtap.click"),
        ("ce_time", "2025-12-02T06:30:00.123Z"),
        ("ce_dataschema", "urn:adtap:event:v1"),
        ("traceparent", tp),
        ("x-request-id", "req-1"),
    ];
    let got: Vec<(&str, &str)> = rec.headers.iter().map(|(k, v)| (&**k, &**v)).collect();
    assert_eq!(got, want_headers);
    let header_bytes: usize = want_headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + HEADER_OVERHEAD_BYTES)
        .sum();
    assert_eq!(
        rec.size(),
        rec.value.len() + rec.key.as_ref().unwrap().len() + header_bytes
    );

    let req = build_request(&cfg, 0, std::iter::once(&rec));
    let mut want = String::from(
        r#"{"headers":[{"name":"content-type","value":"YXBwbGljYXRpb24vanNvbg=="},{"name":"adtap-schema","value":"MQ=="}"#,
    );
    for (k, v) in want_headers {
        want.push_str(&format!(r#",{{"name":"{k}","value":"{}"}}"#, b64(v)));
    }
    want.push_str(
        r#"],"key":{"type":"STRING","data":"[\"c-42\",\"cr-7\"]"},"value":{"type":"JSON","data":"#,
    );
    want.push_str(text(&rec.value));
    want.push_str(r#"},"timestamp":"2025-12-02T06:30:00.123Z"}"#);
    assert_eq!(text(&req.body), want);
}

#[test]
fn v2_and_redpanda_values_are_structured_envelopes() {
    for dialect in ["confluent_v2", "redpanda"] {
        let cfg = config(json!({
            "dialect": dialect,
            "cloudevents": {"source": "urn:example:edge-1", "type_prefix": "com.example.ads."},
        }));
        let rec = write(&cfg, CLICK, &[]);
        assert!(rec.headers.is_empty());
        assert_eq!(
            text(&rec.value),
            format!(
                r#"{{"specversion":"1.0","id":"00000000000000ab-1f","source":"urn:example:edge-1","type":"com.example.ads.click","time":"2025-12-02T06:30:00.123Z","dataschema":"urn:adtap:event:v1","datacontenttype":"application/json","data":{EVENT}}}"#
            )
        );
        // The v2 JSON embedded format splices the envelope in as the value.
        let req = build_request(&cfg, 0, std::iter::once(&rec));
        assert_eq!(
            text(&req.body),
            format!(r#"{{"records":[{{"value":{}}}]}}"#, text(&rec.value))
        );

        let cfg = config(json!({
            "dialect": dialect, "format": "msgpack",
            "cloudevents": {"source": "urn:example:edge-1"},
        }));
        let rec = write(&cfg, CLICK, &[]);
        let env: Value = serde_json::from_slice(&rec.value).unwrap();
        assert_eq!(env["datacontenttype"], "application/msgpack");
        assert_eq!(env["type"], "adtap.click");
        assert!(env.get("data").is_none());
        let data = STANDARD
            .decode(env["data_base64"].as_str().unwrap())
            .unwrap();
        let plain = config(json!({"dialect": dialect, "format": "msgpack"}));
        assert_eq!(
            data,
            write(&plain, CLICK, &[]).value,
            "the envelope holds the event's own MessagePack bytes"
        );
    }
}

#[test]
fn without_the_options_records_are_unchanged() {
    let plain = config(json!({"key": "query.campaign"}));
    let rec = write(&plain, CLICK, &[("traceparent", "t")]);
    assert_eq!(text(&rec.value), EVENT);
    assert!(rec.headers.is_empty() && rec.headers.capacity() == 0);
    assert_eq!(rec.key.as_deref(), Some("c-42"));
    assert_eq!(rec.size(), EVENT.len() + 4);
}

#[test]
fn record_headers_absent_or_bounded() {
    let cfg = config(json!({"record_headers": ["traceparent", "baggage"]}));
    let long = "é".repeat(MAX_HEADER_VALUE_BYTES); // twice the bound in bytes
    let rec = write(&cfg, "/c", &[("baggage", &long)]);
    assert_eq!(rec.headers.len(), 1, "absent traceparent: no record header");
    assert_eq!(rec.headers[0].0, "baggage");
    assert_eq!(rec.headers[0].1.len(), MAX_HEADER_VALUE_BYTES);
    assert_eq!(rec.headers[0].1, "é".repeat(MAX_HEADER_VALUE_BYTES / 2));
    let none = write(&cfg, "/c", &[]);
    assert!(none.headers.is_empty());
    // The buffer holds the headers' bytes with the record's.
    let size = rec.size();
    assert_eq!(
        size,
        rec.value.len() + "baggage".len() + MAX_HEADER_VALUE_BYTES + HEADER_OVERHEAD_BYTES
    );
    let mut pipeline = adtap_core::pipeline::Pipeline::new(&cfg, 1);
    pipeline.push(0, rec);
    assert_eq!(pipeline.stats().held_bytes, size as u64);
}

#[test]
fn joined_keys_follow_the_absent_field_rule() {
    let cfg = config(json!({"key": ["query.campaign", "query.creative", "host"]}));
    let key = |path: &str| write(&cfg, path, &[]).key;
    assert_eq!(
        key(CLICK).as_deref(),
        Some(r#"["c-42","cr-7","ads.example.com"]"#)
    );
    // Percent-decoded values that hold the separators and quotes stay unambiguous.
    assert_eq!(
        key("/c?campaign=a%22%2C%22b&crid=%5C").as_deref(),
        Some(r#"["a\",\"b","\\","ads.example.com"]"#)
    );
    assert_eq!(key("/c?campaign=c-42"), None, "creative absent");
    assert_eq!(key("/c?campaign=c-42&crid="), None, "creative empty");
    // A rule's own list overrides the top-level key.
    let cfg = config(json!({
        "key": "query.campaign",
        "rules": [{"event_type": "click", "topic": "clicks", "path": {"prefix": "/c"},
                   "key": ["event_type", "query.creative"]}],
    }));
    assert_eq!(
        write(&cfg, CLICK, &[]).key.as_deref(),
        Some(r#"["click","cr-7"]"#)
    );
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,30}",
        "[a-z0-9%\"\\\\,-]{0,20}",
        prop::collection::vec(any::<u8>(), 0..30)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn writer_matches_serde_with_cloudevents_and_joined_keys(
        dialect in prop::sample::select(vec!["confluent_v2", "confluent_v3", "redpanda"]),
        format in prop::sample::select(vec!["json", "msgpack"]),
        campaign in prop::option::of(text_strategy()),
        creative in prop::option::of(text_strategy()),
        request_id in prop::option::of(text_strategy()),
        ts in any::<u64>(),
        seq in any::<u64>(),
    ) {
        let v3 = dialect == "confluent_v3";
        let mut extra = json!({
            "dialect": dialect, "format": format,
            "cloudevents": {"source": "//ads.example.com/edge"},
            "key": ["query.campaign", "query.creative"],
        });
        if v3 {
            extra["record_headers"] = json!(["x-request-id"]);
        }
        let cfg = config(extra);
        let mut path = String::from("/c?");
        let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        if let Some(c) = &campaign { path.push_str(&format!("campaign={}&", enc(c))); }
        if let Some(c) = &creative { path.push_str(&format!("crid={}", enc(c))); }
        let mut headers = vec![];
        if let Some(r) = &request_id { headers.push(("x-request-id", r.clone())); }
        let hdrs = HeaderPairs::from_pairs(&headers);
        let done = Completion::default();
        let id = EventId { vm: ts, seq };
        let fields = testkit::fields(id, ts, head("GET", "h", &path), &hdrs, &done, None);
        let rec = record::write(&cfg, &fields, &mut Scratch::new()).unwrap();
        // The event, out of the envelope where there is one.
        let event_bytes = if v3 {
            rec.value.clone()
        } else {
            let env: Value = serde_json::from_slice(&rec.value).unwrap();
            match cfg.format {
                ValueFormat::Json => serde_json::to_vec(&env["data"]).unwrap(),
                ValueFormat::Msgpack => STANDARD.decode(env["data_base64"].as_str().unwrap()).unwrap(),
            }
        };
        let ev = decode_value(cfg.format, &event_bytes).unwrap();
        let reference = encode::to_record(&cfg, 0, &ev).unwrap();
        prop_assert_eq!(&reference.value, &rec.value);
        prop_assert_eq!(&reference.key, &rec.key);
        // serde's path has the CloudEvents headers; the request headers follow them.
        let n_ce = reference.headers.len();
        prop_assert_eq!(n_ce, if v3 { 6 } else { 0 });
        prop_assert_eq!(&rec.headers[..n_ce], &reference.headers[..]);
        let rest: Vec<(String, String)> = rec.headers[n_ce..].to_vec();
        let want: Vec<(String, String)> = match (&request_id, v3) {
            (Some(r), true) => vec![("x-request-id".into(), r.clone())],
            _ => vec![],
        };
        prop_assert_eq!(rest, want);
        // Every v3 header value goes out as base64 of its text, in one body with the record.
        let req = build_request(&cfg, 0, std::iter::once(&rec));
        if v3 {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let names: Vec<&str> = body["headers"].as_array().unwrap().iter()
                .map(|h| h["name"].as_str().unwrap()).collect();
            prop_assert_eq!(names.len(), 2 + rec.headers.len());
        }
    }
}

/// The body bound counts what CloudEvents and record headers add: at the largest accepted
/// `body.max_bytes`, a worst-case body (control characters for JSON, non-UTF-8 bytes for
/// MessagePack) with the longest source, type and record header values still makes a record
/// the pipeline batches; one byte more is refused at load, saying why.
#[test]
fn the_largest_accepted_body_fits_with_cloudevents_and_record_headers() {
    use adtap_core::capture::BodyCapture;
    use adtap_core::config::{max_body_bytes, record_extra_bytes, MAX_BODY_BYTES};
    use adtap_core::drop_reason::DropReason;
    use adtap_core::pipeline::Pipeline;

    let event_type = "t".repeat(64);
    let long_value = "v".repeat(MAX_HEADER_VALUE_BYTES + 5);
    for dialect in ["confluent_v2", "confluent_v3", "redpanda"] {
        for (format, worst) in [("json", 0x01u8), ("msgpack", 0xffu8)] {
            for batch_bytes in [16_384usize, 1_048_576, 16 * 1024 * 1024] {
                let cfg_for = |body: usize| {
                    let mut doc = json!({
                        "cluster": "kafka_rest", "cluster_id": "lkc-1",
                        "dialect": dialect, "format": format,
                        "cloudevents": {"source": "s".repeat(1024), "type_prefix": "p".repeat(128)},
                        "rules": [{"event_type": event_type, "topic": "bids", "method": "POST",
                                   "path": {"exact": "/bid"}, "capture_body": true}],
                        "batch": {"max_bytes": batch_bytes},
                        "buffer": {"max_bytes": batch_bytes.max(8 * 1024 * 1024)},
                        "body": {"max_bytes": body},
                    });
                    if dialect == "confluent_v3" {
                        doc["record_headers"] = json!(["traceparent", "x-b"]);
                    }
                    doc
                };
                let probe = config(cfg_for(1));
                let (extra, base64) = record_extra_bytes(
                    probe.dialect,
                    probe.format,
                    probe.cloudevents.as_ref(),
                    &probe.record_headers,
                );
                let max =
                    max_body_bytes(probe.format, batch_bytes, extra, base64).min(MAX_BODY_BYTES);
                let at = format!("{dialect} {format} {batch_bytes}");
                let over = Config::parse(cfg_for(max + 1).to_string().as_bytes()).unwrap_err();
                assert_eq!(over.len(), 1, "{at}: {over:?}");
                assert!(
                    max == MAX_BODY_BYTES
                        || over[0].message.contains(&format!(
                            "and {extra} for its CloudEvents attributes and record headers"
                        )),
                    "{at}: {over:?}"
                );
                let cfg = config(cfg_for(max));
                let mut body = BodyCapture::new(cfg.body.max_bytes);
                body.push(&vec![worst; max + 10], max + 10);
                let hdrs = HeaderPairs::from_pairs(&[
                    ("traceparent", long_value.as_str()),
                    ("x-b", long_value.as_str()),
                ]);
                let done = Completion::default();
                let head = head("POST", "rtb.ads.example.com", "/bid");
                let fields = testkit::fields(MAX_ID, u64::MAX, head, &hdrs, &done, Some(&body));
                let rec = record::write(&cfg, &fields, &mut Scratch::new()).unwrap();
                assert!(
                    rec.size() <= batch_bytes,
                    "{at}: record of {} bytes",
                    rec.size()
                );
                let mut pipeline = Pipeline::new(&cfg, 7);
                pipeline.push(0, rec);
                assert_eq!(
                    pipeline.stats().dropped_for(DropReason::TooLarge),
                    0,
                    "{at}"
                );
                assert!(pipeline.poll(10_000).is_some(), "{at}: no batch");
            }
        }
    }
}
