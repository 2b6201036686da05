//! Unit tests of `cloudevents` (in their own file once past about a hundred lines: see the
//! crate's `//!`).

use super::*;
use serde_json::{json, Value};

/// CloudEvents options of `source` and `type_prefix`.
fn ce_with(source: &str, type_prefix: &str) -> CloudEventsConfig {
    let (source, type_prefix) = (source.into(), type_prefix.into());
    CloudEventsConfig {
        source,
        type_prefix,
    }
}

/// The options most tests use: an edge source, the default type prefix.
fn ce() -> CloudEventsConfig {
    ce_with("//ads.example.com/edge", DEFAULT_TYPE_PREFIX)
}

fn quoted(id: &str) -> impl FnOnce(&mut Vec<u8>) + '_ {
    move |o: &mut Vec<u8>| write_json_str(o, id)
}

#[test]
fn structured_json_envelope_exact_bytes() {
    let mut out = b"junk".to_vec();
    let data = br#"{"v":1,"id":"00000000000000ab-1f"}"#;
    write_structured(
        &mut out,
        &ce(),
        quoted("00000000000000ab-1f"),
        "click",
        1_764_657_000_123,
        ValueFormat::Json,
        data,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"specversion":"1.0","id":"00000000000000ab-1f","source":"//ads.example.com/edge","type":"adtap.click","time":"2025-12-02T06:30:00.123Z","dataschema":"urn:adtap:event:v1","datacontenttype":"application/json","data":{"v":1,"id":"00000000000000ab-1f"}}"#
    );
}

#[test]
fn structured_msgpack_envelope_has_data_base64() {
    let mut out = Vec::new();
    let data = [0x81u8, 0xa1, b'v', 0x01];
    let cfg = ce_with("//ads.example.com/edge", "");
    write_structured(
        &mut out,
        &cfg,
        quoted("x"),
        "bid",
        0,
        ValueFormat::Msgpack,
        &data,
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"specversion": "1.0", "id": "x", "source": "//ads.example.com/edge",
            "type": "bid", "time": "1970-01-01T00:00:00.000Z", "dataschema": "urn:adtap:event:v1",
            "datacontenttype": "application/msgpack", "data_base64": "gaF2AQ=="})
    );
}

#[test]
fn binary_headers_in_order() {
    let mut out = vec![("x-first".to_string(), "kept".to_string())];
    push_binary_headers(&ce(), "id-1".into(), "impression", 86_400_000, &mut out);
    let got: Vec<(&str, &str)> = out.iter().map(|(k, v)| (&**k, &**v)).collect();
    assert_eq!(
        got,
        [
            ("x-first", "kept"),
            ("ce_specversion", "1.0"),
            ("ce_id", "id-1"),
            ("ce_source", "//ads.example.com/edge"),
            ("ce_type", "adtap.impression"),
            ("ce_time", "1970-01-02T00:00:00.000Z"),
            ("ce_dataschema", "urn:adtap:event:v1"),
        ]
    );
}

#[test]
fn checks_name_the_field() {
    let msgs = |source: &str, prefix: &str| -> Vec<String> {
        let errors = check(&ce_with(source, prefix));
        errors.iter().map(ToString::to_string).collect()
    };
    let (longest_source, longest_prefix) = (
        "a".repeat(MAX_SOURCE_BYTES),
        "p".repeat(MAX_TYPE_PREFIX_BYTES),
    );
    assert!(msgs("urn:example:edge-1", "com.example.").is_empty());
    assert!(msgs("https://ads.example.com/x?y=%20", "").is_empty());
    assert_eq!(
        msgs("", "a b"),
        [
            "cloudevents.source: must not be empty: CloudEvents requires a source (a URI reference such as `//ads.example.com/edge` or `urn:example:edge-eu-1`)",
            "cloudevents.type_prefix: may contain only letters, digits, `_`, `.` and `-` (a reverse-DNS prefix such as `com.example.ads.`)"
        ]
    );
    assert_eq!(
        msgs("//a b", "x"),
        ["cloudevents.source: must be a URI reference: printable ASCII without spaces, quotes or any of \\ < > ^ ` { | } (percent-encode them)"]
    );
    assert_eq!(
        msgs(&format!("{longest_source}a"), &format!("{longest_prefix}p")),
        [
            "cloudevents.source: is 1025 bytes long, at most 1024 allowed",
            "cloudevents.type_prefix: is 129 bytes long, at most 128 allowed"
        ]
    );
    assert!(msgs(&longest_source, &longest_prefix).is_empty());
}

