//! Confluent REST v2 produce: `POST /topics/{topic}` with the json or binary embedded format.
//!
//! Body: `{"records":[{"key":…,"value":…,"partition":int?},…]}`. json format: key and value are
//! any JSON, produced as their JSON text (`null`/absent is a null key or value); binary format:
//! base64 strings (or null). The 200 answer has one `offsets` entry per record, in order, with
//! `error_code` null on success and 50002/50003 on failure.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{self, ApiError};
use crate::kafka::{Kafka, OutRecord};

/// The response content type of every v2 endpoint.
pub const CONTENT_TYPE: &str = "application/vnd.kafka.v2+json";

/// The embedded format chosen by the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/vnd.kafka.json.v2+json`
    Json,
    /// `application/vnd.kafka.binary.v2+json`
    Binary,
}

impl Format {
    /// The format for a `Content-Type` header value, if supported (parameters are ignored).
    pub fn from_content_type(ct: Option<&str>) -> Option<Format> {
        let mime = ct?.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/vnd.kafka.json.v2+json" => Some(Format::Json),
            "application/vnd.kafka.binary.v2+json" => Some(Format::Binary),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Request {
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    key: Option<Value>,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    partition: Option<i32>,
}

/// The 200 body.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Response {
    /// Always null (no schema registry).
    pub key_schema_id: Option<i32>,
    /// Always null (no schema registry).
    pub value_schema_id: Option<i32>,
    /// One entry per record, in request order.
    pub offsets: Vec<Offset>,
}

/// One record's outcome.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Offset {
    /// Partition written to (null on failure).
    pub partition: Option<i32>,
    /// Offset (null on failure).
    pub offset: Option<i64>,
    /// Null on success; 50002 (Kafka error) or 50003 (retriable Kafka error).
    pub error_code: Option<u32>,
    /// Null on success; the Kafka error.
    pub error: Option<String>,
}

/// Base64 as Java's decoder reads it: standard alphabet, padding optional.
pub(crate) const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Parse a v2 body into records (no broker access). Errors are request-level.
pub fn parse(format: Format, body: &[u8]) -> Result<Vec<OutRecord>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_payload(
            "Request body is empty. Data is required.",
        ));
    }
    let req: Request = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid_payload(e),
        _ => ApiError::bad_request(format!("Unexpected JSON: {e}")),
    })?;
    req.records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(OutRecord {
                partition: r.partition,
                key: encode(format, r.key, i, "key")?,
                value: encode(format, r.value, i, "value")?,
                headers: Vec::new(),
                timestamp_ms: None,
            })
        })
        .collect()
}

fn encode(
    format: Format,
    v: Option<Value>,
    index: usize,
    what: &str,
) -> Result<Option<Vec<u8>>, ApiError> {
    match (format, v) {
        (_, None | Some(Value::Null)) => Ok(None),
        (Format::Json, Some(v)) => Ok(Some(serde_json::to_vec(&v).unwrap_or_default())),
        (Format::Binary, Some(Value::String(s))) => {
            BASE64.decode(s.as_bytes()).map(Some).map_err(|_| {
                ApiError::invalid_payload(format!(
                    "records[{index}].{what} is not a valid base64 string."
                ))
            })
        }
        (Format::Binary, Some(_)) => Err(ApiError::invalid_payload(format!(
            "records[{index}].{what} must be a base64 string or null."
        ))),
    }
}

