//! Typed, panic-free adapters over the proxy-wasm host calls adtap uses.
//!
//! Each function maps the host's `Status` into [`HostError`] so callers decide what a failure
//! means (usually: skip a field, count a failed dispatch) instead of trapping the VM.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};
use std::time::{Duration, UNIX_EPOCH};

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

/// Wall-clock time from the host (Envoy's dispatcher time), Unix milliseconds; 0 if unavailable.
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A request header of the current stream.
pub fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

/// A header of the HTTP call response being handled.
pub fn call_response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpCallResponseHeaders, name)
        .ok()
        .flatten()
}

/// Up to `max` bytes of a host buffer, from its start.
pub fn buffer(kind: BufferType, max: usize) -> Option<Vec<u8>> {
    if max == 0 {
        return None;
    }
    hostcalls::get_buffer(kind, 0, max).ok().flatten()
}

/// A property as raw bytes.
pub fn property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

/// A property holding an integer (Envoy sends 8 little-endian bytes).
pub fn property_u64(path: &[&str]) -> Option<u64> {
    let bytes = property(path)?;
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

/// A property holding a string; invalid UTF-8 is replaced.
pub fn property_string(path: &[&str]) -> Option<String> {
    property(path).map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
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
    hostcalls::set_tick_period(Duration::from_millis(ms)).map_err(HostError::from)
}

/// Tells the host this plugin finished its deferred shutdown.
pub fn done() -> Result<(), HostError> {
    hostcalls::done().map_err(HostError::from)
}

/// Defines a metric; the same name on every worker feeds the same Envoy stat.
pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, HostError> {
    hostcalls::define_metric(kind, name).map_err(HostError::from)
}

/// Adds `delta` to a counter or gauge (gauges accept negative deltas).
pub fn increment_metric(id: u32, delta: i64) -> Result<(), HostError> {
    hostcalls::increment_metric(id, delta).map_err(HostError::from)
}

/// Records a histogram value.
pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    hostcalls::record_metric(id, value).map_err(HostError::from)
}

/// Logs a line; a failing log call is ignored (there is nowhere else to report it).
pub fn log(level: LogLevel, message: &str) {
    let _ = hostcalls::log(level, message);
}
