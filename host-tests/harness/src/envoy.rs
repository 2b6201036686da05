//! Envoy as a child process, the one launcher of the stack, its tests and the bench: starting
//! on a configuration document, readiness, the admin's listeners and stats, process figures
//! (CPU time, memory), and shutdown (signals, or the lossless stop by the `adtap-drain` tool,
//! [`Envoy::stop_with_drain_tool`]).
//!
//! Envoy is a [`Child`]: `PR_SET_PDEATHSIG` kills it with the test process, its output goes to
//! `envoy.log` in the run's directory. Ports: configurations bind port 0; the admin address comes
//! from `--admin-address-path`, listener addresses from the admin's `/listeners`
//! ([`Envoy::listener_addr`]), so parallel Envoys never collide. `--disable-hot-restart` keeps
//! them from fighting over the shared-memory base id.
//!
//! Every configuration is built one way, in code, as a JSON value (the stack's, the bench's
//! variants, the tests' probes): [`bootstrap`] around an HTTP connection manager from [`hcm`]
//! (or [`direct_response_hcm`]) and clusters from [`static_cluster`]; serialized, it is a valid
//! Envoy bootstrap in either file form (JSON is YAML).

use crate::http;
use crate::paths;
use crate::process::{poll, Child};
use crate::stats::AdtapStats;
use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// The Envoy binary ([`paths::envoy`]), which must exist.
pub fn binary() -> Result<PathBuf> {
    paths::existing(paths::envoy(), "./build.sh setup or set ADTAP_ENVOY").map_err(|e| anyhow!(e))
}

/// The filter ([`paths::wasm`]), which must exist.
pub fn wasm_path() -> Result<PathBuf> {
    paths::existing(paths::wasm(), "./build.sh build or set ADTAP_WASM").map_err(|e| anyhow!(e))
}

/// The lossless stop tool ([`paths::drain_tool`]), which must exist.
pub fn drain_tool() -> Result<PathBuf> {
    paths::existing(paths::drain_tool(), "./build.sh build or set ADTAP_DRAIN")
        .map_err(|e| anyhow!(e))
}

/// How to run Envoy.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads (`--concurrency`).
    pub concurrency: u32,
    /// `--log-level`.
    pub log_level: String,
    /// `--component-log-level`, e.g. `wasm:info` so adtap's own logs show at a quieter level.
    pub component_log_level: Option<String>,
    /// Pin Envoy to this CPU (`taskset -c`), for measurements.
    pub cpu: Option<usize>,
    /// The configuration's file name in the run directory: Envoy reads `.json` as JSON and
    /// `.yaml` as YAML.
    pub config_file: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 1,
            log_level: "warn".into(),
            component_log_level: None,
            cpu: None,
            config_file: "envoy.yaml".into(),
        }
    }
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

/// Starts Envoy on `config` and reports whether it refused the config (exited) or came up
/// (ready, then killed). A real start instantiates the Wasm VM and runs `on_configure`; `--mode
/// validate` does not, so only a start shows adtap's own verdict.
pub fn try_start(config: &str, dir: &Path, timeout: Duration) -> Result<Verdict> {
    let mut envoy = Envoy::start_in(config, dir, 1, "info")?;
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

/// `envoy --mode validate` on `config`.
pub fn validate(config: &str, dir: &Path) -> Result<Verdict> {
    let cfg = dir.join("validate.yaml");
    std::fs::write(&cfg, config)?;
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

/// The address listener `name` bound, from the admin's `/listeners?format=json` answer.
pub fn listener_addr_in(listeners: &[u8], name: &str) -> Result<SocketAddr> {
    let doc: Value = serde_json::from_slice(listeners).context("parsing /listeners")?;
    let sa = doc
        .get("listener_statuses")
        .and_then(Value::as_array)
        .and_then(|l| {
            l.iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
        })
        .and_then(|s| s.pointer("/local_address/socket_address"))
        .ok_or_else(|| {
            anyhow!(
                "listener {name} not in /listeners: {}",
                String::from_utf8_lossy(listeners)
            )
        })?;
    let ip = sa
        .get("address")
        .and_then(Value::as_str)
        .unwrap_or("127.0.0.1");
    let port = sa
        .get("port_value")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("listener {name} has no port"))?;
    Ok(format!("{ip}:{port}").parse()?)
}

/// A static bootstrap: the admin and one listener `ads`, both on 127.0.0.1 port 0 (learnt with
/// [`Envoy::admin`] and [`Envoy::listener_addr`]), `hcm` as the listener's HTTP connection
/// manager (its `typed_config`), and `clusters`.
pub fn bootstrap(hcm: Value, clusters: Vec<Value>) -> Value {
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
            "clusters": clusters
        }
    })
}

