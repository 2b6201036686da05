//! One scenario description, two drivers: the release `adtap.wasm` in the host, and the core's
//! own [`Vm`] driven natively through the core's [`FakeHost`], the way Envoy drives the glue. After
//! every step both must show the same accounting and the same calls in flight (same path, same
//! records in the same order), the invariant must hold, and `Expect` steps pin exact numbers.
//! A difference means the glue does something the core's own tests cannot see (or the reverse).
//!
//! The native driver plays Envoy's part: each request is one `on_log` of a new stream context;
//! ticks fall every `tick_ms` from the start; a call past its timeout is answered 504; a root
//! that called `done()` is deleted with its pending calls. Jitter is 0 in these scenarios, so
//! retry times do not depend on the seed. Both drivers are read through the stats they publish.

#![cfg(test)]

mod common;

use adtap_core::config::{Config, Dialect, ValueFormat};
use adtap_core::drop_reason::DropReason::{self, BufferFull, Rejected, RetryExhausted, Shutdown};
use adtap_core::headers::HeaderPairs;
use adtap_core::host::{FakeCall, FakeHost};
use adtap_core::vm::Vm;
use adtap_wasm_host::Host;
use common::adtap::*;
use serde_json::{json, Value};

/// How a call is answered.
#[derive(Debug, Clone)]
enum Reply {
    /// 200, every record acknowledged.
    Ok,
    /// 200, v2 offsets: `None` delivered, `Some(code)` that error code.
    Codes(Vec<Option<i64>>),
    /// That status with an error body.
    Status(u16),
    /// No headers (reset).
    Fail,
}

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Step {
    /// Requests `/imp?n=i` for each i in the range.
    Requests(u32, u32),
    /// Time passes (ticks and timeouts fire on the way).
    Advance(u64),
    /// Answers the `i`-th pending call (oldest first).
    Answer(usize, Reply),
    /// Answers every pending call with 200 until none is left.
    AnswerAll,
    /// The root's `on_done`.
    Shutdown,
    /// Exact accounting and the `n`s of each pending call (written with [`expect!`]).
    Expect(Want),
}

/// What an `Expect` step pins: the accounting and the `n`s of each pending call. The default
/// is nothing anywhere: 0 everywhere, no drop, no call pending.
#[derive(Debug, Clone, Copy, Default)]
struct Want {
    captured: u64,
    delivered: u64,
    /// The drops by reason; a reason not listed dropped nothing.
    dropped: &'static [(DropReason, u64)],
    in_flight: u64,
    buffered: u64,
    calls: &'static [&'static [u32]],
}

/// An `Expect` step naming the fields of [`Want`] that are not 0 (or empty), the others left
/// at their default: e.g.
/// `expect!(captured: 7, in_flight: 6, buffered: 1, calls: &[&[0, 1, 2], &[3, 4, 5]])`.
macro_rules! expect {
    ($($field:ident: $value:expr),+ $(,)?) => {
        Step::Expect(Want { $($field: $value,)+ ..Want::default() })
    };
}

/// What both drivers must agree on after each step.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    captured: u64,
    delivered: u64,
    dropped: [u64; 6],
    in_flight: u64,
    buffered: u64,
    retries: u64,
    batches_sent: u64,
    batches_failed: u64,
    /// Per pending call: its path and the `n` of each record.
    calls: Vec<(String, Vec<u32>)>,
}

trait Driver {
    fn requests(&mut self, from: u32, to: u32);
    fn advance(&mut self, ms: u64);
    fn answer(&mut self, i: usize, reply: &Reply);
    fn shutdown(&mut self);
    fn seen(&mut self) -> Seen;
}

fn reply_body(dialect: Dialect, n: usize, reply: &Reply) -> (Option<u16>, String) {
    match reply {
        Reply::Ok => (Some(200), ok_body(dialect, n)),
        Reply::Codes(codes) => {
            assert_eq!(codes.len(), n);
            (Some(200), v2_partial_body(codes))
        }
        Reply::Status(s) => (
            Some(*s),
            json!({"error_code": u32::from(*s) * 100 + 1, "message": "x"}).to_string(),
        ),
        Reply::Fail => (None, String::new()),
    }
}

// ---- the .wasm ------------------------------------------------------------------------------

struct WasmDriver {
    h: Host,
    dialect: Dialect,
}

