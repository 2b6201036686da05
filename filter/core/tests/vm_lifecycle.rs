//! The VM's lifecycle, natively: roots sharing workers, streams finding theirs, the final
//! flush and its deadline, reconfiguration in place, and the monotonic clock. The same `Vm`
//! runs in the `.wasm` (the wasm host's scenarios check the two agree).

#![cfg(test)]

use adtap_core::host::FakeHost;
use adtap_core::testkit::log_request;
use adtap_core::vm::{Clock, Vm};
use serde_json::{json, Value};

const T0: u64 = 1_700_000_000_000;

fn config(extra: Value) -> Vec<u8> {
    let mut v = json!({
        "cluster": "kafka_rest",
        "rules": [
            {"event_type": "impression", "topic": "imps", "path": {"prefix": "/imp"}},
            {"event_type": "bid", "topic": "imps", "method": "POST", "path": {"exact": "/bid"},
             "capture_body": true}
        ],
        "batch": {"max_events": 2, "max_age_ms": 60_000}
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v.to_string().into_bytes()
}

/// A VM (seed 1) whose root 1 runs [`config`] of `extra`.
fn started(extra: Value) -> (Vm, FakeHost) {
    let (mut vm, mut host) = (Vm::new(1), FakeHost::default());
    assert!(vm.on_configure(&mut host, 1, T0, &config(extra)));
    (vm, host)
}

fn balanced(host: &FakeHost) -> bool {
    let m = |n: &str| host.metric(n);
    m("adtap_captured")
        == m("adtap_delivered") + m("adtap_dropped") + m("adtap_in_flight") + m("adtap_buffered")
}

fn answer_ok(vm: &mut Vm, host: &mut FakeHost, now: u64) {
    let call = host.calls.remove(0);
    let n = call.request.body_str_records();
    let offsets: Vec<Value> = (0..n)
        .map(|i| json!({"partition": 0, "offset": i}))
        .collect();
    let body = json!({"offsets": offsets}).to_string().into_bytes();
    host.answer = (Some(200), body.clone());
    vm.on_http_call_response(host, now, call.token, 1, body.len());
}

/// The number of records in a v2 JSON body.
trait Records {
    fn body_str_records(&self) -> usize;
}
impl Records for adtap_core::encode::HttpRequest {
    fn body_str_records(&self) -> usize {
        let v: Value = serde_json::from_slice(&self.body).unwrap();
        v["records"].as_array().unwrap().len()
    }
}

#[test]
fn the_clock_moves_forward_by_wall_time_and_never_back() {
    let mut c = Clock::default();
    assert_eq!(c.advance(T0), T0);
    assert_eq!(c.advance(T0 + 500), T0 + 500);
    // The wall clock steps back an hour: time stands still, then moves on from there.
    assert_eq!(c.advance(T0 - 3_600_000), T0 + 500);
    assert_eq!(c.advance(T0 - 3_600_000 + 100), T0 + 600);
    // No time from the host: stand still.
    assert_eq!(c.advance(0), T0 + 600);
}

#[test]
fn roots_with_one_configuration_share_a_worker_and_its_batches() {
    let (mut vm, mut host) = started(json!({}));
    assert!(vm.on_configure(&mut host, 2, T0, &config(json!({}))));
    assert_eq!(vm.workers().count(), 1);
    // Root 1 logs as the access logger, a stream of the HTTP filter logs the bid.
    log_request(&mut vm, &mut host, 1, T0, "GET", "/imp?n=0");
    host.body = b"{}".to_vec();
    vm.on_request_body(&mut host, 10, T0, 2);
    log_request(&mut vm, &mut host, 10, T0, "POST", "/bid");
    vm.on_tick(&mut host, 1, T0 + 100);
    assert_eq!(host.calls.len(), 1, "one batch of both");
    assert_eq!(host.calls[0].request.body_str_records(), 2);
    assert_eq!(host.metric("adtap_captured"), 2);
    assert!(balanced(&host));
}

#[test]
fn streams_of_two_configurations_go_by_plugin_name() {
    let (mut vm, mut host) = (Vm::new(1), FakeHost::default());
    host.plugin_name = Some("a".into());
    assert!(vm.on_configure(&mut host, 1, T0, &config(json!({}))));
    host.plugin_name = Some("b".into());
    assert!(vm.on_configure(
        &mut host,
        2,
        T0,
        &config(json!({"batch": {"max_events": 3}}))
    ));
    assert_eq!(vm.workers().count(), 2);
    host.plugin_name = Some("b".into());
    log_request(&mut vm, &mut host, 10, T0, "GET", "/imp");
    assert_eq!(vm.worker_of(2).unwrap().stats().captured, 1);
    assert_eq!(vm.worker_of(1).unwrap().stats().captured, 0);
}

#[test]
fn the_last_root_done_drains_its_worker_then_calls_done() {
    let (mut vm, mut host) = started(json!({}));
    vm.on_configure(&mut host, 2, T0, &config(json!({})));
    log_request(&mut vm, &mut host, 10, T0, "GET", "/imp");
    // One of two roots goes: nothing to wait for, the worker keeps capturing.
    assert!(vm.on_done(&mut host, 2, T0));
    assert!(host.calls.is_empty());
    // The last one goes: its buffer leaves at once and it waits for the answer.
    assert!(!vm.on_done(&mut host, 1, T0));
    assert_eq!(host.calls.len(), 1);
    assert_eq!(host.done_calls, 0);
    answer_ok(&mut vm, &mut host, T0 + 5);
    assert_eq!(host.done_calls, 1);
    assert_eq!(host.metric("adtap_delivered"), 1);
    assert_eq!(vm.workers().count(), 0, "a finished worker is retired");
    assert!(balanced(&host));
}

#[test]
fn at_the_deadline_what_is_held_is_dropped_for_shutdown() {
    let (mut vm, mut host) = started(json!({"shutdown_deadline_ms": 1000}));
    log_request(&mut vm, &mut host, 10, T0, "GET", "/imp");
    assert!(!vm.on_done(&mut host, 1, T0));
    vm.on_tick(&mut host, 1, T0 + 999);
    assert_eq!(host.done_calls, 0);
    vm.on_tick(&mut host, 1, T0 + 1000);
    assert_eq!(host.done_calls, 1);
    assert_eq!(host.metric("adtap_dropped_shutdown"), 1);
    // The late answer finds nothing and counts nothing.
    answer_ok(&mut vm, &mut host, T0 + 2000);
    assert_eq!(host.metric("adtap_delivered"), 0);
    assert!(balanced(&host));
}

#[test]
fn reconfiguring_in_place_counts_what_the_old_worker_held() {
    let (mut vm, mut host) = started(json!({}));
    log_request(&mut vm, &mut host, 10, T0, "GET", "/imp");
    // The same configuration: nothing changes.
    assert!(vm.on_configure(&mut host, 1, T0, &config(json!({}))));
    assert_eq!(vm.worker_of(1).unwrap().stats().buffered, 1);
    assert!(vm.on_configure(&mut host, 1, T0, &config(json!({"tick_ms": 50}))));
    assert_eq!(host.metric("adtap_dropped_shutdown"), 1);
    log_request(&mut vm, &mut host, 11, T0, "GET", "/imp");
    vm.on_tick(&mut host, 1, T0);
    assert_eq!(host.metric("adtap_captured"), 2, "the counters carry on");
    assert!(balanced(&host));
    // A refused configuration keeps the running one.
    assert!(!vm.on_configure(&mut host, 1, T0, b"{}"));
    assert!(host
        .logs
        .iter()
        .any(|(_, l)| l.contains("invalid configuration")));
    assert!(vm.worker_of(1).is_some());
}

#[test]
fn bodies_are_collected_only_where_a_rule_wants_them() {
    let no_bodies = json!({"rules": [{"event_type": "i", "topic": "t", "path": {"prefix": "/"}}]});
    let (mut vm, mut host) = started(no_bodies);
    host.body = b"abc".to_vec();
    vm.on_request_body(&mut host, 10, T0, 3);
    assert_eq!(
        vm.open_streams(),
        0,
        "no rule captures bodies: nothing kept"
    );
    log_request(&mut vm, &mut host, 10, T0, "POST", "/x");
    assert_eq!(vm.worker_of(1).unwrap().stats().captured, 1);

    let (mut vm, mut host) = started(json!({}));
    host.body = b"abc".to_vec();
    vm.on_request_body(&mut host, 10, T0, 3);
    assert_eq!(vm.open_streams(), 1);
    log_request(&mut vm, &mut host, 10, T0, "POST", "/bid");
    assert_eq!(
        vm.open_streams(),
        0,
        "the log callback ends the stream's state"
    );
}
