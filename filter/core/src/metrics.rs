//! The `adtap_*` Envoy stats: what is published, and the deltas that publish it.
//!
//! The core keeps exact counters per worker ([`crate::pipeline::Stats`] plus the request
//! counters in [`Local`]); once per tick (and on shutdown) [`Ledger::publish`] sends each
//! counter's and gauge's change since the last publish. Deltas, not absolute values, because
//! every worker's VM feeds the same Envoy stat: Envoy sums the workers' increments, so the
//! stats hold the totals across workers and the invariant holds on them too.
//!
//! # Per-VM series: liveness and the dead share
//! A VM that traps never runs again and never calls `on_done` (as Envoy 1.40 behaves): what it added to the
//! totals stays there, gauges included, and nothing in the totals says so. So each VM also
//! publishes series of its own, named with an id it draws at start ([`VmSeries`]):
//! `adtap_vm.<id>.ticks`, a counter every live VM advances on each tick (a dead VM's stops:
//! its rate is 0), and its share of the accounting (`captured`, `delivered`, `dropped`
//! counters; `in_flight`, `buffered`, `held_bytes` gauges set absolutely with
//! `record_metric`, so the last value a VM wrote is exactly what it held). Envoy's stats tag
//! extraction (README, Metrics reference) turns the id into a label: `adtap_vm_ticks{vm="…"}`.

use crate::drop_reason::DropReason;
use crate::host::{Host, LogLevel, MetricKind};
use crate::pipeline::Stats;

/// Counters of captures that never became records (requests, not events), and of the host.
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

/// Number of published counters and gauges.
pub const COUNT: usize = 19;

/// Everything published, as one flat list of values in [`NAMES`] order.
pub fn values(stats: &Stats, local: &Local) -> [u64; COUNT] {
    let d = |r: DropReason| stats.dropped_for(r);
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
        stats.held_bytes,
        stats.batches_sent,
        stats.batches_failed,
        stats.retries,
        local.unmatched,
        local.sampled_out,
        local.body_truncated,
        local.dispatch_errors,
    ]
}

/// Metric names and kinds, in [`values`] order. Documented in README.md's metrics reference.
pub const NAMES: [(&str, MetricKind); COUNT] = [
    ("adtap_captured", MetricKind::Counter),
    ("adtap_delivered", MetricKind::Counter),
    ("adtap_dropped", MetricKind::Counter),
    ("adtap_dropped_buffer_full", MetricKind::Counter),
    ("adtap_dropped_retry_exhausted", MetricKind::Counter),
    ("adtap_dropped_rejected", MetricKind::Counter),
    ("adtap_dropped_encode", MetricKind::Counter),
    ("adtap_dropped_too_large", MetricKind::Counter),
    ("adtap_dropped_shutdown", MetricKind::Counter),
    // Events in calls not yet answered ([`Stats::in_flight`]).
    ("adtap_in_flight", MetricKind::Gauge),
    // Events buffered: queued for a batch or awaiting a retry, not in flight
    // ([`Stats::buffered`]); `captured = delivered + dropped + in_flight + buffered`.
    ("adtap_buffered", MetricKind::Gauge),
    // Encoded bytes of every record held, buffered or in flight ([`Stats::held_bytes`]);
    // `buffer.max_bytes` bounds these plus 96 bytes of bookkeeping per record.
    ("adtap_held_bytes", MetricKind::Gauge),
    ("adtap_batches_sent", MetricKind::Counter),
    ("adtap_batches_failed", MetricKind::Counter),
    ("adtap_retries", MetricKind::Counter),
    ("adtap_requests_unmatched", MetricKind::Counter),
    ("adtap_requests_sampled_out", MetricKind::Counter),
    ("adtap_body_truncated", MetricKind::Counter),
    ("adtap_dispatch_errors", MetricKind::Counter),
];

/// Name of the batch round-trip histogram (milliseconds).
pub const RTT_HISTOGRAM: &str = "adtap_batch_rtt_ms";

/// The per-VM series, in [`VmSeries`] order: the suffix after `adtap_vm.<id>.`, the kind, and
/// the index in [`NAMES`] of the value it shows (`None`: the tick count).
pub const VM_SERIES: [(&str, MetricKind, Option<usize>); 7] = [
    ("ticks", MetricKind::Counter, None),
    ("captured", MetricKind::Counter, Some(0)),
    ("delivered", MetricKind::Counter, Some(1)),
    ("dropped", MetricKind::Counter, Some(2)),
    // The VM's `adtap_in_flight`, `adtap_buffered` and `adtap_held_bytes`, set absolutely.
    ("in_flight", MetricKind::Gauge, Some(9)),
    ("buffered", MetricKind::Gauge, Some(10)),
    ("held_bytes", MetricKind::Gauge, Some(11)),
];

