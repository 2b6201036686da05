//! What a module may import: exactly what Envoy (proxy-wasm-cpp-host, ABI 0.2.x) provides.
//!
//! The lists mirror proxy-wasm-cpp-host's `FOR_ALL_HOST_FUNCTIONS`, the 0.2.x ABI-specific
//! functions and `FOR_ALL_WASI_FUNCTIONS`. A module importing anything else would fail to load
//! in Envoy, so the host refuses it up front with the full list of offenders.

use wasmtime::{bail, Result};
use wasmtime::{ExternType, Module};

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
