//! `adtap-drain`: the lossless stop for an Envoy running adtap.
//!
//! Envoy 1.40 destroys each worker's VM about a millisecond after its root `on_done`, whatever
//! `on_done` returned, so what adtap holds at SIGTERM is lost (README, Delivery semantics). The
//! stop that loses nothing drains first and signals last:
//!
//! 1. `POST /drain_listeners?graceful&skip_exit` (optionally `&inboundonly`): the listeners wind
//!    down; `skip_exit` keeps Envoy from exiting on its own at the end of `--drain-time-s`, so
//!    the stop stays ours.
//! 2. Poll `/stats?filter=adtap_` until every live VM holds nothing ([`assess`]: the gauges
//!    `adtap_buffered` and `adtap_in_flight` at 0), bounded by a timeout; batches leave on their
//!    own triggers, `batch.max_age_ms` at the latest.
//! 3. Optionally stop Envoy: SIGTERM to a pid, or `POST /quitquitquit`.
//!
//! Only std and `libc` (signals): the binary is built static (x86_64-unknown-linux-musl) so it
//! runs in an Envoy image without a shell or curl, as a Kubernetes `preStop` `exec` hook or as
//! the container's entry point wrapping Envoy (`--exec`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// adtap's stats as Envoy shows them, by name without the `wasmcustom.` prefix
/// (`adtap_buffered`, …); histograms are left out.
pub type Stats = BTreeMap<String, u64>;

/// What the VMs hold, from [`assess`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holding {
    /// Nothing buffered and nothing in flight: stopping now loses nothing.
    Idle,
    /// Events still held (buffered or awaiting a retry, and in unanswered calls).
    Events {
        /// `adtap_buffered`.
        buffered: u64,
        /// `adtap_in_flight`.
        in_flight: u64,
    },
    /// adtap's gauges are not in `/stats`: the module is not loaded, or a stats matcher hides
    /// them (Istio's default does; see envoy/kubernetes/README.md). Nothing can be decided.
    NotVisible,
}

impl fmt::Display for Holding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holding::Idle => f.write_str("idle: nothing buffered, nothing in flight"),
            Holding::Events {
                buffered,
                in_flight,
            } => write!(f, "{buffered} events buffered, {in_flight} in flight"),
            Holding::NotVisible => f.write_str(
                "adtap's gauges (wasmcustom.adtap_buffered, wasmcustom.adtap_in_flight) are not \
                 in /stats: adtap is not loaded, or a stats matcher hides them",
            ),
        }
    }
}

/// The "idle?" decision: what every live VM holds, from adtap's stats.
///
/// Envoy sums each VM's published changes into one gauge, so today every VM counts. The one
/// place to exclude dead VMs (their last gauges never come back down, FACTS §7) once the
/// filter publishes per-VM liveness.
pub fn assess(stats: &Stats) -> Holding {
    let (Some(&buffered), Some(&in_flight)) =
        (stats.get("adtap_buffered"), stats.get("adtap_in_flight"))
    else {
        return Holding::NotVisible;
    };
    if buffered == 0 && in_flight == 0 {
        Holding::Idle
    } else {
        Holding::Events {
            buffered,
            in_flight,
        }
    }
}

