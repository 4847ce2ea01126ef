//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`),
//! so `aws lambda invoke --endpoint-url` and boto3 work against rouse.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use rouse_pool::{AcquireError, Limit};

use crate::aws::{self, FunctionRef, InvocationType};
use crate::body::{empty, full, BoxError, ProxyBody};
use crate::lambda::{LambdaCall, LambdaResult};
use crate::Gateway;

/// Synchronous request payload limit (6 MB), as on Lambda.
pub(crate) const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Asynchronous (`Event`) payload limit.
pub(crate) const MAX_ASYNC_PAYLOAD: usize = 256 * 1024;

impl Gateway {
    pub(crate) async fn invoke_api<B>(
        &self,
        req: Request<B>,
        target: Result<FunctionRef, String>,
    ) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request_id = uuid::Uuid::new_v4().to_string();
        let bad = |code: &str, message: &str| {
            aws::error(StatusCode::BAD_REQUEST, code, message, &request_id)
        };
        let target = match target {
            Ok(target) => target,
            Err(message) => return bad("InvalidParameterValueException", &message),
        };
        let (parts, body) = req.into_parts();
        let in_query = query_param(parts.uri.query(), "Qualifier");
        if let (Some(in_name), Some(in_query)) = (&target.qualifier, &in_query) {
            if in_name != in_query {
                return bad(
                    "InvalidParameterValueException",
                    &format!("The derived qualifier from the function name does not match the specified qualifier ({in_name} and {in_query})."),
                );
            }
        }
        let qualifier = target.qualifier.clone().or(in_query);
        let kind = match InvocationType::parse(header_str(&parts.headers, "x-amz-invocation-type"))
        {
            Ok(kind) => kind,
            Err(message) => return bad("InvalidParameterValueException", &message),
        };
        let tail = header_str(&parts.headers, "x-amz-log-type") == Some("Tail");
        let client_context =
            match header_str(&parts.headers, "x-amz-client-context").map(decode_client_context) {
                None => None,
                Some(Ok(context)) => Some(context),
                Some(Err(())) => {
                    return bad(
                        "InvalidRequestContentException",
                        "Client context must be a valid Base64-encoded JSON object.",
                    )
                }
            };
        let trace_id = header_str(&parts.headers, "x-amzn-trace-id").map(str::to_string);

        let not_found = |what: &str| {
            aws::error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!(
                    "Function not found: {}",
                    rouse_pool::lambda::function_arn(what)
                ),
                &request_id,
            )
        };
        let (exists, version) = {
            let router = self.inner.router.load();
            let function = router.function(&target.name);
            let version = match (function, qualifier.as_deref()) {
                (None, _) | (Some(_), None | Some("$LATEST")) => Ok(None),
                (Some(_), Some(q)) if q.bytes().all(|b| b.is_ascii_digit()) => {
                    match q.parse::<u32>() {
                        Ok(v) => Ok(Some(v)),
                        Err(_) => Err(q.to_string()),
                    }
                }
                (Some(f), Some(alias)) => match f.aliases.get(alias) {
                    Some(target) => Ok(Some(target.pick(fastrand::f64()))),
                    None => Err(alias.to_string()),
                },
            };
            (function.map(|f| f.lambda), version)
        };
        let version = match version {
            Ok(Some(v)) => match self.inner.store.version(&target.name, v).await {
                Ok(Some(_)) => Some(v),
                Ok(None) => return not_found(&format!("{}:{v}", target.name)),
                Err(err) => {
                    tracing::error!(%err, "store error while resolving a qualifier");
                    return aws::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "ServiceException",
                        "Internal error",
                        &request_id,
                    );
                }
            },
            Ok(None) => None,
            Err(q) => return not_found(&format!("{}:{q}", target.name)),
        };
        match exists {
            None => return not_found(&target.name),
            Some(false) => {
                return bad(
                    "InvalidParameterValueException",
                    &format!(
                        "{} is a web function: call it over HTTP, not through the Invoke API",
                        target.name
                    ),
                )
            }
            Some(true) => {}
        }

        let limit = if kind == InvocationType::Event {
            MAX_ASYNC_PAYLOAD
        } else {
            MAX_SYNC_PAYLOAD
        };
        let payload = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                return aws::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    &format!(
                    "Request must be smaller than {limit} bytes for the InvokeFunction operation"
                ),
                    &request_id,
                )
            }
            Err(_) => {
                return bad(
                    "InvalidRequestContentException",
                    "Could not read the request body",
                )
            }
        };
        // An empty payload is what SDKs send without `Payload`; it means `{}`.
        let payload = if payload.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else {
            payload
        };
        if serde_json::from_slice::<serde_json::Value>(&payload).is_err() {
            return bad(
                "InvalidRequestContentException",
                "Could not parse request body into json",
            );
        }

        match kind {
            InvocationType::DryRun => {
                with_request_id(status_only(StatusCode::NO_CONTENT), &request_id)
            }
            InvocationType::Event => {
                // Committed before the 202: an accepted event survives a crash.
                let event = rouse_store::events::NewEvent {
                    id: request_id.clone(),
                    function: target.name,
                    version,
                    payload: payload.to_vec(),
                    accepted_at_ms: crate::async_invoke::now_ms(),
                };
                match self.inner.events.submit(event).await {
                    Ok(()) => with_request_id(status_only(StatusCode::ACCEPTED), &request_id),
                    Err(err) => {
                        tracing::error!(%err, "async invocation not accepted");
                        aws::error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "ServiceException",
                            "The asynchronous invocation could not be queued.",
                            &request_id,
                        )
                    }
                }
            }
            InvocationType::RequestResponse => {
                let call = LambdaCall {
                    function: &target.name,
                    version,
                    request_id: request_id.clone(),
                    payload,
                    client_context,
                    trace_id,
                };
                match self.call_lambda(call).await {
                    Ok(invoked) => {
                        let (body, content_type, failed) = match invoked.result {
                            LambdaResult::Ok { body, content_type } => (body, content_type, false),
                            LambdaResult::FunctionError { body, .. } => (body, None, true),
                        };
                        let mut resp = Response::new(full(body));
                        let h = resp.headers_mut();
                        let content_type =
                            content_type.unwrap_or_else(|| "application/json".into());
                        if let Ok(v) = HeaderValue::from_str(&content_type) {
                            h.insert(header::CONTENT_TYPE, v);
                        }
                        // Qualified calls report the version that ran (an
                        // alias resolves to its version); others `$LATEST`.
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
                            let encoded = base64::engine::general_purpose::STANDARD
                                .encode(invoked.log_tail.as_bytes());
                            if let Ok(v) = HeaderValue::from_str(&encoded) {
                                h.insert("x-amz-log-result", v);
                            }
                        }
                        with_request_id(resp, &request_id)
                    }
                    Err(err) => acquire_error_aws(err, &target.name, &request_id),
                }
            }
        }
    }
}

