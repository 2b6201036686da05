//! The stack's Envoy configuration: `envoy/harness.yaml.tmpl` rendered for a [`Deployment`].
//! Envoy itself runs through the harness's launcher ([`adtap_harness::envoy`], re-exported
//! here): the admin and the ad listener bind port 0 and are learnt from the admin.

pub use adtap_harness::envoy::{
    binary, bootstrap, direct_response_hcm, drain_tool, static_cluster, try_start, validate,
    wasm_path, DrainedStop, Envoy, Verdict,
};

use adtap_core::config::Rule;
use adtap_core::native;
use adtap_core::Config;
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The harness template, compiled in so the harness works from any working directory.
pub const TEMPLATE: &str = include_str!("../../../envoy/harness.yaml.tmpl");

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

    /// The HTTP connection manager's `access_log` and `http_filters` lists: adtap's entries from
    /// the core's generators ([`native::access_log_entry`], [`native::http_filter_entry`], with
    /// their native matchers built from `cfg`), and the router last.
    pub fn hcm_lists(self, cfg: &Config, config_json: &str, wasm: &str) -> (Value, Value) {
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
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            }
        }));
        (Value::Array(access_log), Value::Array(http_filters))
    }
}

impl std::fmt::Display for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the template needs.
#[derive(Debug, Clone)]
pub struct Render {
    /// Admin port (0: any).
    pub admin_port: u16,
    /// Ad listener port (0: any).
    pub ad_port: u16,
    /// The sample ad server's port.
    pub ad_server_port: u16,
    /// The REST proxy's port.
    pub rest_port: u16,
    /// h2c to the REST proxy instead of HTTP/1.1.
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
    /// The Envoy config, ready to write.
    ///
    /// The native matchers need a valid configuration; one that adtap refuses (the bad-config
    /// tests) is still given to the plugins as is, behind the matchers of a rule on every path,
    /// so that Envoy loads the module and adtap's `on_configure` gives its verdict.
    pub fn render(&self) -> Result<String> {
        let protocol = if self.rest_http2 {
            "http2_protocol_options: {}"
        } else {
            "http_protocol_options: {}"
        };
        let cfg = match Config::parse(self.adtap_config.as_bytes()) {
            Ok(cfg) => cfg,
            Err(_) => Config::parse(CATCH_ALL.as_bytes())
                .map_err(|e| anyhow!("the catch-all configuration is refused: {e:?}"))?,
        };
        let wasm = self.wasm.display().to_string();
        let (access_log, http_filters) = self.deployment.hcm_lists(&cfg, &self.adtap_config, &wasm);
        // JSON is YAML (a flow sequence); one line each keeps the template's indentation intact.
        let out = TEMPLATE
            .replace("@ADMIN_PORT@", &self.admin_port.to_string())
            .replace("@AD_PORT@", &self.ad_port.to_string())
            .replace("@AD_SERVER_PORT@", &self.ad_server_port.to_string())
            .replace("@REST_PORT@", &self.rest_port.to_string())
            .replace("@REST_PROTOCOL@", protocol)
            .replace("@ACCESS_LOG@", &serde_json::to_string(&access_log)?)
            .replace("@HTTP_FILTERS@", &serde_json::to_string(&http_filters)?);
        if let Some(left) = leftover_placeholder(&out) {
            bail!("unrendered placeholder {left} in the Envoy template");
        }
        Ok(out)
    }
}

/// The first `@NAME@` (upper-case) left in `text`; `"@type"` keys are not placeholders.
fn leftover_placeholder(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(i) = rest.find('@') {
        let after = rest.get(i + 1..).unwrap_or_default();
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        if !name.is_empty() && after.get(name.len()..).is_some_and(|s| s.starts_with('@')) {
            return Some(format!("@{name}@"));
        }
        rest = after;
    }
    None
}
