//! The capture of one request, from the first callback that sees it to the record in the
//! buffer: one implementation for the access logger, the HTTP filter, the JavaScript preview and
//! the native test drivers.
//!
//! The access logger sees a request once, in its log callback: [`capture_logged`] does the
//! whole capture there. The HTTP filter is entered for a request body (when a rule may capture
//! bodies) and at log time: [`Session::begin`] decides on the first body chunk, the
//! [`Session`] collects the body, and [`Session::finish`] completes the event at log time.
//!
//! Host reads, each one data-returning host call (`FACTS.md` §6), in the order a capture makes
//! them: the request header map (method, host, path, the allow-listed headers, user agent,
//! referer, request id and `x-forwarded-for`, all in one call); then only what the configured
//! fields need: `:status` from the response header map, the `response_fields` properties, and
//! `source.address` when the client IP comes from the peer. The timestamp is derived, not read:
//! the log time, minus the duration when `duration` is read.

use crate::capture::{self, BodyCapture, Completion, RequestHead};
use crate::config::{Config, HttpFilterRules, Rule};
use crate::headers::HeaderPairs;
use crate::host::{self, Host, Property};
use crate::ip;
use crate::worker::Worker;

/// How adtap was loaded into Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// `envoy.access_loggers.wasm`: one VM entry per request, no bodies.
    AccessLogger,
    /// `envoy.filters.http.wasm`: can read request bodies.
    HttpFilter,
}

impl Deployment {
    /// Whether this deployment captures `rule` of `cfg`. The access logger sees no body, so it
    /// leaves the rules with `capture_body` to the HTTP filter; the HTTP filter takes every
    /// rule, or only those with `capture_body` when an access logger shares its configuration.
    pub fn captures(self, cfg: &Config, rule: &Rule) -> bool {
        match self {
            Deployment::AccessLogger => !rule.capture_body,
            Deployment::HttpFilter => {
                cfg.http_filter_rules == HttpFilterRules::All || rule.capture_body
            }
        }
    }
}

/// A request this deployment captures: which rule, and what was read of it so far.
#[derive(Debug, Clone)]
pub struct Session {
    rule: usize,
    headers: HeaderPairs,
    body: Option<BodyCapture>,
}

/// What the first look at a request decided.
#[derive(Debug, Clone)]
pub enum Decision {
    /// No rule of this deployment matched, or it was sampled out (counted), or the request
    /// head was unreadable: nothing more to do for this request.
    Skip,
    /// Captured: finish it at log time.
    Capture(Session),
}

impl Session {
    /// Matches the request against the rules of `deployment` and samples it. `body` says
    /// whether the request body will be seen (the HTTP filter's body callback); a body is
    /// collected only for rules with `capture_body`.
    pub fn begin(
        worker: &mut Worker,
        host: &mut dyn Host,
        deployment: Deployment,
        body: bool,
    ) -> Decision {
        let Some(headers) = host.request_headers() else {
            return Decision::Skip;
        };
        Session::begin_with(worker, headers, deployment, body)
    }

    /// [`Session::begin`] on headers already read.
    pub fn begin_with(
        worker: &mut Worker,
        headers: HeaderPairs,
        deployment: Deployment,
        body: bool,
    ) -> Decision {
        let rule = {
            let (Some(method), Some(path)) = (headers.text(":method"), headers.text(":path")) else {
                return Decision::Skip;
            };
            let host_name = headers.text(":authority").unwrap_or_default();
            let head = RequestHead {
                method: &method,
                host: &host_name,
                path: &path,
            };
            capture::match_rule(worker.config(), head)
        };
        let Some(rule) = rule else {
            worker.local_mut().unmatched += 1;
            return Decision::Skip;
        };
        let Some(r) = worker.config().rules.get(rule) else {
            return Decision::Skip;
        };
        // The first matching rule decides, even when it belongs to the other deployment: the
        // generated native filters (`native`) assume exactly this.
        if !deployment.captures(worker.config(), r) {
            return Decision::Skip;
        }
        let (capture_body, rate) = (r.capture_body, r.sample_rate);
        let max_bytes = worker.config().body.max_bytes;
        if !capture::sampled_at(rate, worker.rng()) {
            worker.local_mut().sampled_out += 1;
            return Decision::Skip;
        }
        Decision::Capture(Session {
            rule,
            headers,
            body: (capture_body && body).then(|| BodyCapture::new(max_bytes)),
        })
    }

