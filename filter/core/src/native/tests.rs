//! Unit tests of `native` (in their own file once past about a hundred lines: see the crate's
//! `//!`).

use super::*;
use crate::ip::host_without_port;
use crate::testkit;

fn cfg(extra: Value) -> Config {
    let base = json!({
        "cluster": "kafka_rest",
        "rules": [
            {"event_type": "impression", "topic": "imps", "method": "GET", "path": {"exact": "/i"}},
            {"event_type": "click", "topic": "clicks", "path": {"prefix": "/c/"}, "host": "Ads.Example.com:8443"},
            {"event_type": "bid", "topic": "bids", "method": "POST", "path": {"exact": "/bid"}, "capture_body": true}
        ]
    });
    testkit::config_patched(base, &extra)
}

fn rules(rules: Value, http_filter_rules: &str) -> Config {
    cfg(json!({"rules": rules, "http_filter_rules": http_filter_rules}))
}

fn hf(name: &str, m: Value) -> Value {
    json!({"header_filter": {"header": {"name": name, "string_match": m}}})
}

fn sp(name: &str, m: Value) -> Value {
    json!({"single_predicate": {"input": request_header_input(name), "value_match": m}})
}

/// The predicate of [`composite_matcher`]: a rule of the HTTP filter may match.
fn may_match(c: &Config) -> Value {
    composite_matcher(c, json!({"name": "f"}))["matcher_list"]["matchers"][0]["predicate"].clone()
}

/// The predicate of [`skip_matcher`]: the HTTP filter is skipped.
fn skips(c: &Config) -> Value {
    skip_matcher(c)["matcher_list"]["matchers"][0]["predicate"].clone()
}

/// The logger filters `:method present` and `:method absent` under `op`: `and_filter`
/// passes no request, `or_filter` every request.
fn method_present_and_absent(op: &str) -> Value {
    let present =
        |p: bool| json!({"header_filter": {"header": {"name": ":method", "present_match": p}}});
    json!({op: {"filters": [present(true), present(false)]}})
}

/// The matcher predicates `:method` empty and not under `op`: `and_matcher` matches no
/// request, `or_matcher` every request.
fn method_empty_and_not(op: &str) -> Value {
    json!({op: {"predicate": [method_is_empty(), {"not_matcher": method_is_empty()}]}})
}

#[test]
fn which_rules_each_deployment_captures() {
    fn event_types(c: &Config, d: Deployment) -> Vec<&str> {
        rules_for(c, d).map(|r| r.event_type.as_str()).collect()
    }
    use Deployment::{AccessLogger, HttpFilter};
    let all = cfg(json!({}));
    let body_only = cfg(json!({"http_filter_rules": "body_only"}));
    for (c, d, want) in [
        (&all, AccessLogger, &["impression", "click"][..]),
        (&all, HttpFilter, &["impression", "click", "bid"]),
        (&body_only, AccessLogger, &["impression", "click"]),
        (&body_only, HttpFilter, &["bid"]),
    ] {
        assert_eq!(event_types(c, d), want, "{d:?} {:?}", c.http_filter_rules);
    }
    let bid = &body_only.rules[2];
    assert!(captures(&body_only, HttpFilter, bid));
    assert!(!captures(&body_only, AccessLogger, bid));
}

#[test]
fn access_log_filter_shape() {
    let f = access_log_filter(&cfg(json!({})));
    let imp = json!({"and_filter": {"filters": [
        hf(":method", json!({"exact": "GET"})),
        {"or_filter": {"filters": [
            hf(":path", json!({"exact": "/i"})),
            hf(":path", json!({"prefix": "/i?"})),
        ]}},
    ]}});
    let click = json!({"and_filter": {"filters": [
        {"or_filter": {"filters": [
            hf(":authority", json!({"exact": "ads.example.com", "ignore_case": true})),
            hf(":authority", json!({"prefix": "ads.example.com:", "ignore_case": true})),
        ]}},
        hf(":path", json!({"prefix": "/c/"})),
    ]}});
    // The body rule is the HTTP filter's, never the logger's.
    assert_eq!(f, json!({"or_filter": {"filters": [imp, click]}}));
}

