//! Matching what arrived in Kafka against what was sent.
//!
//! Each request carries a unique `x-request-id`, recorded by adtap as `request_id`; so the
//! events expected are those of the requests a rule matches, found by request id. Loss,
//! duplicates (by event id), strays and per-field mismatches are all reported, never just
//! counted, so a failing test says which field of which event was wrong. Every record's value
//! is also validated against the published event schema
//! (`filter/core/schema/event.v1.schema.json`, [`adtap_core::schema::EVENT_SCHEMA_JSON`]), in
//! either format and inside a CloudEvents envelope, so no end-to-end run can deliver a record
//! the schema does not describe.

use crate::kafka::KafkaRecord;
use crate::traffic::AdRequest;
use adtap_core::config::{Dialect, ValueFormat};
use adtap_core::event::SCHEMA_VERSION;
use adtap_harness::config::topic_for;
use base64::Engine as _;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::OnceLock;

/// The outcome of [`reconcile`].
#[derive(Debug, Clone, Default)]
pub struct Reconciliation {
    /// Events expected (requests a rule matches).
    pub expected: usize,
    /// Records read back.
    pub records: usize,
    /// Request ids of expected events that never arrived.
    pub lost: Vec<String>,
    /// Records whose event id was already seen.
    pub duplicates: usize,
    /// Records that match no expected event (unknown or missing request id).
    pub strays: Vec<String>,
    /// Records whose value did not decode.
    pub undecodable: Vec<String>,
    /// Field mismatches, one line each (`request id: field: got … want …`).
    pub mismatches: Vec<String>,
    /// Records whose value the published event schema refuses, with the validator's reason.
    pub off_schema: Vec<String>,
    /// Keys seen on more than one partition of a topic.
    pub split_keys: Vec<String>,
    /// Distinct VM ids (event id prefixes): how many worker VMs captured.
    pub vm_ids: BTreeSet<String>,
    /// Records per (topic, partition).
    pub per_partition: BTreeMap<(String, i32), usize>,
}

impl Reconciliation {
    /// Nothing lost, duplicated, stray, undecodable or wrong.
    pub fn is_perfect(&self) -> bool {
        self.lost.is_empty()
            && self.duplicates == 0
            && self.strays.is_empty()
            && self.undecodable.is_empty()
            && self.mismatches.is_empty()
            && self.off_schema.is_empty()
            && self.split_keys.is_empty()
    }

    /// A multi-line summary with the first few problems of each kind.
    pub fn problems(&self) -> String {
        let mut s = format!(
            "expected {} events, read {} records: lost {}, duplicates {}, strays {}, undecodable {}, mismatches {}, off schema {}, split keys {}\n",
            self.expected,
            self.records,
            self.lost.len(),
            self.duplicates,
            self.strays.len(),
            self.undecodable.len(),
            self.mismatches.len(),
            self.off_schema.len(),
            self.split_keys.len()
        );
        for (what, list) in [
            ("lost", &self.lost),
            ("stray", &self.strays),
            ("undecodable", &self.undecodable),
            ("mismatch", &self.mismatches),
            ("off schema", &self.off_schema),
            ("split key", &self.split_keys),
        ] {
            for line in list.iter().take(8) {
                s.push_str(&format!("  {what}: {line}\n"));
            }
        }
        s
    }
}

