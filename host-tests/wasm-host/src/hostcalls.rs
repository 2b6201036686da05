//! The `env.proxy_*` host functions, with Envoy's semantics where a test could tell the
//! difference (which maps exist in which callback, which statuses come back, metric rules).
//!
//! Each function is a plain `fn(&mut Caller, args…) -> HcResult`; `link` registers them all.
//! Envoy behaviours reproduced on purpose (from Envoy's `context.cc`):
//! - Request/response header maps are only reachable while Envoy holds them: during their own
//!   callback and while the stream is paused there. In `on_log` they are readable again; a
//!   missing map then gives NotFound instead of BadArgument.
//! - Counters refuse increments <= 0 (BadArgument); gauges accept negative offsets;
//!   `record_metric` adds to a counter, sets a gauge, records into a histogram.
//! - `proxy_http_call`: unknown cluster or missing `:method`/`:path`/`:authority` → BadArgument;
//!   keys are lowercased and `content-length` is set for a non-empty body.
//! - `proxy_done` outside a deferred root `on_done` → NotFound.

use crate::abi::{buffer, map, LogLevel, MetricKind, Status, StreamKind};
use crate::guest::{
    deserialize_pairs, finish, lossy_pairs, property_path, read, return_bytes, serialize_pairs,
    write_u32, write_u64, HcErr, HcResult,
};
use crate::state::{HttpCall, LocalResponse, LogSource, Metric, Pairs, State};
use std::collections::VecDeque;
use wasmtime::Result;
use wasmtime::{Caller, Linker};

type C<'a, 'b> = &'a mut Caller<'b, State>;

fn lower(key: &[u8]) -> Vec<u8> {
    key.to_ascii_lowercase()
}

/// The map a read refers to; `Ok(None)` = "not available now" (Envoy's null map).
fn read_map(st: &State, ty: u32) -> Result<Option<&Pairs>, Status> {
    match ty {
        map::HTTP_CALL_RESPONSE_HEADERS => Ok(st.call_response.as_ref().map(|r| &r.headers)),
        map::HTTP_CALL_RESPONSE_TRAILERS => Ok(st.call_response.as_ref().map(|r| &r.trailers)),
        map::REQUEST_HEADERS
        | map::REQUEST_TRAILERS
        | map::RESPONSE_HEADERS
        | map::RESPONSE_TRAILERS => {
            let Some(s) = st.streams.get(&st.effective_context) else {
                return Ok(None);
            };
            let (m, live) = match ty {
                map::REQUEST_HEADERS => (&s.request_headers, s.live[0]),
                map::REQUEST_TRAILERS => (&s.request_trailers, s.live[1] && !st.in_log),
                map::RESPONSE_HEADERS => (&s.response_headers, s.live[2]),
                _ => (&s.response_trailers, s.live[3]),
            };
            Ok(if live || (st.in_log && ty != map::REQUEST_TRAILERS) {
                m.as_ref()
            } else {
                None
            })
        }
        4 | 5 => Ok(None),
        _ => Err(Status::BadArgument),
    }
}

/// The map a mutation refers to; BadArgument when Envoy has no mutable map.
fn write_map(st: &mut State, ty: u32) -> Result<&mut Pairs, Status> {
    if st.in_log {
        return Err(Status::BadArgument);
    }
    let id = st.effective_context;
    let s = st.streams.get_mut(&id).ok_or(Status::BadArgument)?;
    let (m, live) = match ty {
        map::REQUEST_HEADERS => (&mut s.request_headers, s.live[0]),
        map::REQUEST_TRAILERS => (&mut s.request_trailers, s.live[1]),
        map::RESPONSE_HEADERS => (&mut s.response_headers, s.live[2]),
        map::RESPONSE_TRAILERS => (&mut s.response_trailers, s.live[3]),
        _ => return Err(Status::BadArgument),
    };
    if !live {
        return Err(Status::BadArgument);
    }
    m.as_mut().ok_or(Status::BadArgument)
}

