//! The per-worker pipeline: buffer, batching triggers, calls in flight, retries and accounting.
//!
//! Each Envoy worker owns one [`Pipeline`] in its root context: single-threaded, no locks, no
//! buffer swap. The glue pushes finished records, asks [`Pipeline::poll`] on every tick for
//! batches that are due, dispatches them, and reports each answer with
//! [`Pipeline::on_response`]. Invariant, after every call:
//! `captured = delivered + Σ dropped[reason] + in_flight + buffered`.
//!
//! STUB: interfaces agreed; implementation pending.

use crate::classify::{DropReason, Response};
use crate::config::Config;
use crate::encode::HttpRequest;
use crate::event::Record;

/// Identifies a batch between [`Pipeline::poll`] and [`Pipeline::on_response`].
pub type BatchId = u64;

/// A batch ready to be dispatched.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Batch id to report the answer with.
    pub id: BatchId,
    /// Number of records in it.
    pub records: usize,
    /// The HTTP request to send.
    pub request: HttpRequest,
}

/// The accounting counters (events, not batches, unless named so).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted (pushed), whatever became of them.
    pub captured: u64,
    /// Events the REST proxy acknowledged.
    pub delivered: u64,
    /// Events dropped, by [`DropReason::index`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// Events in calls not yet answered (gauge).
    pub in_flight: u64,
    /// Events buffered or waiting for a retry (gauge).
    pub buffered: u64,
    /// Encoded bytes buffered, awaiting retry or in flight (gauge).
    pub buffered_bytes: u64,
    /// Calls dispatched.
    pub batches_sent: u64,
    /// Calls whose answer was not a full success.
    pub batches_failed: u64,
    /// Records scheduled for another attempt.
    pub retries: u64,
}

impl Stats {
    /// Sum of all drop reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
    /// Whether the accounting invariant holds.
    pub fn balanced(&self) -> bool {
        self.captured == self.delivered + self.dropped_total() + self.in_flight + self.buffered
    }
}

/// What one answer did, for the glue's metrics and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseReport {
    /// Round-trip time of the call, ms.
    pub rtt_ms: u64,
    /// Records delivered.
    pub delivered: u64,
    /// Records scheduled for retry.
    pub retried: u64,
    /// Records dropped (rejected or out of retry budget).
    pub dropped: u64,
}

/// The per-worker buffer and delivery state.
#[derive(Debug)]
pub struct Pipeline {
    stats: Stats,
}

impl Pipeline {
    /// A pipeline for `cfg`, with a seed for retry jitter.
    pub fn new(cfg: &Config, seed: u64) -> Pipeline {
        let _ = (cfg, seed);
        Pipeline { stats: Stats::default() }
    }
    /// Accepts a finished record (counts `captured`), applying the overflow policy.
    pub fn push(&mut self, now_ms: u64, record: Record) {
        let _ = (now_ms, record);
    }
    /// Counts an event that was captured but could not be encoded.
    pub fn push_failed(&mut self, reason: DropReason) {
        let _ = reason;
    }
    /// The next batch due at `now_ms` (by count, bytes, age, or retry timer) within the
    /// in-flight limit; call until `None`.
    pub fn poll(&mut self, now_ms: u64) -> Option<Outbound> {
        let _ = now_ms;
        None
    }
    /// The batch could not even be dispatched (host refused): treated as a failed call.
    pub fn dispatch_failed(&mut self, now_ms: u64, id: BatchId) {
        let _ = (now_ms, id);
    }
    /// The answer to batch `id`.
    pub fn on_response(&mut self, now_ms: u64, id: BatchId, response: Response<'_>) -> ResponseReport {
        let _ = (now_ms, id, response);
        ResponseReport::default()
    }
    /// Starts shutdown: from now on everything buffered is due at once, regardless of age.
    pub fn begin_shutdown(&mut self, now_ms: u64) {
        let _ = now_ms;
    }
    /// Drops (as [`DropReason::Shutdown`]) everything still buffered or awaiting retry; calls in
    /// flight stay in flight.
    pub fn abandon(&mut self) {}
    /// Nothing buffered, awaiting retry or in flight.
    pub fn is_idle(&self) -> bool {
        self.stats.in_flight == 0 && self.stats.buffered == 0
    }
    /// Current counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
