//! The sample ad server behind Envoy: the upstream whose answers adtap records.
//!
//! - `GET /imp`   → 200, a 1×1 transparent GIF (the impression pixel)
//! - `GET /click` → 302 to the advertiser's landing page (`url` query parameter, or a default)
//! - `POST /bid`  → reads the JSON bid request, answers 200 with a JSON bid response
//!   (400 if the body is not JSON)
//! - `GET /conv`  → 204 (conversion beacon)
//! - anything else → 404
//!
//! It runs in-process on the harness's tokio runtime, on 127.0.0.1 and a port the OS picks.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The 1×1 transparent GIF served as the impression pixel.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01, 0x44, 0x00, 0x3b,
];

/// Where a click redirects when the request names no `url`.
pub const DEFAULT_LANDING: &str = "https://advertiser.example/landing";

/// Requests the ad server answered, by endpoint.
#[derive(Debug, Default)]
pub struct Counts {
    /// `GET /imp`.
    pub impressions: AtomicU64,
    /// `GET /click`.
    pub clicks: AtomicU64,
    /// `POST /bid`.
    pub bids: AtomicU64,
    /// `GET /conv`.
    pub conversions: AtomicU64,
    /// Everything answered 404.
    pub not_found: AtomicU64,
}

impl Counts {
    /// Every request answered.
    pub fn total(&self) -> u64 {
        [
            &self.impressions,
            &self.clicks,
            &self.bids,
            &self.conversions,
            &self.not_found,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// A running ad server; stops when dropped.
#[derive(Debug)]
pub struct AdServer {
    addr: SocketAddr,
    counts: Arc<Counts>,
    stop: watch::Sender<bool>,
}

impl AdServer {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime.
    pub async fn start() -> std::io::Result<AdServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let (stop, mut stopped) = watch::channel(false);
        let c = Arc::clone(&counts);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.changed() => break,
                };
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let c = Arc::clone(&c);
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let c = Arc::clone(&c);
                        async move { Ok::<_, Infallible>(handle(req, &c).await) }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        Ok(AdServer { addr, counts, stop })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it has answered so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Stops accepting and ends every connection (also on drop; idempotent).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for AdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn respond(status: StatusCode, content_type: Option<&str>, body: Bytes) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn handle(req: Request<Incoming>, counts: &Counts) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    match (req.method(), path.as_str()) {
        (&Method::GET, "/imp") => {
            counts.impressions.fetch_add(1, Ordering::Relaxed);
            let mut r = respond(
                StatusCode::OK,
                Some("image/gif"),
                Bytes::from_static(PIXEL_GIF),
            );
            r.headers_mut().insert(
                "cache-control",
                hyper::header::HeaderValue::from_static("no-store"),
            );
            r
        }
        (&Method::GET, "/click") => {
            counts.clicks.fetch_add(1, Ordering::Relaxed);
            let target = query_param(query.as_deref(), "url").unwrap_or(DEFAULT_LANDING);
            let mut r = respond(StatusCode::FOUND, None, Bytes::new());
            if let Ok(v) = hyper::header::HeaderValue::from_str(target) {
                r.headers_mut().insert("location", v);
            }
            r
        }
        (&Method::POST, "/bid") => {
            counts.bids.fetch_add(1, Ordering::Relaxed);
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return respond(StatusCode::BAD_REQUEST, None, Bytes::new()),
            };
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(bid_request) => {
                    let json = bid_response(&bid_request).to_string();
                    respond(StatusCode::OK, Some("application/json"), Bytes::from(json))
                }
                Err(_) => respond(
                    StatusCode::BAD_REQUEST,
                    Some("application/json"),
                    Bytes::from_static(br#"{"error":"bid request is not JSON"}"#),
                ),
            }
        }
        (&Method::GET, "/conv") => {
            counts.conversions.fetch_add(1, Ordering::Relaxed);
            respond(StatusCode::NO_CONTENT, None, Bytes::new())
        }
        _ => {
            counts.not_found.fetch_add(1, Ordering::Relaxed);
            respond(
                StatusCode::NOT_FOUND,
                Some("text/plain"),
                Bytes::from_static(b"not found\n"),
            )
        }
    }
}

/// An OpenRTB-shaped bid response: one bid per impression of the request.
fn bid_response(request: &serde_json::Value) -> serde_json::Value {
    let id = request
        .get("id")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let bids: Vec<serde_json::Value> = request
        .get("imp")
        .and_then(|i| i.as_array())
        .map(|imps| {
            imps.iter()
                .enumerate()
                .map(|(n, imp)| {
                    let floor = imp.get("bidfloor").and_then(|f| f.as_f64()).unwrap_or(0.1);
                    serde_json::json!({
                        "id": format!("bid-{n}"),
                        "impid": imp.get("id").cloned().unwrap_or(serde_json::Value::Null),
                        "price": (floor * 1.25 * 1000.0).round() / 1000.0,
                        "adm": "<a href=\"/click\"><img src=\"/imp\"></a>",
                        "crid": "creative-1",
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "id": id,
        "seatbid": [{"seat": "adtap-demo", "bid": bids}],
        "cur": "USD",
    })
}
