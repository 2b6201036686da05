//! `decodeRecord`: a record value (raw bytes or base64 text) back into the event, as a JSON
//! object with the wire field names downstream consumers see.

use adtap_core::config::ValueFormat;
use adtap_core::encode;
use adtap_core::Event;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// Parses the `format` argument: `json` or `msgpack`, as in the configuration's `format`.
pub fn parse_format(format: &str) -> Result<ValueFormat, String> {
    match format {
        "json" => Ok(ValueFormat::Json),
        "msgpack" => Ok(ValueFormat::Msgpack),
        other => Err(format!(
            "unknown record format `{other}` (expected \"json\" or \"msgpack\")"
        )),
    }
}

/// Decodes base64 text (standard alphabet; whitespace and line breaks ignored, as pasted text
/// often has them).
pub fn bytes_from_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err("record is empty".to_string());
    }
    BASE64
        .decode(compact.as_bytes())
        .map_err(|e| format!("record is not valid base64: {e}"))
}

/// Decodes a record value into the event it carries.
pub fn decode(bytes: &[u8], format: ValueFormat) -> Result<Event, String> {
    if bytes.is_empty() {
        return Err("record is empty".to_string());
    }
    let name = match format {
        ValueFormat::Json => "json",
        ValueFormat::Msgpack => "msgpack",
    };
    encode::decode_value(format, bytes).map_err(|e| format!("cannot decode {name} record: {}", e.0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_base64_errors_are_clear() {
        assert_eq!(parse_format("json").unwrap(), ValueFormat::Json);
        assert_eq!(parse_format("msgpack").unwrap(), ValueFormat::Msgpack);
        assert!(parse_format("avro").unwrap_err().contains("avro"));
        assert_eq!(bytes_from_base64("aGk=\n").unwrap(), b"hi");
        assert!(bytes_from_base64("@@@").unwrap_err().contains("base64"));
        assert!(bytes_from_base64("  ").unwrap_err().contains("empty"));
        assert!(decode(b"", ValueFormat::Json)
            .unwrap_err()
            .contains("empty"));
    }
}
