//! A tiny proxy-wasm module used only to test `adtap-wasm-host` itself.
//!
//! It touches every host feature the adtap filter relies on, in small observable steps: every
//! interesting thing it does is logged (`proxy_log`) or counted (metrics), so the host's tests can
//! assert on logs and metrics without knowing anything else about the module.
//!
//! Plugin configuration: `key=value` pairs separated by `;` or newlines.
//! - `cluster` (default `collector`), `path` (`/ingest`), `authority` (`collector`): where the
//!   tick sends queued request paths.
//! - `tick_ms` (default 1000, 0 = no tick), `timeout_ms` (default 5000).
//! - `reject=1`: `on_configure` returns false.
//! - `omit_method=1`: dispatch without `:method` (the host must refuse with BadArgument).
//!
//! Per-request switches (request headers): `x-trap: panic|exit` (trap via panic or
//! `proc_exit`), `x-alloc: N` (leak N bytes, to hit the memory cap), `x-buffer` (pause the
//! request body until end of stream, then read it whole), `x-late-read` (read a request header
//! again in `on_http_response_headers`, which Envoy no longer allows: the SDK then panics).
//! Response headers: `x-resp: 1` is set (replace) and `server` removed.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::time::{Duration, Instant, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Shared {
    queued: Vec<String>,
    inflight: u32,
    shutting_down: bool,
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
    tick_ms: u64,
    timeout_ms: u64,
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
struct Root {
    shared: Rc<RefCell<Shared>>,
    metrics: Metrics,
    settings: Settings,
    started: Option<Instant>,
}

fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

fn define(kind: MetricType, name: &str) -> u32 {
    hostcalls::define_metric(kind, name).unwrap_or(0)
}