/// Parses the text form of `/stats` (`name: value` per line), keeping `adtap_*` counters and
/// gauges (with or without the `wasmcustom.` prefix); histogram lines have no integer value and
/// are skipped.
pub fn parse_stats(text: &str) -> Stats {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            let short = name
                .trim()
                .strip_prefix("wasmcustom.")
                .unwrap_or(name.trim());
            if !short.starts_with("adtap_") {
                return None;
            }
            Some((short.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// An error talking to the admin interface.
#[derive(Debug)]
pub struct AdminError(pub String);

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AdminError {}

fn err(msg: impl Into<String>) -> AdminError {
    AdminError(msg.into())
}

/// Envoy's admin interface at one address.
#[derive(Debug, Clone)]
pub struct Admin {
    addr: SocketAddr,
    timeout: Duration,
}

impl Admin {
    /// The admin at `addr` (`HOST:PORT`), each call bounded by `timeout`.
    pub fn new(addr: &str, timeout: Duration) -> Result<Admin, AdminError> {
        let addr = addr
            .to_socket_addrs()
            .map_err(|e| err(format!("admin address {addr:?}: {e}")))?
            .next()
            .ok_or_else(|| err(format!("admin address {addr:?} resolves to nothing")))?;
        Ok(Admin { addr, timeout })
    }

    /// The address in use.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One HTTP/1.1 request (`Connection: close`); returns the status and the de-chunked body.
    /// HTTP/1.0 would be simpler to read, but Envoy's admin refuses it (426).
    pub fn call(&self, method: &str, path: &str) -> Result<(u16, String), AdminError> {
        let what = |e: std::io::Error| err(format!("{method} {path} on {}: {e}", self.addr));
        let mut tcp = TcpStream::connect_timeout(&self.addr, self.timeout).map_err(what)?;
        tcp.set_read_timeout(Some(self.timeout)).map_err(what)?;
        tcp.set_write_timeout(Some(self.timeout)).map_err(what)?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            self.addr
        );
        tcp.write_all(req.as_bytes()).map_err(what)?;
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).map_err(what)?;
        parse_response(&raw).map_err(|e| err(format!("{method} {path}: {e}")))
    }

    /// `POST /drain_listeners?graceful&skip_exit` (`&inboundonly` if asked).
    pub fn drain_listeners(&self, inbound_only: bool) -> Result<(), AdminError> {
        let path = if inbound_only {
            "/drain_listeners?graceful&skip_exit&inboundonly"
        } else {
            "/drain_listeners?graceful&skip_exit"
        };
        match self.call("POST", path)? {
            (200, _) => Ok(()),
            (status, body) => Err(err(format!("{path} answered {status}: {}", body.trim()))),
        }
    }

    /// adtap's stats now.
    pub fn stats(&self) -> Result<Stats, AdminError> {
        match self.call("GET", "/stats?filter=adtap_")? {
            (200, body) => Ok(parse_stats(&body)),
            (status, body) => Err(err(format!("/stats answered {status}: {}", body.trim()))),
        }
    }

    /// `POST /quitquitquit`: Envoy exits cleanly.
    pub fn quit(&self) -> Result<(), AdminError> {
        match self.call("POST", "/quitquitquit")? {
            (200, _) => Ok(()),
            (status, body) => Err(err(format!("/quitquitquit answered {status}: {body}"))),
        }
    }
}

/// How long to wait, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    /// Give up after this long (from the drain request).
    pub timeout: Duration,
    /// Between two looks at the stats.
    pub every: Duration,
    /// Do not call the VMs idle before this much time has passed since the drain: requests
    /// still in progress on draining connections are captured when they end.
    pub at_least: Duration,
}

/// What [`drain_and_wait`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The last assessment ([`Holding::Idle`] on success).
    pub holding: Holding,
    /// From the drain request to that assessment.
    pub elapsed: Duration,
    /// The last stats read (empty if none could be read).
    pub stats: Stats,
}

/// Steps 1 and 2: drains the listeners (unless `drain` is false), then polls the stats until
/// [`assess`] says idle or `wait.timeout` passes. [`Holding::NotVisible`] ends the wait early
/// (gauges do not appear later); an unreadable `/stats` is retried until the timeout.
pub fn drain_and_wait(
    admin: &Admin,
    drain: bool,
    inbound_only: bool,
    wait: Wait,
) -> Result<Outcome, AdminError> {
    let t0 = Instant::now();
    if drain {
        admin.drain_listeners(inbound_only)?;
    }
    let mut last = Stats::new();
    loop {
        let last_err = match admin.stats() {
            Ok(stats) => {
                let holding = assess(&stats);
                let settled = holding == Holding::Idle && t0.elapsed() >= wait.at_least;
                if settled || holding == Holding::NotVisible {
                    return Ok(Outcome {
                        holding,
                        elapsed: t0.elapsed(),
                        stats,
                    });
                }
                last = stats;
                None
            }
            Err(e) => Some(e),
        };
        if t0.elapsed() >= wait.timeout {
            if let Some(e) = last_err {
                return Err(e);
            }
            return Ok(Outcome {
                holding: assess(&last),
                elapsed: t0.elapsed(),
                stats: last,
            });
        }
        std::thread::sleep(wait.every);
    }
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in a {}-byte response", raw.len()))?;
    let head = String::from_utf8_lossy(raw.get(..head_end).unwrap_or_default());
    let body = raw.get(head_end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(data.get(..line_end).unwrap_or_default());
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = data.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or("truncated chunk")?);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_text_stats_and_skips_histograms_and_others() {
        let s = parse_stats(
            "cluster.kafka_rest.upstream_rq_total: 3\n\
             wasmcustom.adtap_buffered: 12\n\
             wasmcustom.adtap_in_flight: 0\n\
             wasmcustom.adtap_batch_rtt_ms: P0(nan,1) P25(nan,2)\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.get("adtap_buffered"), Some(&12));
    }

    #[test]
    fn idle_only_when_both_gauges_are_zero_and_unknown_when_absent() {
        let stats = |b: u64, f: u64| {
            Stats::from([("adtap_buffered".into(), b), ("adtap_in_flight".into(), f)])
        };
        assert_eq!(assess(&stats(0, 0)), Holding::Idle);
        assert_eq!(
            assess(&stats(3, 1)),
            Holding::Events {
                buffered: 3,
                in_flight: 1
            }
        );
        assert_eq!(
            assess(&stats(0, 2)).to_string(),
            "0 events buffered, 2 in flight"
        );
        assert_eq!(assess(&Stats::new()), Holding::NotVisible);
    }

    #[test]
    fn reads_plain_and_chunked_responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        assert_eq!(r, (200, "ok".to_string()));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r, (200, "abcde".to_string()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
