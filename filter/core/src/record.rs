//! The record writer: one captured request written straight into its record value, from the
//! bytes the capture read, with no intermediate [`crate::Event`].
//!
//! This is the hot path of every captured request, so it allocates nothing of its own: the
//! values are borrowed from the request's header map, the rule and the configuration; the few
//! that must be computed (percent-decoded query values, the rendered client IP) go into a
//! [`Scratch`] the worker keeps and reuses; the value is written into the scratch's output
//! buffer and copied once into the record, at its exact length.
//!
//! Layout:
//! - [`Fields`]: what one event is written from (the capture session fills it at log time).
//! - [`write()`]: the record (value, key, record headers) for those fields; with the options,
//!   the key joined from several fields ([`crate::key`]) and the CloudEvents form
//!   ([`crate::cloudevents`]), whose writers this module shares with serde's path.
//! - `Values` and `Sink`: every field resolved once, then written by one generic writer in
//!   either format (`Json`, `Msgpack`), so field order and presence are decided in one place.
//!
//! The bytes are exactly what serde writes for the equivalent [`crate::Event`] (`serde_json`'s
//! compact form, `rmp_serde` with named fields): the event type stays the schema and the
//! decoder, and tests check, over generated requests, that re-encoding the decoded event gives
//! the same bytes.

use std::borrow::Cow;

use crate::capture::{self, BodyCapture, BodyView, Completion, QueryScratch, RequestHead};
use crate::cloudevents::{self, CloudEventsConfig, Mode};
use crate::config::{Config, KeySource, ValueFormat};
use crate::encode::EncodeError;
use crate::event::{Record, SCHEMA_VERSION};
use crate::headers::HeaderPairs;
use crate::ip;
use crate::json_text::{b64_len, write_base64, write_json_str};
use crate::key::{self, Key};

/// An event id: the VM's random id and a per-VM sequence, written `vvvvvvvvvvvvvvvv-seq` in
/// lower-case hex (16 digits, then as many as the sequence needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    /// The VM's random id.
    pub vm: u64,
    /// The event's sequence number in that VM.
    pub seq: u64,
}

impl EventId {
    /// Writes the id's text at the end of `out`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        push_hex(out, self.vm, 16);
        out.push(b'-');
        push_hex(out, self.seq, 1);
    }

    /// Length of the id's text.
    fn len(self) -> usize {
        17 + hex_digits(self.seq, 1)
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::with_capacity(34);
        self.write_to(&mut out);
        f.write_str(std::str::from_utf8(&out).unwrap_or_default())
    }
}

/// Hex digits `v` takes, at least `min_digits`, at most 16.
fn hex_digits(v: u64, min_digits: u32) -> usize {
    (64 - v.leading_zeros()).div_ceil(4).clamp(min_digits, 16) as usize
}

/// Appends `v` in lower-case hex, zero-padded to at least `min_digits`.
fn push_hex(out: &mut Vec<u8>, v: u64, min_digits: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for i in (0..hex_digits(v, min_digits)).rev() {
        let nibble = ((v >> (i * 4)) & 0xF) as usize;
        out.push(DIGITS.get(nibble).copied().unwrap_or(b'0'));
    }
}

/// What one event is written from.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// Index of the matching rule.
    pub rule: usize,
    /// The event id.
    pub id: EventId,
    /// When the request arrived, Unix ms.
    pub ts: u64,
    /// `:method`, `:authority`, `:path` (with its query string).
    pub head: RequestHead<'a>,
    /// The request header map (allow-listed headers, user agent, referer, request id,
    /// `x-forwarded-for`).
    pub headers: &'a HeaderPairs,
    /// What was read when the stream ended.
    pub done: &'a Completion,
    /// The collected request body, when the rule captures bodies.
    pub body: Option<&'a BodyCapture>,
}

/// Reusable space for one event at a time: the value being written and the values computed on
/// the way. A worker keeps one, so after the first few events nothing here allocates.
#[derive(Debug, Default)]
pub struct Scratch {
    out: Vec<u8>,
    query: QueryScratch,
    client_ip: String,
    /// The CloudEvents envelope around `out` (structured mode only; empty otherwise).
    envelope: Vec<u8>,
}

impl Scratch {
    /// Scratch space sized for a typical event.
    pub fn new() -> Scratch {
        Scratch {
            out: Vec::with_capacity(2048),
            query: QueryScratch::default(),
            client_ip: String::with_capacity(40),
            envelope: Vec::new(),
        }
    }
}

