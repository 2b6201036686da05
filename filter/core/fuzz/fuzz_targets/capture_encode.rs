//! Arbitrary request heads, headers, bodies: capture, the record writer and every encoder never
//! panic, written values are serde's encoding of the event they decode to, and each dialect's
//! body holds one record per event.
#![no_main]

use adtap_core::capture::{self, BodyCapture, Completion, RequestHead};
use adtap_core::config::{Config, Dialect};
use adtap_core::encode;
use adtap_core::headers::HeaderPairs;
use adtap_core::record::{self, EventId, Scratch};
use libfuzzer_sys::fuzz_target;

fn config(selector: u8) -> Config {
    let dialect = ["confluent_v2", "confluent_v3", "redpanda"][usize::from(selector % 3)];
    let format = ["json", "msgpack"][usize::from(selector / 3 % 2)];
    let mode = ["full", "truncate", "omit"][usize::from(selector / 6 % 3)];
    let json = format!(
        r#"{{"cluster":"k","dialect":"{dialect}","cluster_id":"c","format":"{format}",
        "rules":[{{"event_type":"e","topic":"t","path":{{"prefix":"/"}},"capture_body":true}}],
        "query_params":["n",{{"name":"c","as":"campaign"}}],"headers":["x-a"],
        "client_ip":{{"mode":"{mode}","trusted_hops":1}},"body":{{"max_bytes":64}},
        "key":"query.n"}}"#
    );
    Config::parse(json.as_bytes()).expect("the fuzz config is valid")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let cfg = config(selector);
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(5, '\n');
    let (method, host, path, hdr) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let body = parts.next().unwrap_or("").as_bytes();
    let head = RequestHead { method, host, path };
    let rule = capture::match_rule(&cfg, head).unwrap_or(0);
    // Every header a capture reads gets the same slice of the input.
    let names = ["x-a", "user-agent", "referer", "x-request-id", "x-forwarded-for"];
    let pairs: Vec<(&str, &str)> = names.iter().map(|n| (*n, hdr)).collect();
    let headers = HeaderPairs::from_pairs(&pairs);
    let mut cap = BodyCapture::new(cfg.body.max_bytes);
    for chunk in body.chunks(7) {
        let want = cap.wanted().min(chunk.len());
        cap.push(&chunk[..want], chunk.len());
    }
    let done = Completion {
        status: Some(200),
        peer_address: Some(hdr.to_string()),
        ..Completion::default()
    };
    let fields = record::Fields {
        rule,
        id: EventId { vm: 1, seq: 2 },
        ts: 1,
        head,
        headers: &headers,
        done: &done,
        body: Some(&cap),
    };
    let rec = record::write(&cfg, &fields, &mut Scratch::new()).expect("writes");
    let ev = encode::decode_value(cfg.format, &rec.value).expect("decodes");
    assert_eq!(encode::encode_value(cfg.format, &ev).expect("encodes"), rec.value);
    let recs = [rec.clone(), rec];
    let req = encode::build_request(&cfg, 0, recs.iter());
    let n = match cfg.dialect {
        Dialect::ConfluentV3 => serde_json::Deserializer::from_slice(&req.body)
            .into_iter::<serde_json::Value>()
            .map(|r| r.expect("v3 body parses"))
            .count(),
        _ => serde_json::from_slice::<serde_json::Value>(&req.body).expect("v2 body parses")
            ["records"]
            .as_array()
            .map_or(0, Vec::len),
    };
    assert_eq!(n, 2);
});
