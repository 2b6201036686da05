//! The published event schema (`filter/core/schema/event.v1.schema.json`) against the core:
//! - the committed file is exactly what `schema::event_schema_text` generates (regenerate it
//!   with `ADTAP_BLESS_SCHEMA=1 cargo test -p adtap-core --test event_schema`), and a valid
//!   draft 2020-12 schema;
//! - its properties are exactly the fields of `Event`, its required ones the fields an event
//!   always has, so a field added to the event type fails here until the schema has it;
//! - records written by `record::write`, in JSON and MessagePack, with every field and with
//!   values at their bounds (longest query and header values, largest body in text and base64,
//!   the largest integers, each client-IP mode), validate; values one past a bound do not.

#![cfg(test)]

use adtap_core::capture::{BodyCapture, Completion, MAX_HEADER_VALUE_BYTES, MAX_QUERY_VALUE_BYTES};
use adtap_core::config::{Config, ValueFormat, MAX_BODY_BYTES};
use adtap_core::headers::HeaderPairs;
use adtap_core::record::{self, Scratch};
use adtap_core::schema::{event_schema, event_schema_text, SCHEMA_FILE};
use adtap_core::testkit::{self, head, MAX_ID};
use adtap_core::Event;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn committed_path() -> PathBuf {
    // The manifest dir is filter/core; SCHEMA_FILE is relative to the repository root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(SCHEMA_FILE)
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&event_schema())
        .unwrap()
}

