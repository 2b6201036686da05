//! The secret canary table (`filter/core/tests/secret_table`, one definition for the native,
//! wasm-host and real-Envoy runs) through the real Envoy 1.40, at Envoy's default `info` level,
//! with adtap as the access logger on `dist/adtap.wasm`. For every configuration the core
//! refuses, Envoy must refuse it, its log must hold adtap's error line naming every bad field
//! (the core's messages word for word), and no part of the canary may appear anywhere in
//! Envoy's whole output.
//!
//! - Every position × shape, as a JSON `StringValue` and as a YAML `Struct`, through one Envoy
//!   that receives each as a listener update (LDS from a file): the update is rejected (counted
//!   in `listener_manager.lds.update_rejected`) after adtap's `on_configure` said no, in tens of
//!   milliseconds each.
//! - At startup, one case per position (rotating through the shapes, alternating the forms): a
//!   fresh Envoy per case (about 1-2 s each, two at a time) that must exit. (`--mode validate`
//!   does not run `on_configure`, so only a start shows adtap's verdict.)
//!
//! Needs Envoy (`./build.sh setup`) and the built `dist/adtap.wasm`.

#![cfg(test)]

#[path = "../../../filter/core/tests/secret_table/mod.rs"]
mod secret_table;

#[path = "../../../filter/core/tests/struct_encoder/mod.rs"]
mod struct_encoder;
mod support;

use adtap_core::{native, Config};
use adtap_harness::process::poll;
use adtap_stack::envoy::{self, Deployment, Envoy};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{as_struct_configuration, render, two_at_a_time, STRUCT};

/// One refused configuration: its name, adtap's entry for the access log, the Envoy YAML with it
/// (for a start), and the line adtap must log.
struct Refused {
    name: String,
    entry: Value,
    yaml: String,
    /// adtap's line for the listener update (a JSON file: Struct numbers stay doubles).
    expected_line: String,
    /// adtap's line at startup (a YAML bootstrap: some Struct numbers arrive as strings).
    expected_at_start: String,
}

/// The configuration whose matchers the refused configurations are rendered with.
const CATCH_ALL: &str = r#"{"cluster": "kafka_rest",
    "rules": [{"event_type": "e", "topic": "t", "path": {"prefix": "/"}}]}"#;

/// The Struct bytes Envoy hands the module for `doc` written in a YAML file: numbers that are
/// not integers within i32 arrive as strings (`struct_config.rs` checks this with a probe). A
/// JSON file (the LDS file here) keeps them as doubles.
fn yaml_struct_bytes(doc: &Value) -> Vec<u8> {
    fn envoy_view(v: &Value) -> Value {
        match v {
            Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => v.clone(),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Array(items) => Value::Array(items.iter().map(envoy_view).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), envoy_view(v))).collect())
            }
            other => other.clone(),
        }
    }
    struct_encoder::encode_struct(&envoy_view(doc)).unwrap()
}

/// adtap's `configuration` in `entry` (a `StringValue`) replaced by the Struct `doc`.
fn with_struct(mut entry: Value, doc: &Value) -> Value {
    entry["typed_config"]["config"]["configuration"] = json!({"@type": STRUCT, "value": doc});
    entry
}

/// Every refused case in both forms (the core's verdict asked for each form: Envoy's YAML
/// loader turns some numbers into strings, so a Struct's verdict is not assumed).
fn refused() -> Vec<Refused> {
    let module = envoy::wasm_path().unwrap();
    let wasm = module.display().to_string();
    let matchers = Config::parse(CATCH_ALL.as_bytes()).unwrap();
    let line = |errors: Vec<adtap_core::ConfigError>| {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!(
            "wasm log adtap adtap: invalid configuration: {}",
            list.join("; ")
        )
    };
    let mut out = Vec::new();
    for case in secret_table::cases() {
        let text = case.config.to_string();
        let entry = native::access_log_entry(&matchers, &text, &wasm);
        // No servers behind it: only loading is looked at.
        let yaml = render(&module, &text, Deployment::AccessLogger, (1, 1));
        if let Err(errors) = Config::parse(text.as_bytes()) {
            let expected = line(errors);
            out.push(Refused {
                name: format!("{} (json)", case.name()),
                entry: entry.clone(),
                yaml: yaml.clone(),
                expected_line: expected.clone(),
                expected_at_start: expected,
            });
        }
        let from_json_file = Config::parse(&struct_encoder::encode_struct(&case.config).unwrap());
        let from_yaml_file = Config::parse(&yaml_struct_bytes(&case.config));
        if let (Err(errors), Err(at_start)) = (from_json_file, from_yaml_file) {
            out.push(Refused {
                name: format!("{} (struct)", case.name()),
                entry: with_struct(entry, &case.config),
                yaml: as_struct_configuration(&yaml, &text, &case.config),
                expected_line: line(errors),
                expected_at_start: line(at_start),
            });
        }
    }
    out
}

/// A listener on a free port whose HTTP connection manager (the harness's, stat prefix `name`)
/// has `access_log` and answers 200.
fn listener(name: &str, access_log: &Value) -> Value {
    let mut hcm = envoy::direct_response_hcm(vec![], vec![access_log.clone()]);
    hcm["stat_prefix"] = json!(name);
    json!({
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm
        }]}]
    })
}

