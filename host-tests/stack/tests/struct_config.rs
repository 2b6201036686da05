//! adtap's configuration as a `google.protobuf.Struct` (YAML in Envoy's config), in the real
//! Envoy 1.40:
//! - what `proxy_on_configure` receives: a tiny probe module (compiled here with `rustc --target
//!   wasm32-unknown-unknown`; skipped with a note when that target is missing) logs the bytes
//!   Envoy hands it, in hex; for a Struct they are the serialized Struct, byte for byte what the
//!   independent test encoder (`filter/core/tests/struct_encoder`) writes for the document as
//!   Envoy's YAML loader reads it (floats and integers outside i32 as strings), and for a
//!   `StringValue` the text itself;
//! - adtap loads a Struct configuration and captures: an impression sent through an Envoy whose
//!   adtap is configured by a Struct reaches Kafka (the stack's broker and REST proxy);
//! - a fractional `batch.max_events` in a Struct is refused, naming the field.
//!
//! Needs Envoy (`./build.sh setup`), the built `dist/adtap.wasm` and the tansu broker.

#![cfg(test)]

#[path = "../../../filter/core/tests/struct_encoder/mod.rs"]
mod struct_encoder;
mod support;

use adtap_core::config::{Dialect::ConfluentV2, ValueFormat::Json};
use adtap_harness::process::poll;
use adtap_stack::envoy::{self, Deployment, Envoy};
use adtap_stack::{adtap_config, http, BackendOptions, Backends};
use serde_json::json;
use std::time::Duration;
use support::{as_struct_configuration, render};

/// The probe: `proxy_on_configure` logs `probe config <hex>` of the plugin configuration it
/// receives (`proxy_get_buffer_bytes` of `PluginConfiguration`, buffer type 7 in ABI 0.2.1).
const PROBE: &str = r#"
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, ptr: *const u8, len: usize) -> u32;
    fn proxy_get_buffer_bytes(kind: u32, start: usize, max: usize,
                              data: *mut *const u8, len: *mut usize) -> u32;
}
static mut LINE: [u8; 8192] = [0; 8192];
#[no_mangle] pub extern "C" fn proxy_on_context_create(_: u32, _: u32) {}
#[no_mangle] pub extern "C" fn proxy_on_configure(_: u32, size: usize) -> u32 {
    let (mut p, mut n): (*const u8, usize) = (core::ptr::null(), 0);
    let hex = b"0123456789abcdef";
    unsafe {
        let line = &mut *core::ptr::addr_of_mut!(LINE);
        let head = b"probe config ";
        line[..head.len()].copy_from_slice(head);
        let mut k = head.len();
        if proxy_get_buffer_bytes(7, 0, size, &mut p, &mut n) == 0 && !p.is_null() {
            for b in core::slice::from_raw_parts(p, n) {
                if k + 2 > line.len() { break; }
                line[k] = hex[(b >> 4) as usize]; line[k + 1] = hex[(b & 15) as usize]; k += 2;
            }
        }
        proxy_log(2, line.as_ptr(), k);
    }
    1
}
"#;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn envoy_hands_proxy_on_configure_the_serialized_struct() {
    let dir = tempfile::tempdir().unwrap();
    let Some(probe) = support::compile_probe(dir.path(), PROBE, "the probe") else {
        return;
    };
    // One key per object, so the bytes do not depend on the order Envoy writes map entries in.
    let doc =
        json!({"adtap": {"batch": [1.5, "x", true, null, 4_294_967_296u64, {"max_events": 500}]}});
    // What Envoy's YAML loader makes of it (the bootstrap is YAML, even written as JSON): a
    // float and an integer outside i32 become strings; booleans and small integers stay typed.
    let envoy_view =
        json!({"adtap": {"batch": ["1.5", "x", true, null, "4294967296", {"max_events": 500}]}});
    let text = r#"{"cluster": "kafka_rest"}"#;
    let yaml = render(&probe, text, Deployment::AccessLogger, (1, 1));
    for (yaml, want) in [
        (yaml.clone(), hex(text.as_bytes())),
        (
            as_struct_configuration(&yaml, text, &doc),
            hex(&struct_encoder::encode_struct(&envoy_view).unwrap()),
        ),
    ] {
        let run = tempfile::tempdir().unwrap();
        let verdict = envoy::try_start(&yaml, run.path(), Duration::from_secs(30)).unwrap();
        assert!(
            verdict.exit.is_none(),
            "the probe did not load:\n{}",
            verdict.log
        );
        let got: Vec<&str> = verdict
            .log
            .lines()
            .filter_map(|l| l.split("probe config ").nth(1))
            .collect();
        assert!(!got.is_empty(), "no probe line:\n{}", verdict.log);
        assert!(got.iter().all(|g| *g == want), "got {got:?}, want {want}");
    }
}

