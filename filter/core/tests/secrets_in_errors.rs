//! No secret reaches an error message or `Debug` output, whatever shape the bad value has: the
//! canary table (`secret_table`, shared with the wasm-host and real-Envoy runs) puts a canary in
//! every secret position (`auth`, `auth.bearer`, `auth.basic` and its `username`/`password`,
//! `auth.header` and its `value`, `client_ip.salt`) in every wrong JSON shape, and every form
//! the configuration can arrive in (a JSON text, a serialized `google.protobuf.Struct`).

#![cfg(test)]

mod secret_table;
mod struct_encoder;

use adtap_core::config::RawConfig;
use adtap_core::{testkit, Config};
use secret_table::{cases, leaked, CANARY};
use serde_json::json;

#[test]
fn no_secret_in_any_error_message() {
    let mut tried = 0;
    for case in cases() {
        let text = case.config.to_string();
        let Err(errors) = Config::parse(text.as_bytes()) else {
            continue; // a valid shape (a string where a string belongs)
        };
        tried += 1;
        let said: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let all = format!("{said:?} {errors:?}");
        assert_eq!(leaked(&all), None, "{}: {all}", case.name());
        assert!(
            errors
                .iter()
                .all(|e| !e.path.is_empty() && !e.message.is_empty()),
            "{}: {said:?}",
            case.name()
        );
    }
    assert!(tried >= 40, "only {tried} bad shapes tried");
}

/// The same table with each configuration as a serialized `google.protobuf.Struct` (Envoy's
/// YAML form): the same refusals, no secret either.
#[test]
fn no_secret_in_any_error_message_from_a_struct() {
    let mut tried = 0;
    for case in cases() {
        let json_verdict = Config::parse(case.config.to_string().as_bytes()).is_err();
        let bytes = struct_encoder::encode_struct(&case.config).unwrap();
        let verdict = Config::parse(&bytes);
        assert_eq!(verdict.is_err(), json_verdict, "{}", case.name());
        let Err(errors) = verdict else { continue };
        tried += 1;
        let all = format!("{errors:?}");
        assert_eq!(leaked(&all), None, "{}: {all}", case.name());
    }
    assert!(tried >= 40, "only {tried} bad shapes tried");
}

#[test]
fn misspelt_keys_stay_readable() {
    let cfg = json!({"cluster": "k", "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}}],
                     "batch": {"max_evnts": 10}});
    let err = Config::parse(cfg.to_string().as_bytes()).unwrap_err();
    assert!(
        err[0].message.contains("unknown field `max_evnts`"),
        "{err:?}"
    );
}

/// A credential pasted as a key under `auth` (an unknown kind to serde) is not quoted, in JSON
/// or as a Struct; the message still says what was expected.
#[test]
fn keys_under_auth_are_not_quoted() {
    for key in ["Bearer SECRET-KEY-123", "digest"] {
        let cfg = json!({"cluster": "k", "rules": [{"event_type": "i", "topic": "t", "path": {"exact": "/i"}}],
                         "auth": {key: "SECRET-VALUE"}});
        for bytes in [
            cfg.to_string().into_bytes(),
            struct_encoder::encode_struct(&cfg).unwrap(),
        ] {
            let err = Config::parse(&bytes).unwrap_err();
            let all = format!("{err:?}");
            assert!(!all.contains(key) && !all.contains("SECRET-VALUE"), "{all}");
            assert!(
                err[0]
                    .message
                    .contains("unknown variant <redacted>, expected one of"),
                "{all}"
            );
        }
    }
}

/// Every valid secret position holding the canary: `Debug` of the raw and the validated
/// configuration (what a `{:?}` in a log line would print) shows none of it.
#[test]
fn debug_output_never_shows_a_secret() {
    let auths = [
        json!({"basic": {"username": "CANARY-5ecret-user", "password": CANARY}}),
        json!({"bearer": CANARY}),
        json!({"header": {"name": "x-api-key", "value": CANARY}}),
    ];
    for auth in auths {
        let mut v = secret_table::base();
        v["auth"] = auth.clone();
        v["client_ip"] = json!({"mode": "hash", "salt": CANARY});
        let text = v.to_string();
        let raw = RawConfig::from_json(text.as_bytes()).unwrap();
        let cfg = testkit::config(&v);
        for shown in [format!("{raw:?}"), format!("{cfg:?}"), format!("{cfg:#?}")] {
            assert_eq!(leaked(&shown), None, "{auth}: {shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }
}
