//! The per-worker pipeline: buffer, batching triggers, calls in flight, retries and accounting.
//!
//! Each Envoy worker owns one [`Pipeline`] in its root context: single-threaded, no locks, no
//! buffer swap. The glue pushes finished records, asks [`Pipeline::poll`] on every tick for
//! batches that are due, dispatches them, and reports each answer with
//! [`Pipeline::on_response`]. Invariant, after every call:
//! `captured = delivered + Σ dropped[reason] + in_flight + buffered`.
//!
//! # Where a record lives
//! Every accepted record is in exactly one of three places until it is delivered or dropped:
//! - a **topic queue** (`VecDeque` per configured topic, arrival order): batches are per topic
//!   because the REST path is;
//! - a **retry entry**: the records of one answered batch that must be sent again, with their
//!   attempt number, the time they first failed (the retry budget runs from there) and when they
//!   are due. Entries are kept ordered by first failure, so the front entry holds the records that
//!   have been failing longest;
//! - an **in-flight batch**: the records of a dispatched call, kept so that only the ones that
//!   failed are retried (a batch's records are one slice, in the order of the request).
//!
//! The buffer bounds (`buffer.max_events`, `buffer.max_bytes`) count all three places, so the
//! memory a worker holds is bounded whatever the REST proxy does. A record in a topic queue or
//! a retry entry is *buffered* ([`Stats::buffered`]); in any of the three it is *held*
//! ([`Stats::held_bytes`]).
//!
//! Every `mono_ms` is the VM's monotonic clock ([`crate::vm::Clock`]), never wall time.
//!
//! # Overflow with `drop_oldest`
//! Records awaiting a retry are evicted first (front entry first, i.e. the oldest first failure),
//! then buffered records in global arrival order (the oldest front among the topic queues; a
//! scan over the few configured topics). Retry-waiting records go first because they have been
//! held longest and already failed at least once: under an outage they are the bulk of the
//! buffer and the least likely to make it. In-flight records are never evicted; when even
//! evicting everything else would not make room, the new record is dropped instead and nothing
//! is evicted. Each eviction is O(1) (amortised) or O(topics).
//!
//! # Batch ids
//! Ids start at a value drawn from the seed, so answers to calls of a replaced pipeline (a
//! configuration reload) are very unlikely to match a batch of the new one; an unknown id is
//! ignored.

use std::collections::VecDeque;

use crate::classify::{self, Outcome, Response};
use crate::config::{Config, Overflow};
use crate::drop_reason::DropReason;
use crate::encode::{self, HttpRequest};
use crate::event::Record;
use crate::retry;
use crate::rng::Rng;

#[cfg(test)]
mod tests;

/// Memory a held record takes beyond its encoded bytes, counted against `buffer.max_bytes`:
/// its slot in a queue (about 56 bytes in wasm32, more while a queue's capacity doubles), the
/// allocator's headers and rounding of its value and key, and the key's own allocation.
/// Measured: at 16 MiB of records the VM's linear memory was 4 MiB over the bound without it
/// (about 100 bytes per ~420-byte record).
pub const RECORD_OVERHEAD_BYTES: usize = 96;

/// The memory `n` held records of `bytes` encoded bytes in all take, as the buffer bound
/// counts it.
fn held_memory(bytes: usize, n: usize) -> usize {
    bytes.saturating_add(n.saturating_mul(RECORD_OVERHEAD_BYTES))
}

/// Identifies a batch between [`Pipeline::poll`] and [`Pipeline::on_response`].
pub type BatchId = u64;

/// A batch ready to be dispatched.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Batch id to report the answer with.
    pub id: BatchId,
    /// How many records it carries.
    pub record_count: usize,
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
    /// Events buffered: in a topic queue or awaiting a retry, not in flight (gauge,
    /// `adtap_buffered`). With [`Stats::in_flight`], every event held.
    pub buffered: u64,
    /// Encoded bytes (value, key and record headers, [`Record::size`]) of every record held: buffered,
    /// awaiting a retry or in flight (gauge, `adtap_held_bytes`). `buffer.max_bytes` bounds
    /// these plus [`RECORD_OVERHEAD_BYTES`] per record.
    pub held_bytes: u64,
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
    /// Events dropped for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped.get(reason.index()).copied().unwrap_or(0)
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

/// A buffered record and when it arrived (age trigger) in which order (drop_oldest).
#[derive(Debug)]
struct Queued {
    seq: u64,
    arrived_ms: u64,
    record: Record,
}