#[test]
fn adtap_loads_a_struct_configuration_and_captures() {
    // The stack's broker, REST proxy and ad server, behind an Envoy whose adtap (the stack's
    // configuration for the access logger) is configured by a Struct.
    let backends = Backends::start(BackendOptions::default()).unwrap();
    let doc = adtap_config::for_stack(ConfluentV2, Json, Deployment::AccessLogger);
    let text = doc.to_string();
    let wasm = envoy::wasm_path().unwrap();
    let ports = (
        backends.ad_server().addr().port(),
        backends.rest_addr().port(),
    );
    let yaml = as_struct_configuration(
        &render(&wasm, &text, Deployment::AccessLogger, ports),
        &text,
        &doc,
    );
    let mut e = Envoy::start_in(&yaml, backends.dir(), 1, "info").unwrap();
    e.wait_ready(Duration::from_secs(30)).unwrap();
    let ads = e.listener_addr("ads").unwrap();
    let r = http::get(ads, "/imp?campaign_id=struct-42&crid=c9").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let delivered = poll(Duration::from_secs(20), Duration::from_millis(50), || {
        let s = e.stats().ok()?;
        (s.get("delivered") >= 1).then_some(s)
    });
    assert!(delivered.is_some(), "nothing delivered; log:\n{}", e.log());
    let records = backends
        .read_records_expecting(1, Duration::from_secs(20))
        .unwrap();
    let event = records
        .iter()
        .filter_map(|r| r.event.as_ref().ok())
        .find(|ev| {
            ev.query
                .iter()
                .any(|(k, v)| k == "campaign_id" && v == "struct-42")
        })
        .unwrap_or_else(|| panic!("no event of the request in {records:?}"));
    assert_eq!(
        (event.event_type.as_str(), event.path.as_str()),
        ("impression", "/imp")
    );
    assert!(event.query.contains(&("creative_id".into(), "c9".into())));
    assert!(!e.log().contains("invalid configuration"), "{}", e.log());
}

#[test]
fn a_fraction_in_an_integer_field_of_a_struct_is_refused_by_name() {
    let wasm = envoy::wasm_path().unwrap();
    let mut doc = json!({
        "cluster": "kafka_rest",
        "rules": [{"event_type": "impression", "topic": "ad-impressions", "path": {"prefix": "/imp"}}],
        "batch": {"max_events": 2.5}
    });
    let text = doc.to_string();
    for deployment in [Deployment::AccessLogger, Deployment::HttpFilter] {
        let dir = tempfile::tempdir().unwrap();
        let yaml = as_struct_configuration(&render(&wasm, &text, deployment, (1, 1)), &text, &doc);
        let verdict = envoy::try_start(&yaml, dir.path(), Duration::from_secs(30)).unwrap();
        assert!(
            verdict.exit.is_some_and(|s| !s.success()),
            "{deployment}: Envoy started:\n{}",
            verdict.log
        );
        assert!(
            verdict.log.contains(
                "invalid configuration: batch.max_events: invalid type: floating point `2.5`, expected usize"
            ),
            "{deployment}:\n{}",
            verdict.log
        );
    }
    // The same number whole is accepted.
    doc["batch"]["max_events"] = json!(2.0);
    let text = doc.to_string();
    let yaml = as_struct_configuration(
        &render(&wasm, &text, Deployment::AccessLogger, (1, 1)),
        &text,
        &doc,
    );
    let dir = tempfile::tempdir().unwrap();
    let verdict = envoy::try_start(&yaml, dir.path(), Duration::from_secs(30)).unwrap();
    assert!(verdict.exit.is_none(), "refused:\n{}", verdict.log);
}
