//! Property-based fuzzing of the core's untrusted-input paths, sized to run in CI in seconds
//! (the cargo-fuzz targets in `filter/core/fuzz/` run the same checks open-ended):
//! - configuration: arbitrary bytes, and structured mutations of the valid configs of the
//!   shared table → `Config::parse` never panics and every error names a path and a problem;
//! - capture and encoding: arbitrary request heads, headers, query strings and body chunks →
//!   `match_rule` / `BodyCapture` / `record::write` / `build_request` never panic, the written
//!   value is exactly serde's encoding of the event it decodes to (JSON and MessagePack), its
//!   key is the one `record_key` takes from that event, and each dialect's body holds one
//!   record per event;
//! - classification: arbitrary statuses and bodies → exactly `n` outcomes for every dialect.

#![cfg(test)]

use adtap_core::capture::{self, BodyCapture, Completion};
use adtap_core::classify::{classify, Response};
use adtap_core::config::{Config, Dialect, ValueFormat};
use adtap_core::encode;
use adtap_core::headers::HeaderPairs;
use adtap_core::record::{self, EventId, Scratch};
use adtap_core::rng::Rng;
use adtap_core::testkit;
use proptest::prelude::*;
use serde_json::{json, Value};

const CASES: &str = include_str!("config_cases.json");

fn valid_configs() -> Vec<Value> {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    cases
        .into_iter()
        .filter(|c| c["errors"].as_array().is_some_and(Vec::is_empty))
        .filter_map(|c| c.get("config").cloned())
        .collect()
}

fn assert_errors_named(json: &[u8]) {
    if let Err(errors) = Config::parse(json) {
        assert!(!errors.is_empty());
        for e in errors {
            assert!(!e.path.is_empty(), "error without a path: {e:?}");
            assert!(!e.message.is_empty(), "error without a message: {e:?}");
        }
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![Just(-1.0), Just(0.0), Just(0.5), Just(1.0), Just(1e300)].prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "/",
            "x",
            "drop_oldest",
            "confluent_v3",
            "msgpack",
            "hash",
            "query.",
            "header.x",
        ])
        .prop_map(Value::from),
    ]
}

