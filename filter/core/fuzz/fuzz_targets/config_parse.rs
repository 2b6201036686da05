//! Arbitrary bytes as a plugin configuration: `Config::parse` never panics, and every error
//! names a path and a problem.
#![no_main]

use adtap_core::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(errors) = Config::parse(data) {
        assert!(!errors.is_empty());
        for e in errors {
            assert!(!e.path.is_empty() && !e.message.is_empty(), "{e:?}");
        }
    }
});
