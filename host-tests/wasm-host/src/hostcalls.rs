//! The `env.proxy_*` functions adtap's filter imports, with Envoy's semantics where a test could
//! tell the difference (which maps exist in which callback, which statuses come back, metric
//! rules). Exactly the filter's imports (`filter/wasm/src/abi.rs`); `tests/adtap_smoke.rs`
//! checks the built module imports this very list, and any other proxy-wasm import traps
//! naming itself (`imports.rs`).
//!
//! Each function is a plain `fn(&mut Caller, args…) -> HcResult`; the table at the end
//! registers each one in one line. Envoy behaviours reproduced on purpose (from its
//! `context.cc`):
//! - Request/response header maps are only reachable while Envoy holds them: during their own
//!   callback and while the stream is paused there. In `on_log` they are readable again; a
//!   missing map then gives NotFound instead of BadArgument.
//! - Counters refuse increments <= 0 (BadArgument); gauges accept negative offsets;
//!   `record_metric` adds to a counter, sets a gauge, records into a histogram.
//! - `proxy_http_call`: unknown cluster or missing `:method`/`:path`/`:authority` → BadArgument;
//!   keys are lowercased and `content-length` is set for a non-empty body.
//! - `proxy_done` outside a deferred root `on_done` → NotFound.
//! - `proxy_log` lines below Envoy's log level (`HostOptions::log_level`) are dropped.
//!
//! Arguments the filter never passes (header maps other than request, response and call
//! response headers; buffers other than the request body, the call response body and the plugin
//! configuration) trap, naming what was asked, rather than being half-emulated.

use crate::abi::{buffer, map, LogLevel, MetricKind, Status};
use crate::guest::{
    deserialize_pairs, lossy_pairs, property_path, read, return_bytes, serialize_pairs, write,
    write_u32, HcErr, HcResult,
};
use crate::state::{Headers, HttpCall, LogSource, Metric, Pairs, State, ROOT_ID};
use wasmtime::format_err;
use wasmtime::Caller;

type C<'a, 'b> = &'a mut Caller<'b, State>;

/// A trap for an argument value adtap's filter never passes.
fn unemulated(function: &str, what: String) -> HcErr {
    HcErr::Trap(format_err!(
        "{function}: {what} is not emulated by adtap-wasm-host (adtap's filter never asks for it)"
    ))
}

/// The map a read refers to; `Ok(None)` = "not available now" (Envoy's null map).
fn read_map<'s>(st: &'s State, ty: u32, function: &str) -> Result<Option<&'s Pairs>, HcErr> {
    // Envoy's pointer to a stream's map, or the access-log phase.
    let held = |h: &'s Headers| h.map.as_ref().filter(|_| h.held || st.in_log);
    let stream = st.streams.get(&st.context);
    Ok(match ty {
        map::HTTP_CALL_RESPONSE_HEADERS => st.call_response.as_ref().map(|r| &r.headers),
        map::REQUEST_HEADERS => stream.and_then(|s| held(&s.request)),
        map::RESPONSE_HEADERS => stream.and_then(|s| held(&s.response)),
        map::REQUEST_TRAILERS..=map::HTTP_CALL_RESPONSE_TRAILERS => {
            return Err(unemulated(function, format!("header map type {ty}")))
        }
        _ => return Err(Status::BadArgument.into()),
    })
}

fn proxy_log(c: C, level: i32, ptr: i32, size: i32) -> HcResult {
    let level = LogLevel::from_abi(level as u32).ok_or(Status::BadArgument)?;
    if level < c.data().opts.log_level {
        return Ok(());
    }
    let msg = read(c, ptr, size)?;
    let msg = String::from_utf8_lossy(&msg).into_owned();
    c.data_mut().push_log(level, msg, LogSource::ProxyLog);
    Ok(())
}

fn proxy_get_current_time_nanoseconds(c: C, ret: i32) -> HcResult {
    let now = c.data().now_ns();
    Ok(write(c, ret, &now.to_le_bytes())?)
}

