//! The configuration as a serialized `google.protobuf.Struct` (what Envoy hands
//! `proxy_on_configure` for a YAML/Struct `configuration`): the decoder against an independent
//! encoder (`struct_encoder`), round-trip as a property, the rule that tells the two forms apart,
//! and the decoder's refusals with their paths.

#![cfg(test)]

mod struct_encoder;

use adtap_core::pb_struct::{decode, looks_like_struct, MAX_DEPTH};
use adtap_core::{testkit, Config};
use proptest::prelude::*;
use serde_json::{json, Map, Number, Value};
use struct_encoder::encode_struct;

/// What a JSON value becomes after a trip through a Struct: every number is a double, and a
/// whole double of magnitude below 2^64 reads back as an integer.
fn through_doubles(v: &Value) -> Value {
    map_numbers(v, &|n| {
        let x = n.as_f64().unwrap();
        if x.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&x) {
            json!(x as u64)
        } else if x.fract() == 0.0 && (-9_223_372_036_854_775_808.0..0.0).contains(&x) {
            json!(x as i64)
        } else {
            Value::Number(Number::from_f64(x).unwrap())
        }
    })
}

/// `v` with every number, at any depth, replaced by `f` of it.
fn map_numbers(v: &Value, f: &impl Fn(&Number) -> Value) -> Value {
    match v {
        Value::Number(n) => f(n),
        Value::Array(items) => Value::Array(items.iter().map(|x| map_numbers(x, f)).collect()),
        Value::Object(m) => {
            let fields = m.iter().map(|(k, x)| (k.clone(), map_numbers(x, f)));
            Value::Object(fields.collect())
        }
        other => other.clone(),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u32>().prop_map(|i| json!(i)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #[test]
    fn json_to_struct_bytes_and_back(
        fields in prop::collection::btree_map(".{0,8}", json_value(), 0..6)
    ) {
        let doc = Value::Object(fields.into_iter().collect());
        let bytes = encode_struct(&doc).unwrap();
        prop_assert_eq!(decode(&bytes).unwrap(), through_doubles(&doc));
    }
}

#[test]
fn a_struct_and_its_json_text_give_the_same_configuration() {
    let doc = json!({
        "cluster": "kafka_rest", "dialect": "confluent_v3", "cluster_id": "lkc-1", "format": "msgpack",
        "auth": {"basic": {"username": "key", "password": "secret"}},
        "rules": [
            {"event_type": "impression", "topic": "imps", "method": "GET", "path": {"prefix": "/imp"}, "sample_rate": 0.25},
            {"event_type": "bid", "topic": "bids", "path": {"exact": "/bid"}, "capture_body": true, "key": "client_ip"}
        ],
        "query_params": ["cid", {"name": "crid", "as": "creative"}],
        "client_ip": {"mode": "hash", "salt": "pepper", "trusted_hops": 2},
        "batch": {"max_events": 100, "max_bytes": 65536, "max_age_ms": 250},
        "retry": {"multiplier": 1.5, "jitter": 0.1},
        "key": ["query.cid", "query.creative"],
        "record_headers": ["traceparent"],
        "cloudevents": {"source": "//ads.example.com/edge", "type_prefix": "com.example."}
    });
    let from_json = testkit::config(&doc);
    let bytes = encode_struct(&doc).unwrap();
    assert!(looks_like_struct(&bytes));
    assert_eq!(Config::parse(&bytes).unwrap(), from_json);
}

/// The detection rule: first byte `0x0a` → a Struct; a JSON text that starts with a newline
/// (also `0x0a`) does not decode as one and is read as JSON; anything else is JSON.
#[test]
fn which_form_arrived() {
    let text = json!({"cluster": "k", "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}}]})
        .to_string();
    for doc in [
        text.clone(),
        format!("\n{text}"),
        format!("\n\n  {text}\n"),
        format!(" \t{text}"),
    ] {
        assert!(Config::parse(doc.as_bytes()).is_ok(), "{doc:?}");
    }
    // A newline then a JSON syntax error is reported as JSON (with its position).
    let errs = Config::parse(b"\n{\"cluster\": }").unwrap_err();
    assert_eq!(errs[0].path, "cluster");
    assert!(
        errs[0].message.starts_with("expected value at line 2"),
        "{errs:?}"
    );
    // Binary that starts like a Struct but is not one: the Struct's problem, not JSON's.
    let errs = Config::parse(&[0x0a, 0x05, 0x0a, 0x01]).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "$: not a google.protobuf.Struct: a length runs past the end"
    );
    // Anything else that is not an object.
    let errs = Config::parse(b"[1, 2]").unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "$: the configuration must be a JSON object (or a google.protobuf.Struct)"
    );
}

/// Encodes a Struct with one field holding `value_bytes` as its serialized `Value`.
fn one_field(key: &str, value_bytes: &[u8]) -> Vec<u8> {
    let mut entry = vec![0x0a, key.len() as u8];
    entry.extend_from_slice(key.as_bytes());
    entry.push(0x12);
    entry.push(value_bytes.len() as u8);
    entry.extend_from_slice(value_bytes);
    let mut out = vec![0x0a, entry.len() as u8];
    out.extend(entry);
    out
}

#[test]
fn refusals_name_the_path() {
    // NaN in a nested field.
    let mut nan = vec![0x11];
    nan.extend_from_slice(&f64::NAN.to_le_bytes());
    let inner = one_field("max_events", &nan);
    let mut value = vec![0x2a, inner.len() as u8];
    value.extend(inner);
    let doc = one_field("batch", &value);
    let e = decode(&doc).unwrap_err();
    let nan_message = "must be a finite number (NaN and infinity have no JSON form)";
    assert_eq!(
        (e.path.as_str(), e.message.as_str()),
        ("batch.max_events", nan_message)
    );
    // A field a Value does not have (7), a Value with two kinds, a repeated key.
    let e = decode(&one_field("x", &[0x38, 0x01])).unwrap_err();
    assert_eq!(
        e.message,
        "not a google.protobuf.Struct: unexpected field 7 (wire type 0) in a Value"
    );
    let e = decode(&one_field("x", &[0x20, 0x01, 0x20, 0x00])).unwrap_err();
    assert_eq!(e.path, "x");
    assert_eq!(
        e.message,
        "not a google.protobuf.Struct: a Value holds two kinds"
    );
    let mut twice = one_field("x", &[0x20, 0x01]);
    twice.extend(one_field("x", &[0x20, 0x00]));
    let e = decode(&twice).unwrap_err();
    assert_eq!(
        (e.path.as_str(), e.message.as_str()),
        ("x", "is given twice")
    );
    // A string that is not UTF-8.
    let e = decode(&one_field("x", &[0x1a, 0x01, 0xff])).unwrap_err();
    assert_eq!(
        e.message,
        "not a google.protobuf.Struct: a string is not UTF-8"
    );
    // Too deep: lists in lists.
    let mut v = json!(1);
    for _ in 0..MAX_DEPTH + 1 {
        v = json!([v]);
    }
    let e = decode(&encode_struct(&json!({"deep": v})).unwrap()).unwrap_err();
    assert_eq!(e.message, format!("nested deeper than {MAX_DEPTH} levels"));
    assert!(e.path.starts_with("deep[0][0]"), "{}", e.path);
}

/// Envoy's YAML loader writes floats (and integers outside `i32`) as strings: with every number
/// of a full configuration written so, the Struct still gives the configuration the JSON text
/// gives. This also proves `NUMERIC_FIELDS` lists every numeric field: one left out would keep
/// its string and be refused.
#[test]
fn every_number_as_a_yaml_string() {
    let doc = json!({
        "cluster": "kafka_rest", "timeout_ms": 3000, "tick_ms": 20, "max_in_flight": 8,
        "shutdown_deadline_ms": 4000,
        "rules": [
            {"event_type": "a", "topic": "2024", "path": {"exact": "/a"}, "sample_rate": 0.25},
            {"event_type": "b", "topic": "t", "path": {"exact": "/b"}, "sample_rate": 1.0, "capture_body": true}
        ],
        "client_ip": {"mode": "full", "trusted_hops": 2},
        "body": {"max_bytes": 2048},
        "batch": {"max_events": 50, "max_bytes": 4194304, "max_age_ms": 100},
        "buffer": {"max_events": 5000, "max_bytes": 4294967296u64 / 16},
        "retry": {"initial_backoff_ms": 20, "max_backoff_ms": 2000, "multiplier": 1.5,
                  "jitter": 0.3, "budget_ms": 30000}
    });
    let want = testkit::config(&doc);
    let yaml_like = map_numbers(&doc, &|n| Value::String(n.to_string()));
    let got = Config::parse(&encode_struct(&yaml_like).unwrap()).unwrap();
    assert_eq!(got, want);
    // The topic "2024" stayed a string (not a numeric field), and the JSON text form stays
    // strict: a number written as a string is refused there.
    assert_eq!(got.topics[0], "2024");
    assert!(Config::parse(yaml_like.to_string().as_bytes()).is_err());
    // A string that is not a number stays one, refused by the field's type check.
    let mut bad = doc.clone();
    bad["batch"]["max_events"] = json!("fifty");
    let errs = Config::parse(&encode_struct(&bad).unwrap()).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "batch.max_events: invalid type: string \"fifty\", expected usize"
    );
    bad["batch"]["max_events"] = json!("2.5");
    let errs = Config::parse(&encode_struct(&bad).unwrap()).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "batch.max_events: invalid type: floating point `2.5`, expected usize"
    );
}

#[test]
fn numbers_in_yaml_spellings() {
    use adtap_core::pb_struct::number_from_text;
    for (text, want) in [
        ("2.5", json!(2.5)),
        ("+2.5", json!(2.5)),
        (".5", json!(0.5)),
        ("-.5", json!(-0.5)),
        ("1.", json!(1)),
        ("1.e3", json!(1000)),
        ("1e3", json!(1000)),
        ("-7", json!(-7)),
        ("4294967296", json!(4_294_967_296u64)),
        ("1e30", json!(1e30)),
    ] {
        assert_eq!(number_from_text(text), Some(want), "{text}");
    }
    for text in [
        "", "abc", " 1", "1 ", "inf", "NaN", ".inf", "0x10", "1e999", "--1", "1..2",
    ] {
        assert_eq!(number_from_text(text), None, "{text}");
    }
}
