//! Test support: the one way a test or bench of this crate builds a [`Config`], a request's
//! [`RequestHead`], the [`Fields`] of an event, a pipeline test's [`Record`] that carries its
//! id, and a logged request on a [`Vm`] ([`log_request`]); and
//! [`assert_fields!`](crate::assert_fields).
//!
//! Compiled only for this crate's own unit tests, integration tests and benches (the `testkit`
//! feature, which `adtap-core`'s dev-dependency on itself turns on) and for the host-tests
//! harness, which takes its [`merge`] from here; never part of the filter.
//!
//! Every test configuration is a JSON document parsed by [`Config::parse`], the path an
//! operator's configuration takes, so defaults, normalisation (lower-case hosts, topic indices,
//! inherited keys) and the range checks apply, and a new configuration field never touches a
//! test. A test that needs a bound below what an operator may configure (a byte bound of a few
//! hundred bytes, so that small records reach it) parses a valid document and then assigns the
//! section's field, saying why. A unit test of a function over one section fed values the
//! validation refuses (the retry policy's backoff with NaN) builds that section from its
//! `Default` (`..RetryConfig::default()`), so a new field does not touch it either.

#![allow(clippy::panic)] // A test's fixture (configuration, record) that is broken is a broken test.

use crate::capture::{BodyCapture, Completion, RequestHead};
use crate::headers::HeaderPairs;
use crate::host::FakeHost;
use crate::record::{EventId, Fields};
use crate::vm::Vm;
use crate::{Config, Record};
use serde_json::Value;

/// The [`Config`] `doc` stands for, through the real parsing and validation. Panics listing
/// every problem when `doc` is refused.
pub fn config(doc: &Value) -> Config {
    match Config::parse(doc.to_string().as_bytes()) {
        Ok(c) => c,
        Err(errors) => panic!("test configuration refused: {errors:?}\n{doc:#}"),
    }
}

/// The [`Config`] of `base` with `patch` merged in ([`merge`]): a test file's base document
/// and one test's changes to it.
pub fn config_patched(mut base: Value, patch: &Value) -> Config {
    merge(&mut base, patch);
    config(&base)
}

/// The head of a request: `method`, `host` (as sent, `:authority`), `path` (query included).
pub fn head<'a>(method: &'a str, host: &'a str, path: &'a str) -> RequestHead<'a> {
    RequestHead { method, host, path }
}

/// What Envoy's access log hands `vm` at `now` for the stream (or logger root) `ctx`: a
/// request `method path` to `ads.example`, answered 200.
pub fn log_request(vm: &mut Vm, host: &mut FakeHost, ctx: u32, now: u64, method: &str, path: &str) {
    let request = [
        (":method", method),
        (":path", path),
        (":authority", "ads.example"),
    ];
    host.request = Some(HeaderPairs::from_pairs(&request));
    host.status = Some(200);
    vm.on_log(host, ctx, now);
}

/// RFC 7396 JSON merge patch, the one merge of every test configuration (this crate's and the
/// host tests', through `adtap_harness::config::merge`): objects merge deeply, `null` deletes the
/// key (so the filter's default applies), anything else (arrays included) replaces. A patch that
/// is not an object replaces `base` whole, as the RFC says; pass `{}` to change nothing.
pub fn merge(base: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *base = patch.clone();
        return;
    };
    if !base.is_object() {
        *base = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(b) = base {
        for (k, v) in p {
            if v.is_null() {
                b.remove(k);
            } else {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The largest event id (both parts `u64::MAX`): the longest id text.
pub const MAX_ID: EventId = EventId {
    vm: u64::MAX,
    seq: u64::MAX,
};

/// The [`Fields`] `record::write` takes for an event of rule 0 with `id`, at `ts`.
pub fn fields<'a>(
    id: EventId,
    ts: u64,
    head: RequestHead<'a>,
    headers: &'a HeaderPairs,
    done: &'a Completion,
    body: Option<&'a BodyCapture>,
) -> Fields<'a> {
    Fields {
        rule: 0,
        id,
        ts,
        head,
        headers,
        done,
        body,
    }
}

/// A record for `topic` of `size` bytes (at least 8) whose value starts with `id` (little
/// endian), so that a pipeline test checks batches by identity ([`record_id`]) without an
/// encoder.
pub fn record(topic: usize, id: u64, size: usize) -> Record {
    let mut value = id.to_le_bytes().to_vec();
    value.resize(size.max(8), b'x');
    Record {
        topic,
        key: None,
        value,
        headers: Vec::new(),
        ts_ms: 0,
    }
}

/// The id a [`record`] carries.
pub fn record_id(r: &Record) -> u64 {
    match r.value.first_chunk() {
        Some(id) => u64::from_le_bytes(*id),
        None => panic!("not a testkit record: {:?}", r.value),
    }
}

/// Asserts several fields of one value at once, each against its expected value:
/// `assert_fields!(p.stats(), in_flight: 3, buffered: 0)`; a trailing `; "fmt", args` adds
/// context. A failure names every field that differs with both values, then shows the whole
/// value (which must be `Debug`). Used by this crate's tests and by the host tests.
#[macro_export]
macro_rules! assert_fields {
    ($value:expr, $($field:ident: $want:expr),+ $(,)? $(; $($context:tt)+)?) => {{
        let v = &$value;
        let mut wrong: Vec<String> = Vec::new();
        $(
            let want = $want;
            if v.$field != want {
                wrong.push(format!("{} = {:?} (want {:?})", stringify!($field), v.$field, want));
            }
        )+
        let context: String = String::new() $(+ " (" + &format!($($context)+) + ")")?;
        assert!(wrong.is_empty(), "fields differ{context}: {}\nall: {v:?}", wrong.join(", "));
    }};
}

#[cfg(test)]
mod tests {
    use super::merge;
    use serde_json::json;

    #[test]
    fn merge_follows_rfc_7396() {
        let mut b = json!({"a": {"x": 1, "y": 2}, "b": 1, "c": 3, "e": [1, 2]});
        merge(
            &mut b,
            &json!({"a": {"y": 5, "z": null}, "b": [1], "c": null, "d": {"n": null, "m": 1}, "e": [3]}),
        );
        assert_eq!(
            b,
            json!({"a": {"x": 1, "y": 5}, "b": [1], "d": {"m": 1}, "e": [3]})
        );
        let before = b.clone();
        merge(&mut b, &json!({}));
        assert_eq!(b, before);
        // A scalar replaced by an object becomes that object; a non-object patch replaces all.
        let mut s = json!({"a": 1});
        merge(&mut s, &json!({"a": {"b": 2}}));
        assert_eq!(s, json!({"a": {"b": 2}}));
        merge(&mut s, &json!([1]));
        assert_eq!(s, json!([1]));
    }
}
