//! Unit tests of the pipeline. Time is passed explicitly; records carry their id in the first
//! eight bytes of their value so that batches can be checked by identity (the encoder is not
//! needed for that: [`Pipeline::in_flight_records`]).

use super::*;
use crate::assert_fields;
use crate::testkit::{self, record as rec, record_id as id_of};
use serde_json::json;

/// Three topics (`a`, `b`, `c`), batches of 3 events or 100 ms, a buffer of 100 events, no
/// jitter. The byte bounds (1000 per batch, 10 000 per buffer) are below what an operator may
/// configure, so that a few records of tens of bytes reach them: set after validation.
fn config() -> Config {
    let mut cfg = testkit::config(&json!({
        "cluster": "kafka_rest",
        "rules": [
            {"event_type": "a", "topic": "a", "path": {"exact": "/a"}},
            {"event_type": "b", "topic": "b", "path": {"exact": "/b"}},
            {"event_type": "c", "topic": "c", "path": {"exact": "/c"}}
        ],
        "batch": {"max_events": 3, "max_age_ms": 100},
        "buffer": {"max_events": 100},
        "retry": {"jitter": 0.0}
    }));
    cfg.batch.max_bytes = 1_000;
    cfg.buffer.max_bytes = 10_000;
    cfg
}

/// Bookkeeping bytes the buffer bound counts per record.
const O: usize = super::RECORD_OVERHEAD_BYTES;

/// A pipeline (seed 1) over [`config`] changed by `change`.
fn pipeline(change: impl FnOnce(&mut Config)) -> Pipeline {
    let mut cfg = config();
    change(&mut cfg);
    Pipeline::new(&cfg, 1)
}

/// Pushes 10-byte records with `ids` to `topic` at time 0.
fn push_ids(p: &mut Pipeline, topic: usize, ids: std::ops::Range<u64>) {
    for i in ids {
        p.push(0, rec(topic, i, 10));
    }
}

/// A response with `status` and `body`.
fn response(status: Option<u16>, body: &[u8]) -> Response<'_> {
    Response { status, body }
}

/// The report of an answer after `rtt_ms` that delivered, retried and dropped so many.
fn report(rtt_ms: u64, delivered: u64, retried: u64, dropped: u64) -> ResponseReport {
    ResponseReport {
        rtt_ms,
        delivered,
        retried,
        dropped,
    }
}

fn ids(p: &Pipeline, batch: BatchId) -> Vec<u64> {
    p.in_flight_records(batch)
        .unwrap()
        .iter()
        .map(id_of)
        .collect()
}

/// Shuts down and drains everything buffered into calls (large in-flight limit assumed),
/// returning the ids of each batch.
fn drain_all(p: &mut Pipeline, now: u64) -> Vec<Vec<u64>> {
    p.begin_shutdown(now);
    let mut out = Vec::new();
    while let Some(b) = p.poll(now) {
        out.push(ids(p, b.id));
    }
    out
}

fn dropped(p: &Pipeline, reason: DropReason) -> u64 {
    p.stats().dropped_for(reason)
}

const D: Outcome = Outcome::Delivered;
const R: Outcome = Outcome::Retry;
const X: Outcome = Outcome::Reject;

#[test]
fn nothing_due_when_empty() {
    let mut p = Pipeline::new(&config(), 1);
    assert!(p.poll(0).is_none());
    assert!(p.poll(u64::MAX).is_none());
    assert_eq!(p.next_wakeup(), None);
    assert!(p.is_idle());
    assert_eq!(p.stats(), &Stats::default());
}

#[test]
fn flushes_by_count() {
    let mut p = Pipeline::new(&config(), 1);
    p.push(0, rec(0, 10, 20));
    p.push(0, rec(0, 11, 20));
    assert!(p.poll(0).is_none(), "two of three events, young: not due");
    p.push(0, rec(0, 12, 20));
    let b = p.poll(0).unwrap();
    assert_eq!(b.record_count, 3);
    assert_eq!(ids(&p, b.id), vec![10, 11, 12]);
    let s = p.stats();
    assert_fields!(s, in_flight: 3, buffered: 0, held_bytes: 60, batches_sent: 1);
    assert!(s.balanced());
    assert!(p.poll(0).is_none());
}

