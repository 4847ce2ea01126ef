//! One message as a sender gives it: body and message attributes checked
//! against SQS's rules, their size (what counts toward the 256 KiB limit)
//! and the MD5 digests SQS answers with, computed as SQS defines them so
//! SDKs that verify them agree. Pure.

use base64::Engine;
use md5::{Digest, Md5};
use serde_json::{Map, Value};

use super::errors::{self, SqsError};

/// Message attributes per message, as on SQS.
const MAX_ATTRIBUTES: usize = 10;

pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SQS's body rule: XML's characters (#x9, #xA, #xD, #x20–#xD7FF,
/// #xE000–#xFFFD, #x10000–#x10FFFF).
pub(crate) fn valid_body(body: &str) -> bool {
    body.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    })
}

/// A checked attribute: its type and its value's bytes (a binary value
/// decoded), `binary` saying which it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    pub data_type: String,
    pub value: Vec<u8>,
    pub binary: bool,
}

fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.to_ascii_lowercase().starts_with("aws.")
        && !name.to_ascii_lowercase().starts_with("amazon.")
}

/// `MessageAttributes` of a send: `{"name": {"DataType", "StringValue" |
/// "BinaryValue" (base64)}}`, by name.
pub(crate) fn attributes(doc: Option<&Value>) -> Result<Vec<(String, Attribute)>, SqsError> {
    let Some(doc) = doc else {
        return Ok(Vec::new());
    };
    let map = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Object(map) => map,
        _ => {
            return Err(errors::invalid_parameter(
                "MessageAttributes must be a map.",
            ))
        }
    };
    if map.len() > MAX_ATTRIBUTES {
        return Err(errors::invalid_parameter(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].",
            map.len()
        )));
    }
    let mut out = Vec::with_capacity(map.len());
    for (name, attr) in map {
        if !valid_attribute_name(name) {
            return Err(errors::invalid_parameter(format!(
                "Message attribute name '{name}' is invalid: use letters, digits, '_', '-' and '.', not starting with AWS. or Amazon."
            )));
        }
        let field = |f: &str| attr.get(f).and_then(Value::as_str);
        let data_type = field("DataType").unwrap_or_default();
        let base = data_type.split('.').next().unwrap_or_default();
        let value = match base {
            "String" | "Number" => field("StringValue").map(|s| (s.as_bytes().to_vec(), false)),
            "Binary" => field("BinaryValue").and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .ok()
                    .map(|v| (v, true))
            }),
            _ => {
                return Err(errors::invalid_parameter(format!(
                    "The type of message (user) attribute '{name}' is invalid: DataType must be String, Number or Binary (optionally with a .suffix)."
                )))
            }
        };
        let Some((value, binary)) = value else {
            return Err(errors::invalid_parameter(format!(
                "Message (user) attribute '{name}' must contain a non-empty {} value of type '{base}'.",
                if base == "Binary" { "base64 BinaryValue" } else { "StringValue" }
            )));
        };
        if base == "Number"
            && std::str::from_utf8(&value).map_or(true, |s| s.trim().parse::<f64>().is_err())
        {
            return Err(errors::invalid_parameter(format!(
                "Can't cast the value of message (user) attribute '{name}' to a number."
            )));
        }
        out.push((
            name.clone(),
            Attribute {
                data_type: data_type.to_string(),
                value,
                binary,
            },
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// What attributes add to a message's size: names, types and values.
pub(crate) fn attributes_size(attrs: &[(String, Attribute)]) -> usize {
    attrs
        .iter()
        .map(|(n, a)| n.len() + a.data_type.len() + a.value.len())
        .sum()
}

/// SQS's digest of message attributes: for each attribute by name, the
/// name, the type (each with a 4-byte big-endian length), a transport byte
/// (1: string, 2: binary) and the value with its length.
pub(crate) fn md5_of_attributes(attrs: &[(String, Attribute)]) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    fn field(md5: &mut Md5, bytes: &[u8]) {
        md5.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        md5.update(bytes);
    }
    let mut md5 = Md5::new();
    for (name, a) in attrs {
        field(&mut md5, name.as_bytes());
        field(&mut md5, a.data_type.as_bytes());
        md5.update([if a.binary { 2 } else { 1 }]);
        field(&mut md5, &a.value);
    }
    Some(hex(&md5.finalize()))
}

/// The attributes as stored (and answered): SQS's JSON shape.
pub(crate) fn stored(attrs: &[(String, Attribute)]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut map = Map::new();
    for (name, a) in attrs {
        let mut entry = Map::new();
        entry.insert("DataType".into(), a.data_type.clone().into());
        if a.binary {
            entry.insert("BinaryValue".into(), b64.encode(&a.value).into());
        } else {
            entry.insert(
                "StringValue".into(),
                String::from_utf8_lossy(&a.value).into_owned().into(),
            );
        }
        map.insert(name.clone(), Value::Object(entry));
    }
    Value::Object(map)
}

/// Whether `name` is selected by `MessageAttributeNames` (`All`, `.*`,
/// `prefix.*` or the exact name).
pub(crate) fn selected(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        p == "All"
            || p == ".*"
            || p == name
            || p.strip_suffix(".*")
                .is_some_and(|prefix| name.starts_with(&format!("{prefix}.")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_digest_is_md5_hex() {
        assert_eq!(md5_hex(b"test"), "098f6bcd4621d373cade4e832627b4f6");
    }

    #[test]
    fn attribute_digest_follows_sqs() {
        // One string attribute, digest computed by hand from the layout.
        let attrs = attributes(Some(&json!({
            "a": {"DataType": "String", "StringValue": "b"}
        })))
        .unwrap();
        let mut layout = Vec::new();
        layout.extend_from_slice(&[0, 0, 0, 1, b'a']);
        layout.extend_from_slice(&[0, 0, 0, 6]);
        layout.extend_from_slice(b"String");
        layout.push(1);
        layout.extend_from_slice(&[0, 0, 0, 1, b'b']);
        assert_eq!(md5_of_attributes(&attrs), Some(md5_hex(&layout)));
        assert_eq!(md5_of_attributes(&[]), None);
    }

    #[test]
    fn attributes_are_checked_and_kept_in_sqs_shape() {
        let doc = json!({
            "z": {"DataType": "Number", "StringValue": "12.5"},
            "bin": {"DataType": "Binary", "BinaryValue": "AP8="},
            "s": {"DataType": "String.custom", "StringValue": "x"},
        });
        let attrs = attributes(Some(&doc)).unwrap();
        let names: Vec<&str> = attrs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["bin", "s", "z"], "by name");
        assert_eq!(attrs[0].1.value, [0, 0xff]);
        assert_eq!(stored(&attrs), doc);
        assert_eq!(attributes_size(&attrs), 3 + 6 + 2 + 1 + 13 + 1 + 1 + 6 + 4);

        for bad in [
            json!({"a": {"DataType": "Text", "StringValue": "x"}}),
            json!({"a": {"DataType": "String"}}),
            json!({"a": {"DataType": "Number", "StringValue": "ten"}}),
            json!({"a": {"DataType": "Binary", "BinaryValue": "not base64!"}}),
            json!({"AWS.x": {"DataType": "String", "StringValue": "x"}}),
            json!({"a b": {"DataType": "String", "StringValue": "x"}}),
            json!([1]),
        ] {
            assert!(attributes(Some(&bad)).is_err(), "{bad}");
        }
        let eleven: Map<String, Value> = (0..11)
            .map(|i| {
                (
                    format!("a{i}"),
                    json!({"DataType": "String", "StringValue": "x"}),
                )
            })
            .collect();
        assert!(attributes(Some(&Value::Object(eleven))).is_err());
    }

    #[test]
    fn bodies_are_xml_characters() {
        assert!(valid_body("hello\n\tworld ✓ 🎉"));
        assert!(!valid_body("nul \u{0}"));
        assert!(!valid_body("\u{FFFE}"));
    }

    #[test]
    fn attribute_names_select_by_pattern() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(selected("a", &p(&["All"])));
        assert!(selected("a", &p(&[".*"])));
        assert!(selected("trace.id", &p(&["trace.*"])));
        assert!(!selected("tracer", &p(&["trace.*"])));
        assert!(selected("x", &p(&["y", "x"])));
        assert!(!selected("x", &p(&[])));
    }
}