/// Handle `POST /topics/{topic}`: returns the 200 body or a request-level error.
pub async fn produce(
    kafka: &Kafka,
    topic: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let format =
        Format::from_content_type(content_type).ok_or_else(ApiError::unsupported_media_type)?;
    let records = parse(format, body)?;
    let partitions = kafka
        .partitions(topic)
        .await?
        .ok_or_else(ApiError::topic_not_found)?;
    if records
        .iter()
        .any(|r| r.partition.is_some_and(|p| p < 0 || p >= partitions))
    {
        return Err(ApiError::partition_not_found());
    }
    let outcomes = kafka.produce(topic, &records).await;
    let offsets = outcomes
        .into_iter()
        .map(|o| match o {
            Ok(d) => Offset {
                partition: Some(d.partition),
                offset: Some(d.offset),
                error_code: None,
                error: None,
            },
            Err(f) => Offset {
                partition: None,
                offset: None,
                error_code: Some(if f.retriable {
                    error::KAFKA_RETRIABLE_ERROR
                } else {
                    error::KAFKA_ERROR
                }),
                error: Some(f.message),
            },
        })
        .collect();
    Ok(serde_json::to_vec(&Response {
        key_schema_id: None,
        value_schema_id: None,
        offsets,
    })
    .unwrap_or_default())
}

/// Handle `GET /topics`: the topic names as a JSON array.
pub async fn list_topics(kafka: &Kafka) -> Result<Vec<u8>, ApiError> {
    let names = kafka.topic_names().await?;
    Ok(serde_json::to_vec(&names).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type(Some("application/vnd.kafka.json.v2+json")),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_content_type(Some("Application/vnd.kafka.binary.v2+json; charset=utf-8")),
            Some(Format::Binary)
        );
        assert_eq!(Format::from_content_type(Some("application/json")), None);
        assert_eq!(Format::from_content_type(None), None);
    }

    #[test]
    fn json_format_produces_json_text() {
        let body = br#"{"records":[{"key":"k1","value":{"a":1,"b":[true,null]}},{"value":7,"partition":2},{"key":null,"value":null}]}"#;
        let r = parse(Format::Json, body).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].key.as_deref(), Some(&b"\"k1\""[..]));
        assert_eq!(
            r[0].value.as_deref(),
            Some(&br#"{"a":1,"b":[true,null]}"#[..])
        );
        assert_eq!(r[0].partition, None);
        assert_eq!(r[1].key, None);
        assert_eq!(r[1].value.as_deref(), Some(&b"7"[..]));
        assert_eq!(r[1].partition, Some(2));
        assert_eq!((r[2].key.as_ref(), r[2].value.as_ref()), (None, None));
    }

    #[test]
    fn binary_format_decodes_base64_with_or_without_padding() {
        let body = br#"{"records":[{"key":"a2V5","value":"AAEC/w=="},{"value":"AAEC/w"}]}"#;
        let r = parse(Format::Binary, body).unwrap();
        assert_eq!(r[0].key.as_deref(), Some(&b"key"[..]));
        assert_eq!(r[0].value.as_deref(), Some(&[0u8, 1, 2, 255][..]));
        assert_eq!(r[1].value.as_deref(), Some(&[0u8, 1, 2, 255][..]));
    }

    #[test]
    fn payload_errors_are_422_42206_and_syntax_errors_400() {
        let bad_b64 =
            parse(Format::Binary, br#"{"records":[{"value":"not base64!"}]}"#).unwrap_err();
        assert_eq!(
            (bad_b64.status, bad_b64.error_code),
            (StatusCode::UNPROCESSABLE_ENTITY, 42206)
        );
        assert!(bad_b64
            .message
            .starts_with("Payload error. records[0].value"));
        let not_string = parse(Format::Binary, br#"{"records":[{"value":5}]}"#).unwrap_err();
        assert_eq!(not_string.error_code, 42206);
        let no_records = parse(Format::Json, br#"{"recs":[]}"#).unwrap_err();
        assert_eq!(
            (no_records.status, no_records.error_code),
            (StatusCode::UNPROCESSABLE_ENTITY, 42206)
        );
        let bad_partition = parse(
            Format::Json,
            br#"{"records":[{"value":1,"partition":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(bad_partition.error_code, 42206);
        let empty = parse(Format::Json, b"  ").unwrap_err();
        assert_eq!(empty.error_code, 42206);
        let syntax = parse(Format::Json, br#"{"records":[{"value":1}"#).unwrap_err();
        assert_eq!(
            (syntax.status, syntax.error_code),
            (StatusCode::BAD_REQUEST, 400)
        );
    }
}