#[test]
fn batch_takes_at_most_max_events_from_the_front() {
    let mut p = Pipeline::new(&config(), 1);
    push_ids(&mut p, 0, 0..7);
    let a = p.poll(0).unwrap();
    let b = p.poll(0).unwrap();
    assert_eq!(ids(&p, a.id), vec![0, 1, 2]);
    assert_eq!(ids(&p, b.id), vec![3, 4, 5]);
    assert!(p.poll(0).is_none(), "one left, young");
    assert_eq!(p.stats().buffered, 1);
}

#[test]
fn flushes_by_bytes() {
    let mut p = pipeline(|c| {
        c.batch.max_events = 100;
        c.batch.max_bytes = 100;
    });
    p.push(0, rec(0, 0, 40));
    p.push(0, rec(0, 1, 40));
    assert!(p.poll(0).is_none(), "80 of 100 bytes");
    p.push(0, rec(0, 2, 40));
    let b = p.poll(0).unwrap();
    // 120 bytes buffered reach the trigger; the batch takes what fits in 100.
    assert_eq!(ids(&p, b.id), vec![0, 1]);
    assert!(p.poll(0).is_none(), "40 bytes left, young");
    assert_fields!(p.stats(), buffered: 1, in_flight: 2);
}

#[test]
fn flushes_by_age_at_the_exact_boundary() {
    let mut p = Pipeline::new(&config(), 1);
    p.push(1_000, rec(1, 0, 10));
    p.push(1_050, rec(1, 1, 10));
    assert_eq!(p.next_wakeup(), Some(1_100));
    assert!(p.poll(1_099).is_none());
    let b = p.poll(1_100).unwrap();
    assert_eq!(
        ids(&p, b.id),
        vec![0, 1],
        "the whole queue goes with its oldest record"
    );
    assert_eq!(p.next_wakeup(), None);
}

#[test]
fn respects_max_in_flight() {
    let mut p = pipeline(|c| {
        c.max_in_flight = 2;
        c.batch.max_events = 1;
    });
    push_ids(&mut p, 0, 0..3);
    let a = p.poll(0).unwrap();
    let _b = p.poll(0).unwrap();
    assert!(p.poll(0).is_none(), "two calls in flight");
    assert_eq!(p.in_flight_calls(), 2);
    assert_eq!(
        p.next_wakeup(),
        Some(0),
        "the third is due, only held back by the limit"
    );
    p.on_outcomes(5, a.id, &[D]);
    let c = p.poll(5).unwrap();
    assert_eq!(ids(&p, c.id), vec![2]);
}

#[test]
fn partial_failure_retries_only_the_failed_records() {
    let mut p = pipeline(|c| c.batch.max_events = 4);
    push_ids(&mut p, 2, 0..4);
    let b = p.poll(0).unwrap();
    let report = p.on_outcomes(30, b.id, &[D, R, D, X]);
    assert_eq!(report, self::report(30, 2, 1, 1));
    let s = p.stats().clone();
    assert_fields!(s, delivered: 2, buffered: 1, in_flight: 0, retries: 1);
    assert_eq!(dropped(&p, DropReason::Rejected), 1);
    assert_fields!(s, batches_sent: 1, batches_failed: 1);
    assert_eq!(s.held_bytes, 10);
    assert!(s.balanced());
    assert!(p.in_flight_records(b.id).is_none());

    let due = p.next_wakeup().unwrap();
    let again = p.poll(due).unwrap();
    assert_eq!(again.record_count, 1);
    assert_eq!(ids(&p, again.id), vec![1]);
    let report = p.on_outcomes(due + 1, again.id, &[D]);
    assert_fields!(report, delivered: 1, retried: 0, dropped: 0);
    assert_eq!(p.stats().delivered, 3);
    assert_eq!(
        p.stats().batches_failed,
        1,
        "a full success is not a failure"
    );
    assert!(p.is_idle());
    assert!(p.stats().balanced());
}

