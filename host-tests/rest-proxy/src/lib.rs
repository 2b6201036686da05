//! `adtap-rest-proxy`: a small Confluent-compatible Kafka REST proxy for the local stack.
//!
//! It serves the *produce* side of the Confluent REST APIs, v2 and v3, over HTTP/1.1 (keep-alive)
//! and HTTP/2 cleartext (prior knowledge) on one port, and produces through librdkafka (bundled,
//! via `rdkafka`) with `acks=all`. A request is answered only after **every** record of it got its
//! delivery report from the broker; a record the broker did not acknowledge is never reported as a
//! success.
//!
//! # Layout
//! - [`config`]: [`Config`], the knobs (also the CLI flags of the binary).
//! - [`server`]: the hyper server, routing, body limits, graceful shutdown ([`serve`]).
//! - [`v2`]: `POST /topics/{topic}` (json and binary embedded formats), `GET /topics`.
//! - [`v3`]: `GET /v3/clusters[/{id}]`, `POST /v3/clusters/{id}/topics/{topic}/records`.
//! - [`kafka`]: the producer (enqueue all, then await all delivery reports) and the topic
//!   metadata cache that keeps produce from auto-creating topics.
//! - [`error`]: request-level error bodies and the Confluent error codes.
//!
//! # Endpoints
//! | method | path | notes |
//! |---|---|---|
//! | POST | `/topics/{topic}` | v2; `application/vnd.kafka.json.v2+json` or `application/vnd.kafka.binary.v2+json` |
//! | GET | `/topics` | v2; JSON array of topic names |
//! | GET | `/v3/clusters`, `/v3/clusters/{id}` | v3 cluster resources |
//! | POST | `/v3/clusters/{id}/topics/{topic}/records` | v3; concatenated `ProduceRequest`s → concatenated delivery reports |
//! | GET | `/health` | `{"status":"ok"}` (does not touch the broker) |
//! | GET | `/stats` | counters: requests, records delivered / failed |
//!
//! # Error codes (mapping to Confluent's)
//!
//! Request-level errors have the body `{"error_code":N,"message":"…"}` (content type
//! `application/vnd.kafka.v2+json` on v2 paths, `application/json` on v3 paths). Nothing is
//! produced when a request-level error is returned.
//!
//! | situation | v2 (`/topics/…`) | v3 (`/v3/…/records`) |
//! |---|---|---|
//! | body is not valid JSON (syntax) | 400 / `400` (rest-utils `JsonParseException` mapper) | 400 / `400` |
//! | valid JSON, wrong shape (no `records`, wrong types, bad `partition`) | 422 / `42206` "Payload error. …" | 400 / `400` (Jackson mapping error) |
//! | key or value not base64 (v2 binary) | 422 / `42206` | — |
//! | header value not base64, bad `timestamp` (v3) | — | 400 / `400` (as in the OpenAPI example) |
//! | empty body | 422 / `42206` | 422 / `422` "Payload error. Request body is empty. Data is required." |
//! | key/value `BINARY` data not base64, unsupported `type` (v3) | — | per record `{"error_code":400,"message":"Bad Request: …"}` |
//! | topic does not exist | 404 / `40401` "Topic not found." | 404 / `40403` "This server does not host this topic-partition." |
//! | partition does not exist | 404 / `40402` "Partition not found." | per record `{"error_code":40403,…}` |
//! | unknown cluster id | — | 404 / `404` "Cluster X cannot be found." |
//! | unsupported `Content-Type` | 415 / `415` | 415 / `415` "HTTP 415 Unsupported Media Type" |
//! | body larger than `--max-body-bytes` | 413 / `413` | 413 / `413` |
//! | broker unreachable and topic unknown to the cache | 503 / `50302` | 503 / `50302` |
//! | record not acknowledged, retriable Kafka error (timeout, transport, leader…) | per record `error_code` `50003` | per record `{"error_code":50003,"message":"Retriable Kafka error: …"}` |
//! | record not acknowledged, other Kafka error (too large, invalid…) | per record `error_code` `50002` | per record `{"error_code":50002,"message":"Kafka error: …"}` |
//! | unknown path / method | 404 / `404`, 405 / `405` | same |
//!
//! A v2 response is HTTP 200 even when some records failed, exactly as Confluent does: clients
//! must look at each `offsets[i].error_code`. A v3 response is HTTP 200 with one delivery report
//! per record, `error_code` 200 for success.
//!
//! # Producer settings
//! `acks=all`, idempotence off (see [`kafka`]), `linger.ms` 5, `partitioner=murmur2_random` (the
//! Java client's default, so keyed records land where Confluent's proxy would put them),
//! `message.timeout.ms` from `--delivery-timeout-ms`.

pub mod config;
pub mod error;
pub mod kafka;
pub mod server;
pub mod v2;
pub mod v3;

pub use config::Config;
pub use server::{serve, ServerHandle};

/// Log one line to stderr with a fixed prefix. Record contents are never logged.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("adtap-rest-proxy: {}", format_args!($($arg)*))
    };
}
