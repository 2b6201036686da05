//! The native Envoy configuration generated from adtap's rules (`adtap_core::native`), checked
//! in a real Envoy: each test starts its own Envoy (one worker, 127.0.0.1, free ports, a
//! `direct_response` route, stopped on drop) and sends requests that match and miss the rules.
//!
//! - The access log filter: Envoy's file access logger carrying `access_log_filter(cfg)` must
//!   write exactly the requests a logger rule (no `capture_body`) matches.
//! - The composite matcher: `composite_filter_entry(cfg, filter)` (the form `http_filter_entry`
//!   gives the Wasm filter) with a cheap native filter that marks responses as its action must
//!   mark exactly the requests an HTTP filter rule matches, with `http_filter_rules` `all` and
//!   `body_only`.
//! - `envoy --mode validate` and a real start of a bootstrap with `access_log_entry` and
//!   `http_filter_entry` on the real `dist/adtap.wasm` (or `$ADTAP_WASM`; skipped with a note
//!   when absent).
//! - Which VM callbacks Envoy makes, with a tiny probe module (compiled here with
//!   `rustc --target wasm32-unknown-unknown`; skipped with a note when that target is missing)
//!   that logs every callback it gets: none for a request the native side keeps out (access
//!   logger and `http_filter_entry`), every one (`proxy_on_request_body` and `proxy_on_log`
//!   included) for a matched request; and, for comparison, what the older `SkipFilter` form
//!   (`skip_matcher`) still makes.
//!
//! Needs Envoy (`./build.sh setup`, or `$ADTAP_ENVOY`).
#![cfg(test)]

mod support;

use adtap_core::native::{self, Deployment};
use adtap_core::Config;
use adtap_harness::process::poll;
use adtap_stack::envoy::{self, Envoy};
use adtap_stack::LogsDir;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// adtap's configuration for these tests; `{HFR}` is replaced by `all` or `body_only`.
const CONFIG: &str = r#"{
  "cluster": "kafka_rest",
  "http_filter_rules": "{HFR}",
  "rules": [
    {"event_type": "impression", "topic": "imps", "method": "GET", "path": {"exact": "/imp"}},
    {"event_type": "click", "topic": "clicks", "host": "Ads.Example.com", "path": {"prefix": "/c/"}},
    {"event_type": "conversion", "topic": "convs", "path": {"exact": "/conv"}},
    {"event_type": "bid", "topic": "bids", "method": "POST", "path": {"exact": "/bid"}, "capture_body": true},
    {"event_type": "rtb", "topic": "bids", "host": "rtb.example.com:9000", "path": {"prefix": "/rtb/"}, "capture_body": true}
  ]
}"#;

fn config_text(http_filter_rules: &str) -> String {
    CONFIG.replace("{HFR}", http_filter_rules)
}

fn config(http_filter_rules: &str) -> Config {
    Config::parse(config_text(http_filter_rules).as_bytes())
        .expect("the test configuration is valid")
}

/// Who must see a request, in this order: the access logger (rules without `capture_body`), the
/// HTTP filter with `http_filter_rules: all` (every rule), and with `body_only` (body rules only).
type Sees = (bool, bool, bool);

/// Non-body rule: the logger and the `all` filter. Body rule: both filters, never the logger.
const NON_BODY: Sees = (true, true, false);
const BODY: Sees = (false, true, true);
const NONE: Sees = (false, false, false);

