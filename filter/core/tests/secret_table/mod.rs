//! The secret canary table, one definition for the three places that run it: natively
//! (`filter/core/tests/secrets_in_errors.rs`), in the wasm host on the release `.wasm`
//! (`host-tests/wasm-host/tests/secrets_in_logs.rs`) and through the real Envoy
//! (`host-tests/stack/tests/secrets_in_envoy_log.rs`); the last two include this file with
//! `#[path]`.
//!
//! A canary goes into every secret position (every scalar under `auth`, and `client_ip.salt`)
//! in every wrong JSON shape; [`leaked`] says whether a text gives any of it away.

#![allow(dead_code)]

use serde_json::{json, Value};

/// The string canary: looks like a real credential, so a redaction keyed on a pattern fails.
pub const CANARY: &str = "Bearer CANARY-5ecret";
/// An integer canary (serde quotes numbers too: ``invalid type: integer `…` ``).
pub const NUMBER: u64 = 9_876_543_210_123;
/// A float canary, with digits that appear nowhere else in a log (ports, pids, timestamps).
pub const FLOAT: f64 = -7_123.456_789;

/// The texts that must appear nowhere: the canary's distinctive part and the numbers as any
/// formatter prints them.
pub fn forbidden() -> Vec<String> {
    vec![
        "CANARY-5ecret".to_string(),
        NUMBER.to_string(),
        "7123.456789".to_string(),
        "7.123456789".to_string(),
    ]
}

/// The first forbidden text found in `text`, if any.
pub fn leaked(text: &str) -> Option<String> {
    forbidden().into_iter().find(|f| text.contains(f.as_str()))
}

/// The wrong shapes a secret position can take.
pub fn shapes() -> Vec<(&'static str, Value)> {
    vec![
        ("string", json!(CANARY)),
        ("integer", json!(NUMBER)),
        ("float", json!(FLOAT)),
        ("bool", json!(true)),
        ("array", json!([CANARY, NUMBER])),
        ("object", json!({"CANARY-key": CANARY})),
        ("nested", json!({"x": {"y": [CANARY, FLOAT]}})),
    ]
}

/// Puts a value into a configuration's secret position.
pub type Put = fn(Value) -> Value;

/// Each secret position, as a function giving the top-level fields that put `v` there.
pub fn positions() -> Vec<(&'static str, Put)> {
    vec![
        ("auth", |v| json!({"auth": v})),
        ("auth.bearer", |v| json!({"auth": {"bearer": v}})),
        (
            "auth.basic.username",
            |v| json!({"auth": {"basic": {"username": v, "password": "p"}}}),
        ),
        (
            "auth.basic.password",
            |v| json!({"auth": {"basic": {"username": "u", "password": v}}}),
        ),
        ("auth.basic", |v| json!({"auth": {"basic": v}})),
        (
            "auth.header.value",
            |v| json!({"auth": {"header": {"name": "x-k", "value": v}}}),
        ),
        ("auth.header", |v| json!({"auth": {"header": v}})),
        (
            "client_ip.salt",
            |v| json!({"client_ip": {"mode": "hash", "salt": v}}),
        ),
    ]
}

/// A valid configuration with one rule, the base every case overrides.
pub fn base() -> Value {
    json!({
        "cluster": "kafka_rest",
        "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}}]
    })
}

/// One case: where, which shape, and the whole configuration.
pub struct Case {
    /// Secret position (`auth.basic.password`).
    pub position: &'static str,
    /// Shape name (`integer`).
    pub shape: &'static str,
    /// The configuration document.
    pub config: Value,
}

impl Case {
    /// `position as shape`.
    pub fn name(&self) -> String {
        format!("{} as {}", self.position, self.shape)
    }
}

/// Every position × shape (56 cases). Some are valid (a string where a string belongs); the
/// callers keep the ones the configuration parser refuses.
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (position, put) in positions() {
        for (shape, v) in shapes() {
            let mut config = base();
            if let (Some(obj), Value::Object(fields)) = (config.as_object_mut(), put(v)) {
                obj.extend(fields);
            }
            out.push(Case {
                position,
                shape,
                config,
            });
        }
    }
    out
}
