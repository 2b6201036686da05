//! Plain Envoy loading adtap over HTTP: `envoy/adtap-remote-example.yaml`
//! (`vm_config.code.remote { http_uri, sha256 }`) started in the real Envoy, its clusters pointed
//! at a local HTTP server serving `dist/adtap.wasm`, the local REST proxy (and broker) and the
//! sample ad server. With the module's sha256 it loads and delivers captured events to Kafka;
//! with a wrong one Envoy refuses the module.
#![cfg(test)]

mod support;

use adtap_stack::envoy::{self, Envoy};
use adtap_stack::{http, BackendOptions, Backends};
use serde_json::{json, Value};
use std::time::Duration;
use support::{point_cluster, serial, sha256_hex, yaml_docs_of, FileServer};

const EXAMPLE: &str = "envoy/adtap-remote-example.yaml";

/// Envoy on the example, in front of the backends and a server of `dist/adtap.wasm`; dropped
/// in this order (Envoy first).
struct Remote {
    envoy: Envoy,
    store: FileServer,
    backends: Backends,
}

/// Starts the backends, the file server and Envoy (`concurrency` workers, ready within
/// `ready`) on the example whose `sha256` is that of `hashed` (the module's own when `None`),
/// with every address on 127.0.0.1: admin and listener on port 0, the clusters at the backends
/// and the file server, the URI at the file server; `edit` changes it last.
fn start(
    hashed: Option<&[u8]>,
    concurrency: u32,
    ready: Duration,
    edit: impl FnOnce(&mut Value),
) -> Remote {
    let wasm = std::fs::read(envoy::wasm_path().unwrap()).unwrap();
    let backends = Backends::start(BackendOptions::default()).unwrap();
    let sha256 = sha256_hex(hashed.unwrap_or(&wasm));
    let store = FileServer::start(wasm);
    let text = std::fs::read_to_string(adtap_stack::repo_root().join(EXAMPLE)).unwrap();
    assert!(
        text.contains("@ADTAP_SHA256@"),
        "the example lost its placeholder"
    );
    let mut b = yaml_docs_of(&text.replace("@ADTAP_SHA256@", &sha256)).remove(0);
    b["admin"]["address"] = json!({"socket_address": {"address": "127.0.0.1", "port_value": 0}});
    b["static_resources"]["listeners"][0]["address"] =
        json!({"socket_address": {"address": "127.0.0.1", "port_value": 0}});
    point_cluster(&mut b, "ad_server", backends.ad_server().addr());
    point_cluster(&mut b, "kafka_rest", backends.rest_addr());
    point_cluster(&mut b, "wasm_store", store.addr());
    let remote = remote_mut(&mut b);
    let uri = remote["http_uri"]["uri"].as_str().unwrap().to_string();
    let path = uri.splitn(4, '/').nth(3).unwrap().to_string();
    remote["http_uri"]["uri"] = json!(format!("http://{}/{path}", store.addr()));
    edit(&mut b);
    let yaml = serde_json::to_string_pretty(&b).unwrap();
    let mut envoy = Envoy::start_in(&yaml, backends.dir(), concurrency, "info").unwrap();
    envoy.wait_ready(ready).unwrap();
    Remote {
        envoy,
        store,
        backends,
    }
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
    let run = start(None, 2, Duration::from_secs(30), |_| {});
    let e = &run.envoy;
    let wasm_stats = e.envoy_stats("^wasm\\.").unwrap();
    assert_eq!(
        wasm_stats.get("wasm.remote_load_fetch_successes"),
        Some(&1),
        "{wasm_stats:?}"
    );
    assert_eq!(run.store.hits(), 1, "one fetch");

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

    let records = run
        .backends
        .read_records_expecting(n as usize, Duration::from_secs(10))
        .unwrap();
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
}

/// What Envoy 1.40 does with a module whose bytes do not match `sha256`: it fetches it (and
/// again per retry), counts one failed remote load, logs that the plugin failed to load, and
/// starts without adtap: under `FAIL_OPEN` the ad traffic passes, uncaptured (no adtap stats).
#[test]
fn a_wrong_sha256_is_refused() {
    let _guard = serial();
    // One retry instead of the example's five: the same verdict, sooner.
    let run = start(Some(b"not adtap"), 1, Duration::from_secs(60), |b| {
        remote_mut(b)["retry_policy"] = json!({"num_retries": 1});
    });
    let e = &run.envoy;

    let wasm_stats = e.envoy_stats("^wasm\\.").unwrap();
    let fetches = |outcome: &str| wasm_stats.get(&format!("wasm.remote_load_fetch_{outcome}"));
    let (failures, successes) = (fetches("failures"), fetches("successes"));
    assert_eq!(
        (failures, successes),
        (Some(&1), Some(&0)),
        "{wasm_stats:?}"
    );
    assert_eq!(run.store.hits(), 2, "the fetch and its one retry");
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
}
