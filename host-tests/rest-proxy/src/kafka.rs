//! The Kafka side: one shared rdkafka `FutureProducer` and a cache of the broker's topics.
//!
//! [`Kafka::produce`] enqueues every record of a request first and only then awaits all the
//! delivery reports, so a request costs about one linger + one broker round trip, not one per
//! record. Each record's outcome is what librdkafka reported for it: an offset the broker
//! acknowledged (`acks=all`), or a failure.
//!
//! Topics are checked against the broker's metadata before producing (see [`TopicCache`]): a
//! produce to a missing topic must be a 404, not an auto-created topic.
//!
//! Idempotence is off by default. tansu 0.6 does accept `InitProducerId` (checked: the proxy
//! produces fine with `--producer-property enable.idempotence=true`), but an idempotent producer
//! turns a broker that lost its state (memory storage, restart) into fatal sequence errors that
//! need a new producer; the local stack prefers a plain producer whose internal retries may,
//! rarely, duplicate a record (at-least-once, like the filter's own retries).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::config::Config;
use crate::error::ApiError;
use crate::log;

/// One record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutRecord {
    /// Explicit partition, or `None` for the partitioner (murmur2 of the key, random if none).
    pub partition: Option<i32>,
    /// Key bytes; `None` is a null key.
    pub key: Option<Vec<u8>>,
    /// Value bytes; `None` is a null value.
    pub value: Option<Vec<u8>>,
    /// Record headers in order; a `None` value is a null header value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Record timestamp (ms since the epoch); `None` lets librdkafka use "now".
    pub timestamp_ms: Option<i64>,
}

/// A record the broker acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition it was written to.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Its timestamp as reported in the delivery report, if any.
    pub timestamp_ms: Option<i64>,
}

/// A record that was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Whether sending it again may succeed (Confluent 50003 rather than 50002).
    pub retriable: bool,
    /// The Kafka error, for the response's message.
    pub message: String,
}

/// What happened to one record.
pub type Outcome = Result<Delivered, Failure>;

/// Counters, shown on `/stats` and in the shutdown log line.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records acknowledged by the broker.
    pub delivered: AtomicU64,
    /// Records reported as failed to clients.
    pub failed: AtomicU64,
}

/// The producer and the topic cache.
pub struct Kafka {
    producer: FutureProducer<ProxyContext>,
    topics: TopicCache,
    delivery_timeout: Duration,
    /// Delivery counters.
    pub counters: Counters,
}

impl Kafka {
    /// Create the producer (this does not contact the broker yet).
    pub fn new(config: &Config) -> Result<Self, KafkaError> {
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", &config.bootstrap)
            .set("client.id", "adtap-rest-proxy")
            .set("acks", "all")
            .set("enable.idempotence", "false")
            .set("linger.ms", config.linger_ms.to_string())
            .set("message.timeout.ms", config.delivery_timeout_ms.to_string())
            .set("partitioner", "murmur2_random")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("socket.nagle.disable", "true")
            .set("reconnect.backoff.max.ms", "1000")
            .set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in &config.producer_properties {
            cc.set(k, v);
        }
        let producer: FutureProducer<ProxyContext> =
            cc.create_with_context(ProxyContext::default())?;
        let producer_for_cache = producer.clone();
        let metadata_timeout = config
            .delivery_timeout()
            .clamp(Duration::from_millis(500), Duration::from_secs(5));
        Ok(Kafka {
            topics: TopicCache::new(
                Box::new(move || fetch_topics(&producer_for_cache, metadata_timeout)),
                config.metadata_ttl(),
            ),
            producer,
            delivery_timeout: config.delivery_timeout(),
            counters: Counters::default(),
        })
    }

    /// Partition count of `topic`, `Ok(None)` if the broker does not have it.
    pub async fn partitions(&self, topic: &str) -> Result<Option<i32>, ApiError> {
        self.topics.partitions(topic).await
    }

    /// All topic names, sorted.
    pub async fn topic_names(&self) -> Result<Vec<String>, ApiError> {
        self.topics.names().await
    }

