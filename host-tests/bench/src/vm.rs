//! Sections 3b and 4b: adtap's release module in the wasmtime proxy-wasm host
//! (`adtap-wasm-host`), compiled with an engine of its own **without fuel metering**, so the
//! guest runs as plain Cranelift code (fuel would add a counter to every block).
//!
//! The driver plays a single Envoy worker at a virtual 50k requests/s: for every request it
//! creates an HTTP context and runs `on_request_headers`, `on_response_headers`, `on_log`,
//! `on_done`/`on_delete` (the stream properties adtap reads in `on_log` are host-wide root
//! properties, set once, so no per-request host-side setup is timed). Every 100 requests it
//! fires the ticks that are due and answers every batch call at once with a correct answer for
//! the dialect (built outside the timed region). The same loop on the no-op filter gives the
//! floor that any module pays in this host; adtap's own cost is the difference.
//!
//! Memory: the linear memory is read at idle (configured, no traffic), after the steady run,
//! and under overload with the REST proxy down (every call fails at once, as when the
//! connection is refused) for 90 virtual seconds, past the 60 s retry budget.

use crate::envoy::{AD_HEADERS, AD_PATH};
use crate::report::{table, Section, Target};
use crate::stats::{show_opt, show_spread, Spread};
use crate::tools::Tools;
use adtap_harness::config::CLUSTER_ID;
use adtap_wasm_host::{Host, HostOptions, LogLevel};
use anyhow::{anyhow, bail, Result};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;
use wasmtime::{Engine, Module};

/// Virtual time between two requests (50k requests/s).
const REQUEST_GAP: Duration = Duration::from_micros(20);
/// Virtual time between two requests under overload (5k requests/s: the buffers fill within
/// seconds, and the run stays short in wall time).
const OVERLOAD_GAP: Duration = Duration::from_micros(200);
/// Requests between two pumps (due ticks fired, calls answered).
const PUMP_EVERY: usize = 100;

/// adtap's configuration for the VM runs: the bench's ([`crate::config`]), with `buffer`
/// replaced when given.
fn config(dialect: &str, format: &str, buffer: Option<serde_json::Value>) -> Result<String> {
    let mut cfg = crate::config::adtap_config(
        crate::config::dialect(dialect)?,
        crate::config::format(format)?,
    );
    if let Some(b) = buffer {
        adtap_harness::config::merge(&mut cfg, &json!({ "buffer": b }));
    }
    Ok(cfg.to_string())
}

/// A Cranelift engine without fuel. `ADTAP_BENCH_PERFMAP=1` writes `/tmp/perf-PID.map` so
/// that `perf record` / `perf report` can name the guest's functions (profiling runs only).
fn vm_engine() -> Result<Engine> {
    let mut config = wasmtime::Config::new();
    if std::env::var_os("ADTAP_BENCH_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(|e| anyhow!("wasmtime engine: {e:#}"))
}

/// CPU time of the calling thread: the VM runs on this thread, and unlike the wall clock it
/// does not count the time other processes of a busy machine took the CPU.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn compile(engine: &Engine, path: &Path) -> Result<Module> {
    let bytes = std::fs::read(path)?;
    Module::new(engine, bytes).map_err(|e| anyhow!("compiling {}: {e:#}", path.display()))
}

fn start(module: &Module, plugin_config: String) -> Result<Host> {
    let opts = HostOptions {
        plugin_config: plugin_config.into_bytes(),
        memory_limit_bytes: 1 << 30,
        log_level: LogLevel::Warn,
        ..HostOptions::default()
    };
    let mut host = Host::start(module, opts).map_err(|e| anyhow!("{e:#}"))?;
    // What Envoy answers to the properties adtap reads in `on_log`.
    host.set_root_property(&["response", "code"], 200u64.to_le_bytes().to_vec());
    host.set_root_property(&["request", "duration"], 412_000u64.to_le_bytes().to_vec());
    host.set_root_property(&["request", "total_size"], 310u64.to_le_bytes().to_vec());
    host.set_root_property(&["response", "total_size"], 120u64.to_le_bytes().to_vec());
    host.set_root_property(&["xds", "route_name"], b"impression".to_vec());
    host.set_root_property(&["source", "address"], b"203.0.113.77:51234".to_vec());
    Ok(host)
}

/// Request headers of one ad request, as Envoy hands them to the filter.
fn request_headers(seq: u64) -> Vec<(String, String)> {
    let mut h = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), AD_PATH.to_string()),
        (":authority".to_string(), "ads.example.com".to_string()),
        (":scheme".to_string(), "http".to_string()),
        (
            "x-request-id".to_string(),
            format!("6f1c2a8e-4d0b-4b8e-9d7a-{seq:012x}"),
        ),
    ];
    h.extend(
        AD_HEADERS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    h
}

