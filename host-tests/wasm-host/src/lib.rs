//! A deterministic proxy-wasm host on wasmtime, for testing the built adtap `.wasm` the way
//! Envoy runs it (ABI 0.2.1, Rust modules built for `wasm32-wasip1`).
//!
//! State-based, in the style of proxy-wasm-go-sdk's `proxytest`: a test plays Envoy step by
//! step and then inspects what the module did. One `Store` per [`Host`], no globals, so tests
//! run in parallel; share the compiled [`wasmtime::Module`] (immutable) between them.
//! Time and randomness come only from the test: the clock moves when the test says so, WASI
//! `random_get` is seeded.
//!
//! It emulates exactly the host functions adtap's filter imports ([`EMULATED_PROXY_FUNCTIONS`],
//! [`EMULATED_WASI_FUNCTIONS`]), the way Envoy answers them; any other function Envoy provides
//! traps, naming itself, if a module calls it; anything Envoy does not provide is refused before
//! instantiation.
//!
//! Layout:
//! - `host.rs`: the [`Host`] API (lifecycle, streams, clock, HTTP calls, metrics, logs).
//! - `hostcalls.rs`: the emulated `env.proxy_*` functions, with Envoy's status codes and rules.
//! - `wasi.rs`: the emulated WASI functions, deterministic.
//! - `imports.rs`: what Envoy provides, the one-line-per-import table macro, and the linker
//!   (emulated functions, a naming trap for the rest).
//! - `state.rs`: the Store data and the records tests read. `guest.rs`: memory access and
//!   the header-map wire format. `abi.rs`: ABI numbers.
//!
//! ```no_run
//! use adtap_wasm_host::{compile_file, Action, Host, HostOptions};
//! use std::time::Duration;
//!
//! # fn main() -> wasmtime::Result<()> {
//! let module = compile_file("module.wasm")?; // share via OnceLock in real tests
//! let opts = HostOptions { plugin_config: b"tick_ms=1000".to_vec(), ..Default::default() };
//! let mut host = Host::start(&module, opts)?; // on_vm_start + on_configure must say true
//!
//! let id = host.new_http_context()?;
//! let action = host.request_headers(id, &[(":path", "/a"), (":method", "GET")], true)?;
//! assert_eq!(action, Action::Continue);
//! host.set_property_u64(id, &["response", "code"], 200)?;
//! host.complete_stream(id)?; // on_log, on_done, on_delete
//!
//! host.advance_and_tick(Duration::from_secs(1))?; // fires on_tick at t = 1 s
//! let call = host.pending_calls().remove(0);
//! assert_eq!(call.header(":method"), Some("POST"));
//! host.respond(call.token, 200, &[("content-type", "application/json")], b"{}")?;
//!
//! assert_eq!(host.metric("testmod.responses"), Some(1));
//! assert!(!host.shutdown()? || host.is_done());
//! assert!(host.trapped().is_none());
//! # Ok(())
//! # }
//! ```

mod abi;
mod guest;
mod host;
mod hostcalls;
mod imports;
mod state;
mod wasi;

pub use abi::{Action, LogLevel};
pub use guest::{deserialize_pairs, serialize_pairs};
pub use host::{compile, compile_file, engine, Host, HostOptions};
pub use imports::{
    check_module, emulated, envoy_provides, EMULATED_PROXY_FUNCTIONS, EMULATED_WASI_FUNCTIONS,
    ENVOY_PROXY_FUNCTIONS, ENVOY_WASI_FUNCTIONS,
};
pub use state::{HttpCall, LogEntry, LogSource};
