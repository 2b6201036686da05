//! Request-level errors (`{"error_code":N,"message":"…"}`) and Confluent's error codes.
//! The mapping from situations to codes is tabled in the crate docs.

use hyper::StatusCode;
use serde::Serialize;

/// Confluent: topic not found (v2).
pub const TOPIC_NOT_FOUND: u32 = 40401;
/// Confluent: partition not found (v2).
pub const PARTITION_NOT_FOUND: u32 = 40402;
/// Confluent (`KafkaExceptionMapper`): unknown topic or partition (v3).
pub const UNKNOWN_TOPIC_PARTITION: u32 = 40403;
/// Confluent: invalid payload ("Payload error. …").
pub const INVALID_PAYLOAD: u32 = 42206;
/// Confluent: non-retriable Kafka error.
pub const KAFKA_ERROR: u32 = 50002;
/// Confluent: retriable Kafka error.
pub const KAFKA_RETRIABLE_ERROR: u32 = 50003;
/// Confluent: broker not available.
pub const BROKER_NOT_AVAILABLE: u32 = 50302;

/// Message of 40401.
pub const TOPIC_NOT_FOUND_MESSAGE: &str = "Topic not found.";
/// Message of 40402.
pub const PARTITION_NOT_FOUND_MESSAGE: &str = "Partition not found.";
/// Message of 40403 (Kafka's own text for UNKNOWN_TOPIC_OR_PARTITION).
pub const UNKNOWN_TOPIC_PARTITION_MESSAGE: &str = "This server does not host this topic-partition.";

/// A request-level error: the HTTP status and the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// `error_code` of the body.
    pub error_code: u32,
    /// `message` of the body.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error_code: u32,
    message: &'a str,
}

impl ApiError {
    /// An error with an explicit status, code and message.
    pub fn new(status: StatusCode, error_code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_code,
            message: message.into(),
        }
    }

    /// 400 with `error_code` 400: the body is not what the endpoint parses.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 400, message)
    }

    /// 422 / 42206 "Payload error. …" (v2 payload validation).
    pub fn invalid_payload(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            INVALID_PAYLOAD,
            format!("Payload error. {detail}"),
        )
    }

    /// 404 / 40401.
    pub fn topic_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            TOPIC_NOT_FOUND,
            TOPIC_NOT_FOUND_MESSAGE,
        )
    }

    /// 404 / 40402.
    pub fn partition_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            PARTITION_NOT_FOUND,
            PARTITION_NOT_FOUND_MESSAGE,
        )
    }

    /// 503 / 50302.
    pub fn broker_not_available(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            BROKER_NOT_AVAILABLE,
            format!("Broker not available: {detail}"),
        )
    }

    /// 415 / 415.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
            "HTTP 415 Unsupported Media Type",
        )
    }

    /// 404 / 404 for an unknown path.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
    }

    /// 405 / 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            405,
            "HTTP 405 Method Not Allowed",
        )
    }

    /// 413 / 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            413,
            format!(
                "The request body is larger than the maximum the server accepts ({limit} bytes)."
            ),
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error_code: self.error_code,
            message: &self.message,
        })
        .unwrap_or_default()
    }
}
