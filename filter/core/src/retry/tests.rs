//! Unit tests of `retry` (in their own file once past about a hundred lines: see the crate's
//! `//!`).

use super::*;

fn cfg(initial: u64, max: u64, multiplier: f64, jitter: f64) -> RetryConfig {
    RetryConfig {
        initial_backoff_ms: initial,
        max_backoff_ms: max,
        multiplier,
        jitter,
        ..RetryConfig::default()
    }
}

#[test]
fn zero_jitter_is_exact_exponential_then_capped() {
    let c = cfg(100, 10_000, 2.0, 0.0);
    let mut rng = Rng::new(1);
    let got: Vec<u64> = (1..=9).map(|a| backoff_ms(&c, a, &mut rng)).collect();
    assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    // Attempt 0 is read as the first retry.
    assert_eq!(backoff_ms(&c, 0, &mut rng), 100);
    // A fractional multiplier rounds to the nearest millisecond.
    let c = cfg(100, 10_000, 1.5, 0.0);
    assert_eq!(backoff_ms(&c, 3, &mut rng), 225);
}

#[test]
fn jittered_delays_stay_within_bounds_for_many_seeds() {
    let c = cfg(100, 10_000, 2.0, 0.2);
    for seed in 0..2000u64 {
        let mut rng = Rng::new(seed);
        for attempt in 1..=12u32 {
            let base = base_ms(&c, attempt);
            let d = backoff_ms(&c, attempt, &mut rng) as f64;
            assert!(
                d >= (base * 0.8).round() && d <= (base * 1.2).round().min(10_000.0),
                "seed {seed} attempt {attempt}: {d} outside {base}±20%"
            );
        }
    }
}

#[test]
fn jitter_actually_spreads_the_delays() {
    let c = cfg(1000, 100_000, 2.0, 0.5);
    let mut rng = Rng::new(42);
    let draws: Vec<u64> = (0..1000).map(|_| backoff_ms(&c, 1, &mut rng)).collect();
    let (lo, hi) = (
        draws.iter().min().copied().unwrap(),
        draws.iter().max().copied().unwrap(),
    );
    assert!(lo < 600 && hi > 1400, "spread too narrow: {lo}..{hi}");
    let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
    assert!(
        (mean - 1000.0).abs() < 50.0,
        "mean {mean} not centred on the base"
    );
}

#[test]
fn base_is_monotone_and_capped() {
    for &m in &[1.0, 1.5, 2.0, 10.0] {
        let c = cfg(50, 30_000, m, 0.3);
        let mut prev = 0.0;
        for attempt in 1..=200u32 {
            let b = base_ms(&c, attempt);
            assert!(b >= prev && b <= 30_000.0, "m={m} attempt={attempt}: {b}");
            prev = b;
        }
    }
}

#[test]
fn huge_attempts_do_not_overflow_and_cap_holds_with_jitter() {
    let c = cfg(100, 10_000, 10.0, 1.0);
    let mut rng = Rng::new(7);
    for attempt in [1_000, 1_000_000, u32::MAX - 1, u32::MAX] {
        for _ in 0..100 {
            let d = backoff_ms(&c, attempt, &mut rng);
            assert!((1..=10_000).contains(&d), "{attempt}: {d}");
        }
    }
    let c = cfg(u64::MAX, u64::MAX, 10.0, 0.0);
    assert!(backoff_ms(&c, u32::MAX, &mut rng) > 0);
}

#[test]
fn never_below_one_millisecond() {
    let mut rng = Rng::new(3);
    assert_eq!(backoff_ms(&cfg(0, 10_000, 2.0, 0.0), 5, &mut rng), 1);
    assert_eq!(backoff_ms(&cfg(100, 0, 2.0, 0.0), 5, &mut rng), 1);
    for _ in 0..1000 {
        assert!(backoff_ms(&cfg(1, 10, 1.0, 1.0), 1, &mut rng) >= 1);
    }
    // A NaN multiplier or jitter (impossible after validation) still gives a sane delay.
    assert_eq!(
        backoff_ms(&cfg(100, 5_000, f64::NAN, f64::NAN), 3, &mut rng),
        5_000
    );
}

#[test]
fn budget_is_inclusive_and_zero_disables() {
    let mut c = cfg(100, 10_000, 2.0, 0.2);
    c.budget_ms = 1_000;
    assert!(within_budget(&c, 5_000, 5_000));
    assert!(within_budget(&c, 5_000, 6_000));
    assert!(!within_budget(&c, 5_000, 6_001));
    assert!(within_budget(&c, 5_000, 4_000));
    c.budget_ms = 0;
    assert!(!within_budget(&c, 5_000, 5_000));
}
