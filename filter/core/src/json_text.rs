//! JSON string literals and standard base64, written straight into an output buffer: the
//! primitives the record writer ([`crate::record`]), the batch encoder ([`crate::encode`]), the
//! CloudEvents envelope ([`crate::cloudevents`]) and joined keys ([`crate::key`]) share.
//!
//! They live apart from all four so that none of them depends on another for its bytes (the
//! record writer used to own them, which tied the encoder, the envelope and the key to it in
//! module cycles).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Bytes JSON must escape: every control character, the quote and the backslash.
fn json_escapes(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Writes `s` as a JSON string literal, escaped as `serde_json` escapes: `\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`; everything else (UTF-8
/// included) as is. Runs without escapes are copied whole.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_json_str_content(out, s);
    out.push(b'"');
}

/// [`write_json_str`] of the concatenation of `parts`, without building it.
pub(crate) fn write_json_str_parts(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for part in parts {
        write_json_str_content(out, part);
    }
    out.push(b'"');
}

/// The escaped content of a JSON string literal for `s`, without the quotes.
fn write_json_str_content(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !json_escapes(b) {
            continue;
        }
        out.extend_from_slice(bytes.get(run..i).unwrap_or_default());
        run = i + 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
                out.push(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
            }
        }
    }
    out.extend_from_slice(bytes.get(run..).unwrap_or_default());
}

/// Length of the standard padded base64 of `n` bytes.
pub(crate) fn b64_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

/// Writes the standard padded base64 of `input` at the end of `out`, encoded in place.
pub(crate) fn write_base64(out: &mut Vec<u8>, input: &[u8]) {
    let start = out.len();
    out.resize(start + b64_len(input.len()), 0);
    let written = out
        .get_mut(start..)
        .map(|tail| STANDARD.encode_slice(input, tail));
    match written {
        Some(Ok(n)) => out.truncate(start + n),
        // Unreachable with the exact length above; fall back rather than emit garbage.
        _ => {
            out.truncate(start);
            out.extend_from_slice(STANDARD.encode(input).as_bytes());
        }
    }
}
