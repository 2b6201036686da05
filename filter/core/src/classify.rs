//! Response classification: a REST proxy's answer to one batch, turned into one outcome per
//! record, per dialect (v2 per-record offsets, v3 concatenated delivery reports, Redpanda
//! per-partition offsets, Karapace's whole-response 422).
//!
//! STUB: interfaces agreed; implementation pending.

use crate::config::Dialect;

/// Why records are dropped. Each reason is its own counter (`adtap_dropped_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The buffer was full (either overflow policy).
    BufferFull,
    /// The retry budget ran out.
    RetryExhausted,
    /// The REST proxy rejected the record permanently (4xx other than 408/429, error code 1 or
    /// 50002, 40401 topic not found, 422 schema, 401/403 auth...).
    Rejected,
    /// The event could not be encoded.
    Encode,
    /// A single record larger than the batch or buffer byte limit.
    TooLarge,
    /// Still buffered or awaiting retry when the shutdown deadline passed.
    Shutdown,
}

impl DropReason {
    /// Every reason, in metric order.
    pub const ALL: [DropReason; 6] = [
        DropReason::BufferFull,
        DropReason::RetryExhausted,
        DropReason::Rejected,
        DropReason::Encode,
        DropReason::TooLarge,
        DropReason::Shutdown,
    ];
    /// The metric-name suffix.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BufferFull => "buffer_full",
            DropReason::RetryExhausted => "retry_exhausted",
            DropReason::Rejected => "rejected",
            DropReason::Encode => "encode",
            DropReason::TooLarge => "too_large",
            DropReason::Shutdown => "shutdown",
        }
    }
    /// Index into [`DropReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What happens to one record of a batch after the REST proxy answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The broker acknowledged it.
    Delivered,
    /// A transient failure: send it again (subject to the retry budget).
    Retry,
    /// A permanent failure: drop it (counted as [`DropReason::Rejected`]).
    Reject,
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
    let _ = (dialect, response);
    vec![Outcome::Retry; n]
}
