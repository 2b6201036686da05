//! Realistic ad traffic and what adtap should make of it.
//!
//! [`generate`] builds a deterministic mix (seeded) of impressions, clicks, conversions, bid
//! requests with OpenRTB-shaped JSON bodies, and a few requests no rule matches; with varied campaigns, creatives, hosts, user agents, referers, countries and
//! `X-Forwarded-For` chains. Every request carries a unique `x-request-id`, which Envoy keeps
//! (`preserve_external_request_id`) and adtap records: that is how tests and the demo match
//! events to the requests that caused them.
//!
//! [`send`] replays requests over several keep-alive connections at once; the kernel spreads
//! connections over Envoy's workers (`SO_REUSEPORT`), so both workers' buffers are exercised.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The kind of ad request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `GET /imp` (pixel).
    Impression,
    /// `GET /click` (redirect).
    Click,
    /// `GET /conv` (beacon).
    Conversion,
    /// `POST /bid` (JSON body).
    Bid,
    /// A path no rule captures.
    Unmatched,
}

impl Kind {
    /// The event type adtap gives it (none for unmatched requests).
    pub fn event_type(self) -> Option<&'static str> {
        match self {
            Kind::Impression => Some("impression"),
            Kind::Click => Some("click"),
            Kind::Conversion => Some("conversion"),
            Kind::Bid => Some("bid"),
            Kind::Unmatched => None,
        }
    }

    /// The status the sample ad server answers.
    pub fn status(self) -> u16 {
        match self {
            Kind::Impression | Kind::Bid => 200,
            Kind::Click => 302,
            Kind::Conversion => 204,
            Kind::Unmatched => 404,
        }
    }

    /// Envoy's route name for it (`adtap_stack::envoy::ROUTES`): its event type, `other` for
    /// unmatched requests.
    pub fn route(self) -> &'static str {
        self.event_type().unwrap_or("other")
    }
}

/// One request to send, with everything needed to predict its event.
#[derive(Debug, Clone, PartialEq)]
pub struct AdRequest {
    /// What it is.
    pub kind: Kind,
    /// HTTP method.
    pub method: &'static str,
    /// Path without the query string.
    pub path: String,
    /// Query parameters, in the order sent (values need no escaping).
    pub query: Vec<(String, String)>,
    /// `Host`.
    pub host: String,
    /// `x-request-id` (unique).
    pub request_id: String,
    /// `User-Agent`.
    pub user_agent: String,
    /// `Referer`.
    pub referer: Option<String>,
    /// `X-Forwarded-For` chain; the rightmost entry is the client seen by the one trusted hop.
    pub forwarded_for: Vec<String>,
    /// `X-Country`.
    pub country: Option<String>,
    /// Extra headers adtap must not capture (cookies, auth, tracking).
    pub private_headers: Vec<(String, String)>,
    /// JSON body (bids).
    pub body: Option<String>,
}

impl AdRequest {
    /// Path and query as sent.
    pub fn uri(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}?{}", self.path, q.join("&"))
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The captured query parameters the harness config should produce: allow-list
    /// `["campaign_id", {"name": "crid", "as": "creative_id"}]`, in that order.
    pub fn expected_query(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (src, dst) in [("campaign_id", "campaign_id"), ("crid", "creative_id")] {
            if let Some(v) = self.param(src) {
                out.push((dst.to_string(), v.to_string()));
            }
        }
        out
    }

    /// The record key (`query.campaign_id`), if any.
    pub fn expected_key(&self) -> Option<String> {
        self.param("campaign_id").map(str::to_string)
    }

    /// The client IP adtap should record with one trusted hop in `full` mode.
    pub fn expected_client_ip(&self) -> Option<String> {
        // `full` mode writes the address in its canonical text form (RFC 5952 for IPv6): the
        // generator's `2001:db8:0::1` arrives as `2001:db8::1`.
        self.forwarded_for.last().map(|ip| {
            ip.parse::<std::net::IpAddr>()
                .map_or_else(|_| ip.clone(), |a| a.to_string())
        })
    }

    /// The captured headers (`["x-country"]`).
    pub fn expected_headers(&self) -> Vec<(String, String)> {
        self.country
            .iter()
            .map(|c| ("x-country".to_string(), c.clone()))
            .collect()
    }
}

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Index into the request list.
    pub index: usize,
    /// Status, or the client error.
    pub status: Result<u16, String>,
    /// Time to the full response.
    pub latency: Duration,
}