/// (method, host, path, who sees the request).
const CASES: &[(&str, &str, &str, Sees)] = &[
    // exact /imp, GET only: the query string does not count, anything longer does.
    ("GET", "x.test", "/imp", NON_BODY),
    ("GET", "x.test", "/imp?campaign_id=c-1&x=/y", NON_BODY),
    ("GET", "x.test", "/imp/", NONE),
    ("GET", "x.test", "/impx?q", NONE),
    ("POST", "x.test", "/imp", NONE),
    ("HEAD", "x.test", "/imp", NONE),
    // prefix /c/ on host ads.example.com: port ignored, case ignored.
    ("GET", "ads.example.com", "/c/", NON_BODY),
    ("GET", "ADS.Example.COM:8443", "/c/9?q=1", NON_BODY),
    ("DELETE", "ads.example.com:80", "/c/x", NON_BODY),
    ("GET", "ads.example.com.evil", "/c/1", NONE),
    ("GET", "other.test", "/c/1", NONE),
    ("GET", "ads.example.com", "/c", NONE),
    ("GET", "ads.example.com", "/x?/c/", NONE),
    // exact /conv, any method, any host.
    ("PUT", "x.test", "/conv?a=b", NON_BODY),
    ("GET", "x.test", "/conv/", NONE),
    // body rules: the HTTP filter's, never the logger's.
    ("POST", "x.test", "/bid", BODY),
    ("POST", "x.test", "/bid?x=1", BODY),
    ("GET", "x.test", "/bid", NONE),
    ("POST", "RTB.example.com:9000", "/rtb/a", BODY),
    ("POST", "rtb.example.com", "/rtb/", BODY),
    ("POST", "rtb.example.com", "/rtbx", NONE),
    ("POST", "ads.example.com", "/rtb/a", NONE),
    // nothing.
    ("GET", "x.test", "/", NONE),
    ("GET", "x.test", "/other?imp", NONE),
];

/// A bootstrap with one listener `ads` (port 0) answering 200 itself, with these access logs
/// and HTTP filters (the router is appended), and a `kafka_rest` cluster (the harness's
/// builders, [`envoy::bootstrap`]).
fn bootstrap(access_log: Vec<Value>, http_filters: Vec<Value>) -> String {
    // Port 9 (discard): nothing listens, adtap's calls fail at once.
    let doc = envoy::bootstrap(
        envoy::direct_response_hcm(http_filters, access_log),
        vec![envoy::static_cluster("kafka_rest", 9)],
    );
    // JSON is YAML.
    serde_json::to_string_pretty(&doc).unwrap()
}

/// A response header that the marking filter adds.
const MARK: &str = "x-adtap-mark";

/// Envoy's file access logger writing `CASE-ID METHOD PATH` for each request, behind `filter`.
fn file_access_log(path: &Path, filter: Value) -> Value {
    json!({
        "name": "envoy.access_loggers.file",
        "filter": filter,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": path.display().to_string(),
            "log_format": {"text_format_source": {"inline_string": "%REQ(X-CASE)% %REQ(:METHOD)% %REQ(:PATH)%\n"}}
        }
    })
}

/// An `http_filters` entry (named `name`) that runs `header_mutation` adding the response header
/// `header` exactly where `http_filter_entry` would run the Wasm filter:
/// `native::composite_filter_entry(cfg, …)`, the same composite filter and matcher.
fn marking_filter(cfg: &Config, name: &str, header: &str) -> Value {
    let mut entry = native::composite_filter_entry(
        cfg,
        json!({
            "name": "envoy.filters.http.header_mutation",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                "mutations": {"response_mutations": [
                    {"append": {"header": {"key": header, "value": "1"}}}
                ]}
            }
        }),
    );
    entry["name"] = json!(name);
    entry
}

/// A running Envoy with its directory (kept and printed if a test fails); dropped in this order.
struct Running {
    envoy: Envoy,
    addr: SocketAddr,
    dir: LogsDir,
}

