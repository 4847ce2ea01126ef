//! Reading fields of Lambda results (and, for the adapter, of events) with
//! the coercions API Gateway applies.
//!
//! API Gateway accepts `"statusCode": "200"` (old Lambda blueprints return
//! it) and boolean header values (`"Access-Control-Allow-Credentials": true`
//! is in many CORS examples), so scalars are coerced where a string or number
//! is expected; objects and arrays in those places are errors.

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use crate::{HttpResponse, ResponseError};

pub(crate) type Result<T> = std::result::Result<T, ResponseError>;
pub(crate) type Object = Map<String, Value>;
pub(crate) type Headers = Vec<(HeaderName, HeaderValue)>;

/// Base64 as handlers produce it: standard alphabet, padding optional
/// (some encoders drop it).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn malformed(why: impl Into<String>) -> ResponseError {
    ResponseError::Malformed(why.into())
}

/// The result as a JSON object.
pub(crate) fn object(value: &Value) -> Result<&Object> {
    value
        .as_object()
        .ok_or_else(|| malformed(format!("expected a JSON object, got {}", kind(value))))
}

/// `statusCode`: required, an integer or a string holding one, 200–599
/// (a 1xx can't be a final response).
pub(crate) fn status(obj: &Object) -> Result<StatusCode> {
    let code = match obj.get("statusCode") {
        None | Some(Value::Null) => return Err(malformed("statusCode is missing")),
        Some(Value::Number(n)) => n.as_u64().or_else(|| {
            // 200.0 from a language without integers.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(other) => {
            return Err(malformed(format!(
                "statusCode must be a number, got {}",
                kind(other)
            )))
        }
    };
    code.filter(|c| (200..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c as u16).ok())
        .ok_or_else(|| {
            malformed(format!(
                "statusCode {} is not a valid status",
                obj["statusCode"]
            ))
        })
}

/// `isBase64Encoded`: absent or `null` is false.
pub(crate) fn base64_flag(obj: &Object) -> Result<bool> {
    match obj.get("isBase64Encoded") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(malformed(format!(
            "isBase64Encoded must be a boolean, got {other}"
        ))),
    }
}

/// `body`: absent or `null` is empty; otherwise it must be a string (a
/// handler that forgot to serialize its JSON body gets a 502 as on AWS),
/// base64-decoded when flagged. Whitespace inside base64 is ignored because
/// some encoders wrap lines.
pub(crate) fn body(obj: &Object, is_base64: bool) -> Result<Bytes> {
    match obj.get("body") {
        None | Some(Value::Null) => Ok(Bytes::new()),
        Some(Value::String(text)) if is_base64 => {
            let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            LENIENT_BASE64
                .decode(compact)
                .map(Bytes::from)
                .map_err(|e| malformed(format!("body is not valid base64: {e}")))
        }
        Some(Value::String(text)) => Ok(Bytes::copy_from_slice(text.as_bytes())),
        Some(other) => Err(malformed(format!(
            "body must be a string, got {}",
            kind(other)
        ))),
    }
}

/// A `{name: value}` header map; `null` values are skipped.
pub(crate) fn single_headers(obj: &Object, key: &str) -> Result<Headers> {
    let mut headers = Vec::new();
    for (name, value) in map_field(obj, key)?.into_iter().flatten() {
        if let Some(text) = scalar(value, key, name)? {
            headers.push(header(name, &text)?);
        }
    }
    Ok(headers)
}

/// A `{name: [values]}` header map; a lone scalar counts as one value and
/// `null`s are skipped.
pub(crate) fn multi_headers(obj: &Object, key: &str) -> Result<Headers> {
    let mut headers = Vec::new();
    for (name, values) in map_field(obj, key)?.into_iter().flatten() {
        let values = match values {
            Value::Array(values) => values.as_slice(),
            single => std::slice::from_ref(single),
        };
        for value in values {
            if let Some(text) = scalar(value, key, name)? {
                headers.push(header(name, &text)?);
            }
        }
    }
    Ok(headers)
}

/// A list of strings such as `cookies`; absent or `null` is empty.
pub(crate) fn string_list(obj: &Object, key: &str) -> Result<Vec<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| scalar(item, key, &i.to_string()).transpose())
            .collect(),
        Some(other) => Err(malformed(format!(
            "{key} must be an array, got {}",
            kind(other)
        ))),
    }
}

/// Assembles the response. `Content-Length` and `Transfer-Encoding` from
/// the handler are dropped: the body is complete, the gateway frames it, and
/// a stale length copied from an upstream would corrupt the connection.
pub(crate) fn finish(status: StatusCode, headers: Headers, body: Bytes) -> HttpResponse {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            map.append(name, value);
        }
    }
    HttpResponse {
        status,
        headers: map,
        body,
    }
}

fn map_field<'a>(obj: &'a Object, key: &str) -> Result<Option<&'a Object>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(malformed(format!(
            "{key} must be an object, got {}",
            kind(other)
        ))),
    }
}

/// A scalar as text; `None` for `null`.
fn scalar(value: &Value, field: &str, name: &str) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(malformed(format!(
            "{field}.{name} must be a string, got {}",
            kind(other)
        ))),
    }
}

/// A header HTTP can carry. Values may hold UTF-8 (sent as obs-text bytes)
/// but never CR, LF or NUL, so a handler cannot inject extra headers.
fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let header_name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| malformed(format!("invalid header name {name:?}")))?;
    let header_value = HeaderValue::from_bytes(value.as_bytes())
        .map_err(|_| malformed(format!("invalid value for header {name:?}")))?;
    Ok((header_name, header_value))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
