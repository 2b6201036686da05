//! Load generators.
//!
//! - [`wrk`]: saturation throughput with Debian's `wrk` (closed loop: each connection sends
//!   its next request when the previous answer arrives).
//! - [`fixed_rate`]: an open-loop generator for latency at a fixed rate. Each of `conns`
//!   keep-alive connections has its own thread and its own schedule (request `k` of connection
//!   `i` is due at `(k·conns + i) / rate`). A request is timed from its *due* time when the
//!   connection was still busy with the previous one at that moment (the server made it late:
//!   this is the queueing that closed-loop tools hide, "coordinated omission"), and from its
//!   actual send time otherwise (then any lateness is only the generator's own sleep slack,
//!   which must not count against the server).

use crate::http::ResponseReader;
use crate::stats::percentile;
use anyhow::{anyhow, bail, Context, Result};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkResult {
    /// `Requests/sec`.
    pub rps: f64,
    /// Requests completed.
    pub requests: u64,
    /// Socket errors (connect, read, write, timeout) plus non-2xx answers.
    pub errors: u64,
}

/// Runs `wrk -t threads -c conns -d secs` on `url` with the bench headers; `cpu` pins it.
pub fn wrk(
    url: &str,
    headers: &[(&str, &str)],
    threads: usize,
    conns: usize,
    secs: u64,
    cpu: Option<usize>,
) -> Result<WrkResult> {
    let mut cmd = match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg("wrk");
            cmd
        }
        None => Command::new("wrk"),
    };
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"));
    for (k, v) in headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    cmd.arg(url);
    let out = cmd.output().context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text)
}

/// Reads `Requests/sec`, the request count and error counts from wrk's report.
pub fn parse_wrk(text: &str) -> Result<WrkResult> {
    let mut rps = None;
    let mut requests = None;
    let mut errors = 0u64;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Ok(WrkResult {
        rps: rps.ok_or_else(|| anyhow!("no Requests/sec in wrk output:\n{text}"))?,
        requests: requests.ok_or_else(|| anyhow!("no request count in wrk output:\n{text}"))?,
        errors,
    })
}

/// What one fixed-rate run measured; latencies in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RateResult {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Failed requests (connection errors, non-2xx).
    pub errors: u64,
    /// Answered requests per second, from the first scheduled send to the last answer.
    pub achieved_rps: f64,
    /// Median latency.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest latency.
    pub max_us: f64,
}

/// Sends `GET path` with `headers` at `rate` requests/s for `secs` over `conns` connections.
pub fn fixed_rate(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    rate: f64,
    secs: f64,
    conns: usize,
) -> Result<RateResult> {
    if rate <= 0.0 || conns == 0 {
        bail!("rate and connections must be positive");
    }
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let request = request.into_bytes();
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(secs);
    let results: Vec<Result<Conn>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..conns)
            .map(|i| {
                let request = &request;
                s.spawn(move || run_conn(addr, request, rate, conns, i, start, end))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("load thread panicked"))?)
            .collect()
    });
    let mut samples = Vec::new();
    let mut errors = 0;
    let mut last_done = start;
    for r in results {
        let c = r?;
        samples.extend(c.samples_ns);
        errors += c.errors;
        last_done = last_done.max(c.last_done);
    }
    // Over the time it really took: a server that falls behind answers past the schedule's end.
    let took = (last_done - start).as_secs_f64().max(secs);
    samples.sort_unstable();
    let us = |q: f64| percentile(&samples, q) as f64 / 1_000.0;
    Ok(RateResult {
        ok: samples.len() as u64,
        errors,
        achieved_rps: samples.len() as f64 / took,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        max_us: us(1.0),
    })
}

struct Conn {
    samples_ns: Vec<u64>,
    errors: u64,
    /// When the connection's last answer arrived.
    last_done: Instant,
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let c = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(c)
}

fn run_conn(
    addr: SocketAddr,
    request: &[u8],
    rate: f64,
    conns: usize,
    index: usize,
    start: Instant,
    end: Instant,
) -> Result<Conn> {
    let mut conn = connect(addr)?;
    let mut reader = ResponseReader::default();
    let mut out = Conn {
        samples_ns: Vec::new(),
        errors: 0,
        last_done: start,
    };
    let mut free_at = start;
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64((k as f64 * conns as f64 + index as f64) / rate);
        if due >= end {
            break;
        }
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        }
        let sent = Instant::now();
        // Busy at the due time: the server made this request late, so it counts from `due`.
        let from = if free_at > due { due } else { sent };
        let answer = conn
            .write_all(request)
            .map_err(anyhow::Error::from)
            .and_then(|()| reader.read(&mut conn));
        let done = Instant::now();
        free_at = done;
        out.last_done = done;
        match answer {
            Ok((status, _)) if (200..300).contains(&status) => {
                out.samples_ns
                    .push(u64::try_from((done - from).as_nanos()).unwrap_or(u64::MAX));
            }
            Ok(_) => out.errors += 1,
            Err(_) => {
                out.errors += 1;
                conn = connect(addr)?;
                reader = ResponseReader::default();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_report() {
        let text = "Running 2s test @ http://127.0.0.1:1/imp\n  1 threads and 16 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   200.00us  50.00us   2.00ms   90.00%\n  \
            163456 requests in 2.00s, 20.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  \
            Non-2xx or 3xx responses: 4\nRequests/sec:  81728.00\nTransfer/sec:     10.00MB\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.requests, 163_456);
        assert_eq!(r.errors, 7);
        assert!((r.rps - 81_728.0).abs() < 1e-9);
        assert!(parse_wrk("nothing").is_err());
    }

    #[test]
    fn fixed_rate_against_a_local_server_counts_every_request() {
        // A tiny keep-alive server answering 200 to every request, and one 500 every 10th.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut n = 0u32;
            let mut chunk = [0u8; 4096];
            loop {
                use std::io::Read;
                let Ok(got) = c.read(&mut chunk) else { break };
                if got == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..got]);
                while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    buf.drain(..i + 4);
                    n += 1;
                    let status = if n.is_multiple_of(10) {
                        "500 No"
                    } else {
                        "200 OK"
                    };
                    let _ = write!(c, "HTTP/1.1 {status}\r\ncontent-length: 2\r\n\r\nok");
                }
            }
            n
        });
        let r = fixed_rate(addr, "/imp", &[("x-a", "b")], 200.0, 0.25, 1).unwrap();
        let served = server.join().unwrap();
        // 0.25 s at 200/s is 50 requests on one connection.
        assert_eq!(u64::from(served), 50);
        assert_eq!(r.ok + r.errors, 50);
        assert_eq!(r.errors, 5);
        assert!(r.p50_us > 0.0 && r.p50_us <= r.p99_us && r.p99_us <= r.max_us);
    }
}
