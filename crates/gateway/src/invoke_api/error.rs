//! Every way an Invoke API call fails, each with the AWS error code and
//! status Lambda answers it with, so SDKs raise the exception they would
//! against AWS.

use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};
use rouse_pool::{AcquireError, Limit};

use crate::aws;
use crate::body::ProxyBody;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InvokeError {
    /// 400 `InvalidParameterValueException`: a bad name, qualifier or header.
    InvalidParameter(String),
    /// 400 `InvalidRequestContentException`: a payload or client context
    /// that cannot be read.
    InvalidContent(&'static str),
    /// 404 `ResourceNotFoundException`: no such function (`name`) or
    /// version or alias (`name:qualifier`).
    NotFound(String),
    /// 413 `RequestTooLargeException`.
    TooLarge { limit: usize },
    /// 429 `TooManyRequestsException` with `Retry-After` and the limit as
    /// its `Reason`.
    Throttled { limit: Limit, retry_after: Duration },
    /// 502 `ServiceException` with `Retry-After`: the function keeps crashing.
    BackingOff { retry_after: Duration },
    /// 503 `ServiceException`.
    ShuttingDown,
    /// 502 `ServiceException`: no instance could start.
    StartFailed(String),
    /// 500 `ServiceException`: rouse itself failed (the store, the queue).
    Internal(String),
}

impl InvokeError {
    /// What not finding an instance for `function` means to an Invoke API caller.
    pub(crate) fn from_acquire(err: AcquireError, function: &str) -> InvokeError {
        match err {
            AcquireError::NotFound(_) => InvokeError::NotFound(function.to_string()),
            AcquireError::Throttled {
                limit, retry_after, ..
            } => InvokeError::Throttled { limit, retry_after },
            AcquireError::BackingOff { retry_after, .. } => InvokeError::BackingOff { retry_after },
            AcquireError::ShuttingDown => InvokeError::ShuttingDown,
            AcquireError::StartFailed(failure) => InvokeError::StartFailed(failure.message.clone()),
            AcquireError::Store(err) => InvokeError::Internal(err.to_string()),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            InvokeError::InvalidParameter(_) | InvokeError::InvalidContent(_) => {
                StatusCode::BAD_REQUEST
            }
            InvokeError::NotFound(_) => StatusCode::NOT_FOUND,
            InvokeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            InvokeError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            InvokeError::BackingOff { .. } | InvokeError::StartFailed(_) => StatusCode::BAD_GATEWAY,
            InvokeError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            InvokeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            InvokeError::InvalidParameter(_) => "InvalidParameterValueException",
            InvokeError::InvalidContent(_) => "InvalidRequestContentException",
            InvokeError::NotFound(_) => "ResourceNotFoundException",
            InvokeError::TooLarge { .. } => "RequestTooLargeException",
            InvokeError::Throttled { .. } => "TooManyRequestsException",
            InvokeError::BackingOff { .. }
            | InvokeError::ShuttingDown
            | InvokeError::StartFailed(_)
            | InvokeError::Internal(_) => "ServiceException",
        }
    }

    fn message(&self) -> String {
        match self {
            InvokeError::InvalidParameter(message)
            | InvokeError::StartFailed(message)
            | InvokeError::Internal(message) => message.clone(),
            InvokeError::InvalidContent(message) => (*message).to_string(),
            InvokeError::NotFound(what) => format!(
                "Function not found: {}",
                rouse_pool::lambda::function_arn(what)
            ),
            InvokeError::TooLarge { limit } => format!(
                "Request must be smaller than {limit} bytes for the InvokeFunction operation"
            ),
            InvokeError::Throttled { .. } => "Rate Exceeded.".to_string(),
            InvokeError::BackingOff { .. } => {
                "The function's instances keep failing; retry later.".to_string()
            }
            InvokeError::ShuttingDown => "rouse is shutting down".to_string(),
        }
    }

    /// The error as Lambda answers it (see [`aws::error`]).
    pub(crate) fn into_response(self, request_id: &str) -> Response<ProxyBody> {
        let (status, code, message) = (self.status(), self.code(), self.message());
        match self {
            InvokeError::Throttled { limit, retry_after } => {
                let mut resp =
                    aws::error_with_reason(status, code, &message, reason(limit), request_id);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, crate::retry_after_secs(retry_after));
                resp
            }
            InvokeError::BackingOff { retry_after } => {
                let mut resp = aws::error(status, code, &message, request_id);
                // Whole seconds rounded down (at least 1), unlike a
                // throttle's, which rounds up.
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
                resp
            }
            _ => aws::error(status, code, &message, request_id),
        }
    }
}

