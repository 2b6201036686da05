//! Reading the topics back and decoding adtap's records into [`Event`]s.
//!
//! The read uses the harness's [`adtap_harness::broker::read_all`] (partitions assigned directly, read up to the
//! high watermarks taken at the start). Decoding depends on the dialect and format the filter
//! used: values are JSON text or MessagePack bytes; keys are the key's JSON text for the v2
//! json embedded format (Confluent's JSON serializer) and the raw string otherwise (v2 binary
//! is base64 of the bytes, v3 sends `STRING` keys).

use adtap_core::config::{Dialect, ValueFormat};
use adtap_core::encode::decode_value;
use adtap_core::Event;
use adtap_harness::config::TOPICS;
use anyhow::{anyhow, Result};
use std::time::Duration;

/// One record read back.
#[derive(Debug, Clone)]
pub struct KafkaRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Raw key bytes.
    pub raw_key: Option<Vec<u8>>,
    /// The key as adtap chose it (decoded per dialect and format), if the bytes decode.
    pub key: Option<String>,
    /// Record headers (v3 only).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Record timestamp (ms).
    pub timestamp_ms: Option<i64>,
    /// The decoded event, or why the value did not decode.
    pub event: Result<Event, String>,
    /// Raw value bytes.
    pub value: Vec<u8>,
}

impl KafkaRecord {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// The key string from the record key bytes.
fn decode_key(dialect: Dialect, format: ValueFormat, raw: &[u8]) -> Option<String> {
    match (dialect, format) {
        (Dialect::ConfluentV2, ValueFormat::Json) => serde_json::from_slice::<String>(raw).ok(),
        _ => String::from_utf8(raw.to_vec()).ok(),
    }
}

/// Every record of the harness topics, decoded.
pub fn read_all(
    bootstrap: &str,
    dialect: Dialect,
    format: ValueFormat,
) -> Result<Vec<KafkaRecord>> {
    let mut out = Vec::new();
    for (_, topic) in TOPICS {
        let records = adtap_harness::broker::read_all(bootstrap, topic, Duration::from_secs(60))
            .map_err(|e| anyhow!("reading {topic}: {e}"))?;
        for r in records {
            let value = r.value.unwrap_or_default();
            out.push(KafkaRecord {
                topic: topic.to_string(),
                partition: r.partition,
                offset: r.offset,
                key: r
                    .key
                    .as_deref()
                    .and_then(|k| decode_key(dialect, format, k)),
                raw_key: r.key,
                headers: r.headers,
                timestamp_ms: r.timestamp_ms,
                event: decode_value(format, &value).map_err(|e| e.to_string()),
                value,
            });
        }
    }
    Ok(out)
}
