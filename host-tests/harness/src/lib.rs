//! `adtap-harness`: the one place host tests and benches find paths and tools, and the one base
//! adtap configuration they all patch.
//!
//! Kept light (only `adtap-core` and `serde_json`): the wasm-host tests compile it into every
//! test binary.
//!
//! Modules:
//! - [`paths`]: the repository root, the tool cache (`ADTAP_CACHE`), the release module
//!   (`ADTAP_WASM`) and free local ports.
//! - [`config`]: the base adtap configuration and RFC 7396 merge patches over it.

pub mod config;
pub mod paths;