/// The `p` quantile (0 to 1, nearest rank) of the outcomes' latencies; zero when there are none.
pub fn latency_percentile(outcomes: &[Outcome], p: f64) -> Duration {
    let mut l: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
    l.sort();
    let i = ((l.len().saturating_sub(1)) as f64 * p).round() as usize;
    l.get(i).copied().unwrap_or_default()
}

/// A small deterministic generator (xorshift64*), so runs are reproducible by seed.
#[derive(Debug, Clone)]
pub struct Prng(u64);

impl Prng {
    /// Seeded (0 is remapped).
    pub fn new(seed: u64) -> Prng {
        Prng(seed.max(1))
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// One of `items` (empty for an empty list).
    pub fn pick(&mut self, items: &[&'static str]) -> &'static str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).copied().unwrap_or_default()
    }
}

const USER_AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "adtap-harness/1.0 (+https://example.invalid/bot)",
];
const HOSTS: [&str; 3] = [
    "ads.example.com",
    "track.example.net",
    "ads.example.com:8443",
];
const COUNTRIES: [&str; 5] = ["DE", "US", "FR", "JP", "BR"];
const REFERERS: [&str; 3] = [
    "https://news.example.org/article/42",
    "https://blog.example.com/",
    "https://shop.example/cart",
];

/// `n` requests of a realistic mix, reproducible from `seed`. Every 20th is unmatched.
pub fn generate(n: usize, seed: u64) -> Vec<AdRequest> {
    let mut rng = Prng::new(seed ^ 0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let kind = match rng.below(100) {
                _ if i % 20 == 19 => Kind::Unmatched,
                0..50 => Kind::Impression,
                50..70 => Kind::Click,
                70..82 => Kind::Conversion,
                _ => Kind::Bid,
            };
            one(kind, i, seed, &mut rng)
        })
        .collect()
}

/// One request of `kind`; `i` and `seed` make the request id unique.
pub fn one(kind: Kind, i: usize, seed: u64, rng: &mut Prng) -> AdRequest {
    let campaign = format!("cmp-{}", rng.below(24));
    let creative = format!("cr-{}", rng.below(60));
    let (method, path, query): (&'static str, &str, Vec<(&str, String)>) = match kind {
        Kind::Impression => (
            "GET",
            "/imp",
            vec![
                ("campaign_id", campaign),
                ("crid", creative),
                (
                    "placement",
                    rng.pick(&["top", "sidebar", "feed"]).to_string(),
                ),
            ],
        ),
        Kind::Click => (
            "GET",
            "/click",
            vec![
                ("campaign_id", campaign),
                ("crid", creative),
                ("url", "https://shop.example/p/7".to_string()),
            ],
        ),
        Kind::Conversion => (
            "GET",
            "/conv",
            vec![
                ("campaign_id", campaign),
                (
                    "order_value",
                    format!("{}.{:02}", rng.below(200), rng.below(100)),
                ),
            ],
        ),
        // One bid in eight has no campaign: its record has no key.
        Kind::Bid => {
            let q = if rng.below(8) == 0 {
                vec![]
            } else {
                vec![("campaign_id", campaign)]
            };
            ("POST", "/bid", q)
        }
        Kind::Unmatched => (
            "GET",
            rng.pick(&["/health", "/favicon.ico", "/static/app.js"]),
            vec![],
        ),
    };
    let hops = 1 + rng.below(2);
    let mut forwarded_for = Vec::new();
    for h in 0..hops {
        let ip = if rng.below(6) == 0 {
            format!("2001:db8:{:x}::{:x}", rng.below(4096), rng.below(65536))
        } else {
            // Documentation ranges: the client, then a proxy in front of ours.
            let net = if h == 0 { "198.51" } else { "203.0" };
            format!("{net}.{}.{}", rng.below(256), 1 + rng.below(254))
        };
        forwarded_for.push(ip);
    }
    let body = (kind == Kind::Bid).then(|| {
        serde_json::json!({
            "id": format!("auction-{seed}-{i}"),
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}, "bidfloor": (rng.below(300) as f64) / 100.0}],
            "site": {"domain": "news.example.org", "page": "https://news.example.org/article/42"},
            "device": {"ua": "Mozilla/5.0", "geo": {"country": "DEU"}},
            "user": {"id": format!("u-{}", rng.below(1000))},
            "tmax": 120,
        })
        .to_string()
    });
    AdRequest {
        kind,
        method,
        path: path.to_string(),
        query: query.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        host: rng.pick(&HOSTS).to_string(),
        request_id: format!("req-{seed:x}-{i}"),
        user_agent: rng.pick(&USER_AGENTS).to_string(),
        referer: (rng.below(3) > 0).then(|| rng.pick(&REFERERS).to_string()),
        forwarded_for,
        country: (rng.below(5) > 0).then(|| rng.pick(&COUNTRIES).to_string()),
        private_headers: vec![
            ("cookie".to_string(), format!("uid=secret-{i}")),
            (
                "authorization".to_string(),
                "Bearer do-not-capture".to_string(),
            ),
        ],
        body,
    }
}

