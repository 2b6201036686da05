//! The Envoy configurations under test and the Envoy processes that run them.
//!
//! Every variant shares one listener (`127.0.0.1`, port chosen by Envoy) with one
//! `direct_response` route, so the only difference between variants is the thing measured
//! (and, for the `*-unmatched` variants, the path the load generator asks for):
//! - [`Variant::Bare`]: no HTTP filter but the router;
//! - [`Variant::Noop`]: the no-op Rust proxy-wasm filter on V8 as an HTTP filter (the floor any
//!   Wasm HTTP filter pays);
//! - [`Variant::NoopLog`]: the same no-op module as Envoy's Wasm access logger (its root
//!   context's `on_log` does nothing: the floor of the logger deployment);
//! - [`Variant::AccessLog`]: Envoy's JSON file access log with the fields adtap captures;
//! - [`Variant::Adtap`] / [`Variant::AdtapAll`]: adtap as the Wasm HTTP filter, default
//!   response fields / all of them, capturing every request and shipping to the `kafka_rest`
//!   cluster (the bench's sink, or the local REST proxy);
//! - [`Variant::AdtapLog`] / [`Variant::AdtapLogAll`]: adtap as the Wasm access logger
//!   (`envoy.access_loggers.wasm`), same module, same configuration;
//! - [`Variant::BareUnmatched`], [`Variant::AdtapUnmatched`], [`Variant::AdtapLogUnmatched`]:
//!   traffic on [`UNMATCHED_PATH`], which no rule matches, with the native skip: the HTTP filter
//!   wrapped in `ExtensionWithMatcher` (a `SkipFilter` action), the logger behind an access-log
//!   `filter`, both generated from adtap's configuration by `adtap_core::native`;
//! - [`Variant::AdtapComposite`], [`Variant::AdtapCompositeUnmatched`]: the HTTP filter as
//!   `native::http_filter_entry` deploys it, inside Envoy's composite filter, created only for
//!   requests a rule may match (an `ExecuteFilterAction`), on the ad path and on the unmatched
//!   path;
//! - [`Variant::Baseline`] / [`Variant::BaselineLog`]: another adtap module (`--baseline-wasm`,
//!   e.g. `main`'s before a change) with the same configuration, as HTTP filter / logger, so
//!   that a change is measured before/after in the same rounds.
//!
//! Configurations are JSON (Envoy reads `.json` bootstrap files as such), built with
//! `serde_json`, so no template quoting can go wrong.

use adtap_harness::envoy as launcher;
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

// The native skip (access-log filter, HTTP filter matcher), generated from adtap's
// configuration by the core, as an operator's configuration generator would.
use adtap_core::native;

/// The route every load generator hits: an impression with the query parameters adtap keeps.
pub const AD_PATH: &str = "/imp?campaign_id=c-1234&creative_id=cr-56&cb=8812734";

/// The path of the `*-unmatched` variants: a page request no rule of the bench configuration
/// matches (the rule is `GET` prefix `/imp`).
pub const UNMATCHED_PATH: &str = "/article/42?utm_source=feed&cb=8812734";

/// Request headers sent with every benchmark request (same for all variants).
pub const AD_HEADERS: [(&str, &str); 3] = [
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) adtap-bench/1",
    ),
    ("referer", "https://publisher.example/article/42"),
    ("x-country", "FR"),
];

/// The response fields of the `*-all` variants: every one adtap can read.
pub const ALL_FIELDS: [&str; 5] = ["status", "duration", "sizes", "route", "upstream"];

