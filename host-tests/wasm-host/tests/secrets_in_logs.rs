//! The secret canary table (`filter/core/tests/secret_table`, one definition for the native,
//! wasm-host and real-Envoy runs) through the release `.wasm`: each configuration the core
//! refuses goes through `proxy_on_configure`, which must refuse it and log the core's own error
//! line (every field named), and no log line the module emits may hold any part of the canary.
//! The same for each configuration as a serialized `google.protobuf.Struct`, the bytes Envoy
//! hands the module for a YAML configuration; and a valid Struct configuration is accepted.
//! The module is the harness's one path (`ADTAP_WASM`, default `<repo>/dist/adtap.wasm`;
//! required).

#![cfg(test)]

#[path = "../../../filter/core/tests/secret_table/mod.rs"]
mod secret_table;
#[path = "../../../filter/core/tests/struct_encoder/mod.rs"]
mod struct_encoder;

mod common;

use adtap_core::Config;
use adtap_wasm_host::Host;
use common::adtap::{filter_module, opts_bytes};

/// Configures a fresh VM with `config`; returns whether it was accepted and every log line.
fn configure(config: Vec<u8>) -> (bool, Vec<String>) {
    let mut host = Host::new(filter_module(), opts_bytes(config)).unwrap();
    assert!(host.start_vm().unwrap());
    let accepted = host.configure().unwrap();
    assert!(host.trapped().is_none(), "trapped: {:?}", host.trapped());
    let logs = host.logs().iter().map(|l| l.message.clone()).collect();
    (accepted, logs)
}

#[test]
fn no_log_line_of_the_module_holds_a_secret() {
    let mut refused = 0;
    for case in secret_table::cases() {
        let json = case.config.to_string().into_bytes();
        let Err(errors) = Config::parse(&json) else {
            continue;
        };
        // The module's error line is the core's, word for word.
        let expected = format!(
            "invalid configuration: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
        let structured = struct_encoder::encode_struct(&case.config).unwrap();
        for (form, bytes) in [("json", json), ("struct", structured)] {
            let (accepted, logs) = configure(bytes);
            assert!(!accepted, "{} ({form}): accepted", case.name());
            let all = logs.join("\n");
            assert_eq!(
                secret_table::leaked(&all),
                None,
                "{} ({form}) leaked:\n{all}",
                case.name()
            );
            assert!(
                logs.iter().any(|l| l == &expected),
                "{} ({form}): no line {expected:?} in\n{all}",
                case.name()
            );
        }
        refused += 1;
    }
    assert!(refused >= 40, "only {refused} refused cases");
}

#[test]
fn a_struct_configuration_is_accepted_and_a_fraction_is_refused_by_name() {
    let mut cfg = secret_table::base();
    cfg["batch"] = serde_json::json!({"max_events": 100, "max_age_ms": 250});
    let (accepted, logs) = configure(struct_encoder::encode_struct(&cfg).unwrap());
    assert!(accepted, "{logs:?}");

    cfg["batch"]["max_events"] = serde_json::json!(2.5);
    let (accepted, logs) = configure(struct_encoder::encode_struct(&cfg).unwrap());
    assert!(!accepted);
    assert!(
        logs.iter().any(|l| l
            == "invalid configuration: batch.max_events: invalid type: floating point `2.5`, expected usize"),
        "{logs:?}"
    );
}
