//! Response classification: a REST proxy's answer to one batch, turned into one outcome per
//! record, per dialect (v2 per-record offsets, v3 concatenated delivery reports, Redpanda
//! per-partition offsets, Karapace's whole-response 422).
//!
//! [`classify`] always returns exactly `n` outcomes and never panics, whatever the body: the
//! body comes from the network. The rules, in the order they are applied:
//!
//! | answer | outcome |
//! |---|---|
//! | no response (reset, refused; `status: None`) | all Retry |
//! | 408, 429, any 5xx (Envoy's own 503/504 too; request-level 50002 too) | all Retry |
//! | 422 whose body is a v2 offsets response (Karapace: 422 when any record failed), v2/Redpanda | per record / per partition, as for 2xx |
//! | 413 (the request body is over the proxy's limit) | all TooLarge: the batch is split |
//! | other 4xx (400, 401/40101, 403/40301, 404/40401/40402/40403, 415, 422/422xx) | all Reject |
//! | 1xx, 3xx, ≥ 600 (a misrouted call) | all Retry |
//! | 2xx, v2, `offsets.len() == n` | per record, by `error_code` (table below) |
//! | 2xx, Redpanda, or v2 with `offsets.len() != n` | per partition, aggregated (below) |
//! | 2xx, v3 | per delivery report, in order; missing reports Retry |
//! | 2xx with a body that does not parse | all Retry |
//!
//! Per-record codes ([`code_outcome`]): absent/`null`/`0`/2xx → Delivered; Confluent `2`,
//! `50003`, `408xx`/`429xx`/other `5xxxx` and 408/429/5xx → Retry; Confluent `1`, `50002`,
//! other `4xxxx`/4xx (40101, 40301, 40403, 42201…) → Reject. Exception: Karapace also writes
//! `1` for producer timeouts and cancellations ("timed out waiting to publish message"), which
//! its own source calls retriable, so a `1` whose `error` text says timed out / timeout /
//! cancelled → Retry. On Redpanda, codes below 200 are raw Kafka protocol codes
//! ([`kafka_code_outcome`]): Kafka's retriable ones (and 8 BROKER_NOT_AVAILABLE, -1
//! UNKNOWN_SERVER_ERROR, transient by nature) → Retry; its known permanent ones (10 MESSAGE_TOO_LARGE, 17 INVALID_TOPIC, 29 TOPIC_AUTHORIZATION_FAILED, 32
//! INVALID_TIMESTAMP, 87 INVALID_RECORD…) → Reject. **Unknown codes → Retry**: a code we cannot
//! prove permanent is retried within the retry budget rather than dropped on a guess.
//!
//! Per-partition entries (Redpanda; or v2 with a count mismatch) cannot be mapped to records:
//! - no entry carries an error (and there is at least one entry) → all Delivered;
//! - any entry with a retriable (or unknown) error, or no entries at all → all Retry: the
//!   failed records are among them, and at-least-once wins over duplicates of the delivered;
//! - otherwise (only permanent errors, possibly beside successes) → all Reject. Retrying would
//!   re-send the delivered records on every attempt while the permanent error recurs until the
//!   budget runs out; Reject counts the delivered ones of that batch as dropped (pessimistic
//!   accounting) but neither duplicates nor hides a failure.
//!
//! Request-level 5xx are retried even with `error_code` 50002 (Confluent's "non-retriable Kafka
//! error"): at request level it also covers producer-side failures that clear up (broker
//! restarts, metadata timeouts), and the retry budget bounds the cost. Per record, 50002 is
//! permanent: Confluent's server code emits 50002 for a Kafka error it does not retry.

use crate::config::Dialect;
use serde::Deserialize;

/// What happens to one record of a batch after the REST proxy answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The broker acknowledged it.
    Delivered,
    /// A transient failure: send it again (subject to the retry budget).
    Retry,
    /// A permanent failure: drop it (counted as [`crate::drop_reason::DropReason::Rejected`]).
    Reject,
    /// The whole request was too large for the REST proxy (413): the records are not at fault,
    /// their number is. The pipeline sends them again in two halves at once, and drops a
    /// record that is too large alone (as [`crate::drop_reason::DropReason::TooLarge`]).
    TooLarge,
}

