//! Encoders against the documented request shapes of each dialect × value format
//! (Confluent REST Proxy v2 API reference; the v3 `ProduceRequest` of confluentinc/kafka-rest's
//! `api/v3/openapi.yaml`): path, headers, auth, body structure, base64
//! round-trips, record headers and timestamps; plus value round-trips and record keys.

#![cfg(test)]

use adtap_core::config::{Config, Dialect, KeySource, ValueFormat};
use adtap_core::encode::{
    build_request, decode_value, encode_value, field_key, record_key, rfc3339_ms, to_record,
    HttpRequest,
};
use adtap_core::event::{Event, Record, SCHEMA_VERSION};
use adtap_core::key::Key;
use adtap_core::testkit;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Two rules (`impression` keyed by `query.campaign_id` to `ad.impressions`, `click` to
/// `ad-clicks_v2`), with the given dialect, format and auth (`null`: none).
fn config(dialect: Dialect, format: ValueFormat, auth: Value) -> Config {
    let dialect = match dialect {
        Dialect::ConfluentV2 => "confluent_v2",
        Dialect::ConfluentV3 => "confluent_v3",
        Dialect::Redpanda => "redpanda",
    };
    let format = match format {
        ValueFormat::Json => "json",
        ValueFormat::Msgpack => "msgpack",
    };
    testkit::config(&json!({
        "cluster": "kafka_rest",
        "authority": "rest-proxy.internal:8082",
        "dialect": dialect,
        "cluster_id": "lkc-x1y2z3",
        "format": format,
        "auth": auth,
        "query_params": ["campaign_id"],
        "rules": [
            {"event_type": "impression", "topic": "ad.impressions", "method": "GET",
             "path": {"prefix": "/imp"}, "key": "query.campaign_id"},
            {"event_type": "click", "topic": "ad-clicks_v2", "method": "GET",
             "path": {"prefix": "/click"}}
        ]
    }))
}

/// An event with every field kind set, including characters that need JSON escaping.
fn full_event() -> Event {
    Event {
        v: SCHEMA_VERSION,
        id: "9f3c2a1b4d5e6f70-2a".into(),
        event_type: "impression".into(),
        ts: 1_795_588_200_123, // 2026-11-25T06:30:00.123Z
        request_id: Some("6f1c0a3e-7d1b-4f9e-9c55-0c2a5c1d9e11".into()),
        method: "GET".into(),
        host: "ads.example.com".into(),
        path: "/imp/v1".into(),
        query: vec![
            ("campaign_id".into(), "cmp-42".into()),
            ("creative".into(), "a\"b\\c\u{1}é".into()),
            ("aaa_last".into(), "z".into()),
        ],
        headers: vec![
            ("x-ad-slot".into(), "top".into()),
            ("accept-language".into(), "fr".into()),
        ],
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)".into()),
        referer: Some("https://news.example.org/article?id=7".into()),
        client_ip: Some("203.0.113.0".into()),
        status: Some(204),
        duration_us: Some(1_234),
        request_bytes: Some(512),
        response_bytes: Some(0),
        route: Some("ads".into()),
        upstream: Some("ad_server".into()),
        body: Some("{\"imp\":[{\"id\":\"1\"}]}".into()),
        body_base64: false,
        body_truncated: true,
    }
}

fn minimal_event() -> Event {
    Event {
        v: SCHEMA_VERSION,
        id: "0000000000000001-0".into(),
        event_type: "click".into(),
        ts: 0,
        method: "POST".into(),
        host: "h".into(),
        path: "/c".into(),
        ..Event::default()
    }
}

fn records(cfg: &Config) -> Vec<Record> {
    let mut a = to_record(cfg, 0, &full_event()).unwrap();
    let b = to_record(cfg, 0, &minimal_event()).unwrap(); // no campaign_id: no key
    let mut c = to_record(cfg, 0, &full_event()).unwrap();
    a.key = Some("cmp-42".into());
    // A key needing escapes, and a different timestamp.
    c.key = Some("k\"ey\\\n\u{7f}ü".into());
    c.ts_ms = 951_782_400_000; // 2000-02-29T00:00:00.000Z
    vec![a, b, c]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn b64(s: &str) -> Vec<u8> {
    STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("not standard base64 {s:?}: {e}"))
}

