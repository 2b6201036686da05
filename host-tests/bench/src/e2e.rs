//! Section 5: end-to-end delivery rate through the local stack (`adtap-stack`: the tansu
//! broker, the REST proxy, the sample ad server and Envoy with adtap, 2 workers, h2c to the
//! proxy), all on this machine.
//!
//! The fixed-rate generator sends impressions at increasing rates, one step after the other.
//! A step is *sustained* when every request was answered at the target rate (≥ 97 %, counted
//! up to the last answer) with a p99 under 50 ms (no queue building up), adtap
//! captured each one, delivered all of them with nothing dropped, and had nothing left buffered
//! or in flight within 5 s of the step's end (so the pipeline kept pace rather than piling up).
//! The last sustained step's rate is the result; after the steps every record is read back from
//! Kafka and counted (and its event id checked unique) so "delivered" means "in the broker".
//! CPU time of each process during the steps shows where the bottleneck is.

use crate::envoy::{AD_HEADERS, AD_PATH};
use crate::load;
use crate::report::{table, Section};
use crate::tools::Tools;
use adtap_stack::{Stack, StackOptions};
use anyhow::{anyhow, Result};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// Above this p99 a step is not sustained: requests are queueing (the server fell behind).
const MAX_P99_US: f64 = 50_000.0;

/// CPU seconds (user + system) of a process.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// This process's children by command name (`envoy`, `tansu`, `adtap-rest-prox`).
fn children() -> BTreeMap<String, u32> {
    let me = std::process::id().to_string();
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat.get(open + 1..close).unwrap_or("").to_string();
        let ppid = stat
            .get(close + 1..)
            .and_then(|r| r.split_whitespace().nth(1))
            .unwrap_or("");
        if ppid == me {
            out.insert(comm, pid);
        }
    }
    out
}

fn cpu_snapshot(procs: &BTreeMap<String, u32>) -> BTreeMap<String, f64> {
    let mut m: BTreeMap<String, f64> = procs
        .iter()
        .filter_map(|(name, pid)| Some((name.clone(), cpu_secs(*pid)?)))
        .collect();
    if let Some(me) = cpu_secs(std::process::id()) {
        m.insert("bench (load generator + ad server)".into(), me);
    }
    m
}

struct Step {
    rate: f64,
    achieved: f64,
    errors: u64,
    p99_us: f64,
    served: u64,
    captured: u64,
    delivered: u64,
    dropped: u64,
    settle_s: Option<f64>,
    cpu: BTreeMap<String, f64>,
    secs: f64,
}

impl Step {
    fn sustained(&self) -> bool {
        self.errors == 0
            && self.achieved >= 0.97 * self.rate
            && self.p99_us <= MAX_P99_US
            && self.captured == self.served
            && self.delivered == self.captured
            && self.dropped == 0
            && self.settle_s.is_some_and(|s| s <= 5.0)
    }
}

/// Runs section 5.
pub fn run(_tools: &Tools, short: bool) -> Result<Section> {
    // The Envoy sections pin this process to one CPU; the stack must have them all.
    let (cpus, _) = crate::tools::online_cpus();
    let _ = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpus, &std::process::id().to_string()])
        .output();
    let (rates, secs): (Vec<f64>, f64) = if short {
        (vec![1_000.0, 3_000.0], 2.0)
    } else {
        (
            vec![
                2_000.0, 5_000.0, 8_000.0, 10_000.0, 12_000.0, 14_000.0, 16_000.0, 20_000.0,
                25_000.0,
            ],
            8.0,
        )
    };
    let stack = Stack::start(StackOptions::default())?;
    let procs = children();
    let mut steps: Vec<Step> = Vec::new();
    for rate in rates {
        let before = stack.stats()?;
        let cpu0 = cpu_snapshot(&procs);
        let t0 = Instant::now();
        let r = load::fixed_rate(stack.ad_addr(), AD_PATH, &AD_HEADERS, rate, secs, 32)?;
        let wall = t0.elapsed().as_secs_f64();
        let end = Instant::now();
        let want = before.captured() + r.ok;
        let settled = stack.wait_settled(want, Duration::from_secs(20));
        let settle_s = settled.is_ok().then(|| end.elapsed().as_secs_f64());
        let cpu1 = cpu_snapshot(&procs);
        let after = match settled {
            Ok(s) => s,
            Err(_) => stack.stats()?,
        };
        let cpu = cpu1
            .iter()
            .map(|(k, v)| (k.clone(), (v - cpu0.get(k).copied().unwrap_or(0.0)) / wall))
            .collect();
        let step = Step {
            rate,
            achieved: r.achieved_rps,
            errors: r.errors,
            p99_us: r.p99_us,
            served: r.ok,
            captured: after.captured() - before.captured(),
            delivered: after.delivered() - before.delivered(),
            dropped: after.dropped() - before.dropped(),
            settle_s,
            cpu,
            secs,
        };
        eprintln!(
            "  e2e {:>6.0}/s: achieved {:.0}/s, captured {}, delivered {}, dropped {}, settled {} — {}",
            rate,
            step.achieved,
            step.captured,
            step.delivered,
            step.dropped,
            step.settle_s.map_or("no".into(), |s| format!("in {s:.1} s")),
            if step.sustained() { "sustained" } else { "NOT sustained" }
        );
        let stop = !step.sustained();
        steps.push(step);
        if stop {
            break;
        }
    }
    let total = stack.stats()?;
    let records = stack.read_records()?;
    let ids: HashSet<String> = records
        .iter()
        .filter_map(|r| r.event.as_ref().ok().map(|e| e.id.clone()))
        .collect();
    drop(stack);
    render(&steps, total.delivered(), records.len(), ids.len())
}

