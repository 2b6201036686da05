//! The local Kafka REST proxy (`adtap-rest-proxy`) as a child process, so a test can stop it
//! (an outage as Envoy sees it: connections refused) and start it again on the same port.
//!
//! The binary is found, in order: `$ADTAP_REST_PROXY`; next to the running executable (cargo
//! puts test binaries in `target/<profile>/deps` and binaries in `target/<profile>`);
//! `$CARGO_TARGET_DIR/<profile>`; the repository's `target/<profile>`. If none exists it is
//! built with `cargo build -p adtap-rest-proxy` (outside `cargo test`, e.g. for the demo).

use adtap_harness::process::Child;
use anyhow::{anyhow, bail, Context as _, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = "adtap-rest-proxy";

/// How to run the proxy.
#[derive(Debug, Clone)]
pub struct RestProxyConfig {
    /// Kafka bootstrap servers.
    pub bootstrap: String,
    /// Cluster id of the v3 API.
    pub cluster_id: String,
    /// How long a record may wait for the broker's acknowledgement.
    pub delivery_timeout_ms: u64,
}

/// A running (or stopped) REST proxy child.
#[derive(Debug)]
pub struct RestProxy {
    cfg: RestProxyConfig,
    bin: PathBuf,
    log: PathBuf,
    addr: SocketAddr,
    child: Option<Child>,
}

impl RestProxy {
    /// Starts the proxy on a port the OS picks; logs go to `dir/rest-proxy.log`.
    pub fn start(cfg: RestProxyConfig, dir: &Path) -> Result<RestProxy> {
        let bin = binary()?;
        let log = dir.join("rest-proxy.log");
        let mut p = RestProxy {
            cfg,
            bin,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: None,
        };
        p.spawn()?;
        Ok(p)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--listen")
            .arg(self.addr.to_string())
            .arg("--bootstrap")
            .arg(&self.cfg.bootstrap)
            .arg("--cluster-id")
            .arg(&self.cfg.cluster_id)
            .arg("--delivery-timeout-ms")
            .arg(self.cfg.delivery_timeout_ms.to_string());
        let (child, line) =
            Child::spawn_announcing("adtap-rest-proxy", cmd, &self.log, Duration::from_secs(20))?;
        let addr: SocketAddr = line
            .strip_prefix("listening ")
            .ok_or_else(|| anyhow!("unexpected first line from the REST proxy: {line:?}"))?
            .trim()
            .parse()
            .with_context(|| format!("parsing {line:?}"))?;
        self.addr = addr;
        self.child = Some(child);
        Ok(())
    }

    /// Where it listens (kept across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it: SIGTERM, so requests being served still get their delivery reports (a kill
    /// mid-request would make Envoy retry records the broker already has: duplicates, which
    /// the outage test would rightly flag); SIGKILL after 5 s. Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            if let Err(e) = c.signal_and_wait(libc::SIGTERM, Duration::from_secs(5)) {
                eprintln!("adtap-stack: {e:#}; killed it");
            }
        }
        Ok(())
    }

    /// Starts it again on the same port (after [`RestProxy::stop`]). The port was just
    /// released by our own child, so rebinding it is immediate.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("the REST proxy is still running");
        }
        self.spawn()
    }
}

/// Where the `adtap-rest-proxy` binary is (building it if it is nowhere).
pub fn binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ADTAP_REST_PROXY") {
        return Ok(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            candidates.push(dir.join(BIN));
        }
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let target = adtap_harness::paths::target_dir();
    candidates.push(target.join(profile).join(BIN));
    if let Some(p) = candidates.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    build(profile)?;
    let built = target.join(profile).join(BIN);
    if built.is_file() {
        Ok(built)
    } else {
        Err(anyhow!(
            "{BIN} not found after building; looked in {candidates:?}"
        ))
    }
}

fn build(profile: &str) -> Result<()> {
    eprintln!("building {BIN} (cargo build -p {BIN}) …");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(crate::repo_root())
        .env("CARGO_TARGET_DIR", adtap_harness::paths::target_dir())
        .args(["build", "-q", "-p", BIN, "--bin", BIN]);
    if profile == "release" {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("cargo build -p {BIN} failed ({status})");
    }
    Ok(())
}