/// One topic's buffered records, in arrival order.
#[derive(Debug, Default)]
struct TopicQueue {
    records: VecDeque<Queued>,
    bytes: usize,
    /// This topic's share of the accounting.
    counts: TopicCounts,
}

/// One topic's share of the accounting ([`Pipeline::topic_counts`]): events pushed for it,
/// delivered, and dropped for any reason. Events whose topic is not configured (an encoding
/// failure) count in the totals only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicCounts {
    /// Events accepted for this topic.
    pub captured: u64,
    /// Of them, acknowledged by the REST proxy.
    pub delivered: u64,
    /// Of them, dropped (any reason).
    pub dropped: u64,
}

/// Records of one answered batch waiting for another attempt.
#[derive(Debug)]
struct RetryEntry {
    topic: usize,
    records: VecDeque<Record>,
    bytes: usize,
    /// The attempt that failed (1 = the first retry is next).
    attempt: u32,
    first_failure_ms: u64,
    due_at: u64,
}

/// A dispatched, unanswered call.
#[derive(Debug)]
struct InFlight {
    id: BatchId,
    topic: usize,
    records: Vec<Record>,
    bytes: usize,
    sent_at: u64,
    /// Retries this batch already had (0 = first send).
    attempt: u32,
    /// When its records first failed, if this is a retry.
    first_failure_ms: Option<u64>,
}

/// The per-worker buffer and delivery state.
#[derive(Debug)]
pub struct Pipeline {
    cfg: Config,
    rng: Rng,
    topics: Vec<TopicQueue>,
    /// Round-robin cursor, so that a busy topic cannot starve the others.
    next_topic: usize,
    /// Ordered by `first_failure_ms` (ties: insertion order).
    retries: VecDeque<RetryEntry>,
    /// At most `max_in_flight` entries: a linear search beats hashing here.
    in_flight: Vec<InFlight>,
    next_id: BatchId,
    next_seq: u64,
    queued_events: usize,
    retry_events: usize,
    in_flight_events: usize,
    /// Bytes of every held record (queued, awaiting retry, in flight).
    held_bytes: usize,
    in_flight_bytes: usize,
    shutting_down: bool,
    abandoned: bool,
    stats: Stats,
}

impl Pipeline {
    /// A pipeline for `cfg`, with a seed for retry jitter.
    pub fn new(cfg: &Config, seed: u64) -> Pipeline {
        let mut rng = Rng::new(seed);
        // Keep ids far from u64::MAX wrapping and from small numbers a previous pipeline used.
        let next_id = (rng.next_u64() >> 16) | 1;
        Pipeline {
            cfg: cfg.clone(),
            rng,
            topics: (0..cfg.topics.len())
                .map(|_| TopicQueue::default())
                .collect(),
            next_topic: 0,
            retries: VecDeque::new(),
            in_flight: Vec::new(),
            next_id,
            next_seq: 0,
            queued_events: 0,
            retry_events: 0,
            in_flight_events: 0,
            held_bytes: 0,
            in_flight_bytes: 0,
            shutting_down: false,
            abandoned: false,
            stats: Stats::default(),
        }
    }