fn proxy_set_tick_period_milliseconds(c: C, period: i32) -> HcResult {
    let st = c.data_mut();
    if st.context != ROOT_ID {
        return Err(Status::BadArgument.into());
    }
    let period = period as u32;
    st.tick_period_ms = period;
    st.next_tick_ns = (period > 0).then(|| st.now_ns() + u64::from(period) * 1_000_000);
    Ok(())
}

fn proxy_get_buffer_bytes(c: C, ty: i32, start: i32, max: i32, rp: i32, rs: i32) -> HcResult {
    let body = {
        let st = c.data();
        let stream = st.streams.get(&st.context);
        match ty as u32 {
            buffer::HTTP_REQUEST_BODY => stream
                .filter(|s| s.request_body_live)
                .map(|s| s.request_body.clone())
                .unwrap_or_default(),
            buffer::HTTP_CALL_RESPONSE_BODY => st
                .call_response
                .as_ref()
                .map(|r| r.body.clone())
                .ok_or(Status::NotFound)?,
            buffer::PLUGIN_CONFIGURATION if st.configuring => st.opts.plugin_config.clone(),
            buffer::PLUGIN_CONFIGURATION => return Err(Status::NotFound.into()),
            other => {
                let what = format!("buffer type {other}");
                return Err(unemulated("proxy_get_buffer_bytes", what));
            }
        }
    };
    let start = start as u32 as usize;
    let max = max as u32 as usize;
    if start > body.len() {
        return Err(Status::BadArgument.into());
    }
    let end = start.saturating_add(max).min(body.len());
    let slice = body.get(start..end).ok_or(Status::BadArgument)?;
    if slice.is_empty() {
        return Ok(());
    }
    return_bytes(c, slice, rp, rs)
}

fn proxy_get_header_map_pairs(c: C, ty: i32, rp: i32, rs: i32) -> HcResult {
    let bytes = {
        let m = read_map(c.data(), ty as u32, "proxy_get_header_map_pairs")?;
        serialize_pairs(m.map(|m| m.as_slice()).unwrap_or(&[]))
    };
    return_bytes(c, &bytes, rp, rs)
}

fn proxy_get_header_map_value(c: C, ty: i32, kp: i32, ks: i32, rp: i32, rs: i32) -> HcResult {
    let key = read(c, kp, ks)?.to_ascii_lowercase();
    let value = {
        let st = c.data();
        let Some(m) = read_map(st, ty as u32, "proxy_get_header_map_value")? else {
            let s = if st.in_log {
                Status::NotFound
            } else {
                Status::BadArgument
            };
            return Err(s.into());
        };
        let found = m.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        found.ok_or(Status::NotFound)?
    };
    return_bytes(c, &value, rp, rs)
}

fn proxy_get_property(c: C, pp: i32, ps: i32, rp: i32, rs: i32) -> HcResult {
    let path = property_path(&read(c, pp, ps)?);
    let value = {
        let st = c.data();
        let stream = st.streams.get(&st.context);
        stream
            .and_then(|s| s.properties.get(&path))
            .or_else(|| st.root_properties.get(&path))
            .cloned()
            .ok_or(Status::NotFound)?
    };
    return_bytes(c, &value, rp, rs)
}

#[allow(clippy::too_many_arguments)]
fn proxy_http_call(
    c: C,
    up: i32,
    up_len: i32,
    hp: i32,
    hs: i32,
    bp: i32,
    bs: i32,
    tp: i32,
    ts: i32,
    timeout: i32,
    ret_token: i32,
) -> HcResult {
    let upstream = String::from_utf8_lossy(&read(c, up, up_len)?).into_owned();
    let headers = deserialize_pairs(&read(c, hp, hs)?).ok_or(Status::ParseFailure)?;
    let body = read(c, bp, bs)?;
    let trailers = deserialize_pairs(&read(c, tp, ts)?).ok_or(Status::ParseFailure)?;
    let st = c.data_mut();
    let reject = |st: &mut State| {
        st.rejected_calls += 1;
        Err(HcErr::Status(Status::BadArgument))
    };
    if timeout < 0 {
        return reject(st);
    }
    if let Some(known) = &st.opts.known_clusters {
        if !known.contains(&upstream) {
            return reject(st);
        }
    }
    let mut headers: Pairs = headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let has = |name: &[u8]| headers.iter().any(|(k, _)| k.as_slice() == name);
    if !has(b":path") || !has(b":method") || !has(b":authority") {
        return reject(st);
    }
    if !body.is_empty() {
        headers.retain(|(k, _)| k.as_slice() != b"content-length");
        headers.push((
            b"content-length".to_vec(),
            body.len().to_string().into_bytes(),
        ));
    }
    st.next_token += 1;
    let token = st.next_token;
    let call = HttpCall {
        token,
        context_id: st.context,
        upstream,
        headers: lossy_pairs(&headers),
        body,
        trailers: lossy_pairs(&trailers),
        timeout_ms: timeout as u32,
        dispatched_at_ns: st.now_ns(),
    };
    st.calls.insert(token, call);
    Ok(write_u32(c, ret_token, token)?)
}

