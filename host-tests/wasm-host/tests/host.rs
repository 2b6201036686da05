//! The host's own suite: every emulated feature checked against the raw-ABI test module
//! (`test-module/`), whose behaviour is documented in its `lib.rs`, and the loud failure of a
//! function the host does not emulate.

#![cfg(test)]

mod common;

use adtap_wasm_host::{
    check_module, compile, deserialize_pairs, emulated, envoy_provides, serialize_pairs, Action,
    Host, HostOptions, LogLevel, LogSource, EMULATED_PROXY_FUNCTIONS, EMULATED_WASI_FUNCTIONS,
};
use common::{
    assert_logged, host, host_with, module, open_stream, opts, request_and_flush, simple_request,
};
use std::time::Duration;

const START_MS: u64 = 1_700_000_000_000;

/// Smallest valid module importing `module::name` (a `() -> ()` function), nothing else.
fn module_importing(module: &str, name: &str) -> Vec<u8> {
    let mut import = vec![1u8, module.len() as u8];
    import.extend_from_slice(module.as_bytes());
    import.push(name.len() as u8);
    import.extend_from_slice(name.as_bytes());
    import.extend_from_slice(&[0x00, 0x00]); // func, type 0
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // type section: () -> ()
    wasm.push(0x02);
    wasm.push(import.len() as u8);
    wasm.extend_from_slice(&import);
    wasm
}

/// A fresh host, one request carrying `switch` whose `on_request_headers` must trap; the host
/// and the whole error chain.
fn trapping_request(switch: (&str, &str)) -> (Host, String) {
    let mut h = host("");
    let (_, r) = open_stream(&mut h, &[(":path", "/"), switch], true);
    (h, format!("{:#}", r.unwrap_err()))
}

