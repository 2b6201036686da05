//! Everything the host remembers between calls: the `Store` data.
//!
//! Host functions (hostcalls.rs, wasi.rs) mutate it; the `Host` API (host.rs) reads it and sets
//! the "what is executing now" fields before each callback. Public record types (logs, HTTP
//! calls, metrics) are what tests inspect.

use crate::abi::{LogLevel, MetricKind};
use std::collections::{BTreeMap, HashMap};
use wasmtime::{Memory, StoreLimits, TypedFunc};

/// A header map: raw bytes on purpose (hostile-input tests send invalid UTF-8).
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    /// `proxy_log`.
    ProxyLog,
    /// WASI `fd_write` to fd 1 (Envoy logs it at info).
    Stdout,
    /// WASI `fd_write` to fd 2 (Envoy logs it at error).
    Stderr,
}

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Level (fd 1 → Info, fd 2 → Error, like Envoy).
    pub level: LogLevel,
    /// The message, lossily decoded.
    pub message: String,
    /// The context that was executing.
    pub context_id: u32,
    /// `proxy_log` or a WASI stream.
    pub source: LogSource,
    /// Host clock (wall, ns) at the time of the call.
    pub at_ns: u64,
}

/// An HTTP call the module dispatched with `proxy_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// Token returned to the module.
    pub token: u32,
    /// The context the call was made from (calls die with it, like in Envoy).
    pub context_id: u32,
    /// Envoy cluster name (first argument of `dispatch_http_call`).
    pub upstream: String,
    /// Headers as Envoy would send them: keys lowercased, `content-length` set when the body
    /// is not empty.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Request trailers.
    pub trailers: Vec<(String, String)>,
    /// Timeout in milliseconds (0 = none, as in Envoy).
    pub timeout_ms: u32,
    /// Host clock (wall, ns) at dispatch.
    pub dispatched_at_ns: u64,
}

impl HttpCall {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Body as (lossy) UTF-8.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Deadline on the host clock, if the call has a timeout.
    pub fn deadline_ns(&self) -> Option<u64> {
        (self.timeout_ms > 0)
            .then(|| self.dispatched_at_ns + u64::from(self.timeout_ms) * 1_000_000)
    }
}

/// A metric's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// Kind it was defined with.
    pub kind: MetricKind,
    /// Counter or gauge value (a gauge may go negative here; in Envoy it would wrap).
    pub value: i64,
    /// Every value recorded into a histogram, in order.
    pub recorded: Vec<u64>,
}

/// Per-HTTP-stream state: the maps, body and properties Envoy holds for a stream.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub request_headers: Option<Pairs>,
    pub response_headers: Option<Pairs>,
    /// Whether Envoy still exposes each map (it drops its pointer once the map's callback
    /// returns Continue; `on_log` sees both again).
    pub request_live: bool,
    pub response_live: bool,
    pub request_body: Vec<u8>,
    pub request_body_live: bool,
    pub buffering_request: bool,
    pub properties: BTreeMap<Vec<String>, Vec<u8>>,
}

/// The response being delivered by `proxy_on_http_call_response`.
#[derive(Debug, Default)]
pub(crate) struct CallResponse {
    pub headers: Pairs,
    pub body: Vec<u8>,
}

/// Deterministic random numbers (splitmix64): same seed, same bytes.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(bytes) {
                *dst = src;
            }
        }
    }
}

/// The `Store` data.
pub(crate) struct State {
    pub limits: StoreLimits,
    pub memory: Option<Memory>,
    pub allocate: Option<TypedFunc<i32, i32>>,

    // Configuration.
    pub plugin_config: Vec<u8>,
    pub known_clusters: Option<Vec<String>>,
    pub log_level: LogLevel,
    pub echo_logs: bool,

    // Clock: wall = start + elapsed.
    pub start_time_ns: u64,
    pub elapsed_ns: u64,
    pub rng: Rng,

    // What is executing now.
    pub root_id: u32,
    /// The context of the running callback (the filter never switches it).
    pub context: u32,
    pub configuring: bool,
    pub in_log: bool,
    pub call_response: Option<CallResponse>,

    // Root context.
    pub tick_period_ms: u32,
    pub next_tick_ns: Option<u64>,
    pub pending_done: bool,
    pub root_finished: bool,
    pub done_calls: u32,
    pub rejected_done_calls: u32,

    // Records.
    pub logs: Vec<LogEntry>,
    pub calls: BTreeMap<u32, HttpCall>,
    pub cancelled_calls: Vec<HttpCall>,
    pub next_token: u32,
    pub rejected_calls: u32,
    pub metric_ids: HashMap<u32, (MetricKind, String)>,
    pub metrics: BTreeMap<(MetricKind, String), Metric>,
    pub next_metric: u32,
    pub streams: HashMap<u32, Stream>,
    pub root_properties: BTreeMap<Vec<String>, Vec<u8>>,
    /// Partial lines written to fd 1 / fd 2, logged once their newline arrives.
    pub stdout_partial: Vec<u8>,
    pub stderr_partial: Vec<u8>,
}

impl State {
    pub fn now_ns(&self) -> u64 {
        self.start_time_ns.saturating_add(self.elapsed_ns)
    }

    pub fn push_log(&mut self, level: LogLevel, message: String, source: LogSource) {
        if self.echo_logs {
            eprintln!("[wasm {level:?} ctx={}] {message}", self.context);
        }
        let at_ns = self.now_ns();
        self.logs.push(LogEntry {
            level,
            message,
            context_id: self.context,
            source,
            at_ns,
        });
    }

    /// Appends bytes written to fd 1 (`err == false`) or fd 2 and logs every complete line.
    pub fn write_stdio(&mut self, err: bool, bytes: &[u8]) {
        let mut buf = std::mem::take(self.partial(err));
        buf.extend_from_slice(bytes);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=nl).collect();
            line.pop();
            self.log_stdio(err, &line);
        }
        *self.partial(err) = buf;
    }

    /// Logs what is left of unterminated stdio lines (when a callback ends badly).
    pub fn flush_stdio(&mut self) {
        for err in [false, true] {
            let buf = std::mem::take(self.partial(err));
            if !buf.is_empty() {
                self.log_stdio(err, &buf);
            }
        }
    }

    fn partial(&mut self, err: bool) -> &mut Vec<u8> {
        if err {
            &mut self.stderr_partial
        } else {
            &mut self.stdout_partial
        }
    }

    fn log_stdio(&mut self, err: bool, line: &[u8]) {
        let text = String::from_utf8_lossy(line).into_owned();
        if err {
            self.push_log(LogLevel::Error, text, LogSource::Stderr);
        } else {
            self.push_log(LogLevel::Info, text, LogSource::Stdout);
        }
    }

    /// The root finished its shutdown (`on_done` returned true, or `proxy_done` after
    /// deferring). Envoy then deletes the root context: it gets no more ticks, and its HTTP
    /// calls still pending are cancelled without a callback.
    pub fn finish_root(&mut self) {
        self.root_finished = true;
        let pending = std::mem::take(&mut self.calls);
        self.cancelled_calls.extend(pending.into_values());
    }
}
