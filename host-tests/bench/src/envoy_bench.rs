//! Sections 1, 2 and 4a: Envoy throughput at saturation, latency at a fixed rate, and Envoy's
//! resident memory, for every [`Variant`], interleaved `A B C D … A B C D …` over the rounds so
//! that a slow moment of the machine hits every variant alike.
//!
//! All the Envoys run for the whole section (one worker each, pinned to CPU 0 when the machine
//! has two or more; the load generators and the sink run on CPU 1). A variant is measured only
//! while the others idle. adtap's runs are checked with its own stats: on the ad path every
//! request served must be captured and delivered to the sink; on the unmatched path nothing may
//! be captured. Ratios are taken per round (the same moment of the machine) before their median.
//! With `Settings::chart`, an SVG of each variant's throughput over bare and its added Envoy
//! CPU per request is written there ([`crate::chart`]).

use crate::chart::{self, Bar};
use crate::envoy::{Deployment, Envoy, Inputs, Module, Variant, AD_HEADERS};
use crate::load::{self, RateResult};
use crate::report::{table, Section, Target};
use crate::sink::Sink;
use crate::stats::{show_opt, show_spread, Spread};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Settings of the Envoy sections.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Rounds of the interleaved schedule.
    pub rounds: usize,
    /// Seconds of each throughput run.
    pub secs: u64,
    /// Seconds of each fixed-rate run.
    pub latency_secs: f64,
    /// Fixed rate, requests/s.
    pub rate: f64,
    /// wrk connections (and fixed-rate connections).
    pub conns: usize,
    /// CPU for Envoy and CPU for the load generators, when pinning.
    pub cpus: Option<(usize, usize)>,
    /// The configurations to run, in the order of each round.
    pub variants: Vec<Variant>,
    /// Where to write the SVG chart, if anywhere (the markdown links it by file name).
    pub chart: Option<PathBuf>,
}

/// adtap's accounting around one run, from Envoy's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Check {
    /// Requests Envoy completed on the ad listener during the run.
    pub served: u64,
    /// Events adtap captured during the run.
    pub captured: u64,
    /// Events delivered during the run.
    pub delivered: u64,
    /// Events dropped during the run.
    pub dropped: u64,
    /// Requests the module saw and matched to no rule (`adtap_requests_unmatched`): 0 when
    /// Envoy skipped the module natively.
    pub unmatched: u64,
    /// Whether the traffic should be captured (the ad path) or not (the unmatched path).
    pub expect_capture: bool,
}

impl Check {
    /// On the ad path: every request captured, every capture delivered, nothing dropped. On
    /// the unmatched path: nothing captured, nothing dropped.
    pub fn ok(&self) -> bool {
        let accounted = if self.expect_capture {
            self.captured == self.served && self.delivered == self.captured
        } else {
            self.captured == 0
        };
        self.served > 0 && accounted && self.dropped == 0
    }
}

/// The running totals a [`Check`] is the difference of (`expect_capture` unset).
fn counts(e: &Envoy) -> Result<Check> {
    let s = e
        .harness
        .envoy_stats("^(http\\.ads\\.downstream_rq_completed|wasmcustom\\.adtap_)")?;
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    Ok(Check {
        served: g("http.ads.downstream_rq_completed"),
        captured: g("wasmcustom.adtap_captured"),
        delivered: g("wasmcustom.adtap_delivered"),
        dropped: g("wasmcustom.adtap_dropped"),
        unmatched: g("wasmcustom.adtap_requests_unmatched"),
        expect_capture: false,
    })
}

