//! `adtap-stack`: the whole adtap pipeline on one machine, as a library for the end-to-end tests
//! and the demo.
//!
//! ```text
//!  traffic ──► Envoy :ad (adtap.wasm, 2 workers) ──► sample ad server (in-process)
//!                 │ access logger and/or HTTP filter ([`Deployment`])
//!                 │ dispatch_http_call, cluster kafka_rest
//!                 ▼
//!            adtap-rest-proxy (child) ──rdkafka──► tansu broker (child, memory storage)
//! ```
//!
//! [`Stack::start`] brings everything up on free 127.0.0.1 ports, in dependency order: the
//! [`Backends`] (a temporary directory, broker and topics, REST proxy, ad server), then Envoy on
//! the configuration [`envoy::Render`] builds, in that directory, for the chosen [`Deployment`]
//! (adtap as the Wasm access logger, the Wasm HTTP filter, or both sharing each worker's VM:
//! [`StackOptions::deployment`]); it returns once Envoy's admin says LIVE. [`Stack::captures`]
//! says which requests become events there. Dropping the [`Stack`] stops everything (Envoy
//! first, so nothing is left sending, then the backends in reverse order) and reaps every
//! child; children also die with the harness process (`PR_SET_PDEATHSIG`). When the drop
//! happens during a panic (a failing test), the temporary directory with every log is kept and
//! its path printed. A test that runs an Envoy configuration of its own starts the
//! [`Backends`] alone.
//!
//! Modules:
//! - [`backends`]: everything but Envoy (broker, REST proxy, ad server), started and stopped
//!   in order, and reading the records back.
//! - [`adtap_config`]: the harness's base adtap configuration set up for a deployment.
//! - [`adserver`]: the sample ad server.
//! - [`envoy`]: rendering, starting, admin, stats and shutdown of Envoy; bad-config verdicts.
//! - [`rest_proxy`]: the REST proxy child (stop / restart on the same port).
//! - [`traffic`]: realistic requests and sending them over many connections.
//! - [`kafka`]: reading topics back and decoding events.
//! - [`verify`]: matching records to requests (loss, duplicates, field by field).
//! - re-exported from [`adtap_harness`]: [`http`] (the blocking HTTP client), [`stats`] (adtap's
//!   Envoy stats and the accounting invariant); child processes, the broker and the Envoy
//!   launcher come from there too.

pub mod adserver;
pub mod adtap_config;
pub mod backends;
pub mod envoy;
pub mod kafka;
use adtap_harness::process;
pub mod rest_proxy;
pub mod traffic;
pub mod verify;

pub use adtap_harness::stats::AdtapStats;
pub use adtap_harness::{http, stats};
pub use backends::{BackendOptions, Backends, LogsDir};
pub use envoy::Deployment;

use adtap_core::config::{Dialect, ValueFormat};
use adtap_harness::config as harness_config;
use anyhow::{anyhow, Context as _, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use adtap_harness::paths::{cache_dir, repo_root};

/// Unix time in ms.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// REST dialect adtap speaks.
    pub dialect: Dialect,
    /// Record value format.
    pub format: ValueFormat,
    /// Where adtap runs in Envoy (sets `http_filter_rules`, before the overrides).
    pub deployment: Deployment,
    /// An RFC 7396 merge patch over the harness's adtap config ([`adtap_harness::config::merge`]:
    /// `null` removes a key).
    pub overrides: serde_json::Value,
    /// Partitions per topic.
    pub partitions: u32,
    /// h2c from Envoy to the REST proxy (else HTTP/1.1 keep-alive).
    pub rest_http2: bool,
    /// Envoy worker threads.
    pub concurrency: u32,
    /// Envoy's log level.
    pub envoy_log_level: String,
    /// Print a line per step on stdout (the demo).
    pub progress: bool,
    /// The module to load instead of [`envoy::wasm_path`] (a test-only build).
    pub wasm: Option<PathBuf>,
    /// adtap's `failure_policy` instead of `FAIL_OPEN` (e.g. `FAIL_RELOAD`).
    pub failure_policy: Option<String>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            dialect: Dialect::ConfluentV2,
            format: ValueFormat::Json,
            deployment: Deployment::default(),
            overrides: serde_json::json!({}),
            partitions: 3,
            rest_http2: true,
            concurrency: 2,
            envoy_log_level: "warn".to_string(),
            progress: false,
            wasm: None,
            failure_policy: None,
        }
    }
}

/// The running stack: the [`Backends`] and an Envoy in front of them. Dropping it stops
/// everything.
pub struct Stack {
    opts: StackOptions,
    adtap_config: serde_json::Value,
    parsed_config: adtap_core::Config,
    envoy: Option<envoy::Envoy>,
    backends: Backends,
    ad_addr: SocketAddr,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("deployment", &self.opts.deployment)
            .field("ad", &self.ad_addr)
            .field("admin", &self.admin_addr().ok())
            .field("backends", &self.backends)
            .finish()
    }
}

