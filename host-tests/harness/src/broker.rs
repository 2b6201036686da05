//! Test helpers for anything that needs a real Kafka-protocol broker: start tansu on a free
//! 127.0.0.1 port with memory storage, create topics, and read topics back with a consumer that
//! **assigns** partitions directly (consumer groups are slow to join on tansu).
//!
//! ```no_run
//! use adtap_harness::broker::Tansu;
//! let broker = Tansu::start().unwrap();           // killed when dropped
//! broker.create_topic("events", 3).unwrap();
//! // … produce through the proxy at broker.bootstrap() …
//! let records = broker.read_all("events").unwrap(); // everything up to the high watermarks
//! ```
//!
//! The tansu binary is [`crate::paths::tansu`]. The broker is a [`crate::process::Child`]: it
//! dies with the test process even when that is killed.
//! Everything here is blocking (no runtime needed); call it from `spawn_blocking` inside async
//! tests if the runtime has a single thread.

use crate::paths;
use crate::process::Child;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

/// Wait until something accepts TCP connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A tansu broker child process (memory storage). Killed on drop.
pub struct Tansu {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
}

impl Tansu {
    /// Start tansu from [`paths::tansu`] on a free port and wait until it accepts connections.
    pub fn start() -> Result<Tansu, String> {
        Self::start_on(paths::tansu(), paths::free_port())
    }

    /// Start the given tansu binary on the given port.
    pub fn start_on(bin: PathBuf, port: u16) -> Result<Tansu, String> {
        if !bin.exists() {
            return Err(format!("tansu binary not found at {}", bin.display()));
        }
        let log = std::env::temp_dir().join(format!("adtap-tansu-{port}.log"));
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(&bin);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"]);
        let _ = std::fs::remove_file(&log);
        let child = Child::spawn("tansu", cmd, &log).map_err(|e| format!("{e:#}"))?;
        let mut t = Tansu {
            child: Some(child),
            port,
            bin,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = t.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("tansu exited with {status}: {}", t.log_tail()));
            }
            if wait_for_port(port, Duration::from_millis(100)) {
                return Ok(t);
            }
        }
        Err(format!(
            "tansu did not listen on {port} within 30 s: {}",
            t.log_tail()
        ))
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The last 2 KB of the broker's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let s = self.child.as_ref().map(Child::log).unwrap_or_default();
        let start = s.len().saturating_sub(2048);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s.get(start..).unwrap_or_default().to_string()
    }

    /// Create a topic with `tansu topic create` and wait until the broker's metadata lists it.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<(), String> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut last = String::new();
        for _ in 0..20 {
            let out = Command::new(&self.bin)
                .args(["topic", "create", name, "--broker", &url])
                .args(["--partitions", &partitions.to_string()])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| e.to_string())?;
            if out.status.success() {
                return self.wait_for_topic(name, partitions, Duration::from_secs(15));
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!("tansu topic create {name} failed: {last}"))
    }

    /// Wait until the metadata shows `topic` with `partitions` partitions.
    pub fn wait_for_topic(
        &self,
        topic: &str,
        partitions: u32,
        timeout: Duration,
    ) -> Result<(), String> {
        let consumer = consumer(&self.bootstrap())?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(md) = consumer.fetch_metadata(None, Timeout::After(Duration::from_secs(2))) {
                if md
                    .topics()
                    .iter()
                    .any(|t| t.name() == topic && t.partitions().len() == partitions as usize)
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "topic {topic} not in the broker's metadata after {timeout:?}"
        ))
    }

    /// Every record of `topic`, see [`read_all`].
    pub fn read_all(&self, topic: &str) -> Result<Vec<Consumed>, String> {
        read_all(&self.bootstrap(), topic, Duration::from_secs(30))
    }

    /// Kill the broker now (memory storage: its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill();
            let _ = std::fs::remove_file(c.log_path());
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key (`None` = null key).
    pub key: Option<Vec<u8>>,
    /// Value (`None` = null value).
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Record timestamp in ms.
    pub timestamp_ms: Option<i64>,
}

fn consumer(bootstrap: &str) -> Result<BaseConsumer, String> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "adtap-testkit")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", "50")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| format!("consumer: {e}"))
}

/// Read every record of `topic` that exists now, sorted by (partition, offset). Fails if that
/// does not complete within `timeout`.
///
/// Partitions are assigned from the beginning and read until librdkafka reports the partition's
/// end (EOF) at or past the high watermark taken at the start. The EOF matters: tansu 0.6 reports
/// the high watermark as "base offset of the last batch + 1", short of the real end whenever the
/// last batch holds several records, so the watermark alone would stop early.
pub fn read_all(bootstrap: &str, topic: &str, timeout: Duration) -> Result<Vec<Consumed>, String> {
    let c = consumer(bootstrap)?;
    let md = c
        .fetch_metadata(None, Timeout::After(Duration::from_secs(5)))
        .map_err(|e| format!("metadata: {e}"))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic} does not exist"))?
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut tpl = TopicPartitionList::new();
    // Unfinished partitions: (partition, high watermark, highest offset read + 1).
    let mut todo: Vec<(i32, i64, i64)> = Vec::new();
    for p in &partitions {
        let (low, high) = c
            .fetch_watermarks(topic, *p, Timeout::After(Duration::from_secs(5)))
            .map_err(|e| format!("watermarks of {topic}/{p}: {e}"))?;
        if high > low {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
            todo.push((*p, high, 0));
        }
    }
    let mut out = Vec::new();
    if todo.is_empty() {
        return Ok(out);
    }
    c.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    let deadline = Instant::now() + timeout;
    while !todo.is_empty() {
        if Instant::now() >= deadline {
            return Err(format!(
                "read_all({topic}): timed out with partitions {todo:?} unfinished after {} records",
                out.len()
            ));
        }
        let m = match c.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                todo.retain(|(q, high, next)| !(*q == p && next >= high));
                continue;
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            Some(Ok(m)) => m,
        };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let rec = Consumed {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: m.timestamp().to_millis(),
        };
        if let Some(t) = todo.iter_mut().find(|t| t.0 == rec.partition) {
            t.2 = t.2.max(rec.offset + 1);
        }
        out.push(rec);
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    Ok(out)
}

/// The partition the Java client's default partitioner (and librdkafka's `murmur2_random`, which
/// the proxy uses) picks for a non-null `key`: `(murmur2(key) & 0x7fffffff) % partitions`.
pub fn java_partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) as i32 % partitions.max(1)
}

/// Kafka's murmur2 (seed 0x9747b28c), as in `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = match c {
            [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
            _ => 0,
        };
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // The 1-3 trailing bytes, as Kafka's switch on `length % 4` falls through.
    let tail = match *chunks.remainder() {
        [a, b, c] => Some(u32::from(c) << 16 | u32::from(b) << 8 | u32::from(a)),
        [a, b] => Some(u32::from(b) << 8 | u32::from(a)),
        [a] => Some(u32::from(a)),
        _ => None,
    };
    if let Some(t) = tail {
        h ^= t;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // Values from Kafka's UtilsTest.testMurmur2 (signed ints there).
        let cases: [(&[u8], i32); 4] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input) as i32,
                expected,
                "{:?}",
                std::str::from_utf8(input)
            );
        }
    }
}
