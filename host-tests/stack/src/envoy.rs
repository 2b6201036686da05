//! The stack's Envoy configuration for a [`Deployment`] ([`Render`]), built with the harness's
//! builders like every other configuration the tests and the bench start: adtap in front of the
//! sample ad server, batches to the local REST proxy. Envoy itself runs through the harness's
//! launcher ([`adtap_harness::envoy`], re-exported here): the admin and the ad listener bind
//! port 0 and are learnt from the admin.

pub use adtap_harness::envoy::{
    binary, bootstrap, direct_response_hcm, drain_tool, hcm, static_cluster, try_start, validate,
    wasm_path, DrainedStop, Envoy, Verdict,
};

use crate::traffic::Kind;
use adtap_core::config::Rule;
use adtap_core::native;
use adtap_core::Config;
use anyhow::{anyhow, Result};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The routes of the ad listener, each to the sample ad server: (route name, match kind, value).
/// Route names appear in events as `route`.
pub const ROUTES: [(&str, &str, &str); 5] = [
    ("impression", "prefix", "/imp"),
    ("click", "prefix", "/click"),
    ("bid", "path", "/bid"),
    ("conversion", "path", "/conv"),
    ("other", "prefix", "/"),
];

/// adtap's stats as Prometheus labels (README, "Labels: the `stats_config` snippet"): the drop
/// reason of `adtap_dropped_<reason>`, the VM id of `adtap_vm.<id>.<name>` and the topic of
/// `adtap_topic.<topic>.<name>`. The same regexes as `envoy/adtap-example.yaml` (a test holds
/// them equal).
pub const STATS_TAGS: [(&str, &str); 3] = [
    (
        "reason",
        r"^wasmcustom\.adtap_dropped(_(buffer_full|retry_exhausted|rejected|encode|too_large|shutdown))$",
    ),
    ("vm", r"^wasmcustom\.adtap_vm\.(([0-9a-f]+)\.)"),
    ("topic", r"^wasmcustom\.adtap_topic\.((.+)\.)[a-z_]+$"),
];

/// How adtap is loaded into the harness's Envoy: one of the module's two plugin kinds
/// ([`native::Deployment`]) alone, or both with one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deployment {
    /// The Wasm access logger alone (`access_log`, `envoy.access_loggers.wasm`): the rules
    /// without `capture_body`; a logger never sees a request body, so body rules (the harness's
    /// bids) capture nothing.
    AccessLogger,
    /// The Wasm HTTP filter alone (`http_filters`, with `http_filter_rules: all`): every rule,
    /// bodies included.
    HttpFilter,
    /// Both, with one configuration and `http_filter_rules: body_only`: the logger captures the
    /// rules without `capture_body`, the HTTP filter those with it. They share each worker's VM
    /// and its buffer (one accounting per worker). The recommended deployment.
    #[default]
    Both,
}

impl Deployment {
    /// Every deployment.
    pub const ALL: [Deployment; 3] = [
        Deployment::AccessLogger,
        Deployment::HttpFilter,
        Deployment::Both,
    ];

    /// The plugins it loads.
    pub fn plugins(self) -> &'static [native::Deployment] {
        match self {
            Deployment::AccessLogger => &[native::Deployment::AccessLogger],
            Deployment::HttpFilter => &[native::Deployment::HttpFilter],
            Deployment::Both => &[
                native::Deployment::AccessLogger,
                native::Deployment::HttpFilter,
            ],
        }
    }

    /// The `http_filter_rules` it needs (`None`: no HTTP filter, the option does not matter).
    pub fn http_filter_rules(self) -> Option<&'static str> {
        match self {
            Deployment::AccessLogger => None,
            Deployment::HttpFilter => Some("all"),
            Deployment::Both => Some("body_only"),
        }
    }

    /// Whether one of its plugins captures what `rule` matches (`native::captures`).
    pub fn captures(self, cfg: &Config, rule: &Rule) -> bool {
        self.plugins()
            .iter()
            .any(|p| native::captures(cfg, *p, rule))
    }

    /// Which of its plugins captures a request of `kind` under `cfg` (`None`: no event): the
    /// one that captures the rule for the kind's event type (nothing captures a kind no rule
    /// names). The access logger alone never captures bids: their rule has `capture_body`, and
    /// a logger sees no body.
    pub fn plugin_for(self, cfg: &Config, kind: Kind) -> Option<native::Deployment> {
        let rule = cfg
            .rules
            .iter()
            .find(|r| Some(r.event_type.as_str()) == kind.event_type())?;
        self.plugins()
            .iter()
            .copied()
            .find(|p| native::captures(cfg, *p, rule))
    }

    /// Whether a request of `kind` becomes an event under `cfg` ([`Deployment::plugin_for`]).
    pub fn captures_kind(self, cfg: &Config, kind: Kind) -> bool {
        self.plugin_for(cfg, kind).is_some()
    }

    /// A short name (`access-logger`, `http-filter`, `both`).
    pub fn as_str(self) -> &'static str {
        match self {
            Deployment::AccessLogger => "access-logger",
            Deployment::HttpFilter => "http-filter",
            Deployment::Both => "both",
        }
    }

    /// What it loads, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Deployment::AccessLogger => "the Wasm access logger alone (rules without capture_body)",
            Deployment::HttpFilter => "the Wasm HTTP filter alone (every rule)",
            Deployment::Both => {
                "the Wasm access logger, and the Wasm HTTP filter for capture_body rules, \
                 sharing each worker's VM and buffer"
            }
        }
    }

    /// Parses [`Deployment::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Deployment> {
        Deployment::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// adtap's entries of the HTTP connection manager's `access_log` and `http_filters` lists,
    /// from the core's generators ([`native::access_log_entry`], [`native::http_filter_entry`],
    /// with their native matchers built from `cfg`); [`hcm`] puts the router after them.
    pub fn hcm_lists(
        self,
        cfg: &Config,
        config_json: &str,
        wasm: &str,
    ) -> (Vec<Value>, Vec<Value>) {
        let mut access_log = Vec::new();
        let mut http_filters = Vec::new();
        for plugin in self.plugins() {
            match plugin {
                native::Deployment::AccessLogger => {
                    access_log.push(native::access_log_entry(cfg, config_json, wasm));
                }
                native::Deployment::HttpFilter => {
                    http_filters.push(native::http_filter_entry(cfg, config_json, wasm));
                }
            }
        }
        (access_log, http_filters)
    }
}