/// The prefix of every per-VM series name.
pub const VM_PREFIX: &str = "adtap_vm.";

/// The full name of one per-VM series: `adtap_vm.<id>.<suffix>`.
pub fn vm_series_name(vm: &str, suffix: &str) -> String {
    format!("{VM_PREFIX}{vm}.{suffix}")
}

/// One VM's own series ([`VM_SERIES`]): ids, and what was last published to each.
#[derive(Debug)]
pub struct VmSeries {
    ids: [Option<u32>; VM_SERIES.len()],
    published: [u64; VM_SERIES.len()],
    ticks: u64,
}

impl VmSeries {
    /// Defines the series of the VM `vm` (its id, from [`crate::vm::Vm::id`]).
    fn define(host: &mut dyn Host, vm: &str) -> VmSeries {
        let mut ids = [None; VM_SERIES.len()];
        for (slot, (suffix, kind, _)) in ids.iter_mut().zip(VM_SERIES) {
            *slot = host.define_metric(kind, &vm_series_name(vm, suffix)).ok();
        }
        VmSeries {
            ids,
            published: [0; VM_SERIES.len()],
            ticks: 0,
        }
    }

    /// Publishes this VM's values (`totals` in [`NAMES`] order, retired workers included):
    /// counters by their change (each VM's series is its own, so the stat is this VM's total),
    /// gauges set to the value itself, so a dead VM's last write is exactly what it held.
    fn publish(&mut self, host: &mut dyn Host, totals: &[u64; COUNT]) {
        for ((id, last), (_, kind, index)) in self
            .ids
            .iter()
            .zip(self.published.iter_mut())
            .zip(VM_SERIES)
        {
            let value = match index {
                Some(i) => totals.get(i).copied().unwrap_or(0),
                None => self.ticks,
            };
            if value == *last {
                continue;
            }
            let Some(id) = *id else { continue };
            let sent = match kind {
                MetricKind::Gauge => host.record_metric(id, value),
                _ => {
                    let delta = i64::try_from(value.saturating_sub(*last)).unwrap_or(i64::MAX);
                    host.increment_metric(id, delta)
                }
            };
            if sent.is_ok() {
                *last = value;
            }
        }
    }
}

/// The per-topic series: the suffix after `adtap_topic.<topic>.`, in
/// [`crate::worker::Worker::topic_values`] order. Counters; Envoy's stats tag extraction
/// (README, Metrics reference) turns the topic into a label: `adtap_topic_delivered{topic="…"}`.
pub const TOPIC_SERIES: [&str; 3] = ["captured", "delivered", "dropped"];

/// The prefix of every per-topic series name.
pub const TOPIC_PREFIX: &str = "adtap_topic.";

/// One topic's series in one VM: ids, the values last published, the final values of retired
/// workers, and this publish's sum over the live ones.
#[derive(Debug)]
struct TopicSeries {
    name: String,
    ids: [Option<u32>; 3],
    published: [u64; 3],
    base: [u64; 3],
    live: [u64; 3],
}

impl TopicSeries {
    fn define(host: &mut dyn Host, name: &str) -> TopicSeries {
        let mut ids = [None; 3];
        for (slot, suffix) in ids.iter_mut().zip(TOPIC_SERIES) {
            *slot = host
                .define_metric(
                    MetricKind::Counter,
                    &format!("{TOPIC_PREFIX}{name}.{suffix}"),
                )
                .ok();
        }
        TopicSeries {
            name: name.to_string(),
            ids,
            published: [0; 3],
            base: [0; 3],
            live: [0; 3],
        }
    }
}

/// One VM's published stats: metric ids, the values last published, and the final values of
/// the workers this VM no longer has.
#[derive(Debug)]
pub struct Ledger {
    ids: [Option<u32>; COUNT],
    rtt: Option<u32>,
    published: [u64; COUNT],
    /// Final values of retired workers (see [`Ledger::retire`]).
    base: [u64; COUNT],
    /// This VM's id, naming its own series.
    vm_id: String,
    /// This VM's own series, defined on its first tick: Envoy also configures VMs that never
    /// tick nor see traffic (seen in 1.40: one such VM besides the main thread's and the
    /// workers'), and series that never advance would look like a dead VM to every alert.
    vm: Option<VmSeries>,
    /// Per-topic series, defined when a topic is first seen; workers with the same topic add
    /// up into one series.
    topics: Vec<TopicSeries>,
}

