//! `adtap-demo`: the whole pipeline on this machine, with a report.
//!
//! ```text
//! adtap-demo [--requests N] [--dialect v2|v3] [--format json|msgpack] [--seed S]
//!            [--deployment both|access-logger|http-filter] [--keep]
//! adtap-demo consume BOOTSTRAP TOPIC      # print a topic's records as JSON lines
//! ```
//!
//! Starts tansu, the REST proxy, the sample ad server and Envoy with adtap (two workers), sends a
//! burst of mixed ad traffic, waits for adtap to flush, reads every topic back with a Kafka
//! consumer and reports: requests sent, events captured (Envoy's stats), records per topic and
//! partition, lost (expected events, by request id, not found in Kafka), duplicates (by event id),
//! a sample event, and adtap's metrics. Exits 1 if anything was lost or wrong. With `--keep` the
//! stack stays up (with instructions) until Ctrl-C.
//!
//! adtap runs in the recommended deployment by default (`both`): the Wasm access logger captures
//! impressions, clicks and conversions (one VM entry per request, at log time), the Wasm HTTP
//! filter the bids with their bodies (created by Envoy's composite filter for bid requests only),
//! both sharing each worker's VM and buffer. `--deployment access-logger` shows the logger alone,
//! which cannot capture bodies, so bids make no event there; `http-filter` captures everything in
//! the HTTP filter.