/// An HTTP connection manager (stat prefix `ads`, its `typed_config`) with `routes` in one
/// virtual host for every domain, `http_filters` then the router, and `access_log` (left out
/// when empty). Envoy generates an `x-request-id` and keeps a client's (adtap records it; the
/// stack sends its own to match events to requests).
pub fn hcm(routes: Vec<Value>, mut http_filters: Vec<Value>, access_log: Vec<Value>) -> Value {
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ads",
        "generate_request_id": true,
        "preserve_external_request_id": true,
        "route_config": {
            "name": "ads",
            "virtual_hosts": [{"name": "ads", "domains": ["*"], "routes": routes}]
        },
        "http_filters": http_filters
    });
    if let (false, Some(obj)) = (access_log.is_empty(), hcm.as_object_mut()) {
        obj.insert("access_log".into(), Value::Array(access_log));
    }
    hcm
}

/// [`hcm`] with one route, `impression`, that answers every request `200 ok` itself
/// (`direct_response`: nothing upstream to measure).
pub fn direct_response_hcm(http_filters: Vec<Value>, access_log: Vec<Value>) -> Value {
    let route = json!({
        "name": "impression",
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "ok"}}
    });
    hcm(vec![route], http_filters, access_log)
}

/// A `STATIC` cluster `name` with one endpoint, 127.0.0.1:`port` (adtap's `kafka_rest`).
pub fn static_cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.25s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address":
                {"address": "127.0.0.1", "port_value": port}}}}]}]
        }
    })
}

/// A running Envoy; killed when dropped.
#[derive(Debug)]
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    admin: Option<SocketAddr>,
}

impl Envoy {
    /// [`Envoy::start_with`] with `concurrency` workers, `log_level`, and adtap's own logs
    /// (`wasm`) at info, so failed batches and config errors show up.
    pub fn start_in(config: &str, dir: &Path, concurrency: u32, log_level: &str) -> Result<Envoy> {
        let opts = Options {
            concurrency,
            log_level: log_level.into(),
            component_log_level: Some("wasm:info".into()),
            ..Options::default()
        };
        Self::start_with(config, dir, &opts)
    }

