//! The configurations refused at load because they cannot work or do not mean what they seem
//! to, each with its exact message (`path: message`, every error of the document):
//! positional arrays for objects, choices with zero or two kinds, duplicate and shadowed rules,
//! over-long strings, a `body.max_bytes` no batch can hold once encoded, a retry budget shorter
//! than the first retry, and Struct numbers that are not whole where an integer is needed.
//! Plus the proof behind the body bound: a body of exactly the largest accepted size, in its
//! format's worst-case bytes, fits a batch; one byte more is refused.

#![cfg(test)]

mod struct_encoder;

use adtap_core::capture::BodyCapture;
use adtap_core::config::{max_body_bytes, EVENT_RESERVE_BYTES, MAX_BODY_BYTES};
use adtap_core::config::{Config, ValueFormat};
use adtap_core::drop_reason::DropReason;
use adtap_core::encode::to_record;
use adtap_core::event::Event;
use adtap_core::pipeline::Pipeline;
use adtap_core::{assert_fields, testkit};
use serde_json::{json, Value};

/// A valid document with one rule; cases override fields.
fn base() -> Value {
    json!({
        "cluster": "kafka_rest",
        "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}}]
    })
}

fn with(overrides: Value) -> Value {
    let mut v = base();
    for (k, x) in overrides.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn rules(rules: Value) -> Value {
    with(json!({ "rules": rules }))
}

fn errors_of(bytes: &[u8]) -> Vec<String> {
    match Config::parse(bytes) {
        Ok(_) => Vec::new(),
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

fn errors(v: &Value) -> Vec<String> {
    errors_of(v.to_string().as_bytes())
}

/// Each newly refused configuration and its exact messages.
fn cases() -> Vec<(&'static str, Value, Vec<&'static str>)> {
    let long = |n: usize| format!("/{}", "a".repeat(n - 1));
    vec![
        // Objects written as positional arrays.
        (
            "batch as an array",
            with(json!({"batch": [10, 2048, 100]})),
            vec!["batch: invalid type: sequence, expected an object"],
        ),
        (
            "a rule as an array",
            rules(json!([["i", "t", null, {"exact": "/i"}]])),
            vec!["rules[0]: invalid type: sequence, expected an object"],
        ),
        (
            "auth.basic as an array",
            with(json!({"auth": {"basic": ["user", "pass"]}})),
            vec!["auth.basic: invalid type: sequence, expected an object"],
        ),
        (
            "auth.header as an array",
            with(json!({"auth": {"header": ["x-k", "v"]}})),
            vec!["auth.header: invalid type: sequence, expected an object"],
        ),
        (
            "buffer as an array",
            with(json!({"buffer": [100, 1048576, "drop_oldest"]})),
            vec!["buffer: invalid type: sequence, expected an object"],
        ),
        (
            "retry as an array",
            with(json!({"retry": [100, 1000, 2.0, 0.2, 1000]})),
            vec!["retry: invalid type: sequence, expected an object"],
        ),
        (
            "client_ip as an array",
            with(json!({"client_ip": ["full"]})),
            vec!["client_ip: invalid type: sequence, expected an object"],
        ),
        (
            "body as an array",
            with(json!({"body": [1024]})),
            vec!["body: invalid type: sequence, expected an object"],
        ),
        (
            "auth as an array",
            with(json!({"auth": ["bearer", "t"]})),
            vec![r#"auth: invalid type: sequence, expected an object with exactly one of "basic", "bearer", "header""#],
        ),
        (
            "path as an array",
            rules(json!([{"event_type": "i", "topic": "t", "path": ["exact", "/i"]}])),
            vec![r#"rules[0].path: invalid type: sequence, expected an object with exactly one of "exact", "prefix""#],
        ),
        // Choices.
        (
            "path with both kinds",
            rules(json!([{"event_type": "i", "topic": "t", "path": {"exact": "/i", "prefix": "/i"}}])),
            vec![r#"rules[0].path: exactly one of "exact", "prefix" expected, found "exact", "prefix""#],
        ),
        (
            "path of an unknown kind",
            rules(json!([{"event_type": "i", "topic": "t", "path": {"regex": "/i.*"}}])),
            vec!["rules[0].path: unknown variant `regex`, expected `exact` or `prefix`"],
        ),
        (
            "path without a kind",
            rules(json!([{"event_type": "i", "topic": "t", "path": {}}])),
            vec![r#"rules[0].path: exactly one of "exact", "prefix" expected, found none"#],
        ),
        (
            "two auth kinds",
            with(json!({"auth": {"bearer": "token", "basic": {"username": "u", "password": "p"}}})),
            vec![r#"auth: exactly one of "basic", "bearer", "header" expected, found "basic", "bearer""#],
        ),
        (
            "three auth kinds",
            with(json!({"auth": {"header": {"name": "x-k", "value": "v"}, "bearer": "t", "basic": {"username": "u", "password": "p"}}})),
            vec![r#"auth: exactly one of "basic", "bearer", "header" expected, found "basic", "bearer", "header""#],
        ),
        (
            "auth without a kind",
            with(json!({"auth": {}})),
            vec![r#"auth: exactly one of "basic", "bearer", "header" expected, found none"#],
        ),
        // Rules that can never match.
        (
            "a duplicate rule",
            rules(json!([
                {"event_type": "i", "topic": "t", "method": "GET", "path": {"exact": "/i"}},
                {"event_type": "c", "topic": "t", "path": {"prefix": "/c/"}},
                {"event_type": "i2", "topic": "u", "method": "GET", "path": {"exact": "/i"}, "sample_rate": 0.5}
            ])),
            vec!["rules[2]: matches exactly what rules[0] matches (same method, host and path), and the first matching rule wins: it can never match; remove one of them"],
        ),
        (
            "an exact path under an earlier prefix",
            rules(json!([
                {"event_type": "c", "topic": "t", "path": {"prefix": "/ad/"}},
                {"event_type": "i", "topic": "t", "method": "GET", "path": {"exact": "/ad/imp"}}
            ])),
            vec![r#"rules[1]: can never match: rules[0] comes first and matches every request it matches (prefix "/ad/", any method, any host); move it before rules[0] or remove it"#],
        ),
        (
            "a longer prefix under an earlier prefix, same method and host",
            rules(json!([
                {"event_type": "c", "topic": "t", "method": "GET", "host": "Ads.Example.com", "path": {"prefix": "/ad"}},
                {"event_type": "i", "topic": "t", "method": "GET", "host": "ads.example.com:8443", "path": {"prefix": "/ad/click"}}
            ])),
            vec![r#"rules[1]: can never match: rules[0] comes first and matches every request it matches (prefix "/ad", the same method, the same host); move it before rules[0] or remove it"#],
        ),
        // Strings past their bound.
        (
            "a 10 MB prefix",
            rules(json!([{"event_type": "i", "topic": "t", "path": {"prefix": long(10 * 1024 * 1024)}}])),
            vec!["rules[0].path.prefix: must be at most 1024 bytes, got 10485760"],
        ),
        (
            "an exact path of 1025 bytes",
            rules(json!([{"event_type": "i", "topic": "t", "path": {"exact": long(1025)}}])),
            vec!["rules[0].path.exact: must be at most 1024 bytes, got 1025"],
        ),
        (
            "a host of 256 bytes",
            rules(json!([{"event_type": "i", "topic": "t", "host": "h".repeat(256), "path": {"exact": "/i"}}])),
            vec!["rules[0].host: must be at most 255 bytes, got 256"],
        ),
        (
            "a method of 33 bytes",
            rules(json!([{"event_type": "i", "topic": "t", "method": "M".repeat(33), "path": {"exact": "/i"}}])),
            vec!["rules[0].method: must be at most 32 bytes, got 33"],
        ),
        (
            "an authority of 256 bytes",
            with(json!({"authority": "a".repeat(256)})),
            vec!["authority: must be at most 255 bytes, got 256"],
        ),
        (
            "a path_prefix of 257 bytes",
            with(json!({"path_prefix": long(257)})),
            vec!["path_prefix: must be at most 256 bytes, got 257"],
        ),
        (
            "a header name of 257 bytes",
            with(json!({"headers": ["x".repeat(257)]})),
            vec!["headers[0]: must be at most 256 bytes, got 257"],
        ),
        (
            "an auth header name of 257 bytes",
            with(json!({"auth": {"header": {"name": "x".repeat(257), "value": "v"}}})),
            vec!["auth.header.name: must be at most 256 bytes, got 257"],
        ),
        (
            "a bearer token of 16385 bytes (its length is not said)",
            with(json!({"auth": {"bearer": "t".repeat(16385)}})),
            vec!["auth.bearer: must be at most 16384 bytes"],
        ),
        (
            "a basic password of 16385 bytes",
            with(json!({"auth": {"basic": {"username": "u", "password": "p".repeat(16385)}}})),
            vec!["auth.basic.password: must be at most 16384 bytes"],
        ),
        (
            "an auth header value of 16385 bytes",
            with(json!({"auth": {"header": {"name": "x-k", "value": "v".repeat(16385)}}})),
            vec!["auth.header.value: must be at most 16384 bytes"],
        ),
        // Bodies no batch can hold.
        (
            "body.max_bytes of 1 MiB in JSON with the default batch",
            with(json!({"body": {"max_bytes": 1048576},
                        "rules": [{"event_type": "bid", "topic": "b", "path": {"exact": "/bid"}, "capture_body": true}]})),
            vec![r#"body.max_bytes: must be at most 174592 bytes with batch.max_bytes 1048576 and format "json": a body escapes to up to 6 bytes per byte in a JSON record (control characters as \u00XX), 1024 bytes are kept for the event's other fields, and an event larger than batch.max_bytes is dropped as too large; got 1048576"#],
        ),
        (
            "body.max_bytes of 1 MiB in MessagePack with the default batch",
            with(json!({"format": "msgpack", "body": {"max_bytes": 1048576},
                        "rules": [{"event_type": "bid", "topic": "b", "path": {"exact": "/bid"}, "capture_body": true}]})),
            vec![r#"body.max_bytes: must be at most 785664 bytes with batch.max_bytes 1048576 and format "msgpack": a non-UTF-8 body is base64 in a MessagePack record (4 bytes per 3), 1024 bytes are kept for the event's other fields, and an event larger than batch.max_bytes is dropped as too large; got 1048576"#],
        ),
        (
            "the default body with the smallest batch",
            with(json!({"batch": {"max_bytes": 1024},
                        "rules": [{"event_type": "bid", "topic": "b", "path": {"exact": "/bid"}, "capture_body": true}]})),
            vec![r#"body.max_bytes: must be at most 0 bytes with batch.max_bytes 1024 and format "json": a body escapes to up to 6 bytes per byte in a JSON record (control characters as \u00XX), 1024 bytes are kept for the event's other fields, and an event larger than batch.max_bytes is dropped as too large; got 16384"#],
        ),
        // A retry budget no retry fits in.
        (
            "a retry budget shorter than the first retry",
            with(json!({"retry": {"initial_backoff_ms": 1000, "jitter": 0.5, "budget_ms": 499}})),
            vec!["retry.budget_ms: must be 0 (no retries) or at least 500 ms, the shortest first retry delay (retry.initial_backoff_ms × (1 − retry.jitter)): no record could ever be retried, got 499"],
        ),
    ]
}

#[test]
fn each_newly_refused_configuration_has_its_exact_message() {
    let mut problems = Vec::new();
    for (name, cfg, want) in cases() {
        let got = errors(&cfg);
        if got != want {
            problems.push(format!("{name}:\n  got  {got:?}\n  want {want:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_same_refusals_from_a_struct() {
    // Every case but the positional-array ones has the same message in the Struct form (a
    // Struct list is a JSON array too, so those are refused alike).
    for (name, cfg, want) in cases() {
        let bytes = struct_encoder::encode_struct(&cfg).unwrap();
        assert_eq!(errors_of(&bytes), want, "{name}");
    }
}

/// What is still accepted next to each refusal: the cases the checks must not catch.
#[test]
fn near_misses_stay_valid() {
    let ok = [
        // Not shadowed: a different method, a host-bound rule before an any-host one, an exact
        // path before a prefix of the same text, a prefix that is not a prefix of the later one.
        rules(json!([
            {"event_type": "a", "topic": "t", "method": "GET", "path": {"prefix": "/a"}},
            {"event_type": "b", "topic": "t", "method": "POST", "path": {"prefix": "/a/b"}},
            {"event_type": "c", "topic": "t", "host": "x.example", "path": {"prefix": "/c"}},
            {"event_type": "d", "topic": "t", "path": {"prefix": "/c/d"}},
            {"event_type": "e", "topic": "t", "path": {"exact": "/e"}},
            {"event_type": "f", "topic": "t", "path": {"prefix": "/e"}},
            {"event_type": "g", "topic": "t", "path": {"prefix": "/g/x"}},
            {"event_type": "h", "topic": "t", "path": {"prefix": "/g/"}}
        ])),
        // Bounds reached exactly.
        rules(
            json!([{"event_type": "i", "topic": "t", "method": "M".repeat(32), "host": "h".repeat(255),
                      "path": {"prefix": format!("/{}", "a".repeat(1023))}}]),
        ),
        with(
            json!({"authority": "a".repeat(255), "path_prefix": format!("/{}", "p".repeat(255)),
                    "headers": ["x".repeat(256)], "auth": {"bearer": "t".repeat(16384)}}),
        ),
        // A large body with no rule capturing bodies: body.max_bytes is unused.
        with(json!({"body": {"max_bytes": 1048576}, "batch": {"max_bytes": 1024}})),
        // Retry budget: 0 disables retries; the shortest delay itself is enough.
        with(json!({"retry": {"initial_backoff_ms": 1000, "jitter": 0.5, "budget_ms": 0}})),
        with(json!({"retry": {"initial_backoff_ms": 1000, "jitter": 0.5, "budget_ms": 500}})),
    ];
    for cfg in ok {
        assert_eq!(errors(&cfg), Vec::<String>::new(), "{cfg}");
    }
}

/// An event with realistic fields other than the body (well within [`EVENT_RESERVE_BYTES`]).
fn bid_event() -> Event {
    Event {
        v: 1,
        id: "0123456789abcdef-1f".into(),
        event_type: "bid".into(),
        ts: 1_764_000_000_000,
        request_id: Some("5f1f6f2e-2b1c-4b8e-9a59-6c1b0f0a9d3e".into()),
        method: "POST".into(),
        host: "rtb.ads.example.com".into(),
        path: "/openrtb2/auction".into(),
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
                .into(),
        ),
        referer: Some("https://publisher.example.com/articles/2026/12/some-page.html".into()),
        client_ip: Some("203.0.113.0".into()),
        status: Some(200),
        ..Event::default()
    }
}

/// The body bound is tight where it must be: at exactly the largest accepted `body.max_bytes`,
/// a body of worst-case bytes for the format (control characters for JSON, non-UTF-8 bytes for
/// MessagePack) makes a record that the pipeline accepts into a batch of `batch.max_bytes`;
/// one byte more is refused at load.
#[test]
fn the_largest_accepted_body_fits_a_batch_in_its_worst_case() {
    for (format, name, worst) in [
        (ValueFormat::Json, "json", 0x01u8),
        (ValueFormat::Msgpack, "msgpack", 0xffu8),
    ] {
        for batch_bytes in [2048usize, 65_536, 1_048_576, 16 * 1024 * 1024] {
            let bound = max_body_bytes(format, batch_bytes, 0, false);
            let max = bound.min(MAX_BODY_BYTES);
            let cfg_for = |body: usize| {
                json!({
                    "cluster": "kafka_rest", "format": name,
                    "batch": {"max_bytes": batch_bytes},
                    "buffer": {"max_bytes": batch_bytes.max(8 * 1024 * 1024)},
                    "body": {"max_bytes": body},
                    "rules": [{"event_type": "bid", "topic": "bids", "method": "POST",
                               "path": {"exact": "/openrtb2/auction"}, "capture_body": true}]
                })
            };
            let cfg = testkit::config(&cfg_for(max));
            let over = errors(&cfg_for(max + 1));
            assert_eq!(over.len(), 1, "{name} {batch_bytes}: {over:?}");
            assert!(over[0].starts_with("body.max_bytes: must be"), "{over:?}");

            // The body as the capture path builds it: the request body was longer than the
            // limit (truncated), in the format's worst-case bytes.
            let mut body = BodyCapture::new(cfg.body.max_bytes);
            body.push(&vec![worst; max + 10], max + 10);
            let mut event = bid_event();
            body.finish(&mut event);
            assert_eq!(event.body_base64, format == ValueFormat::Msgpack);
            let record = to_record(&cfg, 0, &event).unwrap();
            assert!(
                record.size() <= batch_bytes,
                "{name} {batch_bytes}: record of {} bytes",
                record.size()
            );
            // ... and the bound is not loose by more than the reserve.
            assert!(
                bound > MAX_BODY_BYTES || record.size() + EVENT_RESERVE_BYTES + 8 >= batch_bytes,
                "{name} {batch_bytes}: record of {} bytes",
                record.size()
            );
            let mut pipeline = Pipeline::new(&cfg, 7);
            pipeline.push(0, record);
            assert_eq!(pipeline.stats().dropped_for(DropReason::TooLarge), 0);
            assert!(
                pipeline.poll(10_000).is_some(),
                "{name} {batch_bytes}: no batch"
            );
        }
    }
}

/// Struct numbers are doubles: whole ones pass the integer fields, fractions and values out of
/// the integer range are refused by the field's own type check, naming it.
#[test]
fn struct_numbers_in_integer_fields() {
    let struct_of = |v: &Value| struct_encoder::encode_struct(v).unwrap();
    let ok = with(
        json!({"batch": {"max_events": 250.0, "max_bytes": 65536, "max_age_ms": 1e3},
                         "timeout_ms": 2500, "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}, "sample_rate": 1}]}),
    );
    let cfg = Config::parse(&struct_of(&ok)).unwrap();
    assert_fields!(cfg.batch, max_events: 250, max_bytes: 65536, max_age_ms: 1000);
    assert_eq!(cfg.timeout_ms, 2500);
    for (over, want) in [
        (
            json!({"batch": {"max_events": 2.5}}),
            "batch.max_events: invalid type: floating point `2.5`, expected usize",
        ),
        (
            json!({"timeout_ms": 1e30}),
            "timeout_ms: invalid type: floating point `1e+30`, expected u64",
        ),
        (
            json!({"client_ip": {"trusted_hops": -1}}),
            "client_ip.trusted_hops: invalid value: integer `-1`, expected u32",
        ),
    ] {
        assert_eq!(
            errors_of(&struct_of(&with(over.clone()))),
            vec![want],
            "{over}"
        );
    }
}
