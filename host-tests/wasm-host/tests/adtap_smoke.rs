//! Smoke test of the real filter: load the release module, check the host emulates exactly what
//! it imports, configure it with the harness's base configuration, run a request through it and
//! let it flush. The module is required (`./build.sh build` makes it; `ADTAP_WASM` overrides).

#![cfg(test)]

mod common;

use adtap_harness::config::base;
use adtap_wasm_host::{Host, EMULATED_PROXY_FUNCTIONS, EMULATED_WASI_FUNCTIONS};
use common::adtap::{filter_module, opts, opts_bytes, JSON, V2};
use std::collections::BTreeSet;
use std::time::Duration;

/// The host emulates the filter's imports, no more and no fewer: a new import fails here until
/// it is emulated, and an import the filter dropped fails here until its emulation goes.
#[test]
fn the_host_emulates_exactly_what_the_filter_imports() {
    let imported: BTreeSet<String> = filter_module()
        .imports()
        .map(|i| format!("{}::{}", i.module(), i.name()))
        .collect();
    let emulated: BTreeSet<String> = EMULATED_PROXY_FUNCTIONS
        .iter()
        .map(|n| format!("env::{n}"))
        .chain(
            EMULATED_WASI_FUNCTIONS
                .iter()
                .map(|n| format!("wasi_snapshot_preview1::{n}")),
        )
        .collect();
    assert_eq!(imported, emulated);
}

#[test]
fn adtap_filter_configures_and_flushes() {
    // Compiling (once, in `filter_module`) also proves the filter imports nothing Envoy lacks.
    let module = filter_module();
    let mut bad = Host::new(module, opts_bytes(br#"{"cluster": "kafka_rest"}"#.to_vec())).unwrap();
    assert!(bad.start_vm().unwrap());
    assert!(
        !bad.configure().unwrap(),
        "a config without rules must be refused"
    );
    assert!(bad.trapped().is_none());

    let mut h = Host::start(module, opts(&base(V2, JSON))).unwrap_or_else(|e| panic!("{e:#}"));
    let id = h.new_http_context().unwrap();
    h.request_headers(
        id,
        &[
            (":method", "GET"),
            (":path", "/imp?campaign_id=42"),
            (":authority", "ads.example"),
            (":scheme", "https"),
        ],
        true,
    )
    .unwrap_or_else(|e| panic!("{e:#}\n{}", h.dump_logs()));
    h.response_headers(id, &[(":status", "204")], true).unwrap();
    h.set_property_u64(id, &["response", "code"], 204).unwrap();
    h.complete_stream(id)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", h.dump_logs()));
    h.advance_and_tick(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e:#}\n{}", h.dump_logs()));

    let calls = h.pending_calls();
    assert!(
        !calls.is_empty(),
        "no batch dispatched; logs:\n{}",
        h.dump_logs()
    );
    let call = &calls[0];
    assert_eq!(call.upstream, "kafka_rest");
    assert_eq!(call.header(":method"), Some("POST"));
    assert!(
        call.header(":path")
            .unwrap_or("")
            .contains("ad-impressions"),
        "{call:?}"
    );
    assert!(call.body_str().contains("42"), "{}", call.body_str());
    assert!(h.trapped().is_none());
}
