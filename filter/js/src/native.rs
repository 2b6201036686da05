//! `nativeFilter`: the native Envoy configuration that keeps requests no rule can match out of
//! the Wasm VM, computed by the core's [`adtap_core::native`] (the same functions
//! `adtap-envoy-config` prints), for the `adtap native-filter` command and control planes.
//!
//! Unlike `adtap-envoy-config`, the entry never carries the configuration itself: it may hold
//! secrets (REST proxy credentials, the client-IP salt) and this output is meant to be shown,
//! pasted into reviews and logged by CI. The plugin configuration's `value` is the placeholder
//! [`CONFIG_PLACEHOLDER`], which the operator replaces with the configuration just validated.

use crate::preview::ErrorView;
use adtap_core::native::{self, Deployment};
use adtap_core::Config;
use serde::Serialize;
use serde_json::Value;

/// Stands in the entry for adtap's configuration (the `StringValue`'s `value`).
pub const CONFIG_PLACEHOLDER: &str = "@ADTAP_CONFIG@";

/// The module's path on the Envoy host when the caller gives none (as `adtap-envoy-config`).
pub const DEFAULT_WASM: &str = "/etc/envoy/adtap.wasm";

/// Result of `nativeFilter`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NativeFilter {
    /// False when the configuration is invalid (then only `errors` is set).
    pub ok: bool,
    /// Every configuration error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorView>,
    /// `access-logger` or `http-filter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<&'static str>,
    /// Indices of the rules this deployment captures (what the native part passes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<usize>>,
    /// The native part alone: the access log `filter` (an
    /// `envoy.config.accesslog.v3.AccessLogFilter`), or the composite matcher's predicate (an
    /// `xds.type.matcher.v3.Matcher.MatcherList.Predicate` on request headers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// The whole list entry (`access_log` or `http_filters`), the configuration replaced by
    /// [`CONFIG_PLACEHOLDER`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<Value>,
    /// Set when the deployment captures no rule, so its native part matches no request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
}

/// Parses the `deployment` argument: `access-logger` or `http-filter`.
pub fn parse_deployment(name: &str) -> Result<Deployment, String> {
    match name {
        "access-logger" => Ok(Deployment::AccessLogger),
        "http-filter" => Ok(Deployment::HttpFilter),
        other => Err(format!(
            "unknown deployment `{other}` (expected \"access-logger\" or \"http-filter\")"
        )),
    }
}

/// The native filter of `deployment` for the configuration `json` (validated first, exactly as
/// the filter's `on_configure` does), loading the module from `wasm`.
pub fn native_filter(json: &[u8], deployment: Deployment, wasm: &str) -> NativeFilter {
    let cfg = match Config::parse(json) {
        Ok(cfg) => cfg,
        Err(errors) => {
            return NativeFilter {
                ok: false,
                errors: errors
                    .into_iter()
                    .map(|e| ErrorView {
                        path: e.path,
                        message: e.message,
                    })
                    .collect(),
                deployment: None,
                rules: None,
                filter: None,
                entry: None,
                warning: None,
            }
        }
    };
    let rules: Vec<usize> = cfg
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| native::captures(&cfg, deployment, r))
        .map(|(i, _)| i)
        .collect();
    let (name, filter, entry, warning) = match deployment {
        Deployment::AccessLogger => (
            "access-logger",
            native::access_log_filter(&cfg),
            native::access_log_entry(&cfg, CONFIG_PLACEHOLDER, wasm),
            "the access logger captures no rule (every rule has capture_body): its filter \
             matches no request, so it never enters the VM",
        ),
        Deployment::HttpFilter => {
            let entry = native::http_filter_entry(&cfg, CONFIG_PLACEHOLDER, wasm);
            let predicate = entry
                .pointer("/typed_config/xds_matcher/matcher_list/matchers/0/predicate")
                .cloned()
                .unwrap_or(Value::Null);
            (
                "http-filter",
                predicate,
                entry,
                "the HTTP filter captures no rule (http_filter_rules is body_only and no rule \
                 has capture_body): its matcher matches no request, so the Wasm filter is never \
                 created",
            )
        }
    };
    NativeFilter {
        ok: true,
        errors: Vec::new(),
        deployment: Some(name),
        warning: rules.is_empty().then_some(warning),
        rules: Some(rules),
        filter: Some(filter),
        entry: Some(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const CONFIG: &str = r#"{"cluster": "kafka_rest",
        "auth": {"bearer": "tok-canary-1"},
        "client_ip": {"mode": "hash", "salt": "salt-canary-2"},
        "rules": [
          {"event_type": "i", "topic": "t", "path": {"prefix": "/imp"}},
          {"event_type": "b", "topic": "t", "method": "POST", "path": {"exact": "/bid"}, "capture_body": true}
        ]}"#;

    #[test]
    fn same_json_as_the_core_and_no_secret() {
        let cfg = Config::parse(CONFIG.as_bytes()).unwrap();
        let log = native_filter(CONFIG.as_bytes(), Deployment::AccessLogger, DEFAULT_WASM);
        assert!(log.ok);
        assert_eq!(log.rules, Some(vec![0]));
        assert_eq!(log.filter, Some(native::access_log_filter(&cfg)));
        assert_eq!(
            log.entry,
            Some(native::access_log_entry(
                &cfg,
                CONFIG_PLACEHOLDER,
                DEFAULT_WASM
            ))
        );
        let http = native_filter(CONFIG.as_bytes(), Deployment::HttpFilter, "/x.wasm");
        assert_eq!(http.rules, Some(vec![0, 1]));
        assert_eq!(
            http.entry,
            Some(native::http_filter_entry(
                &cfg,
                CONFIG_PLACEHOLDER,
                "/x.wasm"
            ))
        );
        assert!(http.filter.as_ref().unwrap().get("or_matcher").is_some());
        let text = serde_json::to_string(&(log, http)).unwrap();
        assert!(!text.contains("canary"), "{text}");
        assert!(text.contains(CONFIG_PLACEHOLDER));
    }

    #[test]
    fn invalid_config_and_empty_deployments() {
        let bad = native_filter(b"{\"rules\": 3}", Deployment::HttpFilter, DEFAULT_WASM);
        assert!(!bad.ok);
        assert!(!bad.errors.is_empty());
        assert_eq!(
            serde_json::to_value(&bad).unwrap().get("entry"),
            None::<&Value>
        );
        let body_only = r#"{"cluster": "c", "rules": [
            {"event_type": "b", "topic": "t", "path": {"exact": "/bid"}, "capture_body": true}]}"#;
        let log = native_filter(body_only.as_bytes(), Deployment::AccessLogger, DEFAULT_WASM);
        assert_eq!(log.rules, Some(vec![]));
        assert!(log.warning.unwrap().contains("captures no rule"));
        assert_eq!(
            parse_deployment("http-filter").unwrap(),
            Deployment::HttpFilter
        );
        assert!(parse_deployment("logger").unwrap_err().contains("`logger`"));
    }
}
