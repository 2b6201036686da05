//! The two deployments of one `.wasm`, on the release module: the Wasm access logger (Envoy
//! calls `proxy_on_log` on the root context, the request's headers readable; no stream context
//! in the VM) and the HTTP filter, alone and together in one VM sharing one worker.

#![cfg(test)]

mod common;

use adtap_wasm_host::{Host, HttpCall};
use common::adtap::*;
use serde_json::json;

/// One request seen only by the access logger: headers, response, then the root's log call.
fn logged(h: &mut Host, method: &str, path: &str) {
    let id = ok(h, |h| h.new_http_context());
    let head = [
        (":method", method),
        (":path", path),
        (":authority", "ads.example"),
    ];
    ok(h, |h| h.request_headers(id, &head, true));
    ok(h, |h| h.response_headers(id, &[(":status", "204")], true));
    ok(h, |h| h.access_log(id));
}

/// One POST through the HTTP filter, with a body.
fn posted(h: &mut Host, path: &str, body: &[u8]) {
    let id = ok(h, |h| h.new_http_context());
    let head = [
        (":method", "POST"),
        (":path", path),
        (":authority", "ads.example"),
    ];
    ok(h, |h| h.request_headers(id, &head, false));
    ok(h, |h| h.request_body(id, body, true));
    ok(h, |h| h.response_headers(id, &[(":status", "200")], true));
    ok(h, |h| h.complete_stream(id));
}

/// Acknowledges `call` whole; then all `captured` events are delivered and nothing is left.
fn acknowledge_all(h: &mut Host, call: &HttpCall, captured: i64) {
    respond_ok(h, call, V2, JSON);
    assert_fields!(check(h), captured: captured, delivered: captured, in_flight: 0,
                   buffered: 0);
}

#[test]
fn the_module_exports_only_the_callbacks_it_uses() {
    let mut exports: Vec<&str> = filter_module().exports().map(|e| e.name()).collect();
    exports.sort_unstable();
    assert_eq!(
        exports,
        [
            "memory",
            "proxy_abi_version_0_2_1",
            "proxy_on_configure",
            "proxy_on_done",
            "proxy_on_http_call_response",
            "proxy_on_log",
            "proxy_on_memory_allocate",
            "proxy_on_request_body",
            "proxy_on_tick",
        ],
        "every export is a VM entry Envoy makes: per request only log, done and request body"
    );
}

#[test]
fn the_access_logger_captures_in_the_root_log_call() {
    let mut h = start(&config(json!({"batch": {"max_events": 2}})));
    logged(&mut h, "GET", "/imp?n=0");
    // A body rule is the HTTP filter's: the logger leaves it, uncounted.
    logged(&mut h, "POST", "/bid?n=9");
    logged(&mut h, "GET", "/nothing?n=8");
    logged(&mut h, "GET", "/imp?n=1");
    let c = check(&mut h);
    assert_fields!(c, captured: 2, in_flight: 2);
    assert_eq!(h.metric("adtap_requests_unmatched"), Some(1));
    let cs = calls(&h);
    assert_eq!(cs.len(), 1);
    assert_eq!(ns(&cs[0], V2, JSON), [0, 1]);
    let recs = decode_call(&cs[0], V2, JSON);
    assert_eq!(
        recs[0].event.status,
        Some(204),
        "status from the response header map"
    );
    assert_eq!(recs[0].event.event_type, "impression");
    acknowledge_all(&mut h, &cs[0], 2);
}

#[test]
fn logger_and_http_filter_share_one_worker_and_one_batch() {
    // Bids and impressions to one topic, so that one batch shows the shared buffer.
    let mut h = start(&config(json!({
        "http_filter_rules": "body_only",
        "rules": [
            {"event_type": "impression", "topic": "ads", "method": "GET", "path": {"prefix": "/imp"}},
            {"event_type": "bid", "topic": "ads", "method": "POST", "path": {"exact": "/bid"},
             "capture_body": true}
        ],
        "batch": {"max_events": 3}
    })));
    logged(&mut h, "GET", "/imp?n=0");
    posted(&mut h, "/bid?n=1", br#"{"imp":[{"id":"1"}]}"#);
    // An impression through the HTTP filter is the logger's: not captured twice.
    request(&mut h, "/imp?n=7");
    logged(&mut h, "GET", "/imp?n=2");
    let c = check(&mut h);
    assert_fields!(c, captured: 3, in_flight: 3, buffered: 0);
    let cs = calls(&h);
    assert_eq!(cs.len(), 1, "one batch for both deployments");
    assert_eq!(ns(&cs[0], V2, JSON), [0, 1, 2]);
    let recs = decode_call(&cs[0], V2, JSON);
    assert_eq!(recs[1].event.event_type, "bid");
    assert_eq!(
        recs[1].event.body.as_deref(),
        Some(r#"{"imp":[{"id":"1"}]}"#)
    );
    assert_eq!(recs[0].event.body, None);
    acknowledge_all(&mut h, &cs[0], 3);
}

#[test]
fn the_http_filter_alone_captures_every_rule_and_bodies_only_for_body_rules() {
    let mut h = start(&config(json!({
        "rules": [
            {"event_type": "impression", "topic": "ads", "path": {"prefix": "/imp"}},
            {"event_type": "bid", "topic": "ads", "method": "POST", "path": {"exact": "/bid"},
             "capture_body": true}
        ],
        "batch": {"max_events": 3}
    })));
    request(&mut h, "/imp?n=0");
    posted(&mut h, "/bid?n=1", b"bid-body");
    // A POST with a body to a rule without capture_body: captured, body not kept.
    posted(&mut h, "/imp?n=2", b"not-kept");
    check(&mut h);
    let cs = calls(&h);
    assert_eq!(cs.len(), 1);
    let recs = decode_call(&cs[0], V2, JSON);
    let bodies: Vec<Option<&str>> = recs.iter().map(|r| r.event.body.as_deref()).collect();
    assert_eq!(bodies, [None, Some("bid-body"), None]);
}
