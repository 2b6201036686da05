//! Everything of the local stack but Envoy: what adtap sends to and what Envoy routes to.
//!
//! [`Backends::start`] brings the parts up on free 127.0.0.1 ports in dependency order: a
//! temporary directory for the logs, the tansu broker with the harness topics, the REST proxy
//! (checked to serve the configured cluster id on Confluent v3, whose path carries it), then a
//! tokio runtime and the sample ad server on it. Dropping [`Backends`] stops them in reverse
//! order; when the drop happens during a panic (a failing test), or with `ADTAP_KEEP_LOGS` set,
//! the directory with every log is kept and its path printed ([`LogsDir`], which a test that
//! runs only an Envoy of its own uses alone).
//!
//! [`crate::Stack`] is these and an Envoy on the harness configuration; a test that starts an
//! Envoy of its own (a shipped example, Envoy under a wrapper) points it at
//! [`Backends::rest_addr`] and [`Backends::ad_server`] and writes into [`Backends::dir`].

use crate::adserver::AdServer;
use crate::kafka::{self, KafkaRecord};
use crate::rest_proxy::{RestProxy, RestProxyConfig};
use crate::{http, traffic, verify};
use adtap_core::config::{Dialect, ValueFormat};
use adtap_harness::broker::Tansu;
use adtap_harness::config::{CLUSTER_ID, TOPICS};
use adtap_harness::process;
use anyhow::{anyhow, bail, Result};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// How to start the backends.
#[derive(Debug, Clone, Copy)]
pub struct BackendOptions {
    /// The REST dialect adtap speaks: on v3 the proxy's cluster id is checked; records decode
    /// by it.
    pub dialect: Dialect,
    /// The record value format adtap writes (how records decode).
    pub format: ValueFormat,
    /// Partitions per topic.
    pub partitions: u32,
    /// Print a line per step on stdout (the demo).
    pub progress: bool,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            dialect: Dialect::ConfluentV2,
            format: ValueFormat::Json,
            partitions: 3,
            progress: false,
        }
    }
}

/// The running broker, REST proxy and ad server, with their logs directory. Dropping it stops
/// them.
pub struct Backends {
    opts: BackendOptions,
    started: Instant,
    ad_server: AdServer,
    /// `None` only while dropping (`shutdown_timeout` takes it by value).
    rt: Option<tokio::runtime::Runtime>,
    rest: RestProxy,
    broker: Tansu,
    /// The last field: dropped after `Drop::drop` has stopped the parts above.
    dir: LogsDir,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("broker", &self.bootstrap())
            .field("rest", &self.rest_addr())
            .field("ad_server", &self.ad_server.addr())
            .field("dir", &self.dir())
            .finish()
    }
}

impl Backends {
    /// Starts the temporary directory, the broker and its topics, the REST proxy and the ad
    /// server, in that order.
    pub fn start(opts: BackendOptions) -> Result<Backends> {
        let started = Instant::now();
        let progress = |what: &str| progress(&opts, started, what);
        let dir = LogsDir::new("adtap-stack-")?;

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

        let rest = RestProxy::start(
            RestProxyConfig {
                bootstrap: broker.bootstrap(),
                cluster_id: CLUSTER_ID.to_string(),
                delivery_timeout_ms: 10_000,
            },
            dir.path(),
        )?;
        if opts.dialect == Dialect::ConfluentV3 {
            // The v3 path carries the cluster id: make sure the proxy serves the one configured.
            let r = http::get(rest.addr(), "/v3/clusters")?;
            if !r.text().contains(CLUSTER_ID) {
                bail!("GET /v3/clusters does not list {CLUSTER_ID}: {}", r.text());
            }
        }
        progress(&format!("REST proxy on {}", rest.addr()));

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let ad_server = rt.block_on(AdServer::start())?;
        progress(&format!("sample ad server on {}", ad_server.addr()));
        Ok(Backends {
            opts,
            started,
            ad_server,
            rt: Some(rt),
            rest,
            broker,
            dir,
        })
    }

    /// With [`BackendOptions::progress`], prints `what` with the time since the start.
    pub(crate) fn progress(&self, what: &str) {
        progress(&self.opts, self.started, what);
    }

    /// The temporary directory for configurations and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kafka bootstrap servers.
    pub fn bootstrap(&self) -> String {
        self.broker.bootstrap()
    }

    /// The REST proxy's address (kept across a restart).
    pub fn rest_addr(&self) -> SocketAddr {
        self.rest.addr()
    }

    /// The sample ad server (its address and counters).
    pub fn ad_server(&self) -> &AdServer {
        &self.ad_server
    }