/// The answer to one call: `status` is `None` when the call failed without a response (reset,
/// connection refused); Envoy reports its own timeout as 504.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// HTTP status, if any response arrived.
    pub status: Option<u16>,
    /// Response body (may be empty).
    pub body: &'a [u8],
}

/// One outcome per record of a batch of `n` records, in order.
pub fn classify(dialect: Dialect, response: Response<'_>, n: usize) -> Vec<Outcome> {
    let Some(status) = response.status else {
        return vec![Outcome::Retry; n];
    };
    let v2_family = matches!(dialect, Dialect::ConfluentV2 | Dialect::Redpanda);
    match status {
        200..=299 => match dialect {
            Dialect::ConfluentV3 => v3_reports(response.body, n),
            Dialect::ConfluentV2 | Dialect::Redpanda => {
                v2_offsets(dialect, response.body, n).unwrap_or_else(|| vec![Outcome::Retry; n])
            }
        },
        408 | 429 | 500..=599 => vec![Outcome::Retry; n],
        // Karapace answers 422 for the whole response when any record failed, with the usual
        // offsets body; a request-level 422 (Confluent 422xx) has no `offsets` and is rejected.
        422 if v2_family => {
            v2_offsets(dialect, response.body, n).unwrap_or_else(|| vec![Outcome::Reject; n])
        }
        413 => vec![Outcome::TooLarge; n],
        400..=499 => vec![Outcome::Reject; n],
        _ => vec![Outcome::Retry; n],
    }
}

/// A v2 produce response (Confluent, Karapace, Redpanda); other fields are ignored.
#[derive(Deserialize)]
struct OffsetsBody {
    offsets: Vec<OffsetEntry>,
}

/// One `offsets` entry: per record (Confluent, Karapace) or per partition (Redpanda).
#[derive(Deserialize)]
struct OffsetEntry {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    error: Option<String>,
}

impl OffsetEntry {
    fn outcome(&self, table: CodeTable) -> Outcome {
        match self.error_code {
            None => Outcome::Delivered,
            // Karapace writes code 1 for its producer timeouts and cancellations too, although
            // its own source calls them retriable; only the message tells them apart.
            Some(1) if matches!(table, CodeTable::Confluent) && self.is_transient_message() => {
                Outcome::Retry
            }
            Some(code) => table.outcome(code),
        }
    }

    fn is_transient_message(&self) -> bool {
        self.error.as_deref().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("timed out") || m.contains("timeout") || m.contains("cancelled")
        })
    }
}

/// Outcomes from a v2 offsets body, or `None` when the body is not one.
fn v2_offsets(dialect: Dialect, body: &[u8], n: usize) -> Option<Vec<Outcome>> {
    let parsed: OffsetsBody = serde_json::from_slice(body).ok()?;
    let table = match dialect {
        Dialect::Redpanda => CodeTable::Kafka,
        Dialect::ConfluentV2 | Dialect::ConfluentV3 => CodeTable::Confluent,
    };
    let per_record = dialect != Dialect::Redpanda && parsed.offsets.len() == n;
    if per_record {
        return Some(parsed.offsets.iter().map(|e| e.outcome(table)).collect());
    }
    let mut any_retry = parsed.offsets.is_empty();
    let mut any_reject = false;
    for entry in &parsed.offsets {
        match entry.outcome(table) {
            Outcome::Delivered => {}
            Outcome::Retry => any_retry = true,
            // Per-entry codes never say TooLarge (only a 413 does); a permanent one if it did.
            Outcome::Reject | Outcome::TooLarge => any_reject = true,
        }
    }
    let all = if any_retry {
        Outcome::Retry
    } else if any_reject {
        Outcome::Reject
    } else {
        Outcome::Delivered
    };
    Some(vec![all; n])
}