fn render(steps: &[Step], delivered: u64, in_kafka: usize, unique: usize) -> Result<Section> {
    let mut md = String::from("## 5. End-to-end delivery rate through the local stack\n\n");
    let _ = writeln!(
        md,
        "`adtap-stack`: tansu broker (memory storage), the repo's REST proxy (Confluent v2 JSON, \
         h2c from Envoy), the sample ad server, Envoy with adtap (2 workers), everything on \
         this machine's CPUs together with the load generator. Impressions at fixed rates, \
         {} s per step, 32 connections; a step is sustained when everything was answered at \
         rate (counted to the last answer) with p99 under 50 ms, captured, delivered with \
         nothing dropped, and settled within 5 s; the steps stop at the first that is not.\n",
        steps.first().map_or(0.0, |s| s.secs)
    );
    md.push_str(&table(
        &[
            "target req/s",
            "achieved",
            "p99 µs",
            "served / captured / delivered / dropped",
            "settled",
            "CPU (share of one core)",
            "sustained",
        ],
        steps.iter().map(|s| {
            vec![
                format!("{:.0}", s.rate),
                format!("{:.0}", s.achieved),
                format!("{:.0}", s.p99_us),
                format!(
                    "{} / {} / {} / {}",
                    s.served, s.captured, s.delivered, s.dropped
                ),
                s.settle_s
                    .map_or("no (20 s)".into(), |t| format!("{t:.1} s")),
                s.cpu
                    .iter()
                    .map(|(k, v)| format!("{k} {:.0} %", v * 100.0))
                    .collect::<Vec<_>>()
                    .join(", "),
                if s.sustained() {
                    "yes".into()
                } else {
                    "**no**".into()
                },
            ]
        }),
    ));
    let best = steps
        .iter()
        .filter(|s| s.sustained())
        .map(|s| s.rate)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let _ = writeln!(
        md,
        "\nHighest sustained rate with zero loss: **{}**. Read back from Kafka after the steps: \
         {in_kafka} records, {unique} distinct event ids, adtap delivered {delivered}{}.",
        best.map_or("none".into(), |b| format!("{b:.0} events/s")),
        if in_kafka as u64 == delivered && unique == in_kafka {
            " — every delivered event is in the broker exactly once"
        } else {
            " — **MISMATCH**"
        }
    );
    if let Some(last) = steps.last() {
        let busiest = last
            .cpu
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, v)| format!("{k} ({:.0} % of a core)", v * 100.0))
            .ok_or_else(|| anyhow!("no CPU figures"))?;
        let total: f64 = last.cpu.values().sum();
        let _ = writeln!(
            md,
            "\nAt the last step ({:.0} req/s) the busiest process was {busiest}; all processes \
             together used {:.0} % of one core out of {} available.",
            last.rate,
            total * 100.0,
            crate::tools::online_cpus().1 * 100
        );
    }
    Ok(Section::new(md, Vec::new()))
}