impl Driver for WasmDriver {
    fn requests(&mut self, from: u32, to: u32) {
        impressions(&mut self.h, from, to - from);
    }
    fn advance(&mut self, ms: u64) {
        pass(&mut self.h, ms);
    }
    fn answer(&mut self, i: usize, reply: &Reply) {
        let call = calls(&self.h).remove(i);
        let n = decode_call(&call, self.dialect, ValueFormat::Json).len();
        match reply_body(self.dialect, n, reply) {
            (None, _) => ok(&mut self.h, |h| h.fail_call(call.token)),
            (Some(s), body) => respond_json(&mut self.h, call.token, s, &body),
        }
    }
    fn shutdown(&mut self) {
        ok(&mut self.h, |h| h.shutdown());
    }
    fn seen(&mut self) -> Seen {
        // After done() the filter published its final numbers; before, a tick publishes.
        let c = if self.h.is_done() {
            assert_balanced(&self.h)
        } else {
            check(&mut self.h)
        };
        let u = |v: i64| u64::try_from(v).unwrap();
        Seen {
            captured: u(c.captured),
            delivered: u(c.delivered),
            dropped: [
                c.buffer_full,
                c.retry_exhausted,
                c.rejected,
                c.encode,
                c.too_large,
                c.shutdown,
            ]
            .map(u),
            in_flight: u(c.in_flight),
            buffered: u(c.buffered),
            retries: u(c.retries),
            batches_sent: u(c.batches_sent),
            batches_failed: u(c.batches_failed),
            calls: calls(&self.h)
                .iter()
                .map(|c| {
                    (
                        c.header(":path").unwrap().to_string(),
                        ns(c, self.dialect, ValueFormat::Json),
                    )
                })
                .collect(),
        }
    }
}

// ---- the native core ------------------------------------------------------------------------

/// The root context id both drivers use (the wasm host's too).
const ROOT: u32 = 1;

/// A call in flight in the native driver, with its timeout's deadline.
struct NativeCall {
    call: FakeCall,
    deadline: u64,
}

/// The core's own [`Vm`], driven the way Envoy drives the glue.
struct CoreDriver {
    vm: Vm,
    host: FakeHost,
    now: u64,
    calls: Vec<NativeCall>,
    dialect: Dialect,
    tick_ms: u64,
    next_tick: u64,
    next_context: u32,
}

impl CoreDriver {
    fn new(config: &Value) -> CoreDriver {
        let cfg = Config::parse(&serde_json::to_vec(config).unwrap()).unwrap();
        let mut d = CoreDriver {
            vm: Vm::new(7),
            host: FakeHost::default(),
            now: T0_MS,
            calls: Vec::new(),
            dialect: cfg.dialect,
            tick_ms: cfg.tick_ms,
            next_tick: T0_MS + cfg.tick_ms,
            next_context: 2,
        };
        let bytes = serde_json::to_vec(config).unwrap();
        assert!(d.vm.on_configure(&mut d.host, ROOT, T0_MS, &bytes));
        d
    }

    fn now(&self) -> u64 {
        self.now
    }

    /// Takes what the VM dispatched into the driver's calls, with their deadlines.
    fn collect(&mut self) {
        for call in self.host.calls.drain(..) {
            let deadline = self.now + call.timeout_ms;
            self.calls.push(NativeCall { call, deadline });
        }
    }

    fn respond(&mut self, i: usize, status: Option<u16>, body: &[u8]) {
        let call = self.calls.remove(i).call;
        self.host.answer = (status, body.to_vec());
        let headers = usize::from(status.is_some());
        let now = self.now();
        self.vm
            .on_http_call_response(&mut self.host, now, call.token, headers, body.len());
        self.after();
    }

    fn tick(&mut self) {
        let now = self.now();
        self.vm.on_tick(&mut self.host, ROOT, now);
        self.after();
    }

    fn done(&self) -> bool {
        self.host.done_calls > 0
    }

    /// Collects new calls; Envoy deletes a root that called `done()`, cancelling its calls.
    fn after(&mut self) {
        self.collect();
        if self.done() {
            self.calls.clear();
        }
    }
}

