//! Plain Envoy loading adtap over HTTP: `envoy/adtap-remote-example.yaml`
//! (`vm_config.code.remote { http_uri, sha256 }`) started in the real Envoy, its clusters pointed
//! at a local HTTP server serving `dist/adtap.wasm`, the local REST proxy (and broker) and the
//! sample ad server. With the module's sha256 it loads and delivers captured events to Kafka;
//! with a wrong one Envoy refuses the module.
#![cfg(test)]

mod support;

use adtap_stack::envoy::{self, Envoy};
use adtap_stack::http;
use serde_json::{json, Value};
use std::time::Duration;
use support::{point_cluster, serial, sha256_hex, yaml_docs_of, FileServer, Parts};

const EXAMPLE: &str = "envoy/adtap-remote-example.yaml";

/// The example with `sha256`, every address on 127.0.0.1: admin and listener on port 0, the
/// clusters at the parts and the file server, the URI at the file server.
fn example(parts: &Parts, store: &FileServer, sha256: &str) -> String {
    let text = std::fs::read_to_string(adtap_stack::repo_root().join(EXAMPLE)).unwrap();
    assert!(
        text.contains("@ADTAP_SHA256@"),
        "the example lost its placeholder"
    );
    let mut b = yaml_docs_of(&text.replace("@ADTAP_SHA256@", sha256)).remove(0);
    b["admin"]["address"] = json!({"socket_address": {"address": "127.0.0.1", "port_value": 0}});
    b["static_resources"]["listeners"][0]["address"] =
        json!({"socket_address": {"address": "127.0.0.1", "port_value": 0}});
    point_cluster(&mut b, "ad_server", parts.ad_server.addr());
    point_cluster(&mut b, "kafka_rest", parts.rest.addr());
    point_cluster(&mut b, "wasm_store", store.addr());
    let remote = remote_mut(&mut b);
    let uri = remote["http_uri"]["uri"].as_str().unwrap().to_string();
    let path = uri.splitn(4, '/').nth(3).unwrap().to_string();
    remote["http_uri"]["uri"] = json!(format!("http://{}/{path}", store.addr()));
    serde_json::to_string_pretty(&b).unwrap()
}

/// The adtap HTTP filter's `vm_config.code.remote`.
fn remote_mut(b: &mut Value) -> &mut Value {
    let hcm = &mut b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0];
    let filters = hcm["typed_config"]["http_filters"].as_array_mut().unwrap();
    let wasm = filters
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .unwrap();
    &mut wasm["typed_config"]["config"]["vm_config"]["code"]["remote"]
}

#[test]
fn the_module_loads_over_http_with_its_sha256_and_delivers() {
    let _guard = serial();
    let wasm = std::fs::read(envoy::wasm_path().unwrap()).unwrap();
    let parts = Parts::start();
    let store = FileServer::start(wasm.clone());
    let yaml = example(&parts, &store, &sha256_hex(&wasm));
    let mut e = Envoy::start_in(&yaml, parts.dir(), 2, "info").unwrap();
    e.wait_ready(Duration::from_secs(30)).unwrap();
    let wasm_stats = e.envoy_stats("^wasm\\.").unwrap();
    assert_eq!(
        wasm_stats.get("wasm.remote_load_fetch_successes"),
        Some(&1),
        "{wasm_stats:?}"
    );
    assert_eq!(store.hits(), 1, "one fetch");

    let ads = e.listener_addr("ads").unwrap();
    let n = 20;
    for i in 0..n {
        let r = http::get(ads, &format!("/imp?campaign_id=remote-{i}")).unwrap();
        assert!(r.status < 500, "ad request answered {}", r.status);
    }
    let mut last = None;
    let settled =
        adtap_harness::process::poll(Duration::from_secs(15), Duration::from_millis(50), || {
            let s = e.stats().ok()?;
            let done = s.captured() == n && s.delivered() == n && s.settled();
            last = Some(s);
            done.then_some(())
        });
    assert!(
        settled.is_some(),
        "not delivered; stats:\n{}",
        last.unwrap_or_default()
    );

    let records = parts.records(n as usize, Duration::from_secs(10));
    let mut campaigns: Vec<String> = records
        .iter()
        .filter(|r| r.topic == "ad-impressions")
        .map(|r| {
            let ev = r.event.as_ref().unwrap();
            ev.query
                .iter()
                .find(|(k, _)| k == "campaign_id")
                .map(|(_, v)| v.clone())
                .unwrap()
        })
        .collect();
    campaigns.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("remote-{i}")).collect();
    want.sort();
    assert_eq!(campaigns, want);
    assert_eq!(records.len(), n as usize);
    e.kill();
}

/// What Envoy 1.40 does with a module whose bytes do not match `sha256`: it fetches it (and
/// again per retry), counts one failed remote load, logs that the plugin failed to load, and
/// starts without adtap: under `FAIL_OPEN` the ad traffic passes, uncaptured (no adtap stats).
#[test]
fn a_wrong_sha256_is_refused() {
    let _guard = serial();
    let wasm = std::fs::read(envoy::wasm_path().unwrap()).unwrap();
    let parts = Parts::start();
    let store = FileServer::start(wasm);
    let yaml = example(&parts, &store, &sha256_hex(b"not adtap"));
    // One retry instead of the example's five: the same verdict, sooner.
    let mut b: Value = serde_json::from_str(&yaml).unwrap();
    remote_mut(&mut b)["retry_policy"] = json!({"num_retries": 1});
    let yaml = serde_json::to_string(&b).unwrap();
    let mut e = Envoy::start_in(&yaml, parts.dir(), 1, "info").unwrap();
    e.wait_ready(Duration::from_secs(60)).unwrap();

    let wasm_stats = e.envoy_stats("^wasm\\.").unwrap();
    assert_eq!(
        wasm_stats.get("wasm.remote_load_fetch_failures"),
        Some(&1),
        "{wasm_stats:?}"
    );
    assert_eq!(
        wasm_stats.get("wasm.remote_load_fetch_successes"),
        Some(&0),
        "{wasm_stats:?}"
    );
    assert_eq!(store.hits(), 2, "the fetch and its one retry");
    let log = e.log();
    assert!(
        log.contains("Retry limit exceeded for fetching data from remote data source"),
        "{log}"
    );
    assert!(log.contains("Plugin adtap failed to load"), "{log}");
    let ads = e.listener_addr("ads").unwrap();
    let r = http::get(ads, "/imp?campaign_id=x").unwrap();
    assert_eq!(r.status, 200, "FAIL_OPEN: the ad request passes");
    assert!(
        e.stats().unwrap().values.is_empty(),
        "no VM, no adtap stats"
    );
    e.kill();
}