impl Running {
    /// Envoy (one worker) on the configuration `yaml` writes for the directory.
    fn start(yaml: impl FnOnce(&Path) -> String) -> Running {
        let dir = LogsDir::new("adtap-native-").unwrap();
        let yaml = yaml(dir.path());
        let mut envoy = Envoy::start_in(&yaml, dir.path(), 1, "info").expect("Envoy starts");
        envoy
            .wait_ready(Duration::from_secs(30))
            .expect("Envoy ready");
        let addr = envoy.listener_addr("ads").unwrap();
        Running { envoy, addr, dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// Sends one HTTP/1.1 request (`connection: close`, no body) and returns the status and the
/// response header names (lower-case).
fn send(addr: SocketAddr, method: &str, host: &str, path: &str, id: &str) -> (u16, Vec<String>) {
    send_body(addr, method, host, path, id, "")
}

/// [`send`] with a request body.
fn send_body(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    id: &str,
    body: &str,
) -> (u16, Vec<String>) {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nx-case: {id}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let names = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, _)| n.trim().to_ascii_lowercase())
        .collect();
    (status, names)
}

/// Waits until the file access log holds the line of case `id`, then returns every case id
/// logged. Envoy flushes file logs on a timer; one worker writes them in request order.
fn logged_until(log: &Path, id: &str) -> Vec<String> {
    let ids = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    poll(Duration::from_secs(15), Duration::from_millis(100), || {
        let text = std::fs::read_to_string(log).ok()?;
        let ids = ids(&text);
        ids.iter().any(|i| i == id).then_some(ids)
    })
    .unwrap_or_else(|| {
        panic!(
            "case {id} never reached {}: {:?}",
            log.display(),
            std::fs::read_to_string(log)
        )
    })
}

/// The access log filter and the composite matcher for one value of `http_filter_rules`.
fn logger_filter_and_composite_matcher(http_filter_rules: &str) {
    let cfg = config(http_filter_rules);
    let body_only = http_filter_rules == "body_only";
    let run = Running::start(|dir| {
        bootstrap(
            vec![file_access_log(
                &dir.join("access.log"),
                native::access_log_filter(&cfg),
            )],
            vec![marking_filter(&cfg, "mark", MARK)],
        )
    });
    let mut want_logged = Vec::new();
    for (i, &(method, host, path, (logger, filter_all, filter_body_only))) in
        CASES.iter().enumerate()
    {
        let id = format!("case-{i}");
        let (status, headers) = send(run.addr, method, host, path, &id);
        assert_eq!(status, 200, "{method} {host} {path}");
        let want_mark = if body_only {
            filter_body_only
        } else {
            filter_all
        };
        assert_eq!(
            headers.iter().any(|h| h == MARK),
            want_mark,
            "http_filter_rules {http_filter_rules}: filter {} for {method} {host} {path}",
            if want_mark { "not run" } else { "run" },
        );
        if logger {
            want_logged.push(id);
        }
    }
    // A last request that the logger takes, so that every earlier line is known to be written.
    let (status, _) = send(run.addr, "GET", "x.test", "/imp?last", "last");
    assert_eq!(status, 200);
    want_logged.push("last".into());
    let logged = logged_until(&run.path("access.log"), "last");
    let describe = |ids: &[String]| -> Vec<String> {
        ids.iter()
            .map(|id| {
                let c = id
                    .strip_prefix("case-")
                    .and_then(|n| n.parse::<usize>().ok())
                    .map(|n| CASES[n]);
                match c {
                    Some((method, host, path, _)) => format!("{id} {method} {host} {path}"),
                    None => id.clone(),
                }
            })
            .collect()
    };
    assert_eq!(
        describe(&logged),
        describe(&want_logged),
        "access log lines"
    );
}

#[test]
fn access_log_filter_and_composite_matcher_with_all() {
    logger_filter_and_composite_matcher("all");
}

#[test]
fn access_log_filter_and_composite_matcher_with_body_only() {
    logger_filter_and_composite_matcher("body_only");
}

#[test]
fn a_deployment_without_rules_logs_nothing_and_never_runs_the_filter() {
    // Only body rules: the logger's filter matches nothing. Only logger rules under body_only:
    // the HTTP filter runs for no request.
    let body = Config::parse(
        br#"{"cluster": "k", "rules": [{"event_type": "bid", "topic": "b", "path": {"prefix": "/"}, "capture_body": true}]}"#,
    )
    .unwrap();
    let plain = Config::parse(
        br#"{"cluster": "k", "http_filter_rules": "body_only", "rules": [{"event_type": "i", "topic": "t", "path": {"prefix": "/"}}]}"#,
    )
    .unwrap();
    assert_eq!(
        native::rules_for(&body, Deployment::AccessLogger).count(),
        0
    );
    assert_eq!(native::rules_for(&plain, Deployment::HttpFilter).count(), 0);
    let run = Running::start(|dir| {
        bootstrap(
            vec![
                file_access_log(&dir.join("none.log"), native::access_log_filter(&body)),
                // Logs everything: once its line is there, the other logger's would be too.
                file_access_log(&dir.join("all.log"), native::access_log_filter(&plain)),
            ],
            vec![
                marking_filter(&plain, "mark", MARK),
                // The body config's filter takes every request (prefix "/"): always run.
                marking_filter(&body, "mark2", "x-mark-2"),
            ],
        )
    });
    for (i, (m, p)) in [("GET", "/"), ("POST", "/bid?x")].iter().enumerate() {
        let (status, headers) = send(run.addr, m, "x.test", p, &format!("n{i}"));
        assert_eq!(status, 200);
        assert!(!headers.iter().any(|h| h == MARK), "{m} {p}: filter run");
        assert!(
            headers.iter().any(|h| h == "x-mark-2"),
            "{m} {p}: filter not run"
        );
    }
    let all = logged_until(&run.path("all.log"), "n1");
    assert_eq!(all, ["n0", "n1"]);
    let none = std::fs::read_to_string(run.path("none.log")).unwrap_or_default();
    assert_eq!(none, "", "a filter that matches nothing logged something");
}

#[test]
fn envoy_validates_the_entries_with_adtap_wasm() {
    let wasm = match envoy::wasm_path() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("note: skipping `envoy --mode validate` of the adtap entries: {e}");
            return;
        }
    };
    let wasm = wasm.display().to_string();
    for hfr in ["all", "body_only"] {
        let cfg = config(hfr);
        let text = config_text(hfr);
        let yaml = bootstrap(
            vec![native::access_log_entry(&cfg, &text, &wasm)],
            vec![native::http_filter_entry(&cfg, &text, &wasm)],
        );
        let dir = tempfile::tempdir().unwrap();
        let verdict = envoy::validate(&yaml, dir.path()).unwrap();
        assert!(
            verdict.exit.is_some_and(|s| s.success()),
            "envoy --mode validate refused the entries ({hfr}):\n{}\n{yaml}",
            verdict.log
        ); // `--mode validate` does not instantiate the VM; a real start runs adtap's on_configure.
        let started = envoy::try_start(&yaml, dir.path(), Duration::from_secs(30)).unwrap();
        assert!(
            started.exit.is_none(),
            "Envoy refused the entries on start ({hfr}):\n{}",
            started.log
        );
    }
}

