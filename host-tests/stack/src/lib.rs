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
//! [`Stack::start`] brings everything up on free 127.0.0.1 ports, in dependency order: broker
//! and topics, REST proxy, ad server, then Envoy on the configuration [`envoy::Render`] builds, in a
//! temporary directory, for the chosen [`Deployment`] (adtap as the Wasm access logger, the Wasm
//! HTTP filter, or both sharing each worker's VM: [`StackOptions::deployment`]); it returns once
//! Envoy's admin says LIVE. [`Stack::captures`] says which requests become events there.
//! Dropping the [`Stack`] stops everything (Envoy first, so nothing is left sending) and reaps
//! every child; children also die with the harness process (`PR_SET_PDEATHSIG`). When the drop
//! happens during a panic (a failing test), the temporary directory with every log is kept and
//! its path printed.
//!
//! Modules:
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
pub mod envoy;
pub mod kafka;
use adtap_harness::process;
pub mod rest_proxy;
pub mod traffic;
pub mod verify;

pub use adtap_harness::stats::AdtapStats;
pub use adtap_harness::{http, stats};
pub use envoy::Deployment;

use adtap_core::config::{Dialect, ValueFormat};
use adtap_harness::broker::Tansu;
use adtap_harness::config::{self as harness_config, CLUSTER_ID, TOPICS};
use anyhow::{anyhow, Context as _, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// The running stack. Dropping it stops everything.
pub struct Stack {
    opts: StackOptions,
    adtap_config: serde_json::Value,
    parsed_config: adtap_core::Config,
    envoy: Option<envoy::Envoy>,
    rest: Option<rest_proxy::RestProxy>,
    ad_server: Option<adserver::AdServer>,
    broker: Option<Tansu>,
    rt: Option<tokio::runtime::Runtime>,
    dir: Option<tempfile::TempDir>,
    ad_addr: SocketAddr,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("deployment", &self.opts.deployment)
            .field("ad", &self.ad_addr)
            .field("admin", &self.admin_addr().ok())
            .field("dir", &self.dir())
            .finish()
    }
}

