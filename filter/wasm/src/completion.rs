//! Reading an event's response-time fields in `on_log`: with Envoy's CEL, one host call for all
//! of them; without it, one property read per field. See [`adtap_core::completion`] for why.

use crate::host::{self, HeaderMap};
use adtap_core::capture::Completion;
use adtap_core::completion::Plan;
use proxy_wasm::types::LogLevel;
use std::cell::Cell;

/// What `on_log` reads, and the host's compiled expression for it, if the host compiled one.
#[derive(Debug)]
pub struct Reader {
    plan: Plan,
    /// `expr_create`'s token; `None` when the host offers no CEL (or nothing is read).
    token: Option<u32>,
    /// Whether a failed evaluation was logged already (once per worker is enough).
    failure_logged: Cell<bool>,
}

impl Reader {
    /// Compiles the plan's expression in the host (from `on_configure`: Envoy keeps compiled
    /// expressions per root context). A host without CEL leaves the reader on properties.
    pub fn new(plan: Plan) -> Reader {
        let token = plan.expression().and_then(|expr| {
            let out = host::call_foreign("expr_create", expr.as_bytes()).ok()?;
            let bytes: [u8; 4] = out.get(..4)?.try_into().ok()?;
            Some(u32::from_le_bytes(bytes))
        });
        if token.is_some() {
            host::log(
                LogLevel::Info,
                "response fields read through Envoy's CEL: one host call per event",
            );
        }
        Reader {
            plan,
            token,
            failure_logged: Cell::new(false),
        }
    }

    /// Whether the host evaluates the fields in one call.
    pub fn uses_cel(&self) -> bool {
        self.token.is_some()
    }

    /// Frees the compiled expression in the host (when a reconfiguration replaces the reader).
    pub fn release(&self) {
        if let Some(token) = self.token {
            let _ = host::call_foreign("expr_delete", &token.to_le_bytes());
        }
    }

    /// The fields of the stream being logged. `peer_wanted`: whether the event uses the peer
    /// address (the plan reads it when the client-IP mode may).
    pub fn read(&self, peer_wanted: bool) -> Completion {
        if let Some(done) = self.evaluate(peer_wanted) {
            return done;
        }
        if self.token.is_some() && !self.failure_logged.replace(true) {
            host::log(
                LogLevel::Warn,
                "expr_evaluate failed or gave an unexpected answer: reading properties one by \
                 one for such events",
            );
        }
        self.properties(peer_wanted)
    }

    /// One `expr_evaluate` call; `None` if the host failed it or the answer does not fit.
    fn evaluate(&self, peer_wanted: bool) -> Option<Completion> {
        let token = self.token?;
        let out = host::call_foreign("expr_evaluate", &token.to_le_bytes()).ok()?;
        // A CEL list comes serialised like a header map, each item in the key position.
        let list = HeaderMap::parse(out)?;
        let items: Vec<&[u8]> = list.iter().map(|(item, _)| item).collect();
        self.plan.decode(items.into_iter(), peer_wanted)
    }

    /// One `get_property` per configured field.
    fn properties(&self, peer_wanted: bool) -> Completion {
        let fields = self.plan.fields;
        let u64_if =
            |on: bool, path: host::PropertyPath| on.then(|| host::property_u64(path)).flatten();
        let str_if = |on: bool, path: host::PropertyPath| {
            on.then(|| host::property_string(path))
                .flatten()
                .filter(|s| !s.is_empty())
        };
        Completion {
            status: u64_if(fields.status, "response\0code").and_then(|c| u16::try_from(c).ok()),
            duration_us: u64_if(fields.duration, "request\0duration").map(|ns| ns / 1_000),
            request_bytes: u64_if(fields.sizes, "request\0total_size"),
            response_bytes: u64_if(fields.sizes, "response\0total_size"),
            route: str_if(fields.route, "xds\0route_name"),
            upstream: str_if(fields.upstream, "xds\0cluster_name"),
            peer_address: str_if(peer_wanted, "source\0address"),
        }
    }
}