// --- Which VM callbacks Envoy makes for requests the native side keeps out.

/// A proxy-wasm module that logs each callback it gets (`probe <callback> <context> [<:path>]`).
const PROBE: &str = r#"
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, ptr: *const u8, len: usize) -> u32;
    fn proxy_get_header_map_value(map: u32, key: *const u8, key_len: usize,
                                  value: *mut *const u8, value_len: *mut usize) -> u32;
}
struct Line { buf: [u8; 512], n: usize }
impl Line {
    fn push(&mut self, s: &[u8]) { for b in s { if self.n < self.buf.len() { self.buf[self.n] = *b; self.n += 1; } } }
    fn num(&mut self, mut v: u32) {
        let mut d = [0u8; 10]; let mut i = 0;
        loop { d[i] = b'0' + (v % 10) as u8; i += 1; v /= 10; if v == 0 { break; } }
        while i > 0 { i -= 1; self.push(&d[i..i + 1]); }
    }
}
fn say(what: &[u8], ctx: u32, path: bool) {
    let mut l = Line { buf: [0; 512], n: 0 };
    l.push(b"probe "); l.push(what); l.push(b" "); l.num(ctx);
    if path {
        let (mut p, mut n): (*const u8, usize) = (core::ptr::null(), 0);
        let key = b":path";
        if unsafe { proxy_get_header_map_value(0, key.as_ptr(), key.len(), &mut p, &mut n) } == 0 && !p.is_null() {
            l.push(b" ");
            l.push(unsafe { core::slice::from_raw_parts(p, n) });
        }
    }
    unsafe { proxy_log(2, l.buf.as_ptr(), l.n); }
}
#[no_mangle] pub extern "C" fn proxy_on_configure(_: u32, _: u32) -> u32 { 1 }
#[no_mangle] pub extern "C" fn proxy_on_context_create(ctx: u32, parent: u32) {
    if parent == 0 { say(b"root_create", ctx, false) } else { say(b"context_create", ctx, false) }
}
#[no_mangle] pub extern "C" fn proxy_on_request_headers(ctx: u32, _: u32, _: u32) -> u32 { say(b"request_headers", ctx, true); 0 }
#[no_mangle] pub extern "C" fn proxy_on_request_body(ctx: u32, _: u32, _: u32) -> u32 { say(b"request_body", ctx, false); 0 }
#[no_mangle] pub extern "C" fn proxy_on_response_headers(ctx: u32, _: u32, _: u32) -> u32 { say(b"response_headers", ctx, false); 0 }
#[no_mangle] pub extern "C" fn proxy_on_log(ctx: u32) { say(b"log", ctx, true) }
#[no_mangle] pub extern "C" fn proxy_on_done(ctx: u32) -> u32 { say(b"done", ctx, false); 1 }
#[no_mangle] pub extern "C" fn proxy_on_delete(ctx: u32) { say(b"delete", ctx, false) }
"#;