impl std::fmt::Display for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the stack's Envoy configuration is built from.
#[derive(Debug, Clone)]
pub struct Render {
    /// The sample ad server's port.
    pub ad_server_port: u16,
    /// The REST proxy's port.
    pub rest_port: u16,
    /// h2c to the REST proxy (one multiplexed connection per worker) instead of HTTP/1.1
    /// keep-alive.
    pub rest_http2: bool,
    /// Path of adtap.wasm.
    pub wasm: PathBuf,
    /// adtap's configuration (JSON text), given to every plugin as is.
    pub adtap_config: String,
    /// Where adtap runs.
    pub deployment: Deployment,
}

/// The configuration whose matchers a configuration adtap refuses is rendered with (see
/// [`Render::render`]): one rule on every path.
const CATCH_ALL: &str = r#"{"cluster": "kafka_rest",
    "rules": [{"event_type": "e", "topic": "t", "path": {"prefix": "/"}}]}"#;

impl Render {
    /// The Envoy bootstrap, ready to write (compact JSON, which Envoy reads as YAML too): the
    /// admin and the listener `ads` on 127.0.0.1 port 0, [`ROUTES`] to the `ad_server` cluster,
    /// adtap's entries for the deployment, the `kafka_rest` cluster adtap dispatches batches to
    /// (a short connect timeout makes an outage show quickly as failed calls, which adtap
    /// retries), and [`STATS_TAGS`]. Run it with two workers so that per-worker buffering is
    /// exercised.
    ///
    /// The native matchers need a valid configuration; one that adtap refuses (the bad-config
    /// tests) is still given to the plugins as is, behind the matchers of a rule on every path,
    /// so that Envoy loads the module and adtap's `on_configure` gives its verdict.
    pub fn render(&self) -> Result<String> {
        let cfg = match Config::parse(self.adtap_config.as_bytes()) {
            Ok(cfg) => cfg,
            Err(_) => Config::parse(CATCH_ALL.as_bytes())
                .map_err(|e| anyhow!("the catch-all configuration is refused: {e:?}"))?,
        };
        let wasm = self.wasm.display().to_string();
        let (access_log, http_filters) = self.deployment.hcm_lists(&cfg, &self.adtap_config, &wasm);
        let routes = ROUTES
            .iter()
            .map(|(name, kind, value)| {
                json!({"name": name, "match": {*kind: value}, "route": {"cluster": "ad_server"}})
            })
            .collect();
        let protocol = if self.rest_http2 {
            "http2_protocol_options"
        } else {
            "http_protocol_options"
        };
        let mut rest = static_cluster("kafka_rest", self.rest_port);
        if let Some(obj) = rest.as_object_mut() {
            obj.insert(
                "typed_extension_protocol_options".into(),
                json!({"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {protocol: {}}
                }}),
            );
        }
        let mut doc = bootstrap(
            hcm(routes, http_filters, access_log),
            vec![static_cluster("ad_server", self.ad_server_port), rest],
        );
        let tags: Vec<Value> = STATS_TAGS
            .iter()
            .map(|(name, regex)| json!({"tag_name": name, "regex": regex}))
            .collect();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("stats_config".into(), json!({"stats_tags": tags}));
        }
        Ok(doc.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels an operator copies from `envoy/adtap-example.yaml` are the ones the stack's
    /// tests see.
    #[test]
    fn the_stats_tags_are_the_examples() {
        let example = include_str!("../../../envoy/adtap-example.yaml");
        for (name, regex) in STATS_TAGS {
            let entry = format!("- tag_name: {name}\n      regex: '{regex}'\n");
            assert!(example.contains(&entry), "{entry} is not in the example");
        }
        let rendered: Value = serde_json::from_str(
            &Render {
                ad_server_port: 1,
                rest_port: 2,
                rest_http2: false,
                wasm: "/x/adtap.wasm".into(),
                adtap_config: CATCH_ALL.into(),
                deployment: Deployment::Both,
            }
            .render()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            rendered["stats_config"]["stats_tags"][1],
            json!({"tag_name": "vm", "regex": STATS_TAGS[1].1})
        );
        let rest = &rendered["static_resources"]["clusters"][1];
        assert_eq!(rest["name"], "kafka_rest");
        assert_eq!(
            rest["typed_extension_protocol_options"]
                ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"],
            json!({"http_protocol_options": {}})
        );
    }
}