fn proxy_log(c: C, level: i32, ptr: i32, size: i32) -> HcResult {
    let level = LogLevel::from_abi(level as u32).ok_or(Status::BadArgument)?;
    let msg = read(c, ptr, size)?;
    let msg = String::from_utf8_lossy(&msg).into_owned();
    c.data_mut().push_log(level, msg, LogSource::ProxyLog);
    Ok(())
}

fn proxy_get_log_level(c: C, ret: i32) -> HcResult {
    let level = c.data().log_level.to_abi();
    Ok(write_u32(c, ret, level)?)
}

fn proxy_get_current_time_nanoseconds(c: C, ret: i32) -> HcResult {
    let now = c.data().now_ns();
    Ok(write_u64(c, ret, now)?)
}

fn proxy_set_tick_period_milliseconds(c: C, period: i32) -> HcResult {
    let st = c.data_mut();
    if st.effective_context != st.root_id {
        return Err(Status::BadArgument.into());
    }
    let period = period as u32;
    st.tick_period_ms = period;
    st.next_tick_ns = (period > 0).then(|| st.now_ns() + u64::from(period) * 1_000_000);
    Ok(())
}

fn body_of(st: &State, ty: u32) -> Result<Vec<u8>, Status> {
    let stream = st.streams.get(&st.effective_context);
    match ty {
        buffer::HTTP_REQUEST_BODY => Ok(stream
            .filter(|s| s.request_body_live)
            .map(|s| s.request_body.clone())
            .unwrap_or_default()),
        buffer::HTTP_RESPONSE_BODY => Ok(stream
            .filter(|s| s.response_body_live)
            .map(|s| s.response_body.clone())
            .unwrap_or_default()),
        buffer::HTTP_CALL_RESPONSE_BODY => st
            .call_response
            .as_ref()
            .map(|r| r.body.clone())
            .ok_or(Status::NotFound),
        buffer::VM_CONFIGURATION => Ok(st.vm_config.clone()),
        buffer::PLUGIN_CONFIGURATION if st.configuring => Ok(st.plugin_config.clone()),
        _ => Err(Status::NotFound),
    }
}

