//! The Envoy configurations under test and the Envoy processes that run them.
//!
//! Every variant shares one listener (`127.0.0.1`, port chosen by Envoy) with one
//! `direct_response` ad route, so the only difference between variants is the thing measured:
//! - [`Variant::Bare`]: no HTTP filter but the router;
//! - [`Variant::Noop`]: the no-op Rust proxy-wasm filter on V8 (the floor any Wasm filter pays);
//! - [`Variant::AccessLog`]: Envoy's JSON file access log with the fields adtap captures;
//! - [`Variant::Adtap`]: adtap capturing every request and shipping to the `kafka_rest`
//!   cluster (the bench's sink, or the local REST proxy);
//! - [`Variant::Baseline`]: another adtap module (`--baseline-wasm`, e.g. the last release) with
//!   the same configuration, so that a change is measured before/after in the same rounds.
//!
//! Configurations are JSON (Envoy reads `.json` bootstrap files as such), built with
//! `serde_json`, so no template quoting can go wrong.

use crate::http;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The route every load generator hits: an impression with the query parameters adtap keeps.
pub const AD_PATH: &str = "/imp?campaign_id=c-1234&creative_id=cr-56&cb=8812734";

/// Request headers sent with every benchmark request (same for all variants).
pub const AD_HEADERS: [(&str, &str); 3] = [
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) adtap-bench/1",
    ),
    ("referer", "https://publisher.example/article/42"),
    ("x-country", "FR"),
];

/// What runs in the HTTP filter chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Router only.
    Bare,
    /// The no-op proxy-wasm filter.
    Noop,
    /// The JSON file access log.
    AccessLog,
    /// adtap.
    Adtap,
    /// Another adtap module, for before/after comparisons in one run.
    Baseline,
}

impl Variant {
    /// All variants in the interleaving order.
    pub const ALL: [Variant; 5] = [
        Variant::Bare,
        Variant::Noop,
        Variant::AccessLog,
        Variant::Adtap,
        Variant::Baseline,
    ];

    /// The variants run by default (the baseline only when a module is given for it).
    pub const DEFAULT: [Variant; 4] = [
        Variant::Bare,
        Variant::Noop,
        Variant::AccessLog,
        Variant::Adtap,
    ];

    /// Whether this variant runs adtap (its stats are checked after every run).
    pub fn is_adtap(self) -> bool {
        matches!(self, Variant::Adtap | Variant::Baseline)
    }

    /// Parses a short name: `bare`, `noop`, `accesslog`, `adtap`, `baseline`.
    pub fn parse(s: &str) -> Option<Variant> {
        match s {
            "bare" => Some(Variant::Bare),
            "noop" => Some(Variant::Noop),
            "accesslog" => Some(Variant::AccessLog),
            "adtap" => Some(Variant::Adtap),
            "baseline" => Some(Variant::Baseline),
            _ => None,
        }
    }

    /// Name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Variant::Bare => "bare Envoy",
            Variant::Noop => "no-op Wasm filter (V8)",
            Variant::AccessLog => "JSON file access log",
            Variant::Adtap => "adtap (V8) → sink",
            Variant::Baseline => "baseline adtap module (V8) → sink",
        }
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

/// adtap's configuration for the Envoy runs: one rule matching the bench route, the defaults
/// for batching and buffering (the issue's "default batch settings"), Confluent v2 JSON.
pub fn adtap_config(format: &str) -> String {
    json!({
        "cluster": "kafka_rest",
        "dialect": "confluent_v2",
        "format": format,
        "rules": [
            {"event_type": "impression", "topic": "ad-impressions", "method": "GET",
             "path": {"prefix": "/imp"}}
        ],
        "query_params": ["campaign_id", "creative_id"],
        "headers": ["x-country"],
        "client_ip": {"mode": "truncate"},
        "key": "query.campaign_id"
    })
    .to_string()
}

fn wasm_filter(name: &str, module: &Path, configuration: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": name,
                "failure_policy": "FAIL_OPEN",
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": module.display().to_string()}}
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration
                }
            }
        }
    })
}

/// The access log an operator would configure instead: one JSON line per request with the
/// fields adtap's events carry.
fn access_log(path: &Path) -> Value {
    json!([{
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
    }])
}

