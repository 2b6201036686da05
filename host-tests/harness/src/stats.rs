//! adtap's Envoy stats, read from the admin interface's text `/stats` by adtap-drain's parser
//! (the tool adtap ships reads them the same way).
//!
//! The filter defines its metrics with `define_metric`; Envoy exposes them with the
//! `wasmcustom.` prefix (`wasmcustom.adtap_captured`, …). Each worker VM adds its deltas to the
//! same stat, so the values are totals over the workers.

use std::collections::BTreeMap;
use std::fmt;

/// A snapshot of every `adtap_*` counter and gauge (histograms are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdtapStats {
    /// Values by metric name without the `wasmcustom.` prefix (`adtap_captured`, …).
    pub values: BTreeMap<String, u64>,
}

impl AdtapStats {
    /// Parses Envoy's text `/stats` answer (`name: value` lines), keeping `adtap_*`.
    pub fn parse(text: &str) -> AdtapStats {
        AdtapStats {
            values: adtap_drain::parse_stats(text),
        }
    }

    /// One value by short name (`captured` or `adtap_captured`); 0 when absent.
    pub fn get(&self, name: &str) -> u64 {
        let key = if name.starts_with("adtap_") {
            name.to_string()
        } else {
            format!("adtap_{name}")
        };
        self.values.get(&key).copied().unwrap_or(0)
    }

    /// `adtap_captured`.
    pub fn captured(&self) -> u64 {
        self.get("captured")
    }
    /// `adtap_delivered`.
    pub fn delivered(&self) -> u64 {
        self.get("delivered")
    }
    /// `adtap_dropped` (all reasons).
    pub fn dropped(&self) -> u64 {
        self.get("dropped")
    }
    /// `adtap_in_flight`.
    pub fn in_flight(&self) -> u64 {
        self.get("in_flight")
    }
    /// `adtap_buffered`.
    pub fn buffered(&self) -> u64 {
        self.get("buffered")
    }
    /// `adtap_retries`.
    pub fn retries(&self) -> u64 {
        self.get("retries")
    }

    /// Sum of the per-reason drop counters.
    pub fn dropped_by_reason(&self) -> u64 {
        self.values
            .iter()
            .filter(|(k, _)| k.starts_with("adtap_dropped_"))
            .map(|(_, v)| *v)
            .sum()
    }

    /// The accounting invariant: `captured = delivered + dropped + in_flight + buffered`, and
    /// the per-reason drops add up to `dropped`.
    pub fn invariant_holds(&self) -> bool {
        self.captured() == self.delivered() + self.dropped() + self.in_flight() + self.buffered()
            && self.dropped() == self.dropped_by_reason()
    }

    /// Nothing buffered or in flight, and every captured event delivered or dropped.
    pub fn settled(&self) -> bool {
        self.in_flight() == 0 && self.buffered() == 0 && self.invariant_holds()
    }
}

/// One VM's own series (`adtap_vm.<id>.<name>`), by name without the prefix (`ticks`,
/// `captured`, `delivered`, `dropped`, `in_flight`, `buffered`, `held_bytes`).
pub type VmSeries = BTreeMap<String, u64>;

impl AdtapStats {
    /// The per-VM series, by VM id.
    pub fn vms(&self) -> BTreeMap<String, VmSeries> {
        let mut out: BTreeMap<String, VmSeries> = BTreeMap::new();
        for (k, v) in &self.values {
            let Some(rest) = k.strip_prefix("adtap_vm.") else {
                continue;
            };
            if let Some((id, name)) = rest.split_once('.') {
                out.entry(id.to_string())
                    .or_default()
                    .insert(name.to_string(), *v);
            }
        }
        out
    }
}

/// `captured = delivered + dropped + in_flight + buffered` over the given VMs' own series.
pub fn vms_balance<'a>(vms: impl IntoIterator<Item = &'a VmSeries>) -> (u64, u64) {
    let get = |s: &VmSeries, k: &str| s.get(k).copied().unwrap_or(0);
    vms.into_iter().fold((0, 0), |(c, rest), s| {
        (
            c + get(s, "captured"),
            rest + get(s, "delivered")
                + get(s, "dropped")
                + get(s, "in_flight")
                + get(s, "buffered"),
        )
    })
}

/// One sample of Envoy's `/stats/prometheus` text: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    /// The metric name (`adtap_dropped`).
    pub name: String,
    /// Its labels, by name.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// Parses the samples of a Prometheus text exposition (comments and histogram buckets kept as
/// they are; label values without escapes, as Envoy writes adtap's).
pub fn parse_prometheus(text: &str) -> Vec<PromSample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.trim().parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}')?;
                    let labels = body
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .filter_map(|p| {
                            let (k, v) = p.split_once('=')?;
                            Some((k.to_string(), v.trim_matches('"').to_string()))
                        })
                        .collect();
                    (name, labels)
                }
                None => (series, BTreeMap::new()),
            };
            Some(PromSample {
                name: name.to_string(),
                labels,
                value,
            })
        })
        .collect()
}

impl fmt::Display for AdtapStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.values.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in &self.values {
            writeln!(f, "  {k:<width$}  {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wasmcustom_names_and_checks_the_invariant() {
        let text = "wasmcustom.adtap_captured: 10\n\
            wasmcustom.adtap_delivered: 7\n\
            wasmcustom.adtap_dropped: 2\n\
            wasmcustom.adtap_dropped_buffer_full: 2\n\
            wasmcustom.adtap_in_flight: 1\n\
            wasmcustom.adtap_buffered: 0\n\
            cluster.x.upstream_rq: 5\n\
            wasmcustom.adtap_batch_rtt_ms: P0(nan,1) P25(nan,2)\n";
        let s = AdtapStats::parse(text);
        assert_eq!(s.captured(), 10);
        assert_eq!(s.get("adtap_dropped_buffer_full"), 2);
        assert!(s.invariant_holds());
        assert!(!s.settled());
        assert!(!s.values.contains_key("cluster.x.upstream_rq"));
    }
}
