//! Confluent REST v3: the cluster resources and `POST /v3/clusters/{id}/topics/{topic}/records`.
//!
//! The records body is one or more concatenated `ProduceRequest` JSON objects (whitespace between
//! them allowed). The whole body is parsed before anything is produced, so a syntax error
//! anywhere is a 400 with nothing produced (a client retrying it cannot create duplicates). The
//! response is one delivery report per record, in order, each a JSON object on its own line:
//! `{"error_code":200,"cluster_id",…,"offset",…}` or `{"error_code":N,"message":"…"}`.

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{self, ApiError};
use crate::kafka::{Kafka, OutRecord};
use crate::v2::BASE64;

/// The content type of v3 requests and responses.
pub const CONTENT_TYPE: &str = "application/json";

#[derive(Deserialize)]
struct ProduceRequest {
    #[serde(default)]
    partition_id: Option<i32>,
    #[serde(default)]
    headers: Option<Vec<HeaderIn>>,
    #[serde(default)]
    key: Option<DataIn>,
    #[serde(default)]
    value: Option<DataIn>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct HeaderIn {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct DataIn {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    schema_id: Option<Value>,
    #[serde(default)]
    schema_version: Option<Value>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    subject: Option<Value>,
}

/// Size and type of a produced key or value, as reported back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataInfo {
    /// `BINARY`, `JSON` or `STRING`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Size in bytes of the serialized key or value.
    pub size: i64,
}

/// One delivery report (success or failure: absent fields are omitted).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryReport {
    /// 200 on success; otherwise an HTTP-like or Confluent code (400, 40403, 50002, 50003).
    pub error_code: u32,
    /// Failure message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Cluster id (success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Topic (success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Partition (success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_id: Option<i32>,
    /// Offset (success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// RFC 3339 record timestamp (success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Key info; null when the record had no key (success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Option<DataInfo>>,
    /// Value info; null when the record had no value (success only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Option<DataInfo>>,
}

impl DeliveryReport {
    fn failed(error_code: u32, message: impl Into<String>) -> Self {
        DeliveryReport {
            error_code,
            message: Some(message.into()),
            ..DeliveryReport::default()
        }
    }
}

/// A parsed record: either ready to produce, or already failed (per-record 400/40403).
#[derive(Debug)]
pub enum Prepared {
    /// To produce, with the key/value info for the report.
    Produce(OutRecord, Option<DataInfo>, Option<DataInfo>),
    /// Rejected before producing.
    Rejected(u32, String),
}

/// Parse a concatenated-`ProduceRequest` body. Request-level errors: empty body (422), JSON
/// syntax or shape (400), non-base64 header value or bad timestamp (400).
pub fn parse(body: &[u8]) -> Result<Vec<Prepared>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            hyper::StatusCode::UNPROCESSABLE_ENTITY,
            422,
            "Payload error. Request body is empty. Data is required.",
        ));
    }
    let mut out = Vec::new();
    for (i, req) in serde_json::Deserializer::from_slice(body)
        .into_iter::<ProduceRequest>()
        .enumerate()
    {
        let req = req.map_err(|e| ApiError::bad_request(format!("record {i}: {e}")))?;
        out.push(prepare(i, req)?);
    }
    Ok(out)
}

fn prepare(i: usize, req: ProduceRequest) -> Result<Prepared, ApiError> {
    let mut headers = Vec::new();
    for h in req.headers.unwrap_or_default() {
        let value = match h.value {
            None => None,
            Some(v) => Some(BASE64.decode(v.as_bytes()).map_err(|_| {
                ApiError::bad_request(format!(
                    "record {i}: header {:?} value is not a base64 string",
                    h.name
                ))
            })?),
        };
        headers.push((h.name, value));
    }
    let timestamp_ms = match req.timestamp {
        None => None,
        Some(ts) => Some(
            DateTime::parse_from_rfc3339(&ts)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "record {i}: timestamp {ts:?} is not RFC 3339: {e}"
                    ))
                })?
                .timestamp_millis(),
        ),
    };
    let (key, key_info) = match data(req.key) {
        Ok(kv) => kv,
        Err(msg) => return Ok(Prepared::Rejected(400, format!("Bad Request: key: {msg}"))),
    };
    let (value, value_info) = match data(req.value) {
        Ok(kv) => kv,
        Err(msg) => {
            return Ok(Prepared::Rejected(
                400,
                format!("Bad Request: value: {msg}"),
            ))
        }
    };
    Ok(Prepared::Produce(
        OutRecord {
            partition: req.partition_id,
            key,
            value,
            headers,
            timestamp_ms,
        },
        key_info,
        value_info,
    ))
}

type Encoded = (Option<Vec<u8>>, Option<DataInfo>);

/// Index into the records sent to Kafka, with the key/value info for the report.
type Slot = (usize, Option<DataInfo>, Option<DataInfo>);