fn proxy_done(c: C) -> HcResult {
    let st = c.data_mut();
    if st.pending_done && st.context == ROOT_ID {
        st.pending_done = false;
        st.finish_root();
        st.done_calls += 1;
        Ok(())
    } else {
        st.rejected_done_calls += 1;
        Err(Status::NotFound.into())
    }
}

fn proxy_define_metric(c: C, kind: i32, np: i32, ns: i32, ret: i32) -> HcResult {
    let kind = MetricKind::from_abi(kind as u32).ok_or(Status::BadArgument)?;
    let name = String::from_utf8_lossy(&read(c, np, ns)?).into_owned();
    let st = c.data_mut();
    st.next_metric += 1;
    // Like Envoy: the type lives in the low bits of the id; same name = same stat.
    let id = (st.next_metric << 2) | kind.to_abi();
    st.metric_ids.insert(id, (kind, name.clone()));
    st.metrics.entry((kind, name)).or_insert(Metric {
        kind,
        value: 0,
        recorded: Vec::new(),
    });
    Ok(write_u32(c, ret, id)?)
}

fn metric_mut(st: &mut State, id: i32) -> Result<&mut Metric, Status> {
    let key = st
        .metric_ids
        .get(&(id as u32))
        .ok_or(Status::NotFound)?
        .clone();
    st.metrics.get_mut(&key).ok_or(Status::NotFound)
}

fn proxy_increment_metric(c: C, id: i32, offset: i64) -> HcResult {
    let m = metric_mut(c.data_mut(), id)?;
    match m.kind {
        MetricKind::Counter if offset > 0 => m.value = m.value.saturating_add(offset),
        MetricKind::Gauge => m.value = m.value.saturating_add(offset),
        MetricKind::Counter | MetricKind::Histogram => return Err(Status::BadArgument.into()),
    }
    Ok(())
}

fn proxy_record_metric(c: C, id: i32, value: i64) -> HcResult {
    let m = metric_mut(c.data_mut(), id)?;
    match m.kind {
        MetricKind::Counter => m.value = m.value.saturating_add(value),
        MetricKind::Gauge => m.value = value,
        MetricKind::Histogram => m.recorded.push(value as u64),
    }
    Ok(())
}

crate::imports::import_table! { "env";
    proxy_log(level: i32, ptr: i32, size: i32);
    proxy_get_current_time_nanoseconds(ret: i32);
    proxy_set_tick_period_milliseconds(period: i32);
    proxy_get_buffer_bytes(ty: i32, start: i32, max: i32, rp: i32, rs: i32);
    proxy_get_header_map_pairs(ty: i32, rp: i32, rs: i32);
    proxy_get_header_map_value(ty: i32, kp: i32, ks: i32, rp: i32, rs: i32);
    proxy_get_property(pp: i32, ps: i32, rp: i32, rs: i32);
    proxy_http_call(u: i32, ul: i32, h: i32, hl: i32, b: i32, bl: i32, t: i32, tl: i32, ms: i32, r: i32);
    proxy_done();
    proxy_define_metric(kind: i32, np: i32, ns: i32, ret: i32);
    proxy_increment_metric(id: i32, offset: i64);
    proxy_record_metric(id: i32, value: i64);
}
