//! Envoy as a child process: rendering `envoy/harness.yaml.tmpl` for a [`Deployment`],
//! starting, readiness, admin calls, stats, and shutdown (the lossless one through the
//! `adtap-drain` tool, [`Envoy::stop_with_drain_tool`]).
//!
//! Ports: the admin and the ad listener bind port 0 and the harness learns them from
//! `--admin-address-path` and the admin's `/listeners`, so parallel stacks never collide.
//! `--disable-hot-restart` keeps parallel Envoys from fighting over the shared-memory base id.

use crate::http;
use crate::stats::AdtapStats;
use adtap_core::config::Rule;
use adtap_core::native;
use adtap_core::Config;
use adtap_harness::paths;
use adtap_harness::process::{poll, Child};
use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

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

/// The Envoy binary ([`adtap_harness::paths::envoy`]), which must exist.
pub fn binary() -> Result<PathBuf> {
    paths::existing(paths::envoy(), "./build.sh setup or set ADTAP_ENVOY").map_err(|e| anyhow!(e))
}

/// The filter ([`adtap_harness::paths::wasm`]), which must exist.
pub fn wasm_path() -> Result<PathBuf> {
    paths::existing(paths::wasm(), "./build.sh build or set ADTAP_WASM").map_err(|e| anyhow!(e))
}

/// The lossless stop tool ([`adtap_harness::paths::drain_tool`]), which must exist.
pub fn drain_tool() -> Result<PathBuf> {
    paths::existing(paths::drain_tool(), "./build.sh build or set ADTAP_DRAIN")
        .map_err(|e| anyhow!(e))
}

/// What [`Envoy::stop_with_drain_tool`] saw.
#[derive(Debug)]
pub struct DrainedStop {
    /// Envoy's exit status.
    pub status: ExitStatus,
    /// The tool's report (its stdout and stderr).
    pub report: String,
    /// From starting the tool to Envoy's exit.
    pub elapsed: Duration,
}

/// Outcome of running Envoy on a config until it exits or becomes ready.
#[derive(Debug)]
pub struct Verdict {
    /// Exit status if Envoy exited (a refused config), `None` if it started and was stopped.
    pub exit: Option<ExitStatus>,
    /// Envoy's log.
    pub log: String,
}

/// Starts Envoy on `yaml` and reports whether it refused the config (exited) or came up (ready,
/// then killed). A real start instantiates the Wasm VM and runs `on_configure`; `--mode
/// validate` does not, so only a start shows adtap's own verdict.
pub fn try_start(yaml: &str, dir: &Path, timeout: Duration) -> Result<Verdict> {
    let mut envoy = Envoy::start_in(yaml, dir, 1, "info")?;
    let ready = poll(timeout, Duration::from_millis(50), || {
        match envoy.child.try_wait() {
            Ok(Some(status)) => return Some(Err(status)),
            Ok(None) => {}
            Err(_) => return Some(Ok(())),
        }
        envoy.is_ready().then_some(Ok(()))
    });
    let exit = match ready {
        Some(Err(status)) => Some(status),
        Some(Ok(())) => None,
        None => bail!("Envoy neither exited nor became ready within {timeout:?}"),
    };
    envoy.child.kill();
    Ok(Verdict {
        exit,
        log: envoy.child.log(),
    })
}

/// `envoy --mode validate` on `yaml`.
pub fn validate(yaml: &str, dir: &Path) -> Result<Verdict> {
    let cfg = dir.join("validate.yaml");
    std::fs::write(&cfg, yaml)?;
    let out = Command::new(binary()?)
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(&cfg)
        .arg("--log-level")
        .arg("info")
        .output()?;
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Verdict {
        exit: Some(out.status),
        log,
    })
}

/// A running Envoy.
#[derive(Debug)]
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    admin: Option<SocketAddr>,
}

impl Envoy {
    /// Writes `yaml` to `dir/envoy.yaml` and starts Envoy with `concurrency` workers; returns at
    /// once (see [`Envoy::wait_ready`]).
    pub fn start_in(yaml: &str, dir: &Path, concurrency: u32, log_level: &str) -> Result<Envoy> {
        let cfg = dir.join("envoy.yaml");
        std::fs::write(&cfg, yaml)?;
        let admin_file = dir.join("admin.addr");
        let _ = std::fs::remove_file(&admin_file);
        let mut cmd = Command::new(binary()?);
        cmd.arg("-c")
            .arg(&cfg)
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--log-level")
            .arg(log_level)
            // adtap's own logs at info, so failed batches and config errors show up.
            .arg("--component-log-level")
            .arg("wasm:info");
        let child = Child::spawn("envoy", cmd, &dir.join("envoy.log"))?;
        Ok(Envoy {
            child,
            dir: dir.to_path_buf(),
            admin: None,
        })
    }

    fn admin_from_file(&self) -> Option<SocketAddr> {
        let text = std::fs::read_to_string(self.dir.join("admin.addr")).ok()?;
        text.trim().parse().ok()
    }

    fn is_ready(&mut self) -> bool {
        if self.admin.is_none() {
            self.admin = self.admin_from_file();
        }
        self.admin
            .and_then(|a| http::get(a, "/ready").ok())
            .is_some_and(|r| r.status == 200)
    }