use adtap_core::config::{Dialect, ValueFormat};
use adtap_core::encode::decode_value;
use adtap_core::native;
use adtap_stack::kafka::KafkaRecord;
use adtap_stack::traffic::{self, Kind};
use adtap_stack::{now_ms, Deployment, Stack, StackOptions};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Args {
    requests: usize,
    dialect: Dialect,
    format: ValueFormat,
    seed: u64,
    deployment: Deployment,
    keep: bool,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut a = Args {
        requests: 3000,
        dialect: Dialect::ConfluentV2,
        format: ValueFormat::Json,
        seed: now_ms(),
        deployment: Deployment::Both,
        keep: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--requests" | "-n" => a.requests = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--keep" => a.keep = true,
            "--deployment" => {
                let v = value()?;
                a.deployment = Deployment::parse(&v).ok_or_else(|| {
                    anyhow!("unknown deployment {v} (both, access-logger or http-filter)")
                })?;
            }
            "--dialect" => {
                a.dialect = match value()?.as_str() {
                    "v2" | "confluent_v2" => Dialect::ConfluentV2,
                    "v3" | "confluent_v3" => Dialect::ConfluentV3,
                    other => bail!("unknown dialect {other} (v2 or v3)"),
                }
            }
            "--format" => {
                a.format = match value()?.as_str() {
                    "json" => ValueFormat::Json,
                    "msgpack" => ValueFormat::Msgpack,
                    other => bail!("unknown format {other} (json or msgpack)"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "usage: adtap-demo [--requests N] [--dialect v2|v3] [--format json|msgpack] [--seed S]\n                  [--deployment both|access-logger|http-filter] [--keep]\n       adtap-demo consume BOOTSTRAP TOPIC [json|msgpack]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("consume") {
        consume(args.get(1..).unwrap_or_default())
    } else {
        parse_args(&args).and_then(|a| demo(&a))
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("adtap-demo: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `consume BOOTSTRAP TOPIC [json|msgpack]`: every record of a topic, one JSON line each.
fn consume(args: &[String]) -> Result<bool> {
    let (Some(bootstrap), Some(topic)) = (args.first(), args.get(1)) else {
        bail!("usage: adtap-demo consume BOOTSTRAP TOPIC [json|msgpack]");
    };
    let format = match args.get(2).map(String::as_str) {
        Some("msgpack") => ValueFormat::Msgpack,
        _ => ValueFormat::Json,
    };
    let records = adtap_harness::broker::read_all(bootstrap, topic, Duration::from_secs(30))
        .map_err(|e| anyhow!(e))?;
    for r in &records {
        let value = r.value.as_deref().unwrap_or_default();
        let event = match decode_value(format, value) {
            Ok(ev) => serde_json::to_value(ev)?,
            Err(e) => serde_json::Value::String(format!("<undecodable: {e}>")),
        };
        let key = r.key.as_deref().map(String::from_utf8_lossy);
        println!(
            "{}",
            serde_json::json!({"partition": r.partition, "offset": r.offset, "key": key, "event": event})
        );
    }
    eprintln!("{} record(s) in {topic}", records.len());
    Ok(true)
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn demo(a: &Args) -> Result<bool> {
    println!(
        "adtap demo: Envoy 1.40 (2 workers) + adtap.wasm (deployment: {}) → Kafka REST proxy ({}, {}) → tansu",
        a.deployment,
        adtap_harness::config::dialect_name(a.dialect),
        adtap_harness::config::format_name(a.format)
    );
    step("starting the stack");
    let stack = Stack::start(StackOptions {
        dialect: a.dialect,
        format: a.format,
        deployment: a.deployment,
        progress: true,
        ..StackOptions::default()
    })?;

    step(&format!(
        "sending {} ad requests over 16 connections",
        a.requests
    ));
    let reqs = traffic::generate(a.requests, a.seed);
    let t0 = now_ms();
    let started = Instant::now();
    let outcomes = stack.send(&reqs, 16)?;
    let elapsed = started.elapsed();
    let t1 = now_ms();
    let by_kind = tally(reqs.iter().map(|r| format!("{:?}", r.kind).to_lowercase()));
    let by_status = tally(outcomes.iter().map(|o| match &o.status {
        Ok(s) => s.to_string(),
        Err(e) => format!("error ({e})"),
    }));
    let pct = |p: f64| traffic::latency_percentile(&outcomes, p);
    println!(
        "  sent {} requests in {:.2} s ({:.0} req/s); latency p50 {:.2} ms, p99 {:.2} ms",
        reqs.len(),
        elapsed.as_secs_f64(),
        reqs.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    println!("  by type:   {by_kind}");
    println!("  by status: {by_status}");
    let wrong_status = outcomes
        .iter()
        .filter(|o| o.status.as_ref().ok() != reqs.get(o.index).map(|r| r.kind.status()).as_ref())
        .count();

    // The requests a rule of the deployment captures: with the access logger alone, not the
    // bids (their rule keeps the body, which a logger never sees).
    let expected_reqs = stack.expected(&reqs);
    let expected = expected_reqs.len() as u64;
    step(&format!("waiting for adtap to flush {expected} events"));
    let stats = stack.wait_settled(expected, Duration::from_secs(60))?;
    println!(
        "  settled: captured {}, delivered {}, dropped {}, buffered {}, in flight {}",
        stats.captured(),
        stats.delivered(),
        stats.dropped(),
        stats.buffered(),
        stats.in_flight()
    );

    step("reading the topics back with a Kafka consumer");
    let records = stack.read_records_expecting(expected as usize, Duration::from_secs(10))?;
    let rec = stack.reconcile(&expected_reqs, &records, (t0, t1));
    let mut per_topic: BTreeMap<&str, BTreeMap<i32, usize>> = BTreeMap::new();
    for ((topic, partition), n) in &rec.per_partition {
        per_topic
            .entry(topic.as_str())
            .or_default()
            .insert(*partition, *n);
    }
    for (topic, parts) in &per_topic {
        let total: usize = parts.values().sum();
        let detail: Vec<String> = parts.iter().map(|(p, n)| format!("p{p}={n}")).collect();
        println!("  {topic:<15} {total:>6} records  ({})", detail.join(", "));
    }

    step("sample event (decoded from Kafka; a bid where bids are captured)");
    if let Some(r) = sample(&records) {
        println!(
            "  topic {} partition {} offset {} key {:?}",
            r.topic, r.partition, r.offset, r.key
        );
        if let Ok(ev) = &r.event {
            for line in serde_json::to_string_pretty(ev)?.lines() {
                println!("  {line}");
            }
        }
    }

    step("adtap metrics (Envoy admin /stats)");
    print!("{}", stack.stats()?);

    let lost = rec.lost.len();
    step("report");
    println!("  requests sent        {}", reqs.len());
    println!("  deployment           {}", describe(a.deployment));
    println!("  captured by          {}", captured_by(&stack));
    println!(
        "  events expected      {expected} (requests a capture rule of the deployment matches)"
    );
    println!("  events captured      {} (Envoy stats)", stats.captured());
    println!("  records in Kafka     {}", records.len());
    println!("  lost                 {lost}");
    println!("  duplicates           {}", rec.duplicates);
    println!(
        "  field mismatches     {}  strays {}  undecodable {}  keys split over partitions {}",
        rec.mismatches.len(),
        rec.strays.len(),
        rec.undecodable.len(),
        rec.split_keys.len()
    );
    println!("  worker VMs seen      {}", rec.vm_ids.len());
    println!(
        "  accounting           captured {} = delivered {} + dropped {} + in flight {} + buffered {}: {}",
        stats.captured(),
        stats.delivered(),
        stats.dropped(),
        stats.in_flight(),
        stats.buffered(),
        if stats.invariant_holds() { "holds" } else { "BROKEN" }
    );
    let ok = rec.is_perfect()
        && wrong_status == 0
        && stats.captured() == expected
        && stats.invariant_holds();
    if !ok {
        println!("\n{}", rec.problems());
        if wrong_status > 0 {
            println!("  {wrong_status} request(s) got an unexpected status");
        }
    }
    println!(
        "\n{}",
        if ok {
            "RESULT: OK (lost = 0, no duplicates, every event matches its request)"
        } else {
            "RESULT: FAILED"
        }
    );

    if a.keep {
        keep_running(&stack, a)?;
    }
    step("stopping everything");
    drop(stack);
    println!("  done");
    Ok(ok)
}

/// What the deployment is, in a few words.
fn describe(d: Deployment) -> String {
    match d {
        Deployment::Both => format!("{} (recommended)", d.describe()),
        Deployment::AccessLogger => format!("{}: no request bodies, so no bids", d.describe()),
        Deployment::HttpFilter => d.describe().to_string(),
    }
}

/// Which plugin captures which event type here, with Envoy's count of Wasm HTTP filters the
/// composite filter created (one per request an HTTP filter rule matches).
fn captured_by(stack: &Stack) -> String {
    let kinds = |f: &dyn Fn(Kind) -> bool| {
        let names: Vec<&str> = [Kind::Impression, Kind::Click, Kind::Conversion, Kind::Bid]
            .into_iter()
            .filter(|k| f(*k))
            .filter_map(Kind::event_type)
            .collect();
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        }
    };
    let created = stack
        .envoy()
        .and_then(|e| e.envoy_stats("composite"))
        .ok()
        .and_then(|m| {
            m.get("http.ads.composite.filter_delegation_success")
                .copied()
        })
        .unwrap_or(0);
    let by = |plugin| kinds(&|k| stack.plugin_for(k) == Some(plugin));
    let logger = format!("access logger: {}", by(native::Deployment::AccessLogger));
    let filter = format!(
        "HTTP filter: {} ({created} Wasm filters created)",
        by(native::Deployment::HttpFilter)
    );
    match stack.deployment() {
        Deployment::AccessLogger => logger,
        Deployment::HttpFilter => filter,
        Deployment::Both => format!("{logger}; {filter}"),
    }
}

/// How often each of `keys` occurs, in key order: `a 2, b 1`.
fn tally(keys: impl Iterator<Item = String>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    parts.join(", ")
}

fn sample(records: &[KafkaRecord]) -> Option<&KafkaRecord> {
    records
        .iter()
        .find(|r| r.topic == "ad-bids" && r.event.is_ok() && r.key.is_some())
        .or_else(|| records.iter().find(|r| r.event.is_ok()))
}

/// `--keep`: print how to use the running stack, show stats changes, stop on Ctrl-C/SIGTERM.
fn keep_running(stack: &Stack, a: &Args) -> Result<()> {
    let ad = stack.ad_addr();
    let admin = stack.admin_addr()?;
    let bootstrap = stack.bootstrap();
    let me = std::env::current_exe()?;
    step("the stack stays up (Ctrl-C stops everything)");
    println!("  send traffic:");
    println!("    curl -si 'http://{ad}/imp?campaign_id=cmp-7&crid=cr-1' -H 'x-country: DE'");
    println!("    curl -si 'http://{ad}/click?campaign_id=cmp-7&crid=cr-1'");
    println!("    curl -si 'http://{ad}/conv?campaign_id=cmp-7'");
    println!(
        "    curl -si 'http://{ad}/bid?campaign_id=cmp-7' -H 'content-type: application/json' -d '{{\"id\":\"a1\",\"imp\":[{{\"id\":\"1\",\"bidfloor\":0.5}}]}}'"
    );
    println!("  adtap metrics:   curl -s 'http://{admin}/stats?filter=adtap'");
    println!("                   curl -s 'http://{admin}/stats/prometheus' | grep adtap");
    println!("  Envoy admin:     http://{admin}/");
    println!(
        "  REST proxy:      http://{}/v3/clusters",
        stack.rest_addr()
    );
    println!("  Kafka bootstrap: {bootstrap}");
    println!(
        "  consume a topic: {} consume {bootstrap} ad-impressions {}",
        me.display(),
        adtap_harness::config::format_name(a.format)
    );
    println!("  logs and config: {}", stack.dir().display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut last = None;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tick.tick() => {
                    if let Ok(s) = stack.stats() {
                        let now = (s.captured(), s.delivered(), s.dropped());
                        if last != Some(now) {
                            println!(
                                "  stats: captured {} delivered {} dropped {} buffered {} in flight {}",
                                s.captured(), s.delivered(), s.dropped(), s.buffered(), s.in_flight()
                            );
                            last = Some(now);
                        }
                    }
                }
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(())
}
