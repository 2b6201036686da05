//! Scenarios against the release `adtap.wasm`: batching triggers, each dialect's request, retries,
//! overflow and shutdown. Every scenario checks exact outcomes, and the accounting invariant
//! after every step ([`check`] ticks at the current instant so the metrics are published).
//!
//! Time is the host's: `pass(ms)` fires every tick on the way at its exact time; `h.advance`
//! moves the clock alone. The filter's clock starts at [`T0_MS`]; ticks fall on multiples of
//! `tick_ms` after it.

#![cfg(test)]

mod common;

use adtap_core::config::{Dialect, ValueFormat};
use adtap_core::encode;
use adtap_wasm_host::{Host, HostOptions, HttpCall};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::adtap::*;
use serde_json::{json, Value};
use std::time::Duration;

// ---- flush triggers -------------------------------------------------------------------------

#[test]
fn flush_by_count() {
    let mut h = start(&config(json!({"batch": {"max_events": 3}})));
    impressions(&mut h, 0, 2);
    let c = check(&mut h);
    assert!(calls(&h).is_empty(), "2 < max_events: nothing is due");
    assert_fields!(c, captured: 2, buffered: 2, in_flight: 0);

    impressions(&mut h, 2, 1);
    let c = check(&mut h);
    let cs = calls(&h);
    assert_eq!(cs.len(), 1, "the third event fills the batch");
    assert_eq!(ns(&cs[0], V2, JSON), [0, 1, 2]);
    assert_fields!(c, buffered: 0, in_flight: 3, batches_sent: 1);

    // Four more: one batch of three goes, one event waits.
    impressions(&mut h, 3, 4);
    let c = check(&mut h);
    let cs = calls(&h);
    assert_eq!(cs.len(), 2);
    assert_eq!(ns(&cs[1], V2, JSON), [3, 4, 5]);
    assert_fields!(c, buffered: 1, in_flight: 6);

    for call in cs {
        respond_ok(&mut h, &call, V2, JSON);
        check(&mut h);
    }
    let c = check(&mut h);
    assert_fields!(c, captured: 7, delivered: 6, in_flight: 0, buffered: 1, batches_failed: 0);
    assert_eq!(h.histogram("adtap_batch_rtt_ms").unwrap(), [0, 0]);
}

#[test]
fn flush_by_bytes() {
    // A batch this small has no room for a captured body, which validation checks against
    // it: the bid rule captures none here.
    let mut h = start(&config(json!({
        "batch": {"max_events": 1000, "max_bytes": 1024},
        "rules": [{"event_type": "impression", "topic": "imps", "method": "GET",
                   "path": {"prefix": "/imp"}}]
    })));
    let pad = "c".repeat(100);
    let send = |h: &mut Host, i: i64| request(h, &format!("/imp?n={i}&campaign_id={pad}"));
    send(&mut h, 0);
    let size = check(&mut h).held_bytes;
    assert!(size > 100 && size < 512, "one record is {size} bytes");
    // Records are the same size (one-digit n, one-digit hex sequence), so the batch is due at
    // the first record that brings the total to 1024 bytes, and takes what fits in 1024.
    let due_count = (1024 + size - 1) / size;
    let fits = 1024 / size;
    for k in 2..due_count {
        send(&mut h, k - 1);
        let c = check(&mut h);
        assert!(
            calls(&h).is_empty(),
            "{} bytes < 1024: not due",
            c.held_bytes
        );
        assert_eq!(c.held_bytes, size * k);
    }
    send(&mut h, due_count - 1);
    let c = check(&mut h);
    let cs = calls(&h);
    assert_eq!(cs.len(), 1, "{} bytes buffered: due", size * due_count);
    let sent: Vec<u32> = (0..fits as u32).collect();
    assert_eq!(ns(&cs[0], V2, JSON), sent);
    assert_fields!(c, in_flight: fits, buffered: due_count - fits);
    assert_eq!(c.held_bytes, size * due_count, "in-flight bytes count too");
}

#[test]
fn flush_by_age_at_the_exact_boundary() {
    let mut h = start(&config(json!({"batch": {"max_age_ms": 1000}})));
    h.advance(Duration::from_millis(30));
    request(&mut h, "/imp?n=0");
    h.advance(Duration::from_millis(999));
    let c = check(&mut h);
    assert!(calls(&h).is_empty(), "age 999 ms < 1000 ms");
    assert_eq!(c.buffered, 1);
    h.advance(Duration::from_millis(1));
    let c = check(&mut h);
    let cs = calls(&h);
    assert_eq!(cs.len(), 1, "age 1000 ms: due");
    assert_eq!(c.in_flight, 1);
    assert_eq!(cs[0].dispatched_at_ns, (T0_MS + 1030) * 1_000_000);
    let rec = &decode_call(&cs[0], V2, JSON)[0];
    assert_eq!(rec.event.ts, T0_MS + 30, "the event is stamped at on_log");

    // The same through regular ticks. `advance` moved the clock past the ticks due on the way;
    // like Envoy, which re-arms its timer when it fires and never catches up, the host fires
    // the overdue tick once, at T0+1030, and the next ones every 100 ms from there. So the
    // event at T0+1030 goes on the tick at T0+2030, exactly when it is 1000 ms old.
    respond_ok(&mut h, &cs[0], V2, JSON);
    request(&mut h, "/imp?n=1");
    pass(&mut h, 999); // to T0+2029: ticks up to T0+1930, then `check`'s at T0+2029 (age 999)
    check(&mut h);
    assert!(calls(&h).is_empty());
    pass(&mut h, 71);
    let cs = calls(&h);
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].dispatched_at_ns, (T0_MS + 2030) * 1_000_000);
    check(&mut h);
}

