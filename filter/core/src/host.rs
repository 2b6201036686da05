//! What the core needs from the proxy, as one trait: the glue implements [`Host`] over the
//! proxy-wasm ABI, the wasm-host tests' native drivers and the JavaScript preview implement it
//! over plain values. Every decision stays on this side of the trait, so the filter, the tests
//! and the preview run the very same code.
//!
//! The reads a capture makes ([`Host::request_headers`], [`Host::response_status`],
//! [`Host::property`], [`Host::request_body`]) are each one data-returning host call in Envoy
//! (about a microsecond each in Envoy 1.40's V8, as measured): the core asks only for what the configured fields
//! need, and asks once.

use crate::encode::HttpRequest;
use crate::headers::HeaderPairs;

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

impl HostError {
    /// The error for a proxy-wasm status code (`0` is not an error and maps to `Other(0)`).
    pub fn from_status(code: u32) -> HostError {
        match code {
            1 => HostError::NotFound,
            2 => HostError::BadArgument,
            10 => HostError::InternalFailure,
            other => HostError::Other(other),
        }
    }
}

/// A stream property the capture may read (`get_property` paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// `request.duration`: nanoseconds, 8 bytes little-endian.
    RequestDuration,
    /// `request.total_size`: bytes, 8 bytes little-endian.
    RequestTotalSize,
    /// `response.total_size`: bytes, 8 bytes little-endian.
    ResponseTotalSize,
    /// `xds.route_name`: text.
    RouteName,
    /// `xds.cluster_name`: text.
    ClusterName,
    /// `source.address`: the peer, `ip:port`.
    SourceAddress,
    /// `plugin_name`: the plugin's `name` in Envoy's configuration.
    PluginName,
}

impl Property {
    /// The ABI serialisation of the path: segments joined by NUL.
    pub fn path(self) -> &'static str {
        match self {
            Property::RequestDuration => "request\0duration",
            Property::RequestTotalSize => "request\0total_size",
            Property::ResponseTotalSize => "response\0total_size",
            Property::RouteName => "xds\0route_name",
            Property::ClusterName => "xds\0cluster_name",
            Property::SourceAddress => "source\0address",
            Property::PluginName => "plugin_name",
        }
    }
}

/// Log levels of the proxy-wasm ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Trace.
    Trace = 0,
    /// Debug.
    Debug = 1,
    /// Info.
    Info = 2,
    /// Warn.
    Warn = 3,
    /// Error.
    Error = 4,
    /// Critical.
    Critical = 5,
}

/// Metric kinds of the proxy-wasm ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter = 0,
    /// Up and down.
    Gauge = 1,
    /// Distribution of recorded values.
    Histogram = 2,
}

/// The proxy, as the core sees it. Reads refer to the stream whose callback is running (for the
/// access logger: the request being logged).
pub trait Host {
    /// Every request header, in one call.
    fn request_headers(&mut self) -> Option<HeaderPairs>;
    /// `:status` of the response header map.
    fn response_status(&mut self) -> Option<u16>;
    /// A property's raw bytes.
    fn property(&mut self, property: Property) -> Option<Vec<u8>>;
    /// Up to `max` bytes of the request body chunk being delivered.
    fn request_body(&mut self, max: usize) -> Option<Vec<u8>>;
    /// `:status` of the HTTP call response being handled.
    fn call_response_status(&mut self) -> Option<u16>;
    /// Up to `max` bytes of the HTTP call response body being handled.
    fn call_response_body(&mut self, max: usize) -> Option<Vec<u8>>;
    /// Dispatches a batch call to an Envoy cluster; returns the call's token.
    fn dispatch(
        &mut self,
        cluster: &str,
        request: &HttpRequest,
        timeout_ms: u64,
    ) -> Result<u32, HostError>;
    /// Sets the calling root context's tick period.
    fn set_tick_period_ms(&mut self, ms: u64) -> Result<(), HostError>;
    /// Ends the calling root context's deferred shutdown.
    fn done(&mut self) -> Result<(), HostError>;
    /// Writes a log line.
    fn log(&mut self, level: LogLevel, message: &str);
    /// Defines a metric; the same name on every worker feeds the same Envoy stat.
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Result<u32, HostError>;
    /// Adds `delta` to a counter (> 0 only) or gauge.
    fn increment_metric(&mut self, id: u32, delta: i64) -> Result<(), HostError>;
    /// Records a histogram value.
    fn record_metric(&mut self, id: u32, value: u64) -> Result<(), HostError>;
}

