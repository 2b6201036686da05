//! Shared by the host's tests: the compiled test module, built on demand.
//!
//! `ADTAP_TEST_MODULE_WASM` names a prebuilt module; otherwise `build-test-module.sh` is run
//! once (a no-op when up to date) and the path it prints is used.

#![allow(dead_code)]

use adtap_wasm_host::{compile_file, Action, Host, HostOptions};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::Module;

pub fn test_module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ADTAP_TEST_MODULE_WASM") {
        return PathBuf::from(p);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("build-test-module.sh");
    let out = Command::new("bash")
        .arg(&script)
        // Our own target dir is locked by the cargo running this test: never reuse it.
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("running build-test-module.sh");
    assert!(
        out.status.success(),
        "build-test-module.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The test module, compiled once per test binary.
pub fn module() -> &'static Module {
    static MODULE: OnceLock<Module> = OnceLock::new();
    MODULE.get_or_init(|| compile_file(test_module_path()).expect("compiling the test module"))
}

pub fn opts(plugin_config: &str) -> HostOptions {
    HostOptions {
        plugin_config: plugin_config.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A started and configured host running the test module.
pub fn host(plugin_config: &str) -> Host {
    host_with(plugin_config, |_| {})
}

/// [`host`] with options changed by `change` (`|o| o.random_seed = 7`).
pub fn host_with(plugin_config: &str, change: impl FnOnce(&mut HostOptions)) -> Host {
    let mut o = opts(plugin_config);
    change(&mut o);
    Host::start(module(), o).expect("starting the test module")
}

/// A new stream, and what its `on_request_headers` returned for `headers`.
pub fn open_stream<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    host: &mut Host,
    headers: &[(K, V)],
    end_of_stream: bool,
) -> (u32, wasmtime::Result<Action>) {
    let id = host.new_http_context().unwrap();
    (id, host.request_headers(id, headers, end_of_stream))
}

/// Asserts that some log line contains `needle`, showing all of them when none does.
#[track_caller]
pub fn assert_logged(host: &Host, needle: &str) {
    assert!(
        host.has_log(needle),
        "no log line holds {needle:?}:\n{}",
        host.dump_logs()
    );
}

/// One request through a whole stream: headers (end of stream), response 200, log, done.
pub fn simple_request(host: &mut Host, path: &str) -> u32 {
    let (id, r) = open_stream(host, &[(":path", path), (":method", "GET")], true);
    r.unwrap();
    host.response_headers(id, &[(":status", "200")], true)
        .unwrap();
    host.complete_stream(id).unwrap();
    id
}

/// [`simple_request`], then a second of ticks (the test module's default `tick_ms`): its
/// batch is one pending call. Returns the first pending call's token (`None`: no call).
pub fn request_and_flush(host: &mut Host, path: &str) -> Option<u32> {
    simple_request(host, path);
    host.advance_and_tick(Duration::from_secs(1)).unwrap();
    host.pending_calls().first().map(|c| c.token)
}

/// The release filter, configs, accounting and batch decoders for the scenario suite.
pub mod adtap;
