//! adtap's pure core: everything the filter decides, with no proxy-wasm dependency, so that it is
//! unit-tested natively and reused by the JavaScript build.
//!
//! Layout, in the order an event meets it:
//! - [`config`]: the operator's JSON, parsed and range-checked into a [`Config`] (its `//!`
//!   gives the layout: raw input, sections, validation).
//! - [`capture`]: rule matching on method/host/path, sampling, query decoding and body
//!   collection: the request values an event is made of.
//! - [`record`]: the hot path's writer: one captured request written straight into its record
//!   (value in JSON or MessagePack, and key), with no intermediate [`Event`].
//! - [`event`]: the event model (the schema, and what decoders read back) and the encoded
//!   [`Record`] that is buffered and sent.
//! - [`key`]: record keys of one field or several joined.
//! - [`cloudevents`]: the opt-in CloudEvents attributes (record headers on v3, an envelope on
//!   v2 and Redpanda).
//! - `json_text`: JSON string literals and base64 written into a buffer, the bytes the
//!   writer, the encoder, the envelope and joined keys share (so none depends on another).
//! - [`encode`]: serde's encoding and decoding of an [`Event`] (the reference the writer matches
//!   byte for byte), and the HTTP request body for a batch in each REST dialect.
//! - [`schema`]: the published JSON Schema of the event value (not used by the filter).
//! - [`classify`]: turning a REST proxy's answer into a per-record outcome
//!   (delivered / retry / drop).
//! - [`drop_reason`]: why an event was dropped, one reason per `adtap_dropped_<name>` counter
//!   (decided by the answer, the retry budget, the writer or the pipeline's bounds).
//! - [`retry`]: backoff with jitter and the retry budget.
//! - [`pipeline`]: the per-worker buffer, batching triggers, calls in flight, retries and the
//!   accounting that proves nothing is lost silently.
//! - [`rng`]: a small deterministic PRNG (sampling, jitter), seeded by the glue.
//! - [`native`]: which rules each deployment captures, and the native Envoy matchers that keep
//!   requests no rule can match out of the VM.
//!
//! And around them, the lifecycle the glue drives:
//! - [`host`]: the [`host::Host`] trait, everything the core asks of the proxy (reads of the
//!   stream, dispatching calls, logs, metrics); [`headers`]: header maps in the ABI's bytes.
//! - [`session`]: the capture of one request, in either deployment (access logger, HTTP filter).
//! - [`worker`]: one configuration's delivery state with an explicit [`worker::Phase`].
//! - [`vm`]: one VM's roots, streams and workers: one method per proxy-wasm callback.
//! - [`metrics`]: the `adtap_*` stats and the deltas that publish them.
//!
//! The glue (crate `adtap-filter`) implements [`host::Host`] over the ABI and passes time and
//! randomness seeds in; nothing here reads a clock or does I/O.
//!
//! Tests are placed one way:
//! - a module's unit tests (the ones that need its private items) sit in `mod tests` at the end
//!   of the module while they are short (under about 100 lines), and in `<module>/tests.rs`
//!   (`#[cfg(test)] mod tests;`) once longer (`capture`, `cloudevents`, `ip`, `native`,
//!   `pipeline`, `record`, `retry`, `config/validate`);
//! - tests through the public API only are integration tests in `tests/`, one file per
//!   subject; the per-event costs are measured in `benches/core.rs`;
//! - every test and bench builds its [`Config`] one way: `testkit::config` over a JSON
//!   document, through the real parsing and validation (module `testkit`, compiled for this
//!   crate's tests and benches only).

pub mod capture;
pub mod classify;
pub mod cloudevents;
pub mod config;
pub mod drop_reason;
pub mod encode;
pub mod event;
pub mod headers;
pub mod host;
pub mod ip;
mod json_text;
pub mod key;
pub mod metrics;
pub mod native;
pub mod pb_struct;
pub mod pipeline;
pub mod record;
pub mod retry;
pub mod rng;
pub mod schema;
pub mod session;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod vm;
pub mod worker;

pub use config::{Config, ConfigError};
pub use event::{Event, Record};
