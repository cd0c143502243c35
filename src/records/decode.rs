//! Reading records back: Confluent wire format (magic byte 0, 4-byte schema id, Avro binary)
//! to JSON, for `tail` and for anyone checking what a topic holds. Pure: the caller fetches
//! the writer schema by id.

/// The schema id of a Confluent-framed message, or `None` when `bytes` is not one.
pub fn schema_id(bytes: &[u8]) -> Option<u32> {
    match bytes {
        [0, a, b, c, d, _rest @ ..] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Why a message could not be decoded with its schema.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The message does not start with the Confluent magic byte and a schema id.
    #[error("not in the Confluent wire format (magic byte 0, schema id, Avro)")]
    NotFramed,
    /// The writer schema is not valid Avro.
    #[error("schema {id} is not valid Avro: {message}")]
    Schema {
        /// The schema id.
        id: u32,
        /// The parser's message.
        message: String,
    },
    /// The body does not decode with the writer schema.
    #[error("does not decode with schema {id}: {message}")]
    Body {
        /// The schema id.
        id: u32,
        /// The decoder's message.
        message: String,
    },
}

/// Decodes a Confluent-framed Avro message with its writer schema (`schema`, the JSON text
/// the registry holds for its id) into JSON: records as objects, unions as their branch's
/// value, `timestamp-millis` as milliseconds since the epoch.
pub fn to_json(bytes: &[u8], schema: &str) -> Result<serde_json::Value, DecodeError> {
    let id = schema_id(bytes).ok_or(DecodeError::NotFramed)?;
    let schema = apache_avro::Schema::parse_str(schema).map_err(|e| DecodeError::Schema {
        id,
        message: e.to_string(),
    })?;
    let mut body = &bytes[5..];
    let value =
        apache_avro::from_avro_datum(&schema, &mut body, None).map_err(|e| DecodeError::Body {
            id,
            message: e.to_string(),
        })?;
    serde_json::Value::try_from(value).map_err(|e| DecodeError::Body {
        id,
        message: e.to_string(),
    })
}

/// A message that is not Avro (the checkpoint topic's JSON, a dead letter's key): JSON when
/// it parses as JSON, else its text (lossy).
pub fn plain_json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::avro;

    #[test]
    fn a_framed_record_decodes_to_json() {
        let schema = r#"{"type":"record","name":"K","fields":[
            {"name":"id","type":"string"},
            {"name":"agent","type":["null","string"],"default":null},
            {"name":"n","type":"long"}]}"#;
        let mut buf = Vec::new();
        avro::header(&mut buf, 42);
        avro::string(&mut buf, "cs1");
        avro::opt_string(&mut buf, Some("a7"));
        avro::long(&mut buf, -3);
        assert_eq!(schema_id(&buf), Some(42));
        let json = to_json(&buf, schema).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "cs1", "agent": "a7", "n": -3})
        );
    }

    #[test]
    fn what_is_not_framed_or_does_not_decode_says_so() {
        assert_eq!(schema_id(b"run/contacts"), None);
        assert!(matches!(
            to_json(b"x", "\"long\""),
            Err(DecodeError::NotFramed)
        ));
        let err = to_json(&[0, 0, 0, 0, 1], r#""string""#).unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
        assert_eq!(plain_json(b"{\"a\":1}"), serde_json::json!({"a": 1}));
        assert_eq!(
            plain_json(b"work_sessions"),
            serde_json::json!("work_sessions")
        );
    }
}