    /// Writes `config` to `dir/<opts.config_file>` and starts Envoy on it; returns at once
    /// (see [`Envoy::wait_ready`]).
    pub fn start_with(config: &str, dir: &Path, opts: &Options) -> Result<Envoy> {
        let cfg = dir.join(&opts.config_file);
        std::fs::write(&cfg, config)?;
        let admin_file = dir.join("admin.addr");
        let _ = std::fs::remove_file(&admin_file);
        let bin = binary()?;
        let mut cmd = match opts.cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpu.to_string()).arg(&bin);
                cmd
            }
            None => Command::new(&bin),
        };
        cmd.arg("-c")
            .arg(&cfg)
            .arg("--concurrency")
            .arg(opts.concurrency.to_string())
            .arg("--disable-hot-restart")
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--log-level")
            .arg(&opts.log_level);
        if let Some(levels) = &opts.component_log_level {
            cmd.arg("--component-log-level").arg(levels);
        }
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
        let r = self.admin_get("/listeners?format=json")?;
        listener_addr_in(&r.body, name)
    }

    /// A GET on the admin interface.
    pub fn admin_get(&self, path: &str) -> Result<http::Response> {
        http::get(self.admin()?, path)
    }

    /// A POST on the admin interface (e.g. `/drain_listeners?graceful`, `/quitquitquit`).
    pub fn admin_post(&self, path: &str) -> Result<http::Response> {
        http::post(self.admin()?, path)
    }

    fn stats_text(&self, filter: &str) -> Result<String> {
        let r = self.admin_get(&format!("/stats?filter={filter}"))?;
        if r.status != 200 {
            bail!("/stats answered {}: {}", r.status, r.text());
        }
        Ok(r.text())
    }

    /// Envoy's own counters and gauges whose names match `filter` (a regex, as `/stats` takes
    /// it), by full name; e.g. `composite` gives `http.ads.composite.filter_delegation_success`.
    pub fn envoy_stats(&self, filter: &str) -> Result<BTreeMap<String, u64>> {
        Ok(adtap_drain::parse_all_stats(&self.stats_text(filter)?))
    }

    /// adtap's stats.
    pub fn stats(&self) -> Result<AdtapStats> {
        Ok(AdtapStats::parse(&self.stats_text("adtap_")?))
    }

    /// Envoy's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// CPU time all of Envoy's threads have run so far, ns (the first field of each thread's
    /// `/proc/PID/task/TID/schedstat`). Time the machine gave to other processes, or stole from
    /// this VM, is not in it: per request, it is a steadier measure than throughput on a shared
    /// machine.
    pub fn cpu_ns(&self) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid()?)).ok()?;
        let mut total = 0u64;
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(total)
    }

    /// Resident set size and its peak (`VmRSS`, `VmHWM`), KiB.
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
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

    /// The lossless stop, by the tool shipped with adtap ([`drain_tool`]): `adtap-drain
    /// --admin ADDR --timeout T --then-kill PID` drains the listeners, waits until adtap's
    /// gauges show nothing held (at most `flush_timeout`), then sends SIGTERM; this waits at most
    /// 30 s more for the exit. An error if the tool reports anything held at its timeout (exit
    /// 1) or fails; Envoy is stopped either way.
    pub fn stop_with_drain_tool(&mut self, flush_timeout: Duration) -> Result<DrainedStop> {
        let pid = self.pid().ok_or_else(|| anyhow!("Envoy is not running"))?;
        let started = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_bootstrap_has_one_ads_listener_routing_through_the_filters() {
        let wasm = json!({"name": "envoy.filters.http.wasm"});
        let log = json!({"name": "envoy.access_loggers.file"});
        let b = bootstrap(
            direct_response_hcm(vec![wasm.clone()], vec![log.clone()]),
            vec![static_cluster("kafka_rest", 9)],
        );
        let hcm = b
            .pointer("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config")
            .unwrap();
        let filters = hcm["http_filters"].as_array().unwrap();
        assert_eq!(filters[0], wasm);
        assert_eq!(filters[1]["name"], "envoy.filters.http.router");
        assert_eq!(hcm["access_log"], json!([log]));
        assert_eq!(
            b.pointer("/static_resources/clusters/0/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address/port_value"),
            Some(&json!(9))
        );
        assert!(direct_response_hcm(vec![], vec![])
            .get("access_log")
            .is_none());
    }

    #[test]
    fn listener_addresses_come_from_the_admin_answer() {
        let body = br#"{"listener_statuses":[{"name":"admin2"},{"name":"ads","local_address":{"socket_address":{"address":"127.0.0.1","port_value":40123}}}]}"#;
        assert_eq!(
            listener_addr_in(body, "ads").unwrap(),
            "127.0.0.1:40123".parse::<SocketAddr>().unwrap()
        );
        assert!(listener_addr_in(br#"{"listener_statuses":[]}"#, "ads").is_err());
        assert!(listener_addr_in(b"not json", "ads").is_err());
    }
}
