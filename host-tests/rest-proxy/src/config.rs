//! The proxy's configuration, parsed from the command line by the binary and built directly by
//! tests ([`Config::new`]).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Everything the proxy needs to run.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "adtap-rest-proxy",
    about = "Confluent-compatible Kafka REST proxy (v2 + v3 produce) over rdkafka, for the adtap local stack"
)]
pub struct Config {
    /// Address to listen on (127.0.0.1 only is sensible). Port 0 picks a free port; the chosen
    /// address is printed as the first stdout line: `listening 127.0.0.1:PORT`.
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,

    /// Kafka bootstrap servers (`host:port[,host:port…]`).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,

    /// Cluster id served by the v3 API (`GET /v3/clusters`, `/v3/clusters/{id}/…`).
    #[arg(long, default_value = "adtap-local")]
    pub cluster_id: String,

    /// librdkafka `message.timeout.ms`: how long a record may wait for its broker
    /// acknowledgement (including retries) before it is reported as failed.
    #[arg(long, default_value_t = 30_000)]
    pub delivery_timeout_ms: u64,

    /// librdkafka `linger.ms`.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,

    /// How long the list of existing topics is trusted before it is fetched again.
    #[arg(long, default_value_t = 2_000)]
    pub metadata_ttl_ms: u64,

    /// Largest accepted request body; larger ones get 413.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Extra librdkafka producer properties, `name=value`, repeatable (override the defaults).
    #[arg(long = "producer-property", value_parser = parse_key_val)]
    pub producer_properties: Vec<(String, String)>,
}

impl Config {
    /// Defaults with the given bootstrap servers, listening on `127.0.0.1:0`.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrap: bootstrap.into(),
            cluster_id: "adtap-local".to_string(),
            delivery_timeout_ms: 30_000,
            linger_ms: 5,
            metadata_ttl_ms: 2_000,
            max_body_bytes: 64 * 1024 * 1024,
            producer_properties: Vec::new(),
        }
    }

    /// [`Config::delivery_timeout_ms`] as a duration.
    pub fn delivery_timeout(&self) -> Duration {
        Duration::from_millis(self.delivery_timeout_ms)
    }

    /// [`Config::metadata_ttl_ms`] as a duration.
    pub fn metadata_ttl(&self) -> Duration {
        Duration::from_millis(self.metadata_ttl_ms)
    }
}

fn parse_key_val(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected name=value, got {s:?}")),
    }
}
