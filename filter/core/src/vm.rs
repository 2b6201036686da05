//! Everything one Wasm VM (one Envoy worker thread) holds, and what each proxy-wasm callback
//! does to it. The glue's exports call exactly one method here each, passing the host and the
//! time; this is where every decision about roots, streams, workers, ticks, answers, shutdown
//! and metrics is made.
//!
//! # Roots and workers
//! Envoy gives every plugin configuration a root context per VM. Roots whose configurations are
//! equal share one [`Worker`] (the access logger and the HTTP filter of one Envoy, loaded with
//! the same configuration), so a worker thread has one buffer and one accounting for them. A
//! root configured anew with another configuration moves to another worker; the one it leaves,
//! if no other root uses it, is abandoned and its records counted as dropped for shutdown.
//!
//! # Streams
//! The module exports no per-stream callbacks but the request body, the log and `on_done`, so
//! Envoy enters the VM twice per request (three times with a body), and never for
//! `context_create`. A stream is therefore known by its context id only when its body arrives
//! (collected while a rule may want it) or at log time; it is tied to a worker on first sight:
//! the VM's only live worker, or, when the VM holds several configurations, the one of the root
//! whose `plugin_name` the stream reports (one property read).
//!
//! # Time
//! Event timestamps use the host's wall clock. Batch ages, retry timers and the shutdown
//! deadline use [`Clock`], which moves forward by elapsed wall time and never back, so a system
//! clock stepped back stalls nothing.

use crate::capture::BodyCapture;
use crate::config::Config;
use crate::host::{self, Host, LogLevel, Property};
use crate::metrics::{self, Ledger, COUNT};
use crate::rng::Rng;
use crate::session::{self, Decision, Deployment, Session};
use crate::worker::{Phase, Worker, MAX_RESPONSE_BODY};

/// Body-capturing streams tracked at once; past it the oldest is forgotten (its event is then
/// captured at log time without its body).
const MAX_STREAMS: usize = 4096;

/// A stream not logged within this time is forgotten (Envoy logs every stream it ends; this
/// only bounds what a lost callback could leave behind).
const STREAM_MAX_AGE_MS: u64 = 3_600_000;

/// The VM's monotonic millisecond clock (`mono_ms` everywhere in the core: batch ages, retry
/// timers, deadlines), driven by the host's wall clock (`wall_ms`: the only wall time, used
/// for event timestamps) but never going back when the wall clock does.
#[derive(Debug, Default, Clone, Copy)]
pub struct Clock {
    last_wall_ms: u64,
    mono_ms: u64,
}

impl Clock {
    /// Moves forward by the wall time passed since the last reading (never back) and returns
    /// the new time. A wall time of 0 (the host gave none) stands still.
    pub fn advance(&mut self, wall_ms: u64) -> u64 {
        if wall_ms == 0 {
            return self.mono_ms;
        }
        self.mono_ms = if self.last_wall_ms == 0 {
            wall_ms.max(self.mono_ms)
        } else {
            self.mono_ms
                .saturating_add(wall_ms.saturating_sub(self.last_wall_ms))
        };
        self.last_wall_ms = wall_ms;
        self.mono_ms
    }
}

/// A root context's state.
#[derive(Debug)]
struct Root {
    id: u32,
    /// `plugin_name`, read once, to tell streams of different configurations apart.
    name: Option<String>,
    /// Key of the worker it captures into.
    worker: Option<u64>,
    /// `on_done` came and the root waits for its worker's final flush.
    draining: bool,
}

/// A worker and how many roots capture into it.
#[derive(Debug)]
struct Slot {
    key: u64,
    worker: Worker,
    roots: usize,
}

/// An HTTP filter stream whose body is being collected before its log callback.
#[derive(Debug)]
struct Stream {
    context: u32,
    worker: u64,
    since_ms: u64,
    body: BodyCapture,
}

/// One VM's state.
#[derive(Debug)]
pub struct Vm {
    clock: Clock,
    rng: Rng,
    roots: Vec<Root>,
    slots: Vec<Slot>,
    streams: Vec<Stream>,
    ledger: Option<Ledger>,
    next_key: u64,
    /// This VM's id, naming its own metric series (`metrics::VmSeries`).
    id: String,
}