#[test]
fn refuses_imports_envoy_does_not_provide() {
    for (m, n) in [
        ("env", "evil_fn"),
        ("wasi_snapshot_preview1", "sock_accept"),
    ] {
        let err = compile(&module_importing(m, n)).unwrap_err().to_string();
        assert!(err.contains(&format!("{m}::{n}")), "{err}");
        assert!(err.contains("Envoy does not provide"), "{err}");
    }
    // An allowed import alone still is not a proxy-wasm module.
    let err = compile(&module_importing("env", "proxy_log"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("memory"), "{err}");
}

#[test]
fn the_test_module_imports_what_the_host_emulates_and_one_more() {
    let m = module();
    check_module(m).unwrap();
    let imports: Vec<_> = m.imports().map(|i| (i.module(), i.name())).collect();
    assert!(imports.iter().all(|(m, n)| envoy_provides(m, n)));
    let others: Vec<(&str, &str)> = imports
        .iter()
        .copied()
        .filter(|(m, n)| !emulated(m, n))
        .collect();
    // Every emulated function is exercised by the module; the one other import is there to
    // show an import Envoy provides loads, and traps only when called.
    assert_eq!(
        imports.len() - others.len(),
        EMULATED_PROXY_FUNCTIONS.len() + EMULATED_WASI_FUNCTIONS.len(),
        "{imports:?}"
    );
    assert_eq!(others, [("env", "proxy_get_shared_data")]);
}

#[test]
fn a_function_the_host_does_not_emulate_traps_naming_itself() {
    let (h, err) = trapping_request(("x-trap", "unemulated"));
    assert!(err.contains("proxy_on_request_headers"), "{err}");
    assert!(
        err.contains("env::proxy_get_shared_data is not emulated by adtap-wasm-host"),
        "{err}"
    );
    assert!(h.trapped().is_some());
}

#[test]
fn start_logs_stdout() {
    let h = host("");
    assert_logged(&h, "configured tick_ms=1000");
    let stdout = h.logs_containing("stdout: vm started");
    assert_eq!(stdout.len(), 1);
    assert_eq!(stdout[0].source, LogSource::Stdout);
    assert_eq!(stdout[0].level, LogLevel::Info);
    assert_eq!(
        stdout[0].message, "stdout: vm started",
        "trailing newline stripped"
    );
    // Envoy refuses a counter increment of 0.
    assert_logged(&h, "zero_increment=Err(BadArgument)");
    assert_eq!(h.root_id(), 1);
    assert!(h.trapped().is_none());
}

#[test]
fn log_lines_below_envoys_level_are_dropped() {
    let h = host_with("", |o| o.log_level = LogLevel::Info);
    assert_logged(&h, "configured tick_ms=1000");
    assert!(
        !h.has_log("zero_increment="),
        "a debug line: {}",
        h.dump_logs()
    );
}

fn random_line(seed: u64) -> String {
    let h = host_with("", |o| o.random_seed = seed);
    h.logs_containing("random=")[0].message.clone()
}

#[test]
fn randomness_is_seeded() {
    assert_eq!(random_line(7), random_line(7));
    assert_ne!(random_line(7), random_line(8));
}

#[test]
fn bad_configuration_is_rejected() {
    let mut h = Host::new(module(), opts("reject=1")).unwrap();
    assert!(h.start_vm().unwrap());
    assert!(!h.configure().unwrap());
    assert_logged(&h, "rejected: reject=1");
    // Reconfiguring with a good config works (Envoy's config update).
    h.set_plugin_config("tick_ms=250");
    assert!(h.configure().unwrap());
    assert_eq!(h.tick_period(), Some(Duration::from_millis(250)));
    // Host::start reports the refusal as an error with the logs.
    let err = Host::start(module(), opts("nonsense=1"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown key nonsense"), "{err}");
}

#[test]
fn ticks_follow_the_test_clock() {
    let mut h = host("tick_ms=500");
    assert_eq!(h.tick_period(), Some(Duration::from_millis(500)));
    // Moving the clock alone never ticks.
    h.advance(Duration::from_millis(400));
    assert_eq!(h.metric("testmod.ticks"), Some(0));
    // The first tick is due 500 ms after set_tick_period (t = 0): at 500, 1000, 1500, 2000.
    assert_eq!(h.advance_and_tick(Duration::from_millis(1600)).unwrap(), 4);
    assert_eq!(h.metric("testmod.ticks"), Some(4));
    assert_eq!(h.elapsed(), Duration::from_millis(2000));
    let ticks: Vec<_> = h
        .logs_containing("tick now_ms=")
        .iter()
        .map(|l| l.message.clone())
        .collect();
    assert_eq!(
        ticks[0],
        format!("tick now_ms={}", START_MS + 500),
        "proxy time follows the test clock"
    );
    assert_eq!(ticks[3], format!("tick now_ms={}", START_MS + 2000));
    // tick() fires at once, off schedule.
    assert!(h.tick().unwrap());
    assert_eq!(h.metric("testmod.ticks"), Some(5));

    let mut no_tick = host("tick_ms=0");
    assert!(!no_tick.tick().unwrap());
    assert_eq!(
        no_tick.advance_and_tick(Duration::from_secs(60)).unwrap(),
        0
    );
}

#[test]
fn http_call_is_recorded_and_answered() {
    let mut h = host("tick_ms=1000;timeout_ms=1500");
    // Nothing queued: ticks dispatch nothing.
    h.advance_and_tick(Duration::from_secs(1)).unwrap();
    assert!(h.pending_calls().is_empty());

    simple_request(&mut h, "/a");
    request_and_flush(&mut h, "/b");
    let calls = h.pending_calls();
    assert_eq!(calls.len(), 1, "{}", h.dump_logs());
    let call = &calls[0];
    assert_eq!(call.upstream, "collector");
    assert_eq!(call.context_id, h.root_id());
    assert_eq!(call.header(":method"), Some("POST"));
    assert_eq!(call.header(":path"), Some("/ingest"));
    assert_eq!(call.header(":authority"), Some("collector"));
    assert_eq!(call.header("content-type"), Some("text/plain"));
    assert_eq!(call.header("content-length"), Some("5"), "set like Envoy");
    assert_eq!(call.body_str(), "/a\n/b");
    assert_eq!(call.timeout_ms, 1500);
    assert_eq!(call.dispatched_at_ns, (START_MS + 2000) * 1_000_000);
    assert_eq!(h.metric("testmod.inflight"), Some(1));

    h.respond(call.token, 200, &[("X-Reply", "yes")], b"ok")
        .unwrap();
    let answered = format!(
        "call token={} status=200 headers=2 body=ok trailers=0",
        call.token
    );
    assert_logged(&h, &answered);
    assert!(h.pending_calls().is_empty());
    assert_eq!(h.metric("testmod.responses"), Some(1));
    assert_eq!(
        h.metric("testmod.inflight"),
        Some(0),
        "gauge went back down"
    );
    assert_eq!(h.histogram("testmod.response_bytes"), Some(vec![2]));
    // A token is answered once.
    assert!(h.respond(call.token, 200, &[("a", "b")], b"").is_err());
}

#[test]
fn failed_call_has_no_headers() {
    let mut h = host("");
    let token = request_and_flush(&mut h, "/x").unwrap();
    h.fail_call(token).unwrap();
    assert_logged(&h, &format!("call token={token} failed headers=0"));
    assert_eq!(h.metric("testmod.call_failures"), Some(1));
    assert_eq!(h.metric("testmod.responses"), Some(0));
}

#[test]
fn timeouts_fire_in_time_order() {
    let mut h = host("tick_ms=1000;timeout_ms=300");
    let token = request_and_flush(&mut h, "/t").unwrap();
    h.clear_logs();
    // Deadline 1.3 s comes before the tick at 2 s.
    h.advance_and_tick(Duration::from_secs(1)).unwrap();
    let lines: Vec<_> = h.logs().iter().map(|l| l.message.clone()).collect();
    let timeout_at = lines
        .iter()
        .position(|l| {
            l.contains(&format!(
                "call token={token} status=504 headers=3 body=upstream request timeout"
            ))
        })
        .expect("timeout response");
    let tick_at = lines
        .iter()
        .position(|l| l.starts_with("tick now_ms="))
        .unwrap();
    assert!(timeout_at < tick_at, "{lines:?}");
    assert_eq!(h.logs()[timeout_at].at_ns, (START_MS + 1300) * 1_000_000);
    assert!(h.pending_calls().is_empty());

    // Explicit timeout_call does the same; auto timeouts can be switched off.
    let mut h = host_with("timeout_ms=300", |o| o.auto_timeout = false);
    simple_request(&mut h, "/t");
    h.advance_and_tick(Duration::from_secs(10)).unwrap();
    let token = h.pending_calls()[0].token;
    h.timeout_call(token).unwrap();
    assert_logged(&h, "status=504");
}

#[test]
fn calls_envoy_would_refuse_fail_at_once() {
    // A host knowing only the cluster `kafka_rest`, after one request and a tick.
    let flushed = |config: &str| {
        let mut h = host_with(config, |o| {
            o.known_clusters = Some(vec!["kafka_rest".into()])
        });
        request_and_flush(&mut h, "/u");
        h
    };
    // Unknown cluster.
    let h = flushed("cluster=collector");
    assert!(h.pending_calls().is_empty());
    assert_eq!(h.rejected_calls(), 1);
    assert_logged(&h, "dispatch failed: BadArgument");
    assert_eq!(h.metric("testmod.dispatch_errors"), Some(1));

    // Known cluster but no :method.
    let h = flushed("cluster=kafka_rest;omit_method=1");
    assert_eq!(h.rejected_calls(), 1);
    assert!(h.pending_calls().is_empty());

    // And the good case on the same known cluster.
    let h = flushed("cluster=kafka_rest");
    assert_eq!(h.pending_calls()[0].upstream, "kafka_rest");
}

#[test]
fn stream_headers_properties_and_log_phase() {
    let mut h = host("");
    let (id, action) = open_stream(
        &mut h,
        &[(":path", "/p"), (":method", "GET"), ("X-Mixed", "1")],
        true,
    );
    assert_eq!(action.unwrap(), Action::Continue);
    assert_logged(&h, "request path=/p headers=3 eos=true");
    let headers = h.request_header_map(id).unwrap();
    assert!(
        headers.contains(&("x-mixed".into(), "1".into())),
        "keys lowercased"
    );
    h.response_headers(id, &[(":status", "404")], true).unwrap();
    assert_logged(&h, "response status=404");
    h.set_property_u64(id, &["response", "code"], 404).unwrap();
    h.set_property(id, &["request", "id"], "req-1").unwrap();
    assert_eq!(h.property(id, &["request", "id"]), Some(b"req-1".to_vec()));
    h.log(id).unwrap();
    // In on_log both header maps are readable again (Envoy's access-log phase).
    assert_logged(
        &h,
        r#"on_log code=Some(404) request_id=Some("req-1") path=Some("/p") status=Some("404")"#,
    );
    assert!(h.done_stream(id).unwrap());
    assert!(h.request_header_map(id).is_none(), "stream deleted");
    assert!(h.request_headers(id, &[(":path", "/")], true).is_err());
}

#[test]
fn request_headers_are_gone_once_the_request_continued() {
    // Envoy drops its request-header pointer when on_request_headers returns Continue: a later
    // read gets BadArgument, on which the module panics (as the SDK's getters do). The host
    // reproduces it.
    let mut h = host("");
    let (id, r) = open_stream(&mut h, &[(":path", "/late"), ("x-late-read", "1")], true);
    r.unwrap();
    let err = h
        .response_headers(id, &[(":status", "200")], true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("proxy_on_response_headers"), "{err}");
    assert!(err.contains("unexpected status: 2"), "{err}");
}

#[test]
fn paused_bodies_accumulate_like_envoy_buffering() {
    let mut h = host("");
    let (id, r) = open_stream(&mut h, &[(":path", "/b"), ("x-buffer", "1")], false);
    r.unwrap();
    assert_eq!(h.request_body(id, b"ab", false).unwrap(), Action::Pause);
    assert_eq!(h.request_body(id, b"cd", false).unwrap(), Action::Pause);
    assert_eq!(h.request_body(id, b"ef", true).unwrap(), Action::Continue);
    assert_logged(&h, "request body size=6 read=6 eos=true");

    let (id, r) = open_stream(&mut h, &[(":path", "/nb")], false);
    r.unwrap();
    h.request_body(id, b"abc", false).unwrap();
    h.request_body(id, b"de", true).unwrap();
    assert_logged(&h, "request body size=3 read=3 eos=false");
    assert!(
        h.has_log("request body size=2 read=2 eos=true"),
        "not accumulated"
    );
}

#[test]
fn shutdown_waits_for_calls_then_done() {
    let mut h = host("");
    let token = request_and_flush(&mut h, "/s").unwrap();

    assert!(!h.shutdown().unwrap(), "deferred while a call is in flight");
    assert_logged(&h, "on_done: deferring, inflight=1");
    assert!(!h.is_done());
    assert_eq!(h.done_called(), 0);

    h.respond(token, 200, &[("a", "b")], b"").unwrap();
    assert_logged(&h, "drained; calling done()");
    assert_eq!(h.done_called(), 1);
    assert_eq!(h.rejected_done_calls(), 0);
    assert!(h.is_done());
    h.delete_vm().unwrap();
    assert!(h.tick().is_err(), "nothing runs after delete");

    let mut idle = host("");
    assert!(idle.shutdown().unwrap());
    assert!(idle.is_done());
    assert_eq!(idle.done_called(), 0);
}

#[test]
fn stream_calls_die_with_the_stream_and_vm_delete_cancels() {
    let mut h = host("");
    request_and_flush(&mut h, "/c");
    assert_eq!(h.pending_calls().len(), 1);
    let open = h.new_http_context().unwrap();
    h.delete_vm().unwrap();
    assert!(h.pending_calls().is_empty());
    assert_eq!(h.cancelled_calls().len(), 1);
    assert!(h.request_header_map(open).is_none());
}

#[test]
fn traps_are_errors_naming_the_callback() {
    let (mut h, err) = trapping_request(("x-trap", "panic"));
    assert!(err.contains("proxy_on_request_headers"), "{err}");
    assert!(h.trapped().unwrap().starts_with("proxy_on_request_headers"));
    // The module's panic hook logged the message (Critical) before the abort; it leads the
    // error.
    assert!(
        err.contains("guest said:") && err.contains("x-trap: panic requested"),
        "{err}"
    );
    let panics = h.logs_containing("x-trap: panic requested");
    assert_eq!(panics.len(), 1);
    assert_eq!(panics[0].level, LogLevel::Critical);
    // The VM is dead now, as in Envoy: nothing else runs.
    let again = h.tick().unwrap_err().to_string();
    assert!(again.contains("trapped earlier"), "{again}");

    let (_, err) = trapping_request(("x-trap", "exit"));
    assert!(err.contains("proc_exit(3)"), "{err}");
}

#[test]
fn invalid_utf8_header_values_reach_the_module_raw() {
    // The module reads headers as UTF-8 strings and panics on anything else (as the SDK's
    // string getters do). The host passes raw bytes through, so the pitfall is visible here.
    let mut h = host("");
    let bad: &[u8] = b"\xff\xfe";
    let (_, r) = open_stream(
        &mut h,
        &[(b":path".as_slice(), b"/".as_slice()), (b"x-bad", bad)],
        true,
    );
    assert!(r.is_err());
    assert!(h.trapped().is_some());
}

#[test]
fn memory_is_capped() {
    let limit = 4 << 20;
    let capped = || host_with("", |o| o.memory_limit_bytes = limit);
    let mut h = capped();
    let before = h.linear_memory_bytes();
    let (_, r) = open_stream(&mut h, &[(":path", "/"), ("x-alloc", "2000000")], true);
    r.unwrap();
    assert!(h.linear_memory_bytes() > before, "memory grew");
    assert!(h.linear_memory_bytes() <= limit);

    let mut h = capped();
    let (_, r) = open_stream(&mut h, &[(":path", "/"), ("x-alloc", "8000000")], true);
    let err = r.unwrap_err().to_string();
    // std's OOM handler writes stderr in pieces: the host joins them into one line.
    assert!(
        err.contains("memory allocation of 8000000 bytes failed"),
        "{err}"
    );
    let oom = h.logs_containing("memory allocation of 8000000 bytes failed");
    assert_eq!(oom[0].source, LogSource::Stderr);
    assert!(h.linear_memory_bytes() <= limit);
}

#[test]
fn linear_memory_stays_flat_over_repeated_cycles() {
    let mut h = host("");
    let mut sizes = Vec::new();
    for _ in 0..10 {
        for i in 0..100 {
            simple_request(&mut h, &format!("/cycle/{i}"));
        }
        h.advance_and_tick(Duration::from_secs(1)).unwrap();
        for call in h.pending_calls() {
            h.respond(call.token, 200, &[("a", "b")], b"ok").unwrap();
        }
        sizes.push(h.linear_memory_bytes());
    }
    assert_eq!(sizes[2], sizes[9], "{sizes:?}");
    assert_eq!(h.metric("testmod.requests"), Some(1000));
    assert_eq!(h.metric("testmod.responses"), Some(10));
}

#[test]
fn runaway_guest_is_stopped_by_fuel() {
    // A tiny fuel budget makes even start-up run out: the error names the callback.
    let o = HostOptions {
        fuel_per_callback: 1_000,
        ..opts("")
    };
    let mut h = Host::new(module(), o).unwrap_or_else(|e| panic!("{e:#}"));
    let err = h.start_vm().unwrap_err();
    assert!(format!("{err:#}").contains("proxy_on_"), "{err:#}");
    assert!(h.trapped().is_some());
}

#[test]
fn header_map_wire_format_round_trips() {
    let pairs = vec![
        (b":path".to_vec(), b"/".to_vec()),
        (b"x-empty".to_vec(), Vec::new()),
        (b"x-bin".to_vec(), vec![0xff, 0x00, 0x7f]),
    ];
    let bytes = serialize_pairs(&pairs);
    assert_eq!(&bytes[..4], &3u32.to_le_bytes());
    assert_eq!(deserialize_pairs(&bytes), Some(pairs));
    assert_eq!(
        deserialize_pairs(&bytes[..bytes.len() - 2]),
        None,
        "truncated"
    );
    assert_eq!(deserialize_pairs(&[]), Some(vec![]));
    assert_eq!(deserialize_pairs(&[9, 0, 0, 0]), None);
}