/// Compares `records` against `requests` field by field (see the module docs). `window_ms` is
/// the wall-clock interval the requests were sent in (event timestamps must fall inside).
pub fn reconcile(
    requests: &[AdRequest],
    records: &[KafkaRecord],
    dialect: Dialect,
    format: ValueFormat,
    window_ms: (u64, u64),
) -> Reconciliation {
    let by_id: HashMap<&str, &AdRequest> = requests
        .iter()
        .filter(|r| r.kind.event_type().is_some())
        .map(|r| (r.request_id.as_str(), r))
        .collect();
    let mut rec = Reconciliation {
        expected: by_id.len(),
        records: records.len(),
        ..Reconciliation::default()
    };
    let mut seen_events = BTreeSet::new();
    let mut found_requests = BTreeSet::new();
    let mut key_partitions: BTreeMap<(String, String), BTreeSet<i32>> = BTreeMap::new();
    for r in records {
        *rec.per_partition
            .entry((r.topic.clone(), r.partition))
            .or_default() += 1;
        let where_ = format!("{}/{}@{}", r.topic, r.partition, r.offset);
        let ev = match &r.event {
            Ok(ev) => ev,
            Err(e) => {
                rec.undecodable.push(format!("{where_}: {e}"));
                continue;
            }
        };
        if let Err(why) = schema_check(format, &r.value) {
            rec.off_schema.push(format!("{where_}: {why}"));
        }
        if let Some((vm, _)) = ev.id.split_once('-') {
            rec.vm_ids.insert(vm.to_string());
        }
        if !seen_events.insert(ev.id.clone()) {
            rec.duplicates += 1;
            continue;
        }
        if let Some(k) = &r.key {
            key_partitions
                .entry((r.topic.clone(), k.clone()))
                .or_default()
                .insert(r.partition);
        }
        let Some(req) = ev.request_id.as_deref().and_then(|id| by_id.get(id)) else {
            rec.strays
                .push(format!("{where_}: request_id {:?}", ev.request_id));
            continue;
        };
        found_requests.insert(req.request_id.clone());
        check_fields(&mut rec.mismatches, req, r, dialect, format, window_ms);
    }
    rec.lost = by_id
        .keys()
        .filter(|id| !found_requests.contains(**id))
        .map(|id| id.to_string())
        .collect();
    rec.lost.sort();
    for ((topic, key), parts) in key_partitions {
        if parts.len() > 1 {
            rec.split_keys
                .push(format!("{topic} key {key:?} on partitions {parts:?}"));
        }
    }
    rec
}

