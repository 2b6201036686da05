//! What a module may import, and how each import is linked.
//!
//! - May import: exactly what Envoy (proxy-wasm-cpp-host, ABI 0.2.x) provides. The lists mirror
//!   proxy-wasm-cpp-host's `FOR_ALL_HOST_FUNCTIONS`, the 0.2.x ABI-specific functions and
//!   `FOR_ALL_WASI_FUNCTIONS`. A module importing anything else would fail to load in Envoy, so
//!   the host refuses it up front with the full list of offenders ([`check_module`]).
//! - Emulated: exactly what adtap's filter imports ([`EMULATED_PROXY_FUNCTIONS`],
//!   [`EMULATED_WASI_FUNCTIONS`]), each declared in one line of an [`import_table!`] in
//!   `hostcalls.rs` / `wasi.rs`. Every other import Envoy provides is linked to a function that
//!   traps naming it: a module may import it (the SDK's modules import far more than they
//!   call), but a call fails loudly instead of being answered by an emulation nothing tests.

use crate::state::State;
use crate::{hostcalls, wasi};
use wasmtime::{bail, format_err, Result};
use wasmtime::{ExternType, Linker, Module, WasmRet};

/// `env.proxy_*` functions the host emulates: the filter's imports.
pub const EMULATED_PROXY_FUNCTIONS: &[&str] = hostcalls::EMULATED;

/// `wasi_snapshot_preview1` functions the host emulates: the filter's imports.
pub const EMULATED_WASI_FUNCTIONS: &[&str] = wasi::EMULATED;

/// What a host function's outcome becomes for wasmtime: an ABI status (or a trap) for the
/// `env` functions, an errno for WASI, nothing (or a trap) for `proc_exit`.
pub(crate) trait Outcome {
    /// The wasmtime-side return type.
    type Ret: WasmRet;
    /// Converts the outcome.
    fn into_ret(self) -> Self::Ret;
}

impl Outcome for crate::guest::HcResult {
    type Ret = Result<i32>;
    fn into_ret(self) -> Result<i32> {
        crate::guest::finish(self)
    }
}

impl Outcome for i32 {
    type Ret = i32;
    fn into_ret(self) -> i32 {
        self
    }
}

impl Outcome for Result<()> {
    type Ret = Result<()>;
    fn into_ret(self) -> Result<()> {
        self
    }
}

/// Declares the emulated functions of one import module, one line each:
/// `name(arg: type, …);` for a `fn name(&mut Caller<State>, arg: type, …) -> impl Outcome`
/// in scope. Defines `EMULATED` (the names) and `link` (registers them all).
macro_rules! import_table {
    ($module:literal; $($name:ident($($arg:ident: $ty:ty),*);)*) => {
        /// The functions of this import module the host emulates, in table order.
        pub(crate) const EMULATED: &[&str] = &[$(stringify!($name)),*];

        /// Registers every function of the table on `linker`.
        pub(crate) fn link(
            linker: &mut wasmtime::Linker<crate::state::State>,
        ) -> wasmtime::Result<()> {
            $(
                linker.func_wrap(
                    $module,
                    stringify!($name),
                    |mut c: wasmtime::Caller<'_, crate::state::State>, $($arg: $ty),*| {
                        crate::imports::Outcome::into_ret($name(&mut c, $($arg),*))
                    },
                )?;
            )*
            Ok(())
        }
    };
}
pub(crate) use import_table;

/// Is `module::name` emulated by this host?
pub fn emulated(module: &str, name: &str) -> bool {
    match module {
        "env" => EMULATED_PROXY_FUNCTIONS.contains(&name),
        "wasi_snapshot_preview1" => EMULATED_WASI_FUNCTIONS.contains(&name),
        _ => false,
    }
}

/// A linker for `module` (already [`check_module`]ed): the emulated functions, and a trap
/// naming the function for every other import.
pub(crate) fn linker(module: &Module) -> Result<Linker<State>> {
    let mut linker = Linker::new(module.engine());
    hostcalls::link(&mut linker)?;
    wasi::link(&mut linker)?;
    for import in module.imports() {
        let (m, n) = (import.module(), import.name());
        if let ExternType::Func(ty) = import.ty() {
            if !emulated(m, n) {
                let what = format!("{m}::{n}");
                linker.func_new(m, n, ty, move |_, _, _| {
                    Err(format_err!(
                        "{what} is not emulated by adtap-wasm-host: adtap's filter does not \
                         import it (host-tests/wasm-host/README.md)"
                    ))
                })?;
            }
        }
    }
    Ok(linker)
}

/// `env.proxy_*` functions Envoy links for ABI 0.2.x modules.
pub const ENVOY_PROXY_FUNCTIONS: &[&str] = &[
    "proxy_log",
    "proxy_get_status",
    "proxy_set_property",
    "proxy_get_property",
    "proxy_send_local_response",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_buffer_status",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_close",
    "proxy_grpc_cancel",
    "proxy_grpc_send",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_current_time_nanoseconds",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_call_foreign_function",
    // ABI 0.2.x specific.
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_get_log_level",
];

/// `wasi_snapshot_preview1` functions Envoy links (most of them as restricted stubs).
pub const ENVOY_WASI_FUNCTIONS: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "random_get",
    "proc_exit",
    "path_open",
    "fd_prestat_get",
    "fd_prestat_dir_name",
];

/// Is `module::name` something Envoy provides?
pub fn envoy_provides(module: &str, name: &str) -> bool {
    match module {
        "env" => ENVOY_PROXY_FUNCTIONS.contains(&name),
        "wasi_snapshot_preview1" => ENVOY_WASI_FUNCTIONS.contains(&name),
        _ => false,
    }
}

/// Fails, naming every offending import, if `module` imports anything Envoy does not provide
/// (including non-function imports such as an imported memory), or lacks the exports Envoy
/// needs (`memory`, `proxy_on_memory_allocate`, an ABI 0.2.x version marker).
pub fn check_module(module: &Module) -> Result<()> {
    let mut bad = Vec::new();
    for import in module.imports() {
        let is_func = matches!(import.ty(), ExternType::Func(_));
        if !is_func || !envoy_provides(import.module(), import.name()) {
            bad.push(format!("{}::{}", import.module(), import.name()));
        }
    }
    if !bad.is_empty() {
        bail!(
            "module imports {} item(s) Envoy does not provide: {}",
            bad.len(),
            bad.join(", ")
        );
    }
    let has = |name: &str| module.exports().any(|e| e.name() == name);
    if !has("memory") {
        bail!("module does not export `memory`");
    }
    if !has("proxy_on_memory_allocate") && !has("malloc") {
        bail!("module exports neither `proxy_on_memory_allocate` nor `malloc`");
    }
    if !has("proxy_abi_version_0_2_1") && !has("proxy_abi_version_0_2_0") {
        bail!("module is not a proxy-wasm ABI 0.2.x module (no proxy_abi_version_0_2_x export)");
    }
    Ok(())
}
