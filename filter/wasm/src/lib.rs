//! adtap's proxy-wasm glue: the thin layer between Envoy and [`adtap_core`].
//!
//! Everything that decides lives in the core; this crate only moves data across the ABI:
//! - [`host`]: typed, panic-free adapters over `proxy_wasm::hostcalls` (time, headers,
//!   properties, buffers, HTTP calls, logs). The SDK's convenience methods `unwrap()` host
//!   statuses, which would trap the VM; we never call them.
//! - [`metrics`]: the `adtap_*` Envoy stats, updated from the core's counters by delta once per
//!   tick, so the per-request path makes no metric host calls.
//! - [`worker`]: the per-worker state (config, pipeline, sampling RNG, event ids) shared by the
//!   root context and the HTTP contexts of one Envoy worker. Single-threaded: no locks.
//! - [`root`]: the root context: configuration, ticks, dispatching batches, their answers, and
//!   the final flush on shutdown.
//! - [`stream`]: the HTTP context: rule match on request headers, optional body capture, and
//!   finishing the event in `on_log` once status and duration are known.
//!
//! Batches are dispatched only from the root context: a call made from a stream context would
//! be cancelled with its stream, and the SDK would route the answer to the wrong context.

pub mod host;
pub mod metrics;
pub mod root;
pub mod stream;
pub mod worker;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::AdtapRoot::new())
    });
}}