const RESPONSE_HEADERS: [(&str, &str); 3] = [
    (":status", "200"),
    ("content-length", "2"),
    ("content-type", "text/plain"),
];

/// Number of records in a batch request body of `dialect`.
fn records_in(dialect: &str, body: &[u8]) -> Result<usize> {
    if dialect == "confluent_v3" {
        let n = serde_json::Deserializer::from_slice(body)
            .into_iter::<serde::de::IgnoredAny>()
            .take_while(Result::is_ok)
            .count();
        return Ok(n);
    }
    #[derive(serde::Deserialize)]
    struct Body {
        records: Vec<serde::de::IgnoredAny>,
    }
    Ok(serde_json::from_slice::<Body>(body)?.records.len())
}

/// A correct 200 answer for `n` records in `dialect`.
fn answer(dialect: &str, n: usize) -> Vec<u8> {
    match dialect {
        "confluent_v3" => (0..n)
            .map(|i| {
                format!(
                    r#"{{"error_code":200,"cluster_id":"{CLUSTER_ID}","topic_name":"ad-impressions","partition_id":0,"offset":{i},"timestamp":"2023-11-14T22:13:20.000Z"}}"#
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes(),
        "redpanda" => br#"{"offsets":[{"partition":0,"offset":0}]}"#.to_vec(),
        _ => crate::sink::v2_offsets(n, 0).into_bytes(),
    }
}

/// How batch calls are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    /// Every call gets a correct 200 at once.
    Healthy,
    /// Every call fails at once (connection refused).
    Down,
}

/// What one driven run measured.
#[derive(Debug, Clone, Default)]
struct Run {
    events: u64,
    /// Time inside request callbacks (context create, headers, log, done).
    request_ns: u128,
    /// Time inside ticks and call answers (batching, encoding the request, classification).
    ship_ns: u128,
    calls: u64,
    body_bytes: u64,
    records_sent: u64,
}

impl Run {
    fn ns_per_event(&self) -> f64 {
        (self.request_ns + self.ship_ns) as f64 / self.events.max(1) as f64
    }
}

/// Drives `n` requests through `host`, answering calls as `upstream` says.
fn drive(
    host: &mut Host,
    dialect: &str,
    n: u64,
    gap: Duration,
    upstream: Upstream,
    run: &mut Run,
) -> Result<()> {
    let headers: Vec<Vec<(String, String)>> = (0..PUMP_EVERY as u64).map(request_headers).collect();
    let mut sent = 0u64;
    while sent < n {
        let chunk = (n - sent).min(PUMP_EVERY as u64);
        let t = thread_cpu();
        for h in headers.iter().take(chunk as usize) {
            let id = host.new_http_context().map_err(|e| anyhow!("{e:#}"))?;
            host.request_headers(id, h, true)
                .map_err(|e| anyhow!("{e:#}"))?;
            host.response_headers(id, &RESPONSE_HEADERS, false)
                .map_err(|e| anyhow!("{e:#}"))?;
            host.complete_stream(id).map_err(|e| anyhow!("{e:#}"))?;
            host.advance(gap);
        }
        run.request_ns += (thread_cpu() - t).as_nanos();
        sent += chunk;
        run.events += chunk;
        pump(host, dialect, upstream, run, Duration::ZERO)?;
    }
    Ok(())
}

/// Fires the ticks due within `advance`, answering every call as it appears.
fn pump(
    host: &mut Host,
    dialect: &str,
    upstream: Upstream,
    run: &mut Run,
    advance: Duration,
) -> Result<()> {
    let t = thread_cpu();
    host.advance_and_tick(advance)
        .map_err(|e| anyhow!("{e:#}"))?;
    run.ship_ns += (thread_cpu() - t).as_nanos();
    // Answers may free call slots and dispatch more batches: loop until none is pending.
    loop {
        let calls = host.pending_calls();
        if calls.is_empty() {
            return Ok(());
        }
        for call in calls {
            run.calls += 1;
            run.body_bytes += call.body.len() as u64;
            match upstream {
                Upstream::Healthy => {
                    let n = records_in(dialect, &call.body)?;
                    run.records_sent += n as u64;
                    let body = answer(dialect, n);
                    let t = thread_cpu();
                    host.respond(
                        call.token,
                        200,
                        &[("content-type", "application/json")],
                        &body,
                    )
                    .map_err(|e| anyhow!("{e:#}"))?;
                    run.ship_ns += (thread_cpu() - t).as_nanos();
                }
                Upstream::Down => {
                    let t = thread_cpu();
                    host.fail_call(call.token).map_err(|e| anyhow!("{e:#}"))?;
                    run.ship_ns += (thread_cpu() - t).as_nanos();
                }
            }
        }
    }
}

fn metric(host: &Host, name: &str) -> i64 {
    host.metric(name).unwrap_or(0)
}

/// A fresh [`Run`] of `events` requests at the steady rate, the REST proxy answering.
fn healthy(host: &mut Host, dialect: &str, events: u64) -> Result<Run> {
    let mut run = Run::default();
    drive(
        host,
        dialect,
        events,
        REQUEST_GAP,
        Upstream::Healthy,
        &mut run,
    )?;
    Ok(run)
}

/// Lets virtual time pass (ticks, answers) until adtap holds nothing, up to 10 s.
fn drain(host: &mut Host, dialect: &str, run: &mut Run) -> Result<()> {
    for _ in 0..100 {
        pump(
            host,
            dialect,
            Upstream::Healthy,
            run,
            Duration::from_millis(100),
        )?;
        if metric(host, "adtap_buffered") == 0 && metric(host, "adtap_in_flight") == 0 {
            break;
        }
    }
    Ok(())
}

/// Steady-state measurement of one dialect/format.
#[derive(Default)]
struct Steady {
    dialect: &'static str,
    format: &'static str,
    ns: Vec<f64>,
    request_ns: Vec<f64>,
    ship_ns: Vec<f64>,
    bytes_per_event: f64,
    captured: i64,
    delivered: i64,
    events: u64,
    idle_mem: usize,
    steady_mem: usize,
}

fn steady(
    module: &Module,
    dialect: &'static str,
    format: &'static str,
    events: u64,
    rounds: usize,
) -> Result<Steady> {
    let mut host = start(module, config(dialect, format, None)?)?;
    let idle_mem = host.linear_memory_bytes();
    let mut warm = healthy(&mut host, dialect, events / 5)?;
    drain(&mut host, dialect, &mut warm)?;
    let mut out = Steady {
        dialect,
        format,
        events: warm.events,
        idle_mem,
        ..Steady::default()
    };
    let mut bytes = 0u64;
    let mut records = 0u64;
    for _ in 0..rounds {
        let run = healthy(&mut host, dialect, events)?;
        out.ns.push(run.ns_per_event());
        out.request_ns
            .push(run.request_ns as f64 / run.events as f64);
        out.ship_ns.push(run.ship_ns as f64 / run.events as f64);
        out.events += run.events;
        let mut tail = Run::default();
        drain(&mut host, dialect, &mut tail)?;
        bytes += run.body_bytes + tail.body_bytes;
        records += run.records_sent + tail.records_sent;
    }
    out.steady_mem = host.linear_memory_bytes();
    out.bytes_per_event = bytes as f64 / records.max(1) as f64;
    out.captured = metric(&host, "adtap_captured");
    out.delivered = metric(&host, "adtap_delivered");
    if let Some(t) = host.trapped() {
        bail!("adtap trapped in the wasmtime host: {t}");
    }
    Ok(out)
}

/// The no-op filter's cost per request in this host (the floor).
fn floor(module: &Module, events: u64, rounds: usize) -> Result<Vec<f64>> {
    let mut host = start(module, String::new())?;
    healthy(&mut host, "confluent_v2", events / 5)?;
    let mut out = Vec::new();
    for _ in 0..rounds {
        out.push(healthy(&mut host, "confluent_v2", events)?.ns_per_event());
    }
    Ok(out)
}

/// Overload: the REST proxy is down for `secs` virtual seconds at 5k requests/s.
struct Overload {
    label: String,
    cap_bytes: usize,
    /// Linear memory at each quarter of the run.
    mem: Vec<usize>,
    max_held_bytes: i64,
    captured: i64,
    dropped: i64,
}

fn overload(
    module: &Module,
    label: &str,
    buffer: serde_json::Value,
    cap_bytes: usize,
    secs: u64,
) -> Result<Overload> {
    let mut host = start(module, config("confluent_v2", "json", Some(buffer))?)?;
    let total = secs * 1_000_000 / OVERLOAD_GAP.as_micros() as u64;
    let mut run = Run::default();
    let mut mem = Vec::new();
    let mut max_held_bytes = 0;
    for _ in 0..4 {
        let quarter = total / 4;
        let mut done = 0;
        while done < quarter {
            let n = (quarter - done).min(10_000);
            drive(
                &mut host,
                "confluent_v2",
                n,
                OVERLOAD_GAP,
                Upstream::Down,
                &mut run,
            )?;
            done += n;
            max_held_bytes = max_held_bytes.max(metric(&host, "adtap_held_bytes"));
        }
        mem.push(host.linear_memory_bytes());
    }
    if let Some(t) = host.trapped() {
        bail!("adtap trapped under overload: {t}");
    }
    Ok(Overload {
        label: label.to_string(),
        cap_bytes,
        mem,
        max_held_bytes,
        captured: metric(&host, "adtap_captured"),
        dropped: metric(&host, "adtap_dropped"),
    })
}

const MIB: f64 = 1024.0 * 1024.0;

/// Runs sections 3b and 4b.
pub fn run(tools: &Tools, noop_wasm: &Path, short: bool) -> Result<Section> {
    let (events, rounds, overload_secs) = if short {
        (20_000, 2, 70)
    } else {
        (100_000, 5, 90)
    };
    let engine = vm_engine()?;
    let adtap = compile(&engine, &tools.adtap_wasm)?;
    let noop = compile(&engine, noop_wasm)?;
    let floor_ns = floor(&noop, events, rounds)?;
    let floor = Spread::of(&floor_ns);
    let mut results = Vec::new();
    for dialect in ["confluent_v2", "confluent_v3", "redpanda"] {
        for format in ["json", "msgpack"] {
            // Timing rounds for v2 (both formats); the other dialects run once for their bytes.
            let r = if dialect == "confluent_v2" { rounds } else { 1 };
            eprintln!("  wasmtime: {dialect} {format}");
            results.push(steady(&adtap, dialect, format, events, r)?);
        }
    }
    let mut md =
        String::from("## 3b. Per-event cost in the VM (wasmtime host, release module)\n\n");
    let mut targets = Vec::new();
    let _ = writeln!(
        md,
        "adtap's release module in `adtap-wasm-host` (wasmtime 48, Cranelift, no fuel), one \
         worker at a virtual 50k requests/s, default batch settings, every request captured; \
         batches answered at once, correctly. ns per request in the VM callbacks (context \
         create, request/response headers, log, done) and in ticks and call answers (batch \
         building, answer classification), measured as this thread's CPU time; {rounds} run(s) of {events} requests after a \
         warm-up, median (min-max). The no-op filter through the same loop is the floor of \
         this host (VM entries and the host's own bookkeeping): **{} ns/request**.\n",
        show_opt(floor, 0)
    );
    let mut rows = Vec::new();
    for r in &results {
        if r.ns.len() < 2 && r.dialect != "confluent_v2" {
            continue;
        }
        let total = Spread::of(&r.ns);
        let net: Vec<f64> =
            r.ns.iter()
                .zip(floor_ns.iter().cycle())
                .map(|(a, f)| a - f)
                .collect();
        let net = Spread::of(&net);
        rows.push(vec![
            format!("{} {}", r.dialect, r.format),
            show_spread(&r.request_ns, 0),
            show_spread(&r.ship_ns, 0),
            show_opt(total, 0),
            show_opt(net, 0),
            format!("{} / {} / {}", r.events, r.captured, r.delivered),
        ]);
        targets.push(Target::new(
            format!(
                "in-VM cost < 2 µs/event ({} {}, net of the no-op floor)",
                r.dialect, r.format
            ),
            format!(
                "{} ns (total with floor {} ns)",
                show_opt(net, 0),
                show_opt(total, 0)
            ),
            net.map(|n| {
                n.median < 2_000.0 && r.captured == r.events as i64 && r.delivered == r.captured
            }),
        ));
    }
    md.push_str(&table(
        &[
            "dialect, format",
            "request callbacks ns",
            "ticks + answers ns",
            "total ns/event",
            "adtap net of floor ns/event",
            "requests / captured / delivered",
        ],
        rows,
    ));
    let _ = writeln!(md, "\nBytes per event on the wire (request bodies of the batch calls / records in them), default batches of 500:\n");
    md.push_str(&table(
        &["dialect", "format", "bytes/event"],
        results.iter().map(|r| {
            vec![
                r.dialect.to_string(),
                r.format.to_string(),
                format!("{:.0}", r.bytes_per_event),
            ]
        }),
    ));

    eprintln!("  wasmtime: overload");
    let default_cap = 8 * 1024 * 1024;
    let loads = [
        overload(
            &adtap,
            "default buffer (10000 events / 8 MiB, drop_newest)",
            json!({}),
            default_cap,
            overload_secs,
        )?,
        overload(
            &adtap,
            "byte-bound buffer (1000000 events / 16 MiB, drop_oldest)",
            json!({"max_events": 1_000_000, "max_bytes": 16 * 1024 * 1024, "overflow": "drop_oldest"}),
            16 * 1024 * 1024,
            overload_secs,
        )?,
    ];
    let v2json = results
        .iter()
        .find(|r| r.dialect == "confluent_v2" && r.format == "json");
    let _ = writeln!(md, "\n## 4b. The VM's linear memory\n");
    let _ = writeln!(
        md,
        "`linear_memory_bytes()` of adtap's VM in the wasmtime host (Wasm memory never shrinks: \
         these are high-water marks). Idle: configured, no traffic. Steady: after the runs of \
         3b (v2 JSON). Overload: the REST proxy down (every call refused at once) for {overload_secs} \
         virtual seconds at 5k requests/s, so the buffer fills, retries back off and the 60 s \
         retry budget runs out; memory at each quarter of the run.\n"
    );
    if let Some(r) = v2json {
        let _ = writeln!(
            md,
            "- idle: {:.2} MiB; steady load: {:.2} MiB\n",
            r.idle_mem as f64 / MIB,
            r.steady_mem as f64 / MIB
        );
    }
    md.push_str(&table(
        &[
            "overload",
            "linear memory MiB (quarters)",
            "max buffered MiB",
            "captured / dropped",
        ],
        loads.iter().map(|o| {
            vec![
                o.label.clone(),
                o.mem
                    .iter()
                    .map(|m| format!("{:.2}", *m as f64 / MIB))
                    .collect::<Vec<_>>()
                    .join(" → "),
                format!("{:.2}", o.max_held_bytes as f64 / MIB),
                format!("{} / {}", o.captured, o.dropped),
            ]
        }),
    ));
    for o in &loads {
        let peak = o.mem.iter().copied().max().unwrap_or(0);
        let limit = o.cap_bytes + 2 * 1024 * 1024;
        targets.push(Target::new(
            format!(
                "linear memory under overload ≤ buffer cap + 2 MiB ({})",
                o.label
            ),
            format!(
                "{:.2} MiB (limit {:.2} MiB)",
                peak as f64 / MIB,
                limit as f64 / MIB
            ),
            Some(peak <= limit),
        ));
    }
    Ok(Section::new(md, targets))
}
