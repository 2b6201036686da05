//! Scenarios against the release `adtap.wasm` about what comes in: every bad configuration of
//! the shared table (`filter/core/tests/config_cases.json`) refused with its field logged, and
//! hostile requests (huge and many headers, invalid UTF-8, 1 MB query strings, odd methods,
//! missing pseudo-headers, bodies in many chunks, streams without a response) — never a trap,
//! and the accounting invariant after every step. Ends with a proptest feeding random request
//! heads, headers and bodies (raw bytes) through the host.

#![cfg(test)]

mod common;

use adtap_wasm_host::{Action, Host};
use common::adtap::*;
use proptest::prelude::*;
use serde_json::{json, Value};

// ---- configuration --------------------------------------------------------------------------

#[test]
fn every_bad_configuration_of_the_shared_table_is_refused_with_its_field() {
    let table = std::fs::read(repo_root().join("filter/core/tests/config_cases.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_slice(&table).unwrap();
    let (mut bad, mut good) = (0, 0);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let bytes = match (case.get("config"), case.get("config_text")) {
            (Some(c), None) => serde_json::to_vec(c).unwrap(),
            (None, Some(Value::String(t))) => t.clone().into_bytes(),
            _ => panic!("{name}: needs config or config_text"),
        };
        let errors = case["errors"].as_array().unwrap();
        let mut h = Host::new(filter_module(), opts_bytes(bytes)).unwrap();
        assert!(ok(&mut h, |h| h.start_vm()), "{name}");
        let accepted = ok(&mut h, |h| h.configure());
        assert!(h.trapped().is_none(), "{name}: {:?}", h.trapped());
        if errors.is_empty() {
            good += 1;
            assert!(accepted, "{name}: refused\n{}", h.dump_logs());
            continue;
        }
        bad += 1;
        assert!(!accepted, "{name}: accepted a bad configuration");
        let lines = h.logs_containing("invalid configuration");
        assert_eq!(lines.len(), 1, "{name}: one log line\n{}", h.dump_logs());
        let line = &lines[0].message;
        for e in errors {
            let path = e["path"].as_str().unwrap();
            let needle = e["contains"].as_str().unwrap();
            assert!(
                line.contains(&format!("{path}: ")),
                "{name}: no `{path}` in {line}"
            );
            assert!(line.contains(needle), "{name}: no {needle:?} in {line}");
        }
        for secret in case
            .get("secrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let secret = secret.as_str().unwrap();
            assert!(
                !h.dump_logs().contains(secret),
                "{name}: logs reveal {secret:?}"
            );
        }
        // No worker: nothing is captured, nothing ticks.
        assert_eq!(h.tick_period(), None, "{name}");
    }
    assert!(bad >= 100 && good >= 5, "{bad} bad, {good} good cases");
}

#[test]
fn a_refused_reconfiguration_keeps_the_running_one() {
    let mut h = start(&config(json!({"batch": {"max_events": 1}})));
    request(&mut h, "/imp?n=0");
    h.set_plugin_config(br#"{"cluster": "kafka_rest", "rules": []}"#.to_vec());
    assert!(!ok(&mut h, |h| h.configure()));
    request(&mut h, "/imp?n=1");
    let c = check(&mut h);
    assert_eq!(c.captured, 2);
    assert_eq!(calls(&h).len(), 2);
}

// ---- hostile requests -----------------------------------------------------------------------

/// The config of the hostile scenarios: allow-listed headers and a body-capturing rule.
fn hostile_config() -> Value {
    config(json!({
        "rules": [
            {"event_type": "impression", "topic": "imps", "path": {"prefix": "/imp"}},
            {"event_type": "bid", "topic": "bids", "method": "POST", "path": {"exact": "/bid"},
             "capture_body": true},
            {"event_type": "any", "topic": "imps", "path": {"prefix": "/"}}
        ],
        "headers": ["x-big", "x-bin"],
        "body": {"max_bytes": 4096},
        "batch": {"max_events": 1},
        "client_ip": {"mode": "full", "trusted_hops": 1}
    }))
}

/// The single record of the only pending call, answered 200.
fn take_event(h: &mut Host) -> adtap_core::Event {
    check(h);
    let cs = calls(h);
    assert_eq!(cs.len(), 1, "{}", h.dump_logs());
    let rec = decode_call(&cs[0], V2, JSON).remove(0);
    respond_ok(h, &cs[0], V2, JSON);
    check(h);
    rec.event
}

/// Runs a stream with raw header pairs.
fn raw_stream(h: &mut Host, headers: &[(Vec<u8>, Vec<u8>)], status: Option<u64>) {
    let id = ok(h, |h| h.new_http_context());
    let a = ok(h, |h| h.request_headers(id, headers, true));
    assert_eq!(a, Action::Continue, "the filter never holds a request");
    if let Some(s) = status {
        ok(h, |h| h.set_property_u64(id, &["response", "code"], s));
    }
    ok(h, |h| h.complete_stream(id));
}

fn pair(k: &str, v: impl Into<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    (k.as_bytes().to_vec(), v.into())
}

#[test]
fn huge_and_many_headers() {
    let mut h = start(&hostile_config());
    let big = "v".repeat(64 * 1024);
    let mut headers = vec![
        pair(":method", "GET"),
        pair(":path", "/imp?n=1"),
        pair(":authority", big.as_str()),
        pair("x-big", big.as_str()),
        pair("user-agent", big.as_str()),
        pair("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
    ];
    for i in 0..1000 {
        headers.push(pair(&format!("x-h-{i}"), big.get(..64).unwrap()));
    }
    raw_stream(&mut h, &headers, Some(200));
    let ev = take_event(&mut h);
    assert_eq!(ev.headers[0].1.len(), 2048, "allow-listed value bounded");
    assert_eq!(ev.user_agent.as_ref().unwrap().len(), 2048);
    assert_eq!(ev.host.len(), 64 * 1024, "the host is kept whole");
    assert_eq!(
        ev.client_ip.as_deref(),
        Some("203.0.113.9"),
        "one trusted hop"
    );
}

#[test]
fn invalid_utf8_in_header_values_and_path() {
    let mut h = start(&hostile_config());
    raw_stream(
        &mut h,
        &[
            pair(":method", "GET"),
            pair(":path", b"/imp/\xff\xfe?n=\xc3&x=%ff".to_vec()),
            pair(":authority", b"ads\x80.example".to_vec()),
            pair("x-bin", b"\x00\x01\xf0\x9f".to_vec()),
            pair("x-request-id", b"\xed\xa0\x80".to_vec()),
        ],
        Some(200),
    );
    let ev = take_event(&mut h);
    assert_eq!(ev.path, "/imp/\u{fffd}\u{fffd}");
    assert_eq!(ev.host, "ads\u{fffd}.example");
    assert_eq!(query(&ev, "n"), Some("\u{fffd}"));
    assert_eq!(
        ev.headers,
        [("x-bin".to_string(), "\0\u{1}\u{fffd}".to_string())]
    );
}

#[test]
fn one_megabyte_query_strings() {
    let mut h = start(&hostile_config());
    let mut path = String::from("/imp?");
    while path.len() < 1 << 20 {
        path.push_str("junk=xxxxxxxxxxxxxxxx&");
    }
    path.push_str("n=7&campaign_id=");
    path.push_str(&"%41".repeat(100_000));
    request(&mut h, &path);
    let ev = take_event(&mut h);
    assert_eq!(query(&ev, "n"), Some("7"));
    assert_eq!(query(&ev, "campaign_id"), Some("A".repeat(1024).as_str()));
    // A 1 MB value of an allow-listed parameter, and a 1 MB name.
    request(&mut h, &format!("/imp?n={}", "9".repeat(1 << 20)));
    assert_eq!(query(&take_event(&mut h), "n").unwrap().len(), 1024);
    request(&mut h, &format!("/imp?{}=1&n=2", "n".repeat(1 << 20)));
    assert_eq!(query(&take_event(&mut h), "n"), Some("2"));
}

#[test]
fn odd_methods_and_missing_pseudo_headers() {
    let mut h = start(&hostile_config());
    let long = "M".repeat(10_000);
    for m in ["PURGE", "", "G E T", "\u{0}", "get", long.as_str(), "ÄÖÜ"] {
        raw_stream(
            &mut h,
            &[pair(":method", m), pair(":path", "/x?n=1")],
            Some(200),
        );
        let ev = take_event(&mut h);
        assert_eq!(ev.method, m);
        assert_eq!(ev.event_type, "any");
    }
    let before = check(&mut h);
    // No :path, no :method, neither, nothing at all: not captured, not counted as unmatched.
    for headers in [
        vec![pair(":method", "GET")],
        vec![pair(":path", "/imp?n=1")],
        vec![pair(":authority", "a")],
        vec![],
    ] {
        raw_stream(&mut h, &headers, Some(200));
        assert_fields!(check(&mut h), captured: before.captured, unmatched: before.unmatched);
    }
    assert!(calls(&h).is_empty());
}

#[test]
fn bodies_in_many_chunks() {
    let mut h = start(&hostile_config());
    // 10 chunks of 300 bytes: 3000 ≤ 4096, kept whole.
    let send = |h: &mut Host, chunks: &[Vec<u8>]| {
        let id = ok(h, |h| h.new_http_context());
        let head = [
            (":method", "POST"),
            (":path", "/bid?n=1"),
            (":authority", "a"),
        ];
        ok(h, |h| h.request_headers(id, &head, false));
        for (i, c) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            assert_eq!(ok(h, |h| h.request_body(id, c, last)), Action::Continue);
        }
        ok(h, |h| h.set_property_u64(id, &["response", "code"], 200));
        ok(h, |h| h.complete_stream(id));
    };
    let chunks: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'a' + i; 300]).collect();
    send(&mut h, &chunks);
    let ev = take_event(&mut h);
    assert_eq!(
        ev.body.as_deref().map(str::as_bytes),
        Some(chunks.concat().as_slice())
    );
    assert!(!ev.body_truncated && !ev.body_base64);

    // 1000 chunks of 1000 bytes: cut at 4096 and marked.
    let chunks: Vec<Vec<u8>> = (0..1000).map(|_| vec![b'z'; 1000]).collect();
    send(&mut h, &chunks);
    let ev = take_event(&mut h);
    assert_eq!(ev.body.as_ref().unwrap().len(), 4096);
    assert!(ev.body_truncated);

    // Binary bytes split across chunks: base64 of exactly what was sent.
    let bin: Vec<Vec<u8>> = (0..50u32)
        .map(|i| vec![0xff, (i % 256) as u8, 0x00])
        .collect();
    send(&mut h, &bin);
    let ev = take_event(&mut h);
    use base64::Engine as _;
    let want = base64::engine::general_purpose::STANDARD.encode(bin.concat());
    assert_eq!(ev.body.as_deref(), Some(want.as_str()));
    assert!(ev.body_base64 && !ev.body_truncated);
    // One empty chunk, and a body that never ends before on_log.
    send(&mut h, &[Vec::new()]);
    assert_eq!(take_event(&mut h).body.as_deref(), Some(""));
    let c = check(&mut h);
    assert_eq!(c.body_truncated, 1);
}

