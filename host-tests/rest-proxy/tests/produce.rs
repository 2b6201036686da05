//! The proxy against a real tansu broker: v2 json and binary, v3 concatenated records over
//! HTTP/1.1 and h2c, every record read back with a Kafka consumer and compared byte for byte;
//! request-level errors; a stopped broker never yields a success.
#![cfg(test)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use adtap_harness::broker::{java_partition, Consumed};
use base64::Engine;
use common::*;
use hyper::{StatusCode, Version};
use serde_json::{json, Value};

type Bytes = Option<Vec<u8>>;

/// The (partition, offset) a v2 offset or v3 report names; `partition` is its field's name.
fn position(report: &Value, partition: &str) -> (i32, i64) {
    (
        report[partition].as_i64().unwrap() as i32,
        report["offset"].as_i64().unwrap(),
    )
}

fn by_position(records: &[Consumed]) -> HashMap<(i32, i64), &Consumed> {
    records
        .iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_json_and_binary_records_arrive_exactly() {
    let stack = Stack::start(&[("events", 3)], 10_000).await;
    let c = h1();
    let url = format!("{}/topics/events", stack.base);

    // json: keys and values are JSON, produced as their JSON text.
    let json_records: Vec<(Value, Value, Option<i32>)> = (0..8)
        .map(|i| {
            let partition = (i == 5).then_some(2);
            (
                json!(format!("user-{i}")),
                json!({"i": i, "tags": ["a", i], "ok": true}),
                partition,
            )
        })
        .collect();
    let body = json!({"records": json_records.iter().map(|(k, v, p)| {
        let mut r = json!({"key": k, "value": v});
        if let Some(p) = p { r["partition"] = json!(p); }
        r
    }).collect::<Vec<_>>()});
    let r = post(&c, &url, V2_JSON, body.to_string()).await;
    r.assert_status(200);
    assert_eq!(r.content_type(), "application/vnd.kafka.v2+json");
    let resp = r.json();
    assert_eq!(resp["key_schema_id"], Value::Null);
    assert_eq!(resp["value_schema_id"], Value::Null);
    let offsets = resp["offsets"].as_array().unwrap().clone();
    assert_eq!(offsets.len(), json_records.len());

    // binary: arbitrary bytes, a null key, a null value.
    let bin: Vec<(Bytes, Bytes)> = vec![
        (
            Some(b"bin-key-1".to_vec()),
            Some(vec![0, 159, 146, 150, 255]),
        ),
        (None, Some(b"no key".to_vec())),
        (Some(b"tombstone".to_vec()), None),
    ];
    let body = json!({"records": bin.iter().map(|(k, v)| json!({
        "key": k.as_ref().map(|k| B64.encode(k)),
        "value": v.as_ref().map(|v| B64.encode(v)),
    })).collect::<Vec<_>>()});
    let r = post(&c, &url, V2_BINARY, body.to_string()).await;
    r.assert_status(200);
    let bin_offsets = r.json()["offsets"].as_array().unwrap().clone();
    assert_eq!(bin_offsets.len(), bin.len());

    // Expected records by (partition, offset).
    let mut expected: Vec<((i32, i64), Bytes, Bytes)> = Vec::new();
    for (o, (k, v, p)) in offsets.iter().zip(&json_records) {
        assert_eq!(o["error_code"], Value::Null, "{o}");
        assert_eq!(o["error"], Value::Null);
        let pos = position(o, "partition");
        let key = serde_json::to_vec(k).unwrap();
        match p {
            Some(p) => assert_eq!(pos.0, *p),
            // Keyed records are placed like the Java client places them.
            None => assert_eq!(pos.0, java_partition(&key, 3), "key {k}"),
        }
        expected.push((pos, Some(key), Some(serde_json::to_vec(v).unwrap())));
    }
    for (o, (k, v)) in bin_offsets.iter().zip(&bin) {
        assert_eq!(o["error_code"], Value::Null, "{o}");
        let pos = position(o, "partition");
        if let Some(k) = k {
            assert_eq!(pos.0, java_partition(k, 3));
        }
        expected.push((pos, k.clone(), v.clone()));
    }
    // Within a partition, offsets follow request order.
    let mut last: HashMap<i32, i64> = HashMap::new();
    for ((p, off), _, _) in &expected {
        if let Some(prev) = last.insert(*p, *off) {
            assert!(*off > prev, "partition {p}: offset {off} after {prev}");
        }
    }

    let got = stack.read_all("events").await;
    assert_eq!(
        got.len(),
        expected.len(),
        "exactly the produced records, no duplicates"
    );
    let got = by_position(&got);
    for (pos, k, v) in &expected {
        let rec = got.get(pos).unwrap_or_else(|| panic!("nothing at {pos:?}"));
        assert_eq!(&rec.key, k, "key at {pos:?}");
        assert_eq!(&rec.value, v, "value at {pos:?}");
        assert!(rec.headers.is_empty());
    }
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_concatenated_records_over_http1_and_h2c() {
    let stack = Stack::start(&[("bids", 2)], 10_000).await;

    for (client, version) in [(h1(), Version::HTTP_11), (h2(), Version::HTTP_2)] {
        let clusters = get(&client, &format!("{}/v3/clusters", stack.base)).await;
        assert_eq!(clusters.status, StatusCode::OK);
        assert_eq!(clusters.version, version);
        let cl = clusters.json();
        assert_eq!(cl["kind"], "KafkaClusterList");
        let cluster_id = cl["data"][0]["cluster_id"].as_str().unwrap().to_string();
        assert_eq!(cluster_id, "adtap-local");
        let one = get(&client, &format!("{}/v3/clusters/{cluster_id}", stack.base)).await;
        assert_eq!(one.json()["kind"], "KafkaCluster");

        let tag = if version == Version::HTTP_2 {
            "h2"
        } else {
            "h1"
        };
        let ts = "2024-03-01T12:34:56.789Z";
        let ts_ms = 1_709_296_496_789_i64;
        let body = [
            json!({"partition_id": 1,
                   "headers": [{"name": "event-type", "value": B64.encode("bid")}, {"name": "empty", "value": null}],
                   "key": {"type": "BINARY", "data": B64.encode([1u8, 2, 3, 250])},
                   "value": {"type": "JSON", "data": {"campaign": "c1", "price": 1.25, "via": tag}},
                   "timestamp": ts}),
            json!({"value": {"type": "BINARY", "data": "not base64!"}}),
            json!({"key": {"type": "STRING", "data": format!("user-{tag}")},
                   "value": {"type": "STRING", "data": "plain text"}}),
            json!({"partition_id": 0, "value": {"type": "JSON", "data": [1, "two", null]}, "timestamp": ts}),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
        let url = format!(
            "{}/v3/clusters/{cluster_id}/topics/bids/records",
            stack.base
        );
        let r = post(&client, &url, "application/json", body).await;
        r.assert_status(200);
        assert_eq!(r.version, version);
        assert_eq!(r.content_type(), "application/json");
        let reports = r.json_stream();
        assert_eq!(reports.len(), 4, "one delivery report per record");

        let ok0 = &reports[0];
        assert_eq!(ok0["error_code"], 200);
        assert_eq!(ok0["cluster_id"], "adtap-local");
        assert_eq!(ok0["topic_name"], "bids");
        assert_eq!(ok0["partition_id"], 1);
        assert_eq!(ok0["timestamp"], ts);
        assert_eq!(ok0["key"], json!({"type": "BINARY", "size": 4}));
        let v0 = serde_json::to_vec(&json!({"campaign": "c1", "price": 1.25, "via": tag})).unwrap();
        assert_eq!(ok0["value"], json!({"type": "JSON", "size": v0.len()}));

        assert_eq!(reports[1]["error_code"], 400);
        assert!(reports[1]["message"].as_str().unwrap().contains("base64"));
        assert!(reports[1].get("offset").is_none());

        let ok2 = &reports[2];
        assert_eq!(ok2["error_code"], 200);
        let key2 = format!("user-{tag}");
        assert_eq!(
            ok2["partition_id"].as_i64().unwrap() as i32,
            java_partition(key2.as_bytes(), 2)
        );
        assert_eq!(ok2["key"], json!({"type": "STRING", "size": key2.len()}));
        assert!(
            ok2["timestamp"].is_string(),
            "a timestamp is reported even when none was sent"
        );

        let ok3 = &reports[3];
        assert_eq!(
            (ok3["error_code"].clone(), ok3["partition_id"].clone()),
            (json!(200), json!(0))
        );
        assert_eq!(ok3["key"], Value::Null);

        let got = stack.read_all("bids").await;
        let got = by_position(&got);
        let at = |rep: &Value| {
            let pos = position(rep, "partition_id");
            *got.get(&pos).unwrap_or_else(|| {
                let mut have: Vec<_> = got.keys().collect();
                have.sort();
                panic!("nothing at {pos:?}; read back {have:?}; reports {reports:?}")
            })
        };
        let r0 = at(ok0);
        assert_eq!(r0.key.as_deref(), Some(&[1u8, 2, 3, 250][..]));
        assert_eq!(r0.value.as_deref(), Some(&v0[..]));
        assert_eq!(
            r0.headers,
            vec![
                ("event-type".to_string(), Some(b"bid".to_vec())),
                ("empty".to_string(), None)
            ]
        );
        assert_eq!(r0.timestamp_ms, Some(ts_ms));
        let r2 = at(ok2);
        assert_eq!(r2.key.as_deref(), Some(key2.as_bytes()));
        assert_eq!(r2.value.as_deref(), Some(&b"plain text"[..]));
        let r3 = at(ok3);
        assert_eq!(r3.key, None);
        assert_eq!(r3.value.as_deref(), Some(&br#"[1,"two",null]"#[..]));
        assert_eq!(r3.timestamp_ms, Some(ts_ms));
    }
    // 3 good records per round, nothing for the rejected one.
    assert_eq!(stack.read_all("bids").await.len(), 6);
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_level_errors_produce_nothing() {
    let stack = Stack::start(&[("t", 2)], 10_000).await;
    let c = h1();
    let b = &stack.base;
    let good = json!({"records": [{"value": {"a": 1}}]}).to_string();

    let check = |r: &Reply, status: u16, code: u64| {
        r.assert_status(status);
        let v = r.json();
        assert_eq!(v["error_code"], code, "{v}");
        assert!(v["message"].is_string());
    };

    let r = post(&c, &format!("{b}/topics/missing"), V2_JSON, good.clone()).await;
    check(&r, 404, 40401);
    assert_eq!(r.json()["message"], "Topic not found.");
    assert_eq!(r.content_type(), "application/vnd.kafka.v2+json");
    let v3 = format!("{b}/v3/clusters/adtap-local/topics");
    let rec = json!({"value": {"type": "JSON", "data": 1}}).to_string();
    let r = post(
        &c,
        &format!("{v3}/missing/records"),
        "application/json",
        rec.clone(),
    )
    .await;
    check(&r, 404, 40403);
    assert_eq!(r.content_type(), "application/json");

    // (path under the base, content type, body, status, error code)
    let (v2_t, v3_t) = ("/topics/t", "/v3/clusters/adtap-local/topics/t/records");
    for (path, content_type, body, status, code) in [
        (
            v2_t,
            V2_JSON,
            json!({"records": [{"value": 1, "partition": 2}]}).to_string(),
            404,
            40402,
        ),
        (
            v2_t,
            V2_BINARY,
            json!({"records": [{"value": "%%%"}]}).to_string(),
            422,
            42206,
        ),
        (v2_t, V2_JSON, json!({"rec": []}).to_string(), 422, 42206),
        (v2_t, V2_JSON, "{\"records\": [".to_string(), 400, 400),
        (v2_t, "text/plain", good.clone(), 415, 415),
        (
            "/v3/clusters/other/topics/t/records",
            "application/json",
            rec.clone(),
            404,
            404,
        ),
        (
            v3_t,
            "application/json",
            format!("{rec} {{\"value\":"),
            400,
            400,
        ),
        (v3_t, "application/json", String::new(), 422, 422),
        (v3_t, V2_JSON, rec.clone(), 415, 415),
    ] {
        let r = post(&c, &format!("{b}{path}"), content_type, body).await;
        check(&r, status, code);
    }
    // An unknown partition is a per-record failure in v3.
    let r = post(
        &c,
        &format!("{b}{v3_t}"),
        "application/json",
        json!({"partition_id": 7, "value": {"type": "JSON", "data": 1}}).to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json_stream()[0]["error_code"], 40403);

    let r = get(&c, &format!("{b}/nope")).await;
    check(&r, 404, 404);

    // The produce to a missing topic did not create it, and nothing reached "t".
    let topics = get(&c, &format!("{b}/topics")).await;
    assert_eq!(topics.json(), json!(["t"]));
    assert!(stack.read_all("t").await.is_empty());
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_never_yields_a_success() {
    let mut stack = Stack::start(&[("t", 1)], 1_500).await;
    let c = h1();
    let v2_url = format!("{}/topics/t", stack.base);
    let v3_url = format!("{}/v3/clusters/adtap-local/topics/t/records", stack.base);
    let body = json!({"records": [{"value": 1}, {"value": 2}, {"value": 3}]}).to_string();
    let r = post(&c, &v2_url, V2_JSON, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json()["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["error_code"].is_null()));

    // kill + wait: quick enough to do on a runtime thread.
    stack.broker.stop();

    let started = Instant::now();
    let r = post(&c, &v2_url, V2_JSON, body.clone()).await;
    // Either the whole request fails (5xx) or every record carries an error code.
    if r.status == StatusCode::OK {
        let offsets = r.json()["offsets"].as_array().unwrap().clone();
        assert_eq!(offsets.len(), 3);
        for o in offsets {
            assert_eq!(o["error_code"], 50003, "{o}");
            assert!(o["offset"].is_null());
        }
    } else {
        assert!(r.status.is_server_error(), "{}", r.status);
    }
    let rec = json!({"value": {"type": "JSON", "data": 1}}).to_string();
    let r = post(&c, &v3_url, "application/json", format!("{rec}{rec}")).await;
    if r.status == StatusCode::OK {
        let reports = r.json_stream();
        assert_eq!(reports.len(), 2);
        for rep in reports {
            assert_eq!(rep["error_code"], 50003, "{rep}");
        }
    } else {
        assert!(r.status.is_server_error(), "{}", r.status);
    }
    // Bounded by the delivery timeout, not hanging.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_on_one_keep_alive_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = Stack::start(&[("t", 1)], 10_000).await;
    let addr = stack.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = json!({"records": [{"value": "x"}]}).to_string();
    for i in 0..5 {
        let req = format!(
            "POST /topics/t HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {V2_JSON}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        // Read one response: headers, then Content-Length bytes.
        let mut buf = Vec::new();
        let v: Value = loop {
            if let Some(header_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..header_end + 4]).to_lowercase();
                assert!(head.starts_with("http/1.1 200"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if let Some(body) = buf.get(header_end + 4..header_end + 4 + len) {
                    break serde_json::from_slice(body).unwrap();
                }
            }
            let mut chunk = [0u8; 1024];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed after {i} responses");
            buf.extend_from_slice(&chunk[..n]);
        };
        assert_eq!(v["offsets"][0]["offset"], i, "{v}");
    }
    stack.shutdown().await;
}