fn build(r: &AdRequest) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    let mut b = Request::builder()
        .method(r.method)
        // Origin-form: with an absolute URI Envoy would take :authority from it, not from Host.
        .uri(r.uri())
        .header("host", &r.host)
        .header("x-request-id", &r.request_id)
        .header("user-agent", &r.user_agent)
        .header("x-forwarded-for", r.forwarded_for.join(", "));
    if let Some(v) = &r.referer {
        b = b.header("referer", v);
    }
    if let Some(v) = &r.country {
        b = b.header("x-country", v);
    }
    for (k, v) in &r.private_headers {
        b = b.header(k, v);
    }
    let body = match &r.body {
        Some(text) => {
            b = b.header("content-type", "application/json");
            Bytes::from(text.clone())
        }
        None => Bytes::new(),
    };
    b.body(Full::new(body))
}

/// Sends every request over `connections` keep-alive HTTP/1.1 connections at once (request `i`
/// goes on connection `i % connections`); returns one outcome per request, in request order.
/// A connection that fails is re-opened for its next request.
pub async fn send(addr: SocketAddr, requests: &[AdRequest], connections: usize) -> Vec<Outcome> {
    let connections = connections.max(1);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let mine: Vec<(usize, AdRequest)> = requests
            .iter()
            .enumerate()
            .filter(|(i, _)| i % connections == c)
            .map(|(i, r)| (i, r.clone()))
            .collect();
        tasks.push(tokio::spawn(send_on_one_connection(addr, mine)));
    }
    let mut out = Vec::with_capacity(requests.len());
    for t in tasks {
        if let Ok(mut v) = t.await {
            out.append(&mut v);
        }
    }
    out.sort_by_key(|o| o.index);
    out
}

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn send_on_one_connection(addr: SocketAddr, reqs: Vec<(usize, AdRequest)>) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(reqs.len());
    let mut conn: Option<http1::SendRequest<Full<Bytes>>> = None;
    for (index, r) in reqs {
        let start = Instant::now();
        let exchange = async {
            if let Some(s) = conn.as_mut() {
                if s.ready().await.is_err() {
                    conn = None;
                }
            }
            let sender = match conn.as_mut() {
                Some(s) => s,
                None => {
                    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
                    let _ = tcp.set_nodelay(true);
                    let (sender, connection) = http1::handshake(TokioIo::new(tcp))
                        .await
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(connection);
                    conn.insert(sender)
                }
            };
            let req = build(&r).map_err(|e| e.to_string())?;
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            resp.into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<u16, String>(status)
        };
        // A wedged Envoy must fail the test, not hang it until CI's limit.
        let status = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {REQUEST_TIMEOUT:?}")));
        if status.is_err() {
            conn = None;
        }
        out.push(Outcome {
            index,
            status,
            latency: start.elapsed(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_client_ips_are_canonical() {
        let mut r = generate(1, 7).pop().unwrap();
        for (sent, want) in [
            ("2001:db8:0::7e64", "2001:db8::7e64"),
            ("2001:db8:1a::0", "2001:db8:1a::"),
            ("198.51.7.9", "198.51.7.9"),
        ] {
            r.forwarded_for = vec!["203.0.1.1".into(), sent.into()];
            assert_eq!(r.expected_client_ip().as_deref(), Some(want));
        }
    }
}