#[test]
fn missing_outcomes_count_as_retry_and_extra_ones_are_ignored() {
    let mut p = Pipeline::new(&config(), 1);
    push_ids(&mut p, 0, 0..3);
    let b = p.poll(0).unwrap();
    let report = p.on_outcomes(0, b.id, &[D]);
    assert_fields!(report, delivered: 1, retried: 2);
    let r = p.poll(p.next_wakeup().unwrap()).unwrap();
    assert_eq!(ids(&p, r.id), vec![1, 2]);
    let report = p.on_outcomes(500, r.id, &[D, D, X, X]);
    assert_fields!(report, delivered: 2, dropped: 0);
    assert!(p.is_idle());
}

#[test]
fn retry_timing_follows_the_backoff() {
    let cfg = config();
    let backoff = |attempt| retry::backoff_ms(&cfg.retry, attempt, &mut Rng::new(0));
    let mut p = Pipeline::new(&cfg, 1);
    push_ids(&mut p, 0, 0..3);
    let b = p.poll(0).unwrap();
    p.on_outcomes(1_000, b.id, &[R, R, R]);
    let first = 1_000 + backoff(1);
    assert_eq!(p.next_wakeup(), Some(first));
    assert!(p.poll(first - 1).is_none());
    let b = p.poll(first).unwrap();
    assert_eq!(ids(&p, b.id), vec![0, 1, 2]);
    p.on_outcomes(first + 10, b.id, &[R, D, R]);
    let second = first + 10 + backoff(2);
    assert_eq!(p.next_wakeup(), Some(second));
    assert!(p.poll(second - 1).is_none());
    let b = p.poll(second).unwrap();
    assert_eq!(ids(&p, b.id), vec![0, 2]);
    assert_eq!(p.stats().retries, 5);
}

#[test]
fn retry_budget_exhaustion_drops() {
    let mut p = pipeline(|c| {
        c.retry.max_backoff_ms = 100;
        c.retry.multiplier = 1.0;
        c.retry.budget_ms = 150;
    });
    push_ids(&mut p, 0, 0..3);
    let b = p.poll(0).unwrap();
    // First failure at 0: retry at 100 is within 150.
    assert_eq!(p.on_outcomes(0, b.id, &[R, R, R]).retried, 3);
    let b = p.poll(100).unwrap();
    // Failing again at 100: the next attempt (200) would be past the budget (0 + 150).
    let report = p.on_outcomes(100, b.id, &[R, D, R]);
    assert_fields!(report, delivered: 1, retried: 0, dropped: 2);
    assert_eq!(dropped(&p, DropReason::RetryExhausted), 2);
    assert!(p.is_idle());
    assert!(p.stats().balanced());
    assert_eq!(p.stats().held_bytes, 0);
}

#[test]
fn zero_budget_disables_retries() {
    let mut p = pipeline(|c| c.retry.budget_ms = 0);
    p.push(0, rec(0, 0, 10));
    let b = p.poll(100).unwrap();
    let report = p.on_outcomes(100, b.id, &[R]);
    assert_fields!(report, retried: 0, dropped: 1);
    assert_eq!(dropped(&p, DropReason::RetryExhausted), 1);
    assert_eq!(p.stats().retries, 0);
}

#[test]
fn dispatch_failure_retries_the_whole_batch() {
    let mut p = Pipeline::new(&config(), 1);
    push_ids(&mut p, 0, 0..3);
    let b = p.poll(0).unwrap();
    p.dispatch_failed(0, b.id);
    assert_fields!(p.stats(), in_flight: 0, buffered: 3, retries: 3, batches_failed: 1);
    let r = p.poll(p.next_wakeup().unwrap()).unwrap();
    assert_eq!(ids(&p, r.id), vec![0, 1, 2]);
}

