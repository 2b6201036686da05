//! Capture: which requests become events, and how an [`Event`] is built from what the glue
//! observes. Matching runs on every request, so it allocates nothing; everything else runs only
//! for requests that matched a rule and were sampled in.
//!
//! The flow, as the glue drives it:
//! 1. [`match_rule`] on `:method`, `:authority`, `:path` (first match wins), then [`sampled`];
//! 2. [`begin`] at request headers: request fields and allow-lists;
//! 3. [`BodyCapture`] over the request body chunks, if the rule captures bodies;
//! 4. [`finish`] in `on_log`: response fields and the client IP (see [`crate::ip`]).
//!
//! Every value copied from the request is bounded ([`MAX_QUERY_VALUE_BYTES`],
//! [`MAX_HEADER_VALUE_BYTES`]) so that a hostile request cannot blow up an event; the path and
//! host are kept whole (Envoy already bounds request headers).

use crate::config::{Config, PathMatch, QueryParamSpec, Rule};
use crate::event::{Event, SCHEMA_VERSION};
use crate::ip;
use crate::rng::Rng;
use base64::Engine as _;
use std::borrow::Cow;

/// Longest query-parameter value kept (after percent-decoding), in bytes; longer values are cut
/// at a character boundary.
pub const MAX_QUERY_VALUE_BYTES: usize = 1024;
/// Longest header value kept (allow-listed headers, user agent, referer, request id), in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 2048;

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
    let header = |name: &str| {
        headers
            .header(name)
            .map(|v| bounded(v, MAX_HEADER_VALUE_BYTES))
    };
    let query = head.path.split_once('?').map_or("", |(_, q)| q);
    Event {
        v: SCHEMA_VERSION,
        id,
        event_type: cfg
            .rules
            .get(rule)
            .map(|r| r.event_type.clone())
            .unwrap_or_default(),
        ts: ts_ms,
        request_id: header("x-request-id"),
        method: head.method.to_string(),
        host: head.host.to_string(),
        path: path_only(head.path).to_string(),
        query: capture_query(&cfg.query_params, query),
        headers: cfg
            .headers
            .iter()
            .filter_map(|name| header(name).map(|v| (name.clone(), v)))
            .collect(),
        user_agent: header("user-agent"),
        referer: header("referer"),
        ..Event::default()
    }
}

/// Completes an event in `on_log`: response fields, and the client IP per the configured mode
/// (from `x-forwarded-for` with `trusted_hops`, else the peer address).
pub fn finish(cfg: &Config, event: &mut Event, xff: Option<&str>, done: Completion) {
    event.status = done.status;
    event.duration_us = done.duration_us;
    event.request_bytes = done.request_bytes;
    event.response_bytes = done.response_bytes;
    event.route = done.route;
    event.upstream = done.upstream;
    let ipc = &cfg.client_ip;
    event.client_ip = ip::client_addr(xff, ipc.trusted_hops, done.peer_address.as_deref())
        .and_then(|addr| ip::render(ipc.mode, ipc.salt.as_deref(), addr));
}

/// Captures the allow-listed parameters of a query string (`a=1&b=2`), in allow-list order,
/// under their target names. Names and values are percent-decoded (`+` is a space, an invalid
/// escape stays as written); the first occurrence of a name wins; a name without `=` has an
/// empty value. Work is linear in the query length times the allow-list size, and stops as
/// soon as every parameter is found.
fn capture_query(specs: &[QueryParamSpec], query: &str) -> Vec<(String, String)> {
    if specs.is_empty() || query.is_empty() {
        return Vec::new();
    }
    // A name's decoded form is at least a third of its raw length (`%XX` → one byte), so a raw
    // name longer than this cannot equal any allowed name: skip it without decoding.
    let longest = specs.iter().map(|s| s.source().len()).max().unwrap_or(0);
    let mut found: Vec<Option<String>> = vec![None; specs.len()];
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
        for (spec, slot) in specs.iter().zip(found.iter_mut()) {
            if slot.is_none() && spec.source().as_bytes() == name.as_ref() {
                *slot = Some(decode_value(raw_value));
                missing -= 1;
            }
        }
    }
    specs
        .iter()
        .zip(found)
        .filter_map(|(spec, v)| v.map(|v| (spec.target().to_string(), v)))
        .collect()
}