impl Vm {
    /// An empty VM; `seed` (from the host's randomness) feeds every worker's ids and sampling.
    pub fn new(seed: u64) -> Vm {
        // Drawn from a generator of its own so that the workers' seeds stay what they were.
        // 32 bits: ids only need to differ between the few VMs of one Envoy and its reloads.
        let id = format!(
            "{:08x}",
            Rng::new(seed ^ 0x7A6D_5F69_64AD_7A9E).next_u64() >> 32
        );
        Vm {
            id,
            clock: Clock::default(),
            rng: Rng::new(seed),
            roots: Vec::new(),
            slots: Vec::new(),
            streams: Vec::new(),
            ledger: None,
            next_key: 1,
        }
    }

    /// `proxy_on_configure`: validates the configuration (logging every problem and refusing
    /// it, which makes Envoy reject the plugin) and ties the root to a worker for it.
    pub fn on_configure(
        &mut self,
        host: &mut dyn Host,
        root_id: u32,
        wall_ms: u64,
        config: &[u8],
    ) -> bool {
        let mono_ms = self.clock.advance(wall_ms);
        let cfg = match Config::parse(config) {
            Ok(cfg) => cfg,
            Err(errors) => {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                host.log(
                    LogLevel::Error,
                    &format!("invalid configuration: {}", list.join("; ")),
                );
                return false;
            }
        };
        if host.set_tick_period_ms(cfg.tick_ms).is_err() {
            host.log(LogLevel::Error, "the host refused the tick period");
            return false;
        }
        if self.ledger.is_none() {
            self.ledger = Some(Ledger::define(host, &self.id));
        }
        let at = match self.roots.iter().position(|r| r.id == root_id) {
            Some(at) => at,
            None => {
                let name = host::property_string(host, Property::PluginName);
                self.roots.push(Root {
                    id: root_id,
                    name,
                    worker: None,
                    draining: false,
                });
                self.roots.len() - 1
            }
        };
        if let Some(key) = self.roots.get(at).and_then(|r| r.worker) {
            if self.slot(key).is_some_and(|s| s.worker.config() == &cfg) {
                // The same configuration again: keep the worker and everything it holds.
                return true;
            }
            self.release(host, key, mono_ms);
        }
        let key = self.attach(cfg);
        if let Some(root) = self.roots.get_mut(at) {
            root.worker = Some(key);
            root.draining = false;
        }
        self.publish(host);
        true
    }

    /// `proxy_on_tick` of a root: ships what is due; while draining, finishes the final flush
    /// when idle or at the deadline. Publishes the stats.
    pub fn on_tick(&mut self, host: &mut dyn Host, root_id: u32, wall_ms: u64) {
        let mono_ms = self.clock.advance(wall_ms);
        if let Some(key) = self.root(root_id).and_then(|r| r.worker) {
            if let Some(slot) = self.slot_mut(key) {
                slot.worker.ship(mono_ms, host);
                slot.worker.settle(mono_ms);
            }
        }
        self.streams
            .retain(|s| mono_ms.saturating_sub(s.since_ms) < STREAM_MAX_AGE_MS);
        self.finish_drained(host);
        if let Some(ledger) = self.ledger.as_mut() {
            ledger.tick(host);
        }
        self.publish(host);
    }

    /// `proxy_on_log`: for a root context, the access logger's capture of the logged request;
    /// for a stream, the HTTP filter's.
    pub fn on_log(&mut self, host: &mut dyn Host, context_id: u32, wall_ms: u64) {
        let mono_ms = self.clock.advance(wall_ms);
        if let Some(root) = self.root(context_id) {
            let Some(key) = root.worker else { return };
            if let Some(slot) = self.running_mut(key) {
                session::capture_logged(&mut slot.worker, host, wall_ms, mono_ms);
            }
            return;
        }
        let body = self
            .streams
            .iter()
            .position(|s| s.context == context_id)
            .map(|at| self.streams.remove(at));
        let key = match &body {
            Some(stream) => stream.worker,
            None => match self.stream_worker(host) {
                Some(key) => key,
                None => return,
            },
        };
        let Some(slot) = self.running_mut(key) else {
            return;
        };
        if let Decision::Capture(mut session) =
            Session::begin(&mut slot.worker, host, Deployment::HttpFilter)
        {
            if let Some(stream) = body {
                session.attach_body(&slot.worker, stream.body);
            }
            session.finish(&mut slot.worker, host, wall_ms, mono_ms);
        }
    }