#[test]
fn a_413_splits_the_batch_in_halves_until_single_records_are_dropped() {
    let mut p = Pipeline::new(&config(), 1);
    push_ids(&mut p, 0, 0..3);
    let too_large = |p: &mut Pipeline, now: u64, id: BatchId| {
        let body = br#"{"error_code":413,"message":"Request Entity Too Large"}"#;
        p.on_response(now, id, response(Some(413), body))
    };
    let b = p.poll(0).unwrap();
    assert_fields!(too_large(&mut p, 20, b.id), retried: 3, dropped: 0);
    let s = p.stats().clone();
    assert_fields!(s, buffered: 3, retries: 3, batches_failed: 1);
    assert!(s.balanced());
    // Both halves are due at once (the proxy is healthy: no backoff), first half first.
    assert_eq!(p.next_wakeup(), Some(20));
    let h1 = p.poll(20).unwrap();
    let h2 = p.poll(20).unwrap();
    assert_eq!((ids(&p, h1.id), ids(&p, h2.id)), (vec![0], vec![1, 2]));
    // The pair is still too large: split again; the lone record is too large on its own.
    assert_fields!(too_large(&mut p, 30, h2.id), retried: 2, dropped: 0);
    assert_fields!(too_large(&mut p, 30, h1.id), retried: 0, dropped: 1);
    assert_eq!(dropped(&p, DropReason::TooLarge), 1);
    let q1 = p.poll(30).unwrap();
    let q2 = p.poll(30).unwrap();
    assert_eq!((ids(&p, q1.id), ids(&p, q2.id)), (vec![1], vec![2]));
    p.on_outcomes(40, q1.id, &[D]);
    p.on_outcomes(40, q2.id, &[D]);
    let s = p.stats();
    assert_eq!((s.delivered, s.dropped_total(), s.held_bytes), (2, 1, 0));
    assert!(s.balanced() && p.is_idle());
}

#[test]
fn a_413_splits_only_within_the_retry_budget() {
    let mut p = pipeline(|c| c.retry.budget_ms = 0);
    push_ids(&mut p, 0, 0..3);
    let b = p.poll(0).unwrap();
    let report = p.on_response(5, b.id, response(Some(413), b""));
    let counts = (report.retried, report.dropped);
    assert_eq!(counts, (0, 3), "a zero budget: no resend");
    assert_eq!(dropped(&p, DropReason::RetryExhausted), 3);
    assert!(p.stats().balanced() && p.is_idle());
}

#[test]
fn a_failed_call_without_response_is_retried() {
    // No response at all is retriable in every dialect, whatever else classify decides.
    let mut p = Pipeline::new(&config(), 1);
    p.push(0, rec(0, 0, 10));
    let b = p.poll(100).unwrap();
    let got = p.on_response(140, b.id, response(None, b""));
    assert_eq!(got, report(40, 0, 1, 0));
}

#[test]
fn unknown_or_repeated_ids_are_ignored() {
    let mut p = Pipeline::new(&config(), 1);
    p.push(0, rec(0, 0, 10));
    let b = p.poll(100).unwrap();
    let before = p.stats().clone();
    let other = b.id.wrapping_add(1000);
    assert_eq!(p.on_outcomes(200, other, &[D]), ResponseReport::default());
    p.dispatch_failed(200, other);
    let got = p.on_response(200, other, response(Some(200), b"{}"));
    assert_eq!(got, ResponseReport::default());
    assert_eq!(p.stats(), &before);
    assert_eq!(p.on_outcomes(200, b.id, &[D]).delivered, 1);
    let after = p.stats().clone();
    assert_eq!(
        p.on_outcomes(201, b.id, &[D]),
        ResponseReport::default(),
        "answered twice"
    );
    assert_eq!(p.stats(), &after);
    assert_eq!(after.delivered, 1);
}

#[test]
fn drop_newest_rejects_the_new_record_by_events_and_by_bytes() {
    let mut p = pipeline(|c| c.buffer.max_events = 3);
    for i in 0..5 {
        p.push(0, rec(i as usize % 2, i, 10));
    }
    assert_eq!(dropped(&p, DropReason::BufferFull), 2);
    let mut kept: Vec<u64> = drain_all(&mut p, 0).concat();
    kept.sort_unstable();
    assert_eq!(kept, vec![0, 1, 2]);

    // The byte bound counts each record's bookkeeping too.
    let mut p = pipeline(|c| c.buffer.max_bytes = 100 + 3 * O);
    p.push(0, rec(0, 0, 40));
    p.push(0, rec(0, 1, 40));
    p.push(0, rec(0, 2, 40)); // 120 + 3 O > 100 + 3 O
    p.push(0, rec(0, 3, 20)); // exactly 100 + 3 O
    assert_eq!(dropped(&p, DropReason::BufferFull), 1);
    assert_eq!(p.stats().held_bytes, 100);
    assert_eq!(drain_all(&mut p, 0), vec![vec![0, 1, 3]]);
}