/// What runs in the HTTP connection manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Router only.
    Bare,
    /// The no-op proxy-wasm module as an HTTP filter.
    Noop,
    /// The no-op proxy-wasm module as a Wasm access logger.
    NoopLog,
    /// The JSON file access log.
    AccessLog,
    /// adtap as the HTTP filter, default response fields.
    Adtap,
    /// adtap as the HTTP filter, all response fields.
    AdtapAll,
    /// adtap as the access logger, default response fields.
    AdtapLog,
    /// adtap as the access logger, all response fields.
    AdtapLogAll,
    /// Bare Envoy on the unmatched path.
    BareUnmatched,
    /// adtap as the HTTP filter behind its skip matcher, on the unmatched path.
    AdtapUnmatched,
    /// adtap as the access logger behind its access-log filter, on the unmatched path.
    AdtapLogUnmatched,
    /// adtap as the HTTP filter inside the composite filter (created only on a match).
    AdtapComposite,
    /// [`Variant::AdtapComposite`] on the unmatched path.
    AdtapCompositeUnmatched,
    /// Another adtap module as the HTTP filter, for before/after comparisons in one run.
    Baseline,
    /// Another adtap module as the access logger.
    BaselineLog,
}

/// Which module a variant loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// `noop-filter/`.
    Noop,
    /// adtap's release module.
    Adtap,
    /// `--baseline-wasm`.
    Baseline,
}

/// How a variant's module (or log) is deployed in the HTTP connection manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// Nothing but the router.
    None,
    /// Envoy's file access log.
    FileLog,
    /// `envoy.filters.http.wasm` ahead of the router.
    HttpFilter,
    /// `envoy.access_loggers.wasm` on the connection manager.
    Logger,
}

impl Variant {
    /// Every variant, in the default interleaving order.
    pub const ALL: [Variant; 15] = [
        Variant::Bare,
        Variant::Noop,
        Variant::NoopLog,
        Variant::AccessLog,
        Variant::Adtap,
        Variant::Baseline,
        Variant::AdtapAll,
        Variant::AdtapComposite,
        Variant::AdtapLog,
        Variant::BaselineLog,
        Variant::AdtapLogAll,
        Variant::BareUnmatched,
        Variant::AdtapUnmatched,
        Variant::AdtapCompositeUnmatched,
        Variant::AdtapLogUnmatched,
    ];

    /// The variants run by default (the baselines only when a module is given for them).
    pub const DEFAULT: [Variant; 13] = [
        Variant::Bare,
        Variant::Noop,
        Variant::NoopLog,
        Variant::AccessLog,
        Variant::Adtap,
        Variant::AdtapAll,
        Variant::AdtapComposite,
        Variant::AdtapLog,
        Variant::AdtapLogAll,
        Variant::BareUnmatched,
        Variant::AdtapUnmatched,
        Variant::AdtapCompositeUnmatched,
        Variant::AdtapLogUnmatched,
    ];

    /// The variants of `--short` (the CI smoke): every bootstrap shape once (the `-all`
    /// variants differ from theirs only in adtap's configuration string, `adtap-composite` from
    /// `adtap-composite-unmatched` only in its traffic).
    pub const SHORT: [Variant; 10] = [
        Variant::Bare,
        Variant::Noop,
        Variant::NoopLog,
        Variant::AccessLog,
        Variant::Adtap,
        Variant::AdtapLog,
        Variant::BareUnmatched,
        Variant::AdtapUnmatched,
        Variant::AdtapCompositeUnmatched,
        Variant::AdtapLogUnmatched,
    ];