/// Lambda's throttle `Reason` for the limit that was hit.
fn reason(limit: Limit) -> &'static str {
    match limit {
        Limit::MaxInstances => "ReservedFunctionConcurrentInvocationLimitExceeded",
        Limit::Burst => "FunctionInvocationRateLimitExceeded",
        Limit::Node => "ConcurrentInvocationLimitExceeded",
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body_of(resp: Response<ProxyBody>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn each_error_answers_with_its_aws_code_and_status() {
        use InvokeError::*;
        let ms = Duration::from_millis;
        let not_found = format!(
            "Function not found: {}",
            rouse_pool::lambda::function_arn("hello:7")
        );
        let too_large =
            "Request must be smaller than 262144 bytes for the InvokeFunction operation";
        let failing = "The function's instances keep failing; retry later.";
        let (param, content, service) = (
            "InvalidParameterValueException",
            "InvalidRequestContentException",
            "ServiceException",
        );
        // (error, status, code, message, Retry-After, Reason)
        #[rustfmt::skip]
        let cases = [
            (InvalidParameter("bad".into()), 400, param, "bad", None, None),
            (InvalidContent("no json"), 400, content, "no json", None, None),
            (NotFound("hello:7".into()), 404, "ResourceNotFoundException", not_found.as_str(), None, None),
            (TooLarge { limit: 262_144 }, 413, "RequestTooLargeException", too_large, None, None),
            (Throttled { limit: Limit::MaxInstances, retry_after: ms(1_500) }, 429, "TooManyRequestsException",
                "Rate Exceeded.", Some("2"), Some("ReservedFunctionConcurrentInvocationLimitExceeded")),
            (Throttled { limit: Limit::Burst, retry_after: ms(10) }, 429, "TooManyRequestsException",
                "Rate Exceeded.", Some("1"), Some("FunctionInvocationRateLimitExceeded")),
            (Throttled { limit: Limit::Node, retry_after: ms(3_000) }, 429, "TooManyRequestsException",
                "Rate Exceeded.", Some("3"), Some("ConcurrentInvocationLimitExceeded")),
            (BackingOff { retry_after: ms(2_500) }, 502, service, failing, Some("2"), None),
            (BackingOff { retry_after: ms(200) }, 502, service, failing, Some("1"), None),
            (ShuttingDown, 503, service, "rouse is shutting down", None, None),
            (StartFailed("exec failed".into()), 502, service, "exec failed", None, None),
            (Internal("Internal error".into()), 500, service, "Internal error", None, None),
        ];
        for (err, status, code, message, retry_after, reason) in cases {
            let what = format!("{err:?}");
            let resp = err.into_response("rid");
            assert_eq!(resp.status(), status, "{what}");
            let h = resp.headers();
            assert_eq!(h["x-amzn-errortype"], code, "{what}");
            assert_eq!(h["x-amzn-requestid"], "rid", "{what}");
            assert_eq!(h[header::CONTENT_TYPE], "application/json", "{what}");
            assert_eq!(
                h.get(header::RETRY_AFTER).map(|v| v.to_str().unwrap()),
                retry_after,
                "{what}"
            );
            let body = body_of(resp).await;
            assert_eq!(body["__type"], code, "{what}");
            assert_eq!(body["message"], message, "{what}");
            assert_eq!(body["Message"], message, "{what}");
            assert_eq!(body["Reason"].as_str(), reason, "{what}");
        }
    }

    #[test]
    fn acquire_errors_become_invoke_errors() {
        let store = rouse_store::StoreError::Io(std::io::Error::other("disk"));
        let cases = [
            (
                AcquireError::NotFound("hello".into()),
                InvokeError::NotFound("hello".into()),
            ),
            (
                AcquireError::Throttled {
                    function: "hello".into(),
                    limit: Limit::Burst,
                    retry_after: Duration::from_secs(1),
                },
                InvokeError::Throttled {
                    limit: Limit::Burst,
                    retry_after: Duration::from_secs(1),
                },
            ),
            (
                AcquireError::BackingOff {
                    function: "hello".into(),
                    retry_after: Duration::from_secs(4),
                },
                InvokeError::BackingOff {
                    retry_after: Duration::from_secs(4),
                },
            ),
            (AcquireError::ShuttingDown, InvokeError::ShuttingDown),
            (
                AcquireError::Store(store),
                InvokeError::Internal("disk".into()),
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(InvokeError::from_acquire(err, "hello"), expected);
        }
    }
}