#[test]
fn single_entries_collapse() {
    let c = rules(
        json!([{"event_type": "e", "topic": "t", "path": {"prefix": "/imp"}}]),
        "all",
    );
    assert_eq!(
        access_log_filter(&c),
        hf(":path", json!({"prefix": "/imp"}))
    );
    assert_eq!(may_match(&c), sp(":path", json!({"prefix": "/imp"})));
    let not_imp = json!({"not_matcher": sp(":path", json!({"prefix": "/imp"}))});
    assert_eq!(skips(&c), not_imp);
}

#[test]
fn composite_matcher_shape() {
    let c = cfg(json!({"http_filter_rules": "body_only"}));
    let filter = json!({"name": "f", "typed_config": {"@type": "t"}});
    let bid = json!({"and_matcher": {"predicate": [
        sp(":method", json!({"exact": "POST"})),
        {"or_matcher": {"predicate": [
            sp(":path", json!({"exact": "/bid"})),
            sp(":path", json!({"prefix": "/bid?"})),
        ]}},
    ]}});
    assert_eq!(
        composite_matcher(&c, filter.clone()),
        json!({"matcher_list": {"matchers": [{
            "predicate": bid,
            "on_match": {"action": {"name": "adtap", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction",
                "typed_config": filter,
            }}}
        }]}})
    );
    // The SkipFilter form has the negated predicate.
    assert_eq!(
        skip_matcher(&c),
        json!({"matcher_list": {"matchers": [{
            "predicate": {"not_matcher": bid},
            "on_match": {"action": {"name": "skip", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter"
            }}}
        }]}})
    );
}

#[test]
fn entries_wrap_the_plugin_config() {
    let c = cfg(json!({}));
    let conf = r#"{"cluster": "kafka_rest", "rules": []}"#;
    let log = access_log_entry(&c, conf, "/etc/envoy/adtap.wasm");
    assert_eq!(log["name"], "envoy.access_loggers.wasm");
    assert_eq!(log["filter"], access_log_filter(&c));
    let tc = &log["typed_config"];
    assert_eq!(
        tc["@type"],
        "type.googleapis.com/envoy.extensions.access_loggers.wasm.v3.WasmAccessLog"
    );
    let pc = &tc["config"];
    assert_eq!(pc["root_id"], "adtap");
    assert_eq!(pc["failure_policy"], "FAIL_OPEN");
    assert_eq!(pc["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    assert_eq!(
        pc["vm_config"]["code"]["local"]["filename"],
        "/etc/envoy/adtap.wasm"
    );
    assert_eq!(pc["configuration"]["value"], conf);

    let wasm = wasm_http_filter(conf, "/etc/envoy/adtap.wasm");
    assert_eq!(
        wasm,
        json!({"name": "envoy.filters.http.wasm", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": pc,
        }})
    );
    let http = http_filter_entry(&c, conf, "/etc/envoy/adtap.wasm");
    assert_eq!(http, composite_filter_entry(&c, wasm.clone()));
    // The logger without its filter, and the older skip form around the same filter.
    let mut unfiltered = log.clone();
    unfiltered.as_object_mut().unwrap().remove("filter");
    assert_eq!(wasm_access_log(conf, "/etc/envoy/adtap.wasm"), unfiltered);
    let skip = skip_filter_entry(&c, wasm.clone());
    assert_eq!(skip["name"], "adtap");
    assert_eq!(
        skip["typed_config"]["@type"],
        "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher"
    );
    assert_eq!(skip["typed_config"]["extension_config"], wasm);
    assert_eq!(skip["typed_config"]["xds_matcher"], skip_matcher(&c));
    assert_eq!(
        http,
        json!({"name": "adtap", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            "extension_config": {"name": "envoy.filters.http.composite", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite"
            }},
            "xds_matcher": composite_matcher(&c, wasm),
        }})
    );
    let action = &http["typed_config"]["xds_matcher"]["matcher_list"]["matchers"][0]["on_match"]
        ["action"]["typed_config"];
    assert_eq!(action["typed_config"]["typed_config"]["config"], *pc);
}