fn common_headers(req: &HttpRequest, path: &str, content_type: &str, accept: &str) {
    assert_eq!(req.header(":method"), Some("POST"));
    assert_eq!(req.header(":path"), Some(path));
    assert_eq!(req.header(":authority"), Some("rest-proxy.internal:8082"));
    assert_eq!(req.header("content-type"), Some(content_type));
    assert_eq!(req.header("accept"), Some(accept));
    assert_eq!(
        req.header("content-length"),
        None,
        "Envoy sets content-length"
    );
    for (name, _) in &req.headers {
        assert_eq!(
            name,
            &name.to_ascii_lowercase(),
            "header names are lower case"
        );
    }
}

/// The event a sent value carries. JSON values are also checked byte-for-byte (spliced
/// verbatim); going through `serde_json::Value` sorts object keys, so pair order is compared
/// order-insensitively here and exactly in `json_value_shape_for_downstream_readers`.
fn value_event(format: ValueFormat, v: &Value) -> Event {
    sorted(match format {
        ValueFormat::Json => serde_json::from_value(v.clone()).unwrap(),
        ValueFormat::Msgpack => decode_value(format, &b64(v.as_str().unwrap())).unwrap(),
    })
}

fn sorted(mut e: Event) -> Event {
    e.query.sort();
    e.headers.sort();
    e
}

/// The sent value `sent` (`format`, as [`value_event`] reads it) carries the event of `rec`;
/// in JSON it is the record's value itself, its bytes spliced verbatim into `body`.
fn assert_sent_value(format: ValueFormat, body: &[u8], sent: &Value, rec: &Record) {
    if format == ValueFormat::Json {
        assert_eq!(*sent, serde_json::from_slice::<Value>(&rec.value).unwrap());
        assert!(contains(body, &rec.value), "value bytes spliced verbatim");
    }
    let want = sorted(decode_value(format, &rec.value).unwrap());
    assert_eq!(value_event(format, sent), want);
}

/// The keys of the JSON object `v`, sorted.
fn sorted_keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn check_v2(dialect: Dialect, format: ValueFormat) {
    let cfg = config(dialect, format, Value::Null);
    let recs = records(&cfg);
    let req = build_request(&cfg, 0, recs.iter());
    let (ct, binary) = match format {
        ValueFormat::Json => ("application/vnd.kafka.json.v2+json", false),
        ValueFormat::Msgpack => ("application/vnd.kafka.binary.v2+json", true),
    };
    common_headers(
        &req,
        "/topics/ad.impressions",
        ct,
        "application/vnd.kafka.v2+json",
    );
    assert_eq!(req.header("authorization"), None);

    let body: Value = serde_json::from_slice(&req.body).unwrap();
    let obj = body.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        ["records"],
        "v2 body has only `records`"
    );
    let out = obj["records"].as_array().unwrap();
    assert_eq!(out.len(), recs.len(), "one Kafka record per event");
    for (sent, rec) in out.iter().zip(&recs) {
        // No partition: the proxy partitions by key. No headers or timestamps in v2.
        let want: &[&str] = if rec.key.is_some() {
            &["key", "value"]
        } else {
            &["value"]
        };
        assert_eq!(sorted_keys(sent), want);
        match (&rec.key, binary) {
            (Some(k), false) => assert_eq!(sent["key"], json!(k)),
            (Some(k), true) => assert_eq!(b64(sent["key"].as_str().unwrap()), k.as_bytes()),
            (None, _) => {}
        }
        if binary {
            assert_eq!(b64(sent["value"].as_str().unwrap()), rec.value);
        } else {
            let embedded = sent["value"].is_object();
            assert!(embedded, "json format embeds the value as JSON");
        }
        assert_sent_value(format, &req.body, &sent["value"], rec);
    }
}

#[test]
fn confluent_v2_json() {
    check_v2(Dialect::ConfluentV2, ValueFormat::Json);
}

#[test]
fn confluent_v2_binary_msgpack() {
    check_v2(Dialect::ConfluentV2, ValueFormat::Msgpack);
}

#[test]
fn redpanda_json() {
    check_v2(Dialect::Redpanda, ValueFormat::Json);
}

#[test]
fn redpanda_binary_msgpack() {
    check_v2(Dialect::Redpanda, ValueFormat::Msgpack);
}

