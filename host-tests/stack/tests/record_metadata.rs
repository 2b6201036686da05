//! End-to-end: what downstream consumers read beside the event, through the real stack (tansu,
//! REST proxy, Envoy with adtap.wasm in both deployments), read back with a real Kafka consumer
//! (rdkafka, through the REST proxy crate's testkit) and checked field by field:
//! - Confluent v3: the CloudEvents binary-mode headers of every record (`ce_specversion`,
//!   `ce_id` = the event id, `ce_source`, `ce_type`, `ce_time` = the event's `ts` in RFC 3339,
//!   `ce_dataschema`, `content-type`), and the configured request headers (`traceparent` when
//!   the request had one and never otherwise, `x-request-id`) as record headers;
//! - Confluent v2: every value a CloudEvents structured envelope, its attributes checked the
//!   same way and its `data` (JSON) or `data_base64` (MessagePack) the event;
//! - every record's key the JSON array of campaign and creative when the request had both, no
//!   key otherwise;
//! - every event matches its request field by field (`verify::reconcile`, whose single-field
//!   key check is replaced by the joined-key check above), and every event value read back
//!   validates against the published schema (`filter/core/schema/event.v1.schema.json`) with
//!   `check-jsonschema` (an implementation independent of the core's), in JSON and
//!   MessagePack; a value outside the schema is refused by the same run.
//!
//! Needs `./build.sh setup` (Envoy, tansu, check-jsonschema) and `./build.sh build`
//! (dist/adtap.wasm). One stack at a time (a process-wide lock).
#![cfg(test)]

mod support;

use adtap_core::cloudevents::decode_structured;
use adtap_core::config::{Dialect, ValueFormat as Format};
use adtap_core::encode::rfc3339_ms;
use adtap_core::schema::{SCHEMA_FILE, SCHEMA_ID};
use adtap_core::Event;
use adtap_stack::kafka::KafkaRecord;
use adtap_stack::traffic::{self, AdRequest};
use adtap_stack::{now_ms, Deployment, Stack, StackOptions};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use support::serial;

const SOURCE: &str = "//adtap.test/edge-e2e";
const TYPE_PREFIX: &str = "com.example.ads.";

/// The CloudEvents and key options under test (and record headers on v3).
fn overrides(dialect: Dialect) -> Value {
    let mut o = json!({
        "cloudevents": {"source": SOURCE, "type_prefix": TYPE_PREFIX},
        "key": ["query.campaign_id", "query.creative_id"],
    });
    if dialect == Dialect::ConfluentV3 {
        o["record_headers"] = json!(["traceparent", "x-request-id"]);
    }
    o
}

/// `n` requests of the usual mix; every other one carries a W3C `traceparent`.
fn requests(n: usize, seed: u64) -> Vec<AdRequest> {
    let mut reqs = traffic::generate(n, seed);
    for (i, r) in reqs.iter_mut().enumerate() {
        if i % 2 == 0 {
            r.private_headers.push((
                "traceparent".into(),
                format!("00-{:032x}-{:016x}-01", seed + 1, i + 1),
            ));
        }
    }
    reqs
}

fn traceparent(req: &AdRequest) -> Option<String> {
    req.private_headers
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v.clone())
}

/// The joined key adtap should write: both parts present and non-empty, else none.
fn expected_key(req: &AdRequest) -> Option<String> {
    let part = |name: &str| {
        req.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    Some(serde_json::to_string(&[part("campaign_id")?, part("crid")?]).unwrap())
}

/// The event value of a record as JSON (MessagePack through its JSON equivalent), out of the
/// structured envelope on v2, with the envelope when there is one.
fn event_value(dialect: Dialect, format: Format, r: &KafkaRecord) -> (Value, Option<Value>) {
    let decode = |bytes: &[u8]| -> Value {
        match format {
            Format::Json => serde_json::from_slice(bytes).unwrap(),
            Format::Msgpack => rmp_serde::from_slice(bytes).unwrap(),
        }
    };
    match dialect {
        Dialect::ConfluentV3 => (decode(&r.value), None),
        // Redpanda has no record headers either: the same structured envelope as v2.
        Dialect::ConfluentV2 | Dialect::Redpanda => {
            let env: Value = serde_json::from_slice(&r.value)
                .unwrap_or_else(|e| panic!("v2 value is not a JSON envelope: {e}"));
            let data = match format {
                Format::Json => env["data"].clone(),
                Format::Msgpack => decode(
                    &STANDARD
                        .decode(env["data_base64"].as_str().unwrap())
                        .unwrap(),
                ),
            };
            (data, Some(env))
        }
    }
}

/// `check-jsonschema` of `values` against the published schema, one file each: `Ok` or its
/// report.
fn validate_all(values: &[Value], dir: &Path) -> Result<(), String> {
    let schema = adtap_stack::repo_root().join(SCHEMA_FILE);
    let mut files = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let f = dir.join(format!("event-{i}.json"));
        std::fs::write(&f, serde_json::to_vec(v).unwrap()).unwrap();
        files.push(f);
    }
    support::check_jsonschema(&schema, &files)
}

