//! The gateway's own answers: API Gateway's `{"message": ...}` errors and
//! what each way of not finding an instance becomes.

use http::{header, HeaderValue, Response, StatusCode};
use rouse_pool::AcquireError;

use crate::body::{full, ProxyBody};

pub(crate) fn acquire_error(err: AcquireError) -> Response<ProxyBody> {
    match err {
        AcquireError::NotFound(_) => json_error(StatusCode::NOT_FOUND, "Not Found"),
        AcquireError::Throttled { retry_after, .. } => {
            let mut resp = json_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs(retry_after));
            resp
        }
        AcquireError::BackingOff { retry_after, .. } => {
            let mut resp = json_error(
                StatusCode::BAD_GATEWAY,
                "Bad Gateway: the function keeps crashing; retrying later",
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs(retry_after));
            resp
        }
        AcquireError::StartFailed(_) => json_error(
            StatusCode::BAD_GATEWAY,
            "Bad Gateway: the function instance failed to start",
        ),
        AcquireError::ShuttingDown => {
            let mut resp = json_error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        AcquireError::Store(err) => {
            tracing::error!(%err, "store error while routing");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        }
    }
}

/// `Retry-After` in whole seconds, rounded up and at least 1.
pub(crate) fn retry_after_secs(wait: std::time::Duration) -> HeaderValue {
    HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64)
}

/// API Gateway's error body shape: `{"message": "..."}`.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn acquire_errors_become_http_answers() {
        use rouse_pool::{Limit, StartFailure};
        let secs = Duration::from_millis;
        let store = rouse_store::StoreError::Io(std::io::Error::other("disk"));
        let start = std::sync::Arc::new(StartFailure::from("exec failed".to_string()));
        // (error, status, Retry-After)
        #[rustfmt::skip]
        let cases = [
            (AcquireError::NotFound("f".into()), 404, None),
            (AcquireError::Throttled { function: "f".into(), limit: Limit::Burst, retry_after: secs(1_500) }, 429, Some("2")),
            (AcquireError::BackingOff { function: "f".into(), retry_after: secs(200) }, 502, Some("1")),
            (AcquireError::StartFailed(start), 502, None),
            (AcquireError::ShuttingDown, 503, Some("1")),
            (AcquireError::Store(store), 500, None),
        ];
        for (err, status, retry_after) in cases {
            let what = format!("{err:?}");
            let resp = acquire_error(err);
            assert_eq!(resp.status(), status, "{what}");
            let header = resp.headers().get(header::RETRY_AFTER);
            assert_eq!(header.map(|v| v.to_str().unwrap()), retry_after, "{what}");
            assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let table = [
            (0, "1"),
            (1, "1"),
            (999, "1"),
            (1000, "1"),
            (1001, "2"),
            (2500, "3"),
        ];
        for (ms, header) in table {
            assert_eq!(
                retry_after_secs(Duration::from_millis(ms)),
                header,
                "{ms} ms"
            );
        }
    }
}
