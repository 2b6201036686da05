//! Capture: which requests become events, and how an [`Event`] is built from what the glue
//! observes. Matching runs on every request, so it allocates nothing; everything else runs only
//! for requests that matched a rule and were sampled in.
//!
//! STUB: interfaces agreed; implementation pending.

use crate::config::{Config, Rule};
use crate::event::Event;
use crate::rng::Rng;

/// Read access to the request headers the glue has (lower-case names).
pub trait HeaderSource {
    /// The value of header `name`, if present.
    fn header(&self, name: &str) -> Option<String>;
}

/// What is known of the request when its headers arrive.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:authority` (may carry a port).
    pub host: &'a str,
    /// `:path`, including any query string.
    pub path: &'a str,
}

/// What is known when the stream is done (`on_log`).
#[derive(Debug, Clone, Default)]
pub struct Completion {
    /// `response.code`.
    pub status: Option<u16>,
    /// `request.duration`, microseconds.
    pub duration_us: Option<u64>,
    /// `request.total_size` or `request.size`.
    pub request_bytes: Option<u64>,
    /// `response.total_size` or `response.size`.
    pub response_bytes: Option<u64>,
    /// `xds.route_name`.
    pub route: Option<String>,
    /// `xds.cluster_name`.
    pub upstream: Option<String>,
    /// `source.address` (peer, `ip:port`).
    pub peer_address: Option<String>,
}

/// Index of the first rule matching the request, or `None`. Allocation-free.
pub fn match_rule(cfg: &Config, head: RequestHead<'_>) -> Option<usize> {
    let _ = (cfg, head);
    None
}

/// Whether a request matching `rule` is sampled in.
pub fn sampled(rule: &Rule, rng: &mut Rng) -> bool {
    rule.sample_rate >= 1.0 || rng.next_f64() < rule.sample_rate
}

/// Starts an event for a matched request: id, type, timestamp, method, host, path, query
/// allow-list, header allow-list, user agent, referer, request id. The client IP and response
/// fields are filled in by [`finish`].
pub fn begin(
    cfg: &Config,
    rule: usize,
    id: String,
    ts_ms: u64,
    head: RequestHead<'_>,
    headers: &dyn HeaderSource,
) -> Event {
    let _ = (cfg, rule, headers);
    Event {
        v: crate::event::SCHEMA_VERSION,
        id,
        ts: ts_ms,
        method: head.method.to_string(),
        host: head.host.to_string(),
        path: head.path.to_string(),
        ..Event::default()
    }
}

/// Completes an event in `on_log`: response fields, and the client IP per the configured mode
/// (from `x-forwarded-for` with `trusted_hops`, else the peer address).
pub fn finish(cfg: &Config, event: &mut Event, xff: Option<&str>, done: Completion) {
    let _ = (cfg, event, xff, done);
}

/// Accumulates a request body up to a byte limit, across chunks.
#[derive(Debug, Clone, Default)]
pub struct BodyCapture {
    buf: Vec<u8>,
    max: usize,
    truncated: bool,
}

impl BodyCapture {
    /// A capture keeping at most `max` bytes.
    pub fn new(max: usize) -> BodyCapture {
        BodyCapture { buf: Vec::new(), max, truncated: false }
    }
    /// Bytes still wanted (0 once full): the glue reads no more than this from the host.
    pub fn wanted(&self) -> usize {
        self.max.saturating_sub(self.buf.len())
    }
    /// Adds a chunk; `total_len` is the chunk's full size as the host reported it (the glue may
    /// have read only `wanted()` of it), so truncation is known even when not read.
    pub fn push(&mut self, chunk: &[u8], total_len: usize) {
        let _ = (chunk, total_len);
    }
    /// Writes the body into the event (`body`, `body_base64`, `body_truncated`).
    pub fn finish(self, event: &mut Event) {
        let _ = event;
    }
}
