//! The HTTP answer to an Invoke API call that was accepted.

use base64::Engine;
use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{empty, full, ProxyBody};
use crate::lambda::{Invoked, LambdaResult};

/// A synchronous invocation's answer: the function's result (or its error
/// JSON with `X-Amz-Function-Error`), the version that ran, and with
/// `tail` the log tail in `X-Amz-Log-Result`.
pub(crate) fn render(
    invoked: Invoked,
    version: Option<u32>,
    tail: bool,
    request_id: &str,
) -> Response<ProxyBody> {
    let (body, content_type, failed) = match invoked.result {
        LambdaResult::Ok { body, content_type } => (body, content_type, false),
        LambdaResult::FunctionError { body, .. } => (body, None, true),
    };
    let mut resp = Response::new(full(body));
    let h = resp.headers_mut();
    let content_type = content_type.unwrap_or_else(|| "application/json".into());
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // Qualified calls report the version that ran (an alias resolves to
    // its version); others `$LATEST`.
    let executed = match version {
        Some(v) => HeaderValue::from(v),
        None => HeaderValue::from_static("$LATEST"),
    };
    h.insert("x-amz-executed-version", executed);
    if failed {
        h.insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    if tail {
        let encoded = base64::engine::general_purpose::STANDARD.encode(invoked.log_tail.as_bytes());
        if let Ok(v) = HeaderValue::from_str(&encoded) {
            h.insert("x-amz-log-result", v);
        }
    }
    with_request_id(resp, request_id)
}

/// An answer without a body: 202 for an accepted event, 204 for a DryRun.
pub(crate) fn status_only(status: StatusCode, request_id: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = status;
    with_request_id(resp, request_id)
}

fn with_request_id(mut resp: Response<ProxyBody>, request_id: &str) -> Response<ProxyBody> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::BodyExt;

    use super::*;

    fn ok(content_type: Option<&str>) -> LambdaResult {
        LambdaResult::Ok {
            body: Bytes::from_static(b"\"hi\""),
            content_type: content_type.map(Into::into),
        }
    }

    fn failed() -> LambdaResult {
        LambdaResult::FunctionError {
            error_type: "Runtime.Unhandled".into(),
            body: Bytes::from_static(b"\"hi\""),
        }
    }

    #[tokio::test]
    async fn results_become_lambda_responses() {
        let log = base64::engine::general_purpose::STANDARD.encode("START\n");
        // (result, version, tail, content type, executed, function error, log result)
        let cases = [
            (
                ok(None),
                None,
                false,
                "application/json",
                "$LATEST",
                None,
                None,
            ),
            (
                ok(Some("text/plain")),
                Some(3),
                false,
                "text/plain",
                "3",
                None,
                None,
            ),
            (
                failed(),
                Some(2),
                false,
                "application/json",
                "2",
                Some("Unhandled"),
                None,
            ),
            (
                ok(None),
                None,
                true,
                "application/json",
                "$LATEST",
                None,
                Some(log.as_str()),
            ),
        ];
        for (result, version, tail, content_type, executed, error, log_result) in cases {
            let invoked = Invoked {
                result,
                log_tail: "START\n".into(),
            };
            let resp = render(invoked, version, tail, "rid");
            let what = format!("{version:?} tail {tail}");
            assert_eq!(resp.status(), 200, "{what}");
            let h = resp.headers();
            let get = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_string());
            assert_eq!(h[header::CONTENT_TYPE], content_type, "{what}");
            assert_eq!(h["x-amz-executed-version"], executed, "{what}");
            assert_eq!(h["x-amzn-requestid"], "rid", "{what}");
            assert_eq!(get("x-amz-function-error").as_deref(), error, "{what}");
            assert_eq!(get("x-amz-log-result").as_deref(), log_result, "{what}");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "\"hi\"", "{what}");
        }
    }

    #[test]
    fn accepted_and_dry_run_answers_are_empty() {
        for status in [StatusCode::ACCEPTED, StatusCode::NO_CONTENT] {
            let resp = status_only(status, "rid");
            assert_eq!(resp.status(), status);
            assert_eq!(resp.headers()["x-amzn-requestid"], "rid");
        }
    }
}