#[test]
fn in_flight_and_retry_records_count_against_the_buffer() {
    let mut p = pipeline(|c| c.buffer.max_events = 4);
    push_ids(&mut p, 0, 0..3);
    let b = p.poll(0).unwrap();
    p.push(0, rec(0, 3, 10));
    p.push(0, rec(0, 4, 10));
    assert_eq!(
        dropped(&p, DropReason::BufferFull),
        1,
        "3 in flight + 1 buffered = 4"
    );
    p.on_outcomes(0, b.id, &[R, D, D]);
    p.push(0, rec(0, 5, 10));
    p.push(0, rec(0, 6, 10));
    p.push(0, rec(0, 7, 10));
    // 1 awaiting retry + 1 buffered + 2 new = 4.
    assert_eq!(dropped(&p, DropReason::BufferFull), 2);
    assert_eq!(p.stats().buffered, 4);
}

#[test]
fn drop_oldest_evicts_in_global_arrival_order() {
    let mut p = pipeline(|c| {
        c.buffer.max_events = 3;
        c.buffer.overflow = Overflow::DropOldest;
    });
    p.push(0, rec(0, 0, 10));
    p.push(0, rec(1, 1, 10));
    p.push(0, rec(0, 2, 10));
    p.push(0, rec(2, 3, 10)); // evicts 0 (topic 0)
    p.push(0, rec(2, 4, 10)); // evicts 1 (topic 1)
    assert_eq!(dropped(&p, DropReason::BufferFull), 2);
    assert_eq!(p.stats().captured, 5);
    assert_eq!(p.stats().buffered, 3);
    assert!(p.stats().balanced());
    let mut kept: Vec<u64> = drain_all(&mut p, 0).concat();
    kept.sort_unstable();
    assert_eq!(kept, vec![2, 3, 4]);
}

#[test]
fn drop_oldest_evicts_exactly_enough_bytes() {
    // Five 10-byte records fill the buffer, bookkeeping included; a record that takes three
    // slots' worth (its bytes and its own bookkeeping) makes exactly three go.
    let mut p = pipeline(|c| {
        c.buffer.max_bytes = 5 * (10 + O);
        c.buffer.overflow = Overflow::DropOldest;
        c.batch.max_events = 100;
    });
    push_ids(&mut p, 0, 0..5);
    p.push(0, rec(0, 5, 30 + 2 * O));
    assert_eq!(dropped(&p, DropReason::BufferFull), 3);
    assert_eq!(p.stats().held_bytes as usize, 20 + 30 + 2 * O);
    assert_eq!(drain_all(&mut p, 0), vec![vec![3, 4, 5]]);
}

#[test]
fn drop_oldest_evicts_retry_waiting_records_first_and_never_in_flight_ones() {
    let mut p = pipeline(|c| {
        c.buffer.max_events = 6;
        c.buffer.overflow = Overflow::DropOldest;
        c.batch.max_events = 2;
    });
    push_ids(&mut p, 0, 0..4);
    let a = p.poll(0).unwrap(); // 0, 1
    let b = p.poll(0).unwrap(); // 2, 3
    p.on_outcomes(10, b.id, &[R, R]); // 2, 3 await a retry; 0, 1 in flight
    p.push(20, rec(1, 4, 10));
    p.push(20, rec(1, 5, 10)); // full: 2 in flight + 2 retry + 2 buffered
    p.push(20, rec(1, 6, 10)); // evicts 2 (awaiting retry), although 4 arrived later
    assert_eq!(dropped(&p, DropReason::BufferFull), 1);
    assert_eq!(p.stats().retries, 2);
    p.push(20, rec(1, 7, 10)); // evicts 3: the retry entry is gone
    p.push(20, rec(1, 8, 10)); // evicts 4, the oldest buffered
    assert_eq!(dropped(&p, DropReason::BufferFull), 3);
    assert_eq!(ids(&p, a.id), vec![0, 1], "in flight untouched");
    assert!(p.stats().balanced());
    assert_eq!(drain_all(&mut p, 20), vec![vec![5, 6], vec![7, 8]]);

    // Everything in flight: the new record is dropped, nothing is evicted.
    let mut p = pipeline(|c| {
        c.buffer.max_events = 3;
        c.buffer.overflow = Overflow::DropOldest;
    });
    push_ids(&mut p, 0, 0..3);
    let b = p.poll(0).unwrap();
    p.push(0, rec(0, 3, 10));
    assert_eq!(dropped(&p, DropReason::BufferFull), 1);
    assert_eq!(ids(&p, b.id), vec![0, 1, 2]);
    assert_eq!(p.stats().buffered, 0);
}

