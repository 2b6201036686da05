//! Property test of the pipeline against a reference model.
//!
//! Random sequences of operations (push, advance time, poll, answer a call with random
//! per-record outcomes, fail a call, answer an unknown id, begin shutdown, abandon) run against
//! both the real [`Pipeline`] and a deliberately naive model: a `Vec` with one entry per pushed
//! record saying where that record is (buffered, awaiting retry, in flight in batch N, delivered,
//! dropped for a reason). Each record carries its model index in the first eight bytes of its
//! value, so batches are compared by identity.
//!
//! The model decides everything by brute force (scans and sorts over all records), so it shares
//! no data structure with the pipeline. After every step the test checks that every counter and
//! gauge equals the model's, that the accounting invariant holds, that the bounds on held
//! events/bytes and calls in flight hold, that every in-flight batch holds exactly the records
//! the model expects, and that no record ever reaches a second terminal state (delivered twice,
//! or delivered and dropped): a record leaves the model's live states only once.
//!
//! Retry timers come from `retry::backoff_ms` with zero jitter, so the model can compute them.

#![cfg(test)]

use adtap_core::classify::Outcome;
use adtap_core::config::Overflow;
use adtap_core::drop_reason::DropReason;
use adtap_core::pipeline::{BatchId, Pipeline, ResponseReport, Stats, RECORD_OVERHEAD_BYTES};
use adtap_core::rng::Rng;
use adtap_core::testkit;
use adtap_core::{retry, Config};
use proptest::prelude::*;
use serde_json::json;

const TOPICS: usize = 3;
const BATCH_EVENTS: usize = 4;
const BATCH_BYTES: usize = 120;
const MAX_AGE: u64 = 100;
const BUF_EVENTS: usize = 12;
/// Bookkeeping the byte bound counts per held record.
const O: usize = RECORD_OVERHEAD_BYTES;
/// Room for a few records of the sizes generated, so the byte bound binds as often as the
/// event bound.
const BUF_BYTES: usize = 300 + 6 * O;
const MAX_IN_FLIGHT: usize = 2;

/// [`TOPICS`] topics, the bounds above, no jitter. The byte bounds are below what an operator
/// may configure (so that the generated records of tens of bytes reach them): set after
/// validation.
fn config(overflow: Overflow) -> Config {
    let rules: Vec<serde_json::Value> = (0..TOPICS)
        .map(|t| json!({"event_type": "e", "topic": format!("topic{t}"), "path": {"exact": format!("/{t}")}}))
        .collect();
    let overflow = match overflow {
        Overflow::DropNewest => "drop_newest",
        Overflow::DropOldest => "drop_oldest",
    };
    let mut cfg = testkit::config(&json!({
        "cluster": "kafka_rest",
        "rules": rules,
        "batch": {"max_events": BATCH_EVENTS, "max_age_ms": MAX_AGE},
        "buffer": {"max_events": BUF_EVENTS, "overflow": overflow},
        "max_in_flight": MAX_IN_FLIGHT,
        "retry": {"initial_backoff_ms": 50, "max_backoff_ms": 400, "multiplier": 2.0,
                  "jitter": 0.0, "budget_ms": 500}
    }));
    cfg.batch.max_bytes = BATCH_BYTES;
    cfg.buffer.max_bytes = BUF_BYTES;
    cfg
}

