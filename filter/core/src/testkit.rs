//! Test support: the one way a test or bench of this crate builds a [`Config`].
//!
//! Compiled only for this crate's own unit tests, integration tests and benches (the `testkit`
//! feature, which `adtap-core`'s dev-dependency on itself turns on); never part of the filter.
//!
//! Every test configuration is a JSON document parsed by [`Config::parse`], the path an
//! operator's configuration takes, so defaults, normalisation (lower-case hosts, topic indices,
//! inherited keys) and the range checks apply, and a new configuration field never touches a
//! test. A test that needs a bound below what an operator may configure (a byte bound of a few
//! hundred bytes, so that small records reach it) parses a valid document and then assigns the
//! section's field, saying why. A unit test of a function over one section fed values the
//! validation refuses (the retry policy's backoff with NaN) builds that section from its
//! `Default` (`..RetryConfig::default()`), so a new field does not touch it either.

#![allow(clippy::panic)] // A test's configuration is a fixture: a refused one is a broken test.

use crate::Config;
use serde_json::Value;

/// The [`Config`] `doc` stands for, through the real parsing and validation. Panics listing
/// every problem when `doc` is refused.
pub fn config(doc: &Value) -> Config {
    match Config::parse(doc.to_string().as_bytes()) {
        Ok(c) => c,
        Err(errors) => panic!("test configuration refused: {errors:?}\n{doc:#}"),
    }
}

/// `base` with each top-level key of `overrides` replacing base's value (a whole section is
/// replaced, never merged into; there is no delete).
pub fn with(mut base: Value, overrides: &Value) -> Value {
    if let (Some(b), Some(o)) = (base.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}
