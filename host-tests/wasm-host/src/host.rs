//! `Host`: one module instance in its own `Store`, driven step by step by a test.
//!
//! The test plays Envoy: it starts the VM, creates streams, feeds headers and bodies, moves the
//! clock, fires ticks, answers the HTTP calls the module made, and shuts the VM down. Every
//! callback into the guest goes through `Host::call`, which sets the executing context, refuels,
//! and turns a trap into an `Err` naming the callback (the host then refuses further calls, as
//! Envoy does with a failed VM).

use crate::abi::{Action, LogLevel, MetricKind};
use crate::guest::lossy_pairs;
use crate::imports::check_module;
use crate::state::{
    CallResponse, Headers, HttpCall, LogEntry, LogSource, Pairs, Rng, State, Stream, ROOT_ID,
};
use std::collections::BTreeMap;
use std::time::Duration;
use wasmtime::error::Context as _;
use wasmtime::{bail, format_err, Result};
use wasmtime::{
    Config, Engine, Instance, Module, Store, StoreLimitsBuilder, WasmParams, WasmResults,
};

/// Everything a test can choose about the simulated Envoy.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Plugin configuration (`configuration` in Envoy's Wasm filter config).
    pub plugin_config: Vec<u8>,
    /// Wall-clock time at the start, in ns since the Unix epoch.
    pub start_time_ns: u64,
    /// Seed of WASI `random_get`.
    pub random_seed: u64,
    /// Cap on linear memory; growing past it fails (the module sees an allocation failure).
    pub memory_limit_bytes: usize,
    /// Instructions (fuel) allowed per callback, so a runaway loop fails the test instead of
    /// hanging it. Needs an engine from [`engine`] (fuel enabled).
    pub fuel_per_callback: u64,
    /// Clusters `proxy_http_call` accepts; `None` accepts every name.
    pub known_clusters: Option<Vec<String>>,
    /// Envoy's log level for the module: `proxy_log` lines below it are dropped, as Envoy
    /// drops them (the filter never asks for the level).
    pub log_level: LogLevel,
    /// Print each log line to stderr as it happens (debug aid).
    pub echo_logs: bool,
    /// Fire HTTP call timeouts (a 504, like Envoy) when `advance_and_tick` passes a deadline.
    pub auto_timeout: bool,
    /// Value of the `plugin_root_id` property.
    pub root_id: String,
    /// Value of the `plugin_vm_id` property.
    pub vm_id: String,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            plugin_config: Vec::new(),
            // 2023-11-14T22:13:20Z: a fixed, recognisable instant.
            start_time_ns: 1_700_000_000_000_000_000,
            random_seed: 0x5EED,
            memory_limit_bytes: 128 << 20,
            fuel_per_callback: 2_000_000_000,
            known_clusters: None,
            log_level: LogLevel::Trace,
            echo_logs: false,
            auto_timeout: true,
            root_id: String::new(),
            vm_id: String::new(),
        }
    }
}

/// An engine configured for the host (Cranelift, fuel metering on).
pub fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.consume_fuel(true);
    Engine::new(&config)
}

/// Compiles `wasm` with a fresh [`engine`] and checks it against what Envoy provides.
/// Share the result between tests (a `Module` is immutable and thread-safe).
pub fn compile(wasm: &[u8]) -> Result<Module> {
    let module = Module::new(&engine()?, wasm).context("compiling the module")?;
    check_module(&module)?;
    Ok(module)
}

/// Reads and compiles the module at `path`.
pub fn compile_file(path: impl AsRef<std::path::Path>) -> Result<Module> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    compile(&bytes)
}

/// Converts test-supplied pairs (`&str` or bytes) into a header map with lowercased keys.
fn to_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Pairs {
    pairs
        .iter()
        .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.as_ref().to_vec()))
        .collect()
}

fn path_of(path: &[&str]) -> Vec<String> {
    path.iter().map(|s| s.to_string()).collect()
}

/// A running module. See the crate docs for an example.
pub struct Host {
    store: Store<State>,
    instance: Instance,
    next_context_id: u32,
    trapped: Option<String>,
    deleted: bool,
}

