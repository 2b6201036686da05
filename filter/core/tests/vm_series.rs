//! Each VM's own metric series (`adtap_vm.<id>.*`), natively: what a live VM publishes on
//! each tick, and what a dead one leaves behind (its series simply stop: the same numbers an
//! Envoy shows for a trapped VM, whose callbacks never run again).

#![cfg(test)]

use adtap_core::host::FakeHost;
use adtap_core::metrics::vm_series_name;
use adtap_core::testkit::log_request;
use adtap_core::vm::Vm;
use serde_json::json;

const T0: u64 = 1_700_000_000_000;

fn config() -> Vec<u8> {
    json!({
        "cluster": "kafka_rest",
        "rules": [{"event_type": "impression", "topic": "imps", "path": {"prefix": "/imp"}}],
        "batch": {"max_events": 2, "max_age_ms": 60_000}
    })
    .to_string()
    .into_bytes()
}

fn series(host: &FakeHost, vm: &Vm, name: &str) -> i64 {
    host.metric(&vm_series_name(vm.id(), name))
}

#[test]
fn the_id_is_eight_hex_digits_drawn_from_the_seed() {
    let (a, b) = (Vm::new(1), Vm::new(2));
    assert_eq!(a.id().len(), 8);
    assert!(a.id().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a.id(), b.id());
    assert_eq!(a.id(), Vm::new(1).id());
}

#[test]
fn series_appear_on_the_first_tick_and_follow_the_vm() {
    let (mut vm, mut host) = (Vm::new(9), FakeHost::default());
    assert!(vm.on_configure(&mut host, 1, T0, &config()));
    // Configured but never ticked (Envoy has such VMs): no series that would look dead.
    assert!(!host.metrics.iter().any(|(n, _)| n.starts_with("adtap_vm.")));

    log_request(&mut vm, &mut host, 1, T0, "GET", "/imp?n=1");
    vm.on_tick(&mut host, 1, T0 + 100);
    assert_eq!(series(&host, &vm, "ticks"), 1);
    assert_eq!(series(&host, &vm, "captured"), 1);
    assert_eq!(series(&host, &vm, "buffered"), 1);
    assert!(series(&host, &vm, "held_bytes") > 0);

    // The second event fills the batch: it leaves on the next tick (in flight).
    log_request(&mut vm, &mut host, 1, T0 + 150, "GET", "/imp?n=1");
    vm.on_tick(&mut host, 1, T0 + 200);
    assert_eq!(series(&host, &vm, "ticks"), 2);
    assert_eq!(series(&host, &vm, "captured"), 2);
    assert_eq!(series(&host, &vm, "buffered"), 0, "a gauge set, not summed");
    assert_eq!(series(&host, &vm, "in_flight"), 2);
    assert_eq!(
        series(&host, &vm, "held_bytes"),
        host.metric("adtap_held_bytes")
    );
    // The VM's own series and the totals agree for a lone VM.
    for n in ["captured", "delivered", "dropped", "in_flight", "buffered"] {
        assert_eq!(
            series(&host, &vm, n),
            host.metric(&format!("adtap_{n}")),
            "{n}"
        );
    }
}

#[test]
fn two_vms_on_one_host_keep_separate_series_and_a_dead_ones_stop() {
    // One FakeHost plays Envoy's stat store for two VMs (two workers).
    let mut host = FakeHost::default();
    let (mut live, mut dead) = (Vm::new(1), Vm::new(2));
    assert!(live.on_configure(&mut host, 1, T0, &config()));
    assert!(dead.on_configure(&mut host, 1, T0, &config()));
    log_request(&mut live, &mut host, 1, T0, "GET", "/imp?n=1");
    log_request(&mut dead, &mut host, 1, T0, "GET", "/imp?n=1");
    live.on_tick(&mut host, 1, T0 + 100);
    dead.on_tick(&mut host, 1, T0 + 100);
    // `dead` traps here: it is never called again. `live` ticks on and ships its batch.
    log_request(&mut live, &mut host, 1, T0 + 150, "GET", "/imp?n=1");
    for i in 2..10 {
        live.on_tick(&mut host, 1, T0 + 100 * i);
    }
    assert_eq!(series(&host, &live, "ticks"), 9);
    assert_eq!(series(&host, &dead, "ticks"), 1, "frozen");
    assert_eq!(
        series(&host, &dead, "buffered"),
        1,
        "what it held when it died"
    );
    assert_eq!(series(&host, &live, "buffered"), 0);
    assert_eq!(series(&host, &live, "in_flight"), 2);
    // The totals hold both: the dead VM's share is exactly its frozen series.
    assert_eq!(host.metric("adtap_captured"), 3);
    assert_eq!(
        host.metric("adtap_buffered"),
        series(&host, &dead, "buffered") + series(&host, &live, "buffered")
    );
}

/// Each topic's share of the accounting as its own series, `adtap_topic.<topic>.*`: counted
/// where the event's fate is decided, published on ticks, balancing per topic once settled,
/// and adding up to the totals.
#[test]
fn topic_series_count_each_topics_events() {
    let (mut vm, mut host) = (Vm::new(5), FakeHost::default());
    let cfg = json!({
        "cluster": "kafka_rest",
        "rules": [
            {"event_type": "impression", "topic": "imps", "path": {"prefix": "/imp"}},
            {"event_type": "click", "topic": "clicks", "path": {"prefix": "/click"}}
        ],
        "batch": {"max_events": 2, "max_age_ms": 60_000},
        "buffer": {"max_events": 3, "max_bytes": 8_388_608}
    });
    assert!(vm.on_configure(&mut host, 1, T0, cfg.to_string().as_bytes()));
    log_request(&mut vm, &mut host, 1, T0, "GET", "/imp?n=1");
    log_request(&mut vm, &mut host, 1, T0, "GET", "/imp?n=2");
    log_request(&mut vm, &mut host, 1, T0, "GET", "/click?n=3");
    log_request(&mut vm, &mut host, 1, T0, "GET", "/click?n=4"); // the buffer holds 3: dropped, counted under clicks
    vm.on_tick(&mut host, 1, T0 + 100); // the full imps batch leaves
    let call = host.calls.remove(0);
    let body = br#"{"offsets":[{"partition":0,"offset":1},{"partition":0,"offset":2}]}"#;
    host.answer = (Some(200), body.to_vec());
    vm.on_http_call_response(&mut host, T0 + 110, call.token, 1, body.len());
    vm.on_tick(&mut host, 1, T0 + 200);
    let t = |topic: &str, n: &str| host.metric(&format!("adtap_topic.{topic}.{n}"));
    let counts = |topic: &str| ["captured", "delivered", "dropped"].map(|n| t(topic, n));
    assert_eq!(counts("imps"), [2, 2, 0]);
    assert_eq!(counts("clicks"), [2, 0, 1], "one click still buffered");
    for n in ["captured", "delivered", "dropped"] {
        assert_eq!(
            t("imps", n) + t("clicks", n),
            host.metric(&format!("adtap_{n}")),
            "{n}"
        );
    }
}