#[test]
fn no_rules_for_a_deployment() {
    // Only body rules: the logger's filter matches nothing.
    let c = rules(
        json!([{"event_type": "bid", "topic": "b", "path": {"exact": "/bid"}, "capture_body": true}]),
        "body_only",
    );
    assert_eq!(
        access_log_filter(&c),
        method_present_and_absent("and_filter")
    );
    // Only non-body rules under body_only: the Wasm HTTP filter is never created.
    let c = rules(
        json!([{"event_type": "i", "topic": "t", "path": {"prefix": "/i"}}]),
        "body_only",
    );
    assert_eq!(may_match(&c), method_empty_and_not("and_matcher"));
    assert_eq!(skips(&c), method_empty_and_not("or_matcher"));
}

#[test]
fn bracketed_hosts_and_odd_paths_fall_back_to_prefixes() {
    let mut c = rules(
        json!([{"event_type": "e", "topic": "t", "path": {"prefix": "/x"}, "host": "[2001:DB8::1]:443"}]),
        "all",
    );
    assert_eq!(
        access_log_filter(&c),
        json!({"and_filter": {"filters": [
            hf(":authority", json!({"prefix": "[2001:db8::1]", "ignore_case": true})),
            hf(":path", json!({"prefix": "/x"})),
        ]}})
    );
    // Validation refuses these paths; a hand-built configuration gets a coarser prefix.
    c.rules[0].host = None;
    c.rules[0].path = PathMatch::Exact("/a?b=1".into());
    assert_eq!(access_log_filter(&c), hf(":path", json!({"prefix": "/a"})));
    c.rules[0].path = PathMatch::Prefix("/a#frag".into());
    assert_eq!(access_log_filter(&c), hf(":path", json!({"prefix": "/a"})));
    // Nothing left to match on: every request passes, and gets the Wasm HTTP filter.
    c.rules[0].path = PathMatch::Prefix("?".into());
    assert_eq!(
        access_log_filter(&c),
        method_present_and_absent("or_filter")
    );
    assert_eq!(may_match(&c), method_empty_and_not("or_matcher"));
    assert_eq!(skips(&c), method_empty_and_not("and_matcher"));
}

// --- An interpreter of the generated JSON with Envoy's semantics, checked against the
// rules: the native side must pass every request a rule of the deployment matches.

type Req<'a> = [(&'a str, &'a str); 3];

fn header<'a>(req: &Req<'a>, name: &str) -> Option<&'a str> {
    req.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn string_matches(m: &Value, v: &str) -> bool {
    let ci = m["ignore_case"].as_bool().unwrap_or(false);
    let lower = v.to_ascii_lowercase();
    let v = if ci { lower.as_str() } else { v };
    let want = |k: &str| {
        m[k].as_str().map(|s| {
            if ci {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }
        })
    };
    if let Some(e) = want("exact") {
        v == e
    } else if let Some(p) = want("prefix") {
        v.starts_with(&p)
    } else {
        panic!("unknown string matcher {m}")
    }
}

fn eval_log(f: &Value, req: &Req<'_>) -> bool {
    let list = |k: &str| f[k]["filters"].as_array().unwrap();
    if let Some(h) = f.get("header_filter") {
        let h = &h["header"];
        let value = header(req, h["name"].as_str().unwrap());
        let matched = if let Some(p) = h["present_match"].as_bool() {
            value.is_some() == p
        } else {
            value.is_some_and(|v| string_matches(&h["string_match"], v))
        };
        matched != h["invert_match"].as_bool().unwrap_or(false)
    } else if f.get("and_filter").is_some() {
        assert!(list("and_filter").len() >= 2);
        list("and_filter").iter().all(|x| eval_log(x, req))
    } else if f.get("or_filter").is_some() {
        assert!(list("or_filter").len() >= 2);
        list("or_filter").iter().any(|x| eval_log(x, req))
    } else {
        panic!("unknown filter {f}")
    }
}

