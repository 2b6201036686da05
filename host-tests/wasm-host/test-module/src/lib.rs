//! A tiny proxy-wasm module used only to test `adtap-wasm-host` itself.
//!
//! Written against the raw ABI, as adtap's filter is (`filter/wasm/src/abi.rs`), so that it
//! imports only what the host emulates: the SDK's dispatcher calls `proxy_set_effective_context`
//! on every HTTP call answer, which the filter never calls and the host does not emulate. Every
//! interesting thing it does is logged (`proxy_log`) or counted (metrics), so the host's tests
//! can assert on logs and metrics without knowing anything else about the module. One switch
//! calls a function the host does not emulate, to see it fail. A panic is logged at Critical
//! (as the SDK's panic hook does) before the module aborts.
//!
//! Plugin configuration: `key=value` pairs separated by `;` or newlines.
//! - `cluster` (default `collector`), `path` (`/ingest`), `authority` (`collector`): where the
//!   tick sends queued request paths.
//! - `tick_ms` (default 1000, 0 = no tick), `timeout_ms` (default 5000).
//! - `reject=1`: `on_configure` returns false.
//! - `omit_method=1`: dispatch without `:method` (the host must refuse with BadArgument).
//!
//! Per-request switches (request headers): `x-trap: panic|exit|unemulated` (trap via panic,
//! `proc_exit`, or a call of `proxy_get_shared_data`, which the host does not emulate),
//! `x-alloc: N` (leak N bytes, to hit the memory cap), `x-buffer` (pause the request body until
//! end of stream, then read it whole), `x-late-read` (read a request header again in
//! `on_response_headers`, which Envoy no longer allows: the module then panics, as the SDK's
//! getters do on an unexpected status). Header values are read as UTF-8 strings, panicking on
//! invalid bytes (the SDK's string getters do the same).

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(ret: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        kind: u32,
        start: usize,
        max: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, ret_data: *mut *mut u8, ret_size: *mut usize) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
    ) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_http_call(
        upstream: *const u8,
        upstream_size: usize,
        headers: *const u8,
        headers_size: usize,
        body: *const u8,
        body_size: usize,
        trailers: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        ret_token: *mut u32,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, size: usize, ret_id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_done() -> u32;
    /// Not emulated by the host: called only for `x-trap: unemulated`.
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        ret_data: *mut *mut u8,
        ret_size: *mut usize,
        ret_cas: *mut u32,
    ) -> u32;
}

const DEBUG: u32 = 1;
const INFO: u32 = 2;
const WARN: u32 = 3;
const ERROR: u32 = 4;
const CRITICAL: u32 = 5;

const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;
const CALL_RESPONSE_HEADERS: u32 = 6;
const REQUEST_BODY: u32 = 0;
const CALL_RESPONSE_BODY: u32 = 4;
const PLUGIN_CONFIGURATION: u32 = 7;

const COUNTER: u32 = 0;
const GAUGE: u32 = 1;
const HISTOGRAM: u32 = 2;

/// The ABI's status names, for log lines the tests match.
fn status_name(code: u32) -> String {
    match code {
        1 => "NotFound".into(),
        2 => "BadArgument".into(),
        4 => "ParseFailure".into(),
        6 => "InvalidMemoryAccess".into(),
        10 => "InternalFailure".into(),
        other => format!("Status({other})"),
    }
}

fn log(level: u32, msg: &str) {
    // SAFETY: the message describes a live &str.
    let _ = unsafe { proxy_log(level, msg.as_ptr(), msg.len()) };
}

/// Takes bytes the host wrote into memory from `proxy_on_memory_allocate`.
fn returned(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Option<Vec<u8>>, u32> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    match call(&mut data, &mut size) {
        0 if data.is_null() => Ok(Some(Vec::new())),
        // SAFETY: the host filled `size` bytes of an allocation of capacity `size` made by
        // `proxy_on_memory_allocate` for this call.
        0 => Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) })),
        1 => Ok(None),
        code => Err(code),
    }
}

/// A returned value, panicking on an unexpected status like the SDK's getters.
fn expect(r: Result<Option<Vec<u8>>, u32>) -> Option<Vec<u8>> {
    r.unwrap_or_else(|code| panic!("unexpected status: {code}"))
}

