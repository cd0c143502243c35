//! A small hand-written Avro binary encoder for our fixed schemas, plus the Confluent wire
//! header. Going through `apache_avro::types::Value` would rebuild a resolved schema and
//! allocate a value tree per row; writing the bytes directly keeps a row well under a
//! microsecond. Tests decode our bytes with apache-avro's generic reader against the `.avsc`
//! files, so encoder and schema cannot drift apart.

/// Magic byte that starts every Confluent wire-format message.
pub const MAGIC: u8 = 0;

/// Appends the 5-byte Confluent header: magic 0, then the schema id as big-endian u32.
#[inline]
pub fn header(buf: &mut Vec<u8>, schema_id: u32) {
    buf.push(MAGIC);
    buf.extend_from_slice(&schema_id.to_be_bytes());
}

/// Appends an Avro `long` (zigzag varint). `int` uses the same encoding.
#[inline]
pub fn long(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Appends an Avro `string` (length as long, then UTF-8 bytes).
#[inline]
pub fn string(buf: &mut Vec<u8>, s: &str) {
    long(buf, s.len() as i64);
    buf.extend_from_slice(s.as_bytes());
}

/// Appends an Avro `double` (8 bytes, little-endian IEEE 754).
#[inline]
pub fn double(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends an Avro `boolean`.
#[inline]
pub fn boolean(buf: &mut Vec<u8>, v: bool) {
    buf.push(u8::from(v));
}

/// Appends the branch of a `["null", T]` union: null (index 0).
#[inline]
pub fn null(buf: &mut Vec<u8>) {
    buf.push(0);
}

/// Appends the branch index of a `["null", T]` union's value branch (index 1); the value follows.
#[inline]
pub fn some(buf: &mut Vec<u8>) {
    buf.push(2); // zigzag(1)
}

/// Appends a `["null", "string"]` union.
#[inline]
pub fn opt_string(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            some(buf);
            string(buf, s);
        }
        None => null(buf),
    }
}

/// Appends a `map<string>` as one block (or the empty map).
pub fn string_map<'a>(
    buf: &mut Vec<u8>,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) {
    let n = entries.len();
    if n > 0 {
        long(buf, n as i64);
        for (k, v) in entries {
            string(buf, k);
            string(buf, v);
        }
    }
    buf.push(0);
}

/// Appends an Avro `string` whose text `write` appends: the length is put in front once the
/// text is written, so a JSON text is built in place, without a second buffer.
pub fn string_with(buf: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    write(buf);
    let len = buf.len() - start;
    let mut z = (len as u64) << 1; // zigzag of a non-negative length
    let mut head = [0u8; 10];
    let mut n = 0;
    while z >= 0x80 {
        head[n] = (z as u8) | 0x80;
        z >>= 7;
        n += 1;
    }
    head[n] = z as u8;
    buf.splice(start..start, head[..=n].iter().copied());
}

/// Appends `s` as a JSON string literal, with serde_json's escaping.
#[inline]
pub fn json_str(buf: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *buf, s).expect("writing to a Vec cannot fail");
}

/// Writes a JSON object of string values, entry by entry (keys in the order given).
#[derive(Debug)]
pub struct JsonObject<'a> {
    buf: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    /// Opens the object (`{`).
    pub fn open(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        JsonObject { buf, empty: true }
    }

    /// Appends `"key":"value"`.
    #[inline]
    pub fn entry(&mut self, key: &str, value: &str) {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        json_str(self.buf, key);
        self.buf.push(b':');
        json_str(self.buf, value);
    }

    /// Closes the object (`}`).
    pub fn close(self) {
        self.buf.push(b'}');
    }
}

/// Appends an Avro `string` holding `entries` as one JSON object text (`{"k":"v",...}`): the
/// `extra_json` twin of a `map<string>`.
pub fn json_object_string<'a>(
    buf: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'a str, &'a str)>,
) {
    string_with(buf, |buf| {
        let mut o = JsonObject::open(buf);
        for (k, v) in entries {
            o.entry(k, v);
        }
        o.close();
    });
}

/// Appends an Avro `string` holding `items` as one JSON array text of strings
/// (`["a","b"]`): the `_json` twin of an `array<string>`.
pub fn json_array_string<'a>(buf: &mut Vec<u8>, items: impl Iterator<Item = &'a str>) {
    string_with(buf, |buf| {
        buf.push(b'[');
        for (i, s) in items.enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            json_str(buf, s);
        }
        buf.push(b']');
    });
}

