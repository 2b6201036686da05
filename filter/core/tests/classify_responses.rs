//! Response classification against response bodies in each proxy's documented shape
//! (`tests/fixtures/`, see its README), including partial failures, plus robustness: any body
//! gives exactly `n` outcomes without panicking.

#![cfg(test)]

use adtap_core::classify::{classify, code_outcome, kafka_code_outcome, Outcome, Response};
use adtap_core::config::Dialect;
use proptest::prelude::*;
use std::path::PathBuf;

use Dialect::{ConfluentV2 as V2, ConfluentV3 as V3, Redpanda as RP};
use Outcome::{Delivered as D, Reject as X, Retry as R, TooLarge as T};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(dialect: Dialect, status: Option<u16>, body: &[u8], n: usize) -> Vec<Outcome> {
    classify(dialect, Response { status, body }, n)
}

/// Every fixture with the status it comes with and the outcomes it must give.
#[test]
fn fixtures_classify_as_documented() {
    let cases: &[(&str, Dialect, u16, &[Outcome])] = &[
        // Confluent v2: HTTP 200 even with failed records; look at each error_code.
        ("confluent_v2_200_all_ok.json", V2, 200, &[D, D, D]),
        (
            "confluent_v2_200_partial.json",
            V2,
            200,
            &[D, R, X, R, X, D],
        ),
        ("confluent_v2_404_topic_not_found.json", V2, 404, &[X, X]),
        ("confluent_v2_401_unauthorized.json", V2, 401, &[X, X]),
        ("confluent_v2_403_forbidden.json", V2, 403, &[X, X]),
        ("confluent_v2_422_schema.json", V2, 422, &[X, X]),
        ("confluent_v2_500_kafka_error.json", V2, 500, &[R, R]),
        ("confluent_v2_503_broker_unavailable.json", V2, 503, &[R, R]),
        // Karapace: 422 for the whole response when any record failed; per record inside.
        ("karapace_422_partial.json", V2, 422, &[D, R, R, X, D]),
        ("karapace_422_invalid_data.json", V2, 422, &[X, X, X]),
        ("karapace_408_schema_retrieval.json", V2, 408, &[R, R]),
        ("karapace_503_unavailable.json", V2, 503, &[R]),
        // Redpanda: one entry per partition; the batch shares the worst outcome.
        ("redpanda_200_all_ok.json", RP, 200, &[D, D, D, D, D]),
        ("redpanda_200_not_leader.json", RP, 200, &[R, R, R, R]),
        ("redpanda_200_message_too_large.json", RP, 200, &[X, X, X]),
        (
            "redpanda_200_topic_authorization_failed.json",
            RP,
            200,
            &[X, X],
        ),
        ("redpanda_404_unknown_topic.json", RP, 404, &[X, X]),
        // Confluent v3: concatenated delivery reports, one per record, in order.
        ("confluent_v3_200_all_ok.concat.json", V3, 200, &[D, D, D]),
        (
            "confluent_v3_200_partial.concat.json",
            V3,
            200,
            &[D, X, R, R, D, X, X, R],
        ),
        (
            "confluent_v3_200_truncated.concat.json",
            V3,
            200,
            &[D, D, R, R],
        ),
        ("confluent_v3_404_cluster_not_found.json", V3, 404, &[X, X]),
        ("confluent_v3_413_too_large.json", V3, 413, &[T]),
        (
            "confluent_v3_415_unsupported_media_type.json",
            V3,
            415,
            &[X, X],
        ),
        ("confluent_v3_422_empty_body.json", V3, 422, &[X]),
        ("confluent_v3_429_rate_limited.html", V3, 429, &[R, R, R]),
        ("confluent_v3_500_internal.json", V3, 500, &[R, R]),
        // Envoy's own answers, whatever the dialect.
        ("envoy_503_upstream_connect.txt", V2, 503, &[R, R]),
        ("envoy_503_upstream_connect.txt", V3, 503, &[R, R]),
        ("envoy_504_timeout.txt", RP, 504, &[R, R]),
    ];
    for (name, dialect, status, expected) in cases {
        let body = fixture(name);
        let got = run(*dialect, Some(*status), &body, expected.len());
        assert_eq!(&got, expected, "{name} ({dialect:?}, HTTP {status})");
    }
}

#[test]
fn no_response_is_retried_in_every_dialect() {
    for dialect in [V2, V3, RP] {
        assert_eq!(run(dialect, None, b"", 3), [R, R, R]);
        // Even if some bytes were somehow passed along.
        assert_eq!(
            run(dialect, None, &fixture("confluent_v2_200_all_ok.json"), 3),
            [R, R, R]
        );
    }
}