/// The probe's callbacks per request `:path`, and the access logger's root `log`s per path.
#[derive(Debug, Default)]
struct Calls {
    /// Stream-context callbacks, in order, by the `:path` the context saw.
    stream: BTreeMap<String, Vec<String>>,
    /// Root-context `proxy_on_log` calls (the Wasm access logger) by `:path`.
    root_logs: BTreeMap<String, usize>,
}

fn probe_calls(envoy_log: &str) -> Calls {
    let mut roots = BTreeSet::new();
    let mut by_ctx: BTreeMap<String, (Option<String>, Vec<String>)> = BTreeMap::new();
    let mut calls = Calls::default();
    for line in envoy_log.lines() {
        let Some(rest) = line.split("probe ").nth(1) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(what), Some(ctx)) = (words.next(), words.next()) else {
            continue;
        };
        let path = words.next().map(str::to_string);
        if what == "root_create" {
            roots.insert(ctx.to_string());
            continue;
        }
        if roots.contains(ctx) {
            if what == "log" {
                *calls.root_logs.entry(path.unwrap_or_default()).or_default() += 1;
            }
            continue;
        }
        let entry = by_ctx.entry(ctx.to_string()).or_default();
        if entry.0.is_none() {
            entry.0 = path;
        }
        entry.1.push(what.to_string());
    }
    for (_, (path, seen)) in by_ctx {
        calls
            .stream
            .insert(path.unwrap_or_else(|| "<no path>".into()), seen);
    }
    calls
}

/// The buffer filter, between adtap and the router: the router answers `direct_response` at the
/// request headers, which would end the stream before a request body reached adtap.
fn buffer_filter() -> Value {
    json!({
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": 65536
        }
    })
}