/// A header value as a string; panics on invalid UTF-8, like the SDK's string getters.
fn header(map: u32, name: &str) -> Option<String> {
    // SAFETY: the key describes a live &str; return pointers are valid locals.
    let bytes = expect(returned(|d, s| unsafe {
        proxy_get_header_map_value(map, name.as_ptr(), name.len(), d, s)
    }))?;
    Some(String::from_utf8(bytes).unwrap())
}

/// A whole header map as strings; panics on invalid UTF-8, like the SDK's string getters.
fn header_pairs(map: u32) -> Vec<(String, String)> {
    // SAFETY: return pointers are valid locals.
    let bytes = expect(returned(|d, s| unsafe {
        proxy_get_header_map_pairs(map, d, s)
    }));
    let bytes = bytes.unwrap_or_default();
    let u32_at = |at: usize| {
        let b = bytes.get(at..at + 4).and_then(|b| b.try_into().ok());
        u32::from_le_bytes(b.unwrap_or([0; 4])) as usize
    };
    let count = if bytes.is_empty() { 0 } else { u32_at(0) };
    let mut at = 4 + count * 8;
    let mut take = |len: usize| {
        let s = String::from_utf8(bytes[at..at + len].to_vec()).unwrap();
        at += len + 1;
        s
    };
    (0..count)
        .map(|i| {
            let (klen, vlen) = (u32_at(4 + i * 8), u32_at(8 + i * 8));
            (take(klen), take(vlen))
        })
        .collect()
}

fn buffer(kind: u32, max: usize) -> Vec<u8> {
    // SAFETY: return pointers are valid locals.
    let r = returned(|d, s| unsafe { proxy_get_buffer_bytes(kind, 0, max, d, s) });
    expect(r).unwrap_or_default()
}

fn property(path: &[&str]) -> Option<Vec<u8>> {
    let path = path.join("\0");
    // SAFETY: the path describes a live String; return pointers are valid locals.
    expect(returned(|d, s| unsafe {
        proxy_get_property(path.as_ptr(), path.len(), d, s)
    }))
}

fn now_ms() -> u64 {
    let mut ns = 0u64;
    // SAFETY: the host writes one u64 through a valid pointer.
    unsafe { proxy_get_current_time_nanoseconds(&mut ns) };
    ns / 1_000_000
}

fn define(kind: u32, name: &str) -> u32 {
    let mut id = 0;
    // SAFETY: the name describes a live &str; the id is a valid local.
    unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    id
}

fn inc(id: u32, by: i64) {
    // SAFETY: plain value call.
    let code = unsafe { proxy_increment_metric(id, by) };
    if code != 0 {
        let status = status_name(code);
        log(WARN, &format!("increment_metric failed: {status}"));
    }
}

/// Serializes a header map in the ABI's wire format.
fn serialize(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        for part in [k, v] {
            out.extend_from_slice(part.as_bytes());
            out.push(0);
        }
    }
    out
}

#[derive(Default, Clone, Copy)]
struct Metrics {
    ticks: u32,
    requests: u32,
    dispatch_errors: u32,
    responses: u32,
    call_failures: u32,
    inflight: u32,
    response_bytes: u32,
}

struct Settings {
    cluster: String,
    path: String,
    authority: String,
    tick_ms: u32,
    timeout_ms: u32,
    omit_method: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cluster: "collector".into(),
            path: "/ingest".into(),
            authority: "collector".into(),
            tick_ms: 1000,
            timeout_ms: 5000,
            omit_method: false,
        }
    }
}

#[derive(Default)]
struct Stream {
    buffer: bool,
    late_read: bool,
}

#[derive(Default)]
struct Module {
    metrics: Metrics,
    settings: Settings,
    queued: Vec<String>,
    inflight: u32,
    shutting_down: bool,
    streams: HashMap<u32, Stream>,
}

thread_local! {
    static MODULE: RefCell<Module> = RefCell::new(Module::default());
}