/// Waits (up to 20 s) until adtap has published a capture for every request served since
/// `before` and delivered everything it captured, then returns the run's accounting. When
/// nothing is to be captured, waits for three of adtap's ticks (its stats are published once
/// per tick) and returns what it saw.
fn settle(e: &Envoy, before: Check, expect_capture: bool) -> Result<Check> {
    let deadline = Instant::now() + Duration::from_secs(20);
    // Give up early when nothing moves for 3 s (a module that captures nothing).
    let mut last = (u64::MAX, u64::MAX);
    let mut last_change = Instant::now();
    if !expect_capture {
        std::thread::sleep(Duration::from_millis(300));
    }
    loop {
        let now = counts(e)?;
        if (now.captured, now.delivered) != last {
            last = (now.captured, now.delivered);
            last_change = Instant::now();
        }
        let check = Check {
            served: now.served.saturating_sub(before.served),
            captured: now.captured.saturating_sub(before.captured),
            delivered: now.delivered.saturating_sub(before.delivered),
            dropped: now.dropped.saturating_sub(before.dropped),
            unmatched: now.unmatched.saturating_sub(before.unmatched),
            expect_capture,
        };
        let caught_up =
            check.captured >= check.served && now.delivered + now.dropped >= now.captured;
        let stuck = last_change.elapsed() > Duration::from_secs(3);
        if !expect_capture || caught_up || stuck || Instant::now() > deadline {
            return Ok(check);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`settle`] after a measured `run` of `v` (adtap's variants only), warning when the
/// accounting is off.
fn checked(e: &Envoy, v: Variant, before: Check, run: &str) -> Result<Option<Check>> {
    if !v.is_adtap() {
        return Ok(None);
    }
    let c = settle(e, before, !v.unmatched())?;
    if !c.ok() {
        eprintln!(
            "  WARNING: {} accounting off after a {run} run: {c:?}",
            v.name()
        );
    }
    Ok(Some(c))
}

/// Per-variant measurements.
#[derive(Debug, Default)]
struct Series {
    rps: Vec<f64>,
    wrk_errors: u64,
    lat: Vec<RateResult>,
    /// Envoy's CPU time per answered request in each fixed-rate run, µs.
    cpu_us: Vec<f64>,
    checks: Vec<Check>,
    rss_kib: Option<(u64, u64)>,
    log_bytes: u64,
    log_requests: u64,
}

/// Runs sections 1, 2 and 4a and renders them.
pub fn run(settings: &Settings, inputs_base: &Inputs) -> Result<Section> {
    let sink = Sink::start()?;
    let inputs = Inputs {
        rest_port: sink.addr.port(),
        ..inputs_base.clone()
    };
    let envoy_cpu = settings.cpus.map(|c| c.0);
    let load_cpu = settings.cpus.map(|c| c.1);
    let mut envoys = Vec::new();
    for v in settings.variants.iter().copied() {
        eprintln!("  starting Envoy: {} ({})", v.name(), v.label());
        envoys.push((v, Envoy::start(v, &inputs, envoy_cpu)?));
    }
    let mut series: BTreeMap<usize, Series> = BTreeMap::new();
    let url = |v: Variant, e: &Envoy| format!("http://{}{}", e.listener, v.path());

    // Warm-up: V8 compiles lazily and the first seconds are slower; not recorded.
    for (v, e) in &envoys {
        let before = counts(e)?;
        load::wrk(&url(*v, e), &AD_HEADERS, 1, settings.conns, 1, load_cpu)?;
        if v.is_adtap() {
            settle(e, before, !v.unmatched())?;
        }
        truncate_log(e);
    }

    for round in 0..settings.rounds {
        for (v, e) in &envoys {
            let i = idx(*v);
            let before = counts(e)?;
            let r = load::wrk(
                &url(*v, e),
                &AD_HEADERS,
                1,
                settings.conns,
                settings.secs,
                load_cpu,
            )?;
            let s = series.entry(i).or_default();
            s.rps.push(r.rps);
            s.wrk_errors += r.errors;
            s.checks.extend(checked(e, *v, before, "throughput")?);
            if *v == Variant::AccessLog {
                s.log_bytes += std::fs::metadata(&e.access_log).map_or(0, |m| m.len());
                s.log_requests += r.requests;
                truncate_log(e);
            }
            eprintln!(
                "  round {}/{} throughput {:<20} {:>9.0} req/s",
                round + 1,
                settings.rounds,
                v.name(),
                r.rps
            );
        }
    }
    for round in 0..settings.rounds {
        for (v, e) in &envoys {
            let i = idx(*v);
            let before = counts(e)?;
            let cpu_before = e.harness.cpu_ns();
            let r = load::fixed_rate(
                e.listener,
                v.path(),
                &AD_HEADERS,
                settings.rate,
                settings.latency_secs,
                settings.conns,
            )?;
            // Read before `settle`: its polling of the admin `/stats` costs Envoy CPU too, and
            // only adtap's runs poll. (The last partial batch, shipped after the run, is left
            // out for the same reason: at most one batch per run.)
            if let (Some(a), Some(b)) = (cpu_before, e.harness.cpu_ns()) {
                if r.ok > 0 {
                    let per = b.saturating_sub(a) as f64 / 1e3 / r.ok as f64;
                    series.entry(i).or_default().cpu_us.push(per);
                }
            }
            let c = checked(e, *v, before, "latency")?;
            series.entry(i).or_default().checks.extend(c);
            truncate_log(e);
            eprintln!(
                "  round {}/{} latency    {:<20} p50 {:>7.1} µs  p99 {:>7.1} µs  ({:.0} req/s, {} errors)",
                round + 1,
                settings.rounds,
                v.name(),
                r.p50_us,
                r.p99_us,
                r.achieved_rps,
                r.errors
            );
            series.entry(i).or_default().lat.push(r);
        }
    }
    for (v, e) in &envoys {
        series.entry(idx(*v)).or_default().rss_kib = e.harness.rss_kib();
    }
    let sink_records = sink.stats.records.load(Ordering::Relaxed);
    let sink_invalid = sink.stats.invalid.load(Ordering::Relaxed);
    let sink_bytes = sink.stats.body_bytes.load(Ordering::Relaxed);
    drop(envoys);
    if sink_invalid > 0 {
        bail!("the sink received {sink_invalid} requests that were not v2 produce requests");
    }
    let (section, svg) = render(settings, &series, sink_records, sink_bytes);
    if let Some(path) = &settings.chart {
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(section)
}

fn truncate_log(e: &Envoy) {
    // Envoy appends (O_APPEND), so truncating keeps the file small without reopening it.
    if e.access_log.exists() {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&e.access_log);
    }
}

fn idx(v: Variant) -> usize {
    Variant::ALL.iter().position(|x| *x == v).unwrap_or(0)
}

/// Per-round ratio a/b (same round, so slow moments cancel out).
fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// Per-round differences a − b.
fn diffs(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// The comparisons reported, `(a, b)` read "a against b", among the variants that ran: the
/// floors against bare, each adtap deployment against its floors and the JSON access log, the
/// unmatched variants against bare on the same traffic, one deployment against the other, and
/// the before/after pairs.
fn comparisons(ran: &[Variant]) -> Vec<(Variant, Variant)> {
    use Variant::*;
    let mut pairs = vec![
        (Noop, Bare),
        (NoopLog, Bare),
        (NoopLog, Noop),
        (AccessLog, Bare),
    ];
    for a in [Adtap, AdtapAll, Baseline] {
        pairs.extend([(a, Noop), (a, AccessLog)]);
    }
    for a in [AdtapLog, AdtapLogAll, BaselineLog] {
        pairs.extend([(a, NoopLog), (a, Noop), (a, AccessLog)]);
    }
    pairs.extend([
        (AdtapComposite, Noop),
        (AdtapComposite, Adtap),
        (AdtapUnmatched, BareUnmatched),
        (AdtapCompositeUnmatched, BareUnmatched),
        (AdtapLogUnmatched, BareUnmatched),
        (AdtapLog, Adtap),
        (AdtapLogAll, AdtapAll),
        (Adtap, Baseline),
        (AdtapLog, BaselineLog),
    ]);
    pairs
        .into_iter()
        .filter(|(a, b)| ran.contains(a) && ran.contains(b))
        .collect()
}

fn list(values: &[f64], decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn code(v: Variant) -> String {
    format!("`{}`", v.name())
}

/// The colour of a variant's bars: floors grey, the file log purple, adtap's HTTP filter blue,
/// its logger green, the unmatched variants orange, the baselines paler.
fn color(v: Variant) -> &'static str {
    match (v.module(), v.deployment(), v.unmatched()) {
        (_, Deployment::None, _) => "#9e9e9e",
        (_, Deployment::FileLog, _) => "#8e6bbf",
        (Some(Module::Noop), _, _) => "#b0b0b0",
        (_, _, true) => "#e67e22",
        (Some(Module::Baseline), Deployment::HttpFilter, _) => "#9ecae1",
        (Some(Module::Baseline), _, _) => "#a1d99b",
        (_, Deployment::HttpFilter, _) => "#2b6cb0",
        _ => "#2f9e44",
    }
}

fn render(
    settings: &Settings,
    series: &BTreeMap<usize, Series>,
    sink_records: u64,
    sink_bytes: u64,
) -> (Section, String) {
    use Variant::*;
    let empty = Series::default();
    let get = |v: Variant| series.get(&idx(v)).unwrap_or(&empty);
    let ran = &settings.variants;
    let mut md = String::from("## 1. Throughput at saturation\n\n");
    let mut targets = Vec::new();
    // Per-round throughput ratio and CPU difference of `a` against `b`.
    let rps_ratio = |a: Variant, b: Variant| ratios(&get(a).rps, &get(b).rps);
    let cpu_diff = |a: Variant, b: Variant| diffs(&get(a).cpu_us, &get(b).cpu_us);
    let lat_diff = |a: Variant, b: Variant, f: fn(&RateResult) -> f64| {
        let d: Vec<f64> = get(a)
            .lat
            .iter()
            .zip(&get(b).lat)
            .map(|(x, y)| f(x) - f(y))
            .collect();
        Spread::of(&d)
    };
    let check_ok = |v: Variant| {
        let c = &get(v).checks;
        !c.is_empty() && c.iter().all(Check::ok)
    };
    let comps = comparisons(ran);

    let _ = writeln!(
        md,
        "One Envoy worker (`--concurrency 1`), a `direct_response` route, `wrk -t1 -c{} -d{}s`, \
         {} interleaved round(s) (every variant once per round, in the order below); median \
         (min-max) over rounds. adtap ships to the bench's in-process **sink** (a correct \
         Confluent v2 answer, no broker), Confluent v2 JSON, default batch settings (500 events \
         / 1 MiB / 1 s). The `*-unmatched` variants are loaded with `{}`, which no rule \
         matches; their \"× bare\" is against `bare-unmatched` (bare Envoy on that path). The \
         variants:\n",
        settings.conns,
        settings.secs,
        settings.rounds,
        crate::envoy::UNMATCHED_PATH
    );
    for v in ran {
        let _ = writeln!(md, "- {}: {}", code(*v), v.shape());
    }
    md.push('\n');
    md.push_str(&table(
        &[
            "variant",
            "configuration",
            "req/s",
            "µs/request (1 / req/s)",
            "× bare",
            "× no-op filter",
            "× no-op logger",
            "× access log",
            "errors",
        ],
        ran.iter().map(|v| {
            let s = get(*v);
            vec![
                code(*v),
                v.label().to_string(),
                show_spread(&s.rps, 0),
                show_spread(&s.rps.iter().map(|x| 1e6 / x).collect::<Vec<_>>(), 2),
                show_spread(&rps_ratio(*v, v.bare()), 3),
                show_spread(&rps_ratio(*v, Noop), 3),
                show_spread(&rps_ratio(*v, NoopLog), 3),
                show_spread(&rps_ratio(*v, AccessLog), 3),
                s.wrk_errors.to_string(),
            ]
        }),
    ));
    if let Some(name) = settings
        .chart
        .as_ref()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
    {
        let _ = writeln!(
            md,
            "\n![Throughput over bare Envoy and Envoy CPU added per request, per variant]({name})"
        );
    }
    let _ = writeln!(
        md,
        "\nPer-round throughput ratios (each round's a / b, same moment of the machine) and their \
         median (min-max):\n"
    );
    md.push_str(&table(
        &["comparison", "per round", "median (min-max)"],
        comps.iter().map(|(a, b)| {
            let r = rps_ratio(*a, *b);
            vec![
                format!("{} / {}", code(*a), code(*b)),
                list(&r, 3),
                format!("**{}**", show_spread(&r, 3)),
            ]
        }),
    ));
    // At saturation the worker's time per request is 1/rps: what a target ratio leaves a
    // filter over the no-op floor.
    let allowance = |ratio: f64| {
        Spread::of(
            &get(Noop)
                .rps
                .iter()
                .map(|x| 1e6 / (ratio * x) - 1e6 / x)
                .collect::<Vec<_>>(),
        )
    };
    let _ = writeln!(
        md,
        "\nAt this saturation rate the 0.97 target allows {} µs of worker time per request over \
         the no-op filter, and the 0.80 target {} µs.",
        show_opt(allowance(0.97), 2),
        show_opt(allowance(0.80), 2)
    );
    let adtaps: Vec<Variant> = ran.iter().copied().filter(|v| v.is_adtap()).collect();
    if !adtaps.is_empty() {
        let _ = writeln!(
            md,
            "\nCapture check (adtap's own stats, `wasmcustom.adtap_*`, over every run of sections \
             1 and 2): on the ad path every request served must be captured and delivered, on \
             the unmatched path nothing captured; nothing dropped. \"Module saw\" counts \
             `adtap_requests_unmatched`, requests that entered the module and matched no rule \
             (0 when Envoy skipped the module natively).\n"
        );
        md.push_str(&table(
            &[
                "variant",
                "runs",
                "served",
                "captured",
                "delivered",
                "dropped",
                "module saw, unmatched",
                "check",
            ],
            adtaps.iter().map(|v| {
                let c = &get(*v).checks;
                let sum = |f: fn(&Check) -> u64| c.iter().map(f).sum::<u64>().to_string();
                vec![
                    code(*v),
                    c.len().to_string(),
                    sum(|c| c.served),
                    sum(|c| c.captured),
                    sum(|c| c.delivered),
                    sum(|c| c.dropped),
                    sum(|c| c.unmatched),
                    if check_ok(*v) {
                        "ok".into()
                    } else {
                        "**MISMATCH** (see the log)".into()
                    },
                ]
            }),
        ));
        let _ = writeln!(
            md,
            "\nThe sink acknowledged {sink_records} records (warm-ups included) in {sink_bytes} \
             body bytes ({:.0} bytes/event on the wire, v2 JSON).",
            if sink_records > 0 {
                sink_bytes as f64 / sink_records as f64
            } else {
                0.0
            }
        );
    }
    let check_note = |v: Variant| {
        if get(v).checks.is_empty() {
            "not run"
        } else if check_ok(v) {
            "ok"
        } else {
            "FAILED"
        }
    };
    for (v, min, fields) in [
        (Adtap, 0.97, "default"),
        (AdtapComposite, 0.97, "default"),
        (AdtapLog, 0.97, "default"),
        (AdtapAll, 0.80, "all"),
        (AdtapLogAll, 0.80, "all"),
    ] {
        let r = Spread::of(&rps_ratio(v, Noop));
        let deployment = if v.deployment() == Deployment::Logger {
            "access logger"
        } else if v.composite() {
            "HTTP filter in the composite filter"
        } else {
            "HTTP filter"
        };
        // The loggers are also compared with the no-op logger.
        let over_noop_log = if v.deployment() == Deployment::Logger {
            format!(
                "× no-op logger {}; ",
                show_spread(&rps_ratio(v, NoopLog), 3)
            )
        } else {
            String::new()
        };
        let measured = format!(
            "{} ({over_noop_log}× access log {}; capture check {})",
            show_opt(r, 3),
            show_spread(&rps_ratio(v, AccessLog), 3),
            check_note(v)
        );
        targets.push(Target::new(
            format!(
                "{} ({deployment}, {fields} fields) throughput ≥ {min:.2} × no-op Wasm filter",
                code(v)
            ),
            measured,
            r.map(|s| s.median >= min && check_ok(v)),
        ));
    }
    for v in [AdtapUnmatched, AdtapCompositeUnmatched, AdtapLogUnmatched] {
        let r = Spread::of(&rps_ratio(v, BareUnmatched));
        let seen: u64 = get(v).checks.iter().map(|c| c.unmatched).sum();
        targets.push(Target::new(
            format!(
                "{} ({}, unmatched traffic) throughput ≥ 0.98 × bare Envoy on the same traffic",
                code(v),
                match v {
                    AdtapCompositeUnmatched => "composite filter",
                    AdtapLogUnmatched => "access-log filter",
                    _ => "SkipFilter matcher",
                }
            ),
            format!(
                "{} (capture check {}; module entered by {seen} requests)",
                show_opt(r, 3),
                check_note(v)
            ),
            r.map(|s| s.median >= 0.98 && check_ok(v)),
        ));
    }

    let _ = writeln!(md, "\n## 2. Latency at a fixed rate\n");
    let _ = writeln!(
        md,
        "Open-loop generator in the bench ({} keep-alive connections, {:.0} req/s total, {} s per \
         run, {} interleaved round(s)); a request is timed from its scheduled send time when \
         its connection was still busy then (no coordinated omission). Median (min-max) over \
         rounds of each run's percentile, microseconds. Envoy CPU per request: all of Envoy's \
         threads (`schedstat`) over the run, divided by the requests answered; \"over bare\" is \
         the per-round difference to bare Envoy on the same traffic.\n",
        settings.conns, settings.rate, settings.latency_secs, settings.rounds
    );
    let lat = |s: &Series, f: fn(&RateResult) -> f64| {
        Spread::of(&s.lat.iter().map(f).collect::<Vec<_>>())
    };
    md.push_str(&table(
        &[
            "variant",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "achieved req/s",
            "Envoy CPU µs/request",
            "CPU over bare µs",
            "errors",
        ],
        ran.iter().map(|v| {
            let s = get(*v);
            vec![
                code(*v),
                show_opt(lat(s, |r| r.p50_us), 1),
                show_opt(lat(s, |r| r.p99_us), 1),
                show_opt(lat(s, |r| r.p999_us), 1),
                show_opt(lat(s, |r| r.max_us), 0),
                show_opt(lat(s, |r| r.achieved_rps), 0),
                show_spread(&s.cpu_us, 2),
                show_spread(&cpu_diff(*v, v.bare()), 2),
                s.lat.iter().map(|r| r.errors).sum::<u64>().to_string(),
            ]
        }),
    ));
    let _ = writeln!(
        md,
        "\nDifferences, per round (a − b), median (min-max), microseconds:\n"
    );
    md.push_str(&table(
        &[
            "comparison",
            "p50 Δ µs",
            "p99 Δ µs",
            "p99.9 Δ µs",
            "Envoy CPU Δ µs/request",
        ],
        comps.iter().map(|(a, b)| {
            vec![
                format!("{} − {}", code(*a), code(*b)),
                show_opt(lat_diff(*a, *b, |r| r.p50_us), 1),
                show_opt(lat_diff(*a, *b, |r| r.p99_us), 1),
                show_opt(lat_diff(*a, *b, |r| r.p999_us), 1),
                show_spread(&cpu_diff(*a, *b), 2),
            ]
        }),
    ));
    for v in [Adtap, AdtapLog] {
        let p50 = lat_diff(v, Noop, |r| r.p50_us);
        let p99 = lat_diff(v, Noop, |r| r.p99_us);
        let mut measured = format!("p50 {} µs, p99 {} µs", show_opt(p50, 1), show_opt(p99, 1));
        if v.deployment() == Deployment::Logger {
            let _ = write!(
                measured,
                " (over the no-op logger: p50 {} µs, p99 {} µs)",
                show_opt(lat_diff(v, NoopLog, |r| r.p50_us), 1),
                show_opt(lat_diff(v, NoopLog, |r| r.p99_us), 1)
            );
        }
        targets.push(Target::new(
            format!(
                "{} latency over the no-op Wasm filter at {:.0} req/s: p50 ≤ 5 µs, p99 ≤ 100 µs",
                code(v),
                settings.rate
            ),
            measured,
            p50.zip(p99)
                .map(|(a, b)| a.median <= 5.0 && b.median <= 100.0),
        ));
    }
    let cpu_rows: Vec<String> = ran
        .iter()
        .filter(|v| v.module().is_some() || **v == AccessLog)
        .filter_map(|v| {
            Spread::of(&cpu_diff(*v, v.bare())).map(|s| format!("{} {:+.2}", code(*v), s.median))
        })
        .collect();
    targets.push(Target {
        name: format!(
            "Envoy CPU µs per request over bare Envoy at {:.0} req/s (median of per-round differences)",
            settings.rate
        ),
        measured: if cpu_rows.is_empty() {
            "n/a".into()
        } else {
            cpu_rows.join(", ")
        },
        met: None,
        reported: !cpu_rows.is_empty(),
    });

    let _ = writeln!(md, "\n## 4a. Envoy resident memory\n");
    let _ = writeln!(
        md,
        "`VmRSS` and `VmHWM` (peak) of each Envoy process from `/proc/PID/status`, read after all \
         of sections 1 and 2 (the same load for every configuration).\n"
    );
    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    md.push_str(&table(
        &["variant", "VmRSS MiB", "VmHWM MiB"],
        ran.iter().map(|v| {
            let s = get(*v);
            match s.rss_kib {
                Some((rss, hwm)) => vec![code(*v), mib(rss), mib(hwm)],
                None => vec![code(*v), "n/a".into(), "n/a".into()],
            }
        }),
    ));
    let al = get(AccessLog);
    if al.log_requests > 0 {
        let _ = writeln!(
            md,
            "\nThe JSON access log wrote {:.0} bytes per request.",
            al.log_bytes as f64 / al.log_requests as f64
        );
    }

    // The chart: every variant but the bare ones (they are the reference).
    let charted: Vec<Variant> = ran
        .iter()
        .copied()
        .filter(|v| v.deployment() != Deployment::None)
        .collect();
    let bars = |value: &dyn Fn(Variant) -> Option<Spread>| -> Vec<Bar> {
        charted
            .iter()
            .map(|v| Bar {
                name: v.name().to_string(),
                detail: v.label().to_string(),
                color: color(*v),
                value: value(*v),
            })
            .collect()
    };
    // The legend names only the colours drawn.
    let legend: Vec<(&str, &str)> = [
        ("#b0b0b0", "no-op floors"),
        ("#8e6bbf", "JSON file access log"),
        ("#2b6cb0", "adtap HTTP filter"),
        ("#2f9e44", "adtap access logger"),
        ("#e67e22", "unmatched traffic, native skip"),
        ("#9ecae1", "baseline module (filter)"),
        ("#a1d99b", "baseline module (logger)"),
    ]
    .into_iter()
    .filter(|(c, _)| charted.iter().any(|v| color(*v) == *c))
    .collect();
    let svg = chart::svg(
        "adtap in Envoy: cost per deployment",
        &format!(
            "one Envoy worker, direct_response route, adtap shipping to the bench's sink\n\
             bars: median over {} interleaved round(s) of the per-round ratio (difference) to \
             bare Envoy on the same traffic; whiskers: smallest to largest round",
            settings.rounds
        ),
        &legend,
        &[
            chart::Panel {
                title: format!(
                    "Throughput at saturation (wrk -c{}), × bare Envoy",
                    settings.conns
                ),
                decimals: 3,
                reference: Some(1.0),
                reference_label: "bare = 1".into(),
                bars: bars(&|v| Spread::of(&rps_ratio(v, v.bare()))),
            },
            chart::Panel {
                title: format!(
                    "Envoy CPU added per request over bare Envoy, µs (at {:.0} req/s)",
                    settings.rate
                ),
                decimals: 2,
                reference: None,
                reference_label: String::new(),
                bars: bars(&|v| Spread::of(&cpu_diff(v, v.bare()))),
            },
        ],
    );
    (Section::new(md, targets), svg)
}
