//! The capture path's allocations, counted. `capture::match_rule` runs on every request through
//! Envoy, so it must not allocate; `record::write` runs on every captured request, so it may
//! allocate only the record itself (its value, and its key when it has one; CloudEvents
//! headers and record headers on v3 when configured, counted here too). This binary
//! installs a global allocator that counts each thread's allocations, so tests running at the
//! same time do not see each other's.

#![cfg(test)]

use adtap_core::capture::{match_rule, BodyCapture, Completion, RequestHead};
use adtap_core::config::Config;
use adtap_core::event::Record;
use adtap_core::headers::HeaderPairs;
use adtap_core::record::{self, EventId, Scratch};
use adtap_core::testkit::{self, head};
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // A `const` thread-local needs no allocation of its own.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn count() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn match_rule_does_not_allocate() {
    let cfg = testkit::config(&json!({"cluster": "k", "rules": [
        {"event_type": "a", "topic": "t", "method": "GET", "path": {"exact": "/i"}, "host": "ads.example.com"},
        {"event_type": "b", "topic": "t", "path": {"prefix": "/c/"}, "host": "[2001:db8::1]"},
        {"event_type": "c", "topic": "t", "method": "POST", "path": {"prefix": "/bid"}}
    ]}));
    let long_query = format!("/nomatch?{}", "x=1&".repeat(10_000));
    let heads = [
        ("GET", "ADS.example.com:8443", "/i?cid=1", Some(0)),
        ("GET", "[2001:db8::1]:443", "/c/x?y", Some(1)),
        ("POST", "anything", "/bidder", Some(2)),
        ("GET", "other", "/i", None),
        ("PUT", "ads.example.com", long_query.as_str(), None),
    ];
    let before = allocations();
    let mut got = [None; 5];
    for _ in 0..100 {
        for (slot, (method, host, path, _)) in got.iter_mut().zip(heads.iter()) {
            *slot = match_rule(&cfg, head(method, host, path));
        }
    }
    let after = allocations();
    assert_eq!(after - before, 0, "match_rule allocated");
    let want: Vec<Option<usize>> = heads.iter().map(|h| h.3).collect();
    assert_eq!(got.to_vec(), want);
}

/// A configuration that exercises every field of the record: allow-listed query parameters
/// (one renamed) and headers, the client IP from `x-forwarded-for`, a body rule, and a key.
fn full_config(format: &str, ip_mode: &str) -> Config {
    let client_ip = if ip_mode == "hash" {
        json!({"mode": ip_mode, "trusted_hops": 1, "salt": "s"})
    } else {
        json!({"mode": ip_mode, "trusted_hops": 1})
    };
    testkit::config(&json!({
        "cluster": "k", "format": format,
        "rules": [{"event_type": "bid", "topic": "t", "path": {"prefix": "/"}, "capture_body": true}],
        "query_params": ["campaign_id", {"name": "crid", "as": "creative"}],
        "headers": ["x-country", "accept-language"],
        "client_ip": client_ip,
        "response_fields": ["status", "duration", "sizes", "route", "upstream"],
        "key": "query.campaign_id"
    }))
}

/// The fields of an event of rule 0 at one time; [`per_record`] numbers the events.
fn fields<'a>(
    head: RequestHead<'a>,
    headers: &'a HeaderPairs,
    done: &'a Completion,
    body: Option<&'a BodyCapture>,
) -> record::Fields<'a> {
    testkit::fields(
        EventId { vm: 7, seq: 0 },
        1_700_000_000_000,
        head,
        headers,
        done,
        body,
    )
}

/// Allocations per `record::write` of `fields` (event ids counting up from `fields.id`'s),
/// averaged over 100 writes once the scratch has grown on the first three (it then stays);
/// and the 100 records.
fn per_record(cfg: &Config, fields: record::Fields<'_>) -> (f64, Vec<Record>) {
    let numbered = |seq| record::Fields {
        id: EventId { seq, ..fields.id },
        ..fields
    };
    let mut scratch = Scratch::new();
    for seq in 0..3 {
        record::write(cfg, &numbered(seq), &mut scratch).unwrap();
    }
    let mut records = Vec::with_capacity(100);
    let before = allocations();
    for seq in 3..103 {
        records.push(record::write(cfg, &numbered(seq), &mut scratch).unwrap());
    }
    ((allocations() - before) as f64 / 100.0, records)
}

