//! Section 3a: the core's per-event cost natively, from the criterion bench of `adtap-core`
//! (`filter/core/benches/core.rs`), run as `cargo bench -p adtap-core --bench core --
//! --output-format bencher` and read back. Ids ending in `/xN` process N events per iteration.

use crate::report::{table, Section};
use crate::tools::{cargo, Tools};
use anyhow::{bail, Result};
use std::fmt::Write as _;

/// One criterion result.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchLine {
    /// Benchmark id.
    pub id: String,
    /// Nanoseconds per iteration.
    pub ns_per_iter: f64,
    /// Events per iteration (from an `/xN` suffix, else 1).
    pub events: u64,
}

impl BenchLine {
    /// Nanoseconds per event.
    pub fn ns_per_event(&self) -> f64 {
        self.ns_per_iter / self.events.max(1) as f64
    }
}

/// Parses criterion's `--output-format bencher` lines:
/// `test cycle/json/x500 ... bench:     1,234,567 ns/iter (+/- 1,234)`.
pub fn parse_bencher(text: &str) -> Vec<BenchLine> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("test ")?;
            let (id, rest) = rest.split_once(" ... bench:")?;
            let ns: String = rest
                .split_whitespace()
                .next()?
                .chars()
                .filter(|c| *c != ',')
                .collect();
            let id = id.trim().to_string();
            let events = id
                .rsplit_once("/x")
                .and_then(|(_, n)| n.parse::<u64>().ok())
                .unwrap_or(1);
            Some(BenchLine {
                ns_per_iter: ns.parse().ok()?,
                id,
                events,
            })
        })
        .collect()
}

/// Runs the criterion bench and renders section 3a.
pub fn run(tools: &Tools, short: bool) -> Result<Section> {
    let mut args = vec![
        "bench",
        "-q",
        "-p",
        "adtap-core",
        "--bench",
        "core",
        "--",
        "--output-format",
        "bencher",
    ];
    if short {
        args.extend([
            "--warm-up-time",
            "0.2",
            "--measurement-time",
            "0.5",
            "--sample-size",
            "10",
        ]);
    } else {
        args.extend(["--warm-up-time", "1", "--measurement-time", "3"]);
    }
    let out = cargo(tools, &args, &tools.root)?;
    let lines = parse_bencher(&String::from_utf8_lossy(&out.stdout));
    if lines.is_empty() {
        bail!(
            "the criterion bench printed no results:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let mut md = String::from("## 3a. Per-event cost of the core, natively\n\n");
    let _ = writeln!(
        md,
        "`cargo bench -p adtap-core --bench core` (criterion{}), on this machine's CPU, no VM \
         and no host calls: the floor under the in-VM figures of 3b. `/x500` benchmarks run a \
         whole batch (the default 500 events) per iteration; ns/event divides by it.\n",
        if short { ", short mode" } else { "" }
    );
    md.push_str(&table(
        &["benchmark", "ns/iteration", "ns/event"],
        lines.iter().map(|l| {
            vec![
                format!("`{}`", l.id),
                format!("{:.0}", l.ns_per_iter),
                format!("{:.0}", l.ns_per_event()),
            ]
        }),
    ));
    let cycle: Vec<String> = lines
        .iter()
        .filter(|l| l.id.starts_with("cycle/"))
        .map(|l| format!("{} {:.0} ns", l.id, l.ns_per_event()))
        .collect();
    if !cycle.is_empty() {
        let _ = writeln!(
            md,
            "\nAll included (match + capture + encode + push + batch request + answer), per \
             event: {}.",
            cycle.join(", ")
        );
    }
    Ok(Section::new(md, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bencher_lines() {
        let text = "Benchmarking x\ntest match_rule ... bench:          21 ns/iter (+/- 0)\n\
                    test cycle/json/x500 ... bench:     1,234,500 ns/iter (+/- 9,000)\nnoise\n";
        let l = parse_bencher(text);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].id, "match_rule");
        assert_eq!(l[0].events, 1);
        assert_eq!(l[1].events, 500);
        assert!((l[1].ns_per_event() - 2469.0).abs() < 1e-9);
    }
}