#[test]
fn drop_oldest_does_not_evict_when_in_flight_bytes_leave_no_room() {
    let mut p = pipeline(|c| {
        c.buffer.max_bytes = 100 + 2 * O;
        c.buffer.overflow = Overflow::DropOldest;
        c.batch.max_events = 1;
    });
    p.push(0, rec(0, 0, 60));
    let _ = p.poll(0).unwrap(); // 60 bytes in flight
    p.push(0, rec(0, 1, 10));
    p.push(0, rec(0, 2, 50)); // 60 in flight + 50 > 100 whatever is evicted
    assert_eq!(dropped(&p, DropReason::BufferFull), 1);
    assert_eq!(p.stats().buffered, 1, "record 1 was not sacrificed in vain");
}

#[test]
fn too_large_records_are_dropped() {
    let mut p = pipeline(|c| {
        c.batch.max_bytes = 100;
        c.buffer.max_bytes = 1_000;
    });
    p.push(0, rec(0, 0, 100));
    p.push(0, rec(0, 1, 101));
    let mut q = pipeline(|c| {
        c.batch.max_bytes = 1_000;
        c.buffer.max_bytes = 50;
    });
    q.push(0, rec(0, 0, 51));
    assert_eq!(dropped(&p, DropReason::TooLarge), 1);
    assert_eq!(dropped(&q, DropReason::TooLarge), 1);
    assert_eq!(p.stats().buffered, 1);
    assert!(p.stats().balanced() && q.stats().balanced());
}

#[test]
fn unknown_topic_and_encode_failures_are_counted() {
    let mut p = Pipeline::new(&config(), 1);
    p.push(0, rec(3, 0, 10));
    p.push_failed(DropReason::Encode);
    assert_eq!(p.stats().captured, 2);
    assert_eq!(dropped(&p, DropReason::Encode), 2);
    assert!(p.is_idle() && p.stats().balanced());
}

#[test]
fn topics_take_turns() {
    let mut p = pipeline(|c| {
        c.batch.max_events = 1;
        c.max_in_flight = 100;
    });
    push_ids(&mut p, 0, 0..3);
    p.push(0, rec(1, 10, 10));
    let order: Vec<u64> = (0..4)
        .map(|_| {
            let b = p.poll(0).unwrap();
            ids(&p, b.id)[0]
        })
        .collect();
    assert_eq!(order, vec![0, 10, 1, 2]);
}

#[test]
fn shutdown_makes_buffered_records_due_but_keeps_retry_timers() {
    let mut p = Pipeline::new(&config(), 1);
    p.push(0, rec(0, 0, 10));
    let b = p.poll(100).unwrap();
    p.on_outcomes(100, b.id, &[R]); // due at 200
    p.push(150, rec(1, 1, 10));
    p.push(150, rec(2, 2, 10));
    assert!(p.poll(150).is_none());
    p.begin_shutdown(150);
    assert_eq!(p.next_wakeup(), Some(150));
    let a = p.poll(150).unwrap();
    let c = p.poll(150).unwrap();
    assert_eq!((ids(&p, a.id), ids(&p, c.id)), (vec![1], vec![2]));
    assert!(p.poll(150).is_none(), "the retry keeps its timer");
    assert_eq!(p.next_wakeup(), Some(200));
    let r = p.poll(200).unwrap();
    assert_eq!(ids(&p, r.id), vec![0]);
}

