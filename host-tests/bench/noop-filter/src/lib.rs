//! A proxy-wasm filter that does nothing: a root context that hands out HTTP contexts, and HTTP
//! contexts whose callbacks all return `Continue` (the SDK's defaults). Envoy still enters the
//! VM for every callback of every request, which is exactly the cost the bench wants as its
//! baseline.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

/// The root context: creates one [`NoopStream`] per request.
struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopStream))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// An HTTP context that observes nothing and changes nothing.
struct NoopStream;

impl Context for NoopStream {}

impl HttpContext for NoopStream {}