impl Stack {
    /// Starts broker, topics, REST proxy, ad server and Envoy; returns once Envoy is LIVE.
    pub fn start(opts: StackOptions) -> Result<Stack> {
        let t0 = Instant::now();
        let progress = |what: &str| {
            if opts.progress {
                println!("  [{:>5.1}s] {what}", t0.elapsed().as_secs_f64());
            }
        };
        let dir = tempfile::Builder::new().prefix("adtap-stack-").tempdir()?;
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
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let mut stack = Stack {
            opts: opts.clone(),
            adtap_config,
            parsed_config,
            envoy: None,
            rest: None,
            ad_server: None,
            broker: None,
            rt: None,
            dir: Some(dir),
            ad_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };

        progress("starting the tansu broker (memory storage)");
        let broker = Tansu::start().map_err(|e| anyhow!("tansu: {e}"))?;
        for (_, topic) in TOPICS {
            broker
                .create_topic(topic, opts.partitions)
                .map_err(|e| anyhow!("creating {topic}: {e}"))?;
        }
        progress(&format!(
            "broker on {}; topics {} with {} partitions each",
            broker.bootstrap(),
            TOPICS.map(|t| t.1).join(", "),
            opts.partitions
        ));
        let bootstrap = broker.bootstrap();
        stack.broker = Some(broker);

        let rest = rest_proxy::RestProxy::start(
            rest_proxy::RestProxyConfig {
                bootstrap,
                cluster_id: CLUSTER_ID.to_string(),
                delivery_timeout_ms: 10_000,
            },
            stack.dir(),
        )?;
        let rest_addr = rest.addr();
        stack.rest = Some(rest);
        if opts.dialect == Dialect::ConfluentV3 {
            // The v3 path carries the cluster id: make sure the proxy serves the one configured.
            let r = http::get(rest_addr, "/v3/clusters")?;
            if !r.text().contains(CLUSTER_ID) {
                return Err(anyhow!(
                    "GET /v3/clusters does not list {}: {}",
                    CLUSTER_ID,
                    r.text()
                ));
            }
        }
        progress(&format!("REST proxy on {rest_addr}"));

        let ad_server = rt.block_on(adserver::AdServer::start())?;
        let ad_server_addr = ad_server.addr();
        stack.ad_server = Some(ad_server);
        stack.rt = Some(rt);
        progress(&format!("sample ad server on {ad_server_addr}"));

        let yaml = envoy::Render {
            ad_server_port: ad_server_addr.port(),
            rest_port: rest_addr.port(),
            rest_http2: opts.rest_http2,
            wasm: wasm.clone(),
            adtap_config: stack.adtap_config.to_string(),
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
        let mut e =
            envoy::Envoy::start_in(&yaml, stack.dir(), opts.concurrency, &opts.envoy_log_level)?;
        let ready = e.wait_ready(Duration::from_secs(30));
        stack.envoy = Some(e);
        ready?;
        stack.ad_addr = stack.envoy()?.listener_addr("ads")?;
        progress(&format!(
            "Envoy ready: ads on {}, admin on {} ({} workers, {}, adtap as {})",
            stack.ad_addr,
            stack.admin_addr()?,
            opts.concurrency,
            wasm.display(),
            opts.deployment.describe()
        ));
        Ok(stack)
    }

    /// The options it was started with.
    pub fn options(&self) -> &StackOptions {
        &self.opts
    }

    /// adtap's configuration as given to Envoy.
    pub fn adtap_config(&self) -> &serde_json::Value {
        &self.adtap_config
    }

    /// Where adtap runs.
    pub fn deployment(&self) -> Deployment {
        self.opts.deployment
    }

    /// Which of the deployment's plugins captures a request of `kind` (`None`: no event): the
    /// one that captures the rule for its event type ([`adtap_core::native::captures`]). The
    /// access logger alone never captures bids: their rule has `capture_body`, and a logger
    /// sees no body.
    pub fn plugin_for(&self, kind: traffic::Kind) -> Option<adtap_core::native::Deployment> {
        let cfg = &self.parsed_config;
        let rule = cfg
            .rules
            .iter()
            .find(|r| Some(r.event_type.as_str()) == kind.event_type())?;
        self.opts
            .deployment
            .plugins()
            .iter()
            .copied()
            .find(|p| adtap_core::native::captures(cfg, *p, rule))
    }

    /// Whether a request of `kind` becomes an event here ([`Stack::plugin_for`]).
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

    /// The temporary directory with the rendered config and every log.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("/tmp"), |d| d.path())
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
    pub fn rest_addr(&self) -> Result<SocketAddr> {
        Ok(self.rest()?.addr())
    }

    /// Kafka bootstrap servers.
    pub fn bootstrap(&self) -> Result<String> {
        self.broker
            .as_ref()
            .map(Tansu::bootstrap)
            .ok_or_else(|| anyhow!("no broker"))
    }

    /// The sample ad server's counters.
    pub fn ad_server(&self) -> Result<&adserver::AdServer> {
        self.ad_server
            .as_ref()
            .ok_or_else(|| anyhow!("no ad server"))
    }

    /// Envoy (error once it was terminated).
    pub fn envoy(&self) -> Result<&envoy::Envoy> {
        self.envoy
            .as_ref()
            .ok_or_else(|| anyhow!("Envoy is not running"))
    }

    fn rest(&self) -> Result<&rest_proxy::RestProxy> {
        self.rest.as_ref().ok_or_else(|| anyhow!("no REST proxy"))
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime> {
        self.rt.as_ref().ok_or_else(|| anyhow!("no runtime"))
    }

    /// Sends `requests` to the ad listener over `connections` connections at once.
    pub fn send(
        &self,
        requests: &[traffic::AdRequest],
        connections: usize,
    ) -> Result<Vec<traffic::Outcome>> {
        let addr = self.ad_addr;
        Ok(self
            .runtime()?
            .block_on(traffic::send(addr, requests, connections)))
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
        kafka::read_all(&self.bootstrap()?, self.opts.dialect, self.opts.format)
    }

    /// Reads the topics until at least `n` records are there or `timeout` passes, returning
    /// the last read. A read takes each partition's high watermark first; right after the REST
    /// proxy's acknowledgements, under load, tansu was once seen reporting fewer records than it
    /// had acknowledged, and a second read found them all. Extra or missing records still show
    /// in the reconciliation: this only waits, it never hides a loss.
    pub fn read_records_expecting(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<kafka::KafkaRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.read_records()?;
            if records.len() >= n || Instant::now() >= deadline {
                return Ok(records);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Matches `records` against `requests` ([`verify::reconcile`]) in the stack's dialect and
    /// format, for requests sent within `window_ms`.
    pub fn reconcile(
        &self,
        requests: &[traffic::AdRequest],
        records: &[kafka::KafkaRecord],
        window_ms: (u64, u64),
    ) -> verify::Reconciliation {
        verify::reconcile(
            requests,
            records,
            self.opts.dialect,
            self.opts.format,
            window_ms,
        )
    }

    /// Stops the REST proxy (Envoy's calls then fail with connection refused).
    pub fn stop_rest_proxy(&mut self) -> Result<()> {
        self.rest
            .as_mut()
            .ok_or_else(|| anyhow!("no REST proxy"))?
            .stop()
    }

    /// Starts the REST proxy again on the same port.
    pub fn restart_rest_proxy(&mut self) -> Result<()> {
        self.rest
            .as_mut()
            .ok_or_else(|| anyhow!("no REST proxy"))?
            .restart()
    }

    /// Sends SIGTERM to Envoy and waits at most `timeout` for it to exit.
    pub fn terminate_envoy(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let e = self
            .envoy
            .as_mut()
            .ok_or_else(|| anyhow!("Envoy is not running"))?;
        let status = e.signal_and_wait(libc::SIGTERM, timeout);
        status.with_context(|| format!("Envoy log:\n{}", e.log()))
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
        let e = self
            .envoy
            .as_mut()
            .ok_or_else(|| anyhow!("Envoy is not running"))?;
        let stop = e.stop_with_drain_tool(flush_timeout);
        stop.with_context(|| format!("Envoy log:\n{}", e.log()))
    }

    /// Envoy's log (also after it exited).
    pub fn envoy_log(&self) -> String {
        let path = self.dir().join("envoy.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The REST proxy's log.
    pub fn rest_proxy_log(&self) -> String {
        self.rest
            .as_ref()
            .map(rest_proxy::RestProxy::log)
            .unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Envoy first, so it stops sending; then the proxy, the broker, the ad server, and the
        // runtime that served it.
        if let Some(mut e) = self.envoy.take() {
            e.kill();
        }
        if let Some(mut r) = self.rest.take() {
            let _ = r.stop();
        }
        self.broker.take();
        self.ad_server.take();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() || std::env::var_os("ADTAP_KEEP_LOGS").is_some() {
                let kept = dir.keep();
                eprintln!("adtap-stack: logs kept in {}", kept.display());
            }
        }
    }
}
