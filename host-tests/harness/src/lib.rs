//! `adtap-harness`: the one place host tests and benches find paths and tools, and the one base
//! adtap configuration they all patch.
//!
//! Without features it is light (only `adtap-core` and `serde_json`): the wasm-host tests
//! compile it into every test binary. The `parts` feature adds the launchers of the real parts
//! for the stack, the bench and the REST proxy's tests.
//!
//! Modules:
//! - [`paths`]: the repository root, the tool cache (`ADTAP_CACHE`), the release module
//!   (`ADTAP_WASM`), the tools (`ADTAP_ENVOY`, `ADTAP_TANSU`, `ADTAP_DRAIN`) and free local ports.
//! - [`config`]: the base adtap configuration and RFC 7396 merge patches over it.
//! - `parts` only: [`process`] (children that cannot outlive the test, logs in files),
//!   [`broker`] (tansu with memory storage, topics, reading records back), [`envoy`] (the Envoy
//!   launcher), [`http`] (the blocking HTTP/1.1 client), [`stats`] (adtap's stats from Envoy's
//!   text `/stats`, the accounting invariant, Prometheus samples).

pub mod config;
pub mod paths;

#[cfg(feature = "parts")]
pub mod broker;
#[cfg(feature = "parts")]
pub mod envoy;
#[cfg(feature = "parts")]
pub mod http;
#[cfg(feature = "parts")]
pub mod process;
#[cfg(feature = "parts")]
pub mod stats;