#[test]
fn no_call_while_nothing_is_buffered() {
    let mut h = start(&config(json!({"batch": {"max_age_ms": 100}})));
    for _ in 0..100 {
        pass(&mut h, 100);
        check(&mut h);
    }
    assert!(calls(&h).is_empty());
    // A request no rule matches captures nothing and sends nothing.
    request(&mut h, "/other?n=1");
    request_with(&mut h, "POST", "/imp?n=2", &[], Some(200)); // method differs
    pass(&mut h, 10_000);
    let c = check(&mut h);
    assert!(calls(&h).is_empty());
    assert_fields!(c, captured: 0, batches_sent: 0, unmatched: 2);
    // After a delivery the worker goes quiet again.
    request(&mut h, "/imp?n=3");
    pass(&mut h, 100);
    let call = calls(&h).remove(0);
    respond_ok(&mut h, &call, V2, JSON);
    pass(&mut h, 10_000);
    let c = check(&mut h);
    assert!(calls(&h).is_empty());
    assert_fields!(c, batches_sent: 1, delivered: 1);
}

#[test]
fn max_calls_in_flight() {
    let mut h = start(&config(
        json!({"max_in_flight": 2, "batch": {"max_events": 1}}),
    ));
    impressions(&mut h, 0, 5);
    let c = check(&mut h);
    let cs = calls(&h);
    assert_eq!(cs.len(), 2, "two calls at most");
    assert_eq!(ns(&cs[0], V2, JSON), [0]);
    assert_eq!(ns(&cs[1], V2, JSON), [1]);
    assert_fields!(c, in_flight: 2, buffered: 3);
    pass(&mut h, 1000);
    assert_eq!(calls(&h).len(), 2, "ticks do not exceed the limit");
    // An answer frees a slot and the next batch goes at once, not on the next tick.
    respond_ok(&mut h, &cs[0], V2, JSON);
    let cs = calls(&h);
    assert_eq!(cs.len(), 2);
    assert_eq!(ns(&cs[1], V2, JSON), [2]);
    check(&mut h);
    let mut delivered = 1;
    while let Some(call) = calls(&h).first().cloned() {
        respond_ok(&mut h, &call, V2, JSON);
        delivered += 1;
        assert!(calls(&h).len() <= 2);
        check(&mut h);
    }
    let c = check(&mut h);
    assert_eq!(delivered, 5);
    assert_fields!(c, delivered: 5, batches_sent: 5);
}

// ---- dialects -------------------------------------------------------------------------------

/// A request with every field set, through a filter with `extra` config; returns the one call.
fn rich_call(extra: Value, events: u32) -> (Host, HttpCall) {
    let mut cfg = config(json!({
        "key": "query.campaign_id",
        "batch": {"max_events": events},
        "headers": ["x-campaign"],
        "response_fields": ["status", "duration", "sizes", "route", "upstream"]
    }));
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let mut h = start(&cfg);
    for i in 0..events {
        let id = ok(&mut h, |h| h.new_http_context());
        let path = format!("/imp/a?n={i}&campaign_id=c42&x=9");
        let head = [
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", "ads.example:443"),
            ("x-request-id", "req-1"),
            ("user-agent", "UA/1.0"),
            ("referer", "https://pub.example/"),
            ("x-campaign", "camp"),
            ("cookie", "SECRET-COOKIE"),
        ];
        ok(&mut h, |h| h.request_headers(id, &head, true));
        ok(&mut h, |h| {
            h.response_headers(id, &[(":status", "204")], true)
        });
        for (path, v) in [
            (&["response", "code"][..], 204u64),
            (&["request", "duration"][..], 1_500_000),
            (&["request", "total_size"][..], 321),
            (&["response", "total_size"][..], 123),
        ] {
            ok(&mut h, |h| h.set_property_u64(id, path, v));
        }
        for (path, v) in [
            (&["xds", "route_name"][..], "r1"),
            (&["xds", "cluster_name"][..], "ads"),
            (&["source", "address"][..], "203.0.113.7:5555"),
        ] {
            ok(&mut h, |h| h.set_property(id, path, v));
        }
        ok(&mut h, |h| h.complete_stream(id));
    }
    check(&mut h);
    let cs = calls(&h);
    assert_eq!(cs.len(), 1, "logs:\n{}", h.dump_logs());
    let call = cs[0].clone();
    (h, call)
}

/// The event every `rich_call` request must produce (id aside).
fn expected_event(n: u32, id: &str) -> Value {
    json!({
        // Logged at T0 after 1.5 ms: the event's time is when it began, to the millisecond.
        "v": 1, "id": id, "type": "impression", "ts": T0_MS - 1, "request_id": "req-1",
        "method": "GET", "host": "ads.example:443", "path": "/imp/a",
        "query": {"n": n.to_string(), "campaign_id": "c42"},
        "headers": {"x-campaign": "camp"},
        "user_agent": "UA/1.0", "referer": "https://pub.example/",
        "client_ip": "203.0.113.0", "status": 204, "duration_us": 1500,
        "request_bytes": 321, "response_bytes": 123, "route": "r1", "upstream": "ads"
    })
}

fn headers_of(call: &HttpCall) -> Vec<(String, String)> {
    let mut h = call.headers.clone();
    h.sort();
    h
}

