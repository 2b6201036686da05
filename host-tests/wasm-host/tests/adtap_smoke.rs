//! Smoke test of the real filter: load the release `adtap_filter.wasm`, configure it, run a
//! request through it and let it flush. The artifact is required (`./build.sh build` makes it).
//! Path: `ADTAP_FILTER_WASM`, default `<repo>/dist/adtap.wasm` (the wasm-opt'd release module).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use adtap_wasm_host::{compile_file, Host, HostOptions};
use std::path::PathBuf;
use std::time::Duration;

const CONFIG: &str = r#"{
  "cluster": "kafka_rest",
  "dialect": "confluent_v2",
  "rules": [
    {"event_type": "impression", "topic": "ad-impressions", "method": "GET",
     "path": {"prefix": "/imp"}}
  ],
  "query_params": ["campaign_id"],
  "batch": {"max_events": 1, "max_age_ms": 1000}
}"#;

fn filter_wasm() -> PathBuf {
    let path = std::env::var_os("ADTAP_FILTER_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dist/adtap.wasm"));
    // Required: a missing artifact must fail the suite, never pass it silently.
    assert!(
        path.exists(),
        "{} is missing: build it with `./build.sh build` (or set ADTAP_FILTER_WASM)",
        path.display()
    );
    path
}

fn opts(config: &str) -> HostOptions {
    HostOptions {
        plugin_config: config.as_bytes().to_vec(),
        root_id: "adtap".into(),
        vm_id: "adtap".into(),
        known_clusters: Some(vec!["kafka_rest".into()]),
        ..Default::default()
    }
}

#[test]
fn adtap_filter_configures_and_flushes() {
    let path = filter_wasm();
    // compile_file also proves the filter imports nothing Envoy lacks.
    let module = compile_file(&path).unwrap_or_else(|e| panic!("{e:#}"));

    let mut bad = Host::new(&module, opts(r#"{"cluster": "kafka_rest"}"#)).unwrap();
    assert!(bad.start_vm().unwrap());
    assert!(
        !bad.configure().unwrap(),
        "a config without rules must be refused"
    );
    assert!(bad.trapped().is_none());

    let mut h = Host::start(&module, opts(CONFIG)).unwrap_or_else(|e| panic!("{e:#}"));
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
