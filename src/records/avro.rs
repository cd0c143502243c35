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

/// Appends an Avro `string` whose text `write` appends, built in place without a second
/// buffer. `expected_len` is the text's likely length (a JSON text's length without escapes):
/// when right, the length written before the text is already correct; else it is rewritten
/// (moving the text only when the length's varint needs another number of bytes).
pub fn string_with(buf: &mut Vec<u8>, expected_len: usize, write: impl FnOnce(&mut Vec<u8>)) {
    let mut head = [0u8; 10];
    let n = length_varint(expected_len, &mut head);
    let start = buf.len();
    buf.extend_from_slice(&head[..n]);
    write(buf);
    let len = buf.len() - start - n;
    if len != expected_len {
        let m = length_varint(len, &mut head);
        if m == n {
            buf[start..start + n].copy_from_slice(&head[..n]);
        } else {
            buf.splice(start..start + n, head[..m].iter().copied());
        }
    }
}

/// The Avro `long` encoding of a length into `head`; returns its byte count.
#[inline]
fn length_varint(len: usize, head: &mut [u8; 10]) -> usize {
    let mut z = (len as u64) << 1; // zigzag of a non-negative number
    let mut n = 0;
    while z >= 0x80 {
        head[n] = (z as u8) | 0x80;
        z >>= 7;
        n += 1;
    }
    head[n] = z as u8;
    n + 1
}

/// Appends `s` as a JSON string literal, exactly as serde_json writes it: a string with
/// nothing to escape (no `"`, `\` or control character, the common case) is copied as it
/// is, any other goes through serde_json.
#[inline]
pub fn json_str(buf: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        buf.reserve(s.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        serde_json::to_writer(&mut *buf, s).expect("writing to a Vec cannot fail");
    }
}

/// True when `s` holds a byte JSON escapes: `"`, `\\` or a control character (below 0x20).
/// Eight bytes at a time (the "has a byte less than / equal to" word tricks).
#[inline]
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        if x.wrapping_sub(ONES * 0x20) & !x & HIGH != 0
            || zero_byte(x ^ (ONES * u64::from(b'"')))
            || zero_byte(x ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// The length of a JSON object text of `entries` (string keys and values) when nothing needs
/// escaping: `{"k":"v",...}`.
pub fn json_object_len<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> usize {
    let (n, text) = entries.fold((0, 0), |(n, t), (k, v)| (n + 1, t + k.len() + v.len()));
    2 + text + 5 * n + n.saturating_sub(1)
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

    /// Appends `key_colon` (a key already written as JSON, with its `:`), then `"value"`.
    #[inline]
    pub fn entry_after(&mut self, key_colon: &[u8], value: &str) {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        self.buf.extend_from_slice(key_colon);
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
    entries: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) {
    string_with(buf, json_object_len(entries.clone()), |buf| {
        let mut o = JsonObject::open(buf);
        for (k, v) in entries {
            o.entry(k, v);
        }
        o.close();
    });
}

/// Appends an Avro `string` holding `items` as one JSON array text of strings
/// (`["a","b"]`): the `_json` twin of an `array<string>`.
pub fn json_array_string<'a>(buf: &mut Vec<u8>, items: impl Iterator<Item = &'a str> + Clone) {
    let (n, text) = items.clone().fold((0, 0), |(n, t), s| (n + 1, t + s.len()));
    string_with(buf, 2 + text + 2 * n + n.saturating_sub(1), |buf| {
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

    proptest::proptest! {
        #[test]
        fn json_str_writes_what_serde_json_writes(s in r#"\PC*|["\\\x00-\x1f\x7fa-z]*"#) {
            let mut b = Vec::new();
            json_str(&mut b, &s);
            proptest::prop_assert_eq!(b, serde_json::to_vec(&s).unwrap());
        }

        #[test]
        fn string_with_is_an_avro_string_whatever_length_was_expected(
            len in 0usize..20_000,
            expected in proptest::prop_oneof![0usize..200, 0usize..20_000],
        ) {
            let text = "y".repeat(len);
            let mut b = vec![9];
            string_with(&mut b, expected, |buf| buf.extend_from_slice(text.as_bytes()));
            proptest::prop_assert_eq!(b[0], 9);
            proptest::prop_assert_eq!(decode(r#""string""#, &b[1..]), Value::String(text));
        }
    }

    #[test]
    fn confluent_header_is_magic_and_big_endian_id() {
        let mut b = Vec::new();
        header(&mut b, 0x0102_0304);
        assert_eq!(b, [0, 1, 2, 3, 4]);
    }
}