#[test]
fn vm_callbacks_for_requests_kept_out() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(probe) = support::compile_probe(scratch.path(), PROBE, "the VM-callback checks")
    else {
        return;
    };
    let probe = probe.display().to_string();
    let cfg = config("all");
    let text = config_text("all");
    // What adtap generates (the composite filter creating the Wasm filter on a match), and for
    // comparison the Wasm filter itself wrapped in an ExtensionWithMatcher with `SkipFilter`.
    let skip = native::skip_filter_entry(&cfg, native::wasm_http_filter(&text, &probe));
    let without_body = [
        "context_create",
        "request_headers",
        "response_headers",
        "log",
        "done",
        "delete",
    ];
    let with_body = [
        "context_create",
        "request_headers",
        "request_body",
        "response_headers",
        "log",
        "done",
        "delete",
    ];
    // (method, path, body)
    let requests = [
        ("GET", "/imp?p=1", ""),             // a logger rule and a filter rule
        ("POST", "/bid?p=2", "{\"bid\":1}"), // a body rule: the filter's only
        ("GET", "/nothing", ""),             // no rule
        ("POST", "/nothing/2", "{\"x\":2}"),
    ];
    // In order, as a map's keys list them.
    let matched = ["/bid?p=2", "/imp?p=1", "/imp?p=last"];
    for (name, http_filter) in [
        ("composite", native::http_filter_entry(&cfg, &text, &probe)),
        ("skip", skip),
    ] {
        let run = Running::start(|_| {
            bootstrap(
                vec![native::access_log_entry(&cfg, &text, &probe)],
                vec![http_filter, buffer_filter()],
            )
        });
        for (i, (m, p, body)) in requests.iter().enumerate() {
            let (status, _) = send_body(run.addr, m, "x.test", p, &i.to_string(), body);
            assert_eq!(status, 200, "{name} {m} {p}");
        }
        // A last matched request: one worker serves one request at a time, so once its
        // `delete` is logged, every earlier request's callbacks are too.
        let (status, _) = send(run.addr, "GET", "x.test", "/imp?p=last", "last");
        assert_eq!(status, 200);
        let calls = poll(Duration::from_secs(10), Duration::from_millis(100), || {
            let calls = probe_calls(&run.envoy.log());
            let last = calls.stream.get("/imp?p=last")?;
            last.iter().any(|c| c == "delete").then_some(calls)
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: the probe's callbacks never showed:\n{}",
                run.envoy.log()
            )
        });
        // Matched: every callback, the request body's included, and the access logger's root
        // `log` for logger rules only. Unmatched: the access logger never enters the VM.
        assert_eq!(calls.stream["/imp?p=1"], without_body, "{name}: {calls:?}");
        // The body comes in one call or more (Envoy's HTTP/1 codec ends it with an empty
        // chunk): consecutive repeats count once.
        let mut bid = calls.stream["/bid?p=2"].clone();
        bid.dedup();
        assert_eq!(bid, with_body, "{name}: {calls:?}");
        assert_eq!(
            calls.stream["/imp?p=last"], without_body,
            "{name}: {calls:?}"
        );
        assert_eq!(
            calls.root_logs,
            BTreeMap::from([("/imp?p=1".to_string(), 1), ("/imp?p=last".to_string(), 1)]),
            "{name}: the access log filter let an unmatched or body request into the VM"
        );
        if name == "composite" {
            // The composite filter creates the Wasm filter only on a match: an unmatched
            // request makes no VM entry at all. Every stream context the probe saw belongs to
            // a matched request (a context that never read a `:path` would show as
            // "<no path>").
            assert_eq!(
                calls.stream.keys().map(String::as_str).collect::<Vec<_>>(),
                matched,
                "{name}: an unmatched request entered the VM: {calls:?}"
            );
        } else {
            for (_, p, _) in &requests[2..] {
                // Envoy 1.40: SkipFilter skips the Wasm filter's stream callbacks (the request
                // body's too), but the ExtensionWithMatcher passes the filter's access-log
                // handler through unwrapped, and `onDestroy` is forwarded: the Wasm context is
                // still created in `log` (context_create, log, done, delete).
                assert_eq!(
                    calls.stream.get(*p).map(Vec::as_slice).unwrap_or_default(),
                    ["context_create", "log", "done", "delete"],
                    "{name} {p}: Envoy changed what a skipped Wasm filter gets: {calls:?}"
                );
            }
        }
    }
}