fn inc(id: u32, by: i64) {
    if let Err(status) = hostcalls::increment_metric(id, by) {
        log(
            LogLevel::Warn,
            &format!("increment_metric failed: {status:?}"),
        );
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, nh: usize, body_size: usize, nt: usize) {
        let drained = {
            let mut shared = self.shared.borrow_mut();
            shared.inflight = shared.inflight.saturating_sub(1);
            shared.shutting_down && shared.inflight == 0
        };
        inc(self.metrics.inflight, -1);
        if nh == 0 {
            inc(self.metrics.call_failures, 1);
            let (code, msg) = self.get_grpc_status();
            log(
                LogLevel::Warn,
                &format!(
                    "call token={token} failed status={code} msg={}",
                    msg.unwrap_or_default()
                ),
            );
        } else {
            let status = self
                .get_http_call_response_header(":status")
                .unwrap_or_default();
            let body = self
                .get_http_call_response_body(0, body_size)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let headers = self.get_http_call_response_headers().len();
            log(
                LogLevel::Info,
                &format!(
                    "call token={token} status={status} headers={headers} body={body} trailers={nt}"
                ),
            );
            inc(self.metrics.responses, 1);
            let _ = hostcalls::record_metric(self.metrics.response_bytes, body_size as u64);
        }
        if drained {
            log(LogLevel::Info, "drained; calling done()");
            self.done();
        }
    }

    fn on_done(&mut self) -> bool {
        let mut shared = self.shared.borrow_mut();
        shared.shutting_down = true;
        if shared.inflight > 0 {
            log(
                LogLevel::Info,
                &format!("on_done: deferring, inflight={}", shared.inflight),
            );
            false
        } else {
            log(LogLevel::Info, "on_done: nothing in flight");
            true
        }
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        self.started = Some(Instant::now());
        let vm_config = self.get_vm_configuration().unwrap_or_default();
        log(
            LogLevel::Info,
            &format!("vm_config={}", String::from_utf8_lossy(&vm_config)),
        );
        // Goes through WASI fd_write: the host must capture it.
        println!("stdout: vm started");
        // RandomState seeds itself from WASI random_get: deterministic per host seed.
        let random = RandomState::new().hash_one(42u64);
        log(LogLevel::Info, &format!("random={random}"));
        self.metrics = Metrics {
            ticks: define(MetricType::Counter, "testmod.ticks"),
            requests: define(MetricType::Counter, "testmod.requests"),
            dispatch_errors: define(MetricType::Counter, "testmod.dispatch_errors"),
            responses: define(MetricType::Counter, "testmod.responses"),
            call_failures: define(MetricType::Counter, "testmod.call_failures"),
            inflight: define(MetricType::Gauge, "testmod.inflight"),
            response_bytes: define(MetricType::Histogram, "testmod.response_bytes"),
        };
        // Envoy refuses to increment a counter by 0: the host must too.
        let zero = hostcalls::increment_metric(self.metrics.ticks, 0);
        log(LogLevel::Debug, &format!("zero_increment={zero:?}"));
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let raw = self.get_plugin_configuration().unwrap_or_default();
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
                    log(LogLevel::Error, &format!("rejected: reject={value}"));
                    return false;
                }
                other => {
                    log(LogLevel::Error, &format!("unknown key {other}"));
                    return false;
                }
            }
        }
        if settings.tick_ms > 0 {
            self.set_tick_period(Duration::from_millis(settings.tick_ms));
        }
        log(
            LogLevel::Info,
            &format!("configured tick_ms={}", settings.tick_ms),
        );
        self.settings = settings;
        true
    }

    fn on_tick(&mut self) {
        inc(self.metrics.ticks, 1);
        let now_ms = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mono_ms = self.started.map(|s| s.elapsed().as_millis()).unwrap_or(0);
        log(
            LogLevel::Debug,
            &format!("tick now_ms={now_ms} mono_ms={mono_ms}"),
        );
        let body = {
            let shared = self.shared.borrow();
            if shared.queued.is_empty() {
                return;
            }
            shared.queued.join("\n")
        };
        let s = &self.settings;
        let mut headers = vec![
            (":path", s.path.as_str()),
            (":authority", s.authority.as_str()),
            ("content-type", "text/plain"),
        ];
        if !s.omit_method {
            headers.push((":method", "POST"));
        }
        let timeout = Duration::from_millis(s.timeout_ms);
        match self.dispatch_http_call(&s.cluster, headers, Some(body.as_bytes()), vec![], timeout) {
            Ok(token) => {
                let mut shared = self.shared.borrow_mut();
                let n = shared.queued.len();
                shared.queued.clear();
                shared.inflight += 1;
                inc(self.metrics.inflight, 1);
                log(LogLevel::Info, &format!("dispatched token={token} n={n}"));
            }
            Err(status) => {
                inc(self.metrics.dispatch_errors, 1);
                log(LogLevel::Warn, &format!("dispatch failed: {status:?}"));
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            shared: self.shared.clone(),
            requests: self.metrics.requests,
            buffer: false,
            late_read: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    shared: Rc<RefCell<Shared>>,
    requests: u32,
    buffer: bool,
    late_read: bool,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _n: usize, eos: bool) -> Action {
        inc(self.requests, 1);
        let path = self
            .get_http_request_header(":path")
            .unwrap_or_else(|| "-".into());
        let count = self.get_http_request_headers().len();
        log(
            LogLevel::Info,
            &format!("request path={path} headers={count} eos={eos}"),
        );
        match self.get_http_request_header("x-trap").as_deref() {
            Some("panic") => panic!("x-trap: panic requested"),
            Some("exit") => std::process::exit(3),
            _ => {}
        }
        if let Some(n) = self
            .get_http_request_header("x-alloc")
            .and_then(|v| v.parse::<usize>().ok())
        {
            std::mem::forget(vec![1u8; n]);
        }
        self.buffer = self.get_http_request_header("x-buffer").is_some();
        self.late_read = self.get_http_request_header("x-late-read").is_some();
        self.add_http_request_header("x-testmod", "seen");
        self.set_property(vec!["testmod", "seen"], Some(path.as_bytes()));
        self.shared.borrow_mut().queued.push(path);
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        if self.buffer && !eos {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, size).unwrap_or_default();
        log(
            LogLevel::Info,
            &format!("request body size={size} read={} eos={eos}", body.len()),
        );
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _n: usize, _eos: bool) -> Action {
        let status = self
            .get_http_response_header(":status")
            .unwrap_or_else(|| "-".into());
        log(LogLevel::Info, &format!("response status={status}"));
        self.set_http_response_header("x-resp", Some("1"));
        self.remove_http_response_header("server");
        if self.late_read {
            let path = self.get_http_request_header(":path");
            log(LogLevel::Info, &format!("late read path={path:?}"));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let code = self
            .get_property(vec!["response", "code"])
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_le_bytes);
        let id = self
            .get_property(vec!["request", "id"])
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let seen = self
            .get_property(vec!["testmod", "seen"])
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let path = self.get_http_request_header(":path");
        log(
            LogLevel::Info,
            &format!("on_log code={code:?} request_id={id:?} seen={seen:?} path={path:?}"),
        );
    }
}