impl Ledger {
    /// Defines every metric. A metric the host refuses is skipped (logged once), never fatal:
    /// capture must go on even if stats cannot be exported.
    /// `vm` is the VM's id, which names its own series.
    pub fn define(host: &mut dyn Host, vm: &str) -> Ledger {
        let mut ids = [None; COUNT];
        for (slot, (name, kind)) in ids.iter_mut().zip(NAMES) {
            *slot = host.define_metric(kind, name).ok();
        }
        let rtt = host
            .define_metric(MetricKind::Histogram, RTT_HISTOGRAM)
            .ok();
        if ids.iter().any(Option::is_none) || rtt.is_none() {
            host.log(
                LogLevel::Warn,
                "the host refused to define some metrics; they will not be exported",
            );
        }
        Ledger {
            ids,
            rtt,
            published: [0; COUNT],
            base: [0; COUNT],
            vm_id: vm.to_string(),
            vm: None,
            topics: Vec::new(),
        }
    }

    /// Counts one tick of this VM (published with the next [`Ledger::publish`]); the first
    /// defines the VM's own series.
    pub fn tick(&mut self, host: &mut dyn Host) {
        let vm_id = &self.vm_id;
        let series = self.vm.get_or_insert_with(|| {
            let series = VmSeries::define(host, vm_id);
            if series.ids.iter().any(Option::is_none) {
                host.log(
                    LogLevel::Warn,
                    "the host refused to define some per-VM metrics; they will not be exported",
                );
            }
            series
        });
        series.ticks = series.ticks.saturating_add(1);
    }

    /// Sends every change since the last call; `live` is the sum of the live workers' values.
    pub fn publish(&mut self, host: &mut dyn Host, live: [u64; COUNT]) {
        if let Some(series) = self.vm.as_mut() {
            series.publish(host, &add(live, self.base));
        }
        for (((id, last), value), base) in self
            .ids
            .iter()
            .zip(self.published.iter_mut())
            .zip(live)
            .zip(self.base)
        {
            let value = value.saturating_add(base);
            if value == *last {
                continue;
            }
            // Gauges go down as well as up; counters only up. i128 keeps the subtraction exact.
            let delta = i64::try_from(i128::from(value) - i128::from(*last)).unwrap_or(0);
            match id {
                Some(id) if host.increment_metric(*id, delta).is_err() => {}
                _ => *last = value,
            }
        }
    }

    /// Sends each topic's change since the last call; `live` gives every live worker's topic
    /// values ([`crate::worker::Worker::topic_values`]). Allocates only for a topic seen for
    /// the first time.
    pub fn publish_topics<'a>(
        &mut self,
        host: &mut dyn Host,
        live: impl Iterator<Item = (&'a str, [u64; 3])>,
    ) {
        for t in &mut self.topics {
            t.live = [0; 3];
        }
        for (name, values) in live {
            if let Some(series) = self.topic_series(host, name) {
                for (l, v) in series.live.iter_mut().zip(values) {
                    *l = l.saturating_add(v);
                }
            }
        }
        for t in &mut self.topics {
            for (((id, last), live), base) in t
                .ids
                .iter()
                .zip(t.published.iter_mut())
                .zip(t.live)
                .zip(t.base)
            {
                let value = live.saturating_add(base);
                if value <= *last {
                    continue;
                }
                let delta = i64::try_from(value - *last).unwrap_or(i64::MAX);
                match id {
                    Some(id) if host.increment_metric(*id, delta).is_err() => {}
                    _ => *last = value,
                }
            }
        }
    }

    /// Keeps the final topic numbers of a worker that is going away (see [`Ledger::retire`]).
    pub fn retire_topics<'a>(
        &mut self,
        host: &mut dyn Host,
        values: impl Iterator<Item = (&'a str, [u64; 3])>,
    ) {
        for (name, v) in values {
            if let Some(series) = self.topic_series(host, name) {
                for (b, x) in series.base.iter_mut().zip(v) {
                    *b = b.saturating_add(x);
                }
            }
        }
    }

    /// The series of topic `name`, defined on first sight.
    fn topic_series(&mut self, host: &mut dyn Host, name: &str) -> Option<&mut TopicSeries> {
        let at = match self.topics.iter().position(|t| t.name == name) {
            Some(at) => at,
            None => {
                self.topics.push(TopicSeries::define(host, name));
                self.topics.len().saturating_sub(1)
            }
        };
        self.topics.get_mut(at)
    }

    /// Keeps the final numbers of a worker that is going away, so that the published counters
    /// go on from them (Envoy refuses negative counter deltas, which would freeze the stats).
    /// The worker must hold nothing any more, so its gauges are 0 and the invariant holds over
    /// base + live.
    pub fn retire(&mut self, values: [u64; COUNT]) {
        for (b, v) in self.base.iter_mut().zip(values) {
            *b = b.saturating_add(v);
        }
    }

    /// Records one batch round trip.
    pub fn record_rtt(&self, host: &mut dyn Host, ms: u64) {
        if let Some(id) = self.rtt {
            let _ = host.record_metric(id, ms);
        }
    }
}

/// Element-wise sum of published value lists.
pub fn add(mut a: [u64; COUNT], b: [u64; COUNT]) -> [u64; COUNT] {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.saturating_add(y);
    }
    a
}
