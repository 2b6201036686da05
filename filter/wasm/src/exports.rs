//! The callbacks Envoy calls, each one line into [`adtap_core::vm::Vm`].
//!
//! The VM's state lives in a thread-local: Envoy runs one VM per worker thread and calls it on
//! that thread only, so no lock is needed, and a re-entrant call (none exists in the ABI) would
//! find the state borrowed and do nothing rather than trap.

use crate::abi::{self, Abi, PLUGIN_CONFIGURATION};
use adtap_core::vm::Vm;
use std::cell::RefCell;

thread_local! {
    static VM: RefCell<Option<Vm>> = const { RefCell::new(None) };
}

/// Runs `f` on the VM's state, creating it on first use with a seed from the host's randomness.
fn with_vm<R: Default>(f: impl FnOnce(&mut Vm, &mut Abi) -> R) -> R {
    VM.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else {
            return R::default();
        };
        let vm = guard.get_or_insert_with(|| Vm::new(seed()));
        f(vm, &mut Abi)
    })
}

/// A random seed from the host (WASI `random_get`), falling back to the clock.
fn seed() -> u64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => u64::from_le_bytes(buf),
        Err(_) => abi::wall_ms() ^ 0x5DEE_CE66_D1CE_4E5B,
    }
}

/// The ABI version this module speaks.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Memory for data the host returns; taken back by `abi::take_host_bytes`.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buf: Vec<u8> = Vec::with_capacity(size);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

/// A root's configuration: false makes Envoy reject it.
#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, size: usize) -> bool {
    let config = abi::buffer(PLUGIN_CONFIGURATION, size).unwrap_or_default();
    with_vm(|vm, host| vm.on_configure(host, root_id, abi::wall_ms(), &config))
}

/// A root's tick.
#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    with_vm(|vm, host| vm.on_tick(host, root_id, abi::wall_ms()));
}

/// The answer to a batch call.
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _root_id: u32,
    token: u32,
    num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    with_vm(|vm, host| {
        vm.on_http_call_response(host, abi::wall_ms(), token, num_headers, body_size)
    });
}

/// A request logged: the access logger's root, or an HTTP filter stream.
#[no_mangle]
pub extern "C" fn proxy_on_log(context_id: u32) {
    #[cfg(feature = "trap-on-demand")]
    crate::abi::trap_if_requested();
    with_vm(|vm, host| vm.on_log(host, context_id, abi::wall_ms()));
}

/// A chunk of a request body (HTTP filter). Always `Continue` (0): adtap never holds a request.
#[no_mangle]
pub extern "C" fn proxy_on_request_body(context_id: u32, size: usize, _end_of_stream: bool) -> u32 {
    with_vm(|vm, host| vm.on_request_body(host, context_id, abi::wall_ms(), size));
    0
}

/// A context ends: a root may defer its teardown (false) for the final flush.
#[no_mangle]
pub extern "C" fn proxy_on_done(context_id: u32) -> bool {
    VM.with(|cell| {
        let Ok(mut guard) = cell.try_borrow_mut() else {
            return true;
        };
        match guard.as_mut() {
            // A stream: nothing to do, and no clock read on the per-request path.
            Some(vm) if vm.is_root(context_id) => vm.on_done(&mut Abi, context_id, abi::wall_ms()),
            _ => true,
        }
    })
}
