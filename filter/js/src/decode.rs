//! `decodeRecord`: a record value (raw bytes or base64 text) back into the event, as a JSON
//! object with the wire field names downstream consumers see. A structured CloudEvents
//! envelope (`application/cloudevents+json`, what v2 and Redpanda records carry with
//! `cloudevents` configured) is opened: its `data` (JSON) or `data_base64` (MessagePack) is the
//! event.

use adtap_core::cloudevents;
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

/// Decodes a record value into the event it carries (inside its CloudEvents envelope, if it
/// is one).
pub fn decode(bytes: &[u8], format: ValueFormat) -> Result<Event, String> {
    if bytes.is_empty() {
        return Err("record is empty".to_string());
    }
    let name = format_name(format);
    let decoded = if is_envelope(bytes) {
        decode_envelope(bytes, format)
    } else {
        encode::decode_value(format, bytes).map_err(|e| e.0)
    };
    decoded.map_err(|e| format!("cannot decode {name} record: {e}"))
}

/// Whether `bytes` are a JSON object with a `specversion` member: a CloudEvents envelope (no
/// event has that field, and a MessagePack map never starts with `{`).
fn is_envelope(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
            .is_ok_and(|m| m.contains_key("specversion"))
}

/// The event in a structured CloudEvents envelope, read by the core
/// ([`cloudevents::decode_structured`]); the envelope's `datacontenttype` must be `format`'s.
pub fn decode_envelope(bytes: &[u8], format: ValueFormat) -> Result<Event, String> {
    let envelope = cloudevents::decode_structured(bytes).map_err(|e| e.0)?;
    if envelope.format != format {
        return Err(format!(
            "the CloudEvents envelope holds a {} event (its datacontenttype), not {}",
            format_name(envelope.format),
            format_name(format)
        ));
    }
    Ok(envelope.event)
}

fn format_name(format: ValueFormat) -> &'static str {
    match format {
        ValueFormat::Json => "json",
        ValueFormat::Msgpack => "msgpack",
    }
}

#[cfg(test)]
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

    #[test]
    fn envelopes_are_opened_in_both_formats() {
        let event =
            r#"{"v":1,"id":"e-1","type":"click","ts":5,"method":"GET","host":"h","path":"/c"}"#;
        let want = encode::decode_value(ValueFormat::Json, event.as_bytes()).unwrap();
        let json = format!(
            r#"{{"specversion":"1.0","id":"e-1","datacontenttype":"application/json","data":{event}}}"#
        );
        assert_eq!(decode(json.as_bytes(), ValueFormat::Json).unwrap(), want);
        let packed = BASE64.encode(encode::encode_value(ValueFormat::Msgpack, &want).unwrap());
        let msgpack = format!(
            r#"{{"specversion":"1.0","datacontenttype":"application/msgpack","data_base64":"{packed}"}}"#
        );
        assert_eq!(
            decode(msgpack.as_bytes(), ValueFormat::Msgpack).unwrap(),
            want
        );
        let e = decode(msgpack.as_bytes(), ValueFormat::Json).unwrap_err();
        assert!(e.contains("holds a msgpack event"), "{e}");
        let e = decode(br#"{"specversion":"1.0"}"#, ValueFormat::Msgpack).unwrap_err();
        assert!(e.contains("datacontenttype"), "{e}");
        // A plain event is no envelope.
        assert_eq!(decode(event.as_bytes(), ValueFormat::Json).unwrap(), want);
    }
}
