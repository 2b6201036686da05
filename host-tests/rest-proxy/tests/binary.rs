//! The binary as a harness uses it: `--listen 127.0.0.1:0` prints the bound address as the first
//! stdout line, it serves, and SIGTERM stops it cleanly. No broker needed for these endpoints.
#![cfg(test)]

mod common;

use std::process::Command;
use std::time::Duration;

use adtap_harness::process::{Child, SIGTERM};
use common::*;
use hyper::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_its_address_serves_and_stops_on_sigterm() {
    let unused = adtap_harness::paths::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adtap-rest-proxy"));
    cmd.args(["--listen", "127.0.0.1:0", "--cluster-id", "c-test"])
        .args(["--bootstrap", &format!("127.0.0.1:{unused}")]);
    // The harness's child: killed and reaped if the test fails before stopping it.
    let log = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rest-proxy-binary.log");
    let (mut proxy, line) =
        Child::spawn_announcing("adtap-rest-proxy", cmd, &log, Duration::from_secs(20)).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );

    let c = h1();
    let r = get(&c, &format!("http://{addr}/health")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(&c, &format!("http://{addr}/v3/clusters")).await;
    assert_eq!(r.json()["data"][0]["cluster_id"], "c-test");
    let r = get(&c, &format!("http://{addr}/v3/clusters/other")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["message"], "Cluster other cannot be found.");
    drop(c);

    let exit = proxy
        .signal_and_wait(SIGTERM, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("did not exit after SIGTERM: {e:#}"));
    assert!(exit.success(), "{exit}");
}
