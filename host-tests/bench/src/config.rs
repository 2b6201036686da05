//! adtap's configuration for the bench: the harness's base ([`adtap_harness::config::base`])
//! with [`patch`], so the bench measures the capture path an operator would start from.
//!
//! The patch keeps the base's cluster, headers and key, and narrows the rest:
//! - one rule, `GET` prefix `/imp` (the bench route, [`crate::envoy::AD_PATH`]), and the two
//!   query parameters that route carries, `campaign_id` and `creative_id`;
//! - `client_ip` `truncate` (the default mode; the base keeps `full` for tests that compare
//!   addresses);
//! - no `response_fields`, timings, batching, buffering, in-flight or retry settings: the filter's
//!   defaults (`status` only), as measured in BENCHMARKS.md.
//!
//! A run can merge one more RFC 7396 patch over this with `--adtap-patch FILE`; the lean run of
//! BENCHMARKS.md is `host-tests/bench/lean-patch.json` (`response_fields: ["status"]`,
//! `client_ip.mode: "omit"`).

use adtap_core::config::{Dialect, ValueFormat};
use adtap_harness::config::{merge, patched};
use anyhow::{Context as _, Result};
use serde_json::{json, Value};
use std::path::Path;

/// The bench's patch over the harness's base configuration.
pub fn patch() -> Value {
    json!({
        "rules": [
            {"event_type": "impression", "topic": "ad-impressions", "method": "GET",
             "path": {"prefix": "/imp"}}
        ],
        "query_params": ["campaign_id", "creative_id"],
        "client_ip": {"mode": "truncate", "trusted_hops": null},
        "response_fields": null,
        "timeout_ms": null,
        "tick_ms": null,
        "body": null,
        "batch": null,
        "buffer": null,
        "max_in_flight": null,
        "retry": null,
        "shutdown_deadline_ms": null
    })
}

/// The bench's configuration for `dialect` and `format`.
pub fn adtap_config(dialect: Dialect, format: ValueFormat) -> Value {
    patched(dialect, format, &patch())
}

/// The bench's configuration with the RFC 7396 patch in the JSON file `path` merged over it.
pub fn with_patch_file(dialect: Dialect, format: ValueFormat, path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let extra: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON merge patch", path.display()))?;
    let mut cfg = adtap_config(dialect, format);
    merge(&mut cfg, &extra);
    Ok(cfg)
}

/// A dialect by its configuration name (`confluent_v2`, …).
pub fn dialect(name: &str) -> Result<Dialect> {
    serde_json::from_value(Value::String(name.into()))
        .with_context(|| format!("unknown dialect {name:?}"))
}

/// A value format by its configuration name (`json`, `msgpack`).
pub fn format(name: &str) -> Result<ValueFormat> {
    serde_json::from_value(Value::String(name.into()))
        .with_context(|| format!("unknown format {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration the bench measured before it was derived from the harness's base.
    fn before(dialect: &str, format: &str) -> Value {
        let mut v = json!({
            "cluster": "kafka_rest",
            "dialect": dialect,
            "format": format,
            "rules": [
                {"event_type": "impression", "topic": "ad-impressions", "method": "GET",
                 "path": {"prefix": "/imp"}}
            ],
            "query_params": ["campaign_id", "creative_id"],
            "headers": ["x-country"],
            "client_ip": {"mode": "truncate"},
            "key": "query.campaign_id"
        });
        if dialect == "confluent_v3" {
            v["cluster_id"] = json!(adtap_harness::config::CLUSTER_ID);
        }
        v
    }

    #[test]
    fn base_plus_patch_is_what_the_bench_measured() {
        for d in ["confluent_v2", "confluent_v3", "redpanda"] {
            for f in ["json", "msgpack"] {
                let cfg = adtap_config(dialect(d).unwrap(), format(f).unwrap());
                assert_eq!(cfg, before(d, f), "{d}/{f}");
                assert!(adtap_core::Config::parse(cfg.to_string().as_bytes()).is_ok());
            }
        }
        assert!(dialect("kafka").is_err());
    }

    #[test]
    fn the_lean_patch_drops_the_ip_and_reads_the_status_only() {
        let path = adtap_harness::paths::repo_root().join("host-tests/bench/lean-patch.json");
        let cfg = with_patch_file(Dialect::ConfluentV2, ValueFormat::Json, &path).unwrap();
        let mut expected = before("confluent_v2", "json");
        expected["client_ip"] = json!({"mode": "omit"});
        expected["response_fields"] = json!(["status"]);
        assert_eq!(cfg, expected);
        assert!(adtap_core::Config::parse(cfg.to_string().as_bytes()).is_ok());
    }
}
