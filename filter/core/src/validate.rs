//! Range checks of a [`RawConfig`], collecting every problem with its JSON path.
//!
//! STUB: interfaces agreed; implementation pending.

use crate::config::{Config, ConfigError, RawConfig};

/// Validates `raw` into a [`Config`], or returns every problem found.
pub fn validate(raw: RawConfig) -> Result<Config, Vec<ConfigError>> {
    let _ = raw;
    Err(vec![ConfigError { path: "$".into(), message: "not implemented".into() }])
}
