//! adtap's configuration for the harness: the capture rules for the sample ad server, the
//! dialect and value format under test, and short timings so tests settle quickly.
//!
//! Tests start from [`base`], set what the deployment needs ([`for_deployment`]) and deep-merge
//! their own overrides ([`merge`]), e.g. `{"buffer": {"max_events": 50}}`.

use crate::envoy::Deployment;
use serde_json::{json, Value};

/// Kafka topics the harness rules write to, by event type.
pub const TOPICS: [(&str, &str); 4] = [
    ("impression", "ad-impressions"),
    ("click", "ad-clicks"),
    ("conversion", "ad-conversions"),
    ("bid", "ad-bids"),
];

/// The Kafka cluster id the harness gives the REST proxy (and so the v3 path).
pub const CLUSTER_ID: &str = "adtap-local";

/// Salt of the harness config (only used when a test switches to `hash` mode).
pub const SALT: &str = "harness-salt";

/// The topic an event type goes to.
pub fn topic_for(event_type: &str) -> Option<&'static str> {
    TOPICS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, topic)| *topic)
}

/// REST dialect under test (the local REST proxy speaks the Confluent ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Confluent v2 (`POST /topics/{topic}`).
    ConfluentV2,
    /// Confluent v3 (`POST /v3/clusters/{id}/topics/{topic}/records`).
    ConfluentV3,
}

impl Dialect {
    /// The config's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::ConfluentV2 => "confluent_v2",
            Dialect::ConfluentV3 => "confluent_v3",
        }
    }
}

/// Record value format under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON values (v2: embedded json format).
    Json,
    /// MessagePack values (v2: embedded binary format).
    Msgpack,
}

impl Format {
    /// The config's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Msgpack => "msgpack",
        }
    }
}

/// The harness configuration for `dialect` and `format`, before overrides.
///
/// Client IPs are kept in `full` mode behind one trusted hop so tests can check the exact
/// address they sent in `X-Forwarded-For`; keys come from `campaign_id`; the creative is
/// sent as `crid` and renamed to `creative_id`; every response field is read (the default is
/// `status` only) so that each can be checked against the request.
pub fn base(dialect: Dialect, format: Format) -> Value {
    let mut cfg = json!({
        "cluster": "kafka_rest",
        "dialect": dialect.as_str(),
        "format": format.as_str(),
        // Longer than the REST proxy's delivery timeout (10 s, `Stack::start`): the proxy always
        // answers before the filter gives up on a call, so a slow broker cannot make the filter
        // retry records the proxy still delivers (duplicates).
        "timeout_ms": 12000,
        "tick_ms": 50,
        "rules": [
            {"event_type": "impression", "topic": "ad-impressions", "method": "GET", "path": {"prefix": "/imp"}},
            {"event_type": "click", "topic": "ad-clicks", "method": "GET", "path": {"prefix": "/click"}},
            {"event_type": "conversion", "topic": "ad-conversions", "path": {"exact": "/conv"}},
            {"event_type": "bid", "topic": "ad-bids", "method": "POST", "path": {"exact": "/bid"}, "capture_body": true}
        ],
        "query_params": ["campaign_id", {"name": "crid", "as": "creative_id"}],
        "headers": ["x-country"],
        "client_ip": {"mode": "full", "trusted_hops": 1},
        "response_fields": ["status", "duration", "sizes", "route", "upstream"],
        "key": "query.campaign_id",
        "body": {"max_bytes": 4096},
        "batch": {"max_events": 200, "max_bytes": 262144, "max_age_ms": 200},
        "buffer": {"max_events": 20000, "max_bytes": 16777216, "overflow": "drop_newest"},
        "max_in_flight": 4,
        "retry": {"initial_backoff_ms": 50, "max_backoff_ms": 1000, "multiplier": 2.0, "jitter": 0.2, "budget_ms": 60000},
        "shutdown_deadline_ms": 5000
    });
    if dialect == Dialect::ConfluentV3 {
        if let Some(obj) = cfg.as_object_mut() {
            obj.insert("cluster_id".into(), Value::String(CLUSTER_ID.into()));
        }
    }
    cfg
}

/// Sets what `deployment` needs in `cfg`: `http_filter_rules` `all` for the HTTP filter alone,
/// `body_only` beside the access logger (which takes the other rules); the logger alone ignores
/// it.
pub fn for_deployment(cfg: &mut Value, deployment: Deployment) {
    if let (Some(obj), Some(rules)) = (cfg.as_object_mut(), deployment.http_filter_rules()) {
        obj.insert("http_filter_rules".into(), Value::String(rules.into()));
    }
}

/// Deep-merges `overrides` into `base`: objects merge key by key, anything else replaces;
/// `null` removes the key (a `null` document changes nothing).
pub fn merge(base: &mut Value, overrides: &Value) {
    match (base, overrides) {
        // No overrides at all (e.g. `StackOptions::default()`).
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(slot) = b.get_mut(k) {
                    merge(slot, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_base_configs_pass_the_filters_own_validation() {
        for d in [Dialect::ConfluentV2, Dialect::ConfluentV3] {
            for f in [Format::Json, Format::Msgpack] {
                for deployment in Deployment::ALL {
                    let mut cfg = base(d, f);
                    for_deployment(&mut cfg, deployment);
                    let parsed = adtap_core::Config::parse(cfg.to_string().as_bytes());
                    assert!(parsed.is_ok(), "{d:?}/{f:?}/{deployment}: {parsed:?}");
                }
            }
        }
    }

    #[test]
    fn deployments_split_the_rules() {
        let captured = |deployment| {
            let mut cfg = base(Dialect::ConfluentV2, Format::Json);
            for_deployment(&mut cfg, deployment);
            let cfg = adtap_core::Config::parse(cfg.to_string().as_bytes()).unwrap();
            cfg.rules
                .iter()
                .map(|r| (r.event_type.clone(), deployment.captures(&cfg, r)))
                .collect::<Vec<_>>()
        };
        let with = |bid: bool| {
            ["impression", "click", "conversion", "bid"]
                .map(|t| (t.to_string(), t != "bid" || bid))
                .to_vec()
        };
        // The logger never sees a body: the bid rule (capture_body) is not its.
        assert_eq!(captured(Deployment::AccessLogger), with(false));
        assert_eq!(captured(Deployment::HttpFilter), with(true));
        assert_eq!(captured(Deployment::Both), with(true));
    }

    #[test]
    fn merge_is_deep_and_null_removes() {
        let mut b = json!({"a": {"x": 1, "y": 2}, "b": 1, "c": 3});
        merge(
            &mut b,
            &json!({"a": {"y": 5}, "b": [1], "c": null, "d": true}),
        );
        assert_eq!(b, json!({"a": {"x": 1, "y": 5}, "b": [1], "d": true}));
        merge(&mut b, &Value::Null);
        assert_eq!(b, json!({"a": {"x": 1, "y": 5}, "b": [1], "d": true}));
    }
}
