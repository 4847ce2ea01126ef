//! `rouse invoke` for web functions: a request sent straight to the function,
//! whatever its routes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::AdminState;

pub(crate) async fn invoke_root(
    state: State<Arc<AdminState>>,
    Path(name): Path<String>,
    client: ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    forward(state, name, String::new(), client, req).await
}

pub(crate) async fn invoke(
    state: State<Arc<AdminState>>,
    Path((name, path)): Path<(String, String)>,
    client: ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    forward(state, name, path, client, req).await
}

async fn forward(
    State(state): State<Arc<AdminState>>,
    name: String,
    path: String,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (mut parts, body) = req.into_parts();
    parts.uri = match rouse_gateway::with_path(&parts.uri, &format!("/{path}")) {
        Ok(uri) => uri,
        Err(err) => return ApiError::bad_request(format!("bad path: {err}")).into_response(),
    };
    // The admin token is for rouse, not for the function.
    parts.headers.remove(axum::http::header::AUTHORIZATION);
    // Nor are the dashboard's session cookie and CSRF token (a page's test
    // invoke sends them): the cookie header goes when it carries the session.
    parts.headers.remove(crate::dashboard::session::CSRF_HEADER);
    let carries_session = parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            crate::dashboard::session::cookie_value(v, crate::dashboard::session::COOKIE).is_some()
        });
    if carries_session {
        parts.headers.remove(axum::http::header::COOKIE);
    }
    if state.gateway.is_lambda(&name) {
        let response = state
            .gateway
            .invoke_direct(&name, Request::from_parts(parts, body))
            .await;
        return response.map(Body::new);
    }
    let response = state
        .gateway
        .forward(&name, Request::from_parts(parts, body), client)
        .await;
    response.map(Body::new)
}
