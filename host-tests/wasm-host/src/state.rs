//! Everything the host remembers between calls: the `Store` data.
//!
//! Host functions (hostcalls.rs, wasi.rs) mutate it; the `Host` API (host.rs) reads it and sets
//! the "what is executing now" fields before each callback. The public record types (logs, HTTP
//! calls) are what tests inspect; metrics they read through `Host::metric`/`Host::histogram`.

use crate::abi::{LogLevel, MetricKind};
use crate::host::HostOptions;
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
pub(crate) struct Metric {
    /// Kind it was defined with.
    pub kind: MetricKind,
    /// Counter or gauge value (a gauge may go negative here; in Envoy it would wrap).
    pub value: i64,
    /// Every value recorded into a histogram, in order.
    pub recorded: Vec<u64>,
}

/// One of a stream's header maps, and whether Envoy still exposes it (it drops its pointer
/// once the map's callback returns Continue; `on_log` sees both again).
#[derive(Debug, Default)]
pub(crate) struct Headers {
    pub map: Option<Pairs>,
    pub held: bool,
}

/// Per-HTTP-stream state: the maps, body and properties Envoy holds for a stream.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub request: Headers,
    pub response: Headers,
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

/// WASI `random_get`'s generator: the core's SplitMix64, so the same seed gives the same bytes.
#[derive(Debug)]
pub(crate) struct Rng(pub adtap_core::rng::Rng);

impl Default for Rng {
    fn default() -> Self {
        Rng(adtap_core::rng::Rng::new(0))
    }
}

impl Rng {
    /// Fills `buf`, 8 bytes (little-endian) per draw.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.0.next_u64().to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(bytes) {
                *dst = src;
            }
        }
    }
}

/// The root context's id (Envoy gives the root the first id; streams count on from it).
pub(crate) const ROOT_ID: u32 = 1;

/// The `Store` data.
#[derive(Default)]
pub(crate) struct State {
    pub limits: StoreLimits,
    pub memory: Option<Memory>,
    pub allocate: Option<TypedFunc<i32, i32>>,

    /// What the test chose; `plugin_config` and `start_time_ns` change as the test says.
    pub opts: HostOptions,
    /// Clock: wall = `opts.start_time_ns` + elapsed.
    pub elapsed_ns: u64,
    pub rng: Rng,

    // What is executing now.
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
        self.opts.start_time_ns.saturating_add(self.elapsed_ns)
    }

    pub fn push_log(&mut self, level: LogLevel, message: String, source: LogSource) {
        if self.opts.echo_logs {
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

    /// Appends bytes written to fd 1 (`stderr == false`) or fd 2 and logs every complete line.
    pub fn write_stdio(&mut self, stderr: bool, bytes: &[u8]) {
        let mut buf = std::mem::take(self.partial(stderr));
        buf.extend_from_slice(bytes);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=nl).collect();
            line.pop();
            self.log_stdio(stderr, &line);
        }
        *self.partial(stderr) = buf;
    }

    /// Logs what is left of unterminated stdio lines (when a callback ends badly).
    pub fn flush_stdio(&mut self) {
        for stderr in [false, true] {
            let buf = std::mem::take(self.partial(stderr));
            if !buf.is_empty() {
                self.log_stdio(stderr, &buf);
            }
        }
    }

    fn partial(&mut self, stderr: bool) -> &mut Vec<u8> {
        if stderr {
            &mut self.stderr_partial
        } else {
            &mut self.stdout_partial
        }
    }

    /// Envoy logs fd 1 at info, fd 2 at error.
    fn log_stdio(&mut self, stderr: bool, line: &[u8]) {
        let (level, source) = if stderr {
            (LogLevel::Error, LogSource::Stderr)
        } else {
            (LogLevel::Info, LogSource::Stdout)
        };
        self.push_log(level, String::from_utf8_lossy(line).into_owned(), source);
    }

    /// Cancels the pending HTTP calls `dead` picks: they end without a callback, as Envoy
    /// cancels the calls of a context it destroys.
    pub fn cancel_calls(&mut self, dead: impl Fn(&HttpCall) -> bool) {
        let (gone, kept) = std::mem::take(&mut self.calls)
            .into_iter()
            .partition::<BTreeMap<_, _>, _>(|(_, c)| dead(c));
        self.calls = kept;
        self.cancelled_calls.extend(gone.into_values());
    }

    /// The root finished its shutdown (`on_done` returned true, or `proxy_done` after
    /// deferring). Envoy then deletes the root context: it gets no more ticks, and its HTTP
    /// calls still pending are cancelled without a callback.
    pub fn finish_root(&mut self) {
        self.root_finished = true;
        self.cancel_calls(|_| true);
    }
}