fn eval_pred(p: &Value, req: &Req<'_>) -> bool {
    let list = |k: &str| p[k]["predicate"].as_array().unwrap();
    if let Some(s) = p.get("single_predicate") {
        let name = s["input"]["typed_config"]["header_name"].as_str().unwrap();
        header(req, name).is_some_and(|v| string_matches(&s["value_match"], v))
    } else if p.get("and_matcher").is_some() {
        assert!(list("and_matcher").len() >= 2);
        list("and_matcher").iter().all(|x| eval_pred(x, req))
    } else if p.get("or_matcher").is_some() {
        assert!(list("or_matcher").len() >= 2);
        list("or_matcher").iter().any(|x| eval_pred(x, req))
    } else if let Some(n) = p.get("not_matcher") {
        !eval_pred(n, req)
    } else {
        panic!("unknown predicate {p}")
    }
}

/// Whether the VM's own matching ([`crate::capture::rule_matches`]) takes `req` for `r`.
fn rule_matches(r: &Rule, req: &Req<'_>) -> bool {
    let path = header(req, ":path").unwrap_or("");
    crate::capture::rule_matches(
        r,
        header(req, ":method").unwrap_or(""),
        host_without_port(header(req, ":authority").unwrap_or("")),
        path.split_once('?').map_or(path, |(p, _)| p),
    )
}

#[test]
fn native_side_is_a_superset_of_the_rules() {
    let c = rules(
        json!([
            {"event_type": "a", "topic": "t", "method": "GET", "path": {"exact": "/i"}},
            {"event_type": "b", "topic": "t", "path": {"prefix": "/c/"}, "host": "Ads.Example.com"},
            {"event_type": "c", "topic": "t", "path": {"prefix": "/"}, "host": "[::1]", "method": "PUT"},
            {"event_type": "d", "topic": "t", "method": "POST", "path": {"exact": "/bid"}, "capture_body": true},
            {"event_type": "e", "topic": "t", "path": {"prefix": "/b"}, "capture_body": true}
        ]),
        "all",
    );
    let methods = ["GET", "POST", "PUT", "get"];
    let hosts = [
        "ads.example.com",
        "ADS.example.COM:8443",
        "ads.example.com:",
        "ads.example.com.evil",
        "other",
        "[::1]",
        "[::1]:80",
        "[::1]x",
        "[::1",
        "[::2]",
        "",
    ];
    let paths = [
        "/i", "/i?x=1", "/i/", "/ix", "/c/", "/c/1?q", "/c", "/x?/c/", "/bid", "/bid?x", "/bidder",
        "/b", "/", "*", "",
    ];
    let mut checked = 0;
    for body_only in [false, true] {
        let mut c = c.clone();
        if body_only {
            c.http_filter_rules = HttpFilterRules::BodyOnly;
        }
        let log = access_log_filter(&c);
        let run = may_match(&c);
        let skip = &skips(&c);
        for m in methods {
            for h in hosts {
                for p in paths {
                    let req = [(":method", m), (":authority", h), (":path", p)];
                    let logger_wants =
                        rules_for(&c, Deployment::AccessLogger).any(|r| rule_matches(r, &req));
                    let filter_wants =
                        rules_for(&c, Deployment::HttpFilter).any(|r| rule_matches(r, &req));
                    if logger_wants {
                        assert!(eval_log(&log, &req), "logger filters out {req:?}");
                    }
                    if filter_wants {
                        assert!(eval_pred(&run, &req), "filter not run for {req:?}");
                    }
                    // Without `?` or `#` in rule paths the translation is exact: the
                    // native side passes nothing more either.
                    assert_eq!(eval_log(&log, &req), logger_wants, "logger {req:?}");
                    assert_eq!(eval_pred(&run, &req), filter_wants, "filter {req:?}");
                    assert_eq!(!eval_pred(skip, &req), filter_wants, "skip {req:?}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 2 * methods.len() * hosts.len() * paths.len());
}
