//! adtap's configuration in the stack: the harness's base ([`adtap_harness::config::base`])
//! with what the [`Deployment`] needs; tests then apply their own RFC 7396 patch
//! ([`adtap_harness::config::merge`]), e.g. `{"buffer": {"max_events": 50}}`.

use crate::envoy::Deployment;
use adtap_core::config::{Dialect, ValueFormat};
use adtap_harness::config::base;
use serde_json::Value;

/// The base configuration for `dialect` and `format` set up for `deployment`:
/// `http_filter_rules` `all` for the HTTP filter alone, `body_only` beside the access logger
/// (which takes the other rules); the logger alone ignores it.
pub fn for_stack(dialect: Dialect, format: ValueFormat, deployment: Deployment) -> Value {
    let mut cfg = base(dialect, format);
    if let (Some(obj), Some(rules)) = (cfg.as_object_mut(), deployment.http_filter_rules()) {
        obj.insert("http_filter_rules".into(), Value::String(rules.into()));
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_configs_pass_the_filters_own_validation() {
        for d in [Dialect::ConfluentV2, Dialect::ConfluentV3] {
            for f in [ValueFormat::Json, ValueFormat::Msgpack] {
                for deployment in Deployment::ALL {
                    let cfg = for_stack(d, f, deployment);
                    let parsed = adtap_core::Config::parse(cfg.to_string().as_bytes());
                    assert!(parsed.is_ok(), "{d:?}/{f:?}/{deployment}: {parsed:?}");
                }
            }
        }
    }

    #[test]
    fn deployments_split_the_rules() {
        let captured = |deployment| {
            let cfg = for_stack(Dialect::ConfluentV2, ValueFormat::Json, deployment);
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
}