    /// The short name of `--variants`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::Noop => "noop",
            Variant::NoopLog => "noop-log",
            Variant::AccessLog => "accesslog",
            Variant::Adtap => "adtap",
            Variant::AdtapAll => "adtap-all",
            Variant::AdtapLog => "adtap-log",
            Variant::AdtapLogAll => "adtap-log-all",
            Variant::BareUnmatched => "bare-unmatched",
            Variant::AdtapUnmatched => "adtap-unmatched",
            Variant::AdtapLogUnmatched => "adtap-log-unmatched",
            Variant::AdtapComposite => "adtap-composite",
            Variant::AdtapCompositeUnmatched => "adtap-composite-unmatched",
            Variant::Baseline => "baseline",
            Variant::BaselineLog => "baseline-log",
        }
    }

    /// Parses a short name ([`Variant::name`]).
    pub fn parse(s: &str) -> Option<Variant> {
        Variant::ALL.iter().copied().find(|v| v.name() == s)
    }

    /// Name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Bare => "bare Envoy",
            Variant::Noop => "no-op Wasm HTTP filter (V8)",
            Variant::NoopLog => "no-op Wasm access logger (V8)",
            Variant::AccessLog => "JSON file access log",
            Variant::Adtap => "adtap HTTP filter → sink",
            Variant::AdtapAll => "adtap HTTP filter, all fields → sink",
            Variant::AdtapLog => "adtap access logger → sink",
            Variant::AdtapLogAll => "adtap access logger, all fields → sink",
            Variant::BareUnmatched => "bare Envoy, unmatched path",
            Variant::AdtapUnmatched => "adtap HTTP filter + skip matcher, unmatched path",
            Variant::AdtapLogUnmatched => "adtap access logger + log filter, unmatched path",
            Variant::AdtapComposite => "adtap HTTP filter in the composite filter → sink",
            Variant::AdtapCompositeUnmatched => {
                "adtap HTTP filter in the composite filter, unmatched path"
            }
            Variant::Baseline => "baseline module, HTTP filter → sink",
            Variant::BaselineLog => "baseline module, access logger → sink",
        }
    }

    /// What the variant's bootstrap holds, for the report.
    pub fn shape(self) -> &'static str {
        match self {
            Variant::Bare => "the router only",
            Variant::BareUnmatched => "the router only; traffic on the unmatched path",
            Variant::AccessLog => {
                "`envoy.access_loggers.file` on the connection manager, one JSON line of the \
                 fields adtap captures per request"
            }
            Variant::Noop => "`envoy.filters.http.wasm` (V8) with the SDK's no-op module",
            Variant::NoopLog => {
                "`envoy.access_loggers.wasm` (`WasmAccessLog`, V8) with the SDK's no-op module \
                 (its root context's `on_log` does nothing)"
            }
            Variant::Adtap => "`envoy.filters.http.wasm` with adtap, default response fields",
            Variant::AdtapAll => "`envoy.filters.http.wasm` with adtap, `response_fields` all five",
            Variant::AdtapLog => {
                "`envoy.access_loggers.wasm` with adtap (the same `PluginConfig`), default \
                 response fields"
            }
            Variant::AdtapLogAll => {
                "`envoy.access_loggers.wasm` with adtap, `response_fields` all five"
            }
            Variant::AdtapUnmatched => {
                "`envoy.filters.http.wasm` with adtap wrapped in `ExtensionWithMatcher` \
                 (`native::skip_filter_entry`: `SkipFilter` when no rule matches); traffic on the unmatched path"
            }
            Variant::AdtapLogUnmatched => {
                "`envoy.access_loggers.wasm` with adtap and the access-log `filter` \
                 (`access_log_filter`); traffic on the unmatched path"
            }
            Variant::AdtapComposite => {
                "`envoy.filters.http.composite` in `ExtensionWithMatcher` \
                 (`native::composite_filter_entry`): an `ExecuteFilterAction` creates \
                 `envoy.filters.http.wasm` with adtap when a rule may match"
            }
            Variant::AdtapCompositeUnmatched => {
                "the same composite entry as `adtap-composite`; traffic on the unmatched path \
                 (no Wasm filter is created)"
            }
            Variant::Baseline => "`envoy.filters.http.wasm` with the `--baseline-wasm` module",
            Variant::BaselineLog => "`envoy.access_loggers.wasm` with the `--baseline-wasm` module",
        }
    }

    /// The module loaded, if any.
    pub fn module(self) -> Option<Module> {
        match self {
            Variant::Bare | Variant::BareUnmatched | Variant::AccessLog => None,
            Variant::Noop | Variant::NoopLog => Some(Module::Noop),
            Variant::Baseline | Variant::BaselineLog => Some(Module::Baseline),
            Variant::Adtap
            | Variant::AdtapAll
            | Variant::AdtapLog
            | Variant::AdtapLogAll
            | Variant::AdtapUnmatched
            | Variant::AdtapLogUnmatched
            | Variant::AdtapComposite
            | Variant::AdtapCompositeUnmatched => Some(Module::Adtap),
        }
    }

    /// Where it sits in the connection manager.
    pub fn deployment(self) -> Deployment {
        match self {
            Variant::Bare | Variant::BareUnmatched => Deployment::None,
            Variant::AccessLog => Deployment::FileLog,
            Variant::Noop
            | Variant::Adtap
            | Variant::AdtapAll
            | Variant::AdtapUnmatched
            | Variant::AdtapComposite
            | Variant::AdtapCompositeUnmatched
            | Variant::Baseline => Deployment::HttpFilter,
            Variant::NoopLog
            | Variant::AdtapLog
            | Variant::AdtapLogAll
            | Variant::AdtapLogUnmatched
            | Variant::BaselineLog => Deployment::Logger,
        }
    }

    /// adtap reads every response field (`response_fields` [`ALL_FIELDS`]).
    pub fn all_fields(self) -> bool {
        matches!(self, Variant::AdtapAll | Variant::AdtapLogAll)
    }

    /// Traffic on [`UNMATCHED_PATH`]; adtap's variants add the native skip.
    pub fn unmatched(self) -> bool {
        matches!(
            self,
            Variant::BareUnmatched
                | Variant::AdtapUnmatched
                | Variant::AdtapLogUnmatched
                | Variant::AdtapCompositeUnmatched
        )
    }

    /// The HTTP filter inside the composite filter (`native::composite_filter_entry`).
    pub fn composite(self) -> bool {
        matches!(
            self,
            Variant::AdtapComposite | Variant::AdtapCompositeUnmatched
        )
    }

    /// The path (and query) the load generators ask this variant's Envoy for.
    pub fn path(self) -> &'static str {
        if self.unmatched() {
            UNMATCHED_PATH
        } else {
            AD_PATH
        }
    }

    /// Bare Envoy on the same traffic.
    pub fn bare(self) -> Variant {
        if self.unmatched() {
            Variant::BareUnmatched
        } else {
            Variant::Bare
        }
    }

    /// Whether this variant runs adtap (its stats are checked after every run).
    pub fn is_adtap(self) -> bool {
        matches!(self.module(), Some(Module::Adtap | Module::Baseline))
    }
}

