//! A hand-written SVG bar chart (no plotting dependency): panels of horizontal bars, one row per
//! configuration, each bar the median over rounds with a whisker from the smallest to the
//! largest round, and an optional reference line (e.g. 1.0 for "as fast as bare Envoy").

use crate::stats::Spread;
use std::fmt::Write as _;

/// One row of a panel.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Bold first line of the label (the variant's short name).
    pub name: String,
    /// Second line of the label, smaller (what the variant is).
    pub detail: String,
    /// Fill colour (`#rrggbb`).
    pub color: &'static str,
    /// The value, or `None` when not measured (drawn as "n/a").
    pub value: Option<Spread>,
}

/// One panel: a title, bars and how to print their values.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// Digits after the point in value labels and ticks.
    pub decimals: usize,
    /// A vertical dashed line at this value, labelled with `reference_label`.
    pub reference: Option<f64>,
    /// Label of the reference line.
    pub reference_label: String,
    /// The rows.
    pub bars: Vec<Bar>,
}

const WIDTH: f64 = 1000.0;
const LABEL_RIGHT: f64 = 330.0;
const PLOT_LEFT: f64 = 345.0;
const PLOT_RIGHT: f64 = 850.0;
const ROW: f64 = 34.0;
const BAR: f64 = 18.0;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step (1, 2, 2.5 or 5 times a power of ten) giving about five ticks.
fn tick_step(span: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// Digits after the point that tell ticks `step` apart.
fn tick_decimals(step: f64) -> usize {
    let mut d = 0;
    while d < 4
        && ((step * 10f64.powi(d as i32)).round() - step * 10f64.powi(d as i32)).abs() > 1e-9
    {
        d += 1;
    }
    d
}

/// The value range of a panel: always includes 0 and the reference line, with a margin.
fn domain(p: &Panel) -> (f64, f64) {
    let mut lo: f64 = 0.0;
    let mut hi: f64 = p.reference.unwrap_or(0.0);
    for s in p.bars.iter().filter_map(|b| b.value) {
        lo = lo.min(s.min).min(s.median);
        hi = hi.max(s.max).max(s.median);
    }
    if hi - lo <= 0.0 {
        hi = lo + 1.0;
    }
    let step = tick_step(hi - lo);
    let lo = if lo < 0.0 {
        (lo / step).floor() * step
    } else {
        0.0
    };
    let hi = (hi / step).ceil() * step;
    (lo, hi.max(lo + step))
}

/// The chart: `title`, `subtitle` (one line of text per line), a legend of `(colour, meaning)` swatches, then the
/// panels one under the other.
pub fn svg(title: &str, subtitle: &str, legend: &[(&str, &str)], panels: &[Panel]) -> String {
    let mut body = String::new();
    let extra = 16.0 * subtitle.lines().count().saturating_sub(1) as f64;
    let mut lx = 20.0;
    for (color, text) in legend {
        let _ = writeln!(
            body,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{color}"/>"#,
            58.0 + extra
        );
        let _ = writeln!(
            body,
            r##"<text x="{:.1}" y="{:.1}" font-size="11.5" fill="#333333">{}</text>"##,
            lx + 17.0,
            68.5 + extra,
            esc(text)
        );
        // About 6.5 px per character at this size.
        lx += 17.0 + 6.5 * text.chars().count() as f64 + 18.0;
    }
    let mut y = extra + if legend.is_empty() { 62.0 } else { 88.0 };
    for p in panels {
        y = panel(&mut body, p, y) + 30.0;
    }
    let height = y;
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{height:.0}" viewBox="0 0 {WIDTH:.0} {height:.0}" font-family="{FONT}">"#
    );
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{WIDTH:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="20" y="28" font-size="18" font-weight="bold" fill="#222222">{}</text>"##,
        esc(title)
    );
    for (i, line) in subtitle.lines().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="20" y="{:.1}" font-size="12" fill="#555555">{}</text>"##,
            48.0 + 16.0 * i as f64,
            esc(line)
        );
    }
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