#[test]
fn abandon_drops_what_is_not_in_flight() {
    let mut p = Pipeline::new(&config(), 1);
    push_ids(&mut p, 0, 0..5);
    let a = p.poll(0).unwrap(); // 0, 1, 2
    let b = p.poll(100).unwrap(); // 3, 4
    p.on_outcomes(100, b.id, &[R, D]); // 3 awaits a retry
    p.push(100, rec(1, 5, 10));
    p.abandon();
    assert_eq!(dropped(&p, DropReason::Shutdown), 2);
    let s = p.stats().clone();
    assert_fields!(s, in_flight: 3, buffered: 0, held_bytes: 30);
    assert!(s.balanced());
    assert!(!p.is_idle());
    assert!(p.poll(10_000).is_none());
    // Late answer: retriable records cannot be retried any more.
    let report = p.on_outcomes(200, a.id, &[D, R, X]);
    assert_fields!(report, delivered: 1, retried: 0, dropped: 2);
    assert_eq!(dropped(&p, DropReason::Shutdown), 3);
    assert_eq!(dropped(&p, DropReason::Rejected), 1);
    p.push(300, rec(0, 6, 10));
    assert_eq!(dropped(&p, DropReason::Shutdown), 4);
    assert!(p.is_idle());
    assert!(p.stats().balanced());
    assert_eq!(p.stats().held_bytes, 0);
}

#[test]
fn batch_ids_differ_between_seeds() {
    let cfg = config();
    let mut a = Pipeline::new(&cfg, 1);
    let mut b = Pipeline::new(&cfg, 2);
    for p in [&mut a, &mut b] {
        p.push(0, rec(0, 0, 10));
    }
    assert_ne!(a.poll(1_000).unwrap().id, b.poll(1_000).unwrap().id);
}

#[test]
fn abandon_in_flight_counts_unanswered_calls_once() {
    let mut p = Pipeline::new(&config(), 1);
    push_ids(&mut p, 0, 0..5);
    let a = p.poll(0).unwrap(); // 0, 1, 2 in flight
    p.abandon_all();
    // Everything held is gone: 3 in flight and 2 buffered.
    assert_eq!(dropped(&p, DropReason::Shutdown), 5);
    let s = p.stats().clone();
    assert_fields!(s, in_flight: 0, buffered: 0, held_bytes: 0);
    assert!(s.balanced());
    assert!(p.is_idle());
    // A late answer to the forgotten call changes nothing.
    let report = p.on_outcomes(200, a.id, &[D, D, D]);
    assert_eq!(report, ResponseReport::default());
    assert_eq!(p.stats().delivered, 0);
    assert!(p.stats().balanced());
}

#[test]
fn each_topic_accounts_for_its_own_events() {
    let mut p = pipeline(|c| {
        c.buffer.max_events = 4;
        c.batch.max_events = 2;
    });
    // Topic 0: three events, one dropped for a full buffer later; topic 1: two; topic 2: none.
    p.push(0, rec(0, 0, 10));
    p.push(0, rec(0, 1, 10));
    p.push(0, rec(1, 2, 10));
    p.push(0, rec(1, 3, 10));
    p.push(0, rec(0, 4, 10)); // buffer full: dropped, counted under topic 0
    p.push(0, rec(9, 5, 10)); // no such topic: counted in the totals only
    let a = p.poll(0).unwrap(); // topic 0: 0, 1
    let b = p.poll(0).unwrap(); // topic 1: 2, 3
    p.on_outcomes(1, a.id, &[D, X]);
    p.on_outcomes(1, b.id, &[D, D]);
    let counts: Vec<TopicCounts> = p.topic_counts().collect();
    let c = |captured, delivered, dropped| TopicCounts {
        captured,
        delivered,
        dropped,
    };
    assert_eq!(counts, vec![c(3, 1, 2), c(2, 2, 0), c(0, 0, 0)]);
    // Settled, so each topic balances, and the topics add up to the totals but for the one
    // event of no configured topic.
    let s = p.stats();
    assert!(p.is_idle());
    assert_eq!(
        counts.iter().map(|t| t.captured).sum::<u64>() + 1,
        s.captured
    );
    assert_eq!(counts.iter().map(|t| t.delivered).sum::<u64>(), s.delivered);
    assert_eq!(
        counts.iter().map(|t| t.dropped).sum::<u64>() + 1,
        s.dropped_total()
    );
}