/// Serialize a key or value per its `type`. Without a schema registry only BINARY, JSON and
/// STRING are possible, and the type must be given.
fn data(d: Option<DataIn>) -> Result<Encoded, String> {
    let Some(d) = d else {
        return Ok((None, None));
    };
    if d.schema_id.is_some()
        || d.schema_version.is_some()
        || d.schema.is_some()
        || d.subject.is_some()
    {
        return Err("schemas are not supported (no schema registry)".to_string());
    }
    let kind = d
        .kind
        .ok_or_else(|| "type is required (BINARY, JSON or STRING)".to_string())?;
    let bytes = match (kind.as_str(), d.data) {
        (_, None | Some(Value::Null)) => None,
        ("BINARY", Some(Value::String(s))) => Some(
            BASE64
                .decode(s.as_bytes())
                .map_err(|_| format!("data={s} is not a base64 string."))?,
        ),
        ("BINARY", Some(other)) => return Err(format!("data={other} is not a base64 string.")),
        ("JSON", Some(v)) => Some(serde_json::to_vec(&v).unwrap_or_default()),
        ("STRING", Some(Value::String(s))) => Some(s.into_bytes()),
        ("STRING", Some(other)) => return Err(format!("data={other} is not a string.")),
        (other, _) => {
            return Err(format!(
                "type {other} is not supported (BINARY, JSON or STRING)"
            ))
        }
    };
    let info = DataInfo {
        kind,
        size: bytes.as_ref().map_or(0, |b| b.len() as i64),
    };
    Ok((bytes, Some(info)))
}

/// Handle `POST /v3/clusters/{cluster}/topics/{topic}/records` (cluster id already checked).
pub async fn produce(
    kafka: &Kafka,
    cluster_id: &str,
    topic: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let json = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(CONTENT_TYPE));
    if !json {
        return Err(ApiError::unsupported_media_type());
    }
    let prepared = parse(body)?;
    let partitions = kafka.partitions(topic).await?.ok_or_else(|| {
        ApiError::new(
            hyper::StatusCode::NOT_FOUND,
            error::UNKNOWN_TOPIC_PARTITION,
            error::UNKNOWN_TOPIC_PARTITION_MESSAGE,
        )
    })?;

    // Records that can be produced go to Kafka together; `slots` remembers where each report goes.
    let mut to_send = Vec::new();
    let mut slots: Vec<Result<Slot, DeliveryReport>> = Vec::with_capacity(prepared.len());
    for p in prepared {
        match p {
            Prepared::Rejected(code, msg) => slots.push(Err(DeliveryReport::failed(code, msg))),
            Prepared::Produce(r, _, _) if r.partition.is_some_and(|p| p < 0 || p >= partitions) => {
                slots.push(Err(DeliveryReport::failed(
                    error::UNKNOWN_TOPIC_PARTITION,
                    error::UNKNOWN_TOPIC_PARTITION_MESSAGE,
                )))
            }
            Prepared::Produce(r, k, v) => {
                slots.push(Ok((to_send.len(), k, v)));
                to_send.push(r);
            }
        }
    }
    let outcomes = kafka.produce(topic, &to_send).await;

    let mut out = Vec::new();
    for slot in slots {
        let report = match slot {
            Err(r) => r,
            Ok((idx, k, v)) => match outcomes.get(idx) {
                Some(Ok(d)) => DeliveryReport {
                    error_code: 200,
                    message: None,
                    cluster_id: Some(cluster_id.to_string()),
                    topic_name: Some(topic.to_string()),
                    partition_id: Some(d.partition),
                    offset: Some(d.offset),
                    timestamp: d
                        .timestamp_ms
                        .or(to_send.get(idx).and_then(|r| r.timestamp_ms))
                        .and_then(DateTime::<Utc>::from_timestamp_millis)
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                    key: Some(k),
                    value: Some(v),
                },
                Some(Err(f)) => DeliveryReport::failed(
                    if f.retriable {
                        error::KAFKA_RETRIABLE_ERROR
                    } else {
                        error::KAFKA_ERROR
                    },
                    f.message.clone(),
                ),
                None => DeliveryReport::failed(500, "Internal Server Error"),
            },
        };
        if let Ok(bytes) = serde_json::to_vec(&report) {
            out.extend_from_slice(&bytes);
            out.push(b'\n');
        }
    }
    Ok(out)
}

fn cluster(base: &str, id: &str) -> Value {
    let c = format!("{base}/v3/clusters/{id}");
    json!({
        "kind": "KafkaCluster",
        "metadata": {"self": c, "resource_name": format!("crn:///kafka={id}")},
        "cluster_id": id,
        "controller": {"related": format!("{c}/brokers/1")},
        "acls": {"related": format!("{c}/acls")},
        "brokers": {"related": format!("{c}/brokers")},
        "broker_configs": {"related": format!("{c}/broker-configs")},
        "consumer_groups": {"related": format!("{c}/consumer-groups")},
        "topics": {"related": format!("{c}/topics")},
        "partition_reassignments": {"related": format!("{c}/topics/-/partitions/-/reassignment")},
    })
}

/// `GET /v3/clusters`: a `KafkaClusterList` with the one configured cluster. `base` is
/// `http://host:port` for the `self` links.
pub fn list_clusters(base: &str, id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "KafkaClusterList",
        "metadata": {"self": format!("{base}/v3/clusters"), "next": null},
        "data": [cluster(base, id)],
    }))
    .unwrap_or_default()
}

