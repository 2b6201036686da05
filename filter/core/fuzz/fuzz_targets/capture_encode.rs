//! Arbitrary request heads, headers, bodies: capture and every encoder never panic, values
//! decode back to the event, and each dialect's body holds one record per event.
#![no_main]

use adtap_core::capture::{self, BodyCapture, Completion, HeaderSource, RequestHead};
use adtap_core::config::{Config, Dialect};
use adtap_core::encode;
use libfuzzer_sys::fuzz_target;

struct Headers<'a>(&'a str);
impl HeaderSource for Headers<'_> {
    fn header(&self, name: &str) -> Option<String> {
        // Every allow-listed header gets a slice of the input.
        (!name.is_empty()).then(|| self.0.to_string())
    }
}

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
    let mut ev = capture::begin(&cfg, rule, "id".into(), 1, head, &Headers(hdr));
    let mut cap = BodyCapture::new(cfg.body.max_bytes);
    for chunk in body.chunks(7) {
        let want = cap.wanted().min(chunk.len());
        cap.push(&chunk[..want], chunk.len());
    }
    cap.finish(&mut ev);
    let done = Completion {
        status: Some(200),
        peer_address: Some(hdr.to_string()),
        ..Completion::default()
    };
    capture::finish(&cfg, &mut ev, Some(hdr), done);
    let rec = encode::to_record(&cfg, rule, &ev).expect("encodes");
    assert_eq!(encode::decode_value(cfg.format, &rec.value).expect("decodes"), ev);
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
