//! A dead VM in the real Envoy, and adtap's metrics as Prometheus reads them.
//!
//! A test-only build of the filter (cargo feature `trap-on-demand` of adtap-filter, built here
//! into its own target directory) traps in `proxy_on_log` when a request carries
//! `x-adtap-test-trap`. Envoy runs 2 workers; the trap kills the VM of whichever worker took
//! that request. What is shown and checked, under `FAIL_OPEN` and under `FAIL_RELOAD`:
//! - before the trap, `/stats/prometheus` against the events sent: the totals, the drop
//!   reasons as `adtap_dropped{reason="…"}`, each topic's share as
//!   `adtap_topic_*{topic="…"}`, and one `adtap_vm_*{vm="…"}` set per VM whose
//!   captures add up to `adtap_captured`;
//! - after it, the dead VM's series frozen (its ticks stop, its gauges keep what it held),
//!   the live VMs' accounting balancing on their own series, the totals still the sum of every
//!   VM's; under `FAIL_RELOAD` a new VM with a new id, and Envoy's `vm_reload_success`;
//! - adtap-drain then calls Envoy idle although the totals still count the dead VM's events.
//!
//! Also: the shipped `dist/adtap.wasm` has no trap path (the header name is nowhere in it).
#![cfg(test)]

use adtap_stack::stats::{parse_prometheus, vms_balance, PromSample, VmSeries};
use adtap_stack::traffic::{self, AdRequest, Kind, Prng};
use adtap_stack::{cache_dir, repo_root, AdtapStats, Stack, StackOptions};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The header the test-only build traps on (filter/wasm/src/abi.rs, `TEST_TRAP_HEADER`).
const TRAP_HEADER: &str = "x-adtap-test-trap";

/// The drop reasons, as the `reason` label shows them.
const REASONS: [&str; 6] = [
    "buffer_full",
    "retry_exhausted",
    "rejected",
    "encode",
    "too_large",
    "shutdown",
];

/// Builds the `trap-on-demand` module once, into its own target directory (never dist/).
fn trap_module() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = cache_dir().join("target-trap");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(repo_root())
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "--target",
                    "wasm32-wasip1",
                    "-p",
                    "adtap-filter",
                    "--features",
                    "trap-on-demand",
                    "--target-dir",
                ])
                .arg(&target)
                .env_remove("CARGO_TARGET_DIR")
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the trap-on-demand module");
            target.join("wasm32-wasip1/release/adtap_filter.wasm")
        })
        .clone()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_shipped_module_has_no_trap_path() {
    let shipped = std::fs::read(adtap_stack::envoy::wasm_path().expect("dist/adtap.wasm"))
        .expect("reading the shipped module");
    let test_build = std::fs::read(trap_module()).expect("reading the trap build");
    // The marker is real: the test build holds the header name, the shipped one does not.
    assert!(contains(&test_build, TRAP_HEADER.as_bytes()));
    assert!(
        !contains(&shipped, TRAP_HEADER.as_bytes()),
        "dist/adtap.wasm contains the test-only trap path"
    );
}

fn start(policy: &str) -> Stack {
    Stack::start(StackOptions {
        wasm: Some(trap_module()),
        failure_policy: Some(policy.to_string()),
        concurrency: 2,
        // A small buffer: the outage below overflows it, so `buffer_full` has a count.
        overrides: json!({"buffer": {"max_events": 40}, "batch": {"max_events": 10}}),
        ..StackOptions::default()
    })
    .expect("stack starts")
}

/// `/stats/prometheus`, adtap's lines only, as text and parsed.
fn prometheus(stack: &Stack) -> (String, Vec<PromSample>) {
    let r = stack
        .envoy()
        .unwrap()
        .admin_get("/stats/prometheus")
        .unwrap();
    assert_eq!(r.status, 200);
    let text: String = r
        .text()
        .lines()
        .filter(|l| l.contains("adtap_"))
        .map(|l| format!("{l}\n"))
        .collect();
    let samples = parse_prometheus(&text);
    (text, samples)
}

