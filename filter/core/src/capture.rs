//! Capture: which requests become events, and the request values an event is written from.
//! Matching runs on every request, so it allocates nothing; everything else runs only for
//! requests that matched a rule and were sampled in.
//!
//! The flow, as the capture session (`crate::session`) drives it:
//! 1. [`match_rule`] on `:method`, `:authority`, `:path` (first match wins), then [`sampled_at`];
//! 2. [`BodyCapture`] over the request body chunks, if some rule captures bodies;
//! 3. at log time, [`QueryScratch::capture`] decodes the allow-listed query parameters, and
//!    `crate::record` writes the record from the request's bytes and the [`Completion`].
//!
//! Every value copied from the request is bounded ([`MAX_QUERY_VALUE_BYTES`],
//! [`MAX_HEADER_VALUE_BYTES`]) so that a hostile request cannot blow up an event; the path and
//! host are kept whole (Envoy already bounds request headers).

use crate::config::{Config, PathMatch, QueryParamSpec, Rule};
use crate::ip;
use crate::rng::Rng;
use base64::Engine as _;
use std::borrow::Cow;

/// Longest query-parameter value kept (after percent-decoding), in bytes; longer values are cut
/// at a character boundary.
pub const MAX_QUERY_VALUE_BYTES: usize = 1024;
/// Longest header value kept (allow-listed headers, user agent, referer, request id), in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 2048;

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

/// The path without its query string.
fn path_only(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

/// Index of the first rule matching the request, or `None`. Allocation-free.
///
/// A rule matches when its method (if any) equals `:method` exactly, its host (if any) equals
/// `:authority` without port, ignoring ASCII case, and its path matches `:path` without the
/// query string: `exact` by equality, `prefix` by plain string prefix (`/ad` also matches
/// `/adx`; write `/ad/` to match a segment).
pub fn match_rule(cfg: &Config, head: RequestHead<'_>) -> Option<usize> {
    let path = path_only(head.path);
    let host = ip::host_without_port(head.host);
    cfg.rules
        .iter()
        .position(|r| rule_matches(r, head.method, host, path))
}

/// Whether `rule` matches a request of `method` to `host` (already without its port) and
/// `path` (already without its query string), as [`match_rule`] describes. The one definition
/// of a rule's match, which the native matchers' tests check their translation against.
#[inline]
pub fn rule_matches(rule: &Rule, method: &str, host: &str, path: &str) -> bool {
    rule.method.as_deref().is_none_or(|m| m == method)
        && rule
            .host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host))
        && match &rule.path {
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
        }
}

/// Whether a request matching `rule` is sampled in.
pub fn sampled(rule: &Rule, rng: &mut Rng) -> bool {
    sampled_at(rule.sample_rate, rng)
}

/// Whether a request is sampled in at `rate` (0.0-1.0); a rate of 1 draws nothing.
pub fn sampled_at(rate: f64, rng: &mut Rng) -> bool {
    rate >= 1.0 || rng.next_f64() < rate
}

/// The allow-listed query parameters of one request, decoded into reusable space: a worker
/// keeps one, so decoding allocates nothing once it has grown to the largest values seen.
#[derive(Debug, Default)]
pub struct QueryScratch {
    /// The decoded values, back to back.
    text: String,
    /// Per allow-list entry, the range of its value in `text`, if the parameter was present.
    found: Vec<Option<(usize, usize)>>,
    /// One value's bytes while it is decoded.
    raw: Vec<u8>,
}

impl QueryScratch {
    /// Captures the allow-listed parameters of a query string (`a=1&b=2`). Names and values
    /// are percent-decoded (`+` is a space, an invalid escape stays as written); the first
    /// occurrence of a name wins; a name without `=` has an empty value. Work is linear in
    /// the query length times the allow-list size, and stops as soon as every parameter is
    /// found.
    pub fn capture(&mut self, specs: &[QueryParamSpec], query: &str) {
        self.text.clear();
        self.found.clear();
        self.found.resize(specs.len(), None);
        if specs.is_empty() || query.is_empty() {
            return;
        }
        // A name's decoded form is at least a third of its raw length (`%XX` → one byte), so
        // a raw name longer than this cannot equal any allowed name: skip it without decoding.
        let longest = specs.iter().map(|s| s.source().len()).max().unwrap_or(0);
        let mut missing = specs.len();
        for pair in query.split('&') {
            if missing == 0 {
                break;
            }
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            if raw_name.is_empty() || raw_name.len() > longest.saturating_mul(3) {
                continue;
            }
            let name = decode_name(raw_name);
            for (spec, slot) in specs.iter().zip(self.found.iter_mut()) {
                if slot.is_none() && spec.source().as_bytes() == name.as_ref() {
                    let start = self.text.len();
                    decode_value_into(raw_value, &mut self.raw, &mut self.text);
                    *slot = Some((start, self.text.len()));
                    missing -= 1;
                }
            }
        }
    }

    /// The captured parameters, in allow-list order, under their target names (`specs` is
    /// the allow-list [`QueryScratch::capture`] ran with).
    pub fn found<'a>(
        &'a self,
        specs: &'a [QueryParamSpec],
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        specs.iter().zip(&self.found).filter_map(|(spec, range)| {
            let (a, b) = (*range)?;
            Some((spec.target(), self.text.get(a..b)?))
        })
    }
}