/// Writes the record of one event: its value in the configured format, its key, and its
/// record headers.
///
/// The key is absent when the key source is absent from the event or empty (an empty key
/// would send every such event to one partition, which is what having no key avoids); a key of
/// several fields follows the same rule for each (see [`crate::key`]).
///
/// With `cloudevents` configured, the value is the structured envelope (v2, Redpanda) or the
/// record carries the `ce_*` headers (v3); the configured `record_headers` present on the
/// request follow them, each value bounded to [`capture::MAX_HEADER_VALUE_BYTES`]. Without
/// either, nothing here differs from a plain record, byte for byte and allocation for
/// allocation.
pub fn write(cfg: &Config, f: &Fields<'_>, scratch: &mut Scratch) -> Result<Record, EncodeError> {
    let rule = cfg
        .rules
        .get(f.rule)
        .ok_or_else(|| EncodeError(format!("no rule #{}", f.rule)))?;
    let Scratch {
        out,
        query,
        client_ip,
        envelope,
    } = scratch;
    let path_and_query = f.head.path;
    let query_string = path_and_query.split_once('?').map_or("", |(_, q)| q);
    query.capture(&cfg.query_params, query_string);
    client_ip.clear();
    let ipc = &cfg.client_ip;
    let xff = f.headers.text("x-forwarded-for");
    let has_ip = ip::client_addr(
        xff.as_deref(),
        ipc.trusted_hops,
        f.done.peer_address.as_deref(),
    )
    .is_some_and(|addr| ip::render_into(ipc.mode, ipc.salt.as_deref(), addr, client_ip));
    let values = Values {
        cfg,
        id: f.id,
        event_type: &rule.event_type,
        ts: f.ts,
        request_id: header(f.headers, "x-request-id"),
        method: f.head.method,
        host: f.head.host,
        path: path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p),
        query,
        headers: f.headers,
        user_agent: header(f.headers, "user-agent"),
        referer: header(f.headers, "referer"),
        client_ip: has_ip.then_some(client_ip.as_str()),
        done: f.done,
        body: f.body.map(BodyCapture::view),
        body_truncated: f.body.is_some_and(BodyCapture::truncated),
    };
    out.clear();
    match cfg.format {
        ValueFormat::Json => values.write(&mut Json(out)),
        ValueFormat::Msgpack => values.write(&mut Msgpack(out)),
    }
    let key = match &rule.key {
        None => None,
        Some(Key::Field(k)) => values.key(k).filter(|k| !k.is_empty()).map(Cow::into_owned),
        Some(Key::Joined(parts)) => key::joined(parts.iter().map(|k| values.key(k))),
    };
    // Sized once for every header the record may carry (none: no allocation).
    let binary_ce = cfg.cloudevents.is_some() && cloudevents::mode(cfg.dialect) == Mode::Binary;
    let most = usize::from(binary_ce) * cloudevents::BINARY_HEADERS + cfg.record_headers.len();
    let mut headers = Vec::with_capacity(most);
    let value = match &cfg.cloudevents {
        None => out.as_slice().to_vec(),
        Some(ce) => match cloudevents::mode(cfg.dialect) {
            Mode::Binary => {
                cloudevents::push_binary_headers(
                    ce,
                    f.id.to_string(),
                    &rule.event_type,
                    f.ts,
                    &mut headers,
                );
                out.as_slice().to_vec()
            }
            Mode::Structured => {
                write_envelope(envelope, ce, f.id, &rule.event_type, f.ts, cfg.format, out);
                envelope.as_slice().to_vec()
            }
        },
    };
    for name in &cfg.record_headers {
        if let Some(v) = header(f.headers, name) {
            headers.push((name.clone(), v.into_owned()));
        }
    }
    Ok(Record {
        topic: rule.topic,
        key,
        value,
        headers,
        ts_ms: f.ts,
    })
}

/// The structured CloudEvents value around the event in `data`, with the id written from its
/// parts.
fn write_envelope(
    out: &mut Vec<u8>,
    ce: &CloudEventsConfig,
    id: EventId,
    event_type: &str,
    ts: u64,
    format: ValueFormat,
    data: &[u8],
) {
    let write_id = |o: &mut Vec<u8>| {
        o.push(b'"');
        id.write_to(o);
        o.push(b'"');
    };
    cloudevents::write_structured(out, ce, write_id, event_type, ts, format, data);
}

/// Header `name` as text, bounded to [`capture::MAX_HEADER_VALUE_BYTES`].
fn header<'a>(headers: &'a HeaderPairs, name: &str) -> Option<Cow<'a, str>> {
    headers
        .text(name)
        .map(|v| capture::bounded_cow(v, capture::MAX_HEADER_VALUE_BYTES))
}

