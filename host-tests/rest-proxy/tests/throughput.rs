//! Throughput check (ignored by default; run in release):
//! `cargo test --release -p adtap-rest-proxy --test throughput -- --ignored --nocapture`.
//! 200 batches × 500 records (~250-byte values) from 4 concurrent keep-alive clients, v2 binary
//! and v3; every record must be acknowledged and read back.
#![cfg(test)]

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use hyper::StatusCode;
use serde_json::{json, Value};

const BATCHES: usize = 200;
const PER_BATCH: usize = 500;
const CLIENTS: usize = 4;

fn value(i: usize) -> Vec<u8> {
    format!(
        r#"{{"type":"impression","campaign":"c-{}","creative":"cr-{}","ua":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36","ts":1700000000{:03},"n":{i}}}"#,
        i % 17,
        i % 101,
        i % 1000
    )
    .into_bytes()
}

async fn run(stack: &Stack, topic: &str, v3: bool, client: HttpClient) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        let base = stack.base.clone();
        let topic = topic.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for b in (c..BATCHES).step_by(CLIENTS) {
                let (url, ct, body) = if v3 {
                    let mut body = String::new();
                    for i in 0..PER_BATCH {
                        let n = b * PER_BATCH + i;
                        body.push_str(
                            &json!({"key": {"type": "STRING", "data": format!("u{}", n % 997)},
                                    "value": {"type": "BINARY", "data": B64.encode(value(n))}})
                            .to_string(),
                        );
                        body.push('\n');
                    }
                    (
                        format!("{base}/v3/clusters/adtap-local/topics/{topic}/records"),
                        "application/json",
                        body,
                    )
                } else {
                    let records: Vec<Value> = (0..PER_BATCH)
                        .map(|i| {
                            let n = b * PER_BATCH + i;
                            json!({"key": B64.encode(format!("u{}", n % 997)),
                                   "value": B64.encode(value(n))})
                        })
                        .collect();
                    (
                        format!("{base}/topics/{topic}"),
                        V2_BINARY,
                        json!({"records": records}).to_string(),
                    )
                };
                let t = Instant::now();
                let r = post(&client, &url, ct, body).await;
                lat.push(t.elapsed());
                assert_eq!(r.status, StatusCode::OK);
                if v3 {
                    let reps = r.json_stream();
                    assert_eq!(reps.len(), PER_BATCH);
                    assert!(reps.iter().all(|x| x["error_code"] == 200));
                } else {
                    let v = r.json();
                    let offs = v["offsets"].as_array().unwrap();
                    assert_eq!(offs.len(), PER_BATCH);
                    assert!(offs.iter().all(|o| o["error_code"].is_null()));
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    ((BATCHES * PER_BATCH) as f64 / secs, lat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly in release"]
async fn throughput() {
    let stack = Stack::start(&[("bench2", 3), ("bench3", 3), ("benchh2", 3)], 30_000).await;
    for (name, topic, v3, client) in [
        ("v2 binary, HTTP/1.1", "bench2", false, h1()),
        ("v3, HTTP/1.1", "bench3", true, h1()),
        ("v2 binary, h2c", "benchh2", false, h2()),
    ] {
        let (rate, lat) = run(&stack, topic, v3, client).await;
        let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
        println!(
            "{name}: {rate:.0} records/s ({BATCHES} batches x {PER_BATCH}, {CLIENTS} clients), batch latency p50 {:?} p99 {:?}",
            p(0.5),
            p(0.99)
        );
        let got = stack.read_all(topic).await;
        assert_eq!(
            got.len(),
            BATCHES * PER_BATCH,
            "{name}: every record read back once"
        );
    }
    stack.shutdown().await;
}