/// Everything a variant's configuration needs.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The no-op filter module.
    pub noop_wasm: PathBuf,
    /// adtap's release module.
    pub adtap_wasm: PathBuf,
    /// The module of [`Variant::Baseline`], if one is compared.
    pub baseline_wasm: Option<PathBuf>,
    /// adtap's JSON configuration.
    pub adtap_config: String,
    /// Port of the REST endpoint adtap ships to (`kafka_rest` cluster).
    pub rest_port: u16,
}

/// adtap's configuration string for `variant`: `inputs.adtap_config`, with every response
/// field for the `*-all` variants.
pub fn variant_config(variant: Variant, inputs: &Inputs) -> Result<String> {
    if !variant.all_fields() {
        return Ok(inputs.adtap_config.clone());
    }
    let mut v: Value =
        serde_json::from_str(&inputs.adtap_config).context("adtap's configuration")?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| anyhow!("adtap's configuration is not a JSON object"))?;
    obj.insert("response_fields".into(), json!(ALL_FIELDS));
    Ok(v.to_string())
}

/// The access log an operator would configure instead: one JSON line per request with the
/// fields adtap's events carry.
fn file_access_log(path: &Path) -> Value {
    json!({
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path.display().to_string(),
            "log_format": {"json_format": {
                "ts": "%START_TIME%",
                "request_id": "%REQ(X-REQUEST-ID)%",
                "method": "%REQ(:METHOD)%",
                "host": "%REQ(:AUTHORITY)%",
                "path": "%REQ(:PATH)%",
                "user_agent": "%REQ(USER-AGENT)%",
                "referer": "%REQ(REFERER)%",
                "country": "%REQ(X-COUNTRY)%",
                "client_ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                "status": "%RESPONSE_CODE%",
                "duration_ms": "%DURATION%",
                "bytes_received": "%BYTES_RECEIVED%",
                "bytes_sent": "%BYTES_SENT%",
                "route": "%ROUTE_NAME%"
            }}
        }
    })
}

