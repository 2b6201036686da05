//! No secret reaches an error message, whatever shape the bad value has: a canary in every
//! secret position (`auth.bearer`, `auth.basic.username`/`password`, `auth.header.value`,
//! `client_ip.salt`, `auth` itself) in every wrong JSON shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use adtap_core::Config;
use serde_json::{json, Value};

const CANARY: &str = "Bearer CANARY-5ecret";
const NUMBER: u64 = 9_876_543_210_123;

/// The wrong shapes a secret position can take.
fn shapes() -> Vec<Value> {
    vec![
        json!(CANARY),
        json!(NUMBER),
        json!(-7.25e3),
        json!(true),
        json!([CANARY, NUMBER]),
        json!({"CANARY-key": CANARY}),
        json!({"x": {"y": [CANARY]}}),
    ]
}

/// Puts a value into a configuration's secret position.
type Put = Box<dyn Fn(Value) -> Value>;

/// Each secret position, as a function putting `v` there.
fn positions() -> Vec<(&'static str, Put)> {
    vec![
        ("auth", Box::new(|v| json!({"auth": v}))),
        ("auth.bearer", Box::new(|v| json!({"auth": {"bearer": v}}))),
        (
            "auth.basic.username",
            Box::new(|v| json!({"auth": {"basic": {"username": v, "password": "p"}}})),
        ),
        (
            "auth.basic.password",
            Box::new(|v| json!({"auth": {"basic": {"username": "u", "password": v}}})),
        ),
        ("auth.basic", Box::new(|v| json!({"auth": {"basic": v}}))),
        (
            "auth.header.value",
            Box::new(|v| json!({"auth": {"header": {"name": "x-k", "value": v}}})),
        ),
        ("auth.header", Box::new(|v| json!({"auth": {"header": v}}))),
        (
            "client_ip.salt",
            Box::new(|v| json!({"client_ip": {"mode": "hash", "salt": v}})),
        ),
    ]
}

#[test]
fn no_secret_in_any_error_message() {
    let mut tried = 0;
    for (name, put) in positions() {
        for shape in shapes() {
            let mut cfg = json!({
                "cluster": "kafka_rest",
                "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}}]
            });
            for (k, v) in put(shape.clone()).as_object().unwrap() {
                cfg[k] = v.clone();
            }
            let text = cfg.to_string();
            let Err(errors) = Config::parse(text.as_bytes()) else {
                continue; // a valid shape (a string where a string belongs)
            };
            tried += 1;
            let said: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let all = format!("{said:?} {errors:?}");
            for secret in ["CANARY-5ecret", &NUMBER.to_string(), "-7250", "7250"] {
                assert!(!all.contains(secret), "{name} as {shape}: {all}");
            }
            assert!(
                errors
                    .iter()
                    .all(|e| !e.path.is_empty() && !e.message.is_empty()),
                "{name}: {said:?}"
            );
        }
    }
    assert!(tried >= 40, "only {tried} bad shapes tried");
}

#[test]
fn misspelt_keys_stay_readable() {
    let cfg = json!({"cluster": "k", "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}}],
                     "auth": {"digest": "SECRET-VALUE"}});
    let err = Config::parse(cfg.to_string().as_bytes()).unwrap_err();
    assert!(
        err[0].message.contains("unknown variant `digest`"),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains("SECRET-VALUE"));
}