impl Driver for CoreDriver {
    fn requests(&mut self, from: u32, to: u32) {
        for i in from..to {
            let path = format!("/imp?n={i}");
            self.host.request = Some(HeaderPairs::from_pairs(&[
                (":method", "GET"),
                (":path", path.as_str()),
                (":authority", "ads.example"),
            ]));
            self.host.status = Some(200);
            let (ctx, now) = (self.next_context, self.now());
            self.next_context += 1;
            self.vm.on_log(&mut self.host, ctx, now);
            assert!(self.vm.on_done(&mut self.host, ctx, now));
        }
    }
    fn advance(&mut self, ms: u64) {
        let target = self.now() + ms;
        loop {
            let timeout = self
                .calls
                .iter()
                .enumerate()
                .map(|(i, c)| (c.deadline, i))
                .min();
            match timeout {
                Some((t, i)) if t <= target && t <= self.next_tick => {
                    self.now = self.now().max(t);
                    self.respond(i, Some(504), b"upstream request timeout");
                }
                _ if self.next_tick <= target => {
                    self.now = self.now().max(self.next_tick);
                    self.next_tick += self.tick_ms;
                    if !self.done() {
                        self.tick();
                    }
                }
                _ => break,
            }
        }
        self.now = target;
    }
    fn answer(&mut self, i: usize, reply: &Reply) {
        let n = decode_body(
            &self.calls[i].call.request.body,
            self.dialect,
            ValueFormat::Json,
        )
        .len();
        let (status, body) = reply_body(self.dialect, n, reply);
        self.respond(i, status, body.as_bytes());
    }
    fn shutdown(&mut self) {
        let now = self.now();
        if self.vm.on_done(&mut self.host, ROOT, now) {
            // Finished at once: Envoy deletes the root without waiting for done().
            self.host.done_calls += 1;
        }
        self.after();
    }
    fn seen(&mut self) -> Seen {
        // The wasm driver ticks at the current instant to publish: do what that tick does.
        if !self.done() {
            self.tick();
        }
        let m = |name: &str| u64::try_from(self.host.metric(name)).unwrap();
        let dropped = DropReason::ALL.map(|r| m(&format!("adtap_dropped_{}", r.name())));
        let seen = Seen {
            captured: m("adtap_captured"),
            delivered: m("adtap_delivered"),
            dropped,
            in_flight: m("adtap_in_flight"),
            buffered: m("adtap_buffered"),
            retries: m("adtap_retries"),
            batches_sent: m("adtap_batches_sent"),
            batches_failed: m("adtap_batches_failed"),
            calls: self
                .calls
                .iter()
                .map(|c| {
                    let req = &c.call.request;
                    let recs = decode_body(&req.body, self.dialect, ValueFormat::Json);
                    (
                        req.header(":path").unwrap().to_string(),
                        recs.iter().map(|r| r.n().unwrap()).collect(),
                    )
                })
                .collect(),
        };
        assert_eq!(
            seen.captured,
            seen.delivered + seen.dropped.iter().sum::<u64>() + seen.in_flight + seen.buffered,
            "native invariant: {seen:?}"
        );
        seen
    }
}

// ---- running one description through both ---------------------------------------------------

fn run(name: &str, config: Value, steps: &[Step]) {
    let mut wasm = WasmDriver {
        h: start(&config),
        dialect: Config::parse(&serde_json::to_vec(&config).unwrap())
            .unwrap()
            .dialect,
    };
    let mut core = CoreDriver::new(&config);
    for (i, step) in steps.iter().enumerate() {
        let drivers: [&mut dyn Driver; 2] = [&mut wasm, &mut core];
        for d in drivers {
            match step {
                Step::Requests(a, b) => d.requests(*a, *b),
                Step::Advance(ms) => d.advance(*ms),
                Step::Answer(k, r) => d.answer(*k, r),
                Step::AnswerAll => {
                    while !d.seen().calls.is_empty() {
                        d.answer(0, &Reply::Ok);
                    }
                }
                Step::Shutdown => d.shutdown(),
                Step::Expect(_) => {}
            }
        }
        let (w, c) = (wasm.seen(), core.seen());
        assert_eq!(
            w, c,
            "{name}, step {i} {step:?}: wasm (left) and core (right) differ"
        );
        if let Step::Expect(want) = step {
            let mut dropped = [0u64; 6];
            for (r, n) in want.dropped {
                dropped[r.index()] = *n;
            }
            let got_calls: Vec<&[u32]> = w.calls.iter().map(|(_, n)| n.as_slice()).collect();
            assert_eq!(
                (w.captured, w.delivered, w.dropped, w.in_flight, w.buffered),
                (
                    want.captured,
                    want.delivered,
                    dropped,
                    want.in_flight,
                    want.buffered
                ),
                "{name}, step {i}"
            );
            assert_eq!(got_calls, want.calls, "{name}, step {i}");
        }
    }
    assert_eq!(wasm.h.is_done(), core.done(), "{name}: shutdown state");
}

#[test]
fn dual_flush_by_count_and_age() {
    run(
        "flush by count and age",
        config(json!({"batch": {"max_events": 3, "max_age_ms": 500}})),
        &[
            Step::Requests(0, 2),
            expect!(captured: 2, buffered: 2),
            Step::Requests(2, 7),
            expect!(captured: 7, in_flight: 6, buffered: 1, calls: &[&[0, 1, 2], &[3, 4, 5]]),
            Step::Answer(0, Reply::Ok),
            Step::Advance(400),
            expect!(captured: 7, delivered: 3, in_flight: 3, buffered: 1, calls: &[&[3, 4, 5]]),
            Step::Advance(100),
            expect!(captured: 7, delivered: 3, in_flight: 4, calls: &[&[3, 4, 5], &[6]]),
            Step::Answer(0, Reply::Ok),
            Step::Answer(0, Reply::Ok),
            expect!(captured: 7, delivered: 7),
        ],
    );
}