#[test]
fn committed_file_is_current() {
    let path = committed_path();
    let want = event_schema_text();
    if std::env::var_os("ADTAP_BLESS_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
    }
    let got = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (ADTAP_BLESS_SCHEMA=1 writes it)", path.display()));
    assert!(
        got == want,
        "{} is stale: regenerate it with ADTAP_BLESS_SCHEMA=1 cargo test -p adtap-core --test event_schema",
        path.display()
    );
    assert_eq!(adtap_core::schema::EVENT_SCHEMA_JSON, got);
    let parsed: Value = serde_json::from_str(&got).unwrap();
    jsonschema::meta::validate(&parsed).unwrap();
    assert_eq!(
        parsed["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// An event with every optional field present.
fn full_event() -> Event {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    Event {
        v: adtap_core::event::SCHEMA_VERSION,
        id: "00000000000000ab-1".into(),
        event_type: "click".into(),
        ts: 1,
        request_id: Some("r".into()),
        method: "GET".into(),
        host: "h".into(),
        path: "/".into(),
        query: vec![pair("a", "1")],
        headers: vec![pair("x-a", "1")],
        user_agent: Some("ua".into()),
        referer: Some("ref".into()),
        client_ip: Some("192.0.2.0".into()),
        status: Some(200),
        duration_us: Some(1),
        request_bytes: Some(1),
        response_bytes: Some(1),
        route: Some("r".into()),
        upstream: Some("u".into()),
        body: Some("AA==".into()),
        body_base64: true,
        body_truncated: true,
    }
}

#[test]
fn properties_are_the_event_fields() {
    let schema = event_schema();
    let full = serde_json::to_value(full_event()).unwrap();
    assert_eq!(keys(&schema["properties"]), keys(&full));
    let minimal = serde_json::to_value(Event::default()).unwrap();
    let required: BTreeSet<String> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(required, keys(&minimal));
    let v = validator();
    assert!(v.is_valid(&full));
    // The default event's empty id and type are outside the schema: adtap never writes them.
    assert!(!v.is_valid(&minimal));
}

/// A configuration capturing every field, with the body bound at its maximum.
fn config(format: &str, ip: Value) -> Config {
    let doc = json!({
        "cluster": "k",
        "format": format,
        "rules": [{"event_type": "bid.v2-x_y", "topic": "t", "path": {"prefix": "/"}, "capture_body": true}],
        "query_params": ["a", {"name": "b", "as": "renamed"}, "c"],
        "headers": ["x-a", "accept-language"],
        "client_ip": ip,
        "body": {"max_bytes": MAX_BODY_BYTES},
        "batch": {"max_bytes": 16 * 1024 * 1024},
        "buffer": {"max_bytes": 256 * 1024 * 1024},
        "response_fields": ["status", "duration", "sizes", "route", "upstream"],
    });
    testkit::config(&doc)
}

/// The value `record::write` gives for one request, decoded to JSON (MessagePack through its
/// JSON equivalent).
fn written(
    cfg: &Config,
    path: &str,
    headers: &[(&str, String)],
    peer: &str,
    body: Option<&[u8]>,
) -> Value {
    let headers = HeaderPairs::from_pairs(headers);
    let done = Completion {
        status: Some(u16::MAX),
        duration_us: Some(u64::MAX),
        request_bytes: Some(u64::MAX),
        response_bytes: Some(0),
        route: Some("route-é".into()),
        upstream: Some(String::new()),
        peer_address: Some(peer.into()),
    };
    let capture = body.map(|b| {
        let mut c = BodyCapture::new(cfg.body.max_bytes);
        c.push(b, b.len());
        c
    });
    let head = head("POST", "Ads.Example.com:8443", path);
    let fields = testkit::fields(MAX_ID, u64::MAX, head, &headers, &done, capture.as_ref());
    let rec = record::write(cfg, &fields, &mut Scratch::new()).unwrap();
    match cfg.format {
        ValueFormat::Json => serde_json::from_slice(&rec.value).unwrap(),
        ValueFormat::Msgpack => rmp_serde::from_slice(&rec.value).unwrap(),
    }
}

fn assert_valid(v: &jsonschema::Validator, value: &Value) {
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn written_records_validate_at_their_bounds() {
    let v = validator();
    let q = "q".repeat(MAX_QUERY_VALUE_BYTES + 10);
    let path = format!("/bid/x?a={q}&b=%E2%82%AC{}&c=", "€".repeat(400));
    let long = "h".repeat(MAX_HEADER_VALUE_BYTES + 1);
    let wide = "é".repeat(MAX_HEADER_VALUE_BYTES); // twice the byte bound
    let headers = [
        ("x-request-id", long.clone()),
        ("user-agent", wide.clone()),
        ("referer", long.clone()),
        ("x-a", wide),
        ("accept-language", long),
    ];
    let text_body = "b".repeat(MAX_BODY_BYTES + 5);
    let binary_body: Vec<u8> = (0..MAX_BODY_BYTES + 5)
        .map(|i| (i % 251) as u8 | 0x80)
        .collect();
    let longest_v6 = "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:1";
    let ips = [
        (json!({"mode": "full"}), "203.0.113.77:1"),
        (json!({"mode": "full"}), longest_v6),
        (json!({"mode": "truncate"}), "[::ffff:198.51.100.7]:80"),
        (json!({"mode": "hash", "salt": "s"}), "192.0.2.1:1"),
    ];
    for format in ["json", "msgpack"] {
        for (ip, peer) in &ips {
            let cfg = config(format, ip.clone());
            for body in [Some(text_body.as_bytes()), Some(&binary_body[..]), None] {
                let value = written(&cfg, &path, &headers, peer, body);
                assert_valid(&v, &value);
                // The bounds were reached: the values are at their longest.
                let len = |v: &Value| v.as_str().unwrap().len();
                assert_eq!(len(&value["query"]["a"]), MAX_QUERY_VALUE_BYTES);
                assert_eq!(len(&value["request_id"]), MAX_HEADER_VALUE_BYTES);
                assert_eq!(value["ts"], u64::MAX);
                assert_eq!(value["status"], u16::MAX);
                assert_eq!(value["id"], "ffffffffffffffff-ffffffffffffffff");
                assert_eq!(value["body_truncated"].as_bool(), body.map(|_| true));
            }
        }
        // The fewest fields: no query, no headers, no body, IP omitted.
        let cfg = config(format, json!({"mode": "omit"}));
        let value = written(&cfg, "/", &[], "", None);
        assert_valid(&v, &value);
        assert!(value.get("query").is_none() && value.get("client_ip").is_none());
    }
}

#[test]
fn values_past_a_bound_are_refused() {
    let v = validator();
    let base = serde_json::to_value(full_event()).unwrap();
    assert!(v.is_valid(&base));
    let over: Vec<(&str, Value)> = vec![
        ("v", json!(2)),
        ("id", json!("00000000000000AB-1")),
        ("id", json!("0000000000000ab-1")),
        ("type", json!("")),
        ("type", json!("a b")),
        ("type", json!("t".repeat(65))),
        ("ts", json!(-1)),
        ("ts", json!(1.5)),
        ("request_id", json!("r".repeat(MAX_HEADER_VALUE_BYTES + 1))),
        ("user_agent", json!("é".repeat(MAX_HEADER_VALUE_BYTES + 1))),
        ("query", json!({"a": "q".repeat(MAX_QUERY_VALUE_BYTES + 1)})),
        ("query", json!({"a": 1})),
        ("query", json!({})),
        ("headers", json!({"X-Upper": "1"})),
        ("client_ip", json!("not an ip")),
        ("client_ip", json!("0123456789abcdef0123456789abcdeF")),
        ("status", json!(65_536)),
        ("duration_us", json!(18_446_744_073_709_551_616.0)),
        ("body", json!("b".repeat(MAX_BODY_BYTES / 3 * 4 + 5))),
        ("body_base64", json!(false)),
        ("route", Value::Null),
        ("extra", json!("unknown fields are refused")),
    ];
    for (field, value) in over {
        let mut e = base.clone();
        e[field] = value.clone();
        assert!(!v.is_valid(&e), "{field} = {value} should be refused");
    }
    // Text bodies have the byte bound itself; base64 ones are base64.
    let mut text = base.clone();
    text.as_object_mut().unwrap().remove("body_base64");
    text["body"] = json!("b".repeat(MAX_BODY_BYTES));
    assert!(v.is_valid(&text));
    text["body"] = json!("b".repeat(MAX_BODY_BYTES + 1));
    assert!(!v.is_valid(&text), "text body past body.max_bytes");
    let mut b64 = base.clone();
    b64["body"] = json!("not base64!");
    assert!(
        !v.is_valid(&b64),
        "body_base64 with a body that is not base64"
    );
    let mut no_body = base.clone();
    no_body.as_object_mut().unwrap().remove("body");
    assert!(!v.is_valid(&no_body), "body_base64 without body");
}
