//! THE base adtap configuration and the one merge that patches it.
//!
//! Every host test and bench starts from [`base`] for its dialect and value format and applies
//! its own differences with [`merge`] (RFC 7396: `{"buffer": {"max_events": 50}}` changes one
//! field, `{"retry": null}` removes the key so the filter's default applies). The base captures
//! the sample ad server's traffic (impressions, clicks, conversions, bids: [`TOPICS`]) with every
//! field checkable: client IPs kept in `full` mode behind one trusted hop, keys from
//! `campaign_id`, the creative sent as `crid` and renamed to `creative_id`, every response field
//! read; and short timings so tests settle quickly.

use adtap_core::config::{Dialect, ValueFormat};
use serde_json::{json, Value};

/// Kafka topics the base rules write to, by event type.
pub const TOPICS: [(&str, &str); 4] = [
    ("impression", "ad-impressions"),
    ("click", "ad-clicks"),
    ("conversion", "ad-conversions"),
    ("bid", "ad-bids"),
];

/// The upstream cluster the base configuration ships to.
pub const CLUSTER: &str = "kafka_rest";

/// The Kafka cluster id of the v3 dialect (the local REST proxy is given the same).
pub const CLUSTER_ID: &str = "adtap-local";

/// The salt tests set when they switch `client_ip` to `hash` mode.
pub const SALT: &str = "harness-salt";

/// The topic the base rules send `event_type` to.
pub fn topic_for(event_type: &str) -> Option<&'static str> {
    TOPICS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, topic)| *topic)
}

/// The configuration's spelling of `dialect`.
pub fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::ConfluentV2 => "confluent_v2",
        Dialect::ConfluentV3 => "confluent_v3",
        Dialect::Redpanda => "redpanda",
    }
}

/// The configuration's spelling of `format`.
pub fn format_name(format: ValueFormat) -> &'static str {
    match format {
        ValueFormat::Json => "json",
        ValueFormat::Msgpack => "msgpack",
    }
}

/// The base configuration for `dialect` and `format` (v3 also gets [`CLUSTER_ID`]).
pub fn base(dialect: Dialect, format: ValueFormat) -> Value {
    let mut cfg = json!({
        "cluster": CLUSTER,
        "dialect": dialect_name(dialect),
        "format": format_name(format),
        // Longer than the local REST proxy's delivery timeout (10 s): the proxy always answers
        // before the filter gives up on a call, so a slow broker cannot make the filter retry
        // records the proxy still delivers (duplicates).
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
        merge(&mut cfg, &json!({ "cluster_id": CLUSTER_ID }));
    }
    cfg
}

/// RFC 7396 JSON merge patch: the core's test merge, so that the core's own tests and the host
/// tests patch configurations the same way (objects merge deeply, `null` deletes the key,
/// anything else replaces).
pub use adtap_core::testkit::merge;

/// [`base`] with `patch` merged in: the usual way to get a test's configuration.
pub fn patched(dialect: Dialect, format: ValueFormat, patch: &Value) -> Value {
    let mut cfg = base(dialect, format);
    merge(&mut cfg, patch);
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIALECTS: [Dialect; 3] = [
        Dialect::ConfluentV2,
        Dialect::ConfluentV3,
        Dialect::Redpanda,
    ];
    const FORMATS: [ValueFormat; 2] = [ValueFormat::Json, ValueFormat::Msgpack];

    #[test]
    fn every_base_passes_the_filters_own_validation() {
        for d in DIALECTS {
            for f in FORMATS {
                let parsed = adtap_core::Config::parse(base(d, f).to_string().as_bytes());
                assert!(parsed.is_ok(), "{d:?}/{f:?}: {parsed:?}");
                if let Ok(cfg) = parsed {
                    assert_eq!((cfg.dialect, cfg.format), (d, f));
                }
            }
        }
    }

    #[test]
    fn the_rules_use_the_listed_topics() {
        let cfg = base(Dialect::ConfluentV2, ValueFormat::Json);
        let rules = cfg["rules"].as_array().cloned().unwrap_or_default();
        assert_eq!(rules.len(), TOPICS.len());
        for r in rules {
            let t = r["event_type"].as_str().unwrap_or_default();
            assert_eq!(topic_for(t), r["topic"].as_str(), "{r}");
        }
        assert_eq!(topic_for("view"), None);
    }

    #[test]
    fn patched_is_base_plus_the_patch() {
        let cfg = patched(
            Dialect::ConfluentV3,
            ValueFormat::Msgpack,
            &json!({"retry": null, "buffer": {"max_events": 50}}),
        );
        assert!(cfg.get("retry").is_none());
        assert_eq!(cfg["buffer"]["max_events"], 50);
        assert_eq!(cfg["buffer"]["overflow"], "drop_newest");
        assert_eq!(cfg["cluster_id"], CLUSTER_ID);
    }
}