/// A property holding an integer (8 little-endian bytes).
pub fn property_u64(host: &mut dyn Host, property: Property) -> Option<u64> {
    let bytes = host.property(property)?;
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

/// A property holding text; invalid UTF-8 is replaced, an empty value is `None`.
pub fn property_string(host: &mut dyn Host, property: Property) -> Option<String> {
    let bytes = host.property(property)?;
    let s = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    (!s.is_empty()).then_some(s)
}

/// A plain in-memory [`Host`]: the stream being handled is whatever the caller sets, dispatched
/// calls are kept for the caller to answer, stats are summed by name. The native drivers of the
/// tests (the core's own, the wasm host's dual scenarios) play Envoy with it.
#[derive(Debug, Default)]
pub struct FakeHost {
    /// The request headers of the stream being handled.
    pub request: Option<HeaderPairs>,
    /// Its response `:status`.
    pub status: Option<u16>,
    /// Its properties, by path.
    pub properties: Vec<(Property, Vec<u8>)>,
    /// Its request body chunk.
    pub body: Vec<u8>,
    /// The answer being delivered: status and body.
    pub answer: (Option<u16>, Vec<u8>),
    /// Calls dispatched and not yet taken by the caller.
    pub calls: Vec<FakeCall>,
    /// Metrics by id: name and value.
    pub metrics: Vec<(String, i64)>,
    /// Log lines.
    pub logs: Vec<(LogLevel, String)>,
    /// Times `done()` was called.
    pub done_calls: u32,
    /// `plugin_name` of the running context.
    pub plugin_name: Option<String>,
    /// Refuse every dispatch (an unknown cluster).
    pub refuse_dispatch: bool,
    next_token: u32,
    /// Kinds of `metrics`, by id: `record_metric` sets a gauge, adds to a counter.
    metric_kinds: Vec<MetricKind>,
}

/// A call a [`FakeHost`] dispatched.
#[derive(Debug, Clone)]
pub struct FakeCall {
    /// Its token.
    pub token: u32,
    /// The cluster it went to.
    pub cluster: String,
    /// The request.
    pub request: HttpRequest,
    /// Its timeout.
    pub timeout_ms: u64,
}

impl FakeHost {
    /// A metric's value by name (0 if never defined).
    pub fn metric(&self, name: &str) -> i64 {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |m| m.1)
    }
}

impl Host for FakeHost {
    fn request_headers(&mut self) -> Option<HeaderPairs> {
        self.request.clone()
    }
    fn response_status(&mut self) -> Option<u16> {
        self.status
    }
    fn property(&mut self, property: Property) -> Option<Vec<u8>> {
        if property == Property::PluginName {
            return self.plugin_name.clone().map(String::into_bytes);
        }
        self.properties
            .iter()
            .find(|(p, _)| *p == property)
            .map(|(_, v)| v.clone())
    }
    fn request_body(&mut self, max: usize) -> Option<Vec<u8>> {
        Some(self.body.iter().copied().take(max).collect())
    }
    fn call_response_status(&mut self) -> Option<u16> {
        self.answer.0
    }
    fn call_response_body(&mut self, max: usize) -> Option<Vec<u8>> {
        Some(self.answer.1.iter().copied().take(max).collect())
    }
    fn dispatch(
        &mut self,
        cluster: &str,
        request: &HttpRequest,
        timeout_ms: u64,
    ) -> Result<u32, HostError> {
        if self.refuse_dispatch {
            return Err(HostError::BadArgument);
        }
        self.next_token = self.next_token.wrapping_add(1);
        self.calls.push(FakeCall {
            token: self.next_token,
            cluster: cluster.to_string(),
            request: request.clone(),
            timeout_ms,
        });
        Ok(self.next_token)
    }
    fn set_tick_period_ms(&mut self, _: u64) -> Result<(), HostError> {
        Ok(())
    }
    fn done(&mut self) -> Result<(), HostError> {
        self.done_calls += 1;
        Ok(())
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push((level, message.to_string()));
    }
    fn define_metric(&mut self, kind: MetricKind, name: &str) -> Result<u32, HostError> {
        if let Some(i) = self.metrics.iter().position(|(n, _)| n == name) {
            return u32::try_from(i).map_err(|_| HostError::InternalFailure);
        }
        self.metrics.push((name.to_string(), 0));
        self.metric_kinds.push(kind);
        u32::try_from(self.metrics.len() - 1).map_err(|_| HostError::InternalFailure)
    }
    fn increment_metric(&mut self, id: u32, delta: i64) -> Result<(), HostError> {
        let m = self
            .metrics
            .get_mut(id as usize)
            .ok_or(HostError::NotFound)?;
        m.1 = m.1.saturating_add(delta);
        Ok(())
    }
    /// As Envoy: sets a gauge, adds to a counter; histogram values are not kept.
    fn record_metric(&mut self, id: u32, value: u64) -> Result<(), HostError> {
        let kind = self.metric_kinds.get(id as usize).copied();
        let m = self
            .metrics
            .get_mut(id as usize)
            .ok_or(HostError::NotFound)?;
        let value = i64::try_from(value).unwrap_or(i64::MAX);
        match kind {
            Some(MetricKind::Gauge) => m.1 = value,
            Some(MetricKind::Counter) => m.1 = m.1.saturating_add(value),
            _ => {}
        }
        Ok(())
    }
}