#[test]
fn retriable_and_permanent_statuses_ignore_the_body() {
    let ok_body = fixture("confluent_v2_200_all_ok.json");
    let cases: &[(&[u16], &[u8], &[Outcome])] = &[
        (&[408, 429, 500, 502, 503, 504, 599], &ok_body, &[R, R, R]),
        (
            &[400, 401, 403, 404, 405, 409, 415, 499],
            &ok_body,
            &[X, X, X],
        ),
        // The request was too large, not its records: the pipeline splits the batch.
        (&[413], &ok_body, &[T, T, T]),
        // A redirect or an informational status is a misrouted call, not a verdict on the data.
        (&[100, 301, 302, 307, 600, 0], b"", &[R, R]),
    ];
    for dialect in [V2, V3, RP] {
        for &(statuses, body, want) in cases {
            for &status in statuses {
                let got = run(dialect, Some(status), body, want.len());
                assert_eq!(got, want, "{dialect:?} {status}");
            }
        }
    }
}

#[test]
fn karapace_422_offsets_are_not_read_as_v3_reports() {
    // v3 has no Karapace: a 422 there is a request-level rejection whatever the body says.
    let body = fixture("karapace_422_partial.json");
    assert_eq!(run(V3, Some(422), &body, 5), [X; 5]);
}

#[test]
fn v2_length_mismatch_falls_back_to_per_partition_aggregation() {
    // Three records, two offsets entries: per-partition semantics (some proxies group).
    let ok = br#"{"offsets":[{"partition":0,"offset":1,"error_code":null},{"partition":1,"offset":2,"error_code":null}]}"#;
    assert_eq!(run(V2, Some(200), ok, 3), [D, D, D]);
    let retry = br#"{"offsets":[{"partition":0,"offset":1},{"partition":1,"error_code":50003,"error":"x"}]}"#;
    assert_eq!(run(V2, Some(200), retry, 3), [R, R, R]);
    let reject = br#"{"offsets":[{"partition":0,"offset":1},{"partition":1,"error_code":50002,"error":"x"}]}"#;
    assert_eq!(run(V2, Some(200), reject, 3), [X, X, X]);
    // A retriable error wins over a permanent one: the records may be among the retriable.
    let both = br#"{"offsets":[{"error_code":50002},{"error_code":2}]}"#;
    assert_eq!(run(V2, Some(200), both, 3), [R, R, R]);
}

#[test]
fn redpanda_never_maps_entries_to_records_even_when_counts_match() {
    // Two records, two partition entries: the order is by partition, not by record, so one
    // failed partition fails the whole batch.
    let body =
        br#"{"offsets":[{"partition":0,"offset":5},{"partition":1,"error_code":7,"offset":-1}]}"#;
    assert_eq!(run(RP, Some(200), body, 2), [R, R]);
    let body =
        br#"{"offsets":[{"partition":0,"offset":5},{"partition":1,"error_code":87,"offset":-1}]}"#;
    assert_eq!(run(RP, Some(200), body, 2), [X, X]);
}