    /// Polls `/ready` until Envoy is LIVE (error if it exits or `timeout` passes).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let outcome = poll(timeout, Duration::from_millis(50), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(Err(status));
            }
            self.is_ready().then_some(Ok(()))
        });
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(status)) => Err(anyhow!(
                "Envoy exited ({status}) while starting; log:\n{}",
                self.child.log_tail(30)
            )),
            None => Err(anyhow!(
                "Envoy not ready within {timeout:?}; log:\n{}",
                self.child.log_tail(30)
            )),
        }
    }

    /// The admin address (after [`Envoy::wait_ready`]).
    pub fn admin(&self) -> Result<SocketAddr> {
        self.admin
            .ok_or_else(|| anyhow!("Envoy's admin address is not known yet"))
    }

    /// The address a listener actually bound (from the admin's `/listeners`).
    pub fn listener_addr(&self, name: &str) -> Result<SocketAddr> {
        let r = http::get(self.admin()?, "/listeners?format=json")?;
        let doc: serde_json::Value = serde_json::from_slice(&r.body)?;
        let sa = doc
            .get("listener_statuses")
            .and_then(|l| l.as_array())
            .and_then(|l| {
                l.iter()
                    .find(|s| s.get("name").and_then(|n| n.as_str()) == Some(name))
            })
            .and_then(|s| s.pointer("/local_address/socket_address"))
            .ok_or_else(|| anyhow!("listener {name} not in /listeners: {}", r.text()))?;
        let ip = sa
            .get("address")
            .and_then(|a| a.as_str())
            .unwrap_or("127.0.0.1");
        let port = sa
            .get("port_value")
            .and_then(|p| p.as_u64())
            .ok_or_else(|| anyhow!("listener {name} has no port"))?;
        Ok(format!("{ip}:{port}").parse()?)
    }

    /// A GET on the admin interface.
    pub fn admin_get(&self, path: &str) -> Result<http::Response> {
        http::get(self.admin()?, path)
    }

    /// A POST on the admin interface (e.g. `/drain_listeners?graceful`, `/quitquitquit`).
    pub fn admin_post(&self, path: &str) -> Result<http::Response> {
        http::post(self.admin()?, path)
    }

    /// Envoy's own counters and gauges whose names match `filter` (a regex, as `/stats` takes
    /// it), by full name; e.g. `composite` gives `http.ads.composite.filter_delegation_success`.
    pub fn envoy_stats(&self, filter: &str) -> Result<BTreeMap<String, u64>> {
        let r = self.admin_get(&format!("/stats?format=json&filter={filter}"))?;
        if r.status != 200 {
            bail!("/stats answered {}: {}", r.status, r.text());
        }
        let doc: Value = serde_json::from_slice(&r.body).context("parsing /stats")?;
        Ok(doc
            .get("stats")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| {
                Some((
                    s.get("name")?.as_str()?.to_string(),
                    s.get("value")?.as_u64()?,
                ))
            })
            .collect())
    }

    /// adtap's stats.
    pub fn stats(&self) -> Result<AdtapStats> {
        let r = self.admin_get("/stats?format=json&filter=adtap_")?;
        if r.status != 200 {
            bail!("/stats answered {}: {}", r.status, r.text());
        }
        AdtapStats::parse(&r.body).context("parsing /stats")
    }

    /// Envoy's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// The lossless stop, by the tool shipped with adtap ([`drain_tool`]): `adtap-drain
    /// --admin ADDR --timeout T --then-kill PID` drains the listeners, waits until adtap's
    /// gauges show nothing held (at most `flush_timeout`), then sends SIGTERM; this waits at most
    /// 30 s more for the exit. An error if the tool reports anything held at its timeout (exit
    /// 1) or fails; Envoy is stopped either way.
    pub fn stop_with_drain_tool(&mut self, flush_timeout: Duration) -> Result<DrainedStop> {
        let pid = self.pid().ok_or_else(|| anyhow!("Envoy is not running"))?;
        let started = std::time::Instant::now();
        let out = Command::new(drain_tool()?)
            .arg("--admin")
            .arg(self.admin()?.to_string())
            .arg("--timeout")
            .arg(format!("{:.3}", flush_timeout.as_secs_f64()))
            .arg("--poll-ms")
            .arg("50")
            .arg("--then-kill")
            .arg(pid.to_string())
            .output()
            .context("running adtap-drain")?;
        let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
        report.push_str(&String::from_utf8_lossy(&out.stderr));
        let status = self
            .child
            .wait_timeout(Duration::from_secs(30))?
            .ok_or_else(|| anyhow!("Envoy did not exit within 30 s of adtap-drain's SIGTERM"));
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                self.kill();
                return Err(e.context(report));
            }
        };
        if !out.status.success() {
            bail!("adtap-drain exited with {}: {report}", out.status);
        }
        Ok(DrainedStop {
            status,
            report,
            elapsed: started.elapsed(),
        })
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) and waits at most `timeout` for Envoy to exit.
    pub fn signal_and_wait(&mut self, signal: i32, timeout: Duration) -> Result<ExitStatus> {
        self.child.signal_and_wait(signal, timeout)
    }

    /// Waits at most `timeout` for Envoy to exit on its own (e.g. after `/quitquitquit`).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        self.child.wait_timeout(timeout)
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// Path of Envoy's log file.
    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// Kills Envoy (idempotent).
    pub fn kill(&mut self) {
        self.child.kill();
    }
}