    /// Produce `records` to `topic`; one outcome per record, in order. Returns only after every
    /// record has its delivery report (bounded by the delivery timeout).
    pub async fn produce(&self, topic: &str, records: &[OutRecord]) -> Vec<Outcome> {
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            pending.push(self.enqueue(topic, record).await);
        }
        let mut outcomes = Vec::with_capacity(records.len());
        for p in pending {
            let outcome = match p {
                Err(f) => Err(f),
                Ok(fut) => match fut.await {
                    Ok(Ok(d)) => Ok(Delivered {
                        partition: d.partition,
                        offset: d.offset,
                        timestamp_ms: d.timestamp.to_millis(),
                    }),
                    Ok(Err((e, _msg))) => Err(failure(&e)),
                    Err(_canceled) => Err(Failure {
                        retriable: true,
                        message: "Retriable Kafka error: the producer shut down before delivery"
                            .to_string(),
                    }),
                },
            };
            outcomes.push(outcome);
        }
        let ok = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
        self.counters.delivered.fetch_add(ok, Ordering::Relaxed);
        self.counters
            .failed
            .fetch_add(outcomes.len() as u64 - ok, Ordering::Relaxed);
        outcomes
    }

    /// Hand one record to librdkafka. A full local queue is waited out (bounded by the delivery
    /// timeout) instead of failing the record at once.
    async fn enqueue(
        &self,
        topic: &str,
        r: &OutRecord,
    ) -> Result<rdkafka::producer::DeliveryFuture, Failure> {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (name, value) in &r.headers {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(p) = r.partition {
            fr = fr.partition(p);
        }
        if let Some(k) = &r.key {
            fr = fr.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            fr = fr.payload(v.as_slice());
        }
        if let Some(ts) = r.timestamp_ms {
            fr = fr.timestamp(ts);
        }
        let deadline = Instant::now() + self.delivery_timeout;
        loop {
            match self.producer.send_result(fr) {
                Ok(fut) => return Ok(fut),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    fr = back;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => return Err(failure(&e)),
            }
        }
    }

    /// Wait (bounded) for everything enqueued to be delivered or to fail.
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(Timeout::After(timeout)) {
            log!("flush on shutdown: {e}");
        }
    }
}

/// Classify a producer error as Confluent does: retriable Kafka errors get 50003, others 50002.
pub fn failure(e: &KafkaError) -> Failure {
    let retriable = match e.rdkafka_error_code() {
        Some(code) => is_retriable(code),
        None => false,
    };
    let prefix = if retriable {
        "Retriable Kafka error: "
    } else {
        "Kafka error: "
    };
    Failure {
        retriable,
        message: format!("{prefix}{e}"),
    }
}

/// The error codes the Java client marks `RetriableException` (and librdkafka's local
/// equivalents: timeouts, transport, full queue).
fn is_retriable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageTimedOut
            | C::QueueFull
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::Resolve
            | C::OperationTimedOut
            | C::TimedOutQueue
            | C::RequestTimedOut
            | C::NetworkException
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::BrokerNotAvailable
            | C::ReplicaNotAvailable
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
            | C::CoordinatorLoadInProgress
            | C::KafkaStorageError
            | C::UnknownTopicOrPartition
            | C::InvalidMessage
            | C::OffsetNotAvailable
            | C::FencedLeaderEpoch
            | C::UnknownLeaderEpoch
            | C::ThrottlingQuotaExceeded
    )
}

fn fetch_topics(
    producer: &FutureProducer<ProxyContext>,
    timeout: Duration,
) -> Result<HashMap<String, i32>, String> {
    // All topics (not just one): a metadata request naming a missing topic could auto-create it.
    let md = producer
        .client()
        .fetch_metadata(None, Timeout::After(timeout))
        .map_err(|e| e.to_string())?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect())
}

type Fetch = Box<dyn Fn() -> Result<HashMap<String, i32>, String> + Send + Sync>;