#[test]
fn empty_offsets_acknowledge_nothing() {
    assert_eq!(run(V2, Some(200), br#"{"offsets":[]}"#, 2), [R, R]);
    assert_eq!(run(RP, Some(200), br#"{"offsets":[]}"#, 2), [R, R]);
    // With no records, there is nothing to say.
    assert_eq!(run(V2, Some(200), br#"{"offsets":[]}"#, 0), []);
}

#[test]
fn unparseable_success_bodies_are_retried() {
    for body in [
        &b""[..],
        b"OK",
        b"{",
        b"[]",
        b"{\"offsets\":null}",
        b"{\"offsets\":[{\"error_code\":\"x\"}]}",
    ] {
        assert_eq!(
            run(V2, Some(200), body, 2),
            [R, R],
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(run(RP, Some(200), body, 2), [R, R]);
        assert_eq!(run(V3, Some(200), body, 2), [R, R]);
    }
    // A 204 with no body acknowledges nothing.
    assert_eq!(run(V3, Some(204), b"", 1), [R]);
}

#[test]
fn v3_reports_beyond_the_batch_are_ignored_and_garbage_stops_the_reading() {
    let two_ok = br#"{"error_code":200,"offset":1}{"error_code":200,"offset":2}{"error_code":200,"offset":3}"#;
    assert_eq!(run(V3, Some(200), two_ok, 2), [D, D]);
    let garbage_mid = br#"{"error_code":200,"offset":1} xx {"error_code":200,"offset":3}"#;
    assert_eq!(run(V3, Some(200), garbage_mid, 3), [D, R, R]);
    // A report without error_code but with an offset is a success; with neither, unknown.
    let no_code = br#"{"offset":1,"partition_id":0}{"partition_id":0}"#;
    assert_eq!(run(V3, Some(200), no_code, 2), [D, R]);
    // A report that is not an object.
    assert_eq!(
        run(V3, Some(200), br#"{"error_code":200,"offset":1} 42"#, 2),
        [D, R]
    );
}

#[test]
fn karapace_code_1_with_a_timeout_message_is_retried() {
    let body = br#"{"offsets":[{"error_code":1,"error":"Publish message cancelled"},{"error_code":1,"error":"Invalid data"},{"error_code":1}]}"#;
    assert_eq!(run(V2, Some(422), body, 3), [R, X, X]);
}

#[test]
fn confluent_code_table() {
    let cases: &[(&[i64], Outcome)] = &[
        (&[0, 200], D),
        (
            &[1, 40101, 40301, 40401, 40402, 40403, 42201, 42207, 50002],
            X,
        ),
        (&[2, 40801, 42901, 50003, 50301, 50302], R),
        (&[400, 413], X),
        (&[408, 429, 500, 503], R),
        // Unknown: retried within the budget.
        (&[7, -1, 123_456], R),
    ];
    for &(codes, expected) in cases {
        for &code in codes {
            assert_eq!(code_outcome(code), expected, "code {code}");
        }
    }
}

#[test]
fn kafka_code_table() {
    for code in [-1, 2, 3, 5, 6, 7, 8, 9, 13, 19, 20, 56, 74, 75, 89, 100] {
        assert_eq!(kafka_code_outcome(code), R, "kafka code {code}");
    }
    for code in [10, 17, 18, 21, 29, 31, 32, 35, 43, 44, 53, 76, 87] {
        assert_eq!(kafka_code_outcome(code), X, "kafka code {code}");
    }
    assert_eq!(kafka_code_outcome(0), D);
    assert_eq!(kafka_code_outcome(999), R);
}

proptest! {
    /// Whatever arrives, every record gets exactly one outcome, and nothing panics.
    #[test]
    fn any_body_gives_n_outcomes(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        status in proptest::option::of(0u16..700),
        n in 0usize..64,
        d in 0usize..3,
    ) {
        let dialect = [V2, V3, RP][d];
        prop_assert_eq!(run(dialect, status, &body, n).len(), n);
    }

    /// Structured near-misses: plausible JSON with random codes and counts.
    #[test]
    fn plausible_bodies_give_n_outcomes(
        codes in proptest::collection::vec(proptest::option::of(-5i64..100_000), 0..20),
        n in 0usize..20,
        status in prop_oneof![Just(200u16), Just(207), Just(422)],
        d in 0usize..3,
    ) {
        let dialect = [V2, V3, RP][d];
        let entry = |c: &Option<i64>| match c {
            Some(c) => format!(r#"{{"partition":0,"offset":-1,"error_code":{c},"error":"e"}}"#),
            None => r#"{"partition":0,"offset":3,"error_code":null}"#.to_string(),
        };
        let v2 = format!(r#"{{"offsets":[{}]}}"#, codes.iter().map(entry).collect::<Vec<_>>().join(","));
        let v3: String = codes.iter().map(entry).collect();
        for body in [v2.as_bytes(), v3.as_bytes()] {
            let out = run(dialect, Some(status), body, n);
            prop_assert_eq!(out.len(), n);
        }
    }

    /// v2 per-record results follow the code table record by record.
    #[test]
    fn v2_per_record_follows_the_code_table(
        codes in proptest::collection::vec(proptest::option::of(prop_oneof![Just(1i64), Just(2), Just(50002), Just(50003), Just(40101)]), 1..30),
    ) {
        let entry = |c: &Option<i64>| match c {
            Some(c) => format!(r#"{{"partition":null,"offset":null,"error_code":{c},"error":"e"}}"#),
            None => r#"{"partition":0,"offset":3,"error_code":null,"error":null}"#.to_string(),
        };
        let body = format!(r#"{{"offsets":[{}]}}"#, codes.iter().map(entry).collect::<Vec<_>>().join(","));
        let expected: Vec<Outcome> = codes.iter().map(|c| c.map_or(D, code_outcome)).collect();
        prop_assert_eq!(run(V2, Some(200), body.as_bytes(), codes.len()), expected);
    }
}