fn with<R>(f: impl FnOnce(&mut Module) -> R) -> R {
    MODULE.with(|m| f(&mut m.borrow_mut()))
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buf: Vec<u8> = Vec::with_capacity(size);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(id: u32, root: u32) {
    if root != 0 {
        with(|m| m.streams.insert(id, Stream::default()));
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root: u32, _size: usize) -> bool {
    std::panic::set_hook(Box::new(|info| log(CRITICAL, &info.to_string())));
    // Goes through WASI fd_write: the host must capture it.
    println!("stdout: vm started");
    // RandomState seeds itself from WASI random_get: deterministic per host seed.
    let random = RandomState::new().hash_one(42u64);
    log(INFO, &format!("random={random}"));
    let metrics = Metrics {
        ticks: define(COUNTER, "testmod.ticks"),
        requests: define(COUNTER, "testmod.requests"),
        dispatch_errors: define(COUNTER, "testmod.dispatch_errors"),
        responses: define(COUNTER, "testmod.responses"),
        call_failures: define(COUNTER, "testmod.call_failures"),
        inflight: define(GAUGE, "testmod.inflight"),
        response_bytes: define(HISTOGRAM, "testmod.response_bytes"),
    };
    // Envoy refuses to increment a counter by 0: the host must too.
    // SAFETY: plain value call.
    let zero = unsafe { proxy_increment_metric(metrics.ticks, 0) };
    let zero = if zero == 0 {
        "Ok(())".to_string()
    } else {
        format!("Err({})", status_name(zero))
    };
    log(DEBUG, &format!("zero_increment={zero}"));
    with(|m| m.metrics = metrics);
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_root: u32, size: usize) -> bool {
    let raw = buffer(PLUGIN_CONFIGURATION, size);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut settings = Settings::default();
    for pair in text.split([';', '\n']).filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key.trim() {
            "cluster" => settings.cluster = value.into(),
            "path" => settings.path = value.into(),
            "authority" => settings.authority = value.into(),
            "tick_ms" => settings.tick_ms = value.parse().unwrap_or(1000),
            "timeout_ms" => settings.timeout_ms = value.parse().unwrap_or(5000),
            "omit_method" => settings.omit_method = value == "1",
            "reject" => {
                log(ERROR, &format!("rejected: reject={value}"));
                return false;
            }
            other => {
                log(ERROR, &format!("unknown key {other}"));
                return false;
            }
        }
    }
    if settings.tick_ms > 0 {
        // SAFETY: plain value call.
        unsafe { proxy_set_tick_period_milliseconds(settings.tick_ms) };
    }
    log(INFO, &format!("configured tick_ms={}", settings.tick_ms));
    with(|m| m.settings = settings);
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(_root: u32) {
    with(|m| {
        inc(m.metrics.ticks, 1);
        log(DEBUG, &format!("tick now_ms={}", now_ms()));
        if m.queued.is_empty() {
            return;
        }
        let body = m.queued.join("\n");
        let s = &m.settings;
        let mut headers = vec![
            (":path", s.path.as_str()),
            (":authority", s.authority.as_str()),
            ("content-type", "text/plain"),
        ];
        if !s.omit_method {
            headers.push((":method", "POST"));
        }
        let headers = serialize(&headers);
        let mut token = 0;
        // SAFETY: every pointer/length pair describes a live buffer; the token is a local.
        let code = unsafe {
            proxy_http_call(
                s.cluster.as_ptr(),
                s.cluster.len(),
                headers.as_ptr(),
                headers.len(),
                body.as_ptr(),
                body.len(),
                std::ptr::null(),
                0,
                s.timeout_ms,
                &mut token,
            )
        };
        if code == 0 {
            let n = m.queued.len();
            m.queued.clear();
            m.inflight += 1;
            inc(m.metrics.inflight, 1);
            log(INFO, &format!("dispatched token={token} n={n}"));
        } else {
            inc(m.metrics.dispatch_errors, 1);
            log(WARN, &format!("dispatch failed: {}", status_name(code)));
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _ctx: u32,
    token: u32,
    nh: usize,
    body_size: usize,
    nt: usize,
) {
    let (metrics, drained) = with(|m| {
        m.inflight = m.inflight.saturating_sub(1);
        (m.metrics, m.shutting_down && m.inflight == 0)
    });
    inc(metrics.inflight, -1);
    if nh == 0 {
        inc(metrics.call_failures, 1);
        // Envoy hands a failed call no response maps: the module sees an empty one.
        let headers = header_pairs(CALL_RESPONSE_HEADERS).len();
        log(
            WARN,
            &format!("call token={token} failed headers={headers}"),
        );
    } else {
        let status = header(CALL_RESPONSE_HEADERS, ":status").unwrap_or_default();
        let body = String::from_utf8_lossy(&buffer(CALL_RESPONSE_BODY, body_size)).into_owned();
        let headers = header_pairs(CALL_RESPONSE_HEADERS).len();
        log(
            INFO,
            &format!(
                "call token={token} status={status} headers={headers} body={body} trailers={nt}"
            ),
        );
        inc(metrics.responses, 1);
        // SAFETY: plain value call.
        unsafe { proxy_record_metric(metrics.response_bytes, body_size as u64) };
    }
    if drained {
        log(INFO, "drained; calling done()");
        // SAFETY: plain call.
        unsafe { proxy_done() };
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_done(ctx: u32) -> bool {
    with(|m| {
        if m.streams.contains_key(&ctx) {
            return true;
        }
        m.shutting_down = true;
        if m.inflight > 0 {
            log(
                INFO,
                &format!("on_done: deferring, inflight={}", m.inflight),
            );
            false
        } else {
            log(INFO, "on_done: nothing in flight");
            true
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(ctx: u32) {
    with(|m| m.streams.remove(&ctx));
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(ctx: u32, _n: usize, eos: bool) -> u32 {
    let requests = with(|m| m.metrics.requests);
    inc(requests, 1);
    let path = header(REQUEST_HEADERS, ":path").unwrap_or_else(|| "-".into());
    let count = header_pairs(REQUEST_HEADERS).len();
    log(
        INFO,
        &format!("request path={path} headers={count} eos={eos}"),
    );
    match header(REQUEST_HEADERS, "x-trap").as_deref() {
        Some("panic") => panic!("x-trap: panic requested"),
        Some("exit") => std::process::exit(3),
        Some("unemulated") => {
            let (mut d, mut s, mut cas) = (std::ptr::null_mut(), 0, 0);
            // SAFETY: the key is a static string; return pointers are valid locals.
            unsafe { proxy_get_shared_data(b"k".as_ptr(), 1, &mut d, &mut s, &mut cas) };
        }
        _ => {}
    }
    if let Some(n) = header(REQUEST_HEADERS, "x-alloc").and_then(|v| v.parse::<usize>().ok()) {
        std::mem::forget(vec![1u8; n]);
    }
    let stream = Stream {
        buffer: header(REQUEST_HEADERS, "x-buffer").is_some(),
        late_read: header(REQUEST_HEADERS, "x-late-read").is_some(),
    };
    with(|m| {
        m.streams.insert(ctx, stream);
        m.queued.push(path);
    });
    0
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(ctx: u32, size: usize, eos: bool) -> u32 {
    let buffering = with(|m| m.streams.get(&ctx).is_some_and(|s| s.buffer));
    if buffering && !eos {
        return 1;
    }
    let body = buffer(REQUEST_BODY, size);
    log(
        INFO,
        &format!("request body size={size} read={} eos={eos}", body.len()),
    );
    0
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(ctx: u32, _n: usize, _eos: bool) -> u32 {
    let status = header(RESPONSE_HEADERS, ":status").unwrap_or_else(|| "-".into());
    log(INFO, &format!("response status={status}"));
    if with(|m| m.streams.get(&ctx).is_some_and(|s| s.late_read)) {
        let path = header(REQUEST_HEADERS, ":path");
        log(INFO, &format!("late read path={path:?}"));
    }
    0
}

#[no_mangle]
pub extern "C" fn proxy_on_log(_ctx: u32) {
    let code = property(&["response", "code"])
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_le_bytes);
    let id = property(&["request", "id"]).map(|b| String::from_utf8_lossy(&b).into_owned());
    let path = header(REQUEST_HEADERS, ":path");
    let status = header(RESPONSE_HEADERS, ":status");
    log(
        INFO,
        &format!("on_log code={code:?} request_id={id:?} path={path:?} status={status:?}"),
    );
}
