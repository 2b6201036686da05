//! The root context: one per worker VM. It validates the configuration, owns the worker state,
//! and on every tick ships the batches that are due. Answers to its calls come back here too.
//!
//! Shutdown: `on_done` makes everything buffered due at once and returns `false` while calls
//! are in flight or retries pending; ticks and answers keep draining until the pipeline is idle
//! or `shutdown_deadline_ms` passes, and then we call `done()`.

use crate::host;
use crate::metrics::Metrics;
use crate::stream::AdtapStream;
use crate::worker::{host_seed, Shared, Worker};
use adtap_core::classify::Response;
use adtap_core::pipeline::BatchId;
use adtap_core::Config;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Largest REST proxy answer we read; a v2 offsets entry is ~70 bytes, so this covers any batch.
const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// Least interval between two logs of failed batches, so a REST outage logs a summary, not a flood.
const FAILURE_LOG_INTERVAL_MS: u64 = 10_000;

/// The root context.
pub struct AdtapRoot {
    worker: Shared,
    metrics: Option<Metrics>,
    /// Call token → batch id.
    calls: HashMap<u32, BatchId>,
    /// Set by `on_done`: when to give up waiting.
    shutdown_deadline: Option<u64>,
    /// Successful configurations so far; the current worker's [`Worker::generation`].
    generation: u64,
    failures: FailureLog,
}

/// Rate-limited logging of delivery failures.
#[derive(Debug, Default)]
struct FailureLog {
    last: Option<u64>,
    since_last: u64,
}

impl FailureLog {
    /// Logs a failure at most once per interval, with how many were folded into it.
    fn note(&mut self, now: u64, what: &str) {
        self.since_last += 1;
        let due = self
            .last
            .is_none_or(|t| now.saturating_sub(t) >= FAILURE_LOG_INTERVAL_MS);
        if due {
            host::log(
                LogLevel::Warn,
                &format!(
                    "{what} ({} failure(s) since the last report)",
                    self.since_last
                ),
            );
            self.last = Some(now);
            self.since_last = 0;
        }
    }
}

impl Default for AdtapRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl AdtapRoot {
    /// A root context with no configuration yet.
    pub fn new() -> AdtapRoot {
        AdtapRoot {
            worker: Rc::new(RefCell::new(None)),
            metrics: None,
            calls: HashMap::new(),
            shutdown_deadline: None,
            generation: 0,
            failures: FailureLog::default(),
        }
    }

    /// Dispatches every batch that is due, within the in-flight limit.
    fn ship(&mut self, now: u64) {
        let Ok(mut guard) = self.worker.try_borrow_mut() else {
            return;
        };
        let Some(worker) = guard.as_mut() else {
            return;
        };
        while let Some(out) = worker.pipeline.poll(now) {
            match host::dispatch(
                &worker.cfg.cluster,
                &out.request.headers,
                &out.request.body,
                worker.cfg.timeout_ms,
            ) {
                Ok(token) => {
                    self.calls.insert(token, out.id);
                }
                Err(e) => {
                    // Unknown cluster or a bad header: the records go back for a retry; the
                    // budget bounds how long this can last.
                    worker.local.dispatch_errors += 1;
                    worker.pipeline.dispatch_failed(now, out.id);
                    self.failures.note(
                        now,
                        &format!(
                            "dispatch to cluster `{}` refused: {e:?}",
                            worker.cfg.cluster
                        ),
                    );
                    break;
                }
            }
        }
    }

    fn publish(&mut self) {
        let Ok(guard) = self.worker.try_borrow() else {
            return;
        };
        if let (Some(worker), Some(metrics)) = (guard.as_ref(), self.metrics.as_mut()) {
            metrics.publish(worker.pipeline.stats(), &worker.local);
        }
    }

    /// During shutdown: finish when idle or past the deadline. Returns true when done.
    fn maybe_finish(&mut self, now: u64) -> bool {
        let Some(deadline) = self.shutdown_deadline else {
            return false;
        };
        let idle = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return false;
            };
            match guard.as_mut() {
                Some(worker) => {
                    if now >= deadline && !worker.pipeline.is_idle() {
                        worker.pipeline.abandon_in_flight();
                        // Their records are counted as dropped: a late answer must find no
                        // token (and record no round trip).
                        self.calls.clear();
                    }
                    worker.pipeline.is_idle() || now >= deadline
                }
                None => true,
            }
        };
        if idle {
            self.publish();
            self.shutdown_deadline = None;
            let _ = host::done();
        }
        idle
    }
}

