//! A test-side encoder of `google.protobuf.Struct`: a JSON object as the bytes Envoy hands
//! `proxy_on_configure` for a Struct configuration (see `adtap_core::pb_struct`), written
//! independently of the decoder so each checks the other. Numbers are doubles (`number_value`),
//! as in a real Struct. Included with `#[path]` by the stack's Struct test.

#![allow(dead_code)]

use serde_json::Value;

/// The serialized `Struct` for a JSON object (`None` for any other value).
pub fn encode_struct(v: &Value) -> Option<Vec<u8>> {
    let Value::Object(map) = v else { return None };
    let mut out = Vec::new();
    for (k, v) in map {
        let mut entry = Vec::new();
        field_bytes(&mut entry, 1, k.as_bytes());
        field_bytes(&mut entry, 2, &encode_value(v));
        field_bytes(&mut out, 1, &entry);
    }
    Some(out)
}

/// The serialized `Value`.
pub fn encode_value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        Value::Null => {
            out.push(1 << 3);
            out.push(0);
        }
        Value::Number(n) => {
            out.push((2 << 3) | 1);
            out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
        }
        Value::String(s) => field_bytes(&mut out, 3, s.as_bytes()),
        Value::Bool(b) => {
            out.push(4 << 3);
            out.push(u8::from(*b));
        }
        Value::Object(_) => field_bytes(&mut out, 5, &encode_struct(v).unwrap_or_default()),
        Value::Array(items) => {
            let mut list = Vec::new();
            for item in items {
                field_bytes(&mut list, 1, &encode_value(item));
            }
            field_bytes(&mut out, 6, &list);
        }
    }
    out
}

/// A length-delimited field: tag, varint length, bytes.
fn field_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