/// Checks each record against [`expected_event`] and returns them.
fn check_records(call: &HttpCall, d: Dialect, f: ValueFormat) -> Vec<SentRecord> {
    let recs = decode_call(call, d, f);
    for (i, r) in recs.iter().enumerate() {
        let got = serde_json::to_value(&r.event).unwrap();
        assert_eq!(got, expected_event(i as u32, &r.event.id));
        assert_eq!(r.key.as_deref(), Some("c42"));
        assert!(
            r.event.id.len() == 18 && r.event.id.ends_with(&format!("-{i:x}")),
            "{}",
            r.event.id
        );
    }
    assert!(!String::from_utf8_lossy(&call.body).contains("SECRET"));
    recs
}

/// Writes a record for the JS decoder tests: `dist/fixtures/records/<name>.json`.
fn write_fixture(name: &str, format: ValueFormat, rec: &SentRecord) {
    let dir = repo_root().join("dist/fixtures/records");
    std::fs::create_dir_all(&dir).unwrap();
    let doc = json!({
        "format": if format == ValueFormat::Json { "json" } else { "msgpack" },
        "value_base64": B64.encode(&rec.value),
        "event": serde_json::to_value(&rec.event).unwrap(),
        "source": "adtap.wasm in host-tests/wasm-host/tests/scenarios_delivery.rs",
    });
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();
}