#[derive(Debug, Clone)]
enum Op {
    /// Push a record; `topic == TOPICS` is an unconfigured topic.
    Push {
        topic: usize,
        size: usize,
    },
    Advance(u64),
    Poll,
    PollAll,
    /// Answer the in-flight batch `pick % n` with outcomes drawn from `outcomes` (cycled);
    /// `short` sends only half of them (the rest count as Retry).
    Answer {
        pick: usize,
        outcomes: Vec<u8>,
        short: bool,
    },
    Fail {
        pick: usize,
    },
    AnswerUnknown,
    Shutdown,
    Abandon,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..TOPICS, 8usize..=60).prop_map(|(topic, size)| Op::Push { topic, size }),
        1 => (0..=TOPICS, 8usize..=140).prop_map(|(topic, size)| Op::Push { topic, size }),
        4 => (0u64..=150).prop_map(Op::Advance),
        3 => Just(Op::Poll),
        2 => Just(Op::PollAll),
        5 => (any::<usize>(), prop::collection::vec(0u8..3, 1..6), prop::bool::weighted(0.1))
            .prop_map(|(pick, outcomes, short)| Op::Answer { pick, outcomes, short }),
        1 => any::<usize>().prop_map(|pick| Op::Fail { pick }),
        1 => Just(Op::AnswerUnknown),
        1 => Just(Op::Shutdown),
        1 => prop::bool::weighted(0.3).prop_map(|b| if b { Op::Abandon } else { Op::Poll }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Buffered,
    /// Awaiting retry in the entry `(first_failure_ms, entry number)`, at position `pos`.
    Retrying {
        first_failure: u64,
        entry: u64,
        pos: usize,
        due: u64,
    },
    InFlight(BatchId),
    Delivered,
    Dropped(DropReason),
}

impl State {
    /// Held by the pipeline (buffered, awaiting retry or in flight): not yet delivered or
    /// dropped.
    fn is_live(self) -> bool {
        matches!(
            self,
            State::Buffered | State::Retrying { .. } | State::InFlight(_)
        )
    }
}

#[derive(Debug)]
struct Rec {
    topic: usize,
    size: usize,
    arrived: u64,
    /// Retries scheduled so far (the attempt number of the last failure).
    attempts: u32,
    first_failure: Option<u64>,
    state: State,
}

#[derive(Debug)]
struct Batch {
    id: BatchId,
    sent_at: u64,
    recs: Vec<usize>,
}

struct Model {
    cfg: Config,
    now: u64,
    recs: Vec<Rec>,
    in_flight: Vec<Batch>,
    next_entry: u64,
    shutting_down: bool,
    abandoned: bool,
    batches_sent: u64,
    batches_failed: u64,
    retries: u64,
}

impl Model {
    fn held(&self) -> impl Iterator<Item = &Rec> {
        self.recs.iter().filter(|r| r.state.is_live())
    }

    fn stats(&self) -> Stats {
        let mut s = Stats {
            captured: self.recs.len() as u64,
            batches_sent: self.batches_sent,
            batches_failed: self.batches_failed,
            retries: self.retries,
            ..Stats::default()
        };
        for r in &self.recs {
            match r.state {
                State::Buffered | State::Retrying { .. } => s.buffered += 1,
                State::InFlight(_) => s.in_flight += 1,
                State::Delivered => s.delivered += 1,
                State::Dropped(reason) => s.dropped[reason.index()] += 1,
            }
            if r.state.is_live() {
                s.held_bytes += r.size as u64;
            }
        }
        s
    }

    /// Leaves a live state for a terminal one, exactly once.
    fn finish(&mut self, i: usize, to: State) {
        let r = &mut self.recs[i];
        assert!(
            r.state.is_live(),
            "record {i} already {:?}, now {to:?}",
            r.state
        );
        r.state = to;
    }

    fn push(&mut self, topic: usize, size: usize) {
        let i = self.recs.len();
        self.recs.push(Rec {
            topic,
            size,
            arrived: self.now,
            attempts: 0,
            first_failure: None,
            state: State::Buffered,
        });
        let drop_new = |m: &mut Model, reason| m.recs[i].state = State::Dropped(reason);
        if self.abandoned {
            return drop_new(self, DropReason::Shutdown);
        }
        if topic >= TOPICS {
            return drop_new(self, DropReason::Encode);
        }
        if size > BATCH_BYTES || size + O > BUF_BYTES {
            return drop_new(self, DropReason::TooLarge);
        }
        // Held bytes and events, excluding the new record.
        let fits = |m: &Model| {
            let (n, b) = m
                .held()
                .fold((0usize, 0usize), |(n, b), r| (n + 1, b + r.size));
            // The new record is itself Buffered and counted in `held`.
            n <= BUF_EVENTS && b + n * O <= BUF_BYTES
        };
        if fits(self) {
            return;
        }
        let in_flight: Vec<usize> = self
            .held()
            .filter(|r| matches!(r.state, State::InFlight(_)))
            .map(|r| r.size)
            .collect();
        let room_possible = in_flight.len() < BUF_EVENTS
            && in_flight.iter().sum::<usize>() + size + (in_flight.len() + 1) * O <= BUF_BYTES;
        if self.cfg.buffer.overflow == Overflow::DropNewest || !room_possible {
            return drop_new(self, DropReason::BufferFull);
        }
        // Eviction order: retry-waiting by (first failure, entry, position), then buffered by
        // arrival (= index); never the new record itself, which is the newest.
        let mut order: Vec<(u8, u64, u64, usize, usize)> = Vec::new();
        for (j, r) in self.recs.iter().enumerate() {
            match r.state {
                State::Retrying {
                    first_failure,
                    entry,
                    pos,
                    ..
                } => order.push((0, first_failure, entry, pos, j)),
                State::Buffered if j != i => order.push((1, 0, 0, j, j)),
                _ => {}
            }
        }
        order.sort_unstable();
        for (.., j) in order {
            if fits(self) {
                break;
            }
            self.finish(j, State::Dropped(DropReason::BufferFull));
        }
        assert!(fits(self), "model: eviction must make room");
    }

