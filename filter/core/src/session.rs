//! The capture of one request, from the first callback that sees it to the record in the
//! buffer: one implementation for the access logger, the HTTP filter, the JavaScript preview and
//! the native test drivers.
//!
//! Both deployments capture at log time, the one moment Envoy lets a module read the request
//! headers again after `on_request_headers` (which this module does not export: Envoy drops its
//! pointer to the request headers once a filter continues, so a body callback cannot see
//! them). The access logger does the whole capture in [`capture_logged`]. The HTTP filter
//! collects the request body first, as it streams by, when any of its rules captures bodies
//! ([`Worker::wants_bodies`]); at log time [`Session::begin`] matches the rules and, if the
//! matching rule captures bodies, [`Session::attach_body`] adds what was collected.
//!
//! Host reads, each one data-returning host call (about a microsecond, see [`crate::host`]), in the order a capture makes
//! them: the request header map (method, host, path, the allow-listed headers, user agent,
//! referer, request id and `x-forwarded-for`, all in one call); then only what the configured
//! fields need: `:status` from the response header map, the `response_fields` properties, and
//! `source.address` when the client IP comes from the peer. The timestamp is derived, not read:
//! the log time, minus the duration when `duration` is read.

use crate::capture::{self, BodyCapture, Completion, RequestHead};
use crate::encode::EncodeError;
use crate::event::Record;
use crate::headers::HeaderPairs;
use crate::host::{self, Host, Property};
use crate::ip;
use crate::native;
use crate::record;
use crate::worker::Worker;

pub use crate::native::Deployment;

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
    /// Matches the request against the rules of `deployment` and samples it.
    pub fn begin(worker: &mut Worker, host: &mut dyn Host, deployment: Deployment) -> Decision {
        let Some(headers) = host.request_headers() else {
            return Decision::Skip;
        };
        Session::begin_with(worker, headers, deployment)
    }

    /// [`Session::begin`] on headers already read.
    pub fn begin_with(
        worker: &mut Worker,
        headers: HeaderPairs,
        deployment: Deployment,
    ) -> Decision {
        let rule = {
            let (Some(method), Some(path)) = (headers.text(":method"), headers.text(":path"))
            else {
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
        if !native::captures(worker.config(), deployment, r) {
            return Decision::Skip;
        }
        let rate = r.sample_rate;
        if !capture::sampled_at(rate, worker.rng()) {
            worker.local_mut().sampled_out += 1;
            return Decision::Skip;
        }
        Decision::Capture(Session {
            rule,
            headers,
            body: None,
        })
    }

    /// Adds the request body collected for this request, if the matching rule captures bodies
    /// (otherwise it is dropped unread).
    pub fn attach_body(&mut self, worker: &Worker, body: BodyCapture) {
        if worker
            .config()
            .rules
            .get(self.rule)
            .is_some_and(|r| r.capture_body)
        {
            self.body = Some(body);
        }
    }

    /// Completes the event at log time with the configured response fields and hands the
    /// record to the worker's pipeline. `wall_ms` is the wall clock (the event's timestamp),
    /// `mono_ms` the VM's monotonic clock ([`crate::vm::Clock`], the pipeline's timers).
    pub fn finish(self, worker: &mut Worker, host: &mut dyn Host, wall_ms: u64, mono_ms: u64) {
        let record = self.complete(worker, host, wall_ms);
        worker.accept(mono_ms, record);
    }

    /// The rule that matched.
    pub fn rule(&self) -> usize {
        self.rule
    }

    /// Completes the event at log time with the configured response fields (the reads the
    /// module header describes) and writes its record, without buffering it:
    /// [`Session::finish`] and the preview.
    pub fn complete(
        self,
        worker: &mut Worker,
        host: &mut dyn Host,
        wall_ms: u64,
    ) -> Result<Record, EncodeError> {
        let cfg = worker.config();
        let fields = cfg.response_fields;
        let needs_peer = {
            let xff = self.headers.text("x-forwarded-for");
            ip::needs_peer_address(&cfg.client_ip, xff.as_deref())
        };
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
        let ts = wall_ms.saturating_sub(done.duration_us.unwrap_or(0) / 1_000);
        if self.body.as_ref().is_some_and(BodyCapture::truncated) {
            worker.local_mut().body_truncated += 1;
        }
        let id = worker.next_event_id();
        let method = self.headers.text(":method").unwrap_or_default();
        let path = self.headers.text(":path").unwrap_or_default();
        let host_name = self.headers.text(":authority").unwrap_or_default();
        let record_fields = record::Fields {
            rule: self.rule,
            id,
            ts,
            head: RequestHead {
                method: &method,
                host: &host_name,
                path: &path,
            },
            headers: &self.headers,
            done: &done,
            body: self.body.as_ref(),
        };
        worker.write_record(&record_fields)
    }
}

/// The access logger's whole capture of one logged request.
pub fn capture_logged(worker: &mut Worker, host: &mut dyn Host, wall_ms: u64, mono_ms: u64) {
    if let Decision::Capture(session) = Session::begin(worker, host, Deployment::AccessLogger) {
        session.finish(worker, host, wall_ms, mono_ms);
    }
}

/// One request body chunk of `size` bytes into `body`: reads only what is still wanted (a
/// 10 MB upload costs at most `body.max_bytes` of copy) and notes truncation.
pub fn collect_body(body: &mut BodyCapture, host: &mut dyn Host, size: usize) {
    let want = body.wanted().min(size);
    let chunk = if want > 0 {
        host.request_body(want).unwrap_or_default()
    } else {
        Vec::new()
    };
    body.push(&chunk, size);
}
