//! Markdown output: sections of tables, and the targets from the issue with whether each was
//! met. Every figure in BENCHMARKS.md is printed by this module from a run's measurements.

use std::fmt::Write as _;

/// One of the targets and what this run measured for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What is targeted, e.g. "adtap throughput ≥ 0.97 × no-op".
    pub name: String,
    /// The measured figure, formatted.
    pub measured: String,
    /// `Some(true)` met, `Some(false)` missed, `None` not measured (or reported only).
    pub met: Option<bool>,
    /// A figure the report gives without a threshold ("reported" when `met` is `None`).
    pub reported: bool,
}

/// A markdown section and the targets it measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    /// Markdown text, starting with a `##` heading.
    pub markdown: String,
    /// Targets measured by this section.
    pub targets: Vec<Target>,
}

impl Target {
    /// A target with a threshold: `met` is `None` when it was not measured.
    pub fn new(name: String, measured: String, met: Option<bool>) -> Target {
        Target {
            name,
            measured,
            met,
            reported: false,
        }
    }
}

impl Section {
    /// A section from its markdown and the targets it measured.
    pub fn new(markdown: String, targets: Vec<Target>) -> Section {
        Section { markdown, targets }
    }
}

/// A markdown table from a header and rows.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// The targets summary table.
pub fn targets_table(targets: &[Target]) -> String {
    let rows = targets.iter().map(|t| {
        vec![
            t.name.clone(),
            t.measured.clone(),
            match t.met {
                Some(true) => "met".into(),
                Some(false) => "**missed**".into(),
                None if t.reported => "reported".into(),
                None => "not measured".into(),
            },
        ]
    });
    table(&["target", "measured", "result"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tables() {
        let t = table(&["a", "b"], [vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
        let s = targets_table(&[
            Target::new("x".into(), "1".into(), Some(false)),
            Target::new("y".into(), "n/a".into(), None),
            Target {
                name: "z".into(),
                measured: "3 µs".into(),
                met: None,
                reported: true,
            },
        ]);
        assert!(s.contains("| x | 1 | **missed** |"));
        assert!(s.contains("| y | n/a | not measured |"));
        assert!(s.contains("| z | 3 µs | reported |"));
    }
}