/// The bootstrap for `variant`; `access_log_path` is used by [`Variant::AccessLog`] only.
pub fn bootstrap(variant: Variant, inputs: &Inputs, access_log_path: &Path) -> Result<Value> {
    let mut filters = Vec::new();
    let mut access_logs = Vec::new();
    if let Some(module) = variant.module() {
        let (wasm, configuration) = match module {
            Module::Noop => (&inputs.noop_wasm, String::new()),
            Module::Adtap => (&inputs.adtap_wasm, variant_config(variant, inputs)?),
            Module::Baseline => (
                inputs
                    .baseline_wasm
                    .as_ref()
                    .ok_or_else(|| anyhow!("{} needs --baseline-wasm", variant.name()))?,
                variant_config(variant, inputs)?,
            ),
        };
        let wasm = wasm.display().to_string();
        // The native skip is generated from the configuration adtap itself runs.
        let skip = (variant.unmatched() || variant.composite())
            .then(|| {
                adtap_core::Config::parse(configuration.as_bytes()).map_err(|e| {
                    let errors: Vec<String> = e.iter().map(ToString::to_string).collect();
                    anyhow!(
                        "adtap's configuration does not parse: {}",
                        errors.join("; ")
                    )
                })
            })
            .transpose()?;
        // Every module runs under the same `PluginConfig` (named `adtap`) as adtap's own
        // deployments, from the core's builders.
        match variant.deployment() {
            Deployment::HttpFilter => {
                let filter = native::wasm_http_filter(&configuration, &wasm);
                filters.push(match &skip {
                    Some(cfg) if variant.composite() => native::composite_filter_entry(cfg, filter),
                    Some(cfg) => native::skip_filter_entry(cfg, filter),
                    None => filter,
                });
            }
            Deployment::Logger => access_logs.push(match &skip {
                Some(cfg) => native::access_log_entry(cfg, &configuration, &wasm),
                None => native::wasm_access_log(&configuration, &wasm),
            }),
            Deployment::None | Deployment::FileLog => {}
        }
    }
    if variant.deployment() == Deployment::FileLog {
        access_logs.push(file_access_log(access_log_path));
    }
    Ok(launcher::bootstrap(
        launcher::direct_response_hcm(filters, access_logs),
        vec![launcher::static_cluster(
            adtap_harness::config::CLUSTER,
            inputs.rest_port,
        )],
    ))
}