/// The broker's topics and partition counts, refreshed after a TTL, or sooner (at most every
/// [`TopicCache::MISS_REFRESH`]) when a request names a topic not in the cache, so a topic created
/// a moment ago is found. One refresh runs at a time; requests for known topics never wait for it.
pub struct TopicCache {
    fetch: Arc<Fetch>,
    ttl: Duration,
    state: Mutex<CacheState>,
    refresh: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct CacheState {
    topics: HashMap<String, i32>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl TopicCache {
    /// Minimum spacing of refreshes caused by unknown topics.
    pub const MISS_REFRESH: Duration = Duration::from_millis(250);

    fn new(fetch: Fetch, ttl: Duration) -> Self {
        TopicCache {
            fetch: Arc::new(fetch),
            ttl,
            state: Mutex::new(CacheState::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn needs_refresh(&self, topic: Option<&str>) -> bool {
        let Ok(s) = self.state.lock() else {
            return true;
        };
        match s.last_attempt {
            None => true,
            Some(at) => {
                let age = at.elapsed();
                let missing = topic.is_some_and(|t| !s.topics.contains_key(t));
                age >= self.ttl || (missing && age >= Self::MISS_REFRESH)
            }
        }
    }

    async fn refresh_if_needed(&self, topic: Option<&str>) {
        if !self.needs_refresh(topic) {
            return;
        }
        let _guard = self.refresh.lock().await;
        // Another request may have refreshed while this one waited.
        if !self.needs_refresh(topic) {
            return;
        }
        let fetch = Arc::clone(&self.fetch);
        let result = tokio::task::spawn_blocking(move || fetch())
            .await
            .unwrap_or_else(|e| Err(format!("metadata task failed: {e}")));
        if let Ok(mut s) = self.state.lock() {
            s.last_attempt = Some(Instant::now());
            match result {
                Ok(topics) => {
                    s.topics = topics;
                    s.last_error = None;
                }
                Err(e) => {
                    if s.last_error.is_none() {
                        log!("metadata fetch failed: {e}");
                    }
                    // Keep the topics last seen: producing to them reports honest per-record
                    // failures if the broker is really gone.
                    s.last_error = Some(e);
                }
            }
        }
    }

    /// The cache, refreshed first when due (`topic`: the topic a request needs).
    async fn refreshed(&self, topic: Option<&str>) -> Result<MutexGuard<'_, CacheState>, ApiError> {
        self.refresh_if_needed(topic).await;
        self.state
            .lock()
            .map_err(|_| ApiError::broker_not_available("metadata cache poisoned"))
    }

    async fn partitions(&self, topic: &str) -> Result<Option<i32>, ApiError> {
        let s = self.refreshed(Some(topic)).await?;
        match (s.topics.get(topic), &s.last_error) {
            (Some(n), _) => Ok(Some(*n)),
            (None, Some(e)) => Err(ApiError::broker_not_available(e)),
            (None, None) => Ok(None),
        }
    }

    async fn names(&self) -> Result<Vec<String>, ApiError> {
        let s = self.refreshed(None).await?;
        if let Some(e) = &s.last_error {
            return Err(ApiError::broker_not_available(e));
        }
        let mut names: Vec<String> = s.topics.keys().cloned().collect();
        names.sort();
        Ok(names)
    }
}

/// librdkafka callbacks: errors go to stderr, at most one line per 5 s, so a broker outage is
/// visible without flooding the log.
#[derive(Default)]
pub struct ProxyContext {
    last_error_log: Mutex<Option<Instant>>,
}

impl ClientContext for ProxyContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
        ) {
            log!("librdkafka {fac}: {log_message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let Ok(mut last) = self.last_error_log.lock() else {
            return;
        };
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            *last = Some(Instant::now());
            log!("kafka: {error}: {reason}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_retriable_and_size_errors_are_not() {
        let t = failure(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut,
        ));
        assert!(t.retriable);
        assert!(t.message.starts_with("Retriable Kafka error: "));
        let big = failure(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge,
        ));
        assert!(!big.retriable);
        assert!(big.message.starts_with("Kafka error: "));
    }

    fn cache_with(
        result: Result<Vec<(&'static str, i32)>, &'static str>,
        calls: Arc<AtomicU64>,
    ) -> TopicCache {
        TopicCache::new(
            Box::new(move || {
                calls.fetch_add(1, Ordering::SeqCst);
                result
                    .clone()
                    .map(|v| v.into_iter().map(|(k, n)| (k.to_string(), n)).collect())
                    .map_err(|e| e.to_string())
            }),
            Duration::from_secs(3600),
        )
    }

    #[tokio::test]
    async fn known_topics_are_served_from_the_cache() {
        let calls = Arc::new(AtomicU64::new(0));
        let cache = cache_with(Ok(vec![("a", 3)]), calls.clone());
        assert_eq!(cache.partitions("a").await.unwrap(), Some(3));
        assert_eq!(cache.partitions("a").await.unwrap(), Some(3));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // An unknown topic right after a refresh does not refetch (spacing), and is a miss.
        assert_eq!(cache.partitions("b").await.unwrap(), None);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.names().await.unwrap(), vec!["a".to_string()]);
    }

    #[tokio::test]
    async fn a_failed_fetch_without_the_topic_is_503() {
        let calls = Arc::new(AtomicU64::new(0));
        let cache = cache_with(Err("all brokers down"), calls);
        let e = cache.partitions("a").await.unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.error_code, crate::error::BROKER_NOT_AVAILABLE);
    }
}