fn acquire_error_aws(err: AcquireError, function: &str, request_id: &str) -> Response<ProxyBody> {
    match err {
        AcquireError::NotFound(_) => aws::error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!(
                "Function not found: {}",
                rouse_pool::lambda::function_arn(function)
            ),
            request_id,
        ),
        AcquireError::Throttled {
            limit, retry_after, ..
        } => throttled(request_id, "Rate Exceeded.", reason(limit), retry_after),
        AcquireError::BackingOff { retry_after, .. } => {
            let mut resp = aws::error(
                StatusCode::BAD_GATEWAY,
                "ServiceException",
                "The function's instances keep failing; retry later.",
                request_id,
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
            resp
        }
        AcquireError::ShuttingDown => aws::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceException",
            "rouse is shutting down",
            request_id,
        ),
        AcquireError::StartFailed(failure) => aws::error(
            StatusCode::BAD_GATEWAY,
            "ServiceException",
            &failure.message,
            request_id,
        ),
        AcquireError::Store(err) => aws::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            &err.to_string(),
            request_id,
        ),
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

/// Lambda's 429 `TooManyRequestsException`.
fn throttled(
    request_id: &str,
    message: &str,
    reason: &str,
    retry_after: Duration,
) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "__type": "TooManyRequestsException",
        "Type": "User",
        "message": message,
        "Message": message,
        "Reason": reason,
    });
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-amzn-errortype",
        HeaderValue::from_static("TooManyRequestsException"),
    );
    h.insert(header::RETRY_AFTER, crate::retry_after_secs(retry_after));
    with_request_id(resp, request_id)
}

fn status_only(status: StatusCode) -> Response<ProxyBody> {
    let mut resp = Response::new(empty());
    *resp.status_mut() = status;
    resp
}

fn with_request_id(mut resp: Response<ProxyBody>, request_id: &str) -> Response<ProxyBody> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.replace("%24", "$"))
    })
}

/// `X-Amz-Client-Context` is base64 of a JSON object; the runtime gets the JSON.
fn decode_client_context(raw: &str) -> Result<String, ()> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| ())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| ())?;
    if !value.is_object() {
        return Err(());
    }
    Ok(value.to_string())
}

/// Delay before the first retry of a failed async invocation (the second
/// waits twice as long), as on Lambda.
pub(crate) const DEFAULT_ASYNC_RETRY_DELAY: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_context_must_be_base64_json_object() {
        let ok = base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"a":1}}"#);
        assert_eq!(decode_client_context(&ok).unwrap(), r#"{"custom":{"a":1}}"#);
        assert!(decode_client_context("not base64!").is_err());
        let array = base64::engine::general_purpose::STANDARD.encode("[1]");
        assert!(decode_client_context(&array).is_err());
    }

    #[test]
    fn qualifier_from_the_query() {
        assert_eq!(
            query_param(Some("Qualifier=%24LATEST"), "Qualifier").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(query_param(Some("a=b"), "Qualifier"), None);
        assert_eq!(query_param(None, "Qualifier"), None);
    }
}