    /// Accepts a finished record (counts `captured`), applying the overflow policy.
    ///
    /// A record larger than the batch or buffer byte limit is dropped as
    /// [`DropReason::TooLarge`]; one whose topic index is not configured as
    /// [`DropReason::Encode`] (no request could carry it); after [`Pipeline::abandon`] every new
    /// record is dropped as [`DropReason::Shutdown`].
    pub fn push(&mut self, mono_ms: u64, record: Record) {
        self.stats.captured += 1;
        let topic = record.topic;
        if let Some(q) = self.topics.get_mut(topic) {
            q.counts.captured += 1;
        }
        let size = record.size();
        if self.abandoned {
            self.drop_in(topic, DropReason::Shutdown, 1);
            return;
        }
        if topic >= self.topics.len() {
            self.count_drop(DropReason::Encode, 1);
            return;
        }
        if size > self.cfg.batch.max_bytes || held_memory(size, 1) > self.cfg.buffer.max_bytes {
            self.drop_in(topic, DropReason::TooLarge, 1);
            return;
        }
        if !self.fits(size) {
            let room_possible = self.in_flight_events < self.cfg.buffer.max_events
                && held_memory(self.in_flight_bytes, self.in_flight_events)
                    .saturating_add(held_memory(size, 1))
                    <= self.cfg.buffer.max_bytes;
            if self.cfg.buffer.overflow == Overflow::DropNewest || !room_possible {
                self.drop_in(topic, DropReason::BufferFull, 1);
                return;
            }
            while !self.fits(size) {
                if !self.evict_oldest() {
                    // Unreachable given `room_possible`; keep the accounting right regardless.
                    self.sync_gauges();
                    self.drop_in(topic, DropReason::BufferFull, 1);
                    return;
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        if let Some(q) = self.topics.get_mut(record.topic) {
            q.bytes += size;
            q.records.push_back(Queued {
                seq,
                arrived_ms: mono_ms,
                record,
            });
            self.queued_events += 1;
            self.held_bytes += size;
        } else {
            // Checked above; never let a record vanish from the accounting regardless.
            self.count_drop(DropReason::Encode, 1);
        }
        self.sync_gauges();
    }

    /// Counts an event that was captured but could not be encoded.
    pub fn push_failed(&mut self, reason: DropReason) {
        self.stats.captured += 1;
        self.count_drop(reason, 1);
    }

    /// The next batch due at `mono_ms` (by count, bytes, age, or retry timer) within the
    /// in-flight limit; call until `None`.
    ///
    /// Retry entries whose timer has passed go first (oldest first failure first), then topic
    /// queues in round-robin order. A batch takes up to `batch.max_events` records and
    /// `batch.max_bytes` bytes from the front of one topic queue.
    pub fn poll(&mut self, mono_ms: u64) -> Option<Outbound> {
        if self.in_flight.len() >= self.cfg.max_in_flight {
            return None;
        }
        if let Some(i) = self.retries.iter().position(|e| e.due_at <= mono_ms) {
            let entry = self.retries.remove(i)?;
            self.retry_events = self.retry_events.saturating_sub(entry.records.len());
            return Some(self.send(
                mono_ms,
                entry.topic,
                Vec::from(entry.records),
                entry.bytes,
                entry.attempt,
                Some(entry.first_failure_ms),
            ));
        }
        let n = self.topics.len();
        for k in 0..n {
            let t = (self.next_topic + k) % n;
            let due = self
                .topics
                .get(t)
                .is_some_and(|q| self.topic_due(q, mono_ms));
            if !due {
                continue;
            }
            self.next_topic = (t + 1) % n;
            let max_events = self.cfg.batch.max_events.max(1);
            let max_bytes = self.cfg.batch.max_bytes;
            let q = self.topics.get_mut(t)?;
            let mut records = Vec::with_capacity(q.records.len().min(max_events));
            let mut bytes = 0usize;
            while records.len() < max_events {
                let Some(front) = q.records.front() else {
                    break;
                };
                let size = front.record.size();
                // Always take one, so that progress never depends on the limits being sane.
                if !records.is_empty() && bytes.saturating_add(size) > max_bytes {
                    break;
                }
                let Some(item) = q.records.pop_front() else {
                    break;
                };
                bytes += size;
                records.push(item.record);
            }
            q.bytes = q.bytes.saturating_sub(bytes);
            self.queued_events = self.queued_events.saturating_sub(records.len());
            return Some(self.send(mono_ms, t, records, bytes, 0, None));
        }
        None
    }

    /// The batch could not even be dispatched (host refused): treated as a failed call.
    pub fn dispatch_failed(&mut self, mono_ms: u64, id: BatchId) {
        // No outcomes: every record counts as Retry.
        self.on_outcomes(mono_ms, id, &[]);
    }

    /// The answer to batch `id`: classified per the configured dialect, then applied as
    /// [`Pipeline::on_outcomes`]. An unknown id (e.g. answered after a reload) is ignored.
    pub fn on_response(
        &mut self,
        mono_ms: u64,
        id: BatchId,
        response: Response<'_>,
    ) -> ResponseReport {
        let Some(n) = self
            .in_flight
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.records.len())
        else {
            return ResponseReport::default();
        };
        let outcomes = classify::classify(self.cfg.dialect, response, n);
        self.on_outcomes(mono_ms, id, &outcomes)
    }

    /// Applies one outcome per record of batch `id`, in the order of the request. Missing
    /// outcomes count as [`Outcome::Retry`], extra ones are ignored; an unknown id is ignored.
    ///
    /// Retried records keep the time they first failed: they are scheduled at
    /// `now + backoff(attempt)` if that is within the retry budget, else dropped as
    /// [`DropReason::RetryExhausted`] (or as [`DropReason::Shutdown`] after
    /// [`Pipeline::abandon`]).
    pub fn on_outcomes(
        &mut self,
        mono_ms: u64,
        id: BatchId,
        outcomes: &[Outcome],
    ) -> ResponseReport {
        let Some(pos) = self.in_flight.iter().position(|b| b.id == id) else {
            return ResponseReport::default();
        };
        let batch = self.in_flight.swap_remove(pos);
        let n = batch.records.len();
        self.in_flight_events = self.in_flight_events.saturating_sub(n);
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(batch.bytes);
        let mut report = ResponseReport {
            rtt_ms: mono_ms.saturating_sub(batch.sent_at),
            ..ResponseReport::default()
        };
        let mut retry_records = VecDeque::new();
        let mut retry_bytes = 0usize;
        let mut too_large = Vec::new();
        let mut rejected = 0u64;
        for (i, record) in batch.records.into_iter().enumerate() {
            let size = record.size();
            match outcomes.get(i).copied().unwrap_or(Outcome::Retry) {
                Outcome::Delivered => {
                    report.delivered += 1;
                    self.held_bytes = self.held_bytes.saturating_sub(size);
                }
                Outcome::Reject => {
                    rejected += 1;
                    self.held_bytes = self.held_bytes.saturating_sub(size);
                }
                Outcome::Retry => {
                    retry_bytes += size;
                    retry_records.push_back(record);
                }
                Outcome::TooLarge => too_large.push(record),
            }
        }
        self.stats.delivered += report.delivered;
        if let Some(q) = self.topics.get_mut(batch.topic) {
            q.counts.delivered += report.delivered;
        }
        self.drop_in(batch.topic, DropReason::Rejected, rejected);
        report.dropped = rejected;
        if !too_large.is_empty() {
            let origin = (batch.topic, batch.attempt, batch.first_failure_ms);
            self.split(mono_ms, origin, too_large, &mut report);
        }
        if report.delivered != n as u64 {
            self.stats.batches_failed += 1;
        }
        if !retry_records.is_empty() {
            let k = retry_records.len() as u64;
            let attempt = batch.attempt.saturating_add(1);
            let first_failure_ms = batch.first_failure_ms.unwrap_or(mono_ms);
            let due_at =
                mono_ms.saturating_add(retry::backoff_ms(&self.cfg.retry, attempt, &mut self.rng));
            let give_up = if self.abandoned {
                Some(DropReason::Shutdown)
            } else if !retry::within_budget(&self.cfg.retry, first_failure_ms, due_at) {
                Some(DropReason::RetryExhausted)
            } else {
                None
            };
            match give_up {
                Some(reason) => {
                    self.held_bytes = self.held_bytes.saturating_sub(retry_bytes);
                    self.drop_in(batch.topic, reason, k);
                    report.dropped += k;
                }
                None => self.schedule_retry(
                    RetryEntry {
                        topic: batch.topic,
                        records: retry_records,
                        bytes: retry_bytes,
                        attempt,
                        first_failure_ms,
                        due_at,
                    },
                    &mut report,
                ),
            }
        }
        self.sync_gauges();
        report
    }

    /// Records the REST proxy refused as one request too large (413): sent again at once in two
    /// halves (no backoff: the proxy is healthy). A single record too large for the proxy is
    /// dropped as [`DropReason::TooLarge`]; past the retry budget, counted from the first
    /// failure, or with a zero budget, the records are dropped as
    /// [`DropReason::RetryExhausted`]. Halving ends: every split makes the requests smaller,
    /// and a lone record is dropped.
    fn split(
        &mut self,
        mono_ms: u64,
        (topic, attempt, first_failure_ms): (usize, u32, Option<u64>),
        mut records: Vec<Record>,
        report: &mut ResponseReport,
    ) {
        let first_failure_ms = first_failure_ms.unwrap_or(mono_ms);
        let give_up = if self.abandoned {
            Some(DropReason::Shutdown)
        } else if records.len() < 2 {
            Some(DropReason::TooLarge)
        } else if !retry::within_budget(&self.cfg.retry, first_failure_ms, mono_ms) {
            // Resending is retrying: a zero budget means none, and a batch that keeps failing
            // (a proxy whose limit is below every half) stops at the budget like any other.
            Some(DropReason::RetryExhausted)
        } else {
            None
        };
        if let Some(reason) = give_up {
            let bytes: usize = records.iter().map(Record::size).sum();
            self.held_bytes = self.held_bytes.saturating_sub(bytes);
            self.drop_in(topic, reason, records.len() as u64);
            report.dropped += records.len() as u64;
            return;
        }
        let second = records.split_off(records.len() / 2);
        for half in [records, second] {
            self.schedule_retry(
                RetryEntry {
                    topic,
                    bytes: half.iter().map(Record::size).sum(),
                    records: VecDeque::from(half),
                    attempt,
                    first_failure_ms,
                    due_at: mono_ms,
                },
                report,
            );
        }
    }

    /// Queues records for another attempt, after every entry that first failed no later (so
    /// the oldest failures go first, and equal ones in the order queued), and counts them.
    fn schedule_retry(&mut self, entry: RetryEntry, report: &mut ResponseReport) {
        let k = entry.records.len();
        self.retry_events += k;
        self.stats.retries += k as u64;
        report.retried += k as u64;
        let at = self
            .retries
            .partition_point(|e| e.first_failure_ms <= entry.first_failure_ms);
        self.retries.insert(at, entry);
    }

    /// Starts shutdown: from now on everything buffered is due at once, regardless of age.
    /// Records awaiting a retry keep their timers; the glue bounds the wait with its deadline.
    pub fn begin_shutdown(&mut self, mono_ms: u64) {
        // `mono_ms` is part of the agreed interface; buffered records become due whatever the time.
        let _ = mono_ms;
        self.shutting_down = true;
    }

    /// Drops (as [`DropReason::Shutdown`]) everything still buffered or awaiting retry; calls in
    /// flight stay in flight. From then on the pipeline only winds down: records of later
    /// answers that would be retried, and newly pushed records, are dropped as
    /// [`DropReason::Shutdown`] too, so that it becomes idle once the calls are answered.
    pub fn abandon(&mut self) {
        self.abandoned = true;
        self.shutting_down = true;
        let mut dropped = 0u64;
        for q in &mut self.topics {
            let n = q.records.len() as u64;
            dropped += n;
            q.counts.dropped += n;
            q.records.clear();
            q.bytes = 0;
        }
        for e in self.retries.drain(..) {
            let n = e.records.len() as u64;
            dropped += n;
            if let Some(q) = self.topics.get_mut(e.topic) {
                q.counts.dropped += n;
            }
        }
        self.queued_events = 0;
        self.retry_events = 0;
        self.held_bytes = self.in_flight_bytes;
        self.count_drop(DropReason::Shutdown, dropped);
        self.sync_gauges();
    }

    /// At the shutdown deadline: abandons everything, what [`Pipeline::abandon`] drops and
    /// the calls still in flight too, counting their records as [`DropReason::Shutdown`]. Their fate is unknown (the
    /// REST proxy may yet accept them), but the VM is about to go and its stats with it, so the
    /// last published numbers must balance without them. A late answer finds an unknown id and
    /// is ignored, so nothing is counted twice.
    pub fn abandon_all(&mut self) {
        self.abandon();
        let dropped = self.in_flight_events as u64;
        for b in &self.in_flight {
            if let Some(q) = self.topics.get_mut(b.topic) {
                q.counts.dropped += b.records.len() as u64;
            }
        }
        self.in_flight.clear();
        self.in_flight_events = 0;
        self.in_flight_bytes = 0;
        self.held_bytes = 0;
        self.count_drop(DropReason::Shutdown, dropped);
        self.sync_gauges();
    }

    /// Nothing buffered, awaiting retry or in flight.
    pub fn is_idle(&self) -> bool {
        self.stats.in_flight == 0 && self.stats.buffered == 0
    }

    /// Current counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Each configured topic's share of the accounting, in [`Config::topics`] order.
    pub fn topic_counts(&self) -> impl Iterator<Item = TopicCounts> + '_ {
        self.topics.iter().map(|q| q.counts)
    }

    /// The earliest time at which something becomes due: the oldest buffered record's age
    /// deadline or a retry timer. A time `<= now` means a batch is due already (full, or
    /// shutting down), though the in-flight limit may still hold it back. `None` when nothing
    /// is buffered or awaiting retry.
    pub fn next_wakeup(&self) -> Option<u64> {
        let retry = self.retries.iter().map(|e| e.due_at).min();
        let batch = &self.cfg.batch;
        let topics = self
            .topics
            .iter()
            .filter_map(|q| {
                let front = q.records.front()?;
                let full = q.records.len() >= batch.max_events || q.bytes >= batch.max_bytes;
                if full || self.shutting_down {
                    Some(front.arrived_ms)
                } else {
                    Some(front.arrived_ms.saturating_add(batch.max_age_ms))
                }
            })
            .min();
        match (retry, topics) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The records of unanswered batch `id`, in request order (for tests and diagnostics).
    pub fn in_flight_records(&self, id: BatchId) -> Option<&[Record]> {
        self.in_flight
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.records.as_slice())
    }

    /// Calls dispatched and not yet answered.
    pub fn in_flight_calls(&self) -> usize {
        self.in_flight.len()
    }

    fn topic_due(&self, q: &TopicQueue, mono_ms: u64) -> bool {
        let Some(front) = q.records.front() else {
            return false;
        };
        let batch = &self.cfg.batch;
        self.shutting_down
            || q.records.len() >= batch.max_events
            || q.bytes >= batch.max_bytes
            || mono_ms.saturating_sub(front.arrived_ms) >= batch.max_age_ms
    }

    /// Moves `records` in flight and builds their request.
    fn send(
        &mut self,
        mono_ms: u64,
        topic: usize,
        records: Vec<Record>,
        bytes: usize,
        attempt: u32,
        first_failure_ms: Option<u64>,
    ) -> Outbound {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let request = encode::build_request(&self.cfg, topic, records.iter());
        let n = records.len();
        self.in_flight_events += n;
        self.in_flight_bytes += bytes;
        self.in_flight.push(InFlight {
            id,
            topic,
            records,
            bytes,
            sent_at: mono_ms,
            attempt,
            first_failure_ms,
        });
        self.stats.batches_sent += 1;
        self.sync_gauges();
        Outbound {
            id,
            record_count: n,
            request,
        }
    }

    fn held_events(&self) -> usize {
        self.queued_events + self.retry_events + self.in_flight_events
    }

    /// Whether one more record of `size` bytes stays within the buffer bounds. The byte bound
    /// counts each held record's bookkeeping ([`RECORD_OVERHEAD_BYTES`]) with its bytes, so
    /// that it bounds the memory the buffer takes, not only its payload.
    fn fits(&self, size: usize) -> bool {
        let held = self.held_events();
        held < self.cfg.buffer.max_events
            && held_memory(self.held_bytes, held).saturating_add(held_memory(size, 1))
                <= self.cfg.buffer.max_bytes
    }

    /// Evicts one record (drop_oldest): awaiting retry first, then the oldest buffered.
    /// Returns false when nothing but in-flight records is held.
    fn evict_oldest(&mut self) -> bool {
        while let Some(entry) = self.retries.front_mut() {
            let topic = entry.topic;
            let Some(record) = entry.records.pop_front() else {
                // Entries are never left empty; tolerate one anyway.
                self.retries.pop_front();
                continue;
            };
            let size = record.size();
            entry.bytes = entry.bytes.saturating_sub(size);
            if entry.records.is_empty() {
                self.retries.pop_front();
            }
            self.retry_events = self.retry_events.saturating_sub(1);
            self.held_bytes = self.held_bytes.saturating_sub(size);
            self.drop_in(topic, DropReason::BufferFull, 1);
            return true;
        }
        let oldest = self
            .topics
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.records.front().map(|f| (f.seq, i)))
            .min();
        let Some(q) = oldest.and_then(|(_, i)| self.topics.get_mut(i)) else {
            return false;
        };
        let Some(item) = q.records.pop_front() else {
            return false;
        };
        let size = item.record.size();
        q.bytes = q.bytes.saturating_sub(size);
        q.counts.dropped += 1;
        self.queued_events = self.queued_events.saturating_sub(1);
        self.held_bytes = self.held_bytes.saturating_sub(size);
        self.count_drop(DropReason::BufferFull, 1);
        true
    }

    /// Counts `n` drops of records of `topic`, in the totals and in the topic's share.
    fn drop_in(&mut self, topic: usize, reason: DropReason, n: u64) {
        if let Some(q) = self.topics.get_mut(topic) {
            q.counts.dropped += n;
        }
        self.count_drop(reason, n);
    }

    fn count_drop(&mut self, reason: DropReason, n: u64) {
        if let Some(c) = self.stats.dropped.get_mut(reason.index()) {
            *c += n;
        }
    }

    /// Derives the gauges from the internal counts.
    fn sync_gauges(&mut self) {
        self.stats.in_flight = self.in_flight_events as u64;
        self.stats.buffered = (self.queued_events + self.retry_events) as u64;
        self.stats.held_bytes = self.held_bytes as u64;
    }
}
