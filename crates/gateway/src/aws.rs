//! The AWS-facing edges of the Lambda Invoke API: parsing what SDKs send and
//! answering errors the way botocore reads them.

use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{full, ProxyBody};

/// `/2015-03-31/functions/{FunctionName}/invocations`.
pub(crate) const INVOKE_PREFIX: &str = "/2015-03-31/functions/";
const INVOKE_SUFFIX: &str = "/invocations";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
            Some("Event") => Ok(InvocationType::Event),
            Some("DryRun") => Ok(InvocationType::DryRun),
            Some(other) => Err(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            )),
        }
    }
}

/// A function reference as the API accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
}

/// The `{FunctionName}` of an invoke path, if `path` is one. Accepts a
/// name, `account:function:name`, or a full ARN, each with an optional
/// `:qualifier`; the path segment may be percent-encoded (SDKs encode `:`).
pub(crate) fn parse_invoke_path(path: &str) -> Option<Result<FunctionRef, String>> {
    let rest = path.strip_prefix(INVOKE_PREFIX)?;
    let encoded = rest.strip_suffix(INVOKE_SUFFIX)?;
    if encoded.is_empty() || encoded.contains('/') {
        return None;
    }
    Some(parse_function_name(&rouse_events::decode_path_segment(
        encoded,
    )))
}

fn parse_function_name(raw: &str) -> Result<FunctionRef, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        [_account, "function", name] => (*name, None),
        [_account, "function", name, qualifier] => (*name, Some(*qualifier)),
        ["arn", _partition, "lambda", _region, _account, "function", name] => (*name, None),
        ["arn", _partition, "lambda", _region, _account, "function", name, qualifier] => {
            (*name, Some(*qualifier))
        }
        _ => return Err(format!("invalid function name: {raw}")),
    };
    let valid = !name.is_empty()
        && name.len() <= 140
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(format!("invalid function name: {raw}"));
    }
    Ok(FunctionRef {
        name: name.to_string(),
        qualifier: qualifier.map(str::to_string),
    })
}

/// An error as botocore parses it: the code in `x-amzn-ErrorType` and in
/// the body's `__type`, the message in both `message` and `Message`.
pub(crate) fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<ProxyBody> {
    error_response(status, code, error_body(code, message), request_id)
}

/// [`error`] with Lambda's `Reason` in the body (throttles say which limit).
pub(crate) fn error_with_reason(
    status: StatusCode,
    code: &str,
    message: &str,
    reason: &str,
    request_id: &str,
) -> Response<ProxyBody> {
    let mut body = error_body(code, message);
    body["Reason"] = reason.into();
    error_response(status, code, body, request_id)
}

fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "__type": code,
        "Type": "User",
        "message": message,
        "Message": message,
    })
}

fn error_response(
    status: StatusCode,
    code: &str,
    body: serde_json::Value,
    request_id: &str,
) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(path: &str) -> Option<Result<FunctionRef, String>> {
        parse_invoke_path(path)
    }

    fn ok(name: &str, qualifier: Option<&str>) -> Option<Result<FunctionRef, String>> {
        Some(Ok(FunctionRef {
            name: name.into(),
            qualifier: qualifier.map(Into::into),
        }))
    }

    #[test]
    fn function_names_in_every_form() {
        let cases = [
            ("/2015-03-31/functions/hello/invocations", ok("hello", None)),
            ("/2015-03-31/functions/hello%3Alive/invocations", ok("hello", Some("live"))),
            ("/2015-03-31/functions/hello:3/invocations", ok("hello", Some("3"))),
            (
                "/2015-03-31/functions/123456789012%3Afunction%3Ahello/invocations",
                ok("hello", None),
            ),
            (
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ashop-dev-api%3A%24LATEST/invocations",
                ok("shop-dev-api", Some("$LATEST")),
            ),
            ("/2015-03-31/functions/hello", None),
            ("/2015-03-31/functions//invocations", None),
            ("/other", None),
        ];
        for (path, want) in cases {
            assert_eq!(parsed(path), want, "{path}");
        }
        assert!(matches!(
            parsed("/2015-03-31/functions/bad%20name/invocations"),
            Some(Err(_))
        ));
        assert!(matches!(
            parsed("/2015-03-31/functions/a:b:c:d:e/invocations"),
            Some(Err(_))
        ));
    }

    #[test]
    fn invocation_types() {
        assert_eq!(
            InvocationType::parse(None),
            Ok(InvocationType::RequestResponse)
        );
        assert_eq!(
            InvocationType::parse(Some("Event")),
            Ok(InvocationType::Event)
        );
        assert_eq!(
            InvocationType::parse(Some("DryRun")),
            Ok(InvocationType::DryRun)
        );
        assert!(InvocationType::parse(Some("event")).is_err());
    }

    #[test]
    fn errors_carry_the_code_where_botocore_looks() {
        let resp = error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "Function not found: x",
            "rid",
        );
        assert_eq!(resp.status(), 404);
        assert_eq!(
            resp.headers()["x-amzn-errortype"],
            "ResourceNotFoundException"
        );
        assert_eq!(resp.headers()["x-amzn-requestid"], "rid");
    }
}