impl Host {
    /// Instantiates `module` in a new `Store` and runs its `_initialize`/`_start`.
    /// Fails if the module imports anything Envoy does not provide; an import Envoy provides
    /// but this host does not emulate traps, naming itself, when called.
    pub fn new(module: &Module, opts: HostOptions) -> Result<Host> {
        check_module(module)?;
        let limits = StoreLimitsBuilder::new()
            .memory_size(opts.memory_limit_bytes)
            .instances(1)
            .memories(1)
            .build();
        let root_properties = BTreeMap::from([
            (
                path_of(&["plugin_root_id"]),
                opts.root_id.clone().into_bytes(),
            ),
            (path_of(&["plugin_vm_id"]), opts.vm_id.clone().into_bytes()),
        ]);
        let state = State {
            limits,
            rng: Rng(adtap_core::rng::Rng::new(opts.random_seed)),
            root_properties,
            opts,
            ..State::default()
        };
        let mut store = Store::new(module.engine(), state);
        store.limiter(|s| &mut s.limits);

        let linker = crate::imports::linker(module)?;
        let instance = linker
            .instantiate(&mut store, module)
            .context("instantiating the module")?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| format_err!("module exports no memory"))?;
        let allocate = match instance.get_func(&mut store, "proxy_on_memory_allocate") {
            Some(f) => f.typed::<i32, i32>(&store)?,
            None => instance.get_typed_func::<i32, i32>(&mut store, "malloc")?,
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().allocate = Some(allocate);

        let mut host = Host {
            store,
            instance,
            next_context_id: ROOT_ID + 1,
            trapped: None,
            deleted: false,
        };
        for entry in ["_initialize", "_start"] {
            if host.instance.get_func(&mut host.store, entry).is_some() {
                host.call::<(), ()>(entry, 0, ())?;
                break;
            }
        }
        Ok(host)
    }

