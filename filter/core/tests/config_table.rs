//! Table-driven configuration tests: every case in `config_cases.json` goes through
//! [`Config::parse`], and the errors must match exactly.
//!
//! The table is shared with the JavaScript build (`validateConfig`), so it is self-contained
//! JSON. Each case is an object:
//! - `name`: unique description;
//! - `config`: the configuration document, or `config_text`: raw text when the document itself
//!   is malformed (invalid JSON, trailing characters, duplicate keys);
//! - `errors`: the expected problems, `[{"path", "contains"}]`; empty means the config is
//!   valid. The set of error paths must equal the expected set exactly, and for each expected
//!   entry an error at that path must contain `contains` in its message;
//! - `secrets` (optional): strings that must appear in no error path or message.

#![cfg(test)]

use adtap_core::config::{Config, ConfigError};
use serde_json::Value;

const CASES: &str = include_str!("config_cases.json");

/// Runs one case; returns a description of each mismatch.
fn check(case: &Value) -> Vec<String> {
    let name = case["name"].as_str().expect("case name");
    let input: Vec<u8> = match (case.get("config"), case.get("config_text")) {
        (Some(cfg), None) => serde_json::to_vec(cfg).unwrap(),
        (None, Some(Value::String(text))) => text.clone().into_bytes(),
        _ => return vec![format!("{name}: needs exactly one of config / config_text")],
    };
    let expected = case["errors"].as_array().expect("errors array");
    let actual: Vec<ConfigError> = match Config::parse(&input) {
        Ok(_) => Vec::new(),
        Err(errs) => errs,
    };

    let mut problems = Vec::new();
    let mut want_paths: Vec<&str> = expected
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    let mut got_paths: Vec<&str> = actual.iter().map(|e| e.path.as_str()).collect();
    want_paths.sort_unstable();
    want_paths.dedup();
    got_paths.sort_unstable();
    got_paths.dedup();
    if want_paths != got_paths {
        problems.push(format!(
            "{name}: paths {got_paths:?}, expected {want_paths:?}; errors: {actual:?}"
        ));
    }
    for e in expected {
        let (path, needle) = (e["path"].as_str().unwrap(), e["contains"].as_str().unwrap());
        if !actual
            .iter()
            .any(|a| a.path == path && a.message.contains(needle))
        {
            problems.push(format!(
                "{name}: no error at `{path}` containing {needle:?}; errors: {actual:?}"
            ));
        }
    }
    for secret in case
        .get("secrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let secret = secret.as_str().unwrap();
        if actual.iter().any(|a| a.to_string().contains(secret)) {
            problems.push(format!("{name}: an error reveals the secret {secret:?}"));
        }
    }
    problems
}

#[test]
fn every_config_case() {
    let cases: Vec<Value> = serde_json::from_str(CASES).expect("config_cases.json parses");
    assert!(cases.len() >= 100, "the table lost cases: {}", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "case names must be unique");

    let problems: Vec<String> = cases.iter().flat_map(check).collect();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The table must exercise both outcomes, so that a validator accepting (or rejecting)
/// everything cannot pass it.
#[test]
fn table_has_valid_and_invalid_cases() {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    let valid = cases
        .iter()
        .filter(|c| c["errors"].as_array().unwrap().is_empty())
        .count();
    assert!(valid >= 5, "valid cases: {valid}");
    assert!(cases.len() - valid >= 100);
}
