//! Bearer-token check for every admin request, with failed attempts
//! rate-limited per client address and logged (see `rate_limit`); a
//! dashboard session cookie stands in for the token (see
//! `dashboard::session`), with its CSRF token on every change.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::dashboard::session::{Sessions, Verdict};
use crate::dashboard::{self, session};
use crate::error::ApiError;
use crate::rate_limit::{FailedAttempts, Log};
use crate::AdminState;

/// The middleware's state: the token, and who failed to present it.
pub(crate) struct Guard {
    pub(crate) state: Arc<AdminState>,
    failures: Mutex<FailedAttempts>,
    /// Dashboard sessions (in memory: a restart logs every browser out).
    sessions: Mutex<Sessions>,
    start: Instant,
}

impl Guard {
    pub(crate) fn new(state: Arc<AdminState>) -> Guard {
        Guard {
            state,
            failures: Mutex::new(FailedAttempts::default()),
            sessions: Mutex::new(Sessions::default()),
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
    let client = client_of(&req);
    let now = guard.now();
    if let Some(refused) = guard.locked_out(client, now) {
        return refused;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if presented.is_none() {
        if let Some(id) = dashboard::session_id(&req) {
            let csrf = req
                .headers()
                .get(session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok());
            let verdict = guard.sessions().check(id, req.method().as_str(), csrf, now);
            match verdict {
                Verdict::Allow => return next.run(req).await,
                Verdict::CsrfMismatch => {
                    return ApiError::new(
                        StatusCode::FORBIDDEN,
                        "CsrfTokenMissing",
                        format!(
                            "a change made with a session cookie needs the session's `{}` header",
                            session::CSRF_HEADER
                        ),
                    )
                    .into_response()
                }
                // A session id is 256 random bits, so a stale cookie (rouse
                // restarted, the session expired) is not guessing: it is not
                // counted against the address.
                Verdict::NoSession => return login_needed(&req),
            }
        }
        if dashboard::wants_login_page(&req) {
            return login_needed(&req);
        }
    }
    match guard.check_token(client, presented, req.uri().path(), now) {
        Ok(()) => next.run(req).await,
        Err(refused) => *refused,
    }
}

/// The client's address, as the admin listener recorded it.
pub(crate) fn client_of<B>(req: &axum::http::Request<B>) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// A dashboard page sends the browser to the login form; anything else
/// gets the API's 401.
fn login_needed<B>(req: &axum::http::Request<B>) -> Response {
    if dashboard::wants_login_page(req) {
        return dashboard::redirect("/ui/login");
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "no session or it has expired: log in again at /ui/login",
    )
    .into_response()
}

impl Guard {
    pub(crate) fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub(crate) fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        // A table of ids: a panic mid-update leaves nothing unsafe to read.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A 429 for an address that has no failed attempts left.
    pub(crate) fn locked_out(&self, client: IpAddr, now: f64) -> Option<Response> {
        let retry_after = self.failures().locked_out(client, now)?;
        let mut resp = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!("too many failed admin token attempts from {client}; retry in {retry_after} s"),
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        Some(resp)
    }

    /// Whether `presented` is the admin token; a wrong or missing one is
    /// counted against `client` (and logged, within the log's budget).
    pub(crate) fn check_token(
        &self,
        client: IpAddr,
        presented: Option<&str>,
        path: &str,
        now: f64,
    ) -> Result<(), Box<Response>> {
        if let Some(refused) = self.locked_out(client, now) {
            return Err(Box::new(refused));
        }
        if let Some(token) = presented {
            if constant_time_eq(token.as_bytes(), self.state.token.as_bytes()) {
                return Ok(());
            }
        }
        let log = self.failures().failed(client, now);
        if let Log::Line { unlogged_before } = log {
            let what = if presented.is_some() { "a wrong" } else { "no" };
            tracing::warn!(
                %client,
                path,
                unlogged_before,
                "admin API request with {what} bearer token refused"
            );
        }
        Err(Box::new(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or wrong bearer token (see ROUSE_ADMIN_TOKEN or the admin-token file in the data directory)",
        )
        .into_response()))
    }
}

/// Compares without an early exit, so response timing says nothing about
/// how much of a guessed token was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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
