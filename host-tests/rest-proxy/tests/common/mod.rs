//! Shared setup for the proxy's tests against a real tansu broker.
#![allow(dead_code)]

use std::time::Duration;

use adtap_harness::broker::{Consumed, Tansu};
use adtap_rest_proxy::{serve, Config, ServerHandle};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub const V2_JSON: &str = "application/vnd.kafka.json.v2+json";
pub const V2_BINARY: &str = "application/vnd.kafka.binary.v2+json";
/// Standard base64, as the v2 binary format and v3 `BINARY` data use it.
pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A broker with topics and a proxy in front of it.
pub struct Stack {
    pub broker: Tansu,
    pub proxy: Option<ServerHandle>,
    pub base: String,
}

impl Stack {
    /// Start tansu, create `topics` (name, partitions), start the proxy on port 0.
    pub async fn start(topics: &[(&str, u32)], delivery_timeout_ms: u64) -> Stack {
        let topics: Vec<(String, u32)> = topics.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        let broker = tokio::task::spawn_blocking(move || {
            let b = Tansu::start().expect("start tansu");
            for (t, n) in &topics {
                b.create_topic(t, *n).expect("create topic");
            }
            b
        })
        .await
        .unwrap();
        let mut config = Config::new(broker.bootstrap());
        config.delivery_timeout_ms = delivery_timeout_ms;
        let proxy = serve(config).await.expect("start proxy");
        let base = proxy.base_url();
        Stack {
            broker,
            proxy: Some(proxy),
            base,
        }
    }

    pub async fn read_all(&self, topic: &str) -> Vec<Consumed> {
        let bootstrap = self.broker.bootstrap();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            adtap_harness::broker::read_all(&bootstrap, &topic, Duration::from_secs(30))
        })
        .await
        .unwrap()
        .expect("read back")
    }

    pub async fn shutdown(mut self) {
        if let Some(p) = self.proxy.take() {
            p.shutdown().await;
        }
    }
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// HTTP/1.1 client (keep-alive pool).
pub fn h1() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// HTTP/2 prior-knowledge (h2c) client.
pub fn h2() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as concatenated JSON values.
    pub fn json_stream(&self) -> Vec<serde_json::Value> {
        serde_json::Deserializer::from_slice(&self.body)
            .into_iter::<serde_json::Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| {
                panic!(
                    "not concatenated JSON ({e}): {}",
                    String::from_utf8_lossy(&self.body)
                )
            })
    }

    /// Asserts the status, showing the body when it differs.
    pub fn assert_status(&self, status: u16) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Reply {
    let mut b = Request::builder().method(method).uri(url);
    if let Some(ct) = content_type {
        b = b.header(hyper::header::CONTENT_TYPE, ct);
    }
    let resp = client
        .request(b.body(Full::new(body.into())).unwrap())
        .await
        .expect("HTTP request");
    let status = resp.status();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        version,
        headers,
        body,
    }
}

pub async fn post(client: &HttpClient, url: &str, ct: &str, body: impl Into<Bytes>) -> Reply {
    send(client, Method::POST, url, Some(ct), body).await
}

pub async fn get(client: &HttpClient, url: &str) -> Reply {
    send(client, Method::GET, url, None, Bytes::new()).await
}