    /// Whether the session collects a body.
    pub fn wants_body(&self) -> bool {
        self.body.as_ref().is_some_and(|b| b.wanted() > 0)
    }

    /// One request body chunk of `size` bytes: reads what is still wanted (a 10 MB upload
    /// costs at most `body.max_bytes` of copy) and notes truncation.
    pub fn push_body(&mut self, host: &mut dyn Host, size: usize) {
        if let Some(body) = self.body.as_mut() {
            let want = body.wanted().min(size);
            let chunk = if want > 0 {
                host.request_body(want).unwrap_or_default()
            } else {
                Vec::new()
            };
            body.push(&chunk, size);
        }
    }

    /// Adds a chunk already read (the native drivers and the preview).
    pub fn push_body_bytes(&mut self, chunk: &[u8]) {
        if let Some(body) = self.body.as_mut() {
            body.push(chunk, chunk.len());
        }
    }

    /// Completes the event at log time with the configured response fields and hands the
    /// record to the worker's pipeline.
    pub fn finish(self, worker: &mut Worker, host: &mut dyn Host, now_wall_ms: u64, now_ms: u64) {
        let cfg = worker.config();
        let fields = cfg.response_fields;
        let xff = self.headers.text("x-forwarded-for");
        let needs_peer = ip::needs_peer_address(&cfg.client_ip, xff.as_deref());
        let mut done = Completion {
            status: if fields.status {
                host.response_status()
            } else {
                None
            },
            ..Completion::default()
        };
        if fields.duration {
            done.duration_us =
                host::property_u64(host, Property::RequestDuration).map(|ns| ns / 1_000);
        }
        if fields.sizes {
            done.request_bytes = host::property_u64(host, Property::RequestTotalSize);
            done.response_bytes = host::property_u64(host, Property::ResponseTotalSize);
        }
        if fields.route {
            done.route = host::property_string(host, Property::RouteName);
        }
        if fields.upstream {
            done.upstream = host::property_string(host, Property::ClusterName);
        }
        if needs_peer {
            done.peer_address = host::property_string(host, Property::SourceAddress);
        }
        // The request began `duration` before the log time; without it the log time stands in.
        let ts = now_wall_ms.saturating_sub(done.duration_us.unwrap_or(0) / 1_000);
        let id = worker.next_event_id();
        let head = {
            let method = self.headers.text(":method").unwrap_or_default();
            let path = self.headers.text(":path").unwrap_or_default();
            let host_name = self.headers.text(":authority").unwrap_or_default();
            capture::begin(
                worker.config(),
                self.rule,
                id,
                ts,
                RequestHead {
                    method: &method,
                    host: &host_name,
                    path: &path,
                },
                &self.headers,
            )
        };
        let mut event = head;
        if let Some(body) = self.body {
            body.finish(&mut event);
            if event.body_truncated {
                worker.local_mut().body_truncated += 1;
            }
        }
        let xff = xff.map(std::borrow::Cow::into_owned);
        worker.complete(now_ms, self.rule, event, xff.as_deref(), done);
    }
}

/// The access logger's whole capture of one logged request.
pub fn capture_logged(worker: &mut Worker, host: &mut dyn Host, now_wall_ms: u64, now_ms: u64) {
    if let Decision::Capture(session) = Session::begin(worker, host, Deployment::AccessLogger, false)
    {
        session.finish(worker, host, now_wall_ms, now_ms);
    }
}