/// The bootstrap for `variant`; `access_log_path` is used by [`Variant::AccessLog`] only.
pub fn bootstrap(variant: Variant, inputs: &Inputs, access_log_path: &Path) -> Value {
    let mut filters = Vec::new();
    match variant {
        Variant::Noop => filters.push(wasm_filter("noop", &inputs.noop_wasm, "")),
        Variant::Adtap => filters.push(wasm_filter(
            "adtap",
            &inputs.adtap_wasm,
            &inputs.adtap_config,
        )),
        Variant::Baseline => filters.push(wasm_filter(
            "adtap",
            inputs.baseline_wasm.as_ref().unwrap_or(&inputs.adtap_wasm),
            &inputs.adtap_config,
        )),
        Variant::Bare | Variant::AccessLog => {}
    }
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ads",
        "generate_request_id": true,
        "route_config": {
            "name": "ads",
            "virtual_hosts": [{
                "name": "ads",
                "domains": ["*"],
                "routes": [{
                    "name": "impression",
                    "match": {"prefix": "/"},
                    "direct_response": {"status": 200, "body": {"inline_string": "ok"}}
                }]
            }]
        },
        "http_filters": filters
    });
    if variant == Variant::AccessLog {
        if let Some(obj) = hcm.as_object_mut() {
            obj.insert("access_log".into(), access_log(access_log_path));
        }
    }
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "ads",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm
                }]}]
            }],
            "clusters": [{
                "name": "kafka_rest",
                "type": "STATIC",
                "connect_timeout": "0.25s",
                "load_assignment": {
                    "cluster_name": "kafka_rest",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address":
                        {"address": "127.0.0.1", "port_value": inputs.rest_port}}}}]}]
                }
            }]
        }
    })
}

/// A running Envoy; killed when dropped.
pub struct Envoy {
    child: Child,
    /// Admin endpoint.
    pub admin: SocketAddr,
    /// The ad listener.
    pub listener: SocketAddr,
    /// Where the access log goes (only written by [`Variant::AccessLog`]).
    pub access_log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts Envoy with one worker on `bootstrap` and waits until it serves. `cpu` pins it.
    pub fn start(
        bin: &Path,
        variant: Variant,
        inputs: &Inputs,
        cpu: Option<usize>,
    ) -> Result<Envoy> {
        let dir = tempfile::Builder::new()
            .prefix("adtap-bench-envoy")
            .tempdir()?;
        let access_log = dir.path().join("access.log");
        let cfg_path = dir.path().join("envoy.json");
        std::fs::write(
            &cfg_path,
            bootstrap(variant, inputs, &access_log).to_string(),
        )?;
        let admin_path = dir.path().join("admin.addr");
        let log = std::fs::File::create(dir.path().join("envoy.log"))?;
        let mut cmd = match cpu {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c.to_string()).arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        cmd.arg("-c")
            .arg(&cfg_path)
            .args(["--concurrency", "1", "--disable-hot-restart"])
            .args(["--log-level", "warn"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut envoy = Envoy {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
            access_log,
            _dir: dir,
        };
        envoy.wait_ready(&admin_path).with_context(|| {
            let log =
                std::fs::read_to_string(envoy._dir.path().join("envoy.log")).unwrap_or_default();
            format!("Envoy ({}) did not start; its log:\n{log}", variant.label())
        })?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, admin_path: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("Envoy exited: {status}");
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for Envoy");
            }
            if let Ok(text) = std::fs::read_to_string(admin_path) {
                if let Ok(addr) = text.trim().parse::<SocketAddr>() {
                    self.admin = addr;
                    if let Ok((200, _)) = http::get(addr, "/ready") {
                        let (_, body) = http::get(addr, "/listeners?format=json")?;
                        self.listener = listener_addr(&body)?;
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Counters and gauges whose name matches the regex `filter`.
    pub fn stats(&self, filter: &str) -> Result<BTreeMap<String, u64>> {
        let (status, body) = http::get(self.admin, &format!("/stats?filter={filter}"))?;
        if status != 200 {
            bail!("/stats answered {status}");
        }
        Ok(parse_stats(&body))
    }

    /// CPU time all of Envoy's threads have run so far, ns (the first field of each thread's
    /// `/proc/PID/task/TID/schedstat`). Time the machine gave to other processes, or stole from
    /// this VM, is not in it: per request, it is a steadier measure than throughput on a shared
    /// machine.
    pub fn cpu_ns(&self) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).ok()?;
        let mut total = 0u64;
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(total)
    }

    /// Resident set size and its peak (`VmRSS`, `VmHWM`), KiB.
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `/stats` text (`name: value` lines); histograms and text stats are skipped.
pub fn parse_stats(body: &str) -> BTreeMap<String, u64> {
    body.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.trim().to_string(), v.trim().parse::<u64>().ok()?))
        })
        .collect()
}

