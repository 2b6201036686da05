//! The HTTP server: accept loop, HTTP/1.1 + h2c (hyper-util's auto builder), routing, body
//! limits and graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::ApiError;
use crate::kafka::Kafka;
use crate::{log, v2, v3};

/// Shared by all connections.
struct State {
    config: Config,
    kafka: Kafka,
    addr: SocketAddr,
    requests: AtomicU64,
}

/// A running proxy. Dropping it does not stop it; call [`ServerHandle::shutdown`].
pub struct ServerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The bound address (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, let open requests finish (bounded), flush the producer, and return.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Errors that prevent the proxy from starting.
#[derive(Debug)]
pub enum StartError {
    /// The listen address could not be bound.
    Bind(std::io::Error),
    /// The producer could not be created (bad librdkafka property…).
    Kafka(rdkafka::error::KafkaError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Bind(e) => write!(f, "cannot bind: {e}"),
            StartError::Kafka(e) => write!(f, "cannot create the Kafka producer: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Bind, create the producer and start serving in the background (on the current tokio runtime).
pub async fn serve(config: Config) -> Result<ServerHandle, StartError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(StartError::Bind)?;
    let addr = listener.local_addr().map_err(StartError::Bind)?;
    let kafka = Kafka::new(&config).map_err(StartError::Kafka)?;
    let state = Arc::new(State {
        config,
        kafka,
        addr,
        requests: AtomicU64::new(0),
    });
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, state, stop_rx));
    Ok(ServerHandle { addr, stop, task })
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Batches are large bodies: h2's default 64 KiB windows would cost a round trip per window.
    builder
        .http2()
        .initial_stream_window_size(4 * 1024 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        log!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let st = Arc::clone(&state);
                let svc = service_fn(move |req| {
                    let st = Arc::clone(&st);
                    async move { Ok::<_, std::convert::Infallible>(handle(&st, req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // Client resets and malformed HTTP end the connection; nothing to report.
                    let _ = conn.await;
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    // In-flight produce requests wait for their delivery reports (≤ delivery timeout).
    let grace = state.config.delivery_timeout() + Duration::from_secs(2);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        log!("shutdown: connections still open after {grace:?}, closing them");
    }
    let st = Arc::clone(&state);
    let _ = tokio::task::spawn_blocking(move || st.kafka.flush(Duration::from_secs(5))).await;
    log!(
        "stopped: {} requests, {} records delivered, {} failed",
        state.requests.load(Ordering::Relaxed),
        state.kafka.counters.delivered.load(Ordering::Relaxed),
        state.kafka.counters.failed.load(Ordering::Relaxed)
    );
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn error_response(e: &ApiError, content_type: &'static str) -> Response<Full<Bytes>> {
    respond(e.status, content_type, e.body())
}

/// Route segments after stripping an optional `/kafka` prefix (Confluent Server's layout).
fn segments(path: &str) -> Vec<&str> {
    let path = path
        .strip_prefix("/kafka")
        .filter(|p| p.starts_with("/v3"))
        .unwrap_or(path);
    path.split('/').filter(|s| !s.is_empty()).collect()
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let segs = segments(&path);
    let v3_path = segs.first() == Some(&"v3");
    let err_ct = if v3_path {
        v3::CONTENT_TYPE
    } else {
        v2::CONTENT_TYPE
    };
    match route(state, &method, &segs, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                log!("{method} {path}: {} {}", e.status.as_u16(), e.message);
            }
            error_response(&e, err_ct)
        }
    }
}

async fn route(
    state: &State,
    method: &Method,
    segs: &[&str],
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ApiError> {
    let post = method == Method::POST;
    let get = method == Method::GET;
    match segs {
        ["topics", topic] if post => {
            let (ct, body) = read_body(state, req).await?;
            let out = v2::produce(&state.kafka, topic, ct.as_deref(), &body).await?;
            Ok(respond(StatusCode::OK, v2::CONTENT_TYPE, out))
        }
        ["topics"] if get => Ok(respond(
            StatusCode::OK,
            v2::CONTENT_TYPE,
            v2::list_topics(&state.kafka).await?,
        )),
        ["v3", "clusters"] if get => Ok(respond(
            StatusCode::OK,
            v3::CONTENT_TYPE,
            v3::list_clusters(&base_url(state, &req), &state.config.cluster_id),
        )),
        ["v3", "clusters", id] if get => {
            check_cluster(state, id)?;
            Ok(respond(
                StatusCode::OK,
                v3::CONTENT_TYPE,
                v3::get_cluster(&base_url(state, &req), id),
            ))
        }
        ["v3", "clusters", id, "topics", topic, "records"] if post => {
            check_cluster(state, id)?;
            let (ct, body) = read_body(state, req).await?;
            let out = v3::produce(&state.kafka, id, topic, ct.as_deref(), &body).await?;
            Ok(respond(StatusCode::OK, v3::CONTENT_TYPE, out))
        }
        ["health"] if get => Ok(respond(
            StatusCode::OK,
            "application/json",
            br#"{"status":"ok"}"#.to_vec(),
        )),
        ["stats"] if get => {
            let c = &state.kafka.counters;
            let body = serde_json::json!({
                "requests": state.requests.load(Ordering::Relaxed),
                "records_delivered": c.delivered.load(Ordering::Relaxed),
                "records_failed": c.failed.load(Ordering::Relaxed),
            });
            Ok(respond(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&body).unwrap_or_default(),
            ))
        }
        ["topics", _]
        | ["topics"]
        | ["v3", "clusters"]
        | ["v3", "clusters", _]
        | ["health"]
        | ["stats"]
        | ["v3", "clusters", _, "topics", _, "records"] => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found()),
    }
}

fn check_cluster(state: &State, id: &str) -> Result<(), ApiError> {
    if id == state.config.cluster_id {
        Ok(())
    } else {
        Err(v3::cluster_not_found(id))
    }
}

/// A request header's value, when it is present and text.
fn header(req: &Request<Incoming>, name: HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn base_url(state: &State, req: &Request<Incoming>) -> String {
    // h2 requests carry the authority in the URI, HTTP/1.1 ones in Host.
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| header(req, HOST).map(str::to_string))
        .unwrap_or_else(|| state.addr.to_string());
    format!("http://{host}")
}

/// The content type and the whole body, refusing bodies over the limit with 413.
async fn read_body(
    state: &State,
    req: Request<Incoming>,
) -> Result<(Option<String>, Bytes), ApiError> {
    let limit = state.config.max_body_bytes;
    let declared = header(&req, CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let ct = header(&req, CONTENT_TYPE).map(str::to_string);
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok((ct, c.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::segments;

    #[test]
    fn kafka_prefix_is_accepted_for_v3_only() {
        assert_eq!(segments("/kafka/v3/clusters"), vec!["v3", "clusters"]);
        assert_eq!(segments("/v3/clusters/"), vec!["v3", "clusters"]);
        assert_eq!(segments("/kafka/topics"), vec!["kafka", "topics"]);
        assert_eq!(segments("/topics/t"), vec!["topics", "t"]);
    }
}
