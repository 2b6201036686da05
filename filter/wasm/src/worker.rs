//! Per-worker state, shared by one Envoy worker's root context and its HTTP contexts.
//!
//! Envoy runs one VM per worker thread, so this state is never touched by two threads: an
//! `Rc<RefCell<…>>` is all the sharing it needs, and the buffer is never swapped or locked.

use crate::metrics::Local;
use adtap_core::classify::DropReason;
use adtap_core::encode;
use adtap_core::pipeline::Pipeline;
use adtap_core::rng::Rng;
use adtap_core::{Config, Event};
use std::cell::RefCell;
use std::rc::Rc;

/// Shared handle to a worker's state.
pub type Shared = Rc<RefCell<Option<Worker>>>;

/// What one worker knows and holds.
#[derive(Debug)]
pub struct Worker {
    /// The validated configuration.
    pub cfg: Config,
    /// Which configuration of this root this is (0, 1, … per successful `on_configure`), so
    /// that a stream begun under an older one is not finished with the new rules.
    pub generation: u64,
    /// Buffer, batches, retries, accounting.
    pub pipeline: Pipeline,
    /// Sampling decisions.
    pub rng: Rng,
    /// Random id of this VM, the first half of every event id.
    pub vm_id: u64,
    /// Next event sequence number in this VM.
    pub seq: u64,
    /// Request counters of the HTTP contexts.
    pub local: Local,
    /// Encoding scratch space, reused for every event.
    scratch: Vec<u8>,
}

impl Worker {
    /// A worker for `cfg`; `seed` feeds the VM id, sampling and jitter.
    pub fn new(cfg: Config, generation: u64, seed: u64) -> Worker {
        let mut rng = Rng::new(seed);
        let vm_id = rng.next_u64();
        let pipeline = Pipeline::new(&cfg, rng.next_u64());
        Worker {
            cfg,
            generation,
            pipeline,
            rng,
            vm_id,
            seq: 0,
            local: Local::default(),
            scratch: Vec::with_capacity(2048),
        }
    }

    /// A fresh event id, unique across workers and restarts (random VM id + sequence).
    pub fn next_event_id(&mut self) -> String {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        format!("{:016x}-{:x}", self.vm_id, seq)
    }

    /// Encodes a finished event and hands it to the pipeline.
    pub fn accept(&mut self, now_ms: u64, rule: usize, event: &Event) {
        match encode::to_record_with(&self.cfg, rule, event, &mut self.scratch) {
            Ok(record) => self.pipeline.push(now_ms, record),
            Err(_) => self.pipeline.push_failed(DropReason::Encode),
        }
    }
}

/// A random seed from the host (WASI `random_get`), falling back to the clock.
pub fn host_seed(now_ms: u64) -> u64 {
    let mut buf = [0u8; 8];
    match getrandom::fill(&mut buf) {
        Ok(()) => u64::from_le_bytes(buf),
        Err(_) => now_ms ^ 0x5DEE_CE66_D1CE_4E5B,
    }
}
