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
    cfg.rules.iter().position(|r| {
        r.method.as_deref().is_none_or(|m| m == head.method)
            && r.host
                .as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case(host))
            && match &r.path {
                PathMatch::Exact(p) => path == p,
                PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            }
    })
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;
    use crate::testkit;
    use serde_json::{json, Value};

    /// A configuration with four rules (impression, click by host, click, bid with body),
    /// `extra` merged in at the top level.
    pub(crate) fn config(extra: Value) -> Config {
        let base = json!({
            "cluster": "kafka_rest",
            "rules": [
                {"event_type": "impression", "topic": "imps", "method": "GET", "path": {"exact": "/i"}},
                {"event_type": "click", "topic": "clicks", "path": {"prefix": "/c/"}, "host": "Ads.Example.com"},
                {"event_type": "click_any_host", "topic": "clicks", "path": {"prefix": "/c/"}},
                {"event_type": "bid", "topic": "bids", "method": "POST", "path": {"exact": "/bid"}, "capture_body": true}
            ]
        });
        testkit::config(&testkit::with(base, &extra))
    }

    fn head<'a>(method: &'a str, host: &'a str, path: &'a str) -> RequestHead<'a> {
        RequestHead { method, host, path }
    }

    fn m(cfg: &Config, method: &str, host: &str, path: &str) -> Option<usize> {
        match_rule(cfg, head(method, host, path))
    }

    #[test]
    fn matching_method_path_and_query_string() {
        let cfg = config(json!({}));
        assert_eq!(m(&cfg, "GET", "x", "/i"), Some(0));
        assert_eq!(m(&cfg, "GET", "x", "/i?cid=1&x=2"), Some(0));
        // Method is exact and case-sensitive, as HTTP methods are.
        assert_eq!(m(&cfg, "POST", "x", "/i"), None);
        assert_eq!(m(&cfg, "get", "x", "/i"), None);
        // Exact is not prefix.
        assert_eq!(m(&cfg, "GET", "x", "/i/more"), None);
        assert_eq!(m(&cfg, "GET", "x", "/"), None);
        assert_eq!(m(&cfg, "GET", "x", ""), None);
        assert_eq!(m(&cfg, "POST", "x", "/bid?x"), Some(3));
    }

    #[test]
    fn matching_host_ignores_case_and_port_and_first_match_wins() {
        let cfg = config(json!({}));
        // Rule 1 (host-bound) and rule 2 (any host) both match: the first one wins.
        assert_eq!(m(&cfg, "GET", "ads.example.com", "/c/1"), Some(1));
        assert_eq!(m(&cfg, "GET", "ADS.EXAMPLE.COM:8443", "/c/1?x=1"), Some(1));
        assert_eq!(m(&cfg, "DELETE", "ads.example.com:80", "/c/"), Some(1));
        // Another host falls through to the host-less rule.
        assert_eq!(m(&cfg, "GET", "other.example.com", "/c/1"), Some(2));
        assert_eq!(m(&cfg, "GET", "ads.example.com.evil", "/c/1"), Some(2));
        assert_eq!(m(&cfg, "GET", "", "/c/1"), Some(2));
        // Prefix is a plain string prefix on the path without query.
        assert_eq!(m(&cfg, "GET", "x", "/c"), None);
        assert_eq!(m(&cfg, "GET", "x", "/cx/"), None);
        assert_eq!(m(&cfg, "GET", "x", "/x?/c/"), None);
    }

    #[test]
    fn rule_order_decides() {
        let cfg = testkit::config(&json!({"cluster": "k", "rules": [
            {"event_type": "narrow", "topic": "t", "path": {"prefix": "/ad/click"}},
            {"event_type": "wide", "topic": "t", "path": {"prefix": "/ad/"}}
        ]}));
        assert_eq!(m(&cfg, "GET", "h", "/ad/click/9"), Some(0));
        assert_eq!(m(&cfg, "GET", "h", "/ad/imp"), Some(1));
        // Swapped, the narrow rule can never match: validation refuses that configuration, so
        // it is built by hand to show that the scan itself stops at the first match.
        let mut swapped = cfg.clone();
        swapped.rules.swap(0, 1);
        assert_eq!(m(&swapped, "GET", "h", "/ad/click/9"), Some(0));
    }

    #[test]
    fn ipv6_authority_host_rule() {
        let cfg = testkit::config(&json!({"cluster": "k", "rules": [
            {"event_type": "e", "topic": "t", "path": {"prefix": "/"}, "host": "[2001:DB8::1]:443"}
        ]}));
        assert_eq!(cfg.rules[0].host.as_deref(), Some("[2001:db8::1]"));
        assert_eq!(m(&cfg, "GET", "[2001:db8::1]:8443", "/x"), Some(0));
        assert_eq!(m(&cfg, "GET", "[2001:db8::1]", "/x"), Some(0));
        assert_eq!(m(&cfg, "GET", "[2001:db8::2]", "/x"), None);
    }

    #[test]
    fn sampling_rates() {
        let mut cfg = config(json!({}));
        let mut rng = Rng::new(42);
        assert!((0..1000).all(|_| sampled(&cfg.rules[0], &mut rng)));
        cfg.rules[0].sample_rate = 0.0;
        assert!(!(0..1000).any(|_| sampled(&cfg.rules[0], &mut rng)));
        cfg.rules[0].sample_rate = 0.25;
        let n = (0..10_000)
            .filter(|_| sampled(&cfg.rules[0], &mut rng))
            .count();
        assert!((2_200..2_800).contains(&n), "{n}");
    }

    fn query_of(specs: Value, q: &str) -> Vec<(String, String)> {
        let cfg = config(json!({ "query_params": specs }));
        let mut scratch = QueryScratch::default();
        scratch.capture(&cfg.query_params, q);
        scratch
            .found(&cfg.query_params)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn one(specs: Value, q: &str) -> Option<String> {
        query_of(specs, q).into_iter().next().map(|(_, v)| v)
    }

    #[test]
    fn query_decoding() {
        let a = || json!(["a"]);
        assert_eq!(one(a(), "a=x+y%20z").as_deref(), Some("x y z"));
        assert_eq!(one(a(), "a=%E2%82%AC%e2%82%ac").as_deref(), Some("€€"));
        // Invalid escapes stay as written.
        assert_eq!(one(a(), "a=100%25%zz%4").as_deref(), Some("100%%zz%4"));
        assert_eq!(one(a(), "a=%").as_deref(), Some("%"));
        // Invalid UTF-8 after decoding is replaced, not dropped.
        assert_eq!(one(a(), "a=x%FFy").as_deref(), Some("x\u{FFFD}y"));
        // First occurrence wins; `=` inside a value is kept.
        assert_eq!(one(a(), "a=1&a=2").as_deref(), Some("1"));
        assert_eq!(one(a(), "b=0&&a=k=v").as_deref(), Some("k=v"));
        assert_eq!(one(a(), "a").as_deref(), Some(""));
        assert_eq!(one(a(), "a=").as_deref(), Some(""));
        // Names are decoded before comparison, and compared exactly (case-sensitive).
        assert_eq!(
            one(json!(["campaign_id"]), "campaign%5Fid=9").as_deref(),
            Some("9")
        );
        assert_eq!(one(json!(["a b"]), "a+b=1").as_deref(), Some("1"));
        assert_eq!(one(a(), "A=1"), None);
        assert_eq!(one(a(), "ab=1&b=a"), None);
        assert_eq!(one(a(), ""), None);
    }

    #[test]
    fn query_same_source_two_targets() {
        let got = query_of(json!(["cid", {"name": "cid", "as": "campaign"}]), "cid=7");
        assert_eq!(
            got,
            vec![("cid".into(), "7".into()), ("campaign".into(), "7".into())]
        );
    }

    #[test]
    fn query_values_are_bounded_at_a_char_boundary() {
        let long = "x".repeat(5000);
        let v = one(json!(["a"]), &format!("a={long}")).unwrap();
        assert_eq!(v.len(), MAX_QUERY_VALUE_BYTES);
        // '€' is 3 bytes: 1024 is not a multiple of 3, so the cut must not split one.
        let euros = "%E2%82%AC".repeat(600);
        let v = one(json!(["a"]), &format!("a={euros}")).unwrap();
        assert_eq!(v, "€".repeat(MAX_QUERY_VALUE_BYTES / 3));
        // Replacement characters (3 bytes each) cannot push it past the bound either.
        let junk = "%FF".repeat(3000);
        let v = one(json!(["a"]), &format!("a={junk}")).unwrap();
        assert!(v.len() <= MAX_QUERY_VALUE_BYTES && v.chars().all(|c| c == '\u{FFFD}'));
    }

    #[test]
    fn hostile_queries_do_not_panic_and_stay_small() {
        let specs = json!(["a", "b", {"name": "c", "as": "cc"}]);
        // 1 MB of one value.
        let q = format!("a={}", "%41".repeat(350_000));
        assert_eq!(one(specs.clone(), &q).unwrap().len(), MAX_QUERY_VALUE_BYTES);
        // ~300k tiny parameters, the wanted one last.
        let mut q = "x=1&".repeat(250_000);
        q.push_str("c=%ZZ%F0%9F");
        assert_eq!(
            query_of(specs.clone(), &q),
            vec![("cc".into(), "%ZZ\u{FFFD}".into())]
        );
        // Huge names, separators only, lone escapes.
        for q in [
            "z".repeat(1_000_000),
            "&".repeat(1_000_000),
            "=".repeat(1_000_000),
            "%".repeat(1_000_000),
            "%F0".repeat(300_000),
            "+".repeat(1_000_000),
        ] {
            let got = query_of(specs.clone(), &q);
            assert!(got.iter().all(|(_, v)| v.len() <= MAX_QUERY_VALUE_BYTES));
        }
    }
}
