//! One worker's delivery state and its lifecycle, behind every root context that shares it.
//!
//! A [`Worker`] is what one configuration holds in one Envoy worker's VM: the validated
//! [`Config`], the [`Pipeline`] (buffer, batches, retries, accounting), the event-id sequence,
//! the sampling RNG, the calls in flight, and its [`Phase`]. Roots with the same configuration
//! in one VM (the access logger and the HTTP filter of one Envoy) share one worker, so there is
//! one buffer, one set of batches and one accounting per worker thread.
//!
//! Lifecycle: `Running` → (the last root using it gets `on_done`) `Draining` with a deadline →
//! `Finished`. While draining everything buffered is due at once; at the deadline whatever is
//! still held is counted as dropped for shutdown, so the last published numbers balance.
//!
//! Every `mono_ms` is the VM's monotonic clock ([`crate::vm::Clock`]): the pipeline's timers
//! and the drain deadline run on it, never on wall time.

use crate::classify::Response;
use crate::drop_reason::DropReason;
use crate::encode::EncodeError;
use crate::event::Record;
use crate::host::{Host, LogLevel};
use crate::metrics::{self, Local, COUNT};
use crate::pipeline::{BatchId, Pipeline, ResponseReport, Stats};
use crate::record::{self, EventId, Scratch};
use crate::rng::Rng;
use crate::Config;

/// Least interval between two logs of failed batches, so an outage logs a summary, not a flood.
const FAILURE_LOG_INTERVAL_MS: u64 = 10_000;

/// Largest REST proxy answer read; a v2 offsets entry is ~70 bytes, so this covers any batch.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// Where a worker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Capturing and shipping.
    Running,
    /// No root captures into it any more; shipping what it holds until idle or the deadline.
    Draining {
        /// Monotonic ms past which what remains is dropped as `shutdown`.
        deadline_ms: u64,
    },
    /// Holds nothing; its numbers are final.
    Finished,
}

/// One configuration's state in one VM.
#[derive(Debug)]
pub struct Worker {
    cfg: Config,
    pipeline: Pipeline,
    rng: Rng,
    vm_id: u64,
    seq: u64,
    local: Local,
    /// Call token → batch id, for the calls this worker has in flight.
    calls: Vec<(u32, BatchId)>,
    phase: Phase,
    failures: FailureLog,
    /// Record-writing scratch space, reused for every event.
    scratch: Scratch,
}