fn json_any() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every path (as key/index steps) to a value inside `v`.
fn paths(v: &Value, prefix: Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let mut p = prefix.clone();
                p.push(Value::from(k.as_str()));
                paths(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(Value::from(i));
                paths(x, p, out);
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(v, |v, step| match step {
        Value::String(k) => &mut v[k.as_str()],
        Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
        _ => unreachable!(),
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    AddUnknown(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => json_any().prop_map(Mutation::Replace),
        1 => Just(Mutation::Remove),
        1 => ("[a-z_]{1,8}", json_leaf()).prop_map(|(k, v)| Mutation::AddUnknown(k, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn config_parse_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_errors_named(&bytes);
    }

    #[test]
    fn config_parse_survives_arbitrary_json(v in json_any()) {
        assert_errors_named(v.to_string().as_bytes());
    }

    #[test]
    fn config_parse_survives_mutated_valid_configs(
        pick in any::<prop::sample::Index>(),
        muts in prop::collection::vec((any::<prop::sample::Index>(), mutation()), 1..4),
    ) {
        let configs = valid_configs();
        let mut cfg = pick.get(&configs).clone();
        for (where_, m) in muts {
            let mut all = Vec::new();
            paths(&cfg, Vec::new(), &mut all);
            let path = where_.get(&all).clone();
            match m {
                Mutation::Replace(v) => *at(&mut cfg, &path) = v,
                Mutation::Remove => {
                    if let Some((last, parent)) = path.split_last() {
                        match (at(&mut cfg, parent), last) {
                            (Value::Object(o), Value::String(k)) => { o.remove(k); }
                            (Value::Array(a), Value::Number(i)) => {
                                a.remove(i.as_u64().unwrap() as usize);
                            }
                            _ => {}
                        }
                    }
                }
                Mutation::AddUnknown(k, v) => {
                    if let Value::Object(o) = at(&mut cfg, &path) {
                        o.insert(format!("zz_{k}"), v);
                    }
                }
            }
        }
        let text = cfg.to_string();
        assert_errors_named(text.as_bytes());
        // A truncated document is a syntax error at `$`, never a panic.
        let cut = &text.as_bytes()[..text.len() / 2];
        assert_errors_named(cut);
    }
}

// ---- capture and encoding --------------------------------------------------------------------

fn capture_config(dialect: &str, format: &str, mode: &str, key: &str) -> Config {
    let mut v = json!({
        "cluster": "kafka_rest", "dialect": dialect, "cluster_id": "lkc-1", "format": format,
        "rules": [
            {"event_type": "imp", "topic": "imps", "method": "GET", "path": {"prefix": "/i"}},
            {"event_type": "bid", "topic": "bids", "path": {"prefix": "/"}, "capture_body": true,
             "host": "ads.example"},
            {"event_type": "any", "topic": "imps", "path": {"prefix": "/"}}
        ],
        "query_params": ["n", {"name": "c", "as": "campaign"}, "x y", "ü"],
        "headers": ["x-a", "user-agent", "cookie"],
        "client_ip": {"mode": mode, "salt": "s", "trusted_hops": 2},
        "body": {"max_bytes": 64},
        "key": key
    });
    if mode == "omit" && key == "client_ip" {
        v["key"] = json!("host");
    }
    if mode != "hash" {
        v["client_ip"].as_object_mut().unwrap().remove("salt");
    }
    testkit::config(&v)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[/?&=%+a-z0-9.:\\[\\] ]{0,60}",
        prop::collection::vec(any::<u8>(), 0..60)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn capture_and_encode_never_panic_and_round_trip(
        dialect in prop::sample::select(vec!["confluent_v2", "confluent_v3", "redpanda"]),
        format in prop::sample::select(vec!["json", "msgpack"]),
        mode in prop::sample::select(vec!["full", "truncate", "hash", "omit"]),
        key in prop::sample::select(vec!["query.n", "header.x-a", "client_ip", "host", "path"]),
        method in text(), host in text(), path in text(),
        headers in prop::collection::vec(
            (prop::sample::select(vec!["x-a", "user-agent", "referer", "x-request-id", "cookie"]),
             text()),
            0..6),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 0..5),
        xff in prop::option::of(text()),
        peer in prop::option::of(text()),
        status in prop::option::of(any::<u16>()),
        ts in any::<u64>(),
        sample in any::<u64>(),
    ) {
        let cfg = capture_config(dialect, format, mode, key);
        let head = testkit::head(&method, &host, &path);
        let rule = capture::match_rule(&cfg, head).unwrap_or(2);
        let _ = capture::sampled(&cfg.rules[rule], &mut Rng::new(sample));
        let mut pairs: Vec<(String, String)> =
            headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if let Some(xff) = &xff {
            pairs.push(("x-forwarded-for".to_string(), xff.clone()));
        }
        let hdrs = HeaderPairs::from_pairs(&pairs);
        let mut body = BodyCapture::new(cfg.body.max_bytes);
        for c in &chunks {
            let want = body.wanted().min(c.len());
            body.push(&c[..want], c.len());
        }
        let done = Completion { status, peer_address: peer, ..Completion::default() };
        let fields = record::Fields {
            rule,
            id: EventId { vm: sample, seq: ts },
            ts,
            head,
            headers: &hdrs,
            done: &done,
            body: cfg.rules[rule].capture_body.then_some(&body),
        };
        let rec = record::write(&cfg, &fields, &mut Scratch::new()).unwrap();
        let ev = encode::decode_value(cfg.format, &rec.value).unwrap();
        prop_assert_eq!(&encode::encode_value(cfg.format, &ev).unwrap(), &rec.value);
        prop_assert_eq!(&rec.key, &encode::record_key(cfg.rules[rule].key.as_ref().unwrap(), &ev));
        prop_assert_eq!(ev.id, format!("{sample:016x}-{ts:x}"));
        prop_assert!(ev.body.as_ref().is_none_or(|b| b.len() <= 64 * 4 / 3 + 4));
        if cfg.format == ValueFormat::Json {
            let v: Value = serde_json::from_slice(&rec.value).unwrap();
            prop_assert!(v.is_object());
        }
        let recs = [rec.clone(), rec];
        let req = encode::build_request(&cfg, cfg.rules[rule].topic, recs.iter());
        prop_assert_eq!(req.header(":method"), Some("POST"));
        let n = match cfg.dialect {
            Dialect::ConfluentV3 => serde_json::Deserializer::from_slice(&req.body)
                .into_iter::<Value>()
                .inspect(|r| assert!(r.is_ok(), "v3 body: {r:?}"))
                .count(),
            _ => serde_json::from_slice::<Value>(&req.body).unwrap()["records"]
                .as_array()
                .unwrap()
                .len(),
        };
        prop_assert_eq!(n, 2);
    }

    #[test]
    fn classify_returns_exactly_n_outcomes(
        status in prop::option::of(prop_oneof![any::<u16>(), 100u16..600]),
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            json_any().prop_map(|v| v.to_string().into_bytes()),
            prop::collection::vec(
                prop::option::of(prop_oneof![any::<i64>(), Just(1i64), Just(2), Just(50003),
                                             Just(40401)]),
                0..12,
            ).prop_map(|codes| json!({"offsets": codes.iter().map(|c| json!({
                "partition": 0, "offset": 1, "error_code": c, "error": "timed out"}))
                .collect::<Vec<_>>()}).to_string().into_bytes()),
            prop::collection::vec(any::<i64>(), 0..12).prop_map(|codes| codes.iter()
                .map(|c| json!({"error_code": c, "offset": 3}).to_string())
                .collect::<Vec<_>>().join("\n").into_bytes()),
        ],
        n in 0usize..40,
    ) {
        for d in [Dialect::ConfluentV2, Dialect::ConfluentV3, Dialect::Redpanda] {
            prop_assert_eq!(classify(d, Response { status, body: &body }, n).len(), n);
        }
    }
}
