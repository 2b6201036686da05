#![allow(clippy::panic)] // a bench with a broken fixture must stop loudly
//! Per-event cost of the core, natively (criterion). The same work the filter does in the VM
//! for each request, without the VM and the host calls:
//!
//! - `match_rule`: the rule scan every request pays, captured or not;
//! - `capture`: `begin` + `finish` of one event (query/header allow-lists, client IP);
//! - `to_record/{json,msgpack}`: encoding one finished event into a record;
//! - `build_request/{dialect}/{format}/x500`: one batch request body from 500 records;
//! - `classify/v2/x500`: reading a 500-record v2 answer;
//! - `batch/{format}/x500`: push 500 records, `poll` the batch (building its request), and
//!   `on_response` with a correct v2 answer — the pipeline's whole share;
//! - `cycle/{format}/x500`: everything per event, all included: match, capture, encode, push,
//!   and the event's share of building the batch and handling its answer.
//!
//! Naming convention: an id ending in `/xN` processes N events per iteration, so its time per
//! event is the reported time divided by N (`adtap-bench` does that division when it reads
//! `--output-format bencher`). The batch size is the default `batch.max_events` (500).

use adtap_core::capture::{self, Completion, HeaderSource, RequestHead};
use adtap_core::classify::{self, Response};
use adtap_core::config::Dialect;
use adtap_core::encode;
use adtap_core::pipeline::Pipeline;
use adtap_core::{Config, Event, Record};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;

const BATCH: usize = 500;
const PATH: &str = "/imp?campaign_id=c-1234&creative_id=cr-56&cb=8812734";

fn config(dialect: &str, format: &str) -> Config {
    let json = format!(
        r#"{{"cluster":"kafka_rest","dialect":"{dialect}","format":"{format}","cluster_id":"lkc-1",
            "rules":[{{"event_type":"impression","topic":"ad-impressions","method":"GET","path":{{"prefix":"/imp"}}}}],
            "query_params":["campaign_id","creative_id"],"headers":["x-country"],
            "client_ip":{{"mode":"truncate"}},"key":"query.campaign_id"}}"#
    );
    match Config::parse(json.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("bench config rejected: {e:?}"),
    }
}

struct Headers;

impl HeaderSource for Headers {
    fn header(&self, name: &str) -> Option<String> {
        match name {
            "user-agent" => Some("Mozilla/5.0 (X11; Linux x86_64) adtap-bench/1".into()),
            "referer" => Some("https://publisher.example/article/42".into()),
            "x-country" => Some("FR".into()),
            "x-request-id" => Some("6f1c2a8e-4d0b-4b8e-9d7a-2f6f1b0c9e11".into()),
            _ => None,
        }
    }
}

fn head() -> RequestHead<'static> {
    RequestHead {
        method: "GET",
        host: "ads.example.com",
        path: PATH,
    }
}

fn completion() -> Completion {
    Completion {
        status: Some(200),
        duration_us: Some(412),
        request_bytes: Some(310),
        response_bytes: Some(120),
        route: Some("impression".into()),
        upstream: None,
        peer_address: Some("203.0.113.77:51234".into()),
    }
}

/// One event through match and capture, as the glue does it.
fn capture_one(cfg: &Config, seq: u64) -> Option<(usize, Event)> {
    let rule = capture::match_rule(cfg, head())?;
    let id = format!("{:016x}-{:x}", 0x1234_5678_9abc_def0_u64, seq);
    let mut ev = capture::begin(cfg, rule, id, 1_700_000_000_000, head(), &Headers);
    capture::finish(cfg, &mut ev, None, completion());
    Some((rule, ev))
}

fn record(cfg: &Config) -> Record {
    let Some((rule, ev)) = capture_one(cfg, 1) else {
        panic!("the bench request does not match the bench rule");
    };
    match encode::to_record(cfg, rule, &ev) {
        Ok(r) => r,
        Err(e) => panic!("encode failed: {e:?}"),
    }
}

/// A correct Confluent v2 answer for `n` records.
fn v2_answer(n: usize) -> Vec<u8> {
    let entries: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"partition":0,"offset":{i},"error_code":null,"error":null}}"#))
        .collect();
    format!(
        r#"{{"key_schema_id":null,"value_schema_id":null,"offsets":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes()
}

/// Drains every due batch, answering each correctly. Returns the records shipped.
fn drain(p: &mut Pipeline, now: u64, answer: &[u8]) -> usize {
    let mut shipped = 0;
    while let Some(out) = p.poll(now) {
        shipped += out.records;
        black_box(&out.request.body);
        let body = if out.records == BATCH {
            answer.to_vec()
        } else {
            v2_answer(out.records)
        };
        p.on_response(
            now,
            out.id,
            Response {
                status: Some(200),
                body: &body,
            },
        );
    }
    shipped
}

fn benches(c: &mut Criterion) {
    let json = config("confluent_v2", "json");
    c.bench_function("match_rule", |b| {
        b.iter(|| capture::match_rule(black_box(&json), black_box(head())))
    });
    c.bench_function("capture", |b| {
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            capture_one(&json, seq)
        })
    });
    for format in ["json", "msgpack"] {
        let cfg = config("confluent_v2", format);
        let Some((rule, ev)) = capture_one(&cfg, 7) else {
            return;
        };
        c.bench_function(&format!("to_record/{format}"), |b| {
            b.iter(|| encode::to_record(&cfg, rule, black_box(&ev)))
        });
    }
    for dialect in ["confluent_v2", "confluent_v3", "redpanda"] {
        for format in ["json", "msgpack"] {
            let cfg = config(dialect, format);
            let rec = record(&cfg);
            let records = vec![rec; BATCH];
            c.bench_function(&format!("build_request/{dialect}/{format}/x{BATCH}"), |b| {
                b.iter(|| encode::build_request(&cfg, 0, records.iter()))
            });
        }
    }
    let answer = v2_answer(BATCH);
    c.bench_function(&format!("classify/v2/x{BATCH}"), |b| {
        b.iter(|| {
            classify::classify(
                Dialect::ConfluentV2,
                Response {
                    status: Some(200),
                    body: black_box(&answer),
                },
                BATCH,
            )
        })
    });
    for format in ["json", "msgpack"] {
        let cfg = config("confluent_v2", format);
        let rec = record(&cfg);
        let mut p = Pipeline::new(&cfg, 42);
        let mut now = 1_700_000_000_000;
        c.bench_function(&format!("batch/{format}/x{BATCH}"), |b| {
            b.iter_batched(
                || vec![rec.clone(); BATCH],
                |records| {
                    now += 1;
                    for r in records {
                        p.push(now, r);
                    }
                    drain(&mut p, now, &answer)
                },
                BatchSize::SmallInput,
            )
        });
        let mut p = Pipeline::new(&cfg, 42);
        let mut seq = 0;
        c.bench_function(&format!("cycle/{format}/x{BATCH}"), |b| {
            b.iter(|| {
                now += 1;
                for _ in 0..BATCH {
                    seq += 1;
                    if let Some((rule, ev)) = capture_one(&cfg, seq) {
                        match encode::to_record(&cfg, rule, &ev) {
                            Ok(r) => p.push(now, r),
                            Err(_) => p.push_failed(adtap_core::classify::DropReason::Encode),
                        }
                    }
                }
                drain(&mut p, now, &answer)
            })
        });
    }
}

criterion_group!(core, benches);
criterion_main!(core);
