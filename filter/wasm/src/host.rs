//! Typed, panic-free adapters over the proxy-wasm host calls adtap uses.
//!
//! Each function maps the host's status into [`HostError`] so callers decide what a failure
//! means (usually: skip a field, count a failed dispatch) instead of trapping the VM.
//!
//! The SDK's `hostcalls` `panic!` on any status they did not expect (a header map that is no
//! longer readable answers `BadArgument`; `done()` outside a deferred shutdown answers
//! `NotFound`) and `unwrap()` header values as UTF-8. So for every call on the per-request and
//! per-answer paths we import the ABI functions ourselves ([`raw`]) with `u32` statuses, and read
//! values as bytes. Only `proxy_http_call` goes through the SDK, because the SDK must register
//! the call's token to route its answer back to the root context; it panics only on statuses
//! Envoy does not return from that call.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A host call that did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// The host reported `NotFound`.
    NotFound,
    /// The host rejected an argument (e.g. unknown cluster, missing pseudo-header).
    BadArgument,
    /// The host failed internally.
    InternalFailure,
    /// Any other status.
    Other(u32),
}

impl From<Status> for HostError {
    fn from(s: Status) -> Self {
        match s {
            Status::NotFound => HostError::NotFound,
            Status::BadArgument => HostError::BadArgument,
            Status::InternalFailure => HostError::InternalFailure,
            other => HostError::Other(other as u32),
        }
    }
}

/// The proxy-wasm ABI functions we call directly. Statuses are plain `u32` so that a value the
/// SDK's `Status` enum does not know can never be undefined behaviour.
#[allow(clashing_extern_declarations)]
mod raw {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
        pub fn proxy_get_current_time_nanoseconds(ret: *mut u64) -> u32;
        pub fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
        pub fn proxy_get_buffer_bytes(
            kind: u32,
            start: usize,
            max: usize,
            ret_data: *mut *mut u8,
            ret_size: *mut usize,
        ) -> u32;
        pub fn proxy_get_header_map_value(
            map: u32,
            key: *const u8,
            key_size: usize,
            ret_data: *mut *mut u8,
            ret_size: *mut usize,
        ) -> u32;
        pub fn proxy_get_header_map_pairs(
            map: u32,
            ret_data: *mut *mut u8,
            ret_size: *mut usize,
        ) -> u32;
        pub fn proxy_get_property(
            path: *const u8,
            path_size: usize,
            ret_data: *mut *mut u8,
            ret_size: *mut usize,
        ) -> u32;
        pub fn proxy_define_metric(
            kind: u32,
            name: *const u8,
            size: usize,
            ret_id: *mut u32,
        ) -> u32;
        pub fn proxy_increment_metric(id: u32, offset: i64) -> u32;
        pub fn proxy_record_metric(id: u32, value: u64) -> u32;
        pub fn proxy_done() -> u32;
    }
}

/// Status codes of the ABI.
const OK: u32 = 0;

fn status(code: u32) -> Result<(), HostError> {
    match code {
        OK => Ok(()),
        1 => Err(HostError::NotFound),
        2 => Err(HostError::BadArgument),
        10 => Err(HostError::InternalFailure),
        other => Err(HostError::Other(other)),
    }
}

/// Takes ownership of bytes the host wrote into memory it obtained from the module's allocator
/// (`proxy_on_memory_allocate`, which hands out `Vec<u8>` storage of exactly `size`).
fn take_host_bytes(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return if size == 0 { Some(Vec::new()) } else { None };
    }
    // SAFETY: the host filled `size` bytes of an allocation of capacity `size` made by the SDK's
    // allocator for this very call, and nothing else references it.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

/// Wall-clock time from the host (Envoy's dispatcher time), Unix milliseconds; 0 if unavailable.
/// For event timestamps; batching and retry timers use [`clock_ms`].
pub fn now_ms() -> u64 {
    let mut ns: u64 = 0;
    // SAFETY: the host writes one u64 through a valid pointer.
    let code = unsafe { raw::proxy_get_current_time_nanoseconds(&mut ns) };
    if status(code).is_ok() {
        ns / 1_000_000
    } else {
        0
    }
}

/// The wall time [`clock_ms`] last read, and the time it returned then.
static LAST_WALL_MS: AtomicU64 = AtomicU64::new(0);
static CLOCK_MS: AtomicU64 = AtomicU64::new(0);

/// A clock for batch ages, retry timers and the shutdown deadline, in ms: it starts at
/// [`now_ms`] and then moves forward by the wall time that passed between two reads, never
/// back. Envoy's time is the system clock; if it stepped back, ages computed on it would read
/// as 0 (and a clock merely held at its maximum would stand still) until the wall clock caught
/// up, stalling every batch and retry for the size of the step. A step forward only makes
/// things due sooner. One VM runs on one thread, so relaxed atomics are all this needs.
pub fn clock_ms() -> u64 {
    let wall = now_ms();
    let clock = CLOCK_MS.load(Ordering::Relaxed);
    if wall == 0 {
        // The host gave no time: stand still rather than jump.
        return clock;
    }
    let last_wall = LAST_WALL_MS.swap(wall, Ordering::Relaxed);
    let next = if last_wall == 0 {
        wall.max(clock)
    } else {
        clock.saturating_add(wall.saturating_sub(last_wall))
    };
    CLOCK_MS.store(next, Ordering::Relaxed);
    next
}

