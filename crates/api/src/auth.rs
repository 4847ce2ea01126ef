//! Bearer-token check for every admin request, with failed attempts
//! rate-limited per client address and logged (see `rate_limit`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::rate_limit::{FailedAttempts, Log};
use crate::AdminState;

/// The middleware's state: the token, and who failed to present it.
pub(crate) struct Guard {
    pub(crate) state: Arc<AdminState>,
    failures: Mutex<FailedAttempts>,
    start: Instant,
}

impl Guard {
    pub(crate) fn new(state: Arc<AdminState>) -> Guard {
        Guard {
            state,
            failures: Mutex::new(FailedAttempts::default()),
            start: Instant::now(),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, FailedAttempts> {
        // Counters only: a panic mid-update leaves nothing unsafe to read.
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) async fn require_token(
    State(guard): State<Arc<Guard>>,
    req: Request,
    next: Next,
) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let now = guard.start.elapsed().as_secs_f64();
    let locked = guard.failures().locked_out(client, now);
    if let Some(retry_after) = locked {
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!("too many failed admin token attempts from {client}; retry in {retry_after} s"),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return resp;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), guard.state.token.as_bytes()) => {
            next.run(req).await
        }
        _ => {
            let log = guard.failures().failed(client, now);
            if let Log::Line { unlogged_before } = log {
                let what = if presented.is_some() { "a wrong" } else { "no" };
                tracing::warn!(
                    %client,
                    path = req.uri().path(),
                    unlogged_before,
                    "admin API request with {what} bearer token refused"
                );
            }
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "missing or wrong bearer token (see ROUSE_ADMIN_TOKEN or the admin-token file in the data directory)",
            )
            .into_response()
        }
    }
}

/// Compares without an early exit, so response timing says nothing about
/// how much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
