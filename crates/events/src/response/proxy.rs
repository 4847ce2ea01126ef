//! REST (payload 1.0) and ALB results: `{statusCode, headers,
//! multiValueHeaders, body, isBase64Encoded}`.

use serde_json::Value;

use crate::fields::{self, Headers, Result};
use crate::HttpResponse;

/// Which header maps of the result count.
#[derive(Clone, Copy, Debug)]
pub(super) enum HeaderSource {
    /// REST: both maps, merged.
    Merged,
    /// ALB with multi-value headers off: `headers` only.
    Single,
    /// ALB with multi-value headers on: `multiValueHeaders` only.
    Multi,
}

pub(super) fn parse(value: &Value, source: HeaderSource) -> Result<HttpResponse> {
    let obj = fields::object(value)?;
    let status = fields::status(obj)?;
    let headers = match source {
        HeaderSource::Merged => merge(
            fields::multi_headers(obj, "multiValueHeaders")?,
            fields::single_headers(obj, "headers")?,
        ),
        HeaderSource::Single => fields::single_headers(obj, "headers")?,
        HeaderSource::Multi => fields::multi_headers(obj, "multiValueHeaders")?,
    };
    let body = fields::body(obj, fields::base64_flag(obj)?)?;
    Ok(fields::finish(status, headers, body))
}

/// API Gateway's merge: every `multiValueHeaders` value, then each
/// `headers` entry unless the same name/value pair is already there (so a
/// handler that fills both maps, as some frameworks do, doesn't send every
/// header twice).
fn merge(multi: Headers, single: Headers) -> Headers {
    let mut merged = multi;
    for (name, value) in single {
        if !merged.iter().any(|(n, v)| *n == name && *v == value) {
            merged.push((name, value));
        }
    }
    merged
}
