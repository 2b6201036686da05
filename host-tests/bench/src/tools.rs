//! Finding what the bench runs (Envoy, wrk, the adtap module, cargo), building the no-op
//! filter, pinning CPUs, and describing the machine.

use adtap_harness::paths;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Paths of everything the bench needs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The repository root.
    pub root: PathBuf,
    /// `$CARGO_TARGET_DIR` (default `$ADTAP_CACHE/target`).
    pub target_dir: PathBuf,
    /// Envoy binary (`$ADTAP_ENVOY`, else the cache's virtualenv).
    pub envoy: PathBuf,
    /// adtap's release module (`$ADTAP_WASM`, else `dist/adtap.wasm`).
    pub adtap_wasm: PathBuf,
}

impl Tools {
    /// Locates everything; fails with the command that would provide what is missing.
    pub fn locate() -> Result<Tools> {
        let root = paths::repo_root();
        let target_dir = paths::target_dir();
        let envoy = paths::existing(paths::envoy(), "./build.sh setup or set ADTAP_ENVOY")
            .map_err(|e| anyhow!(e))?;
        let adtap_wasm = paths::existing(paths::wasm(), "./build.sh build or set ADTAP_WASM")
            .map_err(|e| anyhow!(e))?;
        Ok(Tools {
            root,
            target_dir,
            envoy,
            adtap_wasm,
        })
    }

    /// Envoy's and wrk's versions, one line.
    pub fn versions(&self) -> String {
        let first_line = |mut cmd: Command| {
            cmd.output()
                .ok()
                .map(|o| {
                    let text = String::from_utf8_lossy(&o.stdout).to_string()
                        + &String::from_utf8_lossy(&o.stderr);
                    text.lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty())
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_else(|| "not found".into())
        };
        let mut envoy = Command::new(&self.envoy);
        envoy.arg("--version");
        let mut wrk = Command::new("wrk");
        wrk.arg("-v");
        format!(
            "Envoy: `{}`; wrk: `{}`; adtap module: `{}` ({} bytes)",
            first_line(envoy),
            first_line(wrk),
            self.adtap_wasm.display(),
            std::fs::metadata(&self.adtap_wasm).map_or(0, |m| m.len())
        )
    }
}

/// Runs `cargo` with the project's target dir; `args` e.g. `["build", "--release"]`.
pub fn cargo(tools: &Tools, args: &[&str], dir: &Path) -> Result<std::process::Output> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &tools.target_dir)
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "cargo {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Builds `host-tests/bench/noop-filter` for wasm32-wasip1 (release) and returns the module.
pub fn build_noop_filter(tools: &Tools) -> Result<PathBuf> {
    let dir = tools.root.join("host-tests/bench/noop-filter");
    cargo(
        tools,
        &["build", "-q", "--release", "--target", "wasm32-wasip1"],
        &dir,
    )?;
    let wasm = tools
        .target_dir
        .join("wasm32-wasip1/release/adtap_noop_filter.wasm");
    if !wasm.exists() {
        bail!("the no-op filter built but {} is missing", wasm.display());
    }
    Ok(wasm)
}

/// With two or more CPUs and `taskset`: Envoy on CPU 0, this process (load generators, sink,
/// wasmtime) and wrk on CPU 1. Pins this process now; returns the pair, or `None`.
pub fn pin_cpus() -> Option<(usize, usize)> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        return None;
    }
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some((0, 1))
}

/// The machine's online CPUs as a `taskset` list (e.g. `0-1`) and their count. Read from
/// sysfs because `available_parallelism` follows this process's affinity, which the Envoy
/// sections narrow to one CPU.
pub fn online_cpus() -> (String, usize) {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "0".into());
    let count = list
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => match (a.parse::<usize>(), b.parse::<usize>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 1,
            },
            None => 1,
        })
        .sum();
    (list, count)
}

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn load1() -> f64 {
    loadavg()
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// Waits up to `max_secs` for the 1-minute load average to fall below 1.5.
pub fn wait_idle(max_secs: u64) {
    if max_secs == 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(max_secs);
    while load1() >= 1.5 && Instant::now() < deadline {
        eprintln!(
            "  load average {} — waiting for the machine to quiet",
            loadavg()
        );
        std::thread::sleep(Duration::from_secs(10));
    }
}

/// The machine, as markdown list items.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|x| x.1.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "- CPUs: {n} × {model}\n- memory: {:.1} GiB\n- kernel: {}\n- load average at the start: {}\n",
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim(),
        loadavg()
    )
}
