//! Sections 1, 2 and 4a: Envoy throughput at saturation, latency at a fixed rate, and Envoy's
//! resident memory, for every [`Variant`], interleaved `A B C D A B C D …` over the rounds so
//! that a slow moment of the machine hits every variant alike.
//!
//! All four Envoys run for the whole section (one worker each, pinned to CPU 0 when the machine
//! has two or more; the load generators and the sink run on CPU 1). A variant is measured only
//! while the others idle. adtap's run is only counted when its own stats prove it captured every
//! request served and delivered them all to the sink.

use crate::envoy::{Envoy, Inputs, Variant, AD_HEADERS, AD_PATH};
use crate::load::{self, RateResult};
use crate::report::{table, Section, Target};
use crate::sink::Sink;
use crate::stats::{show_opt, Spread};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Settings of the Envoy sections.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Envoy binary.
    pub envoy: PathBuf,
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
    /// The configurations to run (all four for the report; fewer for quick experiments).
    pub variants: Vec<Variant>,
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
}

impl Check {
    /// Every request captured, every capture delivered, nothing dropped.
    pub fn ok(&self) -> bool {
        self.served > 0
            && self.captured == self.served
            && self.delivered == self.captured
            && self.dropped == 0
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    served: u64,
    captured: u64,
    delivered: u64,
    dropped: u64,
}

fn counts(e: &Envoy) -> Result<Counts> {
    let s = e.stats("^(http\\.ads\\.downstream_rq_completed|wasmcustom\\.adtap_)")?;
    let g = |k: &str| s.get(k).copied().unwrap_or(0);
    Ok(Counts {
        served: g("http.ads.downstream_rq_completed"),
        captured: g("wasmcustom.adtap_captured"),
        delivered: g("wasmcustom.adtap_delivered"),
        dropped: g("wasmcustom.adtap_dropped"),
    })
}

/// Waits (up to 20 s) until adtap has published a capture for every request served since
/// `before` and delivered everything it captured, then returns the run's accounting.
fn settle(e: &Envoy, before: Counts) -> Result<Check> {
    let deadline = Instant::now() + Duration::from_secs(20);
    // Give up early when nothing moves for 3 s (a module that captures nothing).
    let mut last = (u64::MAX, u64::MAX);
    let mut last_change = Instant::now();
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
        };
        let caught_up =
            check.captured >= check.served && now.delivered + now.dropped >= now.captured;
        let stuck = last_change.elapsed() > Duration::from_secs(3);
        if caught_up || stuck || Instant::now() > deadline {
            return Ok(check);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
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
        eprintln!("  starting Envoy: {}", v.label());
        envoys.push((v, Envoy::start(&settings.envoy, v, &inputs, envoy_cpu)?));
    }
    let mut series: BTreeMap<usize, Series> = BTreeMap::new();
    let url = |e: &Envoy| format!("http://{}{}", e.listener, AD_PATH);

    // Warm-up: V8 compiles lazily and the first seconds are slower; not recorded.
    for (v, e) in &envoys {
        let before = counts(e)?;
        load::wrk(&url(e), &AD_HEADERS, 1, settings.conns, 1, load_cpu)?;
        if v.is_adtap() {
            settle(e, before)?;
        }
        truncate_log(e);
    }