    /// Stops the REST proxy (Envoy's calls then fail with connection refused).
    pub fn stop_rest_proxy(&mut self) -> Result<()> {
        self.rest.stop()
    }

    /// Starts the REST proxy again on the same port.
    pub fn restart_rest_proxy(&mut self) -> Result<()> {
        self.rest.restart()
    }

    /// Sends `requests` to `addr` (an Envoy listener) over `connections` connections at once,
    /// on the backends' runtime.
    pub fn send(
        &self,
        addr: SocketAddr,
        requests: &[traffic::AdRequest],
        connections: usize,
    ) -> Result<Vec<traffic::Outcome>> {
        let rt = self.rt.as_ref().ok_or_else(|| anyhow!("no runtime"))?;
        Ok(rt.block_on(traffic::send(addr, requests, connections)))
    }

    /// Every record in the harness topics, decoded.
    pub fn read_records(&self) -> Result<Vec<KafkaRecord>> {
        kafka::read_all(&self.bootstrap(), self.opts.dialect, self.opts.format)
    }

    /// Reads the topics until at least `n` records are there or `timeout` passes, returning
    /// the last read. A read takes each partition's high watermark first; right after the REST
    /// proxy's acknowledgements, under load, tansu was once seen reporting fewer records than it
    /// had acknowledged, and a second read found them all. Extra or missing records still show
    /// in the reconciliation: this only waits, it never hides a loss.
    pub fn read_records_expecting(&self, n: usize, timeout: Duration) -> Result<Vec<KafkaRecord>> {
        let mut last = Ok(Vec::new());
        process::poll(timeout, Duration::from_millis(200), || {
            last = self.read_records();
            // An error ends the wait too: it is returned.
            last.as_ref()
                .map_or(Some(()), |r| (r.len() >= n).then_some(()))
        });
        last
    }

    /// Matches `records` against `requests` ([`verify::reconcile`]) in the backends' dialect
    /// and format, for requests sent within `window_ms`.
    pub fn reconcile(
        &self,
        requests: &[traffic::AdRequest],
        records: &[KafkaRecord],
        window_ms: (u64, u64),
    ) -> verify::Reconciliation {
        let (dialect, format) = (self.opts.dialect, self.opts.format);
        verify::reconcile(requests, records, dialect, format, window_ms)
    }
}

/// One progress line (see [`BackendOptions::progress`]).
fn progress(opts: &BackendOptions, started: Instant, what: &str) {
    if opts.progress {
        println!("  [{:>5.1}s] {what}", started.elapsed().as_secs_f64());
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        // Reverse of the start order: the ad server and its runtime, the REST proxy (SIGTERM,
        // so requests being served get their delivery reports), the broker; the directory
        // (its field) after.
        self.ad_server.stop();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        let _ = self.rest.stop();
        self.broker.stop();
    }
}

/// A temporary directory for configurations and logs, removed when dropped, unless the drop
/// happens during a panic (a failing test) or `ADTAP_KEEP_LOGS` is set: then it is kept and
/// its path printed.
#[derive(Debug)]
pub struct LogsDir(Option<tempfile::TempDir>);

impl LogsDir {
    /// A new directory under the system's temporary directory, its name starting `prefix`.
    pub fn new(prefix: &str) -> Result<LogsDir> {
        Ok(LogsDir(Some(
            tempfile::Builder::new().prefix(prefix).tempdir()?,
        )))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        // `None` only inside the drop.
        self.0.as_ref().map_or(Path::new("/tmp"), |d| d.path())
    }
}

impl Drop for LogsDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            if std::thread::panicking() || std::env::var_os("ADTAP_KEEP_LOGS").is_some() {
                eprintln!("adtap-stack: logs kept in {}", dir.keep().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LogsDir;

    #[test]
    fn a_logs_dir_is_kept_when_dropped_in_a_panic_and_removed_otherwise() {
        let dir = LogsDir::new("adtap-logs-test-").unwrap();
        let removed = dir.path().to_path_buf();
        drop(dir);
        if std::env::var_os("ADTAP_KEEP_LOGS").is_none() {
            assert!(!removed.exists(), "{} left behind", removed.display());
        }
        let mut kept = None;
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let dir = LogsDir::new("adtap-logs-test-").unwrap();
            kept = Some(dir.path().to_path_buf());
            panic!("a failing test");
        }));
        assert!(panicked.is_err());
        let kept = kept.unwrap();
        assert!(kept.is_dir(), "{} not kept", kept.display());
        std::fs::remove_dir_all(&kept).unwrap();
    }
}