    /// `proxy_on_request_body` of a stream: collects the body if the stream's configuration
    /// captures bodies (the rules are matched at log time, when the headers are readable).
    pub fn on_request_body(
        &mut self,
        host: &mut dyn Host,
        context_id: u32,
        wall_ms: u64,
        size: usize,
    ) {
        let mono_ms = self.clock.advance(wall_ms);
        if let Some(stream) = self.streams.iter_mut().find(|s| s.context == context_id) {
            session::collect_body(&mut stream.body, host, size);
            return;
        }
        let Some(key) = self.stream_worker(host) else {
            return;
        };
        let Some(slot) = self.running_mut(key) else {
            return;
        };
        if !slot.worker.wants_bodies() {
            return;
        }
        let mut body = BodyCapture::new(slot.worker.config().body.max_bytes);
        session::collect_body(&mut body, host, size);
        if self.streams.len() >= MAX_STREAMS {
            self.streams.remove(0);
        }
        self.streams.push(Stream {
            context: context_id,
            worker: key,
            since_ms: mono_ms,
            body,
        });
    }

    /// `proxy_on_http_call_response`: the answer to a batch call (`num_headers` 0: the call
    /// failed without a response).
    pub fn on_http_call_response(
        &mut self,
        host: &mut dyn Host,
        wall_ms: u64,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let mono_ms = self.clock.advance(wall_ms);
        let Some(at) = self.slots.iter().position(|s| s.worker.owns_call(token)) else {
            return;
        };
        let status = if num_headers == 0 {
            None
        } else {
            host.call_response_status()
        };
        let body = host
            .call_response_body(body_size.min(MAX_RESPONSE_BODY))
            .unwrap_or_default();
        let Some(slot) = self.slots.get_mut(at) else {
            return;
        };
        let report = slot.worker.on_answer(mono_ms, host, token, status, &body);
        let draining = matches!(slot.worker.phase(), Phase::Draining { .. });
        slot.worker.settle(mono_ms);
        if let (Some(report), Some(ledger)) = (report, self.ledger.as_ref()) {
            ledger.record_rtt(host, report.rtt_ms);
        }
        if draining {
            self.finish_drained(host);
            self.publish(host);
        }
    }

    /// `proxy_on_done`: for a root, its worker's final flush starts if no other root uses it.
    /// Returns false while that flush goes on (the root calls `done()` when it ends); true for
    /// streams and for roots with nothing to wait for.
    pub fn on_done(&mut self, host: &mut dyn Host, context_id: u32, wall_ms: u64) -> bool {
        let mono_ms = self.clock.advance(wall_ms);
        let Some(at) = self.roots.iter().position(|r| r.id == context_id) else {
            return true;
        };
        let key = self.roots.get(at).and_then(|r| r.worker);
        let Some(slot) = key.and_then(|k| self.slot_mut(k)) else {
            self.roots.remove(at);
            return true;
        };
        slot.roots = slot.roots.saturating_sub(1);
        if slot.roots > 0 {
            self.roots.remove(at);
            return true;
        }
        slot.worker.begin_drain(mono_ms, host);
        let finished = slot.worker.settle(mono_ms);
        if finished {
            self.roots.remove(at);
            self.retire_finished(host);
        } else if let Some(root) = self.roots.get_mut(at) {
            root.draining = true;
        }
        self.publish(host);
        finished
    }

    /// This VM's id: 8 hex digits drawn at start, naming its own series (`adtap_vm.<id>.*`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `context_id` is a configured root (the glue asks before reading the clock for
    /// `on_done`, which Envoy calls for every stream too).
    pub fn is_root(&self, context_id: u32) -> bool {
        self.root(context_id).is_some()
    }

    /// The workers' combined counters, for tests and diagnostics.
    pub fn workers(&self) -> impl Iterator<Item = &Worker> {
        self.slots.iter().map(|s| &s.worker)
    }

    /// The worker root `root_id` captures into.
    pub fn worker_of(&self, root_id: u32) -> Option<&Worker> {
        let key = self.root(root_id)?.worker?;
        self.slot(key).map(|s| &s.worker)
    }