    for round in 0..settings.rounds {
        for (v, e) in &envoys {
            let i = idx(*v);
            let before = counts(e)?;
            let r = load::wrk(
                &url(e),
                &AD_HEADERS,
                1,
                settings.conns,
                settings.secs,
                load_cpu,
            )?;
            let s = series.entry(i).or_default();
            s.rps.push(r.rps);
            s.wrk_errors += r.errors;
            if v.is_adtap() {
                let c = settle(e, before)?;
                s.checks.push(c);
                if !c.ok() {
                    eprintln!("  WARNING: adtap accounting off after a throughput run: {c:?}");
                }
            }
            if *v == Variant::AccessLog {
                s.log_bytes += std::fs::metadata(&e.access_log).map_or(0, |m| m.len());
                s.log_requests += r.requests;
                truncate_log(e);
            }
            eprintln!(
                "  round {}/{} throughput {:<26} {:>9.0} req/s",
                round + 1,
                settings.rounds,
                v.label(),
                r.rps
            );
        }
    }
    for round in 0..settings.rounds {
        for (v, e) in &envoys {
            let i = idx(*v);
            let before = counts(e)?;
            let cpu_before = e.cpu_ns();
            let r = load::fixed_rate(
                e.listener,
                AD_PATH,
                &AD_HEADERS,
                settings.rate,
                settings.latency_secs,
                settings.conns,
            )?;
            // Read before `settle`: its polling of the admin `/stats` costs Envoy CPU too, and
            // only adtap's runs poll. (The last partial batch, shipped after the run, is left
            // out for the same reason: at most one batch per run.)
            if let (Some(a), Some(b)) = (cpu_before, e.cpu_ns()) {
                if r.ok > 0 {
                    let per = b.saturating_sub(a) as f64 / 1e3 / r.ok as f64;
                    series.entry(i).or_default().cpu_us.push(per);
                }
            }
            if v.is_adtap() {
                let c = settle(e, before)?;
                if !c.ok() {
                    eprintln!("  WARNING: adtap accounting off after a latency run: {c:?}");
                }
                series.entry(i).or_default().checks.push(c);
            }
            truncate_log(e);
            eprintln!(
                "  round {}/{} latency    {:<26} p50 {:>7.1} µs  p99 {:>7.1} µs  ({:.0} req/s, {} errors)",
                round + 1,
                settings.rounds,
                v.label(),
                r.p50_us,
                r.p99_us,
                r.achieved_rps,
                r.errors
            );
            series.entry(i).or_default().lat.push(r);
        }
    }
    for (v, e) in &envoys {
        series.entry(idx(*v)).or_default().rss_kib = e.rss_kib();
    }
    let sink_records = sink.stats.records.load(Ordering::Relaxed);
    let sink_invalid = sink.stats.invalid.load(Ordering::Relaxed);
    let sink_bytes = sink.stats.body_bytes.load(Ordering::Relaxed);
    drop(envoys);
    if sink_invalid > 0 {
        bail!("the sink received {sink_invalid} requests that were not v2 produce requests");
    }
    Ok(render(settings, &series, sink_records, sink_bytes))
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
fn ratios(a: &[f64], b: &[f64]) -> Option<Spread> {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    Spread::of(&r)
}

fn render(
    settings: &Settings,
    series: &BTreeMap<usize, Series>,
    sink_records: u64,
    sink_bytes: u64,
) -> Section {
    let empty = Series::default();
    let get = |v: Variant| series.get(&idx(v)).unwrap_or(&empty);
    let mut md = String::new();
    let mut targets = Vec::new();
    let bare = get(Variant::Bare);
    let noop = get(Variant::Noop);
    let adtap = get(Variant::Adtap);

    let _ = writeln!(md, "## 1. Throughput at saturation\n");
    let _ = writeln!(
        md,
        "One Envoy worker (`--concurrency 1`), a `direct_response` route, `wrk -t1 -c{} -d{}s`, \
         {} interleaved round(s); median (min-max) over rounds. adtap ships to the bench's \
         in-process **sink** (a correct Confluent v2 answer, no broker), Confluent v2 JSON, \
         default batch settings (500 events / 1 MiB / 1 s).\n",
        settings.conns, settings.secs, settings.rounds
    );
    let rows: Vec<Vec<String>> = settings
        .variants
        .iter()
        .map(|v| {
            let s = get(*v);
            vec![
                v.label().to_string(),
                show_opt(Spread::of(&s.rps), 0),
                show_opt(ratios(&s.rps, &bare.rps), 3),
                show_opt(ratios(&s.rps, &noop.rps), 3),
                s.wrk_errors.to_string(),
            ]
        })
        .collect();
    md.push_str(&table(
        &["configuration", "req/s", "× bare", "× no-op", "errors"],
        &rows,
    ));
    let vs_noop = ratios(&adtap.rps, &noop.rps);
    let vs_bare = ratios(&adtap.rps, &bare.rps);
    let _ = writeln!(
        md,
        "\nadtap / no-op = **{}**, adtap / bare = **{}** (per-round ratios).",
        show_opt(vs_noop, 3),
        show_opt(vs_bare, 3)
    );
    // Per-request service time at saturation is 1/rps; the difference is what a filter adds
    // to every request on the worker thread.
    let added_us = |a: &Series, b: &Series| {
        let d: Vec<f64> = a
            .rps
            .iter()
            .zip(&b.rps)
            .map(|(x, y)| 1e6 / x - 1e6 / y)
            .collect();
        Spread::of(&d)
    };
    let _ =
        writeln!(
        md,
        "\nWorker time per request (1 / req/s): bare {} µs; the no-op filter adds {} µs; adtap \
         adds {} µs over the no-op filter. At this saturation rate the 0.97 target allows adtap \
         {} µs per request.",
        show_opt(
            Spread::of(&bare.rps.iter().map(|x| 1e6 / x).collect::<Vec<_>>()),
            2
        ),
        show_opt(added_us(noop, bare), 2),
        show_opt(added_us(adtap, noop), 2),
        show_opt(
            Spread::of(&noop.rps.iter().map(|x| 1e6 / (0.97 * x) - 1e6 / x).collect::<Vec<_>>()),
            2
        ),
    );
    let baseline = get(Variant::Baseline);
    if !baseline.rps.is_empty() {
        let _ = writeln!(
            md,
            "\nBefore/after in the same rounds: adtap / baseline module = **{}** (per-round \
             ratios); adtap's worker time per request minus the baseline's: **{} µs**.",
            show_opt(ratios(&adtap.rps, &baseline.rps), 3),
            show_opt(added_us(adtap, baseline), 2),
        );
    }
    let checks_ok = !adtap.checks.is_empty() && adtap.checks.iter().all(Check::ok);
    let served: u64 = adtap.checks.iter().map(|c| c.served).sum();
    let captured: u64 = adtap.checks.iter().map(|c| c.captured).sum();
    let delivered: u64 = adtap.checks.iter().map(|c| c.delivered).sum();
    let dropped: u64 = adtap.checks.iter().map(|c| c.dropped).sum();
    let _ = writeln!(
        md,
        "\nCapture check (adtap's own stats, `wasmcustom.adtap_*`, over every adtap run of \
         sections 1 and 2): {served} requests served, {captured} captured, {delivered} \
         delivered, {dropped} dropped — {}. The sink acknowledged {sink_records} records (warm-ups included) in \
         {sink_bytes} body bytes ({:.0} bytes/event on the wire, v2 JSON).",
        if checks_ok {
            "every request captured and delivered"
        } else {
            "**MISMATCH: see the warnings in the log**"
        },
        if sink_records > 0 {
            sink_bytes as f64 / sink_records as f64
        } else {
            0.0
        }
    );
    targets.push(Target {
        name: "adtap throughput ≥ 0.97 × no-op Wasm filter".into(),
        measured: format!(
            "{} (capture check {})",
            show_opt(vs_noop, 3),
            if checks_ok { "ok" } else { "FAILED" }
        ),
        met: vs_noop.map(|s| s.median >= 0.97 && checks_ok),
    });

    let _ = writeln!(md, "\n## 2. Latency at a fixed rate\n");
    let _ = writeln!(
        md,
        "Open-loop generator in the bench ({} keep-alive connections, {:.0} req/s total, {} s per \
         run, {} interleaved round(s)); a request is timed from its scheduled send time when \
         its connection was still busy then (no coordinated omission). Median (min-max) over \
         rounds of each run's percentile, microseconds.\n",
        settings.conns, settings.rate, settings.latency_secs, settings.rounds
    );
    let lat = |s: &Series, f: fn(&RateResult) -> f64| {
        Spread::of(&s.lat.iter().map(f).collect::<Vec<_>>())
    };
    let rows: Vec<Vec<String>> = settings
        .variants
        .iter()
        .map(|v| {
            let s = get(*v);
            vec![
                v.label().to_string(),
                show_opt(lat(s, |r| r.p50_us), 1),
                show_opt(lat(s, |r| r.p99_us), 1),
                show_opt(lat(s, |r| r.p999_us), 1),
                show_opt(lat(s, |r| r.max_us), 0),
                show_opt(lat(s, |r| r.achieved_rps), 0),
                show_opt(Spread::of(&s.cpu_us), 2),
                s.lat.iter().map(|r| r.errors).sum::<u64>().to_string(),
            ]
        })
        .collect();
    md.push_str(&table(
        &[
            "configuration",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "achieved req/s",
            "Envoy CPU µs/request",
            "errors",
        ],
        &rows,
    ));
    let diff = |f: fn(&RateResult) -> f64| {
        let d: Vec<f64> = adtap
            .lat
            .iter()
            .zip(&noop.lat)
            .map(|(a, n)| f(a) - f(n))
            .collect();
        Spread::of(&d)
    };
    let p50_add = diff(|r| r.p50_us);
    // CPU per request, per-round differences: what each filter costs the worker, steadier
    // than saturation throughput when the machine is shared.
    let cpu_diff = |a: &Series, b: &Series| {
        let d: Vec<f64> = a.cpu_us.iter().zip(&b.cpu_us).map(|(x, y)| x - y).collect();
        Spread::of(&d)
    };
    let _ = writeln!(
        md,
        "\nEnvoy CPU time per request at this rate (all threads, `schedstat`), per-round \
         differences: the no-op filter adds {} µs over bare Envoy; adtap adds **{} µs** over the \
         no-op filter.",
        show_opt(cpu_diff(noop, bare), 2),
        show_opt(cpu_diff(adtap, noop), 2),
    );
    if !baseline.lat.is_empty() {
        let d: Vec<f64> = adtap
            .lat
            .iter()
            .zip(&baseline.lat)
            .map(|(a, b)| a.p50_us - b.p50_us)
            .collect();
        let _ = writeln!(
            md,
            "\nBefore/after: adtap's p50 minus the baseline module's, per round: **{} µs**; \
             Envoy CPU per request, adtap minus baseline: **{} µs**.",
            show_opt(Spread::of(&d), 1),
            show_opt(cpu_diff(adtap, baseline), 2),
        );
    }
    let _ = writeln!(
        md,
        "\nLatency adtap adds over the no-op filter (per-round differences): p50 **{} µs**, \
         p99 {} µs, p99.9 {} µs. Over bare Envoy, the no-op filter itself adds p50 {} µs.",
        show_opt(p50_add, 1),
        show_opt(diff(|r| r.p99_us), 1),
        show_opt(diff(|r| r.p999_us), 1),
        show_opt(
            Spread::of(
                &noop
                    .lat
                    .iter()
                    .zip(&bare.lat)
                    .map(|(n, b)| n.p50_us - b.p50_us)
                    .collect::<Vec<_>>()
            ),
            1
        ),
    );
    targets.push(Target {
        name: "adtap p50 latency within 5 µs of no-op".into(),
        measured: format!("+{} µs", show_opt(p50_add, 1)),
        met: p50_add.map(|s| s.median <= 5.0),
    });

    let _ = writeln!(md, "\n## 4a. Envoy resident memory\n");
    let _ = writeln!(
        md,
        "`VmRSS` and `VmHWM` (peak) of each Envoy process from `/proc/PID/status`, read after all \
         of sections 1 and 2 (the same load for every configuration).\n"
    );
    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    let rows: Vec<Vec<String>> = settings
        .variants
        .iter()
        .map(|v| {
            let s = get(*v);
            match s.rss_kib {
                Some((rss, hwm)) => vec![v.label().to_string(), mib(rss), mib(hwm)],
                None => vec![v.label().to_string(), "n/a".into(), "n/a".into()],
            }
        })
        .collect();
    md.push_str(&table(&["configuration", "VmRSS MiB", "VmHWM MiB"], &rows));
    let al = get(Variant::AccessLog);
    if al.log_requests > 0 {
        let _ = writeln!(
            md,
            "\nThe JSON access log wrote {:.0} bytes per request.",
            al.log_bytes as f64 / al.log_requests as f64
        );
    }
    Section {
        markdown: md,
        targets,
    }
}