/// One v3 delivery report (`ProduceResponse`); other fields are ignored.
#[derive(Deserialize)]
struct DeliveryReport {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

/// Outcomes from concatenated v3 delivery reports, in record order. Reports that are missing
/// (short body, or a parse error part-way) leave their records as Retry; extra reports are
/// ignored.
fn v3_reports(body: &[u8], n: usize) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(n);
    let reports = serde_json::Deserializer::from_slice(body).into_iter::<DeliveryReport>();
    for report in reports.take(n) {
        let Ok(report) = report else { break };
        out.push(match (report.error_code, report.offset) {
            (Some(code), _) => CodeTable::Confluent.outcome(code),
            (None, Some(_)) => Outcome::Delivered,
            (None, None) => Outcome::Retry,
        });
    }
    out.resize(n, Outcome::Retry);
    out
}

/// Which numbering an `error_code` uses.
#[derive(Debug, Clone, Copy)]
enum CodeTable {
    /// Confluent / Karapace codes: 1, 2, HTTP statuses and their 5-digit refinements.
    Confluent,
    /// Redpanda: raw Kafka protocol codes per partition (Confluent-style codes ≥ 100 are read
    /// as such, since no produce-related Kafka code is that high).
    Kafka,
}

impl CodeTable {
    fn outcome(self, code: i64) -> Outcome {
        match self {
            CodeTable::Kafka if code < 200 => kafka_code_outcome(code),
            _ => code_outcome(code),
        }
    }
}

/// A Confluent / Karapace per-record or per-report `error_code` (see the module table).
pub fn code_outcome(code: i64) -> Outcome {
    // 5-digit codes refine an HTTP status: 40401 is a 404, 50003 a 500.
    let http = if (10_000..100_000).contains(&code) {
        code / 100
    } else {
        code
    };
    match code {
        0 => Outcome::Delivered,
        2 | 50_003 => Outcome::Retry,
        1 | 50_002 => Outcome::Reject,
        _ => match http {
            200..=299 => Outcome::Delivered,
            408 | 429 | 500..=599 => Outcome::Retry,
            400..=499 => Outcome::Reject,
            _ => Outcome::Retry,
        },
    }
}

/// A raw Kafka protocol error code (Redpanda's per-partition entries).
pub fn kafka_code_outcome(code: i64) -> Outcome {
    match code {
        0 => Outcome::Delivered,
        // Kafka's RetriableException family for produce: CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION,
        // LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, REPLICA_NOT_AVAILABLE,
        // NETWORK_EXCEPTION, COORDINATOR_*, NOT_ENOUGH_REPLICAS(_AFTER_APPEND),
        // KAFKA_STORAGE_ERROR, FENCED/UNKNOWN_LEADER_EPOCH, THROTTLING_QUOTA_EXCEEDED,
        // UNKNOWN_TOPIC_ID; plus BROKER_NOT_AVAILABLE (8) and UNKNOWN_SERVER_ERROR (-1), which
        // Kafka does not mark retriable but which are transient on a produce path.
        -1 | 2 | 3 | 5 | 6 | 7 | 8 | 9 | 13 | 14 | 15 | 16 | 19 | 20 | 56 | 74 | 75 | 89 | 100 => {
            Outcome::Retry
        }
        // Permanent for this record or request: MESSAGE_TOO_LARGE, INVALID_TOPIC_EXCEPTION,
        // RECORD_LIST_TOO_LARGE, INVALID_REQUIRED_ACKS, TOPIC/CLUSTER_AUTHORIZATION_FAILED,
        // INVALID_TIMESTAMP, UNSUPPORTED_VERSION, UNSUPPORTED_FOR_MESSAGE_FORMAT,
        // POLICY_VIOLATION, UNSUPPORTED_COMPRESSION_TYPE, INVALID_RECORD,
        // TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
        10 | 17 | 18 | 21 | 29 | 31 | 32 | 35 | 43 | 44 | 53 | 76 | 87 => Outcome::Reject,
        _ => Outcome::Retry,
    }
}