    /// The buffered records of topic `t`, oldest first.
    fn queue(&self, t: usize) -> Vec<&Rec> {
        let queued = |r: &&Rec| r.topic == t && r.state == State::Buffered;
        self.recs.iter().filter(queued).collect()
    }

    fn topic_due(&self, t: usize) -> bool {
        let q = self.queue(t);
        let Some(front) = q.first() else { return false };
        self.shutting_down
            || q.len() >= BATCH_EVENTS
            || q.iter().map(|r| r.size).sum::<usize>() >= BATCH_BYTES
            || self.now.saturating_sub(front.arrived) >= MAX_AGE
    }

    /// The retry entry that is due first, as record indices in order.
    fn due_retry(&self) -> Option<Vec<usize>> {
        let key = self
            .recs
            .iter()
            .filter_map(|r| match r.state {
                State::Retrying {
                    first_failure,
                    entry,
                    due,
                    ..
                } if due <= self.now => Some((first_failure, entry)),
                _ => None,
            })
            .min()?;
        let mut members: Vec<(usize, usize)> = self
            .recs
            .iter()
            .enumerate()
            .filter_map(|(j, r)| match r.state {
                State::Retrying {
                    first_failure,
                    entry,
                    pos,
                    ..
                } if (first_failure, entry) == key => Some((pos, j)),
                _ => None,
            })
            .collect();
        members.sort_unstable();
        Some(members.into_iter().map(|(_, j)| j).collect())
    }

    /// What a batch from topic `t` must hold: the front of its queue within the batch limits.
    fn topic_batch(&self, t: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (j, r) in self.recs.iter().enumerate() {
            if r.topic != t || r.state != State::Buffered {
                continue;
            }
            if out.len() == BATCH_EVENTS || (!out.is_empty() && bytes + r.size > BATCH_BYTES) {
                break;
            }
            bytes += r.size;
            out.push(j);
        }
        out
    }

    fn next_wakeup(&self) -> Option<u64> {
        let retry = self.recs.iter().filter_map(|r| match r.state {
            State::Retrying { due, .. } => Some(due),
            _ => None,
        });
        let topics = (0..TOPICS).filter_map(|t| {
            let q = self.queue(t);
            let front = q.first()?;
            let full =
                q.len() >= BATCH_EVENTS || q.iter().map(|r| r.size).sum::<usize>() >= BATCH_BYTES;
            Some(if full || self.shutting_down {
                front.arrived
            } else {
                front.arrived + MAX_AGE
            })
        });
        retry.chain(topics).min()
    }