/// Appends an `array<string>` as one block (or the empty array).
pub fn string_array<'a>(buf: &mut Vec<u8>, items: impl ExactSizeIterator<Item = &'a str>) {
    let n = items.len();
    if n > 0 {
        long(buf, n as i64);
        for s in items {
            string(buf, s);
        }
    }
    buf.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;
    use apache_avro::{from_avro_datum, Schema};

    fn decode(schema: &str, bytes: &[u8]) -> Value {
        let schema = Schema::parse_str(schema).unwrap();
        let mut r = bytes;
        let v = from_avro_datum(&schema, &mut r, None).unwrap();
        assert!(r.is_empty(), "trailing bytes");
        v
    }

    #[test]
    fn longs_round_trip_through_apache_avro() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            127,
            128,
            -129,
            1 << 40,
            i64::MAX,
            i64::MIN,
        ] {
            let mut b = Vec::new();
            long(&mut b, v);
            assert_eq!(decode(r#""long""#, &b), Value::Long(v), "{v}");
        }
    }

    #[test]
    fn primitives_and_containers_round_trip() {
        let mut b = Vec::new();
        string(&mut b, "héllo");
        assert_eq!(decode(r#""string""#, &b), Value::String("héllo".into()));

        let mut b = Vec::new();
        double(&mut b, -2.5);
        assert_eq!(decode(r#""double""#, &b), Value::Double(-2.5));

        let mut b = Vec::new();
        boolean(&mut b, true);
        assert_eq!(decode(r#""boolean""#, &b), Value::Boolean(true));

        let u = r#"["null","string"]"#;
        let mut b = Vec::new();
        opt_string(&mut b, Some("x"));
        assert_eq!(
            decode(u, &b),
            Value::Union(1, Box::new(Value::String("x".into())))
        );
        let mut b = Vec::new();
        opt_string(&mut b, None);
        assert_eq!(decode(u, &b), Value::Union(0, Box::new(Value::Null)));

        let m = r#"{"type":"map","values":"string"}"#;
        let mut b = Vec::new();
        string_map(&mut b, [("a", "1"), ("b", "")].into_iter());
        let Value::Map(got) = decode(m, &b) else {
            panic!("not a map")
        };
        assert_eq!(got.len(), 2);
        assert_eq!(got["a"], Value::String("1".into()));
        let mut b = Vec::new();
        string_map(&mut b, std::iter::empty());
        assert_eq!(decode(m, &b), Value::Map(Default::default()));

        let a = r#"{"type":"array","items":"string"}"#;
        let mut b = Vec::new();
        string_array(&mut b, ["x", "y"].into_iter());
        assert_eq!(
            decode(a, &b),
            Value::Array(vec![Value::String("x".into()), Value::String("y".into())])
        );
    }

    #[test]
    fn json_twins_are_avro_strings_holding_what_serde_json_reads_back() {
        let tricky = "say \"hi\" \\ C:\\dir\n\u{1}é";
        let mut b = Vec::new();
        json_object_string(&mut b, [("a", "1"), ("q\"k", tricky), ("", "")].into_iter());
        let Value::String(text) = decode(r#""string""#, &b) else {
            panic!("not a string")
        };
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"a": "1", "q\"k": tricky, "": ""})
        );
        let mut b = Vec::new();
        json_object_string(&mut b, std::iter::empty());
        assert_eq!(decode(r#""string""#, &b), Value::String("{}".into()));
        let mut b = Vec::new();
        json_array_string(&mut b, ["x", tricky].into_iter());
        let Value::String(text) = decode(r#""string""#, &b) else {
            panic!("not a string")
        };
        assert_eq!(
            serde_json::from_str::<Vec<String>>(&text).unwrap(),
            ["x", tricky]
        );
        let mut b = Vec::new();
        json_array_string(&mut b, std::iter::empty());
        assert_eq!(decode(r#""string""#, &b), Value::String("[]".into()));
        // a text long enough for a multi-byte length
        let long = "x".repeat(70_000);
        let mut b = vec![7];
        json_array_string(&mut b, [long.as_str()].into_iter());
        assert_eq!(b[0], 7, "what was before stays");
        let Value::String(text) = decode(r#""string""#, &b[1..]) else {
            panic!("not a string")
        };
        assert_eq!(text.len(), 70_004);
    }

    #[test]
    fn confluent_header_is_magic_and_big_endian_id() {
        let mut b = Vec::new();
        header(&mut b, 0x0102_0304);
        assert_eq!(b, [0, 1, 2, 3, 4]);
    }
}
