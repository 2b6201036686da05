//! adtap's proxy-wasm glue: the thin layer between Envoy and [`adtap_core`].
//!
//! Everything that decides lives in the core ([`adtap_core::vm::Vm`]); this crate only moves
//! bytes across the ABI:
//! - [`abi`]: the proxy-wasm host functions adtap imports, with `u32` statuses mapped to
//!   [`adtap_core::host::HostError`], and [`abi::Abi`], the core's [`adtap_core::host::Host`]
//!   over them. No call can panic: a failing host call is an error value, never a trap.
//! - [`exports`]: the callbacks Envoy calls, each one line into the VM's state.
//!
//! # Why not the SDK's `proxy_wasm::main!`
//! The SDK exports every `proxy_on_*` callback, and Envoy enters the VM for every exported one:
//! seven entries per request on an ad route, about a microsecond each (as measured). This
//! module exports only what adtap uses: per request, `proxy_on_log` (the access logger's root,
//! or an HTTP filter stream), `proxy_on_done`, and `proxy_on_request_body` when a request has a
//! body. No `proxy_on_context_create`, `proxy_on_request_headers`, response callbacks or
//! `proxy_on_delete`.
//!
//! Batches are dispatched only from root contexts (ticks and answers): a call made from a
//! stream would be cancelled with its stream.

pub mod abi;
pub mod exports;