    /// Streams awaiting their log callback.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    // ---- internals ----------------------------------------------------------------------

    fn root(&self, id: u32) -> Option<&Root> {
        self.roots.iter().find(|r| r.id == id)
    }

    fn slot(&self, key: u64) -> Option<&Slot> {
        self.slots.iter().find(|s| s.key == key)
    }

    fn slot_mut(&mut self, key: u64) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.key == key)
    }

    fn running_mut(&mut self, key: u64) -> Option<&mut Slot> {
        self.slot_mut(key)
            .filter(|s| s.worker.phase() == Phase::Running)
    }

    /// A running worker with this configuration, or a new one.
    fn attach(&mut self, cfg: Config) -> u64 {
        if let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.worker.phase() == Phase::Running && s.worker.config() == &cfg)
        {
            slot.roots += 1;
            return slot.key;
        }
        let key = self.next_key;
        self.next_key += 1;
        let seed = self.rng.next_u64();
        self.slots.push(Slot {
            key,
            worker: Worker::new(cfg, seed),
            roots: 1,
        });
        key
    }

    /// A root stops using worker `key` (reconfigured in place): a worker no root uses any more
    /// is abandoned, what it held counted as dropped for shutdown (Envoy normally gives a new
    /// configuration a new root and flushes the old one through `on_done`).
    fn release(&mut self, host: &mut dyn Host, key: u64, _now: u64) {
        if let Some(slot) = self.slot_mut(key) {
            slot.roots = slot.roots.saturating_sub(1);
            if slot.roots == 0 {
                slot.worker.abandon();
            }
        }
        self.publish(host);
        self.retire_finished(host);
    }

    /// Roots waiting on a finished worker call `done()`; finished workers are retired.
    fn finish_drained(&mut self, host: &mut dyn Host) {
        let finished: Vec<u64> = self
            .slots
            .iter()
            .filter(|s| s.worker.phase() == Phase::Finished)
            .map(|s| s.key)
            .collect();
        if finished.is_empty() {
            return;
        }
        let mut waiting = Vec::new();
        self.roots.retain(|r| {
            let done = r.draining && r.worker.is_none_or(|k| finished.contains(&k));
            if done {
                waiting.push(r.id);
            }
            !done
        });
        if !waiting.is_empty() {
            // The final numbers go out before the host may tear the VM down.
            self.publish(host);
            for _ in waiting {
                let _ = host.done();
            }
        }
        self.retire_finished(host);
    }

    /// Moves the numbers of finished workers no root uses into the ledger's base.
    fn retire_finished(&mut self, host: &mut dyn Host) {
        let roots = &self.roots;
        let ledger = &mut self.ledger;
        self.slots.retain(|s| {
            let used = roots.iter().any(|r| r.worker == Some(s.key));
            let gone = s.worker.phase() == Phase::Finished && !used;
            if gone {
                if let Some(l) = ledger.as_mut() {
                    l.retire(s.worker.values());
                    l.retire_topics(host, s.worker.topic_values());
                }
            }
            !gone
        });
    }

    /// The worker a stream belongs to: the only live one, or the one of the root whose
    /// `plugin_name` the stream reports.
    fn stream_worker(&mut self, host: &mut dyn Host) -> Option<u64> {
        let mut live = self
            .roots
            .iter()
            .filter(|r| !r.draining)
            .filter_map(|r| r.worker);
        let first = live.next()?;
        if live.all(|k| k == first) {
            return Some(first);
        }
        let name = host::property_string(host, Property::PluginName);
        self.roots
            .iter()
            .filter(|r| !r.draining)
            .find(|r| name.is_some() && r.name == name)
            .and_then(|r| r.worker)
            .or(Some(first))
    }

    /// Sends every stat's change since the last publish.
    fn publish(&mut self, host: &mut dyn Host) {
        let live = self
            .slots
            .iter()
            .fold([0u64; COUNT], |acc, s| metrics::add(acc, s.worker.values()));
        if let Some(ledger) = self.ledger.as_mut() {
            ledger.publish(host, live);
            ledger.publish_topics(
                host,
                self.slots.iter().flat_map(|s| s.worker.topic_values()),
            );
        }
    }
}