/// A bench variant's Envoy (one worker, the harness's launcher); killed when dropped.
pub struct Envoy {
    /// The harness's Envoy: its stats, CPU time and memory are read through it.
    pub harness: launcher::Envoy,
    /// The ad listener.
    pub listener: SocketAddr,
    /// Where the access log goes (only written by [`Variant::AccessLog`]).
    pub access_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy with one worker on the variant's bootstrap and waits until it serves. `cpu`
    /// pins it.
    pub fn start(variant: Variant, inputs: &Inputs, cpu: Option<usize>) -> Result<Envoy> {
        let dir = tempfile::Builder::new()
            .prefix("adtap-bench-envoy")
            .tempdir()?;
        let access_log = dir.path().join("access.log");
        let config = bootstrap(variant, inputs, &access_log)?.to_string();
        let opts = launcher::Options {
            cpu,
            config_file: "envoy.json".into(),
            ..launcher::Options::default()
        };
        let mut harness = launcher::Envoy::start_with(&config, dir.path(), &opts)?;
        harness
            .wait_ready(Duration::from_secs(60))
            .with_context(|| format!("Envoy ({}) did not start", variant.label()))?;
        Ok(Envoy {
            listener: harness.listener_addr("ads")?,
            harness,
            access_log,
            _dir: dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adtap_core::config::{Dialect, ValueFormat};

    fn bench_config(format: ValueFormat) -> String {
        crate::config::adtap_config(Dialect::ConfluentV2, format).to_string()
    }

    fn inputs() -> Inputs {
        Inputs {
            noop_wasm: "/x/noop.wasm".into(),
            adtap_wasm: "/x/adtap.wasm".into(),
            baseline_wasm: Some("/x/adtap-before.wasm".into()),
            adtap_config: bench_config(ValueFormat::Json),
            rest_port: 4321,
        }
    }

    fn hcm(v: Variant) -> Value {
        let b = bootstrap(v, &inputs(), Path::new("/tmp/a.log")).unwrap();
        b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            .clone()
    }

    fn filter_names(v: Variant) -> Vec<String> {
        hcm(v)["http_filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn log_names(v: Variant) -> Vec<String> {
        hcm(v)
            .get("access_log")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|l| l["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn variants_differ_only_in_what_is_measured() {
        let router = "envoy.filters.http.router".to_string();
        let wasm = "envoy.filters.http.wasm".to_string();
        let wasm_log = "envoy.access_loggers.wasm".to_string();
        for v in [Variant::Bare, Variant::BareUnmatched] {
            assert_eq!(filter_names(v), vec![router.clone()]);
            assert!(log_names(v).is_empty());
        }
        assert_eq!(
            log_names(Variant::AccessLog),
            vec!["envoy.access_loggers.file"]
        );
        for v in [
            Variant::Noop,
            Variant::Adtap,
            Variant::AdtapAll,
            Variant::Baseline,
        ] {
            assert_eq!(filter_names(v), vec![wasm.clone(), router.clone()], "{v:?}");
            assert!(log_names(v).is_empty());
        }
        for v in [
            Variant::NoopLog,
            Variant::AdtapLog,
            Variant::AdtapLogAll,
            Variant::AdtapLogUnmatched,
            Variant::BaselineLog,
        ] {
            assert_eq!(filter_names(v), vec![router.clone()], "{v:?}");
            assert_eq!(log_names(v), vec![wasm_log.clone()], "{v:?}");
        }
        // Every name parses back, and the default and short sets are made of known variants.
        for v in Variant::ALL {
            assert_eq!(Variant::parse(v.name()), Some(v));
        }
        assert!(Variant::SHORT.iter().all(|v| Variant::DEFAULT.contains(v)));
        // Both deployments load the same PluginConfig from the same module and configuration.
        let filter_plugin =
            hcm(Variant::Adtap)["http_filters"][0]["typed_config"]["config"].clone();
        let log = &hcm(Variant::AdtapLog)["access_log"][0];
        assert_eq!(
            log["typed_config"]["@type"],
            "type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog"
        );
        assert_eq!(log["typed_config"]["config"], filter_plugin);
        assert!(log.get("filter").is_none());
        assert_eq!(filter_plugin["root_id"], "adtap");
        assert_eq!(filter_plugin["failure_policy"], "FAIL_OPEN");
        assert_eq!(
            filter_plugin["vm_config"]["runtime"],
            "envoy.wasm.runtime.v8"
        );
        assert_eq!(
            filter_plugin["vm_config"]["code"]["local"]["filename"],
            "/x/adtap.wasm"
        );
        // The baseline runs its own module with the very same configuration.
        let base = hcm(Variant::Baseline)["http_filters"][0]["typed_config"]["config"].clone();
        assert_eq!(
            base["vm_config"]["code"]["local"]["filename"],
            "/x/adtap-before.wasm"
        );
        assert_eq!(base["configuration"], filter_plugin["configuration"]);
        let base_log = hcm(Variant::BaselineLog)["access_log"][0]["typed_config"]["config"].clone();
        assert_eq!(base_log, base);
        // adtap's configuration travels as a string and parses as a valid adtap config.
        let cfg = filter_plugin["configuration"]["value"].as_str().unwrap();
        assert!(adtap_core::Config::parse(cfg.as_bytes()).is_ok());
        let b = bootstrap(Variant::Adtap, &inputs(), Path::new("/tmp/a.log")).unwrap();
        assert_eq!(
            b["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"]
                [0]["endpoint"]["address"]["socket_address"]["port_value"],
            4321
        );
        // Without a baseline module, its variants cannot be built.
        let mut no_base = inputs();
        no_base.baseline_wasm = None;
        assert!(bootstrap(Variant::BaselineLog, &no_base, Path::new("/tmp/a.log")).is_err());
    }

    #[test]
    fn all_fields_variants_read_every_response_field() {
        let value = |typed_config: &Value| {
            typed_config["config"]["configuration"]["value"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let all = value(&hcm(Variant::AdtapAll)["http_filters"][0]["typed_config"]);
        let log_all = value(&hcm(Variant::AdtapLogAll)["access_log"][0]["typed_config"]);
        assert_eq!(all, log_all);
        let cfg = adtap_core::Config::parse(all.as_bytes()).unwrap();
        assert_eq!(
            cfg.response_fields,
            adtap_core::config::ResponseFields::all()
        );
        let default = value(&hcm(Variant::Adtap)["http_filters"][0]["typed_config"]);
        let cfg = adtap_core::Config::parse(default.as_bytes()).unwrap();
        assert_eq!(
            cfg.response_fields,
            adtap_core::config::ResponseFields::default()
        );
    }

    #[test]
    fn unmatched_variants_skip_natively() {
        // The HTTP filter is wrapped in ExtensionWithMatcher whose action is SkipFilter.
        let f = hcm(Variant::AdtapUnmatched)["http_filters"][0].clone();
        assert_eq!(
            f["typed_config"]["@type"],
            "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher"
        );
        assert_eq!(
            f["typed_config"]["extension_config"]["typed_config"]["config"]["root_id"],
            "adtap"
        );
        let m = &f["typed_config"]["xds_matcher"];
        assert!(m.to_string().contains("SkipFilter"), "{m}");
        // The composite variants: the composite filter, the Wasm filter inside its action.
        for v in [Variant::AdtapComposite, Variant::AdtapCompositeUnmatched] {
            let f = hcm(v)["http_filters"][0].clone();
            assert_eq!(
                f["typed_config"]["extension_config"]["name"],
                "envoy.filters.http.composite"
            );
            let action = f["typed_config"]["xds_matcher"].to_string();
            assert!(action.contains("ExecuteFilterAction"), "{action}");
            assert!(action.contains("/x/adtap.wasm"), "{action}");
        }
        assert!(!Variant::AdtapComposite.unmatched());
        // The logger carries an access-log filter.
        let log = hcm(Variant::AdtapLogUnmatched)["access_log"][0].clone();
        assert!(log.get("filter").is_some(), "{log}");
        // The load generator's path for them matches no rule; the ad path matches one.
        let cfg = adtap_core::Config::parse(bench_config(ValueFormat::Json).as_bytes()).unwrap();
        let head = |path| adtap_core::capture::RequestHead {
            method: "GET",
            host: "127.0.0.1:1",
            path,
        };
        assert_eq!(
            adtap_core::capture::match_rule(&cfg, head(Variant::AdtapUnmatched.path())),
            None
        );
        assert_eq!(Variant::AdtapLogUnmatched.path(), UNMATCHED_PATH);
        assert_eq!(Variant::AdtapUnmatched.bare(), Variant::BareUnmatched);
        assert_eq!(
            adtap_core::capture::match_rule(&cfg, head(Variant::AdtapLog.path())),
            Some(0)
        );
    }

    #[test]
    fn the_bench_route_matches_adtaps_rule() {
        let cfg = adtap_core::Config::parse(bench_config(ValueFormat::Msgpack).as_bytes()).unwrap();
        let head = adtap_core::capture::RequestHead {
            method: "GET",
            host: "127.0.0.1:1",
            path: AD_PATH,
        };
        assert_eq!(adtap_core::capture::match_rule(&cfg, head), Some(0));
    }
}