/// Splits a concatenated-JSON body into its objects.
fn split_concatenated(body: &[u8]) -> Vec<Value> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn check_v3(format: ValueFormat) {
    let cfg = config(Dialect::ConfluentV3, format, Value::Null);
    let recs = records(&cfg);
    let req = build_request(&cfg, 1, recs.iter());
    common_headers(
        &req,
        "/v3/clusters/lkc-x1y2z3/topics/ad-clicks_v2/records",
        "application/json",
        "application/json",
    );
    let objects = split_concatenated(&req.body);
    assert_eq!(objects.len(), recs.len(), "one ProduceRequest per record");
    // Documented choice: objects separated by exactly one newline, none trailing.
    assert_eq!(
        req.body.iter().filter(|&&b| b == b'\n').count(),
        recs.len() - 1
    );
    assert_ne!(req.body.last(), Some(&b'\n'));

    let (value_type, ct) = match format {
        ValueFormat::Json => ("JSON", "application/json"),
        ValueFormat::Msgpack => ("BINARY", "application/msgpack"),
    };
    let timestamps = [
        "2026-11-25T06:30:00.123Z",
        "1970-01-01T00:00:00.000Z",
        "2000-02-29T00:00:00.000Z",
    ];
    for ((sent, rec), ts) in objects.iter().zip(&recs).zip(timestamps) {
        let keys = sorted_keys(sent);
        let want: &[&str] = if rec.key.is_some() {
            &["headers", "key", "timestamp", "value"]
        } else {
            &["headers", "timestamp", "value"]
        };
        assert_eq!(keys, want, "no partition_id: the proxy partitions by key");

        if let Some(k) = &rec.key {
            assert_eq!(sent["key"], json!({"type": "STRING", "data": k}));
        }
        let value = sent["value"].as_object().unwrap();
        assert_eq!(value.len(), 2);
        assert_eq!(value["type"], json!(value_type));
        if format == ValueFormat::Msgpack {
            assert_eq!(b64(value["data"].as_str().unwrap()), rec.value);
        }
        assert_sent_value(format, &req.body, &value["data"], rec);

        // Record headers: name + base64 value (ProduceRequestHeader, `format: byte`).
        let headers = sent["headers"].as_array().unwrap();
        let decoded: Vec<(&str, Vec<u8>)> = headers
            .iter()
            .map(|h| {
                assert_eq!(h.as_object().unwrap().len(), 2);
                (
                    h["name"].as_str().unwrap(),
                    b64(h["value"].as_str().unwrap()),
                )
            })
            .collect();
        let schema = SCHEMA_VERSION.to_string().into_bytes();
        let want = [
            ("content-type", ct.as_bytes().to_vec()),
            ("adtap-schema", schema),
        ];
        assert_eq!(decoded, want);
        assert_eq!(sent["timestamp"], json!(ts));
    }
}

#[test]
fn confluent_v3_json() {
    check_v3(ValueFormat::Json);
}

#[test]
fn confluent_v3_binary_msgpack() {
    check_v3(ValueFormat::Msgpack);
}

#[test]
fn path_prefix_and_empty_batches() {
    let mut cfg = config(Dialect::ConfluentV3, ValueFormat::Json, Value::Null);
    cfg.path_prefix = "/kafka".into();
    let req = build_request(&cfg, 0, std::iter::empty());
    assert_eq!(
        req.header(":path"),
        Some("/kafka/v3/clusters/lkc-x1y2z3/topics/ad.impressions/records")
    );
    assert!(req.body.is_empty());
    cfg.dialect = Dialect::ConfluentV2;
    let req = build_request(&cfg, 1, std::iter::empty());
    assert_eq!(req.header(":path"), Some("/kafka/topics/ad-clicks_v2"));
    assert_eq!(
        serde_json::from_slice::<Value>(&req.body).unwrap(),
        json!({"records": []})
    );
    // An unknown topic index is not a panic.
    let req = build_request(&cfg, 99, std::iter::empty());
    assert_eq!(req.header(":path"), Some("/kafka/topics/"));
}