    /// Checks one `poll` result against the model and applies it.
    fn poll(&mut self, p: &mut Pipeline) -> bool {
        let out = p.poll(self.now);
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            assert!(out.is_none(), "poll beyond max_in_flight");
            return false;
        }
        let expected_retry = self.due_retry();
        let Some(out) = out else {
            assert!(
                expected_retry.is_none(),
                "a retry was due: {expected_retry:?}"
            );
            for t in 0..TOPICS {
                assert!(!self.topic_due(t), "topic {t} was due at {}", self.now);
            }
            return false;
        };
        let got = records_of(p, out.id);
        assert_eq!(out.record_count, got.len());
        match expected_retry {
            Some(want) => assert_eq!(got, want, "due retry entry"),
            None => {
                let t = self.recs[got[0]].topic;
                assert!(self.topic_due(t), "topic {t} sent but not due");
                assert_eq!(got, self.topic_batch(t), "front of topic {t}");
            }
        }
        assert!(
            self.in_flight.iter().all(|b| b.id != out.id),
            "batch id reused"
        );
        for &j in &got {
            self.recs[j].state = State::InFlight(out.id);
        }
        self.in_flight.push(Batch {
            id: out.id,
            sent_at: self.now,
            recs: got,
        });
        self.batches_sent += 1;
        true
    }

    /// Applies an answer to the model; returns the report the pipeline must give.
    fn answer(&mut self, k: usize, outcomes: &[Outcome]) -> ResponseReport {
        let batch = self.in_flight.remove(k);
        let mut report = ResponseReport {
            rtt_ms: self.now - batch.sent_at,
            ..Default::default()
        };
        let entry = self.next_entry;
        let mut retry = Vec::new();
        for (pos, &j) in batch.recs.iter().enumerate() {
            assert_eq!(self.recs[j].state, State::InFlight(batch.id));
            match outcomes.get(pos).copied().unwrap_or(Outcome::Retry) {
                Outcome::Delivered => {
                    self.finish(j, State::Delivered);
                    report.delivered += 1;
                }
                Outcome::Reject => {
                    self.finish(j, State::Dropped(DropReason::Rejected));
                    report.dropped += 1;
                }
                Outcome::Retry => retry.push(j),
                // The model draws per-record outcomes only; a 413's split of the whole batch
                // is covered by the pipeline's unit tests and the wasm host scenarios.
                Outcome::TooLarge => unreachable!("the model never answers 413"),
            }
        }
        if report.delivered != batch.recs.len() as u64 {
            self.batches_failed += 1;
        }
        if let Some(&j0) = retry.first() {
            let attempt = self.recs[j0].attempts + 1;
            let first_failure = self.recs[j0].first_failure.unwrap_or(self.now);
            let due = self.now + retry::backoff_ms(&self.cfg.retry, attempt, &mut Rng::new(0));
            let give_up = if self.abandoned {
                Some(DropReason::Shutdown)
            } else if !retry::within_budget(&self.cfg.retry, first_failure, due) {
                Some(DropReason::RetryExhausted)
            } else {
                None
            };
            for (pos, &j) in retry.iter().enumerate() {
                let r = &mut self.recs[j];
                assert_eq!(
                    (r.attempts + 1, r.first_failure.unwrap_or(self.now)),
                    (attempt, first_failure)
                );
                match give_up {
                    Some(reason) => {
                        self.finish(j, State::Dropped(reason));
                        report.dropped += 1;
                    }
                    None => {
                        r.attempts = attempt;
                        r.first_failure = Some(first_failure);
                        r.state = State::Retrying {
                            first_failure,
                            entry,
                            pos,
                            due,
                        };
                        report.retried += 1;
                    }
                }
            }
            if give_up.is_none() {
                self.next_entry += 1;
                self.retries += retry.len() as u64;
            }
        }
        report
    }

    fn abandon(&mut self) {
        self.abandoned = true;
        self.shutting_down = true;
        for j in 0..self.recs.len() {
            if matches!(self.recs[j].state, State::Buffered | State::Retrying { .. }) {
                self.finish(j, State::Dropped(DropReason::Shutdown));
            }
        }
    }

    fn check(&self, p: &Pipeline) {
        let s = p.stats();
        assert_eq!(s, &self.stats(), "pipeline stats vs model");
        assert!(s.balanced(), "accounting invariant");
        assert!(s.in_flight + s.buffered <= BUF_EVENTS as u64, "event bound");
        assert!(
            s.held_bytes + (s.in_flight + s.buffered) * O as u64 <= BUF_BYTES as u64,
            "byte bound"
        );
        assert!(p.in_flight_calls() <= MAX_IN_FLIGHT, "in-flight bound");
        assert_eq!(p.in_flight_calls(), self.in_flight.len());
        for b in &self.in_flight {
            assert_eq!(records_of(p, b.id), b.recs, "records of batch {}", b.id);
        }
        assert_eq!(
            p.next_wakeup(),
            self.next_wakeup(),
            "next wakeup at {}",
            self.now
        );
        assert_eq!(p.is_idle(), self.held().next().is_none());
    }
}

