//! Arbitrary answers: `classify` returns exactly `n` outcomes for every dialect.
#![no_main]

use adtap_core::classify::{classify, Response};
use adtap_core::config::Dialect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [s0, s1, n, flags, body @ ..] = data else {
        return;
    };
    let status = (flags & 1 == 1).then(|| u16::from_le_bytes([*s0, *s1]));
    let n = usize::from(*n);
    for d in [Dialect::ConfluentV2, Dialect::ConfluentV3, Dialect::Redpanda] {
        assert_eq!(classify(d, Response { status, body }, n).len(), n);
    }
});