#[test]
fn auth_headers_and_redacted_debug() {
    let cases = [
        (
            json!({"basic": {"username": "API_KEY", "password": "s3cr3t:with:colons"}}),
            "authorization",
            format!("Basic {}", STANDARD.encode("API_KEY:s3cr3t:with:colons")),
            "s3cr3t",
        ),
        (
            json!({"bearer": "tok-123"}),
            "authorization",
            "Bearer tok-123".to_string(),
            "tok-123",
        ),
        (
            json!({"header": {"name": "X-Api-Key", "value": "k-999"}}),
            "x-api-key",
            "k-999".to_string(),
            "k-999",
        ),
    ];
    use Dialect::{ConfluentV2, ConfluentV3, Redpanda};
    for dialect in [ConfluentV2, ConfluentV3, Redpanda] {
        for (auth, name, value, secret) in &cases {
            let cfg = config(dialect, ValueFormat::Json, auth.clone());
            let recs = records(&cfg);
            let req = build_request(&cfg, 0, recs.iter());
            assert_eq!(req.header(name), Some(value.as_str()), "{dialect:?} {name}");
            let debug = format!("{req:?}");
            assert!(!debug.contains(secret), "secret in Debug: {debug}");
            assert!(
                !debug.contains(value.as_str()),
                "auth value in Debug: {debug}"
            );
            assert!(debug.contains(name) && debug.contains("<redacted>"));
            assert!(
                debug.contains("rest-proxy.internal:8082"),
                "safe headers stay visible"
            );
        }
    }
}

#[test]
fn value_round_trips_in_both_formats() {
    for format in [ValueFormat::Json, ValueFormat::Msgpack] {
        for event in [full_event(), minimal_event()] {
            let bytes = encode_value(format, &event).unwrap();
            assert_eq!(decode_value(format, &bytes).unwrap(), event, "{format:?}");
        }
    }
}

#[test]
fn json_value_shape_for_downstream_readers() {
    let v: Value =
        serde_json::from_slice(&encode_value(ValueFormat::Json, &full_event()).unwrap()).unwrap();
    // query and headers are objects, in allow-list order (not sorted).
    assert_eq!(
        v["query"],
        json!({"campaign_id": "cmp-42", "creative": "a\"b\\c\u{1}é", "aaa_last": "z"})
    );
    let text = String::from_utf8(encode_value(ValueFormat::Json, &full_event()).unwrap()).unwrap();
    let (c, a) = (
        text.find("\"campaign_id\"").unwrap(),
        text.find("\"aaa_last\"").unwrap(),
    );
    assert!(c < a, "allow-list order kept");
    assert_eq!(
        v["headers"],
        json!({"x-ad-slot": "top", "accept-language": "fr"})
    );
    assert_eq!(v["type"], json!("impression"));
    assert_eq!(v["v"], json!(SCHEMA_VERSION));
    assert_eq!(v["body_truncated"], json!(true));
    // Absent optionals and empty lists are omitted.
    let m: Value =
        serde_json::from_slice(&encode_value(ValueFormat::Json, &minimal_event()).unwrap())
            .unwrap();
    let keys = sorted_keys(&m);
    assert_eq!(keys, ["host", "id", "method", "path", "ts", "type", "v"]);
}

#[test]
fn msgpack_value_is_a_map_with_the_json_field_names() {
    let bytes = encode_value(ValueFormat::Msgpack, &full_event()).unwrap();
    // Decoded generically (as a reader in another language would), it is the same document
    // as the JSON encoding: named fields, query/headers as maps.
    let generic: Value = rmp_serde::from_slice(&bytes).unwrap();
    let json: Value =
        serde_json::from_slice(&encode_value(ValueFormat::Json, &full_event()).unwrap()).unwrap();
    assert_eq!(generic, json);
    // fixmap/map16 marker, not an array.
    assert!(
        matches!(bytes[0], 0x80..=0x8f | 0xde | 0xdf),
        "first byte {:#x}",
        bytes[0]
    );
}

