//! Summaries of repeated measurements: median with min-max over rounds, and exact percentiles
//! of latency samples (nearest rank on the sorted samples; no histogram bucketing error).

/// Median and range of one figure over the rounds of a benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, or `None` when there are none (or any is NaN).
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            *v.get(n / 2)?
        } else {
            (*v.get(n / 2 - 1)? + *v.get(n / 2)?) / 2.0
        };
        Some(Spread {
            median,
            min: *v.first()?,
            max: *v.last()?,
        })
    }

    /// `median (min-max)` with `decimals` digits after the point.
    pub fn show(&self, decimals: usize) -> String {
        if (self.max - self.min).abs() < f64::EPSILON {
            format!("{:.*}", decimals, self.median)
        } else {
            format!(
                "{:.*} ({:.*}-{:.*})",
                decimals, self.median, decimals, self.min, decimals, self.max
            )
        }
    }
}

/// The `q`-quantile (0.0-1.0) of sorted samples by nearest rank; 0 when empty.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank: the smallest value with at least q·n samples at or below it.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted.get(idx).copied().unwrap_or(0)
}

/// A value formatted for a table, or `n/a`.
pub fn show_opt(s: Option<Spread>, decimals: usize) -> String {
    s.map_or_else(|| "n/a".to_string(), |s| s.show(decimals))
}

/// The spread of `values` formatted for a table, or `n/a` ([`Spread::of`], [`show_opt`]).
pub fn show_spread(values: &[f64], decimals: usize) -> String {
    show_opt(Spread::of(values), decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_odd_and_even() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!(
            s,
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        let s = Spread::of(&[4.0, 1.0, 2.0, 3.0]).map(|s| s.median);
        assert_eq!(s, Some(2.5));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
    }

    #[test]
    fn spread_shows_range_only_when_it_differs() {
        let one = Spread::of(&[5.0]).map(|s| s.show(1));
        assert_eq!(one.as_deref(), Some("5.0"));
        let two = Spread::of(&[5.0, 7.0]).map(|s| s.show(0));
        assert_eq!(two.as_deref(), Some("6 (5-7)"));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 500);
        assert_eq!(percentile(&v, 0.99), 990);
        assert_eq!(percentile(&v, 0.999), 999);
        assert_eq!(percentile(&v, 1.0), 1000);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