impl Worker {
    /// A worker for `cfg`; `seed` feeds the VM id, sampling and jitter.
    pub fn new(cfg: Config, seed: u64) -> Worker {
        let mut rng = Rng::new(seed);
        let vm_id = rng.next_u64();
        let pipeline = Pipeline::new(&cfg, rng.next_u64());
        Worker {
            cfg,
            pipeline,
            rng,
            vm_id,
            seq: 0,
            local: Local::default(),
            calls: Vec::new(),
            phase: Phase::Running,
            failures: FailureLog::default(),
            scratch: Scratch::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether an HTTP filter on this configuration collects request bodies: some rule
    /// captures them. The body streams by before the rules can be matched (at log time), so
    /// it is collected for every request that enters the filter with a body; the generated
    /// native matcher (`native`) keeps the requests no rule matches out.
    pub fn wants_bodies(&self) -> bool {
        self.cfg.rules.iter().any(|r| r.capture_body)
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> &Stats {
        self.pipeline.stats()
    }

    /// The request counters.
    pub fn local(&self) -> &Local {
        &self.local
    }

    /// Mutable request counters, for the capture session.
    pub(crate) fn local_mut(&mut self) -> &mut Local {
        &mut self.local
    }

    /// The sampling RNG.
    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Each configured topic's share of the accounting: its name and its captured, delivered
    /// and dropped counts ([`metrics::TOPIC_SERIES`] order).
    pub fn topic_values(&self) -> impl Iterator<Item = (&str, [u64; 3])> + '_ {
        self.cfg
            .topics
            .iter()
            .zip(self.pipeline.topic_counts())
            .map(|(name, c)| (name.as_str(), [c.captured, c.delivered, c.dropped]))
    }

    /// Every published value of this worker.
    pub fn values(&self) -> [u64; COUNT] {
        metrics::values(self.pipeline.stats(), &self.local)
    }

    /// A fresh event id, unique across workers and restarts (random VM id + sequence).
    pub fn next_event_id(&mut self) -> EventId {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        EventId {
            vm: self.vm_id,
            seq,
        }
    }

    /// Writes the record of one captured request, through this worker's reusable scratch.
    pub fn write_record(&mut self, fields: &record::Fields<'_>) -> Result<Record, EncodeError> {
        record::write(&self.cfg, fields, &mut self.scratch)
    }

    /// Hands a finished record to the pipeline; one that could not be written is counted as
    /// dropped for `encode`.
    pub fn accept(&mut self, mono_ms: u64, record: Result<Record, EncodeError>) {
        match record {
            Ok(record) => self.pipeline.push(mono_ms, record),
            Err(_) => self.pipeline.push_failed(DropReason::Encode),
        }
    }

    /// Dispatches every batch that is due, within the in-flight limit.
    pub fn ship(&mut self, mono_ms: u64, host: &mut dyn Host) {
        while let Some(out) = self.pipeline.poll(mono_ms) {
            match host.dispatch(&self.cfg.cluster, &out.request, self.cfg.timeout_ms) {
                Ok(token) => self.calls.push((token, out.id)),
                Err(e) => {
                    // Unknown cluster or a bad header: the records go back for a retry; the
                    // budget bounds how long this can last.
                    self.local.dispatch_errors += 1;
                    self.pipeline.dispatch_failed(mono_ms, out.id);
                    let what = format!("dispatch to cluster `{}` refused: {e:?}", self.cfg.cluster);
                    self.failures.note(host, mono_ms, &what);
                    break;
                }
            }
        }
    }

    /// Whether `token` is one of this worker's calls.
    pub fn owns_call(&self, token: u32) -> bool {
        self.calls.iter().any(|(t, _)| *t == token)
    }

    /// The answer to call `token`. Returns what it did (`None` for a token this worker does not
    /// know, e.g. a call abandoned at the deadline). Ships again: a freed call slot may let a
    /// waiting batch go now rather than on the next tick.
    pub fn on_answer(
        &mut self,
        mono_ms: u64,
        host: &mut dyn Host,
        token: u32,
        status: Option<u16>,
        body: &[u8],
    ) -> Option<ResponseReport> {
        let at = self.calls.iter().position(|(t, _)| *t == token)?;
        let (_, id) = self.calls.swap_remove(at);
        let report = self
            .pipeline
            .on_response(mono_ms, id, Response { status, body });
        if report.retried > 0 || report.dropped > 0 {
            let status = status.map_or("no response".to_string(), |s| format!("HTTP {s}"));
            let what = format!(
                "batch answered {status}: {} delivered, {} to retry, {} dropped",
                report.delivered, report.retried, report.dropped
            );
            self.failures.note(host, mono_ms, &what);
        }
        self.ship(mono_ms, host);
        Some(report)
    }

    /// Starts the final flush: everything buffered is due at once, until idle or `deadline`.
    pub fn begin_drain(&mut self, mono_ms: u64, host: &mut dyn Host) {
        if self.phase != Phase::Running {
            return;
        }
        self.pipeline.begin_shutdown(mono_ms);
        self.phase = Phase::Draining {
            deadline_ms: mono_ms.saturating_add(self.cfg.shutdown_deadline_ms),
        };
        self.ship(mono_ms, host);
        self.settle(mono_ms);
    }

    /// While draining: finishes when idle, or at the deadline, counting what remains as
    /// dropped for shutdown. Returns true once finished.
    pub fn settle(&mut self, mono_ms: u64) -> bool {
        match self.phase {
            Phase::Running => false,
            Phase::Finished => true,
            Phase::Draining { deadline_ms } => {
                if mono_ms >= deadline_ms && !self.pipeline.is_idle() {
                    self.abandon();
                }
                if self.pipeline.is_idle() {
                    self.phase = Phase::Finished;
                }
                self.phase == Phase::Finished
            }
        }
    }

    /// Gives up on everything held (a root reconfigured in place, or the deadline): counted as
    /// dropped for shutdown. A late answer then finds no token and records nothing.
    pub fn abandon(&mut self) {
        self.pipeline.abandon_all();
        self.calls.clear();
        self.phase = Phase::Finished;
    }
}

/// Rate-limited logging of delivery failures.
#[derive(Debug, Default)]
struct FailureLog {
    last: Option<u64>,
    since_last: u64,
}

impl FailureLog {
    /// Logs a failure at most once per interval, with how many were folded into it.
    fn note(&mut self, host: &mut dyn Host, mono_ms: u64, what: &str) {
        self.since_last += 1;
        let due = self
            .last
            .is_none_or(|t| mono_ms.saturating_sub(t) >= FAILURE_LOG_INTERVAL_MS);
        if due {
            host.log(
                LogLevel::Warn,
                &format!(
                    "{what} ({} failure(s) since the last report)",
                    self.since_last
                ),
            );
            self.last = Some(mono_ms);
            self.since_last = 0;
        }
    }
}