fn sample(samples: &[PromSample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Polls until every VM's ticks have advanced (each is alive), and returns the stats.
fn all_ticking(stack: &Stack) -> AdtapStats {
    let first = stack.stats().unwrap().vms();
    stack
        .wait_stats("every VM ticking", Duration::from_secs(10), |s| {
            let now = s.vms();
            !now.is_empty()
                && now.iter().all(|(id, v)| {
                    first
                        .get(id)
                        .is_some_and(|f| v.get("ticks") > f.get("ticks"))
                })
        })
        .unwrap()
}

/// Polls until the VMs whose ticks stopped are exactly one, seen unchanged for 1 s while the
/// others tick on; returns its id and the stats.
fn one_dead(stack: &Stack, known: &BTreeSet<String>) -> (String, AdtapStats) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen: BTreeMap<String, (u64, Instant)> = BTreeMap::new();
    loop {
        let s = stack.stats().unwrap();
        let now = Instant::now();
        for (id, v) in s.vms() {
            // A VM's clock restarts whenever its ticks change.
            let t = v.get("ticks").copied().unwrap_or(0);
            if seen.get(&id).map(|(last, _)| *last) != Some(t) {
                seen.insert(id, (t, now));
            }
        }
        let stalled: Vec<&String> = seen
            .iter()
            .filter(|(id, (_, since))| {
                known.contains(*id) && now.duration_since(*since) >= Duration::from_secs(1)
            })
            .map(|(id, _)| id)
            .collect();
        if stalled.len() == 1 {
            return (stalled[0].clone(), s);
        }
        assert!(
            Instant::now() < deadline,
            "no single dead VM; last stats:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn trap_request() -> AdRequest {
    let mut req = traffic::one(Kind::Impression, 0, 4242, &mut Prng::new(4242));
    req.request_id = "trap-request".into();
    req.private_headers.push((TRAP_HEADER.into(), "1".into()));
    req
}

fn table(title: &str, s: &AdtapStats, dead: Option<&str>) {
    println!("--- {title}");
    println!(
        "  totals: captured {} delivered {} dropped {} in_flight {} buffered {} held_bytes {}",
        s.captured(),
        s.delivered(),
        s.dropped(),
        s.in_flight(),
        s.buffered(),
        s.get("held_bytes")
    );
    for (id, v) in s.vms() {
        let tag = if Some(id.as_str()) == dead {
            " (dead)"
        } else {
            ""
        };
        println!("  vm {id}{tag}: {v:?}");
    }
}

/// The whole scenario under `policy`.
fn dead_vm(policy: &str) {
    let mut stack = start(policy);

    // 1. Traffic through an outage (the buffer overflows: buffer_full drops), then delivery.
    stack.stop_rest_proxy().unwrap();
    let reqs = traffic::generate(300, 71);
    let want = stack.expected(&reqs).len() as u64;
    stack.send(&reqs, 8).unwrap();
    stack
        .wait_stats("every event captured", Duration::from_secs(20), |s| {
            s.captured() == want && s.invariant_holds()
        })
        .unwrap();
    stack.restart_rest_proxy().unwrap();
    let settled = stack.wait_settled(want, Duration::from_secs(30)).unwrap();
    let s = all_ticking(&stack);
    assert_eq!(s.captured(), settled.captured());

    // 2. /stats/prometheus against the events sent and the records in Kafka.
    let (text, prom) = prometheus(&stack);
    println!("=== {policy}: /stats/prometheus before the trap (adtap lines)\n{text}");
    let records = stack.read_records_expecting(s.delivered() as usize, Duration::from_secs(10));
    let records = records.unwrap().len() as u64;
    assert_eq!(records, s.delivered(), "Kafka holds every delivered event");
    assert_eq!(sample(&prom, "adtap_captured", &[]), Some(want as f64));
    assert_eq!(
        sample(&prom, "adtap_delivered", &[]),
        Some(s.delivered() as f64)
    );
    let mut by_reason = 0.0;
    for r in REASONS {
        let v = sample(&prom, "adtap_dropped", &[("reason", r)])
            .unwrap_or_else(|| panic!("adtap_dropped{{reason=\"{r}\"}} missing"));
        assert_eq!(v, s.get(&format!("dropped_{r}")) as f64, "reason {r}");
        by_reason += v;
    }
    assert!(
        sample(&prom, "adtap_dropped", &[("reason", "buffer_full")]) > Some(0.0),
        "the outage overflowed the buffer"
    );
    assert_eq!(sample(&prom, "adtap_dropped", &[]), Some(by_reason));
    assert_eq!(by_reason + s.delivered() as f64, want as f64);
    let vms = s.vms();
    assert!(
        vms.len() >= 2,
        "a series set per VM (2 workers and the main thread): {vms:?}"
    );
    let mut vm_captured = 0.0;
    for id in vms.keys() {
        let ticks = sample(&prom, "adtap_vm_ticks", &[("vm", id)]);
        assert!(
            ticks > Some(0.0),
            "adtap_vm_ticks{{vm=\"{id}\"}}: {ticks:?}"
        );
        for g in ["buffered", "in_flight", "held_bytes"] {
            assert_eq!(
                sample(&prom, &format!("adtap_vm_{g}"), &[("vm", id)]),
                Some(0.0)
            );
        }
        vm_captured += sample(&prom, "adtap_vm_captured", &[("vm", id)]).unwrap_or(0.0);
    }
    assert_eq!(
        vm_captured, want as f64,
        "the VMs' captures add up to the total"
    );
    assert!(
        !text.contains("wasmcustom"),
        "Prometheus names have no wasmcustom prefix"
    );
    // Each topic's share, labelled by topic, adds up to the totals.
    let topic_sum = |name: &str| -> (usize, f64) {
        let of: Vec<&PromSample> = prom
            .iter()
            .filter(|p| p.name == name && p.labels.contains_key("topic"))
            .collect();
        (of.len(), of.iter().map(|p| p.value).sum())
    };
    let (topics, captured) = topic_sum("adtap_topic_captured");
    assert!(
        topics >= 2,
        "one adtap_topic_captured{{topic=…}} per topic: {topics}"
    );
    assert_eq!(
        captured, want as f64,
        "the topics' captures add up to the total"
    );
    assert_eq!(topic_sum("adtap_topic_delivered").1, s.delivered() as f64);
    assert_eq!(topic_sum("adtap_topic_dropped").1, by_reason);

    // 3. Another outage, so that both workers hold events; then the trap.
    stack.stop_rest_proxy().unwrap();
    let during = traffic::generate(60, 72);
    let want2 = want + stack.expected(&during).len() as u64;
    stack.send(&during, 8).unwrap();
    let before = stack
        .wait_stats("the second batch captured", Duration::from_secs(20), |s| {
            s.captured() == want2 && s.invariant_holds()
        })
        .unwrap();
    table(&format!("{policy}: before the trap"), &before, None);
    let known: BTreeSet<String> = before.vms().keys().cloned().collect();
    stack.send(&[trap_request()], 1).unwrap();
    let (dead, at_death) = one_dead(&stack, &known);
    table(
        &format!("{policy}: VM {dead} trapped"),
        &at_death,
        Some(&dead),
    );
    let dead_series = at_death.vms()[&dead].clone();
    let (text, _) = prometheus(&stack);
    println!("=== {policy}: /stats/prometheus after the trap (adtap lines)\n{text}");

    // 4. Delivery again, and more traffic (the dead worker's share passes uncaptured under
    //    FAIL_OPEN; under FAIL_RELOAD the next request there rebuilds the VM).
    stack.restart_rest_proxy().unwrap();
    let after = traffic::generate(200, 73);
    stack.send(&after, 16).unwrap();
    if policy == "FAIL_RELOAD" {
        // A fresh connection per request spreads them over both workers until one rebuilds.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut i = 0;
        while stack
            .envoy()
            .unwrap()
            .envoy_stats("vm_reload_success")
            .unwrap()
            .values()
            .sum::<u64>()
            == 0
        {
            assert!(Instant::now() < deadline, "no VM reload");
            let more = traffic::generate(4, 100 + i);
            stack.send(&more, 4).unwrap();
            i += 1;
        }
    }
    let end = stack
        .wait_stats("the live VMs settled", Duration::from_secs(30), |s| {
            let vms = s.vms();
            let live: Vec<&VmSeries> = vms
                .iter()
                .filter(|(id, _)| **id != dead)
                .map(|(_, v)| v)
                .collect();
            let (c, rest) = vms_balance(live.iter().copied());
            c == rest
                && live
                    .iter()
                    .all(|v| v.get("buffered") == Some(&0) && v.get("in_flight") == Some(&0))
                && vms.get(&dead) == Some(&dead_series)
        })
        .unwrap();
    // The live VMs tick on; the dead one does not.
    let end = all_live_ticking(&stack, &end, &dead);
    assert_eq!(end.vms()[&dead], dead_series, "dead VM frozen");
    table(&format!("{policy}: after more traffic"), &end, Some(&dead));
    let (text, prom) = prometheus(&stack);
    println!("=== {policy}: /stats/prometheus after more traffic (adtap lines)\n{text}");
    let reloads = stack.envoy().unwrap().envoy_stats("vm_reload").unwrap();
    println!("=== {policy}: Envoy's reload stats: {reloads:?}");

    // The live VMs balance on their own series; every VM's series add up to the totals.
    let vms = end.vms();
    let (c, rest) = vms_balance(vms.iter().filter(|(id, _)| **id != dead).map(|(_, v)| v));
    assert_eq!(
        c, rest,
        "live VMs: captured = delivered + dropped + in_flight + buffered"
    );
    let sum = |k: &str| {
        vms.values()
            .map(|v| v.get(k).copied().unwrap_or(0))
            .sum::<u64>()
    };
    for k in [
        "captured",
        "delivered",
        "dropped",
        "in_flight",
        "buffered",
        "held_bytes",
    ] {
        assert_eq!(
            sum(k),
            end.get(k),
            "adtap_{k} is the sum over every VM, the dead one's included"
        );
    }
    // What the dead VM held stays in the totals: its frozen share, and only it.
    assert_eq!(end.buffered(), dead_series["buffered"]);
    assert_eq!(end.in_flight(), dead_series["in_flight"]);
    assert_eq!(
        sample(&prom, "adtap_vm_ticks", &[("vm", &dead)]),
        Some(dead_series["ticks"] as f64)
    );
    let new_ids: Vec<&String> = vms.keys().filter(|id| !known.contains(*id)).collect();
    if policy == "FAIL_RELOAD" {
        assert!(
            reloads
                .iter()
                .any(|(k, v)| k.ends_with("vm_reload_success") && *v >= 1),
            "{reloads:?}"
        );
        // Envoy counts a reload per plugin (the logger's and the filter's share the VM).
        assert!(!new_ids.is_empty(), "a new VM, with a new id: {new_ids:?}");
        assert!(new_ids.iter().all(|id| vms[*id]["ticks"] > 0));
    } else {
        assert!(
            new_ids.is_empty(),
            "FAIL_OPEN builds no new VM: {new_ids:?}"
        );
    }

    // adtap-drain: idle, the dead VM's frozen events reported, not waited for.
    let stop = stack.graceful_stop_envoy(Duration::from_secs(20)).unwrap();
    println!("=== {policy}: adtap-drain\n{}", stop.report);
    assert!(stop.report.contains("idle after"), "{}", stop.report);
    if dead_series["buffered"] + dead_series["in_flight"] > 0 {
        assert!(
            stop.report.contains(&format!("VM {dead} is dead")),
            "{}",
            stop.report
        );
    }
}

/// Polls until every VM but `dead` ticked past `since`.
fn all_live_ticking(stack: &Stack, since: &AdtapStats, dead: &str) -> AdtapStats {
    let first = since.vms();
    stack
        .wait_stats("the live VMs ticking", Duration::from_secs(10), |s| {
            s.vms().iter().filter(|(id, _)| *id != dead).all(|(id, v)| {
                first
                    .get(id)
                    .is_none_or(|f| v.get("ticks") > f.get("ticks"))
            })
        })
        .unwrap()
}

#[test]
fn a_trapped_vm_under_fail_open_is_visible_and_excluded() {
    dead_vm("FAIL_OPEN");
}

#[test]
fn a_trapped_vm_under_fail_reload_is_replaced_by_a_new_vm() {
    dead_vm("FAIL_RELOAD");
}
