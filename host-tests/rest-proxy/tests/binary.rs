//! The binary as a harness uses it: `--listen 127.0.0.1:0` prints the bound address as the first
//! stdout line, it serves, and SIGTERM stops it cleanly. No broker needed for these endpoints.
#![cfg(test)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hyper::StatusCode;

/// The proxy process, killed and reaped if the test fails before stopping it.
struct Proxy(std::process::Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_its_address_serves_and_stops_on_sigterm() {
    let unused = adtap_harness::paths::free_port();
    let mut proxy = Proxy(
        Command::new(env!("CARGO_BIN_EXE_adtap-rest-proxy"))
            .args(["--listen", "127.0.0.1:0", "--cluster-id", "c-test"])
            .args(["--bootstrap", &format!("127.0.0.1:{unused}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut proxy.0;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
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

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit}");
}