/// `GET /v3/clusters/{id}`.
pub fn get_cluster(base: &str, id: &str) -> Vec<u8> {
    serde_json::to_vec(&cluster(base, id)).unwrap_or_default()
}

/// The 404 for a cluster id other than the configured one.
pub fn cluster_not_found(id: &str) -> ApiError {
    ApiError::new(
        hyper::StatusCode::NOT_FOUND,
        404,
        format!("Cluster {id} cannot be found."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;

    fn produce_of(p: &Prepared) -> (&OutRecord, &Option<DataInfo>, &Option<DataInfo>) {
        match p {
            Prepared::Produce(r, k, v) => (r, k, v),
            Prepared::Rejected(c, m) => panic!("rejected {c} {m}"),
        }
    }

    #[test]
    fn concatenated_requests_with_all_fields() {
        let body =
            br#"{"partition_id":1,"headers":[{"name":"h1","value":"SGVhZGVyLTE="},{"name":"h2"}],
            "key":{"type":"BINARY","data":"Zm9vYmFy"},"value":{"type":"JSON","data":{"x":[1,2]}},
            "timestamp":"2021-02-05T19:14:42.123Z"}
            {"value":{"type":"STRING","data":"hello"}}{"key":{"type":"JSON","data":"k"}}"#;
        let p = parse(body).unwrap();
        assert_eq!(p.len(), 3);
        let (r, k, v) = produce_of(&p[0]);
        assert_eq!(r.partition, Some(1));
        assert_eq!(
            r.headers,
            vec![
                ("h1".to_string(), Some(b"Header-1".to_vec())),
                ("h2".to_string(), None)
            ]
        );
        assert_eq!(r.key.as_deref(), Some(&b"foobar"[..]));
        assert_eq!(r.value.as_deref(), Some(&br#"{"x":[1,2]}"#[..]));
        assert_eq!(r.timestamp_ms, Some(1_612_552_482_123));
        assert_eq!(
            k,
            &Some(DataInfo {
                kind: "BINARY".into(),
                size: 6
            })
        );
        assert_eq!(
            v,
            &Some(DataInfo {
                kind: "JSON".into(),
                size: 11
            })
        );
        let (r, k, v) = produce_of(&p[1]);
        assert_eq!((r.key.as_ref(), k), (None, &None));
        assert_eq!(r.value.as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            v,
            &Some(DataInfo {
                kind: "STRING".into(),
                size: 5
            })
        );
        let (r, _, v) = produce_of(&p[2]);
        assert_eq!(r.key.as_deref(), Some(&b"\"k\""[..]));
        assert_eq!((r.value.as_ref(), v), (None, &None));
    }

    #[test]
    fn bad_record_data_is_a_per_record_400() {
        let body = br#"{"value":{"type":"BINARY","data":"1"}} {"value":{"type":"AVRO","data":1}} {"value":{"data":1}} {"value":{"type":"JSON","data":1}}"#;
        let p = parse(body).unwrap();
        assert!(matches!(&p[0], Prepared::Rejected(400, m) if m.contains("not a base64 string")));
        assert!(matches!(&p[1], Prepared::Rejected(400, m) if m.contains("AVRO")));
        assert!(matches!(&p[2], Prepared::Rejected(400, m) if m.contains("type is required")));
        assert!(matches!(&p[3], Prepared::Produce(..)));
    }

    #[test]
    fn request_level_errors() {
        let empty = parse(b" \n").unwrap_err();
        assert_eq!(
            (empty.status, empty.error_code),
            (StatusCode::UNPROCESSABLE_ENTITY, 422)
        );
        let syntax = parse(br#"{"value":{"type":"JSON","data":1}} {"value":"#).unwrap_err();
        assert_eq!(
            (syntax.status, syntax.error_code),
            (StatusCode::BAD_REQUEST, 400)
        );
        let shape = parse(br#"{"partition_id":"one"}"#).unwrap_err();
        assert_eq!(shape.status, StatusCode::BAD_REQUEST);
        let header = parse(br#"{"headers":[{"name":"a","value":"***"}]}"#).unwrap_err();
        assert_eq!(header.status, StatusCode::BAD_REQUEST);
        let ts = parse(br#"{"timestamp":"yesterday"}"#).unwrap_err();
        assert_eq!(ts.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn cluster_list_shape() {
        let v: Value = serde_json::from_slice(&list_clusters("http://h:1", "c1")).unwrap();
        assert_eq!(v["kind"], "KafkaClusterList");
        assert_eq!(v["metadata"]["self"], "http://h:1/v3/clusters");
        assert_eq!(v["data"][0]["kind"], "KafkaCluster");
        assert_eq!(v["data"][0]["cluster_id"], "c1");
        assert_eq!(
            v["data"][0]["topics"]["related"],
            "http://h:1/v3/clusters/c1/topics"
        );
    }

    #[test]
    fn failure_reports_carry_only_code_and_message() {
        let r = serde_json::to_string(&DeliveryReport::failed(50003, "x")).unwrap();
        assert_eq!(r, r#"{"error_code":50003,"message":"x"}"#);
    }
}
