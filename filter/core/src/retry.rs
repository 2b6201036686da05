//! Retry policy: exponential backoff with jitter, capped, within a total time budget per record.
//!
//! The delay before retry `k` (1 = first retry) is drawn uniformly from
//! `[b·(1-jitter), b·(1+jitter)]` with `b = min(initial · multiplierᵏ⁻¹, max_backoff)`, then
//! capped at `max_backoff_ms` again and raised to at least 1 ms. Jitter spreads the retries of
//! the many workers (and Envoys) that saw the same outage, so they do not hit the recovering
//! proxy in lock-step. All arithmetic is in `f64` and saturates, so any attempt number is safe.

use crate::config::RetryConfig;
use crate::rng::Rng;

/// Delay before attempt number `attempt` (1 = first retry), jittered and capped.
///
/// `attempt` 0 is treated as 1. Always in `1..=max(max_backoff_ms, 1)`.
pub fn backoff_ms(cfg: &RetryConfig, attempt: u32, rng: &mut Rng) -> u64 {
    let cap = cfg.max_backoff_ms.max(1) as f64;
    let base = base_ms(cfg, attempt);
    // Validation keeps jitter in [0, 1]; clamping keeps a hand-built config from producing a
    // negative delay. `clamp` would keep a NaN, so NaN is mapped to "no jitter" first.
    let jitter = if cfg.jitter.is_nan() {
        0.0
    } else {
        cfg.jitter.clamp(0.0, 1.0)
    };
    let factor = if jitter > 0.0 {
        1.0 - jitter + 2.0 * jitter * rng.next_f64()
    } else {
        1.0
    };
    // `as u64` saturates (and maps NaN to 0), and the `max(1.0)` comes last, so the result is
    // never 0.
    (base * factor).round().min(cap).max(1.0) as u64
}

/// The un-jittered delay before attempt `attempt`, capped at `max_backoff_ms` (as `f64`).
/// Non-decreasing in `attempt` for a multiplier ≥ 1.
pub fn base_ms(cfg: &RetryConfig, attempt: u32) -> f64 {
    let cap = cfg.max_backoff_ms as f64;
    // `powi` takes an i32; past ~2³¹ attempts the result is long saturated anyway.
    let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    let grown = cfg.initial_backoff_ms as f64 * cfg.multiplier.powi(exp);
    // `f64::min` returns the non-NaN operand, so an infinite or NaN product is capped too.
    grown.min(cap)
}

/// Whether a record that first failed at `first_failure_ms` may still be retried at `retry_at_ms`.
///
/// A zero budget disables retries. A `retry_at_ms` before the first failure (it cannot happen
/// with a monotonic clock) counts as elapsed time 0.
pub fn within_budget(cfg: &RetryConfig, first_failure_ms: u64, retry_at_ms: u64) -> bool {
    retry_at_ms.saturating_sub(first_failure_ms) <= cfg.budget_ms && cfg.budget_ms > 0
}

#[cfg(test)]
mod tests;
