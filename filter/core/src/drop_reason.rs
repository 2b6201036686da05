//! Why an event was dropped: one [`DropReason`] per `adtap_dropped_<name>` counter.
//!
//! Its own module because the reasons belong to different stages: the REST proxy's answer
//! ([`DropReason::Rejected`], decided by [`crate::classify`]), the retry policy
//! ([`DropReason::RetryExhausted`]), the writer ([`DropReason::Encode`]) and the pipeline's
//! bounds and shutdown ([`DropReason::BufferFull`], [`DropReason::TooLarge`],
//! [`DropReason::Shutdown`]).

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
    /// Still held (buffered, awaiting retry, or in a call not answered) when the shutdown
    /// deadline passed, or pushed after the pipeline was abandoned.
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