#[test]
fn dual_partial_retry_and_rejects() {
    run(
        "partial retry",
        config(json!({"batch": {"max_events": 4},
                      "retry": {"initial_backoff_ms": 300, "jitter": 0.0, "budget_ms": 1000}})),
        &[
            Step::Requests(0, 4),
            Step::Answer(
                0,
                Reply::Codes(vec![None, Some(50003), Some(40401), Some(2)]),
            ),
            expect!(captured: 4, delivered: 1, dropped: &[(Rejected, 1)], buffered: 2),
            Step::Advance(300),
            expect!(captured: 4, delivered: 1, dropped: &[(Rejected, 1)],
                    in_flight: 2, calls: &[&[1, 3]]),
            Step::Answer(0, Reply::Codes(vec![Some(50003), None])),
            Step::Advance(600),
            expect!(captured: 4, delivered: 2, dropped: &[(Rejected, 1)],
                    in_flight: 1, calls: &[&[1]]),
            // Third failure at T0+900: the next try (+1200) is past the 1000 ms budget.
            Step::Answer(0, Reply::Status(503)),
            expect!(captured: 4, delivered: 2, dropped: &[(Rejected, 1), (RetryExhausted, 1)]),
            Step::Requests(4, 8),
            Step::Answer(0, Reply::Status(400)),
            expect!(captured: 8, delivered: 2, dropped: &[(Rejected, 5), (RetryExhausted, 1)]),
        ],
    );
}

#[test]
fn dual_overflow_both_policies() {
    for policy in ["drop_newest", "drop_oldest"] {
        // Nine requests before the first tick into a buffer of six.
        type Calls = &'static [&'static [u32]];
        let (first, second): (Calls, Calls) = if policy == "drop_newest" {
            (&[&[0, 1, 2]], &[&[3, 4, 5]])
        } else {
            (&[&[3, 4, 5]], &[&[6, 7, 8]])
        };
        run(
            policy,
            config(json!({"buffer": {"max_events": 6, "overflow": policy},
                          "batch": {"max_events": 3}, "max_in_flight": 1,
                          "retry": {"initial_backoff_ms": 200, "jitter": 0.0}})),
            &[
                Step::Requests(0, 9),
                expect!(captured: 9, dropped: &[(BufferFull, 3)],
                        in_flight: 3, buffered: 3, calls: first),
                Step::Answer(0, Reply::Fail),
                expect!(captured: 9, dropped: &[(BufferFull, 3)],
                        in_flight: 3, buffered: 3, calls: second),
                // The failed batch waits for its retry; two more arrive into a full buffer:
                // dropped (drop_newest), or they evict two records awaiting the retry.
                Step::Requests(9, 11),
                Step::Advance(200),
                expect!(captured: 11, dropped: &[(BufferFull, 5)],
                        in_flight: 3, buffered: 3, calls: second),
                Step::AnswerAll,
                Step::Shutdown,
                Step::AnswerAll,
                expect!(captured: 11, delivered: 6, dropped: &[(BufferFull, 5)]),
            ],
        );
    }
}

#[test]
fn dual_timeouts_and_shutdown_deadline() {
    run(
        "timeouts",
        config(json!({"timeout_ms": 700, "shutdown_deadline_ms": 1500,
                      "batch": {"max_events": 2},
                      "retry": {"initial_backoff_ms": 250, "jitter": 0.0}})),
        &[
            Step::Requests(0, 5),
            Step::Advance(700),
            expect!(captured: 5, buffered: 5),
            Step::Advance(250),
            Step::Answer(1, Reply::Ok),
            Step::Shutdown,
            // Flushed [4]; [0, 1] times out at +700 again and is retried at +250, twice.
            Step::Advance(1400),
            expect!(captured: 5, delivered: 2, in_flight: 3, calls: &[&[4], &[0, 1]]),
            // The deadline (+1500) passes with both calls unanswered: done, and their records
            // are counted as dropped at shutdown (the VM is about to go). Envoy then deletes
            // the root context and cancels its calls.
            Step::Advance(200),
            expect!(captured: 5, delivered: 2, dropped: &[(Shutdown, 3)]),
            // Nothing runs after done(): no ticks, no timeouts, nothing changes.
            Step::Advance(1000),
            expect!(captured: 5, delivered: 2, dropped: &[(Shutdown, 3)]),
        ],
    );
}