#[test]
fn streams_that_end_without_a_response() {
    let mut h = start(&hostile_config());
    request_with(&mut h, "GET", "/imp?n=1", &[], None);
    let ev = take_event(&mut h);
    assert_eq!(ev.status, None);
    assert_eq!(ev.duration_us, None);
    // Reset before on_log (on_done/on_delete only): no event, nothing half-counted.
    let id = ok(&mut h, |h| h.new_http_context());
    ok(&mut h, |h| {
        h.request_headers(id, &[(":method", "GET"), (":path", "/imp?n=2")], true)
    });
    ok(&mut h, |h| h.done_stream(id));
    // A body-capturing stream abandoned mid-body.
    let id = ok(&mut h, |h| h.new_http_context());
    ok(&mut h, |h| {
        h.request_headers(id, &[(":method", "POST"), (":path", "/bid")], false)
    });
    ok(&mut h, |h| h.request_body(id, b"partial", false));
    ok(&mut h, |h| h.complete_stream(id));
    let ev = take_event(&mut h);
    assert_eq!(ev.body.as_deref(), Some("partial"));
    assert_fields!(check(&mut h), captured: 2, delivered: 2);
}

// ---- random hostile input -------------------------------------------------------------------

/// Bytes biased towards what breaks parsers: separators, escapes, invalid UTF-8.
fn nasty_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<u8>(),
            2 => prop::sample::select(b"/?&=%+#:,. \t\r\n\0\xff\xc3\xed".to_vec()),
            2 => prop::sample::select(b"imp/bid?n=1&campaign_id=".to_vec()),
        ],
        0..max,
    )
}

