//! The "correct sink": a tiny in-process HTTP server that answers every Confluent v2 produce
//! request (`POST /topics/{topic}`) the way a healthy REST proxy does — HTTP 200 with one
//! offsets entry per record — without a broker behind it. The throughput bench ships adtap's
//! batches here so that it measures adtap in Envoy, not a broker on the same two cores; the
//! tables say so.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Counters of what the sink acknowledged.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Produce requests answered 200.
    pub requests: AtomicU64,
    /// Records acknowledged.
    pub records: AtomicU64,
    /// Request bytes received (bodies).
    pub body_bytes: AtomicU64,
    /// Requests that were not valid v2 produce requests (answered 422).
    pub invalid: AtomicU64,
}

/// A running sink; stops when dropped.
pub struct Sink {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    /// What it acknowledged so far.
    pub stats: Arc<SinkStats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Deserialize)]
struct V2Body {
    records: Vec<serde::de::IgnoredAny>,
}

/// The v2 answer for `n` records starting at `first_offset`, all on partition 0.
pub fn v2_offsets(n: usize, first_offset: u64) -> String {
    let mut out = String::with_capacity(64 + n * 64);
    out.push_str(r#"{"key_schema_id":null,"value_schema_id":null,"offsets":["#);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"partition":0,"offset":{},"error_code":null,"error":null}}"#,
            first_offset + i as u64
        ));
    }
    out.push_str("]}");
    out
}

async fn answer(req: Request<Incoming>, stats: Arc<SinkStats>) -> Result<Response<Full<Bytes>>> {
    let is_produce =
        req.method() == hyper::Method::POST && req.uri().path().starts_with("/topics/");
    let body = req.into_body().collect().await?.to_bytes();
    stats
        .body_bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let parsed = serde_json::from_slice::<V2Body>(&body).ok();
    let (status, text) = match parsed {
        Some(b) if is_produce => {
            let n = b.records.len();
            let first = stats.records.fetch_add(n as u64, Ordering::Relaxed);
            stats.requests.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, v2_offsets(n, first))
        }
        _ => {
            stats.invalid.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                r#"{"error_code":42201,"message":"not a v2 produce request"}"#.to_string(),
            )
        }
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/vnd.kafka.v2+json")
        .body(Full::new(Bytes::from(text)))?)
}

impl Sink {
    /// Starts the sink on a free port of 127.0.0.1, on its own thread.
    pub fn start() -> Result<Sink> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let stats = Arc::new(SinkStats::default());
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let stats = Arc::clone(&thread_stats);
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| answer(req, Arc::clone(&stats)));
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        Ok(Sink {
            addr,
            stats,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One v2 produce request through the harness's client.
    fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, serde_json::Value) {
        let v2_json = Some(("application/vnd.kafka.json.v2+json", body.as_bytes()));
        let timeout = std::time::Duration::from_secs(5);
        let r = adtap_harness::http::request(addr, "POST", path, v2_json, timeout).unwrap();
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    #[test]
    fn answers_one_offset_per_record_in_order() {
        let sink = Sink::start().unwrap();
        let (status, v) = post(
            sink.addr,
            "/topics/ad-impressions",
            r#"{"records":[{"value":{"a":1}},{"key":"k","value":{"b":2}},{"value":3}]}"#,
        );
        assert_eq!(status, 200);
        let offsets = v["offsets"].as_array().unwrap();
        assert_eq!(offsets.len(), 3);
        assert_eq!(offsets[2]["offset"], 2);
        assert!(offsets.iter().all(|o| o["error_code"].is_null()));
        let (_, v) = post(sink.addr, "/topics/t", r#"{"records":[{"value":1}]}"#);
        assert_eq!(v["offsets"][0]["offset"], 3);
        assert_eq!(sink.stats.records.load(Ordering::Relaxed), 4);
        assert_eq!(sink.stats.requests.load(Ordering::Relaxed), 2);
        let (status, _) = post(sink.addr, "/topics/t", r#"{"nope":1}"#);
        assert_eq!(status, 422);
        assert_eq!(sink.stats.invalid.load(Ordering::Relaxed), 1);
    }
}