impl Context for AdtapRoot {
    fn on_done(&mut self) -> bool {
        self.start_shutdown()
    }

    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _: usize,
    ) {
        let now = host::clock_ms();
        let Some(id) = self.calls.remove(&token) else {
            return;
        };
        // No headers: the call failed (reset, refused, no healthy upstream).
        let status = if num_headers == 0 {
            None
        } else {
            host::call_response_header(":status").and_then(|s| s.parse::<u16>().ok())
        };
        let body = host::buffer(
            BufferType::HttpCallResponseBody,
            body_size.min(MAX_RESPONSE_BODY),
        )
        .unwrap_or_default();
        let report = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return;
            };
            let Some(worker) = guard.as_mut() else {
                return;
            };
            worker.pipeline.on_response(
                now,
                id,
                Response {
                    status,
                    body: &body,
                },
            )
        };
        if let Some(m) = self.metrics.as_ref() {
            m.record_rtt(report.rtt_ms);
        }
        if report.retried > 0 || report.dropped > 0 {
            let status = status.map_or("no response".to_string(), |s| format!("HTTP {s}"));
            self.failures.note(
                now,
                &format!(
                    "batch answered {status}: {} delivered, {} to retry, {} dropped",
                    report.delivered, report.retried, report.dropped
                ),
            );
        }
        // A freed call slot may let a waiting batch go now rather than on the next tick.
        self.ship(now);
        if !self.maybe_finish(now) && self.shutdown_deadline.is_some() {
            self.publish();
        }
    }
}

impl RootContext for AdtapRoot {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = host::buffer(BufferType::PluginConfiguration, size).unwrap_or_default();
        let cfg = match Config::parse(&bytes) {
            Ok(cfg) => cfg,
            Err(errors) => {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                host::log(
                    LogLevel::Error,
                    &format!("invalid configuration: {}", list.join("; ")),
                );
                return false;
            }
        };
        if host::set_tick_period_ms(cfg.tick_ms).is_err() {
            host::log(LogLevel::Error, "the host refused the tick period");
            return false;
        }
        let now = host::clock_ms();
        let Ok(mut guard) = self.worker.try_borrow_mut() else {
            return false;
        };
        if let Some(old) = guard.as_mut() {
            if old.cfg == cfg {
                // The same configuration again: keep the worker and everything it holds.
                return true;
            }
            // Envoy normally gives a new configuration a new root context and flushes the old
            // one through `on_done`; a root reconfigured in place replaces its worker, and
            // whatever the old one still held is counted as dropped at shutdown. Its calls'
            // answers must not be matched against the new worker's batches, and its totals
            // carry on in the published stats.
            old.pipeline.abandon_in_flight();
            self.calls.clear();
            if let Some(m) = self.metrics.as_mut() {
                m.publish(old.pipeline.stats(), &old.local);
                m.retire(old.pipeline.stats(), &old.local);
            }
        }
        self.generation = self.generation.wrapping_add(1);
        *guard = Some(Worker::new(cfg, self.generation, host_seed(now)));
        drop(guard);
        if self.metrics.is_none() {
            self.metrics = Some(Metrics::define());
        }
        true
    }

    fn on_tick(&mut self) {
        let now = host::clock_ms();
        self.ship(now);
        if !self.maybe_finish(now) {
            self.publish();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AdtapStream::new(Rc::clone(&self.worker))))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl AdtapRoot {
    /// Shared by `on_done`: starts the final flush.
    fn start_shutdown(&mut self) -> bool {
        let now = host::clock_ms();
        let deadline = {
            let Ok(mut guard) = self.worker.try_borrow_mut() else {
                return true;
            };
            let Some(worker) = guard.as_mut() else {
                return true;
            };
            worker.pipeline.begin_shutdown(now);
            now.saturating_add(worker.cfg.shutdown_deadline_ms)
        };
        self.ship(now);
        self.shutdown_deadline = Some(deadline);
        let finished = self
            .worker
            .try_borrow()
            .map_or(true, |g| g.as_ref().is_none_or(|w| w.pipeline.is_idle()));
        if finished {
            self.publish();
            self.shutdown_deadline = None;
        }
        finished
    }
}