#[derive(Debug, Clone)]
struct RandomStream {
    method: Option<Vec<u8>>,
    path: Option<Vec<u8>>,
    authority: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<Vec<u8>>,
    status: Option<u64>,
    log: bool,
}

fn random_stream() -> impl Strategy<Value = RandomStream> {
    let method = prop::option::weighted(
        0.9,
        prop_oneof![
            Just(b"GET".to_vec()),
            Just(b"POST".to_vec()),
            nasty_bytes(12)
        ],
    );
    let path = prop::option::weighted(
        0.9,
        prop_oneof![
            nasty_bytes(64).prop_map(|p| [b"/imp?".to_vec(), p].concat()),
            Just(b"/bid".to_vec()),
            nasty_bytes(200),
        ],
    );
    let header_name = prop_oneof![
        Just("x-big".to_string()),
        Just("x-forwarded-for".to_string()),
        Just("user-agent".to_string()),
        "[a-z-]{1,12}",
    ];
    (
        method,
        path,
        prop::option::of(nasty_bytes(24)),
        prop::collection::vec((header_name, nasty_bytes(64)), 0..12),
        // Big chunks as plain bytes: the biased generator is slow per byte in debug builds.
        prop::collection::vec(
            prop_oneof![
                nasty_bytes(100),
                prop::collection::vec(any::<u8>(), 0..5000)
            ],
            0..6,
        ),
        prop::option::of(prop_oneof![0u64..1000, any::<u64>()]),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(method, path, authority, headers, body, status, log)| RandomStream {
                method,
                path,
                authority,
                headers,
                body,
                status,
                log,
            },
        )
}

