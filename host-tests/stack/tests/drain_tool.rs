//! `adtap-drain` (filter/drain) as a SIGTERM wrapper around the real Envoy, the way a container
//! without a shell runs it: `adtap-drain --admin … --exec envoy …`. Events held in the workers'
//! buffers when the container is told to stop (SIGTERM to the wrapper) all reach Kafka before
//! Envoy exits; with the REST proxy down the tool reports what remains and exits 1 at its
//! timeout; an unreachable admin is exit 3. The stack's own lossless stop (`Stack::
//! graceful_stop_envoy`, e2e.rs scenario 4) runs the same binary with `--then-kill`.
#![cfg(test)]

mod support;

use adtap_core::config::{Dialect, ValueFormat};
use adtap_harness::config::merge;
use adtap_harness::paths::free_port;
use adtap_harness::process::{poll, Child};
use adtap_stack::adtap_config;
use adtap_stack::envoy;
use adtap_stack::traffic;
use adtap_stack::{http, now_ms, AdtapStats, BackendOptions, Backends, Deployment};
use serde_json::json;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{assert_exactly_once, render, serial};

fn stats(admin: SocketAddr) -> Option<AdtapStats> {
    let r = http::get(admin, "/stats?filter=adtap_").ok()?;
    (r.status == 200).then(|| AdtapStats::parse(&r.text()))
}

fn run_tool(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(envoy::drain_tool().unwrap())
        .args(args)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

#[test]
fn as_a_sigterm_wrapper_it_delivers_what_the_workers_hold_before_envoy_exits() {
    let _guard = serial();
    let mut backends = Backends::start(BackendOptions::default()).unwrap();
    let deployment = Deployment::Both;
    let mut cfg = adtap_config::for_stack(Dialect::ConfluentV2, ValueFormat::Json, deployment);
    let max_age_ms = 2000;
    merge(
        &mut cfg,
        &json!({"batch": {"max_age_ms": max_age_ms, "max_events": 10000}}),
    );
    let parsed = adtap_core::Config::parse(cfg.to_string().as_bytes()).unwrap();
    // The wrapper is told the admin address up front: fixed free ports instead of port 0.
    let (admin_port, ad_port) = (free_port(), free_port());
    let ports = (
        backends.ad_server().addr().port(),
        backends.rest_addr().port(),
    );
    let rendered = render(
        &envoy::wasm_path().unwrap(),
        &cfg.to_string(),
        deployment,
        ports,
    );
    let mut doc: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    for (pointer, port) in [
        ("/admin/address/socket_address/port_value", admin_port),
        (
            "/static_resources/listeners/0/address/socket_address/port_value",
            ad_port,
        ),
    ] {
        *doc.pointer_mut(pointer).unwrap() = port.into();
    }
    let yaml = doc.to_string();
    let cfg_path = backends.dir().join("envoy.yaml");
    std::fs::write(&cfg_path, yaml).unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    let ads: SocketAddr = format!("127.0.0.1:{ad_port}").parse().unwrap();

    let mut cmd = Command::new(envoy::drain_tool().unwrap());
    cmd.arg("--admin")
        .arg(admin.to_string())
        .arg("--timeout")
        .arg("30")
        .arg("--poll-ms")
        .arg("50")
        .arg("--exec")
        .arg(envoy::binary().unwrap())
        .arg("-c")
        .arg(&cfg_path)
        .args([
            "--concurrency",
            "2",
            "--disable-hot-restart",
            "--log-level",
            "warn",
        ]);
    let log = backends.dir().join("wrapper.log");
    let mut wrapper = Child::spawn("adtap-drain --exec envoy", cmd, &log).unwrap();
    let ready = poll(Duration::from_secs(30), Duration::from_millis(50), || {
        (http::get(admin, "/ready").ok()?.status == 200).then_some(())
    });
    assert!(ready.is_some(), "Envoy not ready; log:\n{}", wrapper.log());

    let reqs = traffic::generate(200, 43);
    let expected: Vec<_> = reqs
        .iter()
        .filter(|r| deployment.captures_kind(&parsed, r.kind))
        .cloned()
        .collect();
    let want = expected.len() as u64;
    let t0 = now_ms();
    let outcomes = backends.send(ads, &reqs, 8).unwrap();
    assert!(
        outcomes.iter().all(|o| o.status.is_ok()),
        "an ad request failed"
    );
    let held = poll(Duration::from_secs(10), Duration::from_millis(50), || {
        let s = stats(admin)?;
        (s.captured() == want && s.buffered() == want).then_some(s)
    });
    assert!(held.is_some(), "not all buffered: {:?}", stats(admin));

    // The REST proxy down: what is held cannot leave; the tool says so at its timeout, exit 1.
    backends.stop_rest_proxy().unwrap();
    let (code, report) = run_tool(&[
        "--admin",
        &admin.to_string(),
        "--no-drain",
        "--timeout",
        "0.5",
    ]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("not idle") && report.contains("events buffered"),
        "{report}"
    );
    backends.restart_rest_proxy().unwrap();

    // The container's stop: SIGTERM to the wrapper (PID 1 in a pod).
    let stopping = Instant::now();
    let status = wrapper
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(60))
        .unwrap();
    let stop_ms = stopping.elapsed().as_millis();
    let t1 = now_ms();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        status.success(),
        "wrapper exited {status}; log:\n{log_text}"
    );
    assert!(log_text.contains("idle after"), "{log_text}");
    assert_exactly_once(&backends, &expected, (t0, t1));
    eprintln!(
        "adtap-drain --exec: {want} held events delivered; SIGTERM to exit {stop_ms} ms \
         (batch.max_age_ms {max_age_ms}, after a REST proxy outage and restart)"
    );

    // Envoy is gone: the admin fails, exit 3.
    let (code, report) = run_tool(&["--admin", &admin.to_string(), "--timeout", "0.2"]);
    assert_eq!(code, Some(3), "{report}");
}