/// A decoded query name, borrowed when nothing needs decoding (the common case).
fn decode_name(raw: &str) -> Cow<'_, [u8]> {
    if raw.contains(['%', '+']) {
        Cow::Owned(percent_decode(raw.as_bytes(), usize::MAX).0)
    } else {
        Cow::Borrowed(raw.as_bytes())
    }
}

/// A decoded query value, at most [`MAX_QUERY_VALUE_BYTES`], invalid UTF-8 replaced.
fn decode_value(raw: &str) -> String {
    let (mut bytes, cut) = percent_decode(raw.as_bytes(), MAX_QUERY_VALUE_BYTES);
    if cut {
        trim_partial_utf8(&mut bytes);
    }
    let s = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    // Replacement characters may have grown it past the bound.
    bounded(s, MAX_QUERY_VALUE_BYTES)
}

/// Decodes `application/x-www-form-urlencoded` bytes, stopping once `limit` bytes are out.
/// Returns the bytes and whether input was left over.
fn percent_decode(raw: &[u8], limit: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(raw.len().min(limit));
    let mut rest = raw;
    while let Some((&b, tail)) = rest.split_first() {
        if out.len() >= limit {
            return (out, true);
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
    (out, false)
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
fn bounded(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
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
    /// Writes the body into the event (`body`, `body_base64`, `body_truncated`): UTF-8 text as
    /// is (a character split by the limit is dropped), anything else as standard base64.
    pub fn finish(self, event: &mut Event) {
        let mut buf = self.buf;
        if self.truncated {
            // Text cut inside a character is still text: drop the partial character, but only
            // when everything before it is valid (binary bodies keep every byte).
            if let Err(e) = std::str::from_utf8(&buf) {
                if e.error_len().is_none() {
                    buf.truncate(e.valid_up_to());
                }
            }
        }
        let (body, b64) = match String::from_utf8(buf) {
            Ok(text) => (text, false),
            Err(e) => (
                base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
                true,
            ),
        };
        event.body = Some(body);
        event.body_base64 = b64;
        event.body_truncated = self.truncated;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::{json, Value};

    fn config(extra: Value) -> Config {
        let mut v = json!({
            "cluster": "kafka_rest",
            "rules": [
                {"event_type": "impression", "topic": "imps", "method": "GET", "path": {"exact": "/i"}},
                {"event_type": "click", "topic": "clicks", "path": {"prefix": "/c/"}, "host": "Ads.Example.com"},
                {"event_type": "click_any_host", "topic": "clicks", "path": {"prefix": "/c/"}},
                {"event_type": "bid", "topic": "bids", "method": "POST", "path": {"exact": "/bid"}, "capture_body": true}
            ]
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        Config::parse(v.to_string().as_bytes()).unwrap()
    }

    struct Headers(Vec<(&'static str, String)>);
    impl HeaderSource for Headers {
        fn header(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
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
        let cfg = Config::parse(
            json!({"cluster": "k", "rules": [
                {"event_type": "narrow", "topic": "t", "path": {"prefix": "/ad/click"}},
                {"event_type": "wide", "topic": "t", "path": {"prefix": "/ad/"}}
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(m(&cfg, "GET", "h", "/ad/click/9"), Some(0));
        assert_eq!(m(&cfg, "GET", "h", "/ad/imp"), Some(1));
        let swapped = Config::parse(
            json!({"cluster": "k", "rules": [
                {"event_type": "wide", "topic": "t", "path": {"prefix": "/ad/"}},
                {"event_type": "narrow", "topic": "t", "path": {"prefix": "/ad/click"}}
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(m(&swapped, "GET", "h", "/ad/click/9"), Some(0));
    }

    #[test]
    fn ipv6_authority_host_rule() {
        let cfg = Config::parse(
            json!({"cluster": "k", "rules": [
                {"event_type": "e", "topic": "t", "path": {"prefix": "/"}, "host": "[2001:DB8::1]:443"}
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
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

    #[test]
    fn begin_fills_every_request_field() {
        let cfg = config(json!({
            "query_params": ["campaign_id", {"name": "crid", "as": "creative"}, "absent", {"name": "cb"}],
            "headers": ["X-Campaign", "accept-language", "x-missing"]
        }));
        let hdrs = Headers(vec![
            ("x-request-id", "req-1".into()),
            ("user-agent", "Mozilla/5.0".into()),
            ("referer", "https://pub.example/page".into()),
            ("cookie", "session=SECRET".into()),
            ("authorization", "Bearer SECRET".into()),
            ("accept-language", "fr".into()),
            ("x-campaign", "c-9".into()),
        ]);
        let ev = begin(
            &cfg,
            1,
            "00ab-1".into(),
            1_700_000_000_123,
            head(
                "GET",
                "Ads.Example.com:8443",
                "/c/x?crid=cr%2D7&campaign_id=42&cb&z=1",
            ),
            &hdrs,
        );
        assert_eq!(ev.v, SCHEMA_VERSION);
        assert_eq!(ev.id, "00ab-1");
        assert_eq!(ev.event_type, "click");
        assert_eq!(ev.ts, 1_700_000_000_123);
        assert_eq!(ev.request_id.as_deref(), Some("req-1"));
        assert_eq!(ev.method, "GET");
        assert_eq!(ev.host, "Ads.Example.com:8443");
        assert_eq!(ev.path, "/c/x");
        // Allow-list order, renamed, absent skipped, bare name has an empty value.
        let q = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            ev.query,
            vec![q("campaign_id", "42"), q("creative", "cr-7"), q("cb", "")]
        );
        // Lower-case names in allow-list order; Cookie and Authorization not named, not taken.
        assert_eq!(
            ev.headers,
            vec![q("x-campaign", "c-9"), q("accept-language", "fr")]
        );
        assert_eq!(ev.user_agent.as_deref(), Some("Mozilla/5.0"));
        assert_eq!(ev.referer.as_deref(), Some("https://pub.example/page"));
        let json = serde_json::to_string(&ev).unwrap();
        assert!(!json.contains("SECRET"), "{json}");
        // Response-side fields wait for `finish`.
        assert_eq!(
            (ev.status, ev.client_ip.clone(), ev.body.clone()),
            (None, None, None)
        );
    }

    #[test]
    fn begin_without_optional_headers_or_query() {
        let cfg = config(json!({"query_params": ["cid"], "headers": ["x-a"]}));
        let ev = begin(
            &cfg,
            0,
            "id".into(),
            5,
            head("GET", "h", "/i"),
            &Headers(vec![]),
        );
        assert_eq!(ev.event_type, "impression");
        assert_eq!(ev.path, "/i");
        assert!(ev.query.is_empty() && ev.headers.is_empty());
        assert_eq!(
            (ev.request_id, ev.user_agent, ev.referer),
            (None, None, None)
        );
        // An index past the rules (a glue bug) gives an event with no type, not a panic.
        let ev = begin(
            &cfg,
            99,
            "id".into(),
            5,
            head("GET", "h", "/i?"),
            &Headers(vec![]),
        );
        assert_eq!(ev.event_type, "");
        assert_eq!(ev.path, "/i");
    }

    #[test]
    fn cookie_and_authorization_captured_only_when_named() {
        let cfg = config(json!({"headers": ["Cookie", "Authorization"]}));
        let hdrs = Headers(vec![
            ("cookie", "a=1".into()),
            ("authorization", "Basic x".into()),
        ]);
        let ev = begin(&cfg, 0, "id".into(), 0, head("GET", "h", "/i"), &hdrs);
        assert_eq!(
            ev.headers,
            vec![
                ("cookie".to_string(), "a=1".to_string()),
                ("authorization".to_string(), "Basic x".to_string())
            ]
        );
    }

    fn query_of(specs: Value, q: &str) -> Vec<(String, String)> {
        let cfg = config(json!({ "query_params": specs }));
        let path = format!("/i?{q}");
        begin(
            &cfg,
            0,
            "id".into(),
            0,
            head("GET", "h", &path),
            &Headers(vec![]),
        )
        .query
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
    fn header_values_are_bounded() {
        let cfg = config(json!({"headers": ["x-big"]}));
        let big = "é".repeat(3000); // 6000 bytes, 2 per char
        let hdrs = Headers(vec![("x-big", big.clone()), ("user-agent", big)]);
        let ev = begin(&cfg, 0, "id".into(), 0, head("GET", "h", "/i"), &hdrs);
        assert_eq!(ev.headers[0].1.len(), MAX_HEADER_VALUE_BYTES);
        assert_eq!(ev.user_agent.unwrap().len(), MAX_HEADER_VALUE_BYTES);
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

    fn done(peer: Option<&str>) -> Completion {
        Completion {
            status: Some(204),
            duration_us: Some(1234),
            request_bytes: Some(300),
            response_bytes: Some(45),
            route: Some("ads_route".into()),
            upstream: Some("ad_server".into()),
            peer_address: peer.map(str::to_string),
        }
    }

    fn client_ip(client_ip: Value, xff: Option<&str>, peer: Option<&str>) -> Option<String> {
        let cfg = config(json!({ "client_ip": client_ip }));
        let mut ev = Event::default();
        finish(&cfg, &mut ev, xff, done(peer));
        ev.client_ip
    }

    #[test]
    fn finish_fills_response_fields() {
        let cfg = config(json!({}));
        let mut ev = Event::default();
        finish(&cfg, &mut ev, None, done(Some("203.0.113.9:5555")));
        assert_eq!(ev.status, Some(204));
        assert_eq!(ev.duration_us, Some(1234));
        assert_eq!(ev.request_bytes, Some(300));
        assert_eq!(ev.response_bytes, Some(45));
        assert_eq!(ev.route.as_deref(), Some("ads_route"));
        assert_eq!(ev.upstream.as_deref(), Some("ad_server"));
        // Default mode is truncate.
        assert_eq!(ev.client_ip.as_deref(), Some("203.0.113.0"));
        let mut ev = Event::default();
        finish(&cfg, &mut ev, None, Completion::default());
        assert_eq!(ev, Event::default());
    }

    #[test]
    fn ip_modes_v4() {
        let peer = Some("203.0.113.77:40000");
        assert_eq!(
            client_ip(json!({"mode": "full"}), None, peer).as_deref(),
            Some("203.0.113.77")
        );
        assert_eq!(
            client_ip(json!({"mode": "truncate"}), None, peer).as_deref(),
            Some("203.0.113.0")
        );
        assert_eq!(client_ip(json!({"mode": "omit"}), None, peer), None);
        let h = client_ip(json!({"mode": "hash", "salt": "s1"}), None, peer).unwrap();
        assert_eq!(h, crate::ip::hash("s1", "203.0.113.77".parse().unwrap()));
        assert_eq!(h.len(), 32);
        assert!(!h.contains("203"));
        // Same client, same hash, whatever its port; another salt, another hash.
        assert_eq!(
            client_ip(
                json!({"mode": "hash", "salt": "s1"}),
                None,
                Some("203.0.113.77:1")
            ),
            Some(h.clone())
        );
        assert_ne!(
            client_ip(json!({"mode": "hash", "salt": "s2"}), None, peer),
            Some(h)
        );
    }

    #[test]
    fn ip_modes_v6() {
        let peer = Some("[2001:db8:1:2:3:4:5:6]:443");
        assert_eq!(
            client_ip(json!({"mode": "full"}), None, peer).as_deref(),
            Some("2001:db8:1:2:3:4:5:6")
        );
        assert_eq!(
            client_ip(json!({"mode": "truncate"}), None, peer).as_deref(),
            Some("2001:db8:1::")
        );
        assert_eq!(client_ip(json!({"mode": "omit"}), None, peer), None);
        assert_eq!(
            client_ip(
                json!({"mode": "hash", "salt": "k"}),
                None,
                Some("2001:db8::1")
            )
            .as_deref(),
            Some("b90dd17aeb02aa9754659599d92f0b2e")
        );
        // A v4 client on a dual-stack socket is truncated as v4.
        assert_eq!(
            client_ip(
                json!({"mode": "truncate"}),
                None,
                Some("[::ffff:198.51.100.7]:80")
            )
            .as_deref(),
            Some("198.51.100.0")
        );
    }

    #[test]
    fn ip_from_xff_with_trusted_hops() {
        let xff = Some("192.0.2.1, 2001:db8:aa::1, 198.51.100.20");
        let peer = Some("10.0.0.2:1000");
        let full = |hops: u32| json!({"mode": "full", "trusted_hops": hops});
        assert_eq!(client_ip(full(0), xff, peer).as_deref(), Some("10.0.0.2"));
        assert_eq!(
            client_ip(full(1), xff, peer).as_deref(),
            Some("198.51.100.20")
        );
        assert_eq!(
            client_ip(full(2), xff, peer).as_deref(),
            Some("2001:db8:aa::1")
        );
        assert_eq!(client_ip(full(3), xff, peer).as_deref(), Some("192.0.2.1"));
        assert_eq!(client_ip(full(16), xff, peer).as_deref(), Some("192.0.2.1"));
        assert_eq!(client_ip(full(2), None, peer).as_deref(), Some("10.0.0.2"));
        let trunc = json!({"mode": "truncate", "trusted_hops": 2});
        assert_eq!(
            client_ip(trunc, xff, peer).as_deref(),
            Some("2001:db8:aa::")
        );
        assert_eq!(client_ip(full(1), Some("192.0.2.1, garbage"), peer), None);
    }

    #[test]
    fn unparseable_or_missing_peer_gives_no_ip() {
        for peer in [
            None,
            Some(""),
            Some("unix:/tmp/sock"),
            Some("not an ip"),
            Some("300.1.1.1:80"),
        ] {
            assert_eq!(
                client_ip(json!({"mode": "full"}), None, peer),
                None,
                "{peer:?}"
            );
        }
        assert_eq!(
            client_ip(json!({"mode": "full"}), None, Some("192.0.2.5")).as_deref(),
            Some("192.0.2.5")
        );
    }

    fn body_of(max: usize, chunks: &[(&[u8], usize)]) -> Event {
        let mut b = BodyCapture::new(max);
        for (chunk, total) in chunks {
            b.push(chunk, *total);
        }
        let mut ev = Event::default();
        b.finish(&mut ev);
        ev
    }

    #[test]
    fn body_within_limit_is_text() {
        let ev = body_of(100, &[(b"{\"imp\":", 7), (b"[1]}", 4)]);
        assert_eq!(ev.body.as_deref(), Some("{\"imp\":[1]}"));
        assert!(!ev.body_base64 && !ev.body_truncated);
        // Exactly the limit is not truncated.
        let ev = body_of(4, &[(b"ab", 2), (b"cd", 2), (b"", 0)]);
        assert_eq!(ev.body.as_deref(), Some("abcd"));
        assert!(!ev.body_truncated);
        let ev = body_of(4, &[]);
        assert_eq!(ev.body.as_deref(), Some(""));
    }

    #[test]
    fn body_truncated_across_chunks() {
        let mut b = BodyCapture::new(10);
        assert_eq!(b.wanted(), 10);
        b.push(b"0123", 4);
        assert_eq!(b.wanted(), 6);
        b.push(b"4567", 4);
        b.push(b"89ab", 4);
        assert_eq!(b.wanted(), 0);
        b.push(b"cdef", 4);
        let mut ev = Event::default();
        b.finish(&mut ev);
        assert_eq!(ev.body.as_deref(), Some("0123456789"));
        assert!(ev.body_truncated && !ev.body_base64);
    }

    #[test]
    fn body_truncation_known_from_total_len_when_glue_read_less() {
        // The glue reads only `wanted()` bytes of a 1 MB chunk.
        let ev = body_of(8, &[(b"abcdefgh", 1_000_000)]);
        assert_eq!(ev.body.as_deref(), Some("abcdefgh"));
        assert!(ev.body_truncated);
        // Full later chunk that is never read still marks truncation.
        let ev = body_of(3, &[(b"abc", 3), (b"", 10)]);
        assert!(ev.body_truncated);
    }

    #[test]
    fn body_invalid_utf8_is_base64() {
        let bytes: &[u8] = &[0x00, 0xff, 0xfe, b'a', 0x80];
        let ev = body_of(100, &[(bytes, bytes.len())]);
        assert!(ev.body_base64 && !ev.body_truncated);
        assert_eq!(STANDARD.decode(ev.body.unwrap()).unwrap(), bytes);
        // Binary that is cut keeps every byte it kept.
        let ev = body_of(4, &[(&[0xff, 0xfe, 0xfd, 0xfc, 0xfb], 5)]);
        assert!(ev.body_base64 && ev.body_truncated);
        assert_eq!(
            STANDARD.decode(ev.body.unwrap()).unwrap(),
            [0xff, 0xfe, 0xfd, 0xfc]
        );
    }

    #[test]
    fn body_text_cut_inside_a_character_stays_text() {
        // "a€b": the limit of 3 bytes cuts '€' (3 bytes) after its first 2.
        let ev = body_of(3, &[("a€b".as_bytes(), 5)]);
        assert_eq!(ev.body.as_deref(), Some("a"));
        assert!(ev.body_truncated && !ev.body_base64);
        // Without truncation, a partial character at the end is not text.
        let ev = body_of(10, &[(&"a€".as_bytes()[..3], 3)]);
        assert!(ev.body_base64);
    }
}