fn run_random(h: &mut Host, s: &RandomStream) {
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (k, v) in [
        (":method", &s.method),
        (":path", &s.path),
        (":authority", &s.authority),
    ] {
        if let Some(v) = v {
            headers.push((k.as_bytes().to_vec(), v.clone()));
        }
    }
    headers.extend(
        s.headers
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.clone())),
    );
    let id = ok(h, |h| h.new_http_context());
    let eos = s.body.is_empty();
    assert_eq!(
        ok(h, |h| h.request_headers(id, &headers, eos)),
        Action::Continue
    );
    for (i, chunk) in s.body.iter().enumerate() {
        let last = i + 1 == s.body.len();
        assert_eq!(ok(h, |h| h.request_body(id, chunk, last)), Action::Continue);
    }
    if let Some(code) = s.status {
        ok(h, |h| h.set_property_u64(id, &["response", "code"], code));
    }
    if s.log {
        ok(h, |h| h.log(id));
    }
    ok(h, |h| h.done_stream(id));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random heads, headers and bodies (raw bytes): never a trap, every dispatched record
    /// decodes, and the invariant holds after every stream.
    #[test]
    fn random_hostile_streams(streams in prop::collection::vec(random_stream(), 1..12)) {
        let mut h = start(&hostile_config());
        for s in &streams {
            run_random(&mut h, s);
            check(&mut h);
        }
        // Four calls in flight at most: answering one dispatches the next.
        while let Some(call) = calls(&h).first().cloned() {
            let recs = decode_call(&call, V2, JSON);
            prop_assert_eq!(recs.len(), 1);
            respond_ok(&mut h, &call, V2, JSON);
            check(&mut h);
        }
        let c = check(&mut h);
        prop_assert_eq!(c.captured, c.delivered);
        prop_assert!(h.trapped().is_none());
    }
}