/// The `ads` listener's bound address from `/listeners?format=json`.
fn listener_addr(body: &str) -> Result<SocketAddr> {
    let v: Value = serde_json::from_str(body)?;
    let statuses = v
        .get("listener_statuses")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no listener_statuses in /listeners"))?;
    for s in statuses {
        if s.get("name").and_then(Value::as_str) != Some("ads") {
            continue;
        }
        let sa = s
            .get("local_address")
            .and_then(|a| a.get("socket_address"))
            .ok_or_else(|| anyhow!("ads listener has no address"))?;
        let ip = sa.get("address").and_then(Value::as_str).unwrap_or("");
        let port = sa.get("port_value").and_then(Value::as_u64).unwrap_or(0);
        return Ok(format!("{ip}:{port}").parse()?);
    }
    bail!("no `ads` listener in /listeners")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            noop_wasm: "/x/noop.wasm".into(),
            adtap_wasm: "/x/adtap.wasm".into(),
            baseline_wasm: Some("/x/adtap-before.wasm".into()),
            adtap_config: adtap_config("json"),
            rest_port: 4321,
        }
    }

    #[test]
    fn variants_differ_only_in_what_is_measured() {
        let log = Path::new("/tmp/a.log");
        let filters = |v| {
            let b = bootstrap(v, &inputs(), log);
            let hcm = &b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"];
            let names: Vec<String> = hcm["http_filters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_string())
                .collect();
            (names, hcm.get("access_log").is_some())
        };
        assert_eq!(
            filters(Variant::Bare),
            (vec!["envoy.filters.http.router".to_string()], false)
        );
        assert!(filters(Variant::AccessLog).1);
        assert_eq!(filters(Variant::Noop).0.len(), 2);
        // The Wasm filter's `config` in a variant's bootstrap.
        let wasm_config = |v| {
            let b = bootstrap(v, &inputs(), log);
            b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
                ["http_filters"][0]["typed_config"]["config"]
                .clone()
        };
        let b = bootstrap(Variant::Adtap, &inputs(), log);
        let wasm = &wasm_config(Variant::Adtap);
        assert_eq!(
            wasm["vm_config"]["code"]["local"]["filename"],
            "/x/adtap.wasm"
        );
        assert_eq!(wasm["failure_policy"], "FAIL_OPEN");
        // The baseline runs its own module with the very same configuration.
        let base_wasm = wasm_config(Variant::Baseline);
        assert_eq!(
            base_wasm["vm_config"]["code"]["local"]["filename"],
            "/x/adtap-before.wasm"
        );
        assert_eq!(base_wasm["configuration"], wasm["configuration"]);
        // adtap's configuration travels as a string and parses as a valid adtap config.
        let cfg = wasm["configuration"]["value"].as_str().unwrap();
        assert!(adtap_core::Config::parse(cfg.as_bytes()).is_ok());
        assert_eq!(
            b["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"]
                [0]["endpoint"]["address"]["socket_address"]["port_value"],
            4321
        );
    }

    #[test]
    fn the_bench_route_matches_adtaps_rule() {
        let cfg = adtap_core::Config::parse(adtap_config("msgpack").as_bytes()).unwrap();
        let head = adtap_core::capture::RequestHead {
            method: "GET",
            host: "127.0.0.1:1",
            path: AD_PATH,
        };
        assert_eq!(adtap_core::capture::match_rule(&cfg, head), Some(0));
    }

    #[test]
    fn stats_and_listener_parsing() {
        let s =
            parse_stats("wasmcustom.adtap_captured: 12\nhttp.ads.rq: 3\ncluster.x.h: P0(nan,1)\n");
        assert_eq!(s.get("wasmcustom.adtap_captured"), Some(&12));
        assert_eq!(s.len(), 2);
        let body = r#"{"listener_statuses":[{"name":"ads","local_address":{"socket_address":{"address":"127.0.0.1","port_value":40123}}}]}"#;
        assert_eq!(
            listener_addr(body).unwrap(),
            "127.0.0.1:40123".parse().unwrap()
        );
        assert!(listener_addr(r#"{"listener_statuses":[]}"#).is_err());
    }
}
