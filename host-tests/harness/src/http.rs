//! The blocking HTTP/1.1 client of every host test and bench for control calls and single
//! requests (Envoy's admin, the REST proxy's `/v3/clusters`, one request to a listener): one
//! request per connection, `Connection: close`, chunked bodies decoded. It is adtap-drain's
//! client (the tool adtap ships to stop Envoy), so there is one; load goes through hyper or the
//! bench's keep-alive generator instead.

use anyhow::{anyhow, Result};
use std::net::SocketAddr;
use std::time::Duration;

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method path` with an optional body (content type, bytes) to `addr`, each step
/// bounded by `timeout` (adtap-drain's client, [`adtap_drain::request`]).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response> {
    let (status, body) =
        adtap_drain::request(addr, method, path, body, timeout).map_err(|e| anyhow!("{e}"))?;
    Ok(Response { status, body })
}

/// `GET path` with a 5 s timeout.
pub fn get(addr: SocketAddr, path: &str) -> Result<Response> {
    request(addr, "GET", path, None, Duration::from_secs(5))
}

/// `POST path` (empty body) with a 5 s timeout.
pub fn post(addr: SocketAddr, path: &str) -> Result<Response> {
    request(addr, "POST", path, None, Duration::from_secs(5))
}
