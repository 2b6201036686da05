//! Numeric values of the proxy-wasm ABI 0.2.1 and of WASI preview 1 that the host speaks.
//!
//! Kept in one place so the host functions read like the spec (`Status::NotFound`, not `1`).

/// Status codes the host functions return (`WasmResult` in Envoy): the ones the emulated
/// functions can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The key, metric, property or response does not exist.
    NotFound = 1,
    /// Bad argument, or the requested map/buffer is not available in this callback.
    BadArgument = 2,
    /// The input could not be parsed.
    ParseFailure = 4,
    /// A pointer or length outside linear memory.
    InvalidMemoryAccess = 6,
    /// Internal error.
    InternalFailure = 10,
}

/// Log levels of `proxy_log` (Envoy's spdlog levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// trace
    Trace,
    /// debug
    Debug,
    /// info
    Info,
    /// warn
    Warn,
    /// error
    Error,
    /// critical
    Critical,
}

impl LogLevel {
    /// Decodes the ABI value; `None` for values Envoy would reject.
    pub fn from_abi(v: u32) -> Option<LogLevel> {
        Some(match v {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// The filter's answer to a stream callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `Continue` (0).
    Continue,
    /// `Pause` (1, Envoy's StopIteration / StopIterationAndBuffer).
    Pause,
    /// Any other value (Envoy maps 2..4 to further stop variants).
    Other(u32),
}

impl Action {
    pub(crate) fn from_abi(v: i32) -> Action {
        match v {
            0 => Action::Continue,
            1 => Action::Pause,
            other => Action::Other(other as u32),
        }
    }
}

/// Metric kinds of `proxy_define_metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricKind {
    /// Monotonic counter: increments must be > 0 (Envoy answers BadArgument otherwise).
    Counter,
    /// Gauge: increments may be negative; `record` sets it.
    Gauge,
    /// Histogram: only `record` works; every value is kept.
    Histogram,
}

impl MetricKind {
    pub(crate) fn from_abi(v: u32) -> Option<MetricKind> {
        match v {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }

    pub(crate) fn to_abi(self) -> u32 {
        self as u32
    }
}

/// `MapType` values: the three maps the filter reads, and the last valid value.
pub(crate) mod map {
    pub const REQUEST_HEADERS: u32 = 0;
    pub const REQUEST_TRAILERS: u32 = 1;
    pub const RESPONSE_HEADERS: u32 = 2;
    pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
    pub const HTTP_CALL_RESPONSE_TRAILERS: u32 = 7;
}

/// `BufferType` values the filter reads.
pub(crate) mod buffer {
    pub const HTTP_REQUEST_BODY: u32 = 0;
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    pub const PLUGIN_CONFIGURATION: u32 = 7;
}

/// WASI preview 1 errno values the emulated functions answer.
pub(crate) mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
}