impl Stack {
    /// Starts the [`Backends`] (broker, topics, REST proxy, ad server) and Envoy; returns once
    /// Envoy is LIVE.
    pub fn start(opts: StackOptions) -> Result<Stack> {
        let mut adtap_config = adtap_config::for_stack(opts.dialect, opts.format, opts.deployment);
        harness_config::merge(&mut adtap_config, &opts.overrides);
        let parsed_config = adtap_core::Config::parse(adtap_config.to_string().as_bytes())
            .map_err(|errors| {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                anyhow!(
                    "adtap refuses the stack's configuration: {}",
                    list.join("; ")
                )
            })?;
        let wasm = match &opts.wasm {
            Some(p) => p.clone(),
            None => envoy::wasm_path()?,
        };
        let backends = Backends::start(BackendOptions {
            dialect: opts.dialect,
            format: opts.format,
            partitions: opts.partitions,
            progress: opts.progress,
        })?;
        let yaml = envoy::Render {
            ad_server_port: backends.ad_server().addr().port(),
            rest_port: backends.rest_addr().port(),
            rest_http2: opts.rest_http2,
            wasm: wasm.clone(),
            adtap_config: adtap_config.to_string(),
            deployment: opts.deployment,
        }
        .render()?;
        let yaml = match &opts.failure_policy {
            // The generated entries carry `"failure_policy":"FAIL_OPEN"` (one line of JSON).
            Some(policy) => yaml.replace(
                r#""failure_policy":"FAIL_OPEN""#,
                &format!(r#""failure_policy":"{policy}""#),
            ),
            None => yaml,
        };
        let mut e = envoy::Envoy::start_in(
            &yaml,
            backends.dir(),
            opts.concurrency,
            &opts.envoy_log_level,
        )?;
        let ready = e.wait_ready(Duration::from_secs(30));
        let mut stack = Stack {
            opts,
            adtap_config,
            parsed_config,
            envoy: Some(e),
            backends,
            ad_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        ready?;
        stack.ad_addr = stack.envoy()?.listener_addr("ads")?;
        stack.backends.progress(&format!(
            "Envoy ready: ads on {}, admin on {} ({} workers, {}, adtap as {})",
            stack.ad_addr,
            stack.admin_addr()?,
            stack.opts.concurrency,
            wasm.display(),
            stack.opts.deployment.describe()
        ));
        Ok(stack)
    }

    /// adtap's configuration as given to Envoy.
    pub fn adtap_config(&self) -> &serde_json::Value {
        &self.adtap_config
    }

    /// Where adtap runs.
    pub fn deployment(&self) -> Deployment {
        self.opts.deployment
    }

    /// Which of the deployment's plugins captures a request of `kind` here
    /// ([`Deployment::plugin_for`]).
    pub fn plugin_for(&self, kind: traffic::Kind) -> Option<adtap_core::native::Deployment> {
        self.opts.deployment.plugin_for(&self.parsed_config, kind)
    }

    /// Whether a request of `kind` becomes an event here ([`Deployment::captures_kind`]).
    pub fn captures(&self, kind: traffic::Kind) -> bool {
        self.plugin_for(kind).is_some()
    }

    /// The requests of `requests` that become events here ([`Stack::captures`]), to reconcile
    /// Kafka's records against ([`verify::reconcile`]).
    pub fn expected(&self, requests: &[traffic::AdRequest]) -> Vec<traffic::AdRequest> {
        requests
            .iter()
            .filter(|r| self.captures(r.kind))
            .cloned()
            .collect()
    }

    /// The broker, REST proxy and ad server behind Envoy.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The temporary directory with the rendered config and every log.
    pub fn dir(&self) -> &Path {
        self.backends.dir()
    }

    /// Envoy's ad listener.
    pub fn ad_addr(&self) -> SocketAddr {
        self.ad_addr
    }

    /// Envoy's admin interface.
    pub fn admin_addr(&self) -> Result<SocketAddr> {
        self.envoy()?.admin()
    }

    /// The REST proxy's address.
    pub fn rest_addr(&self) -> SocketAddr {
        self.backends.rest_addr()
    }

    /// Kafka bootstrap servers.
    pub fn bootstrap(&self) -> String {
        self.backends.bootstrap()
    }

    /// The sample ad server (its counters).
    pub fn ad_server(&self) -> &adserver::AdServer {
        self.backends.ad_server()
    }

    /// Envoy (error once it was terminated).
    pub fn envoy(&self) -> Result<&envoy::Envoy> {
        self.envoy
            .as_ref()
            .ok_or_else(|| anyhow!("Envoy is not running"))
    }

    /// Sends `requests` to the ad listener over `connections` connections at once.
    pub fn send(
        &self,
        requests: &[traffic::AdRequest],
        connections: usize,
    ) -> Result<Vec<traffic::Outcome>> {
        self.backends.send(self.ad_addr, requests, connections)
    }

    /// adtap's stats now.
    pub fn stats(&self) -> Result<AdtapStats> {
        self.envoy()?.stats()
    }

    /// Polls the stats (every 50 ms) until `pred` holds; the error carries the last snapshot.
    pub fn wait_stats(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&AdtapStats) -> bool,
    ) -> Result<AdtapStats> {
        let mut last = None;
        let found = process::poll(timeout, Duration::from_millis(50), || {
            let s = self.stats().ok()?;
            let ok = pred(&s);
            last = Some(s.clone());
            ok.then_some(s)
        });
        found.ok_or_else(|| {
            anyhow!(
                "timed out after {timeout:?} waiting for {what}; last stats:\n{}",
                last.map(|s| s.to_string()).unwrap_or_default()
            )
        })
    }

    /// Waits until `captured >= n` and everything captured is delivered or dropped, with
    /// nothing buffered or in flight.
    pub fn wait_settled(&self, n: u64, timeout: Duration) -> Result<AdtapStats> {
        self.wait_stats(&format!("{n} events captured and settled"), timeout, |s| {
            s.captured() >= n && s.settled()
        })
    }

    /// Every record in the harness topics, decoded.
    pub fn read_records(&self) -> Result<Vec<kafka::KafkaRecord>> {
        self.backends.read_records()
    }

    /// [`Backends::read_records_expecting`]: reads until at least `n` records are there or
    /// `timeout` passes.
    pub fn read_records_expecting(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<kafka::KafkaRecord>> {
        self.backends.read_records_expecting(n, timeout)
    }

    /// Matches `records` against `requests` ([`verify::reconcile`]) in the stack's dialect and
    /// format, for requests sent within `window_ms`.
    pub fn reconcile(
        &self,
        requests: &[traffic::AdRequest],
        records: &[kafka::KafkaRecord],
        window_ms: (u64, u64),
    ) -> verify::Reconciliation {
        self.backends.reconcile(requests, records, window_ms)
    }

    /// Stops the REST proxy (Envoy's calls then fail with connection refused).
    pub fn stop_rest_proxy(&mut self) -> Result<()> {
        self.backends.stop_rest_proxy()
    }

    /// Starts the REST proxy again on the same port.
    pub fn restart_rest_proxy(&mut self) -> Result<()> {
        self.backends.restart_rest_proxy()
    }

    /// Sends SIGTERM to Envoy and waits at most `timeout` for it to exit.
    pub fn terminate_envoy(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.stop_envoy(|e| e.signal_and_wait(libc::SIGTERM, timeout))
    }

    /// The shutdown procedure that delivers what adtap holds, for Envoy 1.40, by the tool
    /// adtap ships for it (`adtap-drain`, [`envoy::Envoy::stop_with_drain_tool`]):
    /// 1. `POST /drain_listeners?graceful&skip_exit`: the ad listener winds down;
    /// 2. wait (at most `flush_timeout`) until adtap's stats show nothing buffered and nothing
    ///    in flight: batches leave on their own triggers (`batch.max_age_ms` at the latest);
    /// 3. SIGTERM, and wait at most 30 s for the exit.
    ///
    /// Why not just SIGTERM: Envoy 1.40 runs each worker VM's root `on_done` while tearing
    /// the worker down; adtap dispatches its final flush there and returns `false`, but Envoy
    /// destroys the VM a millisecond later and cancels the call (seen in Envoy's trace log:
    /// `proxy_on_done return: 0`, `~Wasm`, `cancelling pending stream`). Removing the listener
    /// through LDS does the same. So whatever is buffered at SIGTERM is lost.
    pub fn graceful_stop_envoy(&mut self, flush_timeout: Duration) -> Result<envoy::DrainedStop> {
        self.stop_envoy(|e| e.stop_with_drain_tool(flush_timeout))
    }

    /// Stops Envoy by `stop`; a failure carries Envoy's log.
    fn stop_envoy<T>(&mut self, stop: impl FnOnce(&mut envoy::Envoy) -> Result<T>) -> Result<T> {
        let e = self
            .envoy
            .as_mut()
            .ok_or_else(|| anyhow!("Envoy is not running"))?;
        let stopped = stop(e);
        stopped.with_context(|| format!("Envoy log:\n{}", e.log()))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Envoy first, so it stops sending; the backends then stop themselves (their drop),
        // in reverse order of their start.
        if let Some(mut e) = self.envoy.take() {
            e.kill();
        }
    }
}
