//! Unit tests of `config::validate` (in their own file once past about a hundred lines: see the crate's
//! `//!`).

use crate::config::{AuthConfig, Config, KeySource, PathMatch};
use crate::key::Key;
use crate::testkit;
use serde_json::{json, Value};

fn parse(v: Value) -> Result<Config, Vec<crate::config::ConfigError>> {
    Config::parse(v.to_string().as_bytes())
}

fn minimal() -> Value {
    json!({
        "cluster": "kafka_rest",
        "rules": [{"event_type": "impression", "topic": "ad-impressions", "path": {"exact": "/i"}}]
    })
}

#[test]
fn minimal_config_gets_defaults() {
    let c = testkit::config(&minimal());
    assert_eq!(c.authority, "kafka_rest");
    assert_eq!(c.topics, vec!["ad-impressions".to_string()]);
    assert_eq!(c.rules[0].topic, 0);
    assert_eq!(c.rules[0].sample_rate, 1.0);
    assert_eq!(c.rules[0].key, None);
    assert_eq!(c.batch.max_events, 500);
    assert_eq!(c.max_in_flight, 4);
}

#[test]
fn normalises_topics_hosts_headers_keys_and_auth() {
    let c = testkit::config(&json!({
        "cluster": "kafka_rest",
        "authority": "rest.internal:8082",
        "query_params": ["cid", {"name": "crid", "as": "creative"}],
        "headers": ["X-Campaign", "Cookie"],
        "key": "query.cid",
        "auth": {"header": {"name": "X-Api-Key", "value": "s3cret"}},
        "rules": [
            {"event_type": "impression", "topic": "imps", "path": {"prefix": "/imp"}, "host": "Ads.Example.COM:8443"},
            {"event_type": "click", "topic": "clicks", "path": {"exact": "/c"}, "key": "header.x-campaign"},
            {"event_type": "conversion", "topic": "imps", "path": {"exact": "/v"}, "key": "query.creative"}
        ]
    }));
    assert_eq!(c.authority, "rest.internal:8082");
    assert_eq!(c.topics, vec!["imps".to_string(), "clicks".to_string()]);
    let topics: Vec<usize> = c.rules.iter().map(|r| r.topic).collect();
    assert_eq!(topics, vec![0, 1, 0]);
    assert_eq!(c.rules[0].host.as_deref(), Some("ads.example.com"));
    assert_eq!(
        c.headers,
        vec!["x-campaign".to_string(), "cookie".to_string()]
    );
    let field = |source| Some(Key::Field(source));
    assert_eq!(c.rules[0].key, field(KeySource::Query("cid".into())));
    assert_eq!(
        c.rules[1].key,
        field(KeySource::Header("x-campaign".into()))
    );
    assert_eq!(c.rules[2].key, field(KeySource::Query("creative".into())));
    assert_eq!(c.rules[0].path, PathMatch::Prefix("/imp".into()));
    match c.auth {
        Some(AuthConfig::Header { name, value }) => {
            assert_eq!(name, "x-api-key");
            assert_eq!(value, "s3cret");
        }
        other => panic!("unexpected auth {other:?}"),
    }
}

#[test]
fn collects_every_error_at_once() {
    let errs = parse(json!({
        "cluster": "",
        "timeout_ms": 0,
        "batch": {"max_events": 0},
        "rules": [
            {"event_type": "", "topic": "..", "path": {"exact": "x"}, "sample_rate": 2.0},
            {"event_type": "ok", "topic": "t", "path": {"exact": "/x"}, "method": "G ET"}
        ]
    }))
    .unwrap_err();
    let mut paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        vec![
            "batch.max_events",
            "cluster",
            "rules[0].event_type",
            "rules[0].path.exact",
            "rules[0].sample_rate",
            "rules[0].topic",
            "rules[1].method",
            "timeout_ms",
        ]
    );
}

#[test]
fn secrets_never_appear_in_errors() {
    for auth in [
        json!({"basic": {"username": "", "password": "PW-SECRET"}}),
        json!({"bearer": "TOKEN-SECRET\r\nx: y"}),
        json!({"header": {"name": ":bad", "value": "VALUE-SECRET\n"}}),
    ] {
        let mut v = minimal();
        v["auth"] = auth;
        v["client_ip"] = json!({"mode": "full", "salt": "SALT-SECRET"});
        let errs = parse(v).unwrap_err();
        assert!(errs.len() >= 2, "{errs:?}");
        for e in &errs {
            let text = e.to_string();
            assert!(!text.contains("SECRET"), "secret leaked: {text}");
        }
    }
}

#[test]
fn inherited_top_level_key_is_reported_once() {
    let mut v = minimal();
    v["key"] = json!("query.nope");
    v["rules"] = json!([
        {"event_type": "a", "topic": "t", "path": {"exact": "/a"}},
        {"event_type": "b", "topic": "t", "path": {"exact": "/b"}}
    ]);
    let errs = parse(v).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "key");
}

#[test]
fn nan_and_infinite_rates_rejected_when_built_in_code() {
    let mut raw = crate::config::RawConfig::from_json(minimal().to_string().as_bytes()).unwrap();
    raw.rules[0].sample_rate = f64::NAN;
    raw.retry.jitter = f64::INFINITY;
    let errs = raw.validate().unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["retry.jitter", "rules[0].sample_rate"]);
}