/// Every field of one event, resolved.
struct Values<'a> {
    cfg: &'a Config,
    id: EventId,
    event_type: &'a str,
    ts: u64,
    request_id: Option<Cow<'a, str>>,
    method: &'a str,
    host: &'a str,
    path: &'a str,
    query: &'a QueryScratch,
    headers: &'a HeaderPairs,
    user_agent: Option<Cow<'a, str>>,
    referer: Option<Cow<'a, str>>,
    client_ip: Option<&'a str>,
    done: &'a Completion,
    body: Option<BodyView<'a>>,
    body_truncated: bool,
}

impl<'a> Values<'a> {
    /// The allow-listed headers present, in allow-list order.
    fn allowed_headers(&self) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> + '_ {
        let headers = self.headers;
        self.cfg
            .headers
            .iter()
            .filter_map(move |name| header(headers, name).map(|v| (name.as_str(), v)))
    }

    /// The key from `source`, if present: the value the event carries for that field.
    fn key(&self, source: &KeySource) -> Option<Cow<'_, str>> {
        match source {
            KeySource::Query(name) => self
                .query
                .found(&self.cfg.query_params)
                .find(|(k, _)| *k == name.as_str())
                .map(|(_, v)| Cow::Borrowed(v)),
            KeySource::Header(name) => self
                .allowed_headers()
                .find(|(k, _)| *k == name.as_str())
                .map(|(_, v)| v),
            KeySource::ClientIp => self.client_ip.map(Cow::Borrowed),
            KeySource::RequestId => self.request_id.clone(),
            KeySource::Host => Some(Cow::Borrowed(self.host)),
            KeySource::Path => Some(Cow::Borrowed(self.path)),
            KeySource::EventType => Some(Cow::Borrowed(self.event_type)),
        }
    }

    /// Writes the event as one map, fields in the order of [`crate::Event`]'s declaration,
    /// absent ones left out (as serde's `skip_serializing_if` does).
    fn write<S: Sink>(&self, s: &mut S) {
        let d = self.done;
        let n_query = self.query.found(&self.cfg.query_params).count();
        let n_headers = self.allowed_headers().count();
        let present = [
            self.request_id.is_some(),
            n_query > 0,
            n_headers > 0,
            self.user_agent.is_some(),
            self.referer.is_some(),
            self.client_ip.is_some(),
            d.status.is_some(),
            d.duration_us.is_some(),
            d.request_bytes.is_some(),
            d.response_bytes.is_some(),
            d.route.is_some(),
            d.upstream.is_some(),
            self.body.is_some(),
            matches!(self.body, Some(BodyView::Binary(..))),
            self.body_truncated,
        ];
        // v, id, type, ts, method, host, path are always there.
        let fields = 7 + present.iter().filter(|p| **p).count();
        s.map(fields);
        s.key("v", true);
        s.uint(u64::from(SCHEMA_VERSION));
        s.key("id", false);
        s.id(self.id);
        s.key("type", false);
        s.str(self.event_type);
        s.key("ts", false);
        s.uint(self.ts);
        if let Some(v) = &self.request_id {
            s.key("request_id", false);
            s.str(v);
        }
        s.key("method", false);
        s.str(self.method);
        s.key("host", false);
        s.str(self.host);
        s.key("path", false);
        s.str(self.path);
        if n_query > 0 {
            s.key("query", false);
            s.map(n_query);
            for (i, (k, v)) in self.query.found(&self.cfg.query_params).enumerate() {
                s.key(k, i == 0);
                s.str(v);
            }
            s.end_map();
        }
        if n_headers > 0 {
            s.key("headers", false);
            s.map(n_headers);
            for (i, (k, v)) in self.allowed_headers().enumerate() {
                s.key(k, i == 0);
                s.str(&v);
            }
            s.end_map();
        }
        let opt_str = |s: &mut S, name: &str, v: Option<&str>| {
            if let Some(v) = v {
                s.key(name, false);
                s.str(v);
            }
        };
        let opt_uint = |s: &mut S, name: &str, v: Option<u64>| {
            if let Some(v) = v {
                s.key(name, false);
                s.uint(v);
            }
        };
        opt_str(s, "user_agent", self.user_agent.as_deref());
        opt_str(s, "referer", self.referer.as_deref());
        opt_str(s, "client_ip", self.client_ip);
        opt_uint(s, "status", d.status.map(u64::from));
        opt_uint(s, "duration_us", d.duration_us);
        opt_uint(s, "request_bytes", d.request_bytes);
        opt_uint(s, "response_bytes", d.response_bytes);
        opt_str(s, "route", d.route.as_deref());
        opt_str(s, "upstream", d.upstream.as_deref());
        match self.body {
            Some(BodyView::Text(text)) => {
                s.key("body", false);
                s.str(text);
            }
            Some(BodyView::Binary(bytes)) => {
                s.key("body", false);
                s.base64(bytes);
                s.key("body_base64", false);
                s.boolean(true);
            }
            None => {}
        }
        if self.body_truncated {
            s.key("body_truncated", false);
            s.boolean(true);
        }
        s.end_map();
    }
}