/// The model indices of the records of `batch`, which must be in flight.
fn records_of(p: &Pipeline, batch: BatchId) -> Vec<usize> {
    let records = p.in_flight_records(batch);
    let records = records.unwrap_or_else(|| panic!("batch {batch} is not in flight"));
    records
        .iter()
        .map(|r| testkit::record_id(r) as usize)
        .collect()
}

fn outcome(code: u8) -> Outcome {
    match code {
        0 => Outcome::Delivered,
        1 => Outcome::Retry,
        _ => Outcome::Reject,
    }
}

fn run(ops: &[Op], overflow: Overflow, seed: u64) {
    let cfg = config(overflow);
    let mut p = Pipeline::new(&cfg, seed);
    let mut m = Model {
        cfg,
        now: 0,
        recs: Vec::new(),
        in_flight: Vec::new(),
        next_entry: 0,
        shutting_down: false,
        abandoned: false,
        batches_sent: 0,
        batches_failed: 0,
        retries: 0,
    };
    for op in ops {
        match op {
            Op::Push { topic, size } => {
                p.push(m.now, testkit::record(*topic, m.recs.len() as u64, *size));
                m.push(*topic, *size);
            }
            Op::Advance(ms) => m.now += ms,
            Op::Poll => {
                m.poll(&mut p);
            }
            Op::PollAll => while m.poll(&mut p) {},
            Op::Answer {
                pick,
                outcomes,
                short,
            } => {
                if m.in_flight.is_empty() {
                    continue;
                }
                let k = pick % m.in_flight.len();
                let n = m.in_flight[k].recs.len();
                let len = if *short { n / 2 } else { n };
                let list: Vec<Outcome> = (0..len)
                    .map(|i| outcome(outcomes[i % outcomes.len()]))
                    .collect();
                let id = m.in_flight[k].id;
                let want = m.answer(k, &list);
                assert_eq!(
                    p.on_outcomes(m.now, id, &list),
                    want,
                    "report of batch {id}"
                );
            }
            Op::Fail { pick } => {
                if m.in_flight.is_empty() {
                    continue;
                }
                let k = pick % m.in_flight.len();
                let id = m.in_flight[k].id;
                m.answer(k, &[]);
                p.dispatch_failed(m.now, id);
            }
            Op::AnswerUnknown => {
                let mut id: BatchId = 7;
                while m.in_flight.iter().any(|b| b.id == id) {
                    id += 1;
                }
                let before = p.stats().clone();
                assert_eq!(
                    p.on_outcomes(m.now, id, &[Outcome::Delivered]),
                    ResponseReport::default()
                );
                assert_eq!(p.stats(), &before);
            }
            Op::Shutdown => {
                p.begin_shutdown(m.now);
                m.shutting_down = true;
            }
            Op::Abandon => {
                p.abandon();
                m.abandon();
            }
        }
        m.check(&p);
    }
    // Drain: with every call answered as delivered and time moving on, everything ends up
    // delivered or dropped, and the pipeline is idle.
    p.begin_shutdown(m.now);
    m.shutting_down = true;
    for _ in 0..1_000 {
        while m.poll(&mut p) {}
        while let Some(b) = m.in_flight.first() {
            let id = b.id;
            let n = b.recs.len();
            let all = vec![Outcome::Delivered; n];
            let want = m.answer(0, &all);
            assert_eq!(p.on_outcomes(m.now, id, &all), want);
        }
        m.check(&p);
        if p.is_idle() {
            break;
        }
        m.now += 50;
    }
    assert!(p.is_idle(), "pipeline drains");
    let s = p.stats();
    assert_eq!(s.captured, s.delivered + s.dropped_total());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pipeline_matches_model(
        ops in prop::collection::vec(op(), 1..200),
        drop_oldest in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let overflow = if drop_oldest { Overflow::DropOldest } else { Overflow::DropNewest };
        run(&ops, overflow, seed);
    }
}
