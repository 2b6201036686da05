//! The proxy-wasm ABI (0.2.1) functions adtap imports, and the core's [`Host`] over them.
//!
//! Statuses are plain `u32`, so a value the ABI does not define can never be undefined
//! behaviour; every non-zero status becomes a [`HostError`]. Data the host returns arrives in
//! memory it obtained from our `proxy_on_memory_allocate` ([`crate::exports`]), which hands out
//! `Vec<u8>` storage of exactly the requested size; [`take_host_bytes`] takes it back.

use adtap_core::encode::HttpRequest;
use adtap_core::headers::{self, HeaderPairs};
use adtap_core::host::{Host, HostError, LogLevel, MetricKind, Property};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(ret: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        kind: u32,
        start: usize,
        max: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, ret_data: *mut *mut u8, ret_size: *mut usize) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_http_call(
        upstream: *const u8,
        upstream_size: usize,
        headers: *const u8,
        headers_size: usize,
        body: *const u8,
        body_size: usize,
        trailers: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        ret_token: *mut u32,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, size: usize, ret_id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_done() -> u32;
}

/// Header map kinds of the ABI.
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;
const CALL_RESPONSE_HEADERS: u32 = 6;
/// Buffer kinds of the ABI.
const REQUEST_BODY: u32 = 0;
const CALL_RESPONSE_BODY: u32 = 4;
/// The plugin configuration buffer.
pub const PLUGIN_CONFIGURATION: u32 = 7;

fn status(code: u32) -> Result<(), HostError> {
    if code == 0 {
        Ok(())
    } else {
        Err(HostError::from_status(code))
    }
}

/// Takes ownership of bytes the host wrote into memory from `proxy_on_memory_allocate`.
fn take_host_bytes(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return if size == 0 { Some(Vec::new()) } else { None };
    }
    // SAFETY: the host filled `size` bytes of an allocation of capacity `size` made by
    // `proxy_on_memory_allocate` for this very call, and nothing else references it.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Runs a data-returning host call and takes its bytes.
fn returned(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    status(call(&mut data, &mut size)).ok()?;
    take_host_bytes(data, size)
}

/// Envoy's wall clock (its dispatcher time), Unix milliseconds; 0 if unavailable.
pub fn wall_ms() -> u64 {
    let mut ns: u64 = 0;
    // SAFETY: the host writes one u64 through a valid pointer.
    let code = unsafe { proxy_get_current_time_nanoseconds(&mut ns) };
    if code == 0 {
        ns / 1_000_000
    } else {
        0
    }
}

/// Up to `max` bytes of a host buffer, from its start.
pub fn buffer(kind: u32, max: usize) -> Option<Vec<u8>> {
    if max == 0 {
        return None;
    }
    // SAFETY: return pointers are valid locals.
    returned(|d, s| unsafe { proxy_get_buffer_bytes(kind, 0, max, d, s) })
}

fn header_value(map: u32, name: &str) -> Option<Vec<u8>> {
    // SAFETY: the key describes a live &str; return pointers are valid locals.
    returned(|d, s| unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), d, s) })
}

fn status_of(bytes: Option<Vec<u8>>) -> Option<u16> {
    std::str::from_utf8(&bytes?).ok()?.parse().ok()
}

/// Writes a log line; a failing log call is ignored (there is nowhere else to report it).
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: the message describes a live &str.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// The core's [`Host`] over the ABI. Reads refer to the context of the running callback.
#[derive(Debug, Default)]
pub struct Abi;

impl Host for Abi {
    fn request_headers(&mut self) -> Option<HeaderPairs> {
        // SAFETY: return pointers are valid locals.
        let bytes = returned(|d, s| unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, d, s) })?;
        HeaderPairs::parse(bytes)
    }

    fn response_status(&mut self) -> Option<u16> {
        status_of(header_value(RESPONSE_HEADERS, ":status"))
    }

    fn property(&mut self, property: Property) -> Option<Vec<u8>> {
        let path = property.path();
        // SAFETY: the path describes a live &str; return pointers are valid locals.
        returned(|d, s| unsafe { proxy_get_property(path.as_ptr(), path.len(), d, s) })
    }

    fn request_body(&mut self, max: usize) -> Option<Vec<u8>> {
        buffer(REQUEST_BODY, max)
    }

    fn call_response_status(&mut self) -> Option<u16> {
        status_of(header_value(CALL_RESPONSE_HEADERS, ":status"))
    }

    fn call_response_body(&mut self, max: usize) -> Option<Vec<u8>> {
        buffer(CALL_RESPONSE_BODY, max)
    }

    fn dispatch(
        &mut self,
        cluster: &str,
        request: &HttpRequest,
        timeout_ms: u64,
    ) -> Result<u32, HostError> {
        let headers = headers::serialize(&request.headers);
        let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
        let mut token: u32 = 0;
        // SAFETY: every pointer/length pair describes a live buffer; the token is a valid local.
        let code = unsafe {
            proxy_http_call(
                cluster.as_ptr(),
                cluster.len(),
                headers.as_ptr(),
                headers.len(),
                request.body.as_ptr(),
                request.body.len(),
                std::ptr::null(),
                0,
                timeout,
                &mut token,
            )
        };
        status(code).map(|()| token)
    }

    fn set_tick_period_ms(&mut self, ms: u64) -> Result<(), HostError> {
        let ms = u32::try_from(ms).map_err(|_| HostError::BadArgument)?;
        // SAFETY: plain value call.
        status(unsafe { proxy_set_tick_period_milliseconds(ms) })
    }

    fn done(&mut self) -> Result<(), HostError> {
        // SAFETY: plain call.
        status(unsafe { proxy_done() })
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        log(level, message);
    }

    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Result<u32, HostError> {
        let mut id: u32 = 0;
        // SAFETY: the name describes a live &str; the id is a valid local.
        let code = unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
        status(code).map(|()| id)
    }

    fn increment_metric(&mut self, id: u32, delta: i64) -> Result<(), HostError> {
        // SAFETY: plain value call.
        status(unsafe { proxy_increment_metric(id, delta) })
    }

    fn record_metric(&mut self, id: u32, value: u64) -> Result<(), HostError> {
        // SAFETY: plain value call.
        status(unsafe { proxy_record_metric(id, value) })
    }
}

/// The request header that makes a `trap-on-demand` build trap (test-only; absent from the
/// shipped module, which a test checks by looking for this very string).
#[cfg(feature = "trap-on-demand")]
pub const TEST_TRAP_HEADER: &str = "x-adtap-test-trap";

/// `trap-on-demand` builds only: traps the VM (a Wasm `unreachable`, as a panic in a callback
/// would) when the request being logged carries [`TEST_TRAP_HEADER`].
#[cfg(feature = "trap-on-demand")]
pub fn trap_if_requested() {
    if header_value(REQUEST_HEADERS, TEST_TRAP_HEADER).is_some() {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        std::process::abort();
    }
}