/// One value format, written as a stream of map entries.
trait Sink {
    /// Starts a map of `len` entries.
    fn map(&mut self, len: usize);
    /// Ends the map started last.
    fn end_map(&mut self);
    /// A key; `first` for the first entry of a map.
    fn key(&mut self, name: &str, first: bool);
    /// A string value.
    fn str(&mut self, s: &str);
    /// An event id, as a string value.
    fn id(&mut self, id: EventId);
    /// `bytes` as a standard base64 string value.
    fn base64(&mut self, bytes: &[u8]);
    /// An unsigned integer value.
    fn uint(&mut self, n: u64);
    /// A boolean value.
    fn boolean(&mut self, b: bool);
}

/// `serde_json`'s compact form.
struct Json<'o>(&'o mut Vec<u8>);

impl Sink for Json<'_> {
    fn map(&mut self, _len: usize) {
        self.0.push(b'{');
    }
    fn end_map(&mut self) {
        self.0.push(b'}');
    }
    fn key(&mut self, name: &str, first: bool) {
        if !first {
            self.0.push(b',');
        }
        write_json_str(self.0, name);
        self.0.push(b':');
    }
    fn str(&mut self, s: &str) {
        write_json_str(self.0, s);
    }
    fn id(&mut self, id: EventId) {
        self.0.push(b'"');
        id.write_to(self.0);
        self.0.push(b'"');
    }
    fn base64(&mut self, bytes: &[u8]) {
        self.0.push(b'"');
        write_base64(self.0, bytes);
        self.0.push(b'"');
    }
    fn uint(&mut self, n: u64) {
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        let mut n = n;
        loop {
            at -= 1;
            if let Some(d) = buf.get_mut(at) {
                // `n % 10` is one digit.
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || at == 0 {
                break;
            }
        }
        self.0.extend_from_slice(buf.get(at..).unwrap_or_default());
    }
    fn boolean(&mut self, b: bool) {
        self.0
            .extend_from_slice(if b { b"true" as &[u8] } else { b"false" });
    }
}

/// MessagePack with named fields, in the smallest encodings (as `rmp_serde` writes them).
struct Msgpack<'o>(&'o mut Vec<u8>);

impl Msgpack<'_> {
    /// A string or map header: the fix form under `fix_max`, else the 8/16/32-bit forms.
    fn header(&mut self, len: usize, fix: u8, fix_max: usize, wide: [Option<u8>; 3]) {
        let out = &mut *self.0;
        let [w8, w16, w32] = wide;
        if len <= fix_max {
            // `len` fits the fix form's low bits.
            out.push(fix | len as u8);
        } else if let (Some(m), Ok(n)) = (w8, u8::try_from(len)) {
            out.push(m);
            out.push(n);
        } else if let (Some(m), Ok(n)) = (w16, u16::try_from(len)) {
            out.push(m);
            out.extend_from_slice(&n.to_be_bytes());
        } else if let Some(m) = w32 {
            out.push(m);
            out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
    fn str_header(&mut self, len: usize) {
        self.header(len, 0xa0, 31, [Some(0xd9), Some(0xda), Some(0xdb)]);
    }
}

impl Sink for Msgpack<'_> {
    fn map(&mut self, len: usize) {
        self.header(len, 0x80, 15, [None, Some(0xde), Some(0xdf)]);
    }
    fn end_map(&mut self) {}
    fn key(&mut self, name: &str, _first: bool) {
        self.str(name);
    }
    fn str(&mut self, s: &str) {
        self.str_header(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn id(&mut self, id: EventId) {
        self.str_header(id.len());
        id.write_to(self.0);
    }
    fn base64(&mut self, bytes: &[u8]) {
        self.str_header(b64_len(bytes.len()));
        write_base64(self.0, bytes);
    }
    fn uint(&mut self, n: u64) {
        let out = &mut *self.0;
        if n < 0x80 {
            out.push(n as u8);
        } else if let Ok(n) = u8::try_from(n) {
            out.push(0xcc);
            out.push(n);
        } else if let Ok(n) = u16::try_from(n) {
            out.push(0xcd);
            out.extend_from_slice(&n.to_be_bytes());
        } else if let Ok(n) = u32::try_from(n) {
            out.push(0xce);
            out.extend_from_slice(&n.to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    fn boolean(&mut self, b: bool) {
        self.0.push(if b { 0xc3 } else { 0xc2 });
    }
}

#[cfg(test)]
mod tests;