#[test]
fn decoding_rejects_garbage_without_panicking() {
    assert!(decode_value(ValueFormat::Json, b"{").is_err());
    assert!(decode_value(ValueFormat::Json, br#"{"v":1,"unknown":2}"#).is_err());
    assert!(decode_value(ValueFormat::Msgpack, &[0xc1, 0xff, 0x00]).is_err());
    assert!(decode_value(ValueFormat::Msgpack, &[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn record_keys_from_every_source() {
    let e = full_event();
    let cases = [
        (KeySource::Query("campaign_id".into()), Some("cmp-42")),
        (KeySource::Query("missing".into()), None),
        (KeySource::Header("x-ad-slot".into()), Some("top")),
        (KeySource::Header("x-missing".into()), None),
        (KeySource::ClientIp, Some("203.0.113.0")),
        (
            KeySource::RequestId,
            Some("6f1c0a3e-7d1b-4f9e-9c55-0c2a5c1d9e11"),
        ),
        (KeySource::Host, Some("ads.example.com")),
        (KeySource::Path, Some("/imp/v1")),
        (KeySource::EventType, Some("impression")),
    ];
    for (source, want) in cases {
        assert_eq!(field_key(&source, &e).as_deref(), want, "{source:?}");
        let one = Key::Field(source.clone());
        assert_eq!(record_key(&one, &e).as_deref(), want, "{source:?}");
    }
    let m = minimal_event();
    assert_eq!(field_key(&KeySource::ClientIp, &m), None);
    assert_eq!(field_key(&KeySource::RequestId, &m), None);
}

#[test]
fn to_record_uses_the_rule_topic_key_format_and_timestamp() {
    for format in [ValueFormat::Json, ValueFormat::Msgpack] {
        let cfg = config(Dialect::ConfluentV2, format, Value::Null);
        let e = full_event();
        let r = to_record(&cfg, 0, &e).unwrap();
        assert_eq!(r.topic, 0);
        assert_eq!(r.key.as_deref(), Some("cmp-42"));
        assert_eq!(r.ts_ms, e.ts);
        assert_eq!(r.value, encode_value(format, &e).unwrap());
        assert_eq!(r.size(), r.value.len() + "cmp-42".len());
        let r = to_record(&cfg, 1, &e).unwrap();
        assert_eq!(
            (r.topic, r.key),
            (1, None),
            "rule without key source: no key"
        );
        assert!(
            to_record(&cfg, 2, &e).is_err(),
            "unknown rule is an error, not a panic"
        );
    }
}

#[test]
fn rfc3339_known_instants() {
    let cases = [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (86_399_999, "1970-01-01T23:59:59.999Z"),
        (951_696_000_000, "2000-02-28T00:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"), // 400-year leap day
        (951_868_800_000, "2000-03-01T00:00:00.000Z"),
        (1_078_099_199_999, "2004-02-29T23:59:59.999Z"), // 4-year leap day
        (1_612_552_482_000, "2021-02-05T19:14:42.000Z"), // the OpenAPI example
        (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
        (1_735_689_599_999, "2024-12-31T23:59:59.999Z"),
        (1_795_588_200_123, "2026-11-25T06:30:00.123Z"),
        (4_107_456_000_000, "2100-02-28T00:00:00.000Z"),
        (4_107_542_400_000, "2100-03-01T00:00:00.000Z"), // 2100 is not a leap year
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (u64::MAX, "9999-12-31T23:59:59.999Z"), // clamped
    ];
    for (ms, want) in cases {
        assert_eq!(rfc3339_ms(ms), want, "{ms}");
    }
}

/// Reference civil-date conversion by counting days year by year (slow, obviously right).
fn naive_civil(ms: u64) -> (u64, u64, u64, u64) {
    let mut days = ms / 86_400_000;
    let mut year = 1970;
    // Divisible by 4 but not by 100, or divisible by 400.
    let leap = |y: u64| matches!((y % 4, y % 100, y % 400), (0, 1.., _) | (_, _, 0));
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let february = if leap(year) { 29 } else { 28 };
    let months = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for len in months {
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    (year, month, days + 1, ms % 86_400_000)
}

proptest! {
    #[test]
    fn rfc3339_matches_a_naive_calendar(ms in 0u64..=253_402_300_799_999) {
        let s = rfc3339_ms(ms);
        let (y, mo, d, in_day) = naive_civil(ms);
        let want = format!(
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000
        );
        prop_assert_eq!(s, want);
    }

    #[test]
    fn keys_survive_json_escaping(key in "\\PC*|[\\x00-\\x1f\"\\\\]*") {
        let cfg = config(Dialect::ConfluentV3, ValueFormat::Json, Value::Null);
        let mut rec = to_record(&cfg, 1, &minimal_event()).unwrap();
        rec.key = Some(key.clone());
        let v3 = build_request(&cfg, 1, std::iter::once(&rec));
        let objs = split_concatenated(&v3.body);
        prop_assert_eq!(&objs[0]["key"]["data"], &json!(key));
        let mut cfg = cfg;
        cfg.dialect = Dialect::ConfluentV2;
        let v2 = build_request(&cfg, 1, std::iter::once(&rec));
        let body: Value = serde_json::from_slice(&v2.body).unwrap();
        prop_assert_eq!(&body["records"][0]["key"], &json!(key));
    }
}