/// A decoded query name, borrowed when nothing needs decoding (the common case).
fn decode_name(raw: &str) -> Cow<'_, [u8]> {
    if raw.contains(['%', '+']) {
        let mut out = Vec::with_capacity(raw.len());
        percent_decode_into(raw.as_bytes(), usize::MAX, &mut out);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw.as_bytes())
    }
}

/// Appends a decoded query value to `text`: at most [`MAX_QUERY_VALUE_BYTES`], invalid UTF-8
/// replaced; `raw` is scratch space for its bytes.
fn decode_value_into(value: &str, raw: &mut Vec<u8>, text: &mut String) {
    raw.clear();
    if percent_decode_into(value.as_bytes(), MAX_QUERY_VALUE_BYTES, raw) {
        trim_partial_utf8(raw);
    }
    match std::str::from_utf8(raw) {
        Ok(s) => text.push_str(s),
        Err(_) => {
            // Rare (a hostile or broken client): replacement characters may have grown it
            // past the bound.
            let lossy = String::from_utf8_lossy(raw);
            text.push_str(bounded_str(&lossy, MAX_QUERY_VALUE_BYTES));
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` bytes onto `out`, stopping once `limit` bytes
/// are out. Returns whether input was left over.
fn percent_decode_into(raw: &[u8], limit: usize, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        if out.len() - start >= limit {
            return true;
        }
        rest = tail;
        match (b, tail) {
            (b'+', _) => out.push(b' '),
            (b'%', [hi, lo, after @ ..]) => match (hex_val(*hi), hex_val(*lo)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    rest = after;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
    }
    false
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Drops an incomplete UTF-8 sequence at the end of `bytes` (left by cutting at a byte limit),
/// so that a cut text stays text.
fn trim_partial_utf8(bytes: &mut Vec<u8>) {
    // The last sequence starts within the last 4 bytes, at the last non-continuation byte.
    let tail_start = bytes.len().saturating_sub(4);
    let Some(lead_at) = bytes
        .iter()
        .enumerate()
        .skip(tail_start)
        .rev()
        .find(|(_, b)| (**b & 0xC0) != 0x80)
        .map(|(i, _)| i)
    else {
        return;
    };
    let lead = bytes.get(lead_at).copied().unwrap_or(0);
    let need = match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return,
    };
    if bytes.len() - lead_at < need {
        bytes.truncate(lead_at);
    }
}
/// `s` cut to at most `max` bytes at a character boundary.
pub fn bounded_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// [`bounded_str`] of a borrowed or owned text, staying borrowed when it was.
pub fn bounded_cow(s: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(bounded_str(b, max)),
        Cow::Owned(o) => Cow::Owned(bounded_str(&o, max).to_string()),
    }
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
        BodyCapture {
            buf: Vec::new(),
            max,
            truncated: false,
        }
    }
    /// Bytes still wanted (0 once full): the glue reads no more than this from the host.
    pub fn wanted(&self) -> usize {
        self.max.saturating_sub(self.buf.len())
    }
    /// Adds a chunk; `total_len` is the chunk's full size as the host reported it (the glue may
    /// have read only `wanted()` of it), so truncation is known even when not read.
    pub fn push(&mut self, chunk: &[u8], total_len: usize) {
        let keep = self.wanted().min(chunk.len());
        self.buf
            .extend_from_slice(chunk.get(..keep).unwrap_or_default());
        if total_len.max(chunk.len()) > keep {
            self.truncated = true;
        }
    }
    /// Whether the body was longer than the limit and was cut.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
    /// The body as it is written: UTF-8 text as is (a character split by the limit is
    /// dropped), anything else as bytes for base64.
    pub fn view(&self) -> BodyView<'_> {
        let mut kept = self.buf.as_slice();
        if self.truncated {
            // Text cut inside a character is still text: drop the partial character, but only
            // when everything before it is valid (binary bodies keep every byte).
            if let Err(e) = std::str::from_utf8(kept) {
                if e.error_len().is_none() {
                    kept = kept.get(..e.valid_up_to()).unwrap_or_default();
                }
            }
        }
        match std::str::from_utf8(kept) {
            Ok(text) => BodyView::Text(text),
            Err(_) => BodyView::Binary(&self.buf),
        }
    }
}

impl BodyCapture {
    /// Writes the body into an [`crate::Event`] as the record writer writes it (`body`,
    /// `body_base64`, `body_truncated`): for callers that build events themselves (tests,
    /// tools); the filter's own path is `crate::record`.
    pub fn finish(self, event: &mut crate::Event) {
        let (body, base64) = match self.view() {
            BodyView::Text(text) => (text.to_string(), false),
            BodyView::Binary(bytes) => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                true,
            ),
        };
        event.body = Some(body);
        event.body_base64 = base64;
        event.body_truncated = self.truncated;
    }
}

/// A captured body as it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyView<'a> {
    /// Valid UTF-8, written as is.
    Text(&'a str),
    /// Other bytes, written as standard base64 with `body_base64: true`.
    Binary(&'a [u8]),
}

#[cfg(test)]
pub(crate) mod tests;