/// Sends the traffic, waits for every event, and checks every record (see the module docs).
fn records_carry_cloudevents_headers_and_joined_keys(dialect: Dialect, format: Format, seed: u64) {
    let _guard = serial();
    let stack = Stack::start(StackOptions {
        deployment: Deployment::Both,
        dialect,
        format,
        overrides: overrides(dialect),
        ..StackOptions::default()
    })
    .expect("stack starts");
    let reqs = requests(60, seed);
    let expected = stack.expected(&reqs);
    let want = expected.len();
    let t0 = now_ms();
    let outcomes = stack.send(&reqs, 8).unwrap();
    let t1 = now_ms();
    assert!(outcomes.iter().all(|o| o.status.is_ok()), "{outcomes:?}");
    let s = stack
        .wait_settled(want as u64, Duration::from_secs(30))
        .unwrap();
    assert_eq!((s.delivered(), s.dropped()), (want as u64, 0), "{s}");
    let mut records = stack
        .read_records_expecting(want, Duration::from_secs(10))
        .unwrap();
    assert_eq!(records.len(), want);

    let by_request: HashMap<&str, &AdRequest> = expected
        .iter()
        .map(|r| (r.request_id.as_str(), r))
        .collect();
    let content_type = match format {
        Format::Json => "application/json",
        Format::Msgpack => "application/msgpack",
    };
    let mut values = Vec::with_capacity(records.len());
    let (mut keyed, mut keyless, mut traced) = (0, 0, 0);
    for r in &mut records {
        let (value, envelope) = event_value(dialect, format, r);
        let ev: Event = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("event of {}/{}: {e}: {value}", r.topic, r.offset));
        let rid = ev.request_id.clone().unwrap_or_default();
        let req = by_request
            .get(rid.as_str())
            .unwrap_or_else(|| panic!("record for an unknown request {rid:?}"));
        let at = format!("{rid} ({}/{}@{})", r.topic, r.partition, r.offset);
        let ce_type = format!("{TYPE_PREFIX}{}", ev.event_type);
        let ce_time = rfc3339_ms(ev.ts);
        match &envelope {
            None => {
                // Binary mode: the attributes are record headers, next to the content type.
                let want_headers = [
                    ("content-type", Some(content_type.to_string())),
                    ("adtap-schema", Some("1".to_string())),
                    ("ce_specversion", Some("1.0".to_string())),
                    ("ce_id", Some(ev.id.clone())),
                    ("ce_source", Some(SOURCE.to_string())),
                    ("ce_type", Some(ce_type.clone())),
                    ("ce_time", Some(ce_time.clone())),
                    ("ce_dataschema", Some(SCHEMA_ID.to_string())),
                    ("traceparent", traceparent(req)),
                    ("x-request-id", Some(req.request_id.clone())),
                ];
                for (name, want) in &want_headers {
                    assert_eq!(&r.header(name), want, "{at}: header {name}");
                }
                let n_want = want_headers.iter().filter(|(_, v)| v.is_some()).count();
                assert_eq!(r.headers.len(), n_want, "{at}: headers {:?}", r.headers);
                traced += usize::from(traceparent(req).is_some());
            }
            Some(env) => {
                assert!(r.headers.is_empty(), "{at}: v2 records have no headers");
                let mut want_env = json!({
                    "specversion": "1.0",
                    "id": ev.id,
                    "source": SOURCE,
                    "type": ce_type,
                    "time": ce_time,
                    "dataschema": SCHEMA_ID,
                    "datacontenttype": content_type,
                });
                match format {
                    Format::Json => want_env["data"] = value.clone(),
                    Format::Msgpack => want_env["data_base64"] = env["data_base64"].clone(),
                }
                assert_eq!(env, &want_env, "{at}: envelope");
                // The core's reader of envelopes (the JS package's decoder) agrees.
                assert_eq!(decode_structured(&r.value).unwrap().event, ev);
            }
        }
        assert_eq!(r.key, expected_key(req), "{at}: key");
        assert_eq!(r.raw_key.is_some(), r.key.is_some(), "{at}: raw key");
        keyed += usize::from(r.key.is_some());
        keyless += usize::from(r.key.is_none());
        // For the reconciliation: the event out of its envelope.
        r.event = Ok(ev);
        values.push(value);
    }
    // Everything but reconcile's single-field key check (the joined key was checked above);
    // its split-key check runs on the joined keys: each on one partition.
    let mut rec = stack.reconcile(&expected, &records, (t0, t1));
    rec.mismatches
        .retain(|m| !m.contains(": key: ") && !m.contains(": raw key presence: "));
    assert!(rec.is_perfect(), "{}", rec.problems());
    // The traffic has both kinds of key, and traced and untraced requests.
    assert!(keyed > 0 && keyless > 0, "keyed {keyed}, keyless {keyless}");
    if dialect == Dialect::ConfluentV3 {
        assert!(traced > 0 && traced < want, "traced {traced} of {want}");
    }

    let dir = tempfile::tempdir().unwrap();
    validate_all(&values, dir.path()).unwrap_or_else(|report| panic!("schema: {report}"));
    // The same run refuses a value outside the schema: the check is not vacuous.
    let mut bad = values[0].clone();
    bad["v"] = json!(2);
    let bad_dir = tempfile::tempdir().unwrap();
    let report = validate_all(&[bad], bad_dir.path()).unwrap_err();
    assert!(report.contains("event-0.json"), "{report}");
}

#[test]
fn v3_json_cloudevents_headers_record_headers_and_joined_keys() {
    records_carry_cloudevents_headers_and_joined_keys(Dialect::ConfluentV3, Format::Json, 31);
}

#[test]
fn v3_msgpack_cloudevents_headers_record_headers_and_joined_keys() {
    records_carry_cloudevents_headers_and_joined_keys(Dialect::ConfluentV3, Format::Msgpack, 32);
}

#[test]
fn v2_json_structured_envelopes_and_joined_keys() {
    records_carry_cloudevents_headers_and_joined_keys(Dialect::ConfluentV2, Format::Json, 33);
}

#[test]
fn v2_msgpack_structured_envelopes_and_joined_keys() {
    records_carry_cloudevents_headers_and_joined_keys(Dialect::ConfluentV2, Format::Msgpack, 34);
}
