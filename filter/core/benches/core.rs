#![allow(clippy::panic)] // a bench with a broken fixture must stop loudly
//! Per-event cost of the core, natively (criterion). The same work the filter does in the VM
//! for each request, without the VM and the host calls:
//!
//! - `match_rule`: the rule scan every request pays, captured or not;
//! - `record/{json,msgpack}`: writing one captured request's record straight from its header
//!   map (query/header allow-lists, client IP, value and key), as the capture session does;
//! - `build_request/{dialect}/{format}/x500`: one batch request body from 500 records;
//! - `classify/v2/x500`: reading a 500-record v2 answer;
//! - `batch/{format}/x500`: push 500 records, `poll` the batch (building its request), and
//!   `on_response` with a correct v2 answer — the pipeline's whole share;
//! - `cycle/{format}/x500`: everything per event, all included: match, record, push, and the
//!   event's share of building the batch and handling its answer.
//!
//! Naming convention: an id ending in `/xN` processes N events per iteration, so its time per
//! event is the reported time divided by N (`adtap-bench` does that division when it reads
//! `--output-format bencher`). The batch size is the default `batch.max_events` (500).

use adtap_core::capture::{self, Completion, RequestHead};
use adtap_core::classify::{self, Response};
use adtap_core::config::Dialect;
use adtap_core::encode::{self, EncodeError};
use adtap_core::headers::HeaderPairs;
use adtap_core::pipeline::Pipeline;
use adtap_core::record::{self, EventId, Scratch};
use adtap_core::testkit;
use adtap_core::{Config, Record};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use std::hint::black_box;

const BATCH: usize = 500;
const PATH: &str = "/imp?campaign_id=c-1234&creative_id=cr-56&cb=8812734";

fn config(dialect: &str, format: &str) -> Config {
    testkit::config(&json!({
        "cluster": "kafka_rest", "dialect": dialect, "format": format, "cluster_id": "lkc-1",
        "rules": [{"event_type": "impression", "topic": "ad-impressions", "method": "GET",
                   "path": {"prefix": "/imp"}}],
        "query_params": ["campaign_id", "creative_id"], "headers": ["x-country"],
        "client_ip": {"mode": "truncate"}, "key": "query.campaign_id"
    }))
}

/// The request's header map as Envoy hands it over (pseudo-headers included).
fn headers() -> HeaderPairs {
    HeaderPairs::from_pairs(&[
        (":method", "GET"),
        (":path", PATH),
        (":authority", "ads.example.com"),
        (":scheme", "https"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) adtap-bench/1",
        ),
        ("referer", "https://publisher.example/article/42"),
        ("accept", "*/*"),
        ("x-country", "FR"),
        ("x-request-id", "6f1c2a8e-4d0b-4b8e-9d7a-2f6f1b0c9e11"),
    ])
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

/// One request through match and record writing, as the capture session does it.
fn capture_one(
    cfg: &Config,
    headers: &HeaderPairs,
    done: &Completion,
    scratch: &mut Scratch,
    seq: u64,
) -> Option<Result<Record, EncodeError>> {
    let rule = capture::match_rule(cfg, head())?;
    let fields = record::Fields {
        rule,
        id: EventId {
            vm: 0x1234_5678_9abc_def0,
            seq,
        },
        ts: 1_700_000_000_000,
        head: head(),
        headers,
        done,
        body: None,
    };
    Some(record::write(cfg, &fields, scratch))
}

fn record(cfg: &Config) -> Record {
    match capture_one(cfg, &headers(), &completion(), &mut Scratch::new(), 1) {
        Some(Ok(r)) => r,
        Some(Err(e)) => panic!("encode failed: {e:?}"),
        None => panic!("the bench request does not match the bench rule"),
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
        shipped += out.record_count;
        black_box(&out.request.body);
        let body = if out.record_count == BATCH {
            answer.to_vec()
        } else {
            v2_answer(out.record_count)
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
    let (hdrs, done) = (headers(), completion());
    for format in ["json", "msgpack"] {
        let cfg = config("confluent_v2", format);
        let mut scratch = Scratch::new();
        let mut seq = 0;
        c.bench_function(&format!("record/{format}"), |b| {
            b.iter(|| {
                seq += 1;
                capture_one(&cfg, black_box(&hdrs), &done, &mut scratch, seq)
            })
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
        let mut scratch = Scratch::new();
        c.bench_function(&format!("cycle/{format}/x{BATCH}"), |b| {
            b.iter(|| {
                now += 1;
                for _ in 0..BATCH {
                    seq += 1;
                    match capture_one(&cfg, &hdrs, &done, &mut scratch, seq) {
                        Some(Ok(r)) => p.push(now, r),
                        Some(Err(_)) => p.push_failed(adtap_core::drop_reason::DropReason::Encode),
                        None => {}
                    }
                }
                drain(&mut p, now, &answer)
            })
        });
    }
}

criterion_group!(core, benches);
criterion_main!(core);