#[test]
fn structured_values_read_back() {
    let ev = Event {
        v: 1,
        id: "00000000000000ab-1f".into(),
        event_type: "click".into(),
        ts: 5,
        method: "GET".into(),
        host: "h".into(),
        path: "/c".into(),
        ..Event::default()
    };
    for format in [ValueFormat::Json, ValueFormat::Msgpack] {
        let data = crate::encode::encode_value(format, &ev).unwrap();
        let mut out = Vec::new();
        write_structured(&mut out, &ce(), quoted(&ev.id), "click", 5, format, &data);
        let back = decode_structured(&out).unwrap();
        assert_eq!((back.format, &back.event), (format, &ev));
        assert_eq!(back.attributes["type"], "adtap.click");
        assert_eq!(back.attributes["time"], "1970-01-01T00:00:00.005Z");
        assert!(
            !back.attributes.contains_key("data") && !back.attributes.contains_key("data_base64")
        );
    }
    let msg = |v: &str| decode_structured(v.as_bytes()).unwrap_err().0;
    assert!(msg("[1]").starts_with("cloudevents envelope: not a JSON object"));
    assert_eq!(
        msg(r#"{"specversion":"0.3"}"#),
        "cloudevents envelope: `specversion` is not \"1.0\""
    );
    assert_eq!(
        msg(r#"{"specversion":"1.0","datacontenttype":"text/plain"}"#),
        "cloudevents envelope: `datacontenttype` \"text/plain\" is neither application/json nor application/msgpack"
    );
    assert_eq!(
        msg(r#"{"specversion":"1.0","datacontenttype":"application/json"}"#),
        "cloudevents envelope: `data` missing"
    );
    assert_eq!(
        msg(r#"{"specversion":"1.0","datacontenttype":"application/msgpack","data_base64":"!"}"#),
        "cloudevents envelope: `data_base64` is not base64"
    );
}

#[test]
fn extra_bytes_bound_the_longest_attributes() {
    let ce = ce_with(
        &"s".repeat(MAX_SOURCE_BYTES),
        &"p".repeat(MAX_TYPE_PREFIX_BYTES),
    );
    let ty = "t".repeat(crate::config::MAX_EVENT_TYPE_BYTES);
    let id = format!("{:016x}-{:x}", u64::MAX, u64::MAX);
    assert_eq!(id.len(), MAX_ID_BYTES);
    let mut headers = Vec::new();
    push_binary_headers(&ce, id.clone(), &ty, u64::MAX, &mut headers);
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, BINARY_HEADER_NAMES);
    let size: usize = headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + crate::event::HEADER_OVERHEAD_BYTES)
        .sum();
    let json = ValueFormat::Json;
    assert_eq!(size, max_extra_bytes(&ce, Dialect::ConfluentV3, json));
    for format in [ValueFormat::Json, ValueFormat::Msgpack] {
        let mut out = Vec::new();
        write_structured(&mut out, &ce, quoted(&id), &ty, u64::MAX, format, b"");
        assert!(out.len() <= max_extra_bytes(&ce, Dialect::ConfluentV2, format));
        // Tight: the JSON envelope is 12 bytes shorter than the MessagePack one.
        assert!(out.len() + 12 >= max_extra_bytes(&ce, Dialect::Redpanda, format));
    }
}

#[test]
fn modes_follow_record_headers() {
    assert_eq!(mode(Dialect::ConfluentV3), Mode::Binary);
    assert_eq!(mode(Dialect::ConfluentV2), Mode::Structured);
    assert_eq!(mode(Dialect::Redpanda), Mode::Structured);
}
