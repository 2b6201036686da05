//! Unit tests of `record` (in their own file once past about a hundred lines: see the crate's
//! `//!`).

use super::*;
use crate::assert_fields;
use crate::capture::tests::config;
use crate::capture::MAX_HEADER_VALUE_BYTES;
use crate::encode::{decode_value, encode_value};
use crate::json_text::write_json_str;
use crate::testkit::head;
use crate::Event;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

const ID: EventId = EventId { vm: 0xab0, seq: 1 };

/// Request headers as a test writes them (lower-case names).
struct Headers(Vec<(&'static str, String)>);

/// The event `write` makes of a request, in JSON and in MessagePack: both decode to the
/// same event, and serde re-encodes that event to exactly the bytes written.
fn event(
    cfg: &Config,
    rule: usize,
    ts: u64,
    head: RequestHead<'_>,
    hdrs: &Headers,
    done: &Completion,
    body: Option<&BodyCapture>,
) -> Event {
    let headers = HeaderPairs::from_pairs(&hdrs.0);
    let fields = Fields {
        rule,
        id: ID,
        ts,
        head,
        headers: &headers,
        done,
        body,
    };
    let mut scratch = Scratch::new();
    let mut decoded = Vec::new();
    for format in [ValueFormat::Json, ValueFormat::Msgpack] {
        let mut cfg = cfg.clone();
        cfg.format = format;
        let record = write(&cfg, &fields, &mut scratch).unwrap();
        let ev = decode_value(format, &record.value).unwrap();
        assert_eq!(
            encode_value(format, &ev).unwrap(),
            record.value,
            "{format:?}"
        );
        assert_eq!(record.ts_ms, ts);
        decoded.push(ev);
    }
    assert_eq!(decoded[0], decoded[1]);
    decoded.remove(0)
}

/// The event of a request with nothing of the response read.
fn begin(cfg: &Config, rule: usize, ts: u64, head: RequestHead<'_>, hdrs: &Headers) -> Event {
    event(cfg, rule, ts, head, hdrs, &Completion::default(), None)
}

/// An event with `body` (rule 3 captures bodies).
fn with_body(body: &BodyCapture) -> Event {
    let cfg = config(json!({}));
    let (none, done) = (Headers(vec![]), Completion::default());
    event(
        &cfg,
        3,
        0,
        head("POST", "h", "/bid"),
        &none,
        &done,
        Some(body),
    )
}

#[test]
fn hex_matches_format() {
    for (v, min) in [
        (0u64, 1),
        (0, 16),
        (0xabc, 1),
        (u64::MAX, 16),
        (0x1_0000, 16),
        (15, 1),
    ] {
        let mut s = Vec::new();
        push_hex(&mut s, v, min);
        let want = if min == 16 {
            format!("{v:016x}")
        } else {
            format!("{v:x}")
        };
        assert_eq!(String::from_utf8(s).unwrap(), want);
    }
}

#[test]
fn ids_are_hex_with_a_fixed_vm_part() {
    let id = EventId {
        vm: 0xab,
        seq: 0x1f,
    };
    assert_eq!(id.to_string(), "00000000000000ab-1f");
    assert_eq!(id.len(), id.to_string().len());
    let id = EventId { vm: 0, seq: 0 };
    assert_eq!(id.to_string(), "0000000000000000-0");
    assert_eq!(id.len(), 18);
}

#[test]
fn json_strings_escape_as_serde_json_does() {
    let all: String = (0u8..0x80).map(char::from).chain("é€😀".chars()).collect();
    let mut out = Vec::new();
    write_json_str(&mut out, &all);
    assert_eq!(out, serde_json::to_vec(&all).unwrap());
}

#[test]
fn msgpack_scalars_match_rmp() {
    for n in [
        0u64,
        1,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        u64::from(u32::MAX),
        u64::from(u32::MAX) + 1,
        u64::MAX,
    ] {
        let mut out = Vec::new();
        Msgpack(&mut out).uint(n);
        assert_eq!(out, rmp_serde::to_vec(&n).unwrap(), "{n}");
    }
    for len in [0usize, 31, 32, 255, 256, 65_535, 65_536] {
        let s = "x".repeat(len);
        let mut out = Vec::new();
        Msgpack(&mut out).str(&s);
        assert_eq!(out, rmp_serde::to_vec(&s).unwrap(), "{len}");
    }
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
    let path = "/c/x?crid=cr%2D7&campaign_id=42&cb&z=1";
    let ev = begin(
        &cfg,
        1,
        1_700_000_000_123,
        head("GET", "Ads.Example.com:8443", path),
        &hdrs,
    );
    assert_eq!(ev.v, SCHEMA_VERSION);
    assert_eq!(ev.id, "0000000000000ab0-1");
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
    // Nothing of the response was read.
    assert_fields!(ev, status: None, client_ip: None, body: None);
}

#[test]
fn begin_without_optional_headers_or_query() {
    let cfg = config(json!({"query_params": ["cid"], "headers": ["x-a"]}));
    let ev = begin(&cfg, 0, 5, head("GET", "h", "/i"), &Headers(vec![]));
    assert_eq!(ev.event_type, "impression");
    assert_eq!(ev.path, "/i");
    assert!(ev.query.is_empty() && ev.headers.is_empty());
    assert_fields!(ev, request_id: None, user_agent: None, referer: None);
    // An index past the rules (a glue bug) is an encoding error, not a panic.
    let headers = HeaderPairs::from_pairs::<&str, &str>(&[]);
    let done = Completion::default();
    let fields = Fields {
        rule: 99,
        id: ID,
        ts: 5,
        head: head("GET", "h", "/i?"),
        headers: &headers,
        done: &done,
        body: None,
    };
    assert!(write(&cfg, &fields, &mut Scratch::new()).is_err());
}

#[test]
fn cookie_and_authorization_captured_only_when_named() {
    let cfg = config(json!({"headers": ["Cookie", "Authorization"]}));
    let hdrs = Headers(vec![
        ("cookie", "a=1".into()),
        ("authorization", "Basic x".into()),
    ]);
    let ev = begin(&cfg, 0, 0, head("GET", "h", "/i"), &hdrs);
    assert_eq!(
        ev.headers,
        vec![
            ("cookie".to_string(), "a=1".to_string()),
            ("authorization".to_string(), "Basic x".to_string())
        ]
    );
}

#[test]
fn header_values_are_bounded() {
    let cfg = config(json!({"headers": ["x-big"]}));
    let big = "é".repeat(3000); // 6000 bytes, 2 per char
    let hdrs = Headers(vec![("x-big", big.clone()), ("user-agent", big)]);
    let ev = begin(&cfg, 0, 0, head("GET", "h", "/i"), &hdrs);
    assert_eq!(ev.headers[0].1.len(), MAX_HEADER_VALUE_BYTES);
    assert_eq!(ev.user_agent.unwrap().len(), MAX_HEADER_VALUE_BYTES);
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
    let hdrs = Headers(
        xff.map(|x| ("x-forwarded-for", x.to_string()))
            .into_iter()
            .collect(),
    );
    event(&cfg, 0, 0, head("GET", "h", "/i"), &hdrs, &done(peer), None).client_ip
}

#[test]
fn finish_fills_response_fields() {
    let cfg = config(json!({}));
    let none = Headers(vec![]);
    let done = done(Some("203.0.113.9:5555"));
    let ev = event(&cfg, 0, 0, head("GET", "h", "/i"), &none, &done, None);
    assert_fields!(ev, status: Some(204), duration_us: Some(1234), request_bytes: Some(300));
    assert_eq!(ev.response_bytes, Some(45));
    assert_eq!(ev.route.as_deref(), Some("ads_route"));
    assert_eq!(ev.upstream.as_deref(), Some("ad_server"));
    // Default mode is truncate.
    assert_eq!(ev.client_ip.as_deref(), Some("203.0.113.0"));
    let ev = begin(&cfg, 0, 0, head("GET", "h", "/i"), &none);
    assert_fields!(ev, status: None, duration_us: None, request_bytes: None, response_bytes: None);
    assert_fields!(ev, route: None, upstream: None, client_ip: None);
}

/// A client-IP case: the mode, `x-forwarded-for`, the peer, and the address they give.
type IpCase<'a> = (Value, Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// `client_ip` of each case is the address it gives.
fn assert_client_ips(cases: &[IpCase<'_>]) {
    for (mode, xff, peer, want) in cases {
        let got = client_ip(mode.clone(), *xff, *peer);
        assert_eq!(got.as_deref(), *want, "{mode} {xff:?} {peer:?}");
    }
}

/// The client IP configuration of `mode` and nothing else.
fn mode(mode: &str) -> Value {
    json!({ "mode": mode })
}

#[test]
fn ip_modes_v4() {
    let peer = Some("203.0.113.77:40000");
    assert_client_ips(&[
        (mode("full"), None, peer, Some("203.0.113.77")),
        (mode("truncate"), None, peer, Some("203.0.113.0")),
        (mode("omit"), None, peer, None),
    ]);
    let s1 = json!({"mode": "hash", "salt": "s1"});
    let h = client_ip(s1.clone(), None, peer).unwrap();
    assert_eq!(h, crate::ip::hash("s1", "203.0.113.77".parse().unwrap()));
    assert_eq!(h.len(), 32);
    assert!(!h.contains("203"));
    // Same client, same hash, whatever its port; another salt, another hash.
    assert_eq!(client_ip(s1, None, Some("203.0.113.77:1")), Some(h.clone()));
    let s2 = json!({"mode": "hash", "salt": "s2"});
    assert_ne!(client_ip(s2, None, peer), Some(h));
}

#[test]
fn ip_modes_v6() {
    let peer = Some("[2001:db8:1:2:3:4:5:6]:443");
    let k = json!({"mode": "hash", "salt": "k"});
    // A v4 client on a dual-stack socket is truncated as v4.
    let dual = Some("[::ffff:198.51.100.7]:80");
    assert_client_ips(&[
        (mode("full"), None, peer, Some("2001:db8:1:2:3:4:5:6")),
        (mode("truncate"), None, peer, Some("2001:db8:1::")),
        (mode("omit"), None, peer, None),
        (
            k,
            None,
            Some("2001:db8::1"),
            Some("b90dd17aeb02aa9754659599d92f0b2e"),
        ),
        (mode("truncate"), None, dual, Some("198.51.100.0")),
    ]);
}

#[test]
fn ip_from_xff_with_trusted_hops() {
    let xff = Some("192.0.2.1, 2001:db8:aa::1, 198.51.100.20");
    let peer = Some("10.0.0.2:1000");
    let full = |hops: u32| json!({"mode": "full", "trusted_hops": hops});
    let trunc = json!({"mode": "truncate", "trusted_hops": 2});
    assert_client_ips(&[
        (full(0), xff, peer, Some("10.0.0.2")),
        (full(1), xff, peer, Some("198.51.100.20")),
        (full(2), xff, peer, Some("2001:db8:aa::1")),
        (full(3), xff, peer, Some("192.0.2.1")),
        (full(16), xff, peer, Some("192.0.2.1")),
        (full(2), None, peer, Some("10.0.0.2")),
        (trunc, xff, peer, Some("2001:db8:aa::")),
        (full(1), Some("192.0.2.1, garbage"), peer, None),
    ]);
}

#[test]
fn unparseable_or_missing_peer_gives_no_ip() {
    assert_client_ips(&[
        (mode("full"), None, None, None),
        (mode("full"), None, Some(""), None),
        (mode("full"), None, Some("unix:/tmp/sock"), None),
        (mode("full"), None, Some("not an ip"), None),
        (mode("full"), None, Some("300.1.1.1:80"), None),
        (mode("full"), None, Some("192.0.2.5"), Some("192.0.2.5")),
    ]);
}

fn body_of(max: usize, chunks: &[(&[u8], usize)]) -> Event {
    let mut b = BodyCapture::new(max);
    for (chunk, total) in chunks {
        b.push(chunk, *total);
    }
    with_body(&b)
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
    let ev = with_body(&b);
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
