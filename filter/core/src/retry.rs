//! Retry policy: exponential backoff with jitter, capped, within a total time budget per record.
//!
//! STUB: interfaces agreed; implementation pending.

use crate::config::RetryConfig;
use crate::rng::Rng;

/// Delay before attempt number `attempt` (1 = first retry), jittered and capped.
pub fn backoff_ms(cfg: &RetryConfig, attempt: u32, rng: &mut Rng) -> u64 {
    let _ = (attempt, rng);
    cfg.initial_backoff_ms
}

/// Whether a record that first failed at `first_failure_ms` may still be retried at `retry_at_ms`.
pub fn within_budget(cfg: &RetryConfig, first_failure_ms: u64, retry_at_ms: u64) -> bool {
    retry_at_ms.saturating_sub(first_failure_ms) <= cfg.budget_ms && cfg.budget_ms > 0
}