#[test]
fn v2_json_request() {
    let (mut h, call) = rich_call(json!({}), 2);
    assert_eq!(call.upstream, CLUSTER);
    assert_eq!(call.timeout_ms, 5000, "default timeout_ms");
    let len = call.body.len().to_string();
    let mut want = vec![
        (":method", "POST"),
        (":path", "/topics/imps"),
        (":authority", "kafka_rest"),
        ("content-type", "application/vnd.kafka.json.v2+json"),
        ("accept", "application/vnd.kafka.v2+json"),
        ("content-length", len.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect::<Vec<_>>();
    want.sort();
    assert_eq!(headers_of(&call), want);
    let recs = check_records(&call, V2, JSON);
    // The body exactly: the values are spliced in as encoded.
    let values: Vec<String> = recs
        .iter()
        .map(|r| String::from_utf8(r.value.clone()).unwrap())
        .collect();
    assert_eq!(
        call.body_str(),
        format!(
            r#"{{"records":[{{"key":"c42","value":{}}},{{"key":"c42","value":{}}}]}}"#,
            values[0], values[1]
        )
    );
    write_fixture("v2_json", JSON, &recs[0]);
    respond_ok(&mut h, &call, V2, JSON);
    let c = check(&mut h);
    assert_fields!(c, delivered: 2, in_flight: 0);
}

#[test]
fn v2_binary_msgpack_request() {
    let f = ValueFormat::Msgpack;
    let (mut h, call) = rich_call(json!({"format": "msgpack"}), 1);
    assert_eq!(
        call.header("content-type"),
        Some("application/vnd.kafka.binary.v2+json")
    );
    assert_eq!(call.header("accept"), Some("application/vnd.kafka.v2+json"));
    assert_eq!(call.header(":path"), Some("/topics/imps"));
    let recs = check_records(&call, V2, f);
    assert_eq!(
        call.body_str(),
        format!(
            r#"{{"records":[{{"key":"{}","value":"{}"}}]}}"#,
            B64.encode("c42"),
            B64.encode(&recs[0].value)
        )
    );
    // MessagePack with named fields: a map whose keys are the JSON keys.
    let as_map: Value = rmp_serde::from_slice(&recs[0].value).unwrap();
    assert_eq!(as_map, expected_event(0, &recs[0].event.id));
    write_fixture("v2_msgpack", f, &recs[0]);
    respond_ok(&mut h, &call, V2, f);
    assert_eq!(check(&mut h).delivered, 1);
}

#[test]
fn v3_request_json_and_binary() {
    for (format, fname, ct_b64, vtype) in [
        (JSON, "json", "YXBwbGljYXRpb24vanNvbg==", "JSON"),
        (
            ValueFormat::Msgpack,
            "msgpack",
            "YXBwbGljYXRpb24vbXNncGFjaw==",
            "BINARY",
        ),
    ] {
        let d = Dialect::ConfluentV3;
        let (mut h, call) = rich_call(
            json!({"dialect": "confluent_v3", "cluster_id": "lkc-1", "format": fname}),
            3,
        );
        assert_eq!(
            call.header(":path"),
            Some("/v3/clusters/lkc-1/topics/imps/records")
        );
        assert_eq!(call.header("content-type"), Some("application/json"));
        assert_eq!(call.header("accept"), Some("application/json"));
        let recs = check_records(&call, d, format);
        assert_eq!(recs.len(), 3);
        // Concatenated objects, one per line.
        assert_eq!(call.body_str().lines().count(), 3);
        for r in &recs {
            assert_eq!(
                r.raw["headers"],
                json!([{"name": "content-type", "value": ct_b64},
                       {"name": "adtap-schema", "value": B64.encode("1")}])
            );
            assert_eq!(r.raw["key"], json!({"type": "STRING", "data": "c42"}));
            assert_eq!(r.raw["value"]["type"], vtype);
            assert_eq!(r.raw["timestamp"], "2023-11-14T22:13:19.999Z");
            assert_eq!(encode::rfc3339_ms(T0_MS), "2023-11-14T22:13:20.000Z");
            let keys: Vec<&String> = r.raw.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 4, "no partition_id: {keys:?}");
        }
        write_fixture(&format!("v3_{fname}"), format, &recs[1]);
        respond_ok(&mut h, &call, d, format);
        let c = check(&mut h);
        assert_fields!(c, delivered: 3, in_flight: 0, batches_failed: 0);
    }
}

#[test]
fn redpanda_request_and_per_partition_answer() {
    let (mut h, call) = rich_call(json!({"dialect": "redpanda"}), 3);
    assert_eq!(call.header(":path"), Some("/topics/imps"));
    assert_eq!(
        call.header("content-type"),
        Some("application/vnd.kafka.json.v2+json")
    );
    check_records(&call, Dialect::Redpanda, JSON);
    // One entry per partition, not per record: all three delivered.
    respond_ok(&mut h, &call, Dialect::Redpanda, JSON);
    assert_eq!(check(&mut h).delivered, 3);
}

#[test]
fn auth_headers_prefix_authority_and_timeout() {
    let basic = format!("Basic {}", B64.encode("APIKEY:s3cr:et pw"));
    for (auth, name, value) in [
        (
            json!({"basic": {"username": "APIKEY", "password": "s3cr:et pw"}}),
            "authorization",
            basic.as_str(),
        ),
        (
            json!({"bearer": "tok.SECRET-1"}),
            "authorization",
            "Bearer tok.SECRET-1",
        ),
        (
            json!({"header": {"name": "X-Api-Key", "value": "SECRET-k"}}),
            "x-api-key",
            "SECRET-k",
        ),
    ] {
        let (h, call) = rich_call(
            json!({"auth": auth, "path_prefix": "/kafka", "authority": "rest.internal:8082",
                   "timeout_ms": 1234}),
            1,
        );
        assert_eq!(call.header(name), Some(value));
        assert_eq!(call.header(":path"), Some("/kafka/topics/imps"));
        assert_eq!(call.header(":authority"), Some("rest.internal:8082"));
        assert_eq!(call.upstream, CLUSTER, "the cluster is still the cluster");
        assert_eq!(call.timeout_ms, 1234);
        assert_eq!(call.headers.len(), 7, "{:?}", call.headers);
        let logs = h.dump_logs();
        assert!(!logs.contains("SECRET") && !logs.contains("s3cr"), "{logs}");
    }
    let (_, call) = rich_call(
        json!({"dialect": "confluent_v3", "cluster_id": "lkc-9", "path_prefix": "/kafka"}),
        1,
    );
    assert_eq!(
        call.header(":path"),
        Some("/kafka/v3/clusters/lkc-9/topics/imps/records")
    );
    assert_eq!(call.header("authorization"), None);
}

// ---- retries --------------------------------------------------------------------------------

/// Sends `n` impressions (`/imp?n=0` on), [`check`]s, and returns the first pending call.
fn first_call(h: &mut Host, n: u32) -> HttpCall {
    impressions(h, 0, n);
    check(h);
    calls(h).remove(0)
}

/// Advances 10 ms at a time until a call is pending; returns the ms waited. Fails past `limit`.
fn wait_for_call(h: &mut Host, limit: u64) -> u64 {
    let mut waited = 0;
    while calls(h).is_empty() {
        assert!(waited < limit, "no retry within {limit} ms");
        pass(h, 10);
        waited += 10;
        check(h);
    }
    waited
}

#[test]
fn backoff_timing_within_jitter_bounds() {
    let mut first_delays = Vec::new();
    for seed in [1u64, 2, 3, 4, 5, 6] {
        let cfg = config(json!({
            "tick_ms": 10, "batch": {"max_events": 1},
            "retry": {"initial_backoff_ms": 1000, "max_backoff_ms": 3000, "multiplier": 2.0,
                      "jitter": 0.2, "budget_ms": 60_000}
        }));
        let mut h = Host::start(
            filter_module(),
            HostOptions {
                random_seed: seed,
                ..opts(&cfg)
            },
        )
        .unwrap();
        request(&mut h, "/imp?n=0");
        check(&mut h);
        // base 1000, 2000, 3000 (capped), 3000; ±20%, then capped at 3000 again.
        for (attempt, (lo, hi)) in [(800, 1200), (1600, 2400), (2400, 3000), (2400, 3000)]
            .into_iter()
            .enumerate()
        {
            let call = calls(&h).remove(0);
            assert_eq!(ns(&call, V2, JSON), [0]);
            ok(&mut h, |h| h.fail_call(call.token));
            let c = check(&mut h);
            assert_fields!(c, retries: attempt as i64 + 1, buffered: 1, in_flight: 0);
            let waited = wait_for_call(&mut h, 5000);
            // Ticks every 10 ms from the failure: the retry goes on the first tick at or after
            // its due time.
            assert!(
                waited >= lo && waited <= hi + 9,
                "seed {seed} retry {}: after {waited} ms, expected {lo}..={hi}",
                attempt + 1
            );
            if attempt == 0 {
                first_delays.push(waited);
            }
        }
        let c = check(&mut h);
        assert_fields!(c, batches_sent: 5, batches_failed: 4);
    }
    first_delays.dedup();
    assert!(first_delays.len() > 2, "jitter spreads: {first_delays:?}");

    // Without jitter the timing is exact: the retry goes on the tick at +1000 ms, not before.
    let mut h = start(&config(json!({"tick_ms": 10, "batch": {"max_events": 1},
                                    "retry": {"initial_backoff_ms": 1000, "jitter": 0.0}})));
    let call = first_call(&mut h, 1);
    ok(&mut h, |h| h.fail_call(call.token));
    pass(&mut h, 990);
    assert!(calls(&h).is_empty());
    pass(&mut h, 10);
    assert_eq!(calls(&h).len(), 1);
    check(&mut h);
}

#[test]
fn retry_budget_exhaustion_drops_and_counts() {
    let cfg = config(json!({
        "batch": {"max_events": 2},
        "retry": {"initial_backoff_ms": 1000, "multiplier": 2.0, "jitter": 0.0,
                  "budget_ms": 3000}
    }));
    let mut h = start(&cfg);
    impressions(&mut h, 0, 2);
    check(&mut h);
    // Fail at T0 (first failure), retry due T0+1000; fail, due T0+3000 (= budget, inside);
    // fail at T0+3000, next due T0+7000: past the budget, dropped.
    for (step, wait) in [(1, 1000), (2, 2000), (3, 0)] {
        let cs = calls(&h);
        assert_eq!(cs.len(), 1, "attempt {step}");
        assert_eq!(ns(&cs[0], V2, JSON), [0, 1]);
        ok(&mut h, |h| h.fail_call(cs[0].token));
        let c = check(&mut h);
        assert_eq!(c.batches_failed, step);
        if wait > 0 {
            pass(&mut h, wait - 100);
            assert!(calls(&h).is_empty(), "not before the backoff");
            pass(&mut h, 100);
        }
    }
    let c = check(&mut h);
    assert_fields!(c, retry_exhausted: 2, retries: 4, batches_sent: 3, buffered: 0,
                   in_flight: 0);
    pass(&mut h, 60_000);
    assert!(calls(&h).is_empty(), "dropped records are never sent again");
    assert_eq!(check(&mut h).dropped, 2);
    assert!(h.has_log("no response"), "{}", h.dump_logs());
}

#[test]
fn partial_failures_retry_only_the_failed_records_v2() {
    let mut h = start(&config(json!({"batch": {"max_events": 5},
                                    "retry": {"initial_backoff_ms": 500, "jitter": 0.0}})));
    let call = first_call(&mut h, 5);
    assert_eq!(ns(&call, V2, JSON), [0, 1, 2, 3, 4]);
    // n=1 retriable (50003), n=2 permanent (50002), n=3 retriable (2), n=4 permanent (40301).
    let body = v2_partial_body(&[None, Some(50003), Some(50002), Some(2), Some(40301)]);
    respond_json(&mut h, call.token, 200, &body);
    let c = check(&mut h);
    assert_fields!(c, delivered: 1, rejected: 2, retries: 2, buffered: 2, batches_failed: 1);
    pass(&mut h, 500);
    let retry = calls(&h).remove(0);
    assert_eq!(
        ns(&retry, V2, JSON),
        [1, 3],
        "only the failed ones, in order"
    );
    respond_ok(&mut h, &retry, V2, JSON);
    let c = check(&mut h);
    assert_fields!(c, captured: 5, delivered: 3, rejected: 2, buffered: 0);
}

#[test]
fn partial_failures_retry_only_the_failed_records_v3() {
    let d = Dialect::ConfluentV3;
    let mut h = start(&config(json!({"dialect": "confluent_v3",
                                    "cluster_id": "lkc-1", "batch": {"max_events": 4},
                                    "retry": {"initial_backoff_ms": 500, "jitter": 0.0}})));
    let call = first_call(&mut h, 4);
    // Reports in record order: ok, 429 (retry), 404 (reject); the fourth report is missing
    // (a truncated stream): retried.
    let body = [
        json!({"error_code": 200, "partition_id": 0, "offset": 10}),
        json!({"error_code": 429, "message": "throttled"}),
        json!({"error_code": 404, "message": "no such topic"}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    respond_json(&mut h, call.token, 200, &body);
    let c = check(&mut h);
    assert_fields!(c, delivered: 1, rejected: 1, retries: 2);
    pass(&mut h, 500);
    let retry = calls(&h).remove(0);
    assert_eq!(ns(&retry, d, JSON), [1, 3]);
    respond_ok(&mut h, &retry, d, JSON);
    let c = check(&mut h);
    assert_fields!(c, delivered: 3, rejected: 1, buffered: 0, in_flight: 0);
}

/// How a test answers a call.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Fail,
    Timeout,
    Status(u16),
}

fn answer(h: &mut Host, token: u32, a: Answer) {
    match a {
        Answer::Fail => ok(h, |h| h.fail_call(token)),
        Answer::Timeout => ok(h, |h| h.timeout_call(token)),
        Answer::Status(s) => respond_json(h, token, s, r#"{"error_code":50003,"message":"nope"}"#),
    }
}

#[test]
fn retriable_answers_are_retried() {
    for a in [
        Answer::Fail,
        Answer::Timeout,
        Answer::Status(408),
        Answer::Status(429),
        Answer::Status(500),
        Answer::Status(502),
        Answer::Status(503),
        Answer::Status(504),
    ] {
        let mut h = start(&config(json!({"batch": {"max_events": 2},
                                        "retry": {"initial_backoff_ms": 200, "jitter": 0.0}})));
        let call = first_call(&mut h, 2);
        answer(&mut h, call.token, a);
        let c = check(&mut h);
        assert_fields!(c, retries: 2, dropped: 0, buffered: 2; "{a:?}");
        pass(&mut h, 200);
        let retry = calls(&h).remove(0);
        assert_eq!(ns(&retry, V2, JSON), [0, 1], "{a:?}");
        respond_ok(&mut h, &retry, V2, JSON);
        let c = check(&mut h);
        assert_fields!(c, delivered: 2, batches_failed: 1; "{a:?}");
    }
}

#[test]
fn call_timeout_passes_as_504_and_is_retried() {
    let mut h = start(&config(json!({"timeout_ms": 1000,
                                    "batch": {"max_events": 1},
                                    "retry": {"initial_backoff_ms": 300, "jitter": 0.0}})));
    let first = first_call(&mut h, 1);
    assert_eq!(first.timeout_ms, 1000);
    pass(&mut h, 999);
    assert_eq!(calls(&h), std::slice::from_ref(&first), "not timed out yet");
    pass(&mut h, 1); // the host answers 504 at T0+1000
    let c = check(&mut h);
    assert!(calls(&h).is_empty());
    assert_fields!(c, retries: 1, batches_failed: 1, buffered: 1);
    assert_eq!(h.histogram("adtap_batch_rtt_ms").unwrap(), [1000]);
    pass(&mut h, 300);
    let retry = calls(&h).remove(0);
    assert_eq!(retry.dispatched_at_ns, (T0_MS + 1300) * 1_000_000);
    respond_ok(&mut h, &retry, V2, JSON);
    assert_eq!(check(&mut h).delivered, 1);
}

#[test]
fn client_errors_are_not_retried() {
    for status in [400u16, 401, 403, 404, 415, 422] {
        let mut h = start(&config(json!({"batch": {"max_events": 3},
                                        "retry": {"initial_backoff_ms": 100, "jitter": 0.0}})));
        let call = first_call(&mut h, 3);
        answer(&mut h, call.token, Answer::Status(status));
        let c = check(&mut h);
        assert_fields!(c, rejected: 3, retries: 0, buffered: 0, in_flight: 0;
                       "HTTP {status}");
        pass(&mut h, 60_000);
        assert!(calls(&h).is_empty(), "HTTP {status} was retried");
        check(&mut h);
    }
}

/// A 413 says the request was too large, not that its records are bad: the batch goes again
/// at once in halves, and only a record too large on its own is dropped (as too_large).
#[test]
fn a_413_splits_the_batch_and_delivers_what_fits() {
    let mut h = start(&config(json!({"batch": {"max_events": 4}})));
    let call = first_call(&mut h, 4);
    answer(&mut h, call.token, Answer::Status(413));
    let c = check(&mut h);
    assert_fields!(c, retries: 4, dropped: 0, batches_failed: 1);
    let halves = calls(&h);
    assert_eq!(halves.len(), 2, "both halves go at once, no backoff");
    assert_eq!(ns(&halves[0], V2, JSON), [0, 1]);
    assert_eq!(ns(&halves[1], V2, JSON), [2, 3]);
    // The first half fits; the second is still too large and splits into single records,
    // one of which the proxy refuses on its own.
    respond_ok(&mut h, &halves[0], V2, JSON);
    answer(&mut h, halves[1].token, Answer::Status(413));
    check(&mut h);
    let singles = calls(&h);
    assert_eq!(singles.len(), 2);
    assert_eq!(ns(&singles[0], V2, JSON), [2]);
    assert_eq!(ns(&singles[1], V2, JSON), [3]);
    respond_ok(&mut h, &singles[0], V2, JSON);
    answer(&mut h, singles[1].token, Answer::Status(413));
    let c = check(&mut h);
    assert_fields!(c, captured: 4, delivered: 3, too_large: 1, dropped: 1, buffered: 0,
                   in_flight: 0);
    pass(&mut h, 60_000);
    assert!(calls(&h).is_empty());
}

// ---- overflow -------------------------------------------------------------------------------

/// Five events in flight (never answered yet), then eight more into a buffer of ten: five fit.
/// Returns the numbers of the second batch once the first is answered.
fn overflow(policy: &str) -> Vec<u32> {
    let cfg = config(json!({"buffer": {"max_events": 10, "overflow": policy},
                            "batch": {"max_events": 5}, "max_in_flight": 1}));
    let mut h = start(&cfg);
    impressions(&mut h, 0, 5);
    assert_eq!(check(&mut h).in_flight, 5);
    let first = calls(&h).remove(0);
    for i in 5..13 {
        request(&mut h, &format!("/imp?n={i}"));
        let c = check(&mut h);
        assert_eq!(c.buffered, (i - 4).min(5), "{policy} after {i}");
        assert_eq!(c.buffer_full, (i - 9).max(0), "{policy} after {i}");
        assert_eq!(calls(&h).len(), 1, "in-flight limit");
    }
    respond_ok(&mut h, &first, V2, JSON);
    let second = calls(&h).remove(0);
    respond_ok(&mut h, &second, V2, JSON);
    let c = check(&mut h);
    assert_fields!(c, captured: 13, delivered: 10, buffer_full: 3, buffered: 0);
    ns(&second, V2, JSON)
}

#[test]
fn overflow_drop_newest() {
    assert_eq!(overflow("drop_newest"), [5, 6, 7, 8, 9]);
}

#[test]
fn overflow_drop_oldest() {
    assert_eq!(overflow("drop_oldest"), [8, 9, 10, 11, 12]);
}

#[test]
fn overflow_never_evicts_records_in_flight() {
    let mut h = start(&config(
        json!({"batch": {"max_events": 3}, "max_in_flight": 1,
                                    "buffer": {"max_events": 3, "overflow": "drop_oldest"}}),
    ));
    impressions(&mut h, 0, 3);
    assert_eq!(check(&mut h).in_flight, 3);
    impressions(&mut h, 3, 2);
    let c = check(&mut h);
    assert_fields!(c, buffer_full: 2, in_flight: 3, buffered: 0);
    let call = calls(&h).remove(0);
    respond_ok(&mut h, &call, V2, JSON);
    impressions(&mut h, 5, 1);
    let c = check(&mut h);
    assert_fields!(c, captured: 6, delivered: 3, buffered: 1);
}

#[test]
fn linear_memory_stays_flat_under_sustained_overload() {
    const EVENTS: u32 = 50_000;
    let mut h = start(&config(json!({
        "buffer": {"max_events": 1000, "overflow": "drop_oldest"},
        "batch": {"max_events": 100, "max_age_ms": 100},
        "max_in_flight": 4,
        "retry": {"initial_backoff_ms": 100, "max_backoff_ms": 400, "budget_ms": 2000}
    })));
    let mut warm = 0;
    for i in 0..EVENTS {
        request(&mut h, &format!("/imp?n={i}&campaign_id=cmp-{}", i % 97));
        if i % 100 == 99 {
            pass(&mut h, 100);
            for call in calls(&h) {
                ok(&mut h, |h| h.fail_call(call.token));
            }
            assert_balanced(&h);
        }
        if i == 10_000 {
            warm = h.linear_memory_bytes();
        }
    }
    let end = h.linear_memory_bytes();
    let c = check(&mut h);
    assert_eq!(c.captured, i64::from(EVENTS));
    // drop_oldest evicts records awaiting a retry first, so under a full outage nothing
    // lives long enough to exhaust its budget: every loss is a buffer_full drop.
    assert!(c.buffer_full > 40_000 && c.retries > 0, "{c:?}");
    assert!(c.buffered <= 1000);
    assert!(
        end <= warm + 128 * 1024,
        "linear memory grew from {warm} to {end} bytes after warm-up"
    );
    eprintln!("linear memory: {warm} bytes after 10k events, {end} after {EVENTS}; {c:?}");
}

// ---- shutdown -------------------------------------------------------------------------------

#[test]
fn shutdown_flushes_waits_then_calls_done_once() {
    let mut h = start(&config(json!({})));
    impressions(&mut h, 0, 3);
    let c = check(&mut h);
    assert!(calls(&h).is_empty());
    assert_eq!(c.buffered, 3);
    let finished = ok(&mut h, |h| h.shutdown());
    assert!(!finished, "a call is in flight: on_done defers");
    let cs = calls(&h);
    assert_eq!(cs.len(), 1, "on_done flushed what was buffered");
    assert_eq!(ns(&cs[0], V2, JSON), [0, 1, 2]);
    assert_eq!(h.done_called(), 0);
    pass(&mut h, 1000);
    assert_eq!(h.done_called(), 0, "still waiting for the answer");
    assert_balanced(&h);
    respond_ok(&mut h, &cs[0], V2, JSON);
    assert_eq!(h.done_called(), 1);
    assert!(h.is_done());
    let c = assert_balanced(&h);
    assert_fields!(c, delivered: 3, in_flight: 0, buffered: 0);
    pass(&mut h, 10_000);
    assert_eq!(h.done_called(), 1, "done() exactly once");
    assert_eq!(h.rejected_done_calls(), 0, "done() exactly once");
}

#[test]
fn shutdown_when_idle_finishes_at_once() {
    let mut h = start(&config(json!({})));
    request(&mut h, "/imp?n=0");
    pass(&mut h, 60_000);
    let call = calls(&h).remove(0);
    respond_ok(&mut h, &call, V2, JSON);
    assert!(ok(&mut h, |h| h.shutdown()));
    assert!(h.is_done());
    assert_eq!((h.done_called(), h.rejected_done_calls()), (0, 0));
    let c = assert_balanced(&h);
    assert_eq!(c.delivered, 1);
}

#[test]
fn shutdown_deadline_bounds_the_wait_for_calls_in_flight() {
    let cfg = config(json!({"shutdown_deadline_ms": 2000, "timeout_ms": 10_000}));
    let mut h = start(&cfg);
    impressions(&mut h, 0, 3);
    assert!(!ok(&mut h, |h| h.shutdown()));
    pass(&mut h, 1900);
    assert_eq!(h.done_called(), 0);
    pass(&mut h, 100);
    assert_eq!(
        h.done_called(),
        1,
        "deadline reached: done() with the call unanswered"
    );
    // The unanswered call's records are counted as dropped at the deadline, so the last
    // published stats balance without an in-flight remainder that would never resolve.
    let c = assert_balanced(&h);
    assert_fields!(c, in_flight: 0, shutdown: 3, delivered: 0);
    pass(&mut h, 10_000);
    assert_eq!((h.done_called(), h.rejected_done_calls()), (1, 0));
}

#[test]
fn shutdown_deadline_drops_records_awaiting_retry() {
    let mut h = start(&config(json!({"shutdown_deadline_ms": 2000,
                                     "retry": {"initial_backoff_ms": 5000, "jitter": 0.0}})));
    impressions(&mut h, 0, 3);
    assert!(!ok(&mut h, |h| h.shutdown()));
    let call = calls(&h).remove(0);
    pass(&mut h, 500);
    ok(&mut h, |h| h.fail_call(call.token));
    assert_eq!(h.done_called(), 0, "the failed records wait for a retry");
    pass(&mut h, 1400);
    assert_eq!(h.done_called(), 0);
    pass(&mut h, 100);
    assert_eq!(h.done_called(), 1);
    assert!(calls(&h).is_empty());
    let c = assert_balanced(&h);
    assert_fields!(c, shutdown: 3, in_flight: 0, buffered: 0, retries: 3);
}

#[test]
fn shutdown_drains_retries_that_fall_before_the_deadline() {
    let mut h = start(&config(json!({"shutdown_deadline_ms": 5000,
                                     "retry": {"initial_backoff_ms": 1000, "jitter": 0.0}})));
    impressions(&mut h, 0, 2);
    assert!(!ok(&mut h, |h| h.shutdown()));
    let call = calls(&h).remove(0);
    ok(&mut h, |h| h.fail_call(call.token));
    pass(&mut h, 1000);
    let retry = calls(&h).remove(0);
    assert_eq!(ns(&retry, V2, JSON), [0, 1]);
    respond_ok(&mut h, &retry, V2, JSON);
    assert_eq!(h.done_called(), 1);
    let c = assert_balanced(&h);
    assert_fields!(c, delivered: 2, shutdown: 0);
}

#[test]
fn response_fields_limit_what_is_read_in_on_log() {
    // Only status and route: duration, sizes and upstream stay out of the event even though
    // the host offers them, and the client IP (omit) needs no peer address.
    let (mut h, call) = rich_call(
        json!({"response_fields": ["status", "route"], "client_ip": {"mode": "omit"}}),
        1,
    );
    let recs = decode_call(&call, V2, JSON);
    assert_eq!(recs.len(), 1);
    let ev = &recs[0].event;
    assert_eq!((ev.status, ev.route.as_deref()), (Some(204), Some("r1")));
    assert_eq!(
        (ev.duration_us, ev.request_bytes, ev.response_bytes),
        (None, None, None)
    );
    assert_eq!(
        (ev.upstream.as_deref(), ev.client_ip.as_deref()),
        (None, None)
    );
    check(&mut h);
}

/// Envoy's time is the system clock, which NTP or an operator can step back. Batch ages (and
/// retry timers, the shutdown deadline) run on a clock that moves forward by the time that
/// passed, so a step back of an hour delays nothing.
#[test]
fn a_system_clock_step_back_does_not_stall_batches() {
    let mut h = start(&config(json!({"batch": {"max_age_ms": 1000}})));
    request(&mut h, "/imp?n=0");
    pass(&mut h, 500);
    h.step_wall_clock_back(Duration::from_secs(3600));
    pass(&mut h, 400);
    check(&mut h);
    assert!(calls(&h).is_empty(), "900 ms old: not due yet");
    pass(&mut h, 200);
    assert_eq!(
        calls(&h).len(),
        1,
        "1000 ms old: due, an hour's step back notwithstanding"
    );
    check(&mut h);
}

// ---- reconfiguration in place -----------------------------------------------------------------

/// Envoy gives a new configuration a new root context, but the ABI lets a host configure a live
/// root again. The old worker's records are then counted as dropped (never lost without a
/// count), its totals carry on in the published counters (which must not freeze or go back),
/// a stream is captured at log time under the rules of that time, and an answer to an
/// old call is ignored.
#[test]
fn reconfiguring_a_live_root_keeps_the_books() {
    let mut h = start(&config(json!({"batch": {"max_events": 3}})));
    impressions(&mut h, 0, 5);
    let c = check(&mut h);
    let old_calls = calls(&h);
    assert_eq!(old_calls.len(), 1);
    assert_fields!(c, captured: 5, in_flight: 3, buffered: 2);

    // A request in progress when the configuration changes.
    let open = ok(&mut h, |h| h.new_http_context());
    let head = [
        (":method", "GET"),
        (":path", "/imp?n=99"),
        (":authority", "ads.example"),
    ];
    ok(&mut h, |h| h.request_headers(open, &head, true));

    // The same configuration again changes nothing.
    assert!(ok(&mut h, |h| h.configure()));
    let c = check(&mut h);
    assert_fields!(c, captured: 5, in_flight: 3, buffered: 2, shutdown: 0);

    h.set_plugin_config(config(json!({"batch": {"max_events": 2}})).to_string());
    assert!(ok(&mut h, |h| h.configure()));
    let c = check(&mut h);
    assert_fields!(c, captured: 5, in_flight: 0, buffered: 0, shutdown: 5, dropped: 5;
                   "the old worker's records are counted, not forgotten");

    ok(&mut h, |h| h.complete_stream(open));
    let c = check(&mut h);
    assert_eq!(
        c.captured, 6,
        "a stream is captured at log time, under the rules of that time"
    );

    // The old call's answer arrives: ignored, no round trip recorded.
    respond_ok(&mut h, &old_calls[0], V2, JSON);
    let c = check(&mut h);
    assert_fields!(c, delivered: 0, dropped: 5);
    assert!(h
        .histogram("adtap_batch_rtt_ms")
        .unwrap_or_default()
        .is_empty());

    // The new worker counts on from the old totals.
    // (the open stream's event, n=99, is the first of the new worker's batch)
    impressions(&mut h, 5, 2);
    let c = check(&mut h);
    assert_fields!(c, captured: 8, in_flight: 2, buffered: 1);
    let new_calls = calls(&h);
    assert_eq!(new_calls.len(), 1);
    assert_eq!(ns(&new_calls[0], V2, JSON), [99, 5]);
    respond_ok(&mut h, &new_calls[0], V2, JSON);
    let c = check(&mut h);
    assert_fields!(c, captured: 8, delivered: 2, dropped: 5, in_flight: 0, buffered: 1);
}