/// Replaces the LDS file atomically (Envoy watches for the file being moved into place).
fn write_lds(dir: &Path, listeners: &[Value]) {
    let tmp = dir.join("lds.json.tmp");
    std::fs::write(&tmp, json!({ "resources": listeners }).to_string()).unwrap();
    std::fs::rename(&tmp, dir.join("lds.json")).unwrap();
}

#[test]
fn no_part_of_a_secret_reaches_envoys_log_on_a_listener_update() {
    let t0 = Instant::now();
    let cases = refused();
    assert!(cases.len() >= 90, "only {} refused cases", cases.len());
    let dir = tempfile::tempdir().unwrap();
    let wasm = envoy::wasm_path().unwrap().display().to_string();
    let good_text = secret_table::base().to_string();
    let good_cfg = Config::parse(good_text.as_bytes()).unwrap();
    let good = listener(
        "ads",
        &native::access_log_entry(&good_cfg, &good_text, &wasm),
    );
    write_lds(dir.path(), std::slice::from_ref(&good));
    let bootstrap = json!({
        "node": {"id": "adtap-secrets", "cluster": "adtap-secrets"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {"lds_config": {"resource_api_version": "V3",
            "path_config_source": {"path": dir.path().join("lds.json").display().to_string()}}},
        // Port 1: nothing listens (only loading is looked at).
        "static_resources": {"clusters": [envoy::static_cluster("kafka_rest", 1)]}
    });
    let mut e = Envoy::start_in(&bootstrap.to_string(), dir.path(), 1, "info").unwrap();
    e.wait_ready(Duration::from_secs(30)).unwrap();
    let rejected = |e: &Envoy| {
        e.envoy_stats("listener_manager.lds.update_rejected")
            .ok()
            .and_then(|m| m.get("listener_manager.lds.update_rejected").copied())
    };
    let before = rejected(&e).unwrap();
    let mut failures = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let offset = e.log().len();
        let name = format!("bad-{k}");
        write_lds(dir.path(), &[good.clone(), listener(&name, &case.entry)]);
        let want = before + k as u64 + 1;
        let rejection = format!("lds: listener '{name}' config rejected");
        let seen = poll(Duration::from_secs(20), Duration::from_millis(10), || {
            let log = e.log();
            let new = log.get(offset..).unwrap_or_default().to_string();
            (rejected(&e) == Some(want) && new.contains(&rejection)).then_some(new)
        });
        let Some(new) = seen else {
            failures.push(format!("{}: the update was not rejected", case.name));
            break;
        };
        if !new.lines().any(|l| l.ends_with(&case.expected_line)) {
            failures.push(format!(
                "{}: no line ending {:?} in\n{new}",
                case.name, case.expected_line
            ));
        }
    }
    let log = e.log();
    e.kill();
    if let Some(leak) = secret_table::leaked(&log) {
        failures.push(format!("{leak:?} is in Envoy's log"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "{} refused listener updates in {:.1} s",
        cases.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn no_part_of_a_secret_reaches_envoys_log_at_startup() {
    let t0 = Instant::now();
    // One case per position, rotating through the shapes and alternating the forms (the next
    // shape when that one is valid there, such as a string for `auth.bearer`).
    let mut all = refused();
    let shapes = secret_table::shapes();
    let mut picked = Vec::new();
    for (n, (position, _)) in secret_table::positions().into_iter().enumerate() {
        let form = if n % 2 == 0 { "json" } else { "struct" };
        let found = (0..shapes.len()).find_map(|i| {
            let shape = shapes[(n + i) % shapes.len()].0;
            let name = format!("{position} as {shape} ({form})");
            all.iter().position(|c| c.name == name)
        });
        picked.push(all.swap_remove(found.unwrap_or_else(|| panic!("no case for {position}"))));
    }
    let failures: Vec<String> = two_at_a_time(picked.len(), |i, dir| {
        let case = &picked[i];
        let verdict = envoy::try_start(&case.yaml, dir, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
        let mut problems = Vec::new();
        if verdict.exit.is_none_or(|s| s.success()) {
            problems.push(format!("Envoy did not refuse it ({:?})", verdict.exit));
        }
        if let Some(leak) = secret_table::leaked(&verdict.log) {
            problems.push(format!("{leak:?} is in the log"));
        }
        if !verdict
            .log
            .lines()
            .any(|l| l.ends_with(&case.expected_at_start))
        {
            problems.push(format!("no line ending {:?}", case.expected_at_start));
        }
        (!problems.is_empty()).then(|| {
            let wasm_lines: Vec<&str> =
                verdict.log.lines().filter(|l| l.contains("wasm")).collect();
            let (problems, wasm_lines) = (problems.join("; "), wasm_lines.join("\n"));
            format!("{}: {problems}\n{wasm_lines}", case.name)
        })
    })
    .into_iter()
    .flatten()
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "{} refused configurations at startup in {:.1} s",
        secret_table::positions().len(),
        t0.elapsed().as_secs_f64()
    );
}