#[test]
fn record_write_allocates_only_the_record() {
    let headers = HeaderPairs::from_pairs(&[
        (":method", "POST"),
        (":path", "/bid?campaign_id=c%2D42&crid=cr-7&cb=123"),
        (":authority", "ads.example.com"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
        ("referer", "https://publisher.example/a?b=\"c\""),
        ("x-request-id", "6f1c2a8e-4d0b-4b8e-9d7a-2f6f1b0c9e11"),
        ("x-country", "FR"),
        ("x-forwarded-for", "2001:db8::7, 198.51.100.20"),
    ]);
    let done = Completion {
        status: Some(200),
        duration_us: Some(412),
        request_bytes: Some(310),
        response_bytes: Some(120),
        route: Some("bids".into()),
        upstream: Some("ad_server".into()),
        peer_address: Some("10.0.0.1:5000".into()),
    };
    let mut body = BodyCapture::new(64);
    body.push(b"{\"imp\":[{\"id\":\"1\"}]}\n\x01", 20);
    let mut binary = BodyCapture::new(8);
    binary.push(&[0xff, 0xfe, 0, 1, 2, 3, 4, 5, 6], 9);
    for format in ["json", "msgpack"] {
        for ip_mode in ["full", "truncate", "hash", "omit"] {
            let cfg = full_config(format, ip_mode);
            for body in [None, Some(&body), Some(&binary)] {
                let path = "/bid?campaign_id=c%2D42&crid=cr-7&cb=123";
                let fields = fields(head("POST", "ads.example.com", path), &headers, &done, body);
                let (per_record, records) = per_record(&cfg, fields);
                // The value, and the key (`campaign_id` is present).
                assert_eq!(
                    per_record,
                    2.0,
                    "{format} {ip_mode} body: {}",
                    body.is_some()
                );
                assert!(records.iter().all(|r| r.key.as_deref() == Some("c-42")));
            }
        }
    }
}

/// What the record options cost, per record, once the scratch has grown: a joined key is one
/// allocation like a single one; the structured envelope (v2, Redpanda) is written in the
/// scratch and copied once, so it costs nothing more; binary mode (v3) allocates its header
/// list and each header's name and value, and each request header carried is two more.
#[test]
fn record_options_cost_only_when_enabled() {
    let headers = HeaderPairs::from_pairs(&[
        (":path", "/c?campaign_id=c-42&crid=cr-7"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ]);
    let done = Completion::default();
    let head = head("GET", "ads.example.com", "/c?campaign_id=c-42&crid=cr-7");
    let per_record = |cfg: &Config| per_record(cfg, fields(head, &headers, &done, None)).0;
    let cfg = |extra: serde_json::Value| {
        let base = json!({
            "cluster": "k", "dialect": "confluent_v3", "cluster_id": "lkc-1",
            "rules": [{"event_type": "click", "topic": "t", "path": {"prefix": "/"}}],
            "query_params": ["campaign_id", {"name": "crid", "as": "creative"}],
            "key": "query.campaign_id"
        });
        testkit::config_patched(base, &extra)
    };
    let ce = json!({"source": "//ads.example.com/edge"});
    // The value and the key, as without the options.
    assert_eq!(per_record(&cfg(json!({}))), 2.0);
    assert_eq!(
        per_record(&cfg(
            json!({"key": ["query.campaign_id", "query.creative"]})
        )),
        2.0
    );
    for dialect in ["confluent_v2", "redpanda"] {
        assert_eq!(
            per_record(&cfg(json!({"dialect": dialect, "cloudevents": ce}))),
            2.0
        );
    }
    // v3: the list, six `ce_*` names and values (the id's text takes two), then two per
    // request header carried.
    let binary = per_record(&cfg(json!({"cloudevents": ce})));
    let with_header = per_record(&cfg(
        json!({"cloudevents": ce, "record_headers": ["traceparent"]}),
    ));
    assert_eq!(with_header - binary, 2.0, "{binary} {with_header}");
    assert_eq!(binary, 2.0 + 1.0 + 13.0, "{binary}");
}