fn proxy_get_buffer_bytes(c: C, ty: i32, start: i32, max: i32, rp: i32, rs: i32) -> HcResult {
    let body = body_of(c.data(), ty as u32)?;
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

fn proxy_get_buffer_status(c: C, ty: i32, len_ptr: i32, flags_ptr: i32) -> HcResult {
    let body = body_of(c.data(), ty as u32)?;
    write_u32(c, len_ptr, body.len() as u32)?;
    Ok(write_u32(c, flags_ptr, 0)?)
}

fn proxy_set_buffer_bytes(c: C, ty: i32, start: i32, size: i32, ptr: i32, len: i32) -> HcResult {
    let data = read(c, ptr, len)?;
    let st = c.data_mut();
    let id = st.effective_context;
    let s = st.streams.get_mut(&id).ok_or(Status::NotFound)?;
    let buf = match ty as u32 {
        buffer::HTTP_REQUEST_BODY if s.request_body_live => &mut s.request_body,
        buffer::HTTP_RESPONSE_BODY if s.response_body_live => &mut s.response_body,
        _ => return Err(Status::BadArgument.into()),
    };
    let start = (start as u32 as usize).min(buf.len());
    let end = start.saturating_add(size as u32 as usize).min(buf.len());
    buf.splice(start..end, data);
    Ok(())
}

fn proxy_get_header_map_pairs(c: C, ty: i32, rp: i32, rs: i32) -> HcResult {
    let bytes = {
        let st = c.data();
        let m = read_map(st, ty as u32)?;
        serialize_pairs(m.map(|m| m.as_slice()).unwrap_or(&[]))
    };
    return_bytes(c, &bytes, rp, rs)
}

fn proxy_get_header_map_value(c: C, ty: i32, kp: i32, ks: i32, rp: i32, rs: i32) -> HcResult {
    let key = lower(&read(c, kp, ks)?);
    let value = {
        let st = c.data();
        let Some(m) = read_map(st, ty as u32)? else {
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

fn proxy_get_header_map_size(c: C, ty: i32, ret: i32) -> HcResult {
    let size = {
        let m = read_map(c.data(), ty as u32)?.ok_or(Status::BadArgument)?;
        m.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    };
    Ok(write_u32(c, ret, size as u32)?)
}

fn proxy_set_header_map_pairs(c: C, ty: i32, ptr: i32, size: i32) -> HcResult {
    let raw = read(c, ptr, size)?;
    let pairs = deserialize_pairs(&raw).ok_or(Status::ParseFailure)?;
    let m = write_map(c.data_mut(), ty as u32)?;
    *m = pairs.into_iter().map(|(k, v)| (lower(&k), v)).collect();
    Ok(())
}

fn proxy_add_header_map_value(c: C, ty: i32, kp: i32, ks: i32, vp: i32, vs: i32) -> HcResult {
    let key = lower(&read(c, kp, ks)?);
    let value = read(c, vp, vs)?;
    write_map(c.data_mut(), ty as u32)?.push((key, value));
    Ok(())
}

fn proxy_replace_header_map_value(c: C, ty: i32, kp: i32, ks: i32, vp: i32, vs: i32) -> HcResult {
    let key = lower(&read(c, kp, ks)?);
    let value = read(c, vp, vs)?;
    let m = write_map(c.data_mut(), ty as u32)?;
    match m.iter().position(|(k, _)| *k == key) {
        Some(first) => {
            let mut i = 0;
            m.retain(|(k, _)| {
                let keep = *k != key || i == first;
                i += 1;
                keep
            });
            if let Some(slot) = m.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            }
        }
        None => m.push((key, value)),
    }
    Ok(())
}

fn proxy_remove_header_map_value(c: C, ty: i32, kp: i32, ks: i32) -> HcResult {
    let key = lower(&read(c, kp, ks)?);
    write_map(c.data_mut(), ty as u32)?.retain(|(k, _)| *k != key);
    Ok(())
}

fn proxy_get_property(c: C, pp: i32, ps: i32, rp: i32, rs: i32) -> HcResult {
    let path = property_path(&read(c, pp, ps)?);
    let value = {
        let st = c.data();
        let stream = st.streams.get(&st.effective_context);
        stream
            .and_then(|s| s.properties.get(&path))
            .or_else(|| st.root_properties.get(&path))
            .cloned()
            .ok_or(Status::NotFound)?
    };
    return_bytes(c, &value, rp, rs)
}

fn proxy_set_property(c: C, pp: i32, ps: i32, vp: i32, vs: i32) -> HcResult {
    let path = property_path(&read(c, pp, ps)?);
    let value = read(c, vp, vs)?;
    let st = c.data_mut();
    let id = st.effective_context;
    // Envoy stores properties in the stream's filter state: none without a stream.
    let s = st.streams.get_mut(&id).ok_or(Status::NotFound)?;
    s.properties.insert(path, value);
    Ok(())
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
    if let Some(known) = &st.known_clusters {
        if !known.contains(&upstream) {
            return reject(st);
        }
    }
    let mut headers: Pairs = headers.into_iter().map(|(k, v)| (lower(&k), v)).collect();
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
        context_id: st.effective_context,
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

fn proxy_get_status(c: C, code_ptr: i32, mp: i32, ms: i32) -> HcResult {
    let (code, msg) = c.data().status.clone();
    write_u32(c, code_ptr, code)?;
    if msg.is_empty() {
        write_u32(c, mp, 0)?;
        return Ok(write_u32(c, ms, 0)?);
    }
    return_bytes(c, msg.as_bytes(), mp, ms)
}

fn proxy_set_effective_context(c: C, id: i32) -> HcResult {
    let st = c.data_mut();
    let id = id as u32;
    if !st.is_live_context(id) {
        return Err(Status::BadArgument.into());
    }
    st.effective_context = id;
    Ok(())
}

fn proxy_done(c: C) -> HcResult {
    let st = c.data_mut();
    if st.pending_done && st.effective_context == st.root_id {
        st.pending_done = false;
        st.finish_root();
        st.done_calls += 1;
        Ok(())
    } else {
        st.rejected_done_calls += 1;
        Err(Status::NotFound.into())
    }
}

fn proxy_continue_stream(c: C, ty: i32) -> HcResult {
    let kind = StreamKind::from_abi(ty as u32).ok_or(Status::BadArgument)?;
    let st = c.data_mut();
    let id = st.effective_context;
    if let Some(s) = st.streams.get_mut(&id) {
        s.continued.push(kind);
        // Envoy forgets the request maps and body once the request continues.
        if kind == StreamKind::Request {
            s.live[0] = false;
            s.live[1] = false;
            s.request_body_live = false;
        }
    }
    Ok(())
}

fn proxy_close_stream(c: C, ty: i32) -> HcResult {
    let kind = StreamKind::from_abi(ty as u32).ok_or(Status::BadArgument)?;
    let st = c.data_mut();
    let id = st.effective_context;
    if let Some(s) = st.streams.get_mut(&id) {
        s.closed.push(kind);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn proxy_send_local_response(
    c: C,
    status: i32,
    dp: i32,
    ds: i32,
    bp: i32,
    bs: i32,
    hp: i32,
    hs: i32,
    grpc: i32,
) -> HcResult {
    let details = String::from_utf8_lossy(&read(c, dp, ds)?).into_owned();
    let body = read(c, bp, bs)?;
    let headers = deserialize_pairs(&read(c, hp, hs)?).ok_or(Status::ParseFailure)?;
    let st = c.data_mut();
    let id = st.effective_context;
    if let Some(s) = st.streams.get_mut(&id) {
        s.local_response = Some(LocalResponse {
            status: status as u32,
            details,
            body,
            headers: lossy_pairs(&headers),
            grpc_status: grpc,
        });
    }
    Ok(())
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
        _ => return Err(Status::BadArgument.into()),
    }
    Ok(())
}

fn proxy_record_metric(c: C, id: i32, value: i64) -> HcResult {
    let m = metric_mut(c.data_mut(), id)?;
    let value = value as u64;
    match m.kind {
        MetricKind::Counter => m.value = m.value.saturating_add(value as i64),
        MetricKind::Gauge => m.value = value as i64,
        MetricKind::Histogram => m.recorded.push(value),
    }
    Ok(())
}

fn proxy_get_metric(c: C, id: i32, ret: i32) -> HcResult {
    let m = metric_mut(c.data_mut(), id)?;
    if m.kind == MetricKind::Histogram {
        return Err(Status::BadArgument.into());
    }
    let v = m.value as u64;
    Ok(write_u64(c, ret, v)?)
}

fn proxy_get_shared_data(c: C, kp: i32, ks: i32, rp: i32, rs: i32, cas_ptr: i32) -> HcResult {
    let key = read(c, kp, ks)?;
    let (value, cas) = c
        .data()
        .shared_data
        .get(&key)
        .cloned()
        .ok_or(Status::NotFound)?;
    write_u32(c, cas_ptr, cas)?;
    if value.is_empty() {
        return Ok(());
    }
    return_bytes(c, &value, rp, rs)
}

fn proxy_set_shared_data(c: C, kp: i32, ks: i32, vp: i32, vs: i32, cas: i32) -> HcResult {
    let key = read(c, kp, ks)?;
    let value = read(c, vp, vs)?;
    let st = c.data_mut();
    let entry = st.shared_data.entry(key).or_insert((Vec::new(), 0));
    if cas != 0 && cas as u32 != entry.1 {
        return Err(Status::CasMismatch.into());
    }
    *entry = (value, entry.1.wrapping_add(1).max(1));
    Ok(())
}

fn proxy_register_shared_queue(c: C, np: i32, ns: i32, ret: i32) -> HcResult {
    let name = read(c, np, ns)?;
    let st = c.data_mut();
    let id = match st.queues.iter().position(|(n, _)| *n == name) {
        Some(i) => i,
        None => {
            st.queues.push((name, VecDeque::new()));
            st.queues.len() - 1
        }
    };
    Ok(write_u32(c, ret, id as u32 + 1)?)
}

fn proxy_resolve_shared_queue(c: C, _vp: i32, _vs: i32, np: i32, ns: i32, ret: i32) -> HcResult {
    let name = read(c, np, ns)?;
    let pos = c.data().queues.iter().position(|(n, _)| *n == name);
    let id = pos.ok_or(Status::NotFound)?;
    Ok(write_u32(c, ret, id as u32 + 1)?)
}

fn queue_mut(st: &mut State, id: i32) -> Result<&mut VecDeque<Vec<u8>>, Status> {
    let idx = (id as u32 as usize)
        .checked_sub(1)
        .ok_or(Status::NotFound)?;
    st.queues
        .get_mut(idx)
        .map(|q| &mut q.1)
        .ok_or(Status::NotFound)
}

fn proxy_dequeue_shared_queue(c: C, id: i32, rp: i32, rs: i32) -> HcResult {
    let item = queue_mut(c.data_mut(), id)?
        .pop_front()
        .ok_or(Status::Empty)?;
    return_bytes(c, &item, rp, rs)
}

fn proxy_enqueue_shared_queue(c: C, id: i32, vp: i32, vs: i32) -> HcResult {
    let value = read(c, vp, vs)?;
    queue_mut(c.data_mut(), id)?.push_back(value);
    Ok(())
}

/// Registers every `env.proxy_*` function on `linker`.
pub(crate) fn link(l: &mut Linker<State>) -> Result<()> {
    type K<'a> = Caller<'a, State>;
    l.func_wrap("env", "proxy_log", |mut c: K, a: i32, b: i32, d: i32| {
        finish(proxy_log(&mut c, a, b, d))
    })?;
    l.func_wrap("env", "proxy_get_log_level", |mut c: K, a: i32| {
        finish(proxy_get_log_level(&mut c, a))
    })?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: K, a: i32| finish(proxy_get_current_time_nanoseconds(&mut c, a)),
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: K, a: i32| finish(proxy_set_tick_period_milliseconds(&mut c, a)),
    )?;
    l.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32| {
            finish(proxy_get_buffer_bytes(&mut c, a, b, d, e, f))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: K, a: i32, b: i32, d: i32| finish(proxy_get_buffer_status(&mut c, a, b, d)),
    )?;
    l.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32| {
            finish(proxy_set_buffer_bytes(&mut c, a, b, d, e, f))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: K, a: i32, b: i32, d: i32| finish(proxy_get_header_map_pairs(&mut c, a, b, d)),
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32| {
            finish(proxy_get_header_map_value(&mut c, a, b, d, e, f))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: K, a: i32, b: i32| finish(proxy_get_header_map_size(&mut c, a, b)),
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: K, a: i32, b: i32, d: i32| finish(proxy_set_header_map_pairs(&mut c, a, b, d)),
    )?;
    l.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32| {
            finish(proxy_add_header_map_value(&mut c, a, b, d, e, f))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32| {
            finish(proxy_replace_header_map_value(&mut c, a, b, d, e, f))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: K, a: i32, b: i32, d: i32| finish(proxy_remove_header_map_value(&mut c, a, b, d)),
    )?;
    l.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: K, a: i32, b: i32, d: i32, e: i32| finish(proxy_get_property(&mut c, a, b, d, e)),
    )?;
    l.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: K, a: i32, b: i32, d: i32, e: i32| finish(proxy_set_property(&mut c, a, b, d, e)),
    )?;
    l.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: K,
         a: i32,
         b: i32,
         d: i32,
         e: i32,
         f: i32,
         g: i32,
         h: i32,
         i: i32,
         j: i32,
         k: i32| { finish(proxy_http_call(&mut c, a, b, d, e, f, g, h, i, j, k)) },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: K, a: i32, b: i32, d: i32| finish(proxy_get_status(&mut c, a, b, d)),
    )?;
    l.func_wrap("env", "proxy_set_effective_context", |mut c: K, a: i32| {
        finish(proxy_set_effective_context(&mut c, a))
    })?;
    l.func_wrap("env", "proxy_done", |mut c: K| finish(proxy_done(&mut c)))?;
    l.func_wrap("env", "proxy_continue_stream", |mut c: K, a: i32| {
        finish(proxy_continue_stream(&mut c, a))
    })?;
    l.func_wrap("env", "proxy_close_stream", |mut c: K, a: i32| {
        finish(proxy_close_stream(&mut c, a))
    })?;
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32, g: i32, h: i32, i: i32| {
            finish(proxy_send_local_response(&mut c, a, b, d, e, f, g, h, i))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: K, a: i32, b: i32, d: i32, e: i32| finish(proxy_define_metric(&mut c, a, b, d, e)),
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: K, a: i32, b: i64| finish(proxy_increment_metric(&mut c, a, b)),
    )?;
    l.func_wrap("env", "proxy_record_metric", |mut c: K, a: i32, b: i64| {
        finish(proxy_record_metric(&mut c, a, b))
    })?;
    l.func_wrap("env", "proxy_get_metric", |mut c: K, a: i32, b: i32| {
        finish(proxy_get_metric(&mut c, a, b))
    })?;
    l.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32| {
            finish(proxy_get_shared_data(&mut c, a, b, d, e, f))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32| {
            finish(proxy_set_shared_data(&mut c, a, b, d, e, f))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: K, a: i32, b: i32, d: i32| finish(proxy_register_shared_queue(&mut c, a, b, d)),
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: K, a: i32, b: i32, d: i32, e: i32, f: i32| {
            finish(proxy_resolve_shared_queue(&mut c, a, b, d, e, f))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: K, a: i32, b: i32, d: i32| finish(proxy_dequeue_shared_queue(&mut c, a, b, d)),
    )?;
    l.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: K, a: i32, b: i32, d: i32| finish(proxy_enqueue_shared_queue(&mut c, a, b, d)),
    )?;
    // Envoy answers NotFound for foreign functions it does not register (adtap uses none).
    l.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |_c: K, _a: i32, _b: i32, _d: i32, _e: i32, _f: i32, _g: i32| Status::NotFound as i32,
    )?;
    // gRPC is not used by adtap: answer Unimplemented rather than pretend.
    l.func_wrap(
        "env",
        "proxy_grpc_call",
        |_c: K,
         _a: i32,
         _b: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _i: i32,
         _j: i32,
         _k: i32,
         _m: i32,
         _n: i32| Status::Unimplemented as i32,
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_c: K, _a: i32, _b: i32, _d: i32, _e: i32, _f: i32, _g: i32, _h: i32, _i: i32, _j: i32| {
            Status::Unimplemented as i32
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_send",
        |_c: K, _a: i32, _b: i32, _d: i32, _e: i32| Status::Unimplemented as i32,
    )?;
    l.func_wrap("env", "proxy_grpc_cancel", |_c: K, _a: i32| {
        Status::Unimplemented as i32
    })?;
    l.func_wrap("env", "proxy_grpc_close", |_c: K, _a: i32| {
        Status::Unimplemented as i32
    })?;
    Ok(())
}