/// Draws one panel from `top`; returns where it ends.
fn panel(out: &mut String, p: &Panel, top: f64) -> f64 {
    let (lo, hi) = domain(p);
    let x = |v: f64| PLOT_LEFT + (v - lo) / (hi - lo) * (PLOT_RIGHT - PLOT_LEFT);
    let _ = writeln!(
        out,
        r##"<text x="20" y="{:.1}" font-size="14" font-weight="bold" fill="#222222">{}</text>"##,
        top + 14.0,
        esc(&p.title)
    );
    let plot_top = top + 26.0;
    let plot_bottom = plot_top + ROW * p.bars.len() as f64;
    // Row stripes under everything.
    for i in (1..p.bars.len()).step_by(2) {
        let _ = writeln!(
            out,
            r##"<rect x="10" y="{:.1}" width="{:.1}" height="{ROW:.1}" fill="#f6f6f6"/>"##,
            plot_top + ROW * i as f64,
            WIDTH - 20.0
        );
    }
    // Grid and ticks.
    let step = tick_step(hi - lo);
    let mut t = lo;
    while t <= hi + step * 1e-6 {
        let tx = x(t);
        let _ = writeln!(
            out,
            r##"<line x1="{tx:.1}" y1="{plot_top:.1}" x2="{tx:.1}" y2="{plot_bottom:.1}" stroke="#e3e3e3" stroke-width="1"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{tx:.1}" y="{:.1}" font-size="11" fill="#555555" text-anchor="middle">{:.*}</text>"##,
            plot_bottom + 15.0,
            tick_decimals(step),
            // `+ 0.0` turns a -0.0 tick into 0.
            t + 0.0
        );
        t += step;
    }
    // The zero axis.
    let zx = x(0.0);
    let _ = writeln!(
        out,
        r##"<line x1="{zx:.1}" y1="{plot_top:.1}" x2="{zx:.1}" y2="{plot_bottom:.1}" stroke="#888888" stroke-width="1"/>"##
    );
    // The reference line, then the bars and their values on top.
    if let Some(r) = p.reference {
        let rx = x(r);
        let _ = writeln!(
            out,
            r##"<line x1="{rx:.1}" y1="{:.1}" x2="{rx:.1}" y2="{plot_bottom:.1}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="5,4"/>"##,
            plot_top - 4.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{rx:.1}" y="{:.1}" font-size="11" fill="#c0392b" text-anchor="middle">{}</text>"##,
            plot_top - 7.0,
            esc(&p.reference_label)
        );
    }
    for (i, b) in p.bars.iter().enumerate() {
        let cy = plot_top + ROW * i as f64 + ROW / 2.0;
        let _ = writeln!(
            out,
            r##"<text x="{LABEL_RIGHT:.1}" y="{:.1}" font-size="13" font-weight="bold" fill="#222222" text-anchor="end">{}</text>"##,
            cy - 2.0,
            esc(&b.name)
        );
        let _ = writeln!(
            out,
            r##"<text x="{LABEL_RIGHT:.1}" y="{:.1}" font-size="10.5" fill="#666666" text-anchor="end">{}</text>"##,
            cy + 11.0,
            esc(&b.detail)
        );
        match b.value {
            Some(s) => {
                let (a, e) = (x(0.0).min(x(s.median)), x(0.0).max(x(s.median)));
                let _ = writeln!(
                    out,
                    r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{BAR:.1}" fill="{}"/>"#,
                    cy - BAR / 2.0,
                    (e - a).max(0.5),
                    b.color
                );
                let (w0, w1) = (x(s.min), x(s.max));
                if w1 - w0 > 0.5 {
                    let _ = writeln!(
                        out,
                        r##"<path d="M{w0:.1} {:.1}V{:.1}M{w0:.1} {cy:.1}H{w1:.1}M{w1:.1} {:.1}V{:.1}" stroke="#333333" stroke-width="1.2" fill="none"/>"##,
                        cy - 5.0,
                        cy + 5.0,
                        cy - 5.0,
                        cy + 5.0
                    );
                }
                // The value beside the bar's outer end (left of a negative bar).
                let (tx, anchor) = if s.median < 0.0 {
                    (a.min(w0) - 6.0, "end")
                } else {
                    (e.max(w1) + 6.0, "start")
                };
                let _ = writeln!(
                    out,
                    r##"<text x="{tx:.1}" y="{:.1}" font-size="12" fill="#222222" text-anchor="{anchor}">{:.*}</text>"##,
                    cy + 4.0,
                    p.decimals,
                    s.median
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" font-size="12" fill="#888888">n/a</text>"##,
                    zx + 6.0,
                    cy + 4.0
                );
            }
        }
    }
    plot_bottom + 20.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert!((tick_step(1.0) - 0.2).abs() < 1e-12);
        assert!((tick_step(1.1) - 0.25).abs() < 1e-12);
        assert!((tick_step(40.0) - 10.0).abs() < 1e-12);
        assert!((tick_step(0.0) - 1.0).abs() < 1e-12);
        assert_eq!(tick_decimals(0.25), 2);
        assert_eq!(tick_decimals(0.2), 1);
        assert_eq!(tick_decimals(20.0), 0);
    }

    #[test]
    fn renders_bars_and_escapes_labels() {
        let s = |m: f64| Spread::of(&[m - 0.1, m, m + 0.1]);
        let p = Panel {
            title: "ratio <to> bare & co".into(),
            decimals: 3,
            reference: Some(1.0),
            reference_label: "bare".into(),
            bars: vec![
                Bar {
                    name: "a".into(),
                    detail: "first".into(),
                    color: "#1f77b4",
                    value: s(0.9),
                },
                Bar {
                    name: "b".into(),
                    detail: "second".into(),
                    color: "#2ca02c",
                    value: None,
                },
                Bar {
                    name: "c".into(),
                    detail: "negative".into(),
                    color: "#2ca02c",
                    value: Spread::of(&[-2.0, 1.0]),
                },
            ],
        };
        let out = svg("t", "sub", &[("#1f77b4", "filter")], &[p]);
        assert!(out.starts_with("<?xml"));
        assert!(out.trim_end().ends_with("</svg>"));
        assert!(out.contains("ratio &lt;to&gt; bare &amp; co"));
        assert!(out.contains(">0.900<"));
        assert!(out.contains(">n/a<"));
        assert!(out.contains(">filter<"));
        // A negative bar's value sits left of it.
        assert!(out.contains(r#"text-anchor="end">-0.500<"#));
        assert!(out.contains("stroke-dasharray"));
        // Every element opened is closed (a cheap well-formedness check).
        assert_eq!(out.matches("<text").count(), out.matches("</text>").count());
    }
}
