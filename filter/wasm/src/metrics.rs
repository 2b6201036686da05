//! The `adtap_*` Envoy stats.
//!
//! The core keeps exact counters per worker ([`adtap_core::pipeline::Stats`] plus the stream
//! counters in [`Local`]); once per tick (and on shutdown) [`Metrics::publish`] sends each
//! counter's and gauge's change since the last publish. Deltas, not absolute values, because
//! every worker's VM feeds the same Envoy stat: Envoy sums the workers' increments, so the stats
//! hold the totals across workers and the invariant holds on them too.

use crate::host;
use adtap_core::classify::DropReason;
use adtap_core::pipeline::Stats;
use proxy_wasm::types::MetricType;

/// Counters kept by the HTTP contexts (requests, not events).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// Requests that matched no rule.
    pub unmatched: u64,
    /// Requests that matched a rule but were sampled out.
    pub sampled_out: u64,
    /// Captured bodies cut at `body.max_bytes`.
    pub body_truncated: u64,
    /// Batch calls the host refused to dispatch.
    pub dispatch_errors: u64,
}

/// Everything published, as one flat list of values in [`NAMES`] order.
fn values(stats: &Stats, local: &Local) -> [u64; COUNT] {
    let d = |r: DropReason| stats.dropped.get(r.index()).copied().unwrap_or(0);
    [
        stats.captured,
        stats.delivered,
        stats.dropped_total(),
        d(DropReason::BufferFull),
        d(DropReason::RetryExhausted),
        d(DropReason::Rejected),
        d(DropReason::Encode),
        d(DropReason::TooLarge),
        d(DropReason::Shutdown),
        stats.in_flight,
        stats.buffered,
        stats.buffered_bytes,
        stats.batches_sent,
        stats.batches_failed,
        stats.retries,
        local.unmatched,
        local.sampled_out,
        local.body_truncated,
        local.dispatch_errors,
    ]
}

const COUNT: usize = 19;

/// Metric names and kinds, in [`values`] order. Documented in README.md's metrics reference.
pub const NAMES: [(&str, MetricType); COUNT] = [
    ("adtap_captured", MetricType::Counter),
    ("adtap_delivered", MetricType::Counter),
    ("adtap_dropped", MetricType::Counter),
    ("adtap_dropped_buffer_full", MetricType::Counter),
    ("adtap_dropped_retry_exhausted", MetricType::Counter),
    ("adtap_dropped_rejected", MetricType::Counter),
    ("adtap_dropped_encode", MetricType::Counter),
    ("adtap_dropped_too_large", MetricType::Counter),
    ("adtap_dropped_shutdown", MetricType::Counter),
    ("adtap_in_flight", MetricType::Gauge),
    ("adtap_buffered", MetricType::Gauge),
    ("adtap_buffered_bytes", MetricType::Gauge),
    ("adtap_batches_sent", MetricType::Counter),
    ("adtap_batches_failed", MetricType::Counter),
    ("adtap_retries", MetricType::Counter),
    ("adtap_requests_unmatched", MetricType::Counter),
    ("adtap_requests_sampled_out", MetricType::Counter),
    ("adtap_body_truncated", MetricType::Counter),
    ("adtap_dispatch_errors", MetricType::Counter),
];

/// Name of the batch round-trip histogram (milliseconds).
pub const RTT_HISTOGRAM: &str = "adtap_batch_rtt_ms";

/// Metric ids and the values last published.
#[derive(Debug)]
pub struct Metrics {
    ids: [Option<u32>; COUNT],
    rtt: Option<u32>,
    published: [u64; COUNT],
    /// Final values of the workers this root replaced (see [`Metrics::retire`]).
    base: [u64; COUNT],
}

impl Metrics {
    /// Defines every metric. A metric the host refuses is skipped (logged once), never fatal:
    /// capture must go on even if stats cannot be exported.
    pub fn define() -> Metrics {
        let mut ids = [None; COUNT];
        for (slot, (name, kind)) in ids.iter_mut().zip(NAMES) {
            *slot = host::define_metric(kind, name).ok();
        }
        let rtt = host::define_metric(MetricType::Histogram, RTT_HISTOGRAM).ok();
        if ids.iter().any(Option::is_none) || rtt.is_none() {
            host::log(
                proxy_wasm::types::LogLevel::Warn,
                "the host refused to define some metrics; they will not be exported",
            );
        }
        Metrics {
            ids,
            rtt,
            published: [0; COUNT],
            base: [0; COUNT],
        }
    }

    /// Sends every change since the last call.
    pub fn publish(&mut self, stats: &Stats, local: &Local) {
        let mut now = values(stats, local);
        for (v, b) in now.iter_mut().zip(self.base) {
            *v = v.saturating_add(b);
        }
        for ((id, last), value) in self.ids.iter().zip(self.published.iter_mut()).zip(now) {
            if value == *last {
                continue;
            }
            // Gauges go down as well as up; counters only up. i128 keeps the subtraction exact.
            let delta = i64::try_from(i128::from(value) - i128::from(*last)).unwrap_or(0);
            if let Some(id) = id {
                if host::increment_metric(*id, delta).is_ok() {
                    *last = value;
                }
            } else {
                *last = value;
            }
        }
    }

    /// Keeps the final numbers of a worker that a reconfiguration replaces, so that the
    /// published counters go on from them instead of restarting at the new worker's zeros (which
    /// Envoy would refuse as negative counter deltas, freezing the stats). The worker must hold
    /// nothing any more ([`adtap_core::pipeline::Pipeline::abandon_in_flight`]), so its gauges
    /// are 0 and the invariant holds over base + new.
    pub fn retire(&mut self, stats: &Stats, local: &Local) {
        for (b, v) in self.base.iter_mut().zip(values(stats, local)) {
            *b = b.saturating_add(v);
        }
    }

    /// Records one batch round trip.
    pub fn record_rtt(&self, ms: u64) {
        if let Some(id) = self.rtt {
            let _ = host::record_metric(id, ms);
        }
    }
}
