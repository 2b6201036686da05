//! Unit tests of `capture` (in their own file once past about a hundred lines: see the crate's
//! `//!`).

use super::*;
use crate::testkit::{self, head};
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
    testkit::config_patched(base, &extra)
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
