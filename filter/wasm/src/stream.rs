//! The HTTP context: observes one request, never changes or delays it.
//!
//! Every callback returns `Continue`. A request that matches no rule costs one host call (all
//! request headers at once) and a rule scan; the event is finished in `on_log`, after the response, when status,
//! duration and sizes are known.

use crate::host::{self, HeaderMap};
use crate::worker::Shared;
use adtap_core::capture::{self, BodyCapture, Completion, HeaderSource, RequestHead};
use adtap_core::config::IpMode;
use adtap_core::Event;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType};

impl HeaderSource for HeaderMap {
    fn header(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| host::text_ref(v).into_owned())
    }
}

/// An event being captured.
struct Pending {
    /// The worker generation whose configuration `rule` indexes.
    generation: u64,
    rule: usize,
    event: Event,
    /// `x-forwarded-for`, read at request time when trusted hops are configured.
    xff: Option<String>,
    body: Option<BodyCapture>,
}

/// One request's capture state.
pub struct AdtapStream {
    worker: Shared,
    pending: Option<Pending>,
}

impl AdtapStream {
    /// A context sharing its worker's state.
    pub fn new(worker: Shared) -> AdtapStream {
        AdtapStream {
            worker,
            pending: None,
        }
    }

    fn begin(&mut self, end_of_stream: bool) {
        let Some(headers) = host::request_headers() else {
            return;
        };
        let (Some(method), Some(path)) = (headers.get(":method"), headers.get(":path")) else {
            return;
        };
        let (method, path) = (host::text_ref(method), host::text_ref(path));
        let host_name = host::text_ref(headers.get(":authority").unwrap_or_default());
        let head = RequestHead {
            method: &method,
            host: &host_name,
            path: &path,
        };
        let Ok(mut guard) = self.worker.try_borrow_mut() else {
            return;
        };
        let Some(worker) = guard.as_mut() else {
            return;
        };
        let Some(rule_idx) = capture::match_rule(&worker.cfg, head) else {
            worker.local.unmatched += 1;
            return;
        };
        let Some(rule) = worker.cfg.rules.get(rule_idx) else {
            return;
        };
        if !capture::sampled(rule, &mut worker.rng) {
            worker.local.sampled_out += 1;
            return;
        }
        let body = (rule.capture_body && !end_of_stream)
            .then(|| BodyCapture::new(worker.cfg.body.max_bytes));
        let xff = if worker.cfg.client_ip.trusted_hops > 0 {
            headers
                .get("x-forwarded-for")
                .map(|v| host::text_ref(v).into_owned())
        } else {
            None
        };
        let id = worker.next_event_id();
        let event = capture::begin(&worker.cfg, rule_idx, id, host::now_ms(), head, &headers);
        self.pending = Some(Pending {
            generation: worker.generation,
            rule: rule_idx,
            event,
            xff,
            body,
        });
    }
}

impl Context for AdtapStream {}

impl HttpContext for AdtapStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.begin(end_of_stream);
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        if let Some(body) = self.pending.as_mut().and_then(|p| p.body.as_mut()) {
            // Read only what is still wanted: a 10 MB upload costs at most `max_bytes` of copy.
            let want = body.wanted().min(body_size);
            let chunk = host::buffer(BufferType::HttpRequestBody, want).unwrap_or_default();
            body.push(&chunk, body_size);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        // What to read, decided in one borrow. The peer address is one more host call: skip it
        // when the event cannot use it.
        let (fields, needs_peer) = {
            let Ok(guard) = self.worker.try_borrow() else {
                return;
            };
            let Some(w) = guard.as_ref() else {
                return;
            };
            // Reconfigured since the request began: `p.rule` indexes the old rules. The
            // request was never counted as captured, so letting it go loses nothing counted.
            if w.generation != p.generation {
                return;
            }
            let ip = &w.cfg.client_ip;
            let needs_peer = ip.mode != IpMode::Omit
                && (ip.trusted_hops == 0 || p.xff.as_deref().is_none_or(|x| x.trim().is_empty()));
            (w.cfg.response_fields, needs_peer)
        };
        // Each property is a host call; read only the configured ones.
        let u64_if =
            |on: bool, path: host::PropertyPath| on.then(|| host::property_u64(path)).flatten();
        let str_if = |on: bool, path: host::PropertyPath| {
            on.then(|| host::property_string(path))
                .flatten()
                .filter(|s| !s.is_empty())
        };
        let done = Completion {
            status: u64_if(fields.status, "response\0code").and_then(|c| u16::try_from(c).ok()),
            duration_us: u64_if(fields.duration, "request\0duration").map(|ns| ns / 1_000),
            request_bytes: u64_if(fields.sizes, "request\0total_size"),
            response_bytes: u64_if(fields.sizes, "response\0total_size"),
            route: str_if(fields.route, "xds\0route_name"),
            upstream: str_if(fields.upstream, "xds\0cluster_name"),
            peer_address: needs_peer
                .then(|| host::property_string("source\0address"))
                .flatten(),
        };
        let Ok(mut guard) = self.worker.try_borrow_mut() else {
            return;
        };
        let Some(worker) = guard.as_mut() else {
            return;
        };
        if let Some(body) = p.body.take() {
            body.finish(&mut p.event);
            if p.event.body_truncated {
                worker.local.body_truncated += 1;
            }
        }
        capture::finish(&worker.cfg, &mut p.event, p.xff.as_deref(), done);
        worker.accept(host::clock_ms(), p.rule, &p.event);
    }
}