/// The published event schema, compiled once per process.
fn schema() -> Result<&'static jsonschema::Validator, String> {
    static SCHEMA: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let doc: Value = serde_json::from_str(adtap_core::schema::EVENT_SCHEMA_JSON)
                .map_err(|e| format!("the published schema is not JSON: {e}"))?;
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&doc)
                .map_err(|e| format!("the published schema does not compile: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Validates a record's event against the published schema: the value itself, or the `data`
/// (`data_base64`) of a structured CloudEvents envelope. MessagePack is read into its JSON
/// equivalent (same keys), as the schema's docs say.
fn schema_check(format: ValueFormat, value: &[u8]) -> Result<(), String> {
    let read = |bytes: &[u8]| -> Result<Value, String> {
        match format {
            ValueFormat::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            ValueFormat::Msgpack => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
        }
    };
    // An envelope is always JSON (`application/cloudevents+json`), whatever the event's format.
    let envelope = serde_json::from_slice::<Value>(value)
        .ok()
        .filter(|v| v.get("specversion").is_some());
    let event = match envelope {
        Some(env) => match (
            env.get("data"),
            env.get("data_base64").and_then(Value::as_str),
        ) {
            (Some(data), _) => data.clone(),
            (None, Some(b64)) => read(
                &base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("data_base64: {e}"))?,
            )?,
            (None, None) => return Err("a CloudEvents envelope without data".into()),
        },
        None => read(value)?,
    };
    let validator = schema()?;
    let first = validator
        .iter_errors(&event)
        .next()
        .map(|e| format!("{} at {}", e, e.instance_path()));
    first.map_or(Ok(()), Err)
}

fn check_fields(
    out: &mut Vec<String>,
    req: &AdRequest,
    r: &KafkaRecord,
    dialect: Dialect,
    format: ValueFormat,
    window_ms: (u64, u64),
) {
    let Ok(ev) = &r.event else { return };
    // Compared as their `Debug` text: one line per field, whatever its type.
    let mut field = |name: &str, got: &dyn Debug, want: &dyn Debug| {
        let (got, want) = (format!("{got:?}"), format!("{want:?}"));
        if got != want {
            out.push(format!("{}: {name}: got {got} want {want}", req.request_id));
        }
    };
    let event_type = req.kind.event_type().unwrap_or_default();
    field("v", &ev.v, &SCHEMA_VERSION);
    field("type", &ev.event_type, &event_type);
    field(
        "topic",
        &r.topic,
        &topic_for(event_type).unwrap_or_default(),
    );
    field("method", &ev.method, &req.method);
    field("host", &ev.host, &req.host);
    field("path", &ev.path, &req.path);
    field("query", &ev.query, &req.expected_query());
    field("headers", &ev.headers, &req.expected_headers());
    field("user_agent", &ev.user_agent, &Some(&req.user_agent));
    field("referer", &ev.referer, &req.referer);
    field("client_ip", &ev.client_ip, &req.expected_client_ip());
    field("status", &ev.status, &Some(req.kind.status()));
    field("route", &ev.route, &Some(req.kind.route()));
    field("upstream", &ev.upstream, &Some("ad_server"));
    field("body", &ev.body, &req.body);
    field("body_truncated", &ev.body_truncated, &false);
    field("key", &r.key, &req.expected_key());
    if r.raw_key.is_some() != req.expected_key().is_some() {
        field("raw key presence", &r.raw_key, &req.expected_key());
    }
    let in_window = ev.ts + 1000 >= window_ms.0 && ev.ts <= window_ms.1 + 1000;
    field("ts in send window", &in_window, &true);
    field("duration_us present", &ev.duration_us.is_some(), &true);
    let sizes = ev.request_bytes.is_some_and(|b| b > 0) && ev.response_bytes.is_some();
    field("sizes present", &sizes, &true);
    if dialect == Dialect::ConfluentV3 {
        field(
            "record timestamp",
            &r.timestamp_ms,
            &i64::try_from(ev.ts).ok(),
        );
        let schema = Some(SCHEMA_VERSION.to_string());
        field("adtap-schema header", &r.header("adtap-schema"), &schema);
        let ct = r.header("content-type").unwrap_or_default();
        let fits = match format {
            ValueFormat::Json => ct.contains("json"),
            ValueFormat::Msgpack => ct.contains("msgpack"),
        };
        field(
            &format!("content-type header {ct:?} fits {format:?}"),
            &fits,
            &true,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({"v": 1, "id": "0123456789abcdef-2a", "type": "impression", "ts": 1,
               "method": "GET", "host": "ads.example.com", "path": "/imp"})
    }

    #[test]
    fn the_schema_check_reads_both_formats_and_envelopes() {
        let json_bytes = serde_json::to_vec(&event()).unwrap();
        let msgpack = rmp_serde::to_vec_named(&event()).unwrap();
        assert_eq!(schema_check(ValueFormat::Json, &json_bytes), Ok(()));
        assert_eq!(schema_check(ValueFormat::Msgpack, &msgpack), Ok(()));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&msgpack);
        let env = json!({"specversion": "1.0", "data_base64": b64});
        assert_eq!(
            schema_check(ValueFormat::Msgpack, &serde_json::to_vec(&env).unwrap()),
            Ok(())
        );
    }

    #[test]
    fn the_schema_check_refuses_what_the_schema_does_not_describe() {
        let mut bad = event();
        bad["id"] = json!("not-an-id");
        let err = schema_check(ValueFormat::Json, &serde_json::to_vec(&bad).unwrap()).unwrap_err();
        assert!(err.contains("/id"), "{err}");
        let mut extra = event();
        extra["campaign"] = json!("c-1");
        assert!(schema_check(ValueFormat::Json, &serde_json::to_vec(&extra).unwrap()).is_err());
        let env = json!({"specversion": "1.0", "data": bad});
        assert!(schema_check(ValueFormat::Json, &serde_json::to_vec(&env).unwrap()).is_err());
    }
}
