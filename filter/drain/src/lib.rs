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
//!    `adtap_buffered` and `adtap_in_flight` at 0, over the live VMs' own series), bounded by a
//!    timeout; batches leave on their own triggers, `batch.max_age_ms` at the latest. A VM whose
//!    `adtap_vm.<id>.ticks` has not advanced for [`Wait::dead_after`] is dead (it trapped: its
//!    gauges never come back down, FACTS §7); what it holds is lost already and is reported,
//!    not waited for ([`Liveness`]).
//! 3. Optionally stop Envoy: SIGTERM to a pid, or `POST /quitquitquit`.
//!
//! Only std and `libc` (signals): the binary is built static (x86_64-unknown-linux-musl) so it
//! runs in an Envoy image without a shell or curl, as a Kubernetes `preStop` `exec` hook or as
//! the container's entry point wrapping Envoy (`--exec`).

use std::collections::{BTreeMap, BTreeSet};
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

/// The "idle?" decision: what every live VM holds, from adtap's stats; `dead` are the ids of
/// VMs known dead ([`Liveness::dead`]).
///
/// With per-VM series (`adtap_vm.<id>.buffered`, `.in_flight`: each VM sets its own), the sum
/// over the VMs not in `dead`: a dead VM's last gauges stay in Envoy's totals for ever, and
/// waiting for them would wait out the whole timeout. Without them (an older filter), the
/// totals `adtap_buffered` and `adtap_in_flight`, which count every VM.
pub fn assess(stats: &Stats, dead: &BTreeSet<String>) -> Holding {
    let (Some(&total_buffered), Some(&total_in_flight)) =
        (stats.get("adtap_buffered"), stats.get("adtap_in_flight"))
    else {
        return Holding::NotVisible;
    };
    let vms = vm_series(stats);
    let (buffered, in_flight) = if vms.is_empty() {
        (total_buffered, total_in_flight)
    } else {
        vms.iter()
            .filter(|(id, _)| !dead.contains(*id))
            .fold((0u64, 0u64), |(b, f), (_, s)| {
                (
                    b.saturating_add(s.get("buffered").copied().unwrap_or(0)),
                    f.saturating_add(s.get("in_flight").copied().unwrap_or(0)),
                )
            })
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

/// The per-VM series (`adtap_vm.<id>.<name>`) by VM id, then by name (`ticks`, `buffered`, …).
pub fn vm_series(stats: &Stats) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (k, v) in stats {
        if let Some((id, name)) = k.strip_prefix("adtap_vm.").and_then(|r| r.split_once('.')) {
            out.entry(id.to_string())
                .or_default()
                .insert(name.to_string(), *v);
        }
    }
    out
}

/// Which VMs are alive, from successive polls: a VM is dead once its `ticks` counter has not
/// moved for `dead_after`.
///
/// Not "between two polls": a live VM ticks every `tick_ms` (100 ms by default), and polls
/// closer than that would find a live VM unchanged and call it dead, and a stop that skips a
/// live VM's events loses them. The window must span several tick periods.
#[derive(Debug, Clone)]
pub struct Liveness {
    dead_after: Duration,
    /// Per VM id: the ticks last seen, and when they last changed (or were first seen).
    seen: BTreeMap<String, (u64, Duration)>,
}

impl Liveness {
    /// No VM seen yet; `dead_after` as in [`Wait::dead_after`].
    pub fn new(dead_after: Duration) -> Liveness {
        Liveness {
            dead_after,
            seen: BTreeMap::new(),
        }
    }

    /// Takes in one poll of the stats, read at `at` (any monotonic origin).
    pub fn observe(&mut self, stats: &Stats, at: Duration) {
        for (id, series) in vm_series(stats) {
            let Some(&ticks) = series.get("ticks") else {
                continue;
            };
            match self.seen.get_mut(&id) {
                Some(entry) if entry.0 == ticks => {}
                Some(entry) => *entry = (ticks, at),
                None => {
                    self.seen.insert(id, (ticks, at));
                }
            }
        }
    }

    /// The VMs whose ticks have not moved for `dead_after` up to `at`.
    pub fn dead(&self, at: Duration) -> BTreeSet<String> {
        self.seen
            .iter()
            .filter(|(_, (_, since))| at.saturating_sub(*since) >= self.dead_after)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// Parses the text form of `/stats` (`name: value` per line), keeping `adtap_*` counters and
/// gauges (with or without the `wasmcustom.` prefix); histogram lines have no integer value and
/// are skipped.
pub fn parse_stats(text: &str) -> Stats {
    parse_all_stats(text)
        .into_iter()
        .filter_map(|(name, value)| {
            let short = name.strip_prefix("wasmcustom.").unwrap_or(&name);
            short
                .starts_with("adtap_")
                .then(|| (short.to_string(), value))
        })
        .collect()
}

/// Every counter and gauge of the text form of `/stats`, by full name (histogram and text
/// stats, which have no integer value, are skipped). [`parse_stats`] narrows it to adtap's.
pub fn parse_all_stats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            Some((name.trim().to_string(), value.trim().parse().ok()?))
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

    /// One HTTP/1.1 request without a body ([`request`]); the body as text.
    pub fn call(&self, method: &str, path: &str) -> Result<(u16, String), AdminError> {
        let (status, body) = request(self.addr, method, path, None, self.timeout)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
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

/// One blocking HTTP/1.1 request to `addr` on a fresh connection (`Connection: close`), with an
/// optional body and its content type, each step bounded by `timeout`; returns the status and
/// the de-chunked body. HTTP/1.0 would be simpler to read, but Envoy's admin refuses it (426).
/// The host tests use this client too (`adtap_harness::http`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), AdminError> {
    let what = |e: std::io::Error| err(format!("{method} {path} on {addr}: {e}"));
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).map_err(what)?;
    tcp.set_read_timeout(Some(timeout)).map_err(what)?;
    tcp.set_write_timeout(Some(timeout)).map_err(what)?;
    let (content_type, bytes) = body.unwrap_or(("", b""));
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    if !content_type.is_empty() {
        req.push_str(&format!("content-type: {content_type}\r\n"));
    }
    req.push_str(&format!("content-length: {}\r\n\r\n", bytes.len()));
    tcp.write_all(req.as_bytes()).map_err(what)?;
    tcp.write_all(bytes).map_err(what)?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).map_err(what)?;
    parse_response(&raw).map_err(|e| err(format!("{method} {path}: {e}")))
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
    /// A VM whose ticks have not advanced for this long is dead and not waited for
    /// ([`Liveness`]); several tick periods (adtap's `tick_ms`, 100 ms by default).
    pub dead_after: Duration,
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
    /// The VMs found dead, with what they held when they died (`buffered`, `in_flight`):
    /// events lost with them, excluded from the wait.
    pub dead: BTreeMap<String, (u64, u64)>,
}

/// What the dead VMs among `stats` hold: their frozen `buffered` and `in_flight`.
fn dead_holdings(stats: &Stats, dead: &BTreeSet<String>) -> BTreeMap<String, (u64, u64)> {
    vm_series(stats)
        .into_iter()
        .filter(|(id, _)| dead.contains(id))
        .map(|(id, s)| {
            let get = |k: &str| s.get(k).copied().unwrap_or(0);
            (id, (get("buffered"), get("in_flight")))
        })
        .collect()
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
    let mut liveness = Liveness::new(wait.dead_after);
    loop {
        let last_err = match admin.stats() {
            Ok(stats) => {
                liveness.observe(&stats, t0.elapsed());
                let dead = liveness.dead(t0.elapsed());
                let holding = assess(&stats, &dead);
                let settled = holding == Holding::Idle && t0.elapsed() >= wait.at_least;
                if settled || holding == Holding::NotVisible {
                    return Ok(Outcome {
                        holding,
                        elapsed: t0.elapsed(),
                        dead: dead_holdings(&stats, &dead),
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
            let dead = liveness.dead(t0.elapsed());
            return Ok(Outcome {
                holding: assess(&last, &dead),
                elapsed: t0.elapsed(),
                dead: dead_holdings(&last, &dead),
                stats: last,
            });
        }
        std::thread::sleep(wait.every);
    }
}

fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
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
    Ok((status, body))
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
        let all = parse_all_stats("cluster.kafka_rest.upstream_rq_total: 3\nx.h: P0(nan,1)\n");
        assert_eq!(all.get("cluster.kafka_rest.upstream_rq_total"), Some(&3));
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn requests_carry_the_body_and_read_the_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"{}") {
                let n = conn.read(&mut buf).unwrap();
                got.extend_from_slice(buf.get(..n).unwrap_or_default());
            }
            conn.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
                .unwrap();
            String::from_utf8(got).unwrap()
        });
        let r = request(
            addr,
            "POST",
            "/x",
            Some(("application/json", b"{}")),
            Duration::from_secs(5),
        );
        assert_eq!(r.unwrap(), (201, b"ok".to_vec()));
        let sent = server.join().unwrap();
        assert!(sent.starts_with("POST /x HTTP/1.1\r\n"), "{sent}");
        assert!(
            sent.contains("content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"),
            "{sent}"
        );
    }

    #[test]
    fn idle_only_when_both_gauges_are_zero_and_unknown_when_absent() {
        let stats = |b: u64, f: u64| {
            Stats::from([("adtap_buffered".into(), b), ("adtap_in_flight".into(), f)])
        };
        let none = BTreeSet::new();
        assert_eq!(assess(&stats(0, 0), &none), Holding::Idle);
        assert_eq!(
            assess(&stats(3, 1), &none),
            Holding::Events {
                buffered: 3,
                in_flight: 1
            }
        );
        assert_eq!(
            assess(&stats(0, 2), &none).to_string(),
            "0 events buffered, 2 in flight"
        );
        assert_eq!(assess(&Stats::new(), &none), Holding::NotVisible);
    }

    /// Two VMs, `aaaa0001` live, `bbbb0002` trapped holding 7 buffered and 2 in flight (its
    /// share stays in the totals); `ticks` of each as given.
    fn two_vms(live_ticks: u64, live_buffered: u64, dead_ticks: u64) -> Stats {
        Stats::from([
            ("adtap_buffered".into(), 7 + live_buffered),
            ("adtap_in_flight".into(), 2),
            ("adtap_vm.aaaa0001.ticks".into(), live_ticks),
            ("adtap_vm.aaaa0001.buffered".into(), live_buffered),
            ("adtap_vm.aaaa0001.in_flight".into(), 0),
            ("adtap_vm.bbbb0002.ticks".into(), dead_ticks),
            ("adtap_vm.bbbb0002.buffered".into(), 7),
            ("adtap_vm.bbbb0002.in_flight".into(), 2),
        ])
    }

    #[test]
    fn a_vm_whose_ticks_stop_for_the_window_is_dead_and_not_waited_for() {
        let ms = Duration::from_millis;
        let mut l = Liveness::new(ms(1000));
        l.observe(&two_vms(10, 3, 40), ms(0));
        // Not yet known dead: every VM counts, the dead one's share included.
        assert_eq!(
            assess(&two_vms(10, 3, 40), &l.dead(ms(0))),
            Holding::Events {
                buffered: 10,
                in_flight: 2
            }
        );
        // Polls closer than a tick: neither moved, neither is dead yet.
        l.observe(&two_vms(10, 3, 40), ms(50));
        assert!(l.dead(ms(50)).is_empty());
        // The live one ticks on; the dead one's ticks stay at 40.
        l.observe(&two_vms(15, 1, 40), ms(600));
        l.observe(&two_vms(20, 0, 40), ms(1100));
        let dead = l.dead(ms(1100));
        assert_eq!(dead, BTreeSet::from(["bbbb0002".to_string()]));
        // Idle although the totals still say 7 buffered and 2 in flight.
        assert_eq!(assess(&two_vms(20, 0, 40), &dead), Holding::Idle);
        assert_eq!(
            dead_holdings(&two_vms(20, 0, 40), &dead),
            BTreeMap::from([("bbbb0002".to_string(), (7, 2))])
        );
        // A live VM that still holds events is waited for, dead one or not.
        assert_eq!(
            assess(&two_vms(25, 4, 40), &dead),
            Holding::Events {
                buffered: 4,
                in_flight: 0
            }
        );
        // A VM that ticks again (it was only slow) is live again.
        l.observe(&two_vms(30, 0, 41), ms(1200));
        assert!(l.dead(ms(1200)).is_empty());
    }

    #[test]
    fn reads_plain_and_chunked_responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        assert_eq!(r, (200, b"ok".to_vec()));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r, (200, b"abcde".to_vec()));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }
}