fn map_value(map: MapType, name: &str) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: key pointer/length describe a live &str; return pointers are valid locals.
    let code = unsafe {
        raw::proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match status(code) {
        Ok(()) => Ok(take_host_bytes(data, size)),
        Err(HostError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Bytes as text; invalid UTF-8 is replaced rather than trapping.
fn text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Bytes as text without copying when they are valid UTF-8.
pub fn text_ref(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// All request headers of the current stream, in one host call (readable in
/// `on_http_request_headers`). One call instead of one per header: each host call that returns
/// data costs about a microsecond in Envoy's V8, more than everything else adtap does per event.
pub fn request_headers() -> Option<HeaderMap> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: return pointers are valid locals.
    let code = unsafe {
        raw::proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size)
    };
    status(code).ok()?;
    HeaderMap::parse(take_host_bytes(data, size)?)
}

/// A header map in the ABI's serialisation, looked up in place: a `u32` count, then a `u32` key
/// length and a `u32` value length per header, then each key and value followed by a NUL.
#[derive(Debug, Clone, Default)]
pub struct HeaderMap {
    data: Vec<u8>,
    count: usize,
}

impl HeaderMap {
    /// Checks the serialisation once, so lookups can walk it without further checks failing.
    pub fn parse(data: Vec<u8>) -> Option<HeaderMap> {
        let map = HeaderMap {
            count: read_u32(&data, 0)? as usize,
            data,
        };
        let mut n = 0;
        for _ in map.iter() {
            n += 1;
        }
        (n == map.count).then_some(map)
    }

    /// Every (name, value), in the host's order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let sizes_start = 4usize;
        let mut data_at = sizes_start.saturating_add(self.count.saturating_mul(8));
        (0..self.count).map_while(move |i| {
            let at = sizes_start + i * 8;
            let k = read_u32(&self.data, at)? as usize;
            let v = read_u32(&self.data, at + 4)? as usize;
            let key = self.data.get(data_at..data_at.checked_add(k)?)?;
            let v_start = data_at.checked_add(k)?.checked_add(1)?;
            let value = self.data.get(v_start..v_start.checked_add(v)?)?;
            data_at = v_start.checked_add(v)?.checked_add(1)?;
            Some((key, value))
        })
    }

    /// The first value of header `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// A header of the HTTP call response being handled.
pub fn call_response_header(name: &str) -> Option<String> {
    map_value(MapType::HttpCallResponseHeaders, name)
        .ok()
        .flatten()
        .map(text)
}

/// Up to `max` bytes of a host buffer, from its start.
pub fn buffer(kind: BufferType, max: usize) -> Option<Vec<u8>> {
    if max == 0 {
        return None;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: return pointers are valid locals.
    let code = unsafe { raw::proxy_get_buffer_bytes(kind as u32, 0, max, &mut data, &mut size) };
    status(code).ok()?;
    take_host_bytes(data, size)
}

/// A property path in the ABI's serialisation: its segments joined by NUL, e.g.
/// `"response\0code"`. Constants, so that reading a property allocates nothing for its path.
pub type PropertyPath = &'static str;

/// A property as raw bytes.
pub fn property(path: PropertyPath) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: path pointer/length describe a live &str; return pointers are valid locals.
    let code = unsafe { raw::proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    status(code).ok()?;
    take_host_bytes(data, size)
}

/// A property holding an integer (Envoy sends 8 little-endian bytes).
pub fn property_u64(path: PropertyPath) -> Option<u64> {
    let bytes = property(path)?;
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

/// A property holding a string; invalid UTF-8 is replaced.
pub fn property_string(path: PropertyPath) -> Option<String> {
    property(path).map(text)
}

/// Dispatches an HTTP call to an Envoy cluster; returns the call's token.
pub fn dispatch(
    cluster: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<u32, HostError> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    hostcalls::dispatch_http_call(
        cluster,
        headers,
        Some(body),
        Vec::new(),
        Duration::from_millis(timeout_ms),
    )
    .map_err(HostError::from)
}

/// Sets the root context's tick period.
pub fn set_tick_period_ms(ms: u64) -> Result<(), HostError> {
    let ms = u32::try_from(ms).map_err(|_| HostError::BadArgument)?;
    // SAFETY: plain value call.
    status(unsafe { raw::proxy_set_tick_period_milliseconds(ms) })
}

/// Tells the host this plugin finished its deferred shutdown.
pub fn done() -> Result<(), HostError> {
    // SAFETY: plain call.
    status(unsafe { raw::proxy_done() })
}

/// Defines a metric; the same name on every worker feeds the same Envoy stat.
pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: name pointer/length describe a live &str; the id pointer is a valid local.
    let code = unsafe { raw::proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    status(code).map(|()| id)
}

/// Adds `delta` to a counter or gauge (gauges accept negative deltas; counters refuse ≤ 0).
pub fn increment_metric(id: u32, delta: i64) -> Result<(), HostError> {
    // SAFETY: plain value call.
    status(unsafe { raw::proxy_increment_metric(id, delta) })
}

/// Records a histogram value.
pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: plain value call.
    status(unsafe { raw::proxy_record_metric(id, value) })
}

/// Logs a line; a failing log call is ignored (there is nowhere else to report it).
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: message pointer/length describe a live &str.
    let _ = unsafe { raw::proxy_log(level as u32, message.as_ptr(), message.len()) };
}