    /// Calls export `name` with `ctx` as the executing context. A missing export is a no-op
    /// (`Ok(None)`), as in Envoy; a trap becomes an `Err` naming `name` and poisons the host.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        name: &str,
        ctx: u32,
        args: P,
    ) -> Result<Option<R>> {
        if let Some(t) = &self.trapped {
            bail!("refusing to call {name}: the VM trapped earlier ({t})");
        }
        if self.deleted {
            bail!("refusing to call {name}: the VM was deleted");
        }
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            return Ok(None);
        };
        let func = func
            .typed::<P, R>(&self.store)
            .with_context(|| format!("export {name} has an unexpected signature"))?;
        // Fuel is off when the module came from another engine: nothing to refill then.
        let fuel = self.store.data().opts.fuel_per_callback;
        let _ = self.store.set_fuel(fuel);
        let st = self.store.data_mut();
        let saved = st.context;
        st.context = ctx;
        let logs_before = self.store.data().logs.len();
        let result = func.call(&mut self.store, args);
        let st = self.store.data_mut();
        st.context = saved;
        match result {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                // A Rust panic reports itself before aborting (a panic hook logs it at
                // Critical, std's default hook writes stderr): put that first.
                st.flush_stdio();
                let said: Vec<&str> = st
                    .logs
                    .get(logs_before..)
                    .unwrap_or_default()
                    .iter()
                    .filter(|l| l.source == LogSource::Stderr || l.level == LogLevel::Critical)
                    .map(|l| l.message.as_str())
                    .collect();
                let msg = if said.is_empty() {
                    format!("{name}: {e:#}")
                } else {
                    format!("{name}: guest said: {}\n{e:#}", said.join(" | "))
                };
                self.trapped = Some(msg.clone());
                Err(format_err!("guest trapped in {msg}"))
            }
        }
    }

    /// A callback whose only argument is the context and that answers nothing.
    fn notify(&mut self, name: &str, ctx: u32) -> Result<()> {
        self.call::<(i32,), ()>(name, ctx, (ctx as i32,))
            .map(|_| ())
    }

    fn call_bool<P: WasmParams>(&mut self, name: &str, ctx: u32, args: P) -> Result<bool> {
        Ok(self.call::<P, i32>(name, ctx, args)?.is_none_or(|v| v != 0))
    }

    fn call_action<P: WasmParams>(&mut self, name: &str, ctx: u32, args: P) -> Result<Action> {
        let v = self.call::<P, i32>(name, ctx, args)?;
        Ok(v.map(Action::from_abi).unwrap_or(Action::Continue))
    }

    /// Id of the root context.
    pub fn root_id(&self) -> u32 {
        ROOT_ID
    }

    // ---- lifecycle ------------------------------------------------------------------------

    /// `proxy_on_context_create(root, 0)` then `proxy_on_vm_start` (with no VM configuration:
    /// the filter reads none); returns its answer.
    pub fn start_vm(&mut self) -> Result<bool> {
        let args = (ROOT_ID as i32, 0);
        self.call::<(i32, i32), ()>("proxy_on_context_create", ROOT_ID, args)?;
        self.call_bool("proxy_on_vm_start", ROOT_ID, args)
    }

    /// `proxy_on_configure` with the current plugin configuration; returns its answer
    /// (false = Envoy rejects the configuration).
    pub fn configure(&mut self) -> Result<bool> {
        let size = self.store.data().opts.plugin_config.len() as i32;
        self.store.data_mut().configuring = true;
        let r = self.call_bool("proxy_on_configure", ROOT_ID, (ROOT_ID as i32, size));
        self.store.data_mut().configuring = false;
        r
    }

    /// Replaces the plugin configuration for the next [`Host::configure`].
    pub fn set_plugin_config(&mut self, config: impl Into<Vec<u8>>) {
        self.store.data_mut().opts.plugin_config = config.into();
    }

    /// New host, VM started and configured; fails if either step answers false.
    pub fn start(module: &Module, opts: HostOptions) -> Result<Host> {
        let mut host = Host::new(module, opts)?;
        let refused = |host: &Host, step: &str| {
            format_err!("{step} returned false; logs:\n{}", host.dump_logs())
        };
        if !host.start_vm()? {
            return Err(refused(&host, "proxy_on_vm_start"));
        }
        if !host.configure()? {
            return Err(refused(&host, "proxy_on_configure"));
        }
        Ok(host)
    }

    /// Root `proxy_on_done` (Envoy's shutdown or config reload). Returns true if the plugin
    /// finished at once; false means it deferred and must call `proxy_done` later.
    pub fn shutdown(&mut self) -> Result<bool> {
        let finished = self.call_bool("proxy_on_done", ROOT_ID, (ROOT_ID as i32,))?;
        let st = self.store.data_mut();
        if finished {
            st.finish_root();
        } else {
            st.pending_done = true;
        }
        Ok(finished)
    }

    /// Successful `proxy_done` calls so far.
    pub fn done_called(&self) -> u32 {
        self.store.data().done_calls
    }

    /// `proxy_done` calls answered NotFound (no deferred `on_done` pending).
    pub fn rejected_done_calls(&self) -> u32 {
        self.store.data().rejected_done_calls
    }

    /// True once the root finished shutting down (on_done true, or done() after deferring).
    pub fn is_done(&self) -> bool {
        self.store.data().root_finished
    }

    /// Tears the VM down like Envoy: remaining streams are done/deleted, pending calls are
    /// cancelled without callbacks, then the root gets `proxy_on_delete`.
    pub fn delete_vm(&mut self) -> Result<()> {
        if self.deleted {
            return Ok(());
        }
        let mut ids: Vec<u32> = self.store.data().streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.done_stream(id)?;
        }
        self.store.data_mut().cancel_calls(|_| true);
        self.notify("proxy_on_delete", ROOT_ID)?;
        self.deleted = true;
        Ok(())
    }

    /// The first trap, as "callback: message", if the guest ever trapped.
    pub fn trapped(&self) -> Option<&str> {
        self.trapped.as_deref()
    }

    /// Current size of the module's linear memory.
    pub fn linear_memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or(0)
    }

    // ---- time ------------------------------------------------------------------------------

    /// Time elapsed since the host was created.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.store.data().elapsed_ns)
    }

    /// Moves the clock only: no tick, no timeout fires.
    pub fn advance(&mut self, d: Duration) {
        let st = self.store.data_mut();
        st.elapsed_ns = st.elapsed_ns.saturating_add(d.as_nanos() as u64);
    }

    /// Steps the wall clock the module sees back by `d`, as NTP or an operator may step the
    /// system clock. Timers are Envoy's monotonic ones: the next tick and the pending calls'
    /// timeouts keep their remaining time (their recorded `dispatched_at_ns` moves with the
    /// wall clock).
    pub fn step_wall_clock_back(&mut self, d: Duration) {
        let ns = d.as_nanos() as u64;
        let st = self.store.data_mut();
        st.opts.start_time_ns = st.opts.start_time_ns.saturating_sub(ns);
        st.next_tick_ns = st.next_tick_ns.map(|t| t.saturating_sub(ns));
        for call in st.calls.values_mut() {
            call.dispatched_at_ns = call.dispatched_at_ns.saturating_sub(ns);
        }
    }

    /// The tick period the module set, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        let ms = self.store.data().tick_period_ms;
        (ms > 0).then(|| Duration::from_millis(u64::from(ms)))
    }

    /// `proxy_on_tick` now, if a tick period is set; returns whether it ticked.
    pub fn tick(&mut self) -> Result<bool> {
        let st = self.store.data();
        // A finished root gets no more ticks; a deleted VM fails the call below.
        if st.tick_period_ms == 0 || (st.root_finished && !self.deleted) {
            return Ok(false);
        }
        self.notify("proxy_on_tick", ROOT_ID)?;
        Ok(true)
    }

    /// Lets `d` pass like real time: every tick due on the way fires at its exact time, and
    /// (with `auto_timeout`) every HTTP call whose timeout expires gets Envoy's 504, in
    /// chronological order (a timeout before a tick due at the same instant).
    /// Returns the number of ticks fired.
    pub fn advance_and_tick(&mut self, d: Duration) -> Result<u32> {
        let target = self
            .store
            .data()
            .now_ns()
            .saturating_add(d.as_nanos() as u64);
        let mut ticks = 0;
        loop {
            let st = self.store.data();
            let deadline = if st.opts.auto_timeout {
                st.calls
                    .values()
                    .filter_map(|c| c.deadline_ns().map(|t| (t, c.token)))
                    .min()
            } else {
                None
            };
            let tick = st
                .next_tick_ns
                .filter(|_| st.tick_period_ms > 0 && !self.deleted && !st.root_finished);
            match (deadline, tick) {
                (Some((t, token)), tick) if t <= target && tick.is_none_or(|k| t <= k) => {
                    self.set_now(t);
                    self.timeout_call(token)?;
                }
                (_, Some(t)) if t <= target => {
                    // A tick that fell due while the clock was moved by `advance` fires once,
                    // now, and the next one is a period later: Envoy re-arms its timer when it
                    // fires and never catches up on missed ticks.
                    let t = t.max(self.store.data().now_ns());
                    self.set_now(t);
                    let st = self.store.data_mut();
                    st.next_tick_ns = Some(t + u64::from(st.tick_period_ms) * 1_000_000);
                    self.tick()?;
                    ticks += 1;
                }
                _ => break,
            }
        }
        self.set_now(target);
        Ok(ticks)
    }

    fn set_now(&mut self, wall_ns: u64) {
        let st = self.store.data_mut();
        st.elapsed_ns = st
            .elapsed_ns
            .max(wall_ns.saturating_sub(st.opts.start_time_ns));
    }

    // ---- HTTP streams ----------------------------------------------------------------------

    /// Creates an HTTP context (`proxy_on_context_create(id, root)`); returns its id.
    pub fn new_http_context(&mut self) -> Result<u32> {
        let id = self.next_context_id;
        self.next_context_id += 1;
        self.store.data_mut().streams.insert(id, Stream::default());
        let args = (id as i32, ROOT_ID as i32);
        self.call::<(i32, i32), ()>("proxy_on_context_create", id, args)?;
        Ok(id)
    }

    fn stream_mut(&mut self, id: u32) -> Result<&mut Stream> {
        self.store
            .data_mut()
            .streams
            .get_mut(&id)
            .ok_or_else(|| format_err!("no HTTP context {id}"))
    }

    fn stream(&self, id: u32) -> Option<&Stream> {
        self.store.data().streams.get(&id)
    }

    /// Gives Envoy's map to the module for one headers callback (`export`, on the stream's map
    /// `side` picks); the map stays readable while the callback pauses (Envoy keeps its
    /// pointer) and in `on_log`.
    fn headers_step(
        &mut self,
        id: u32,
        export: &str,
        side: fn(&mut Stream) -> &mut Headers,
        pairs: Pairs,
        eos: bool,
    ) -> Result<Action> {
        let n = pairs.len() as i32;
        *side(self.stream_mut(id)?) = Headers {
            map: Some(pairs),
            held: true,
        };
        let action = self.call_action(export, id, (id as i32, n, i32::from(eos)))?;
        if action == Action::Continue {
            // Envoy drops its pointer to the map once the filter continues (the map itself
            // stays for `on_log`).
            side(self.stream_mut(id)?).held = false;
        }
        Ok(action)
    }

    /// `proxy_on_request_headers`. Keys are lowercased (as Envoy's codecs do); values are raw
    /// bytes, so invalid UTF-8 can be sent.
    pub fn request_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        id: u32,
        headers: &[(K, V)],
        end_of_stream: bool,
    ) -> Result<Action> {
        let (export, pairs) = ("proxy_on_request_headers", to_pairs(headers));
        self.headers_step(id, export, |s| &mut s.request, pairs, end_of_stream)
    }

    /// `proxy_on_response_headers`, as [`Host::request_headers`].
    pub fn response_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        id: u32,
        headers: &[(K, V)],
        end_of_stream: bool,
    ) -> Result<Action> {
        let (export, pairs) = ("proxy_on_response_headers", to_pairs(headers));
        self.headers_step(id, export, |s| &mut s.response, pairs, end_of_stream)
    }

    /// `proxy_on_request_body` with one chunk. After a Pause Envoy buffers: the module then
    /// sees everything received so far.
    pub fn request_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Result<Action> {
        let s = self.stream_mut(id)?;
        if !s.buffering_request {
            s.request_body.clear();
        }
        s.request_body.extend_from_slice(chunk);
        s.request_body_live = true;
        let size = s.request_body.len() as i32;
        let eos = i32::from(end_of_stream);
        let action = self.call_action("proxy_on_request_body", id, (id as i32, size, eos))?;
        let s = self.stream_mut(id)?;
        s.buffering_request = action == Action::Pause;
        if action == Action::Continue {
            s.request_body_live = false;
        }
        Ok(action)
    }

    /// `proxy_on_log` (access-log phase: request and response headers readable again).
    pub fn log(&mut self, id: u32) -> Result<()> {
        self.stream_mut(id)?;
        self.store.data_mut().in_log = true;
        let r = self.notify("proxy_on_log", id);
        self.store.data_mut().in_log = false;
        r
    }

    /// Envoy's Wasm access logger logging stream `id`: `proxy_on_log` on the **root** context,
    /// with the stream's request and response headers and properties readable (as Envoy sets
    /// them for the logger's root), then the stream is gone. The VM never had a context for
    /// the stream: the logger deployment has none, so no `proxy_on_done`/`proxy_on_delete`.
    pub fn access_log(&mut self, id: u32) -> Result<()> {
        let st = self.store.data_mut();
        let stream = st
            .streams
            .remove(&id)
            .ok_or_else(|| format_err!("no HTTP context {id}"))?;
        st.streams.insert(ROOT_ID, stream);
        let r = self.log(ROOT_ID);
        self.store.data_mut().streams.remove(&ROOT_ID);
        r
    }

    /// `proxy_on_done` then `proxy_on_delete` for a stream (Envoy's filter destruction).
    /// Calls the stream dispatched are cancelled with it. Returns `on_done`'s answer.
    pub fn done_stream(&mut self, id: u32) -> Result<bool> {
        self.stream_mut(id)?;
        let done = self.call_bool("proxy_on_done", id, (id as i32,))?;
        self.notify("proxy_on_delete", id)?;
        let st = self.store.data_mut();
        st.streams.remove(&id);
        st.cancel_calls(|c| c.context_id == id);
        Ok(done)
    }

    /// End of a stream in Envoy's order: `on_log`, then `on_done` + `on_delete`.
    pub fn complete_stream(&mut self, id: u32) -> Result<()> {
        self.log(id)?;
        self.done_stream(id)?;
        Ok(())
    }

    /// Sets a property the module can read with `get_property` in stream `id`.
    pub fn set_property(
        &mut self,
        id: u32,
        path: &[&str],
        value: impl Into<Vec<u8>>,
    ) -> Result<()> {
        self.stream_mut(id)?
            .properties
            .insert(path_of(path), value.into());
        Ok(())
    }

    /// Sets an integer property (8 little-endian bytes, as Envoy encodes them).
    pub fn set_property_u64(&mut self, id: u32, path: &[&str], value: u64) -> Result<()> {
        self.set_property(id, path, value.to_le_bytes())
    }

    /// Sets a property visible from every context (root included), e.g. `xds.cluster_name`.
    pub fn set_root_property(&mut self, path: &[&str], value: impl Into<Vec<u8>>) {
        self.store
            .data_mut()
            .root_properties
            .insert(path_of(path), value.into());
    }

    /// A property of stream `id` (set by the test or by the module), else a root property.
    pub fn property(&self, id: u32, path: &[&str]) -> Option<Vec<u8>> {
        let key = path_of(path);
        self.stream(id)
            .and_then(|s| s.properties.get(&key))
            .or_else(|| self.store.data().root_properties.get(&key))
            .cloned()
    }

    /// Request headers of stream `id`, as the module reads them.
    pub fn request_header_map(&self, id: u32) -> Option<Vec<(String, String)>> {
        self.stream(id)?.request.map.as_deref().map(lossy_pairs)
    }

    // ---- HTTP calls ------------------------------------------------------------------------

    /// Calls dispatched and not yet answered, by token order.
    pub fn pending_calls(&self) -> Vec<HttpCall> {
        self.store.data().calls.values().cloned().collect()
    }

    /// Calls cancelled because their context went away (no callback was made).
    pub fn cancelled_calls(&self) -> Vec<HttpCall> {
        self.store.data().cancelled_calls.clone()
    }

    /// `proxy_http_call`s refused (unknown cluster, missing pseudo-header, bad timeout).
    pub fn rejected_calls(&self) -> u32 {
        self.store.data().rejected_calls
    }

    /// Answers call `token` with `status`, `headers` (`:status` is added) and `body`.
    pub fn respond<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        token: u32,
        status: u16,
        headers: &[(K, V)],
        body: &[u8],
    ) -> Result<()> {
        let mut all = vec![(b":status".to_vec(), status.to_string().into_bytes())];
        all.extend(to_pairs(headers));
        let body = body.to_vec();
        self.deliver(token, Some(CallResponse { headers: all, body }))
    }

    /// The call failed or was reset: `on_http_call_response(token, 0, 0, 0)`, with no response
    /// maps at all (as Envoy).
    pub fn fail_call(&mut self, token: u32) -> Result<()> {
        self.deliver(token, None)
    }

    /// `proxy_on_http_call_response` for call `token`, with `response` readable during it.
    fn deliver(&mut self, token: u32, response: Option<CallResponse>) -> Result<()> {
        let call = self
            .store
            .data_mut()
            .calls
            .remove(&token)
            .ok_or_else(|| format_err!("no pending HTTP call with token {token}"))?;
        // No trailers: the filter reads none (their map is not emulated).
        let (nh, nb) = response
            .as_ref()
            .map_or((0, 0), |r| (r.headers.len(), r.body.len()));
        self.store.data_mut().call_response = response;
        let args = (
            call.context_id as i32,
            token as i32,
            nh as i32,
            nb as i32,
            0,
        );
        let r = self.call::<(i32, i32, i32, i32, i32), ()>(
            "proxy_on_http_call_response",
            call.context_id,
            args,
        );
        self.store.data_mut().call_response = None;
        r.map(|_| ())
    }

    /// The call timed out. Envoy's router answers a timed-out async request with a local
    /// reply: `:status 504`, body `upstream request timeout`.
    pub fn timeout_call(&mut self, token: u32) -> Result<()> {
        let body = b"upstream request timeout";
        let len = body.len().to_string();
        self.respond(
            token,
            504,
            &[
                ("content-length", len.as_str()),
                ("content-type", "text/plain"),
            ],
            body,
        )
    }

    // ---- metrics and logs ------------------------------------------------------------------

    /// Value of counter or gauge `name`.
    pub fn metric(&self, name: &str) -> Option<i64> {
        let m = &self.store.data().metrics;
        [MetricKind::Counter, MetricKind::Gauge]
            .into_iter()
            .find_map(|k| m.get(&(k, name.to_string())))
            .map(|m| m.value)
    }

    /// Values recorded into histogram `name`.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        self.store
            .data()
            .metrics
            .get(&(MetricKind::Histogram, name.to_string()))
            .map(|m| m.recorded.clone())
    }

    /// Every log line so far (`proxy_log` and WASI stdout/stderr).
    pub fn logs(&self) -> &[LogEntry] {
        &self.store.data().logs
    }

    /// Log lines containing `needle`.
    pub fn logs_containing(&self, needle: &str) -> Vec<&LogEntry> {
        self.logs()
            .iter()
            .filter(|l| l.message.contains(needle))
            .collect()
    }

    /// Whether any log line contains `needle`.
    pub fn has_log(&self, needle: &str) -> bool {
        self.logs().iter().any(|l| l.message.contains(needle))
    }

    /// Forgets the logs captured so far.
    pub fn clear_logs(&mut self) {
        self.store.data_mut().logs.clear();
    }

    /// All logs, one per line, for assertion messages.
    pub fn dump_logs(&self) -> String {
        self.logs()
            .iter()
            .map(|l| format!("[{:?} ctx={}] {}", l.level, l.context_id, l.message))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
