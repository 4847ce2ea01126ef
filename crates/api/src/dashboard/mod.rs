//! The web dashboard on the admin port: pages at `/ui/`, a login that
//! exchanges the admin token for a session cookie, and the JSON and
//! server-sent-event endpoints the pages read.
//!
//! | route | what |
//! |---|---|
//! | `GET /`, `GET /ui` | redirect to `/ui/` |
//! | `GET /ui/login`, `POST /ui/login` (form `token`) | the login form; a session cookie for the right token |
//! | `GET /ui/session`, `POST /ui/logout` | the session's CSRF token; end the session |
//! | `GET /ui/`, `GET /ui/function`, `GET /ui/{file}` | pages and their scripts |
//! | `GET /v1/dashboard/functions?offset&limit&filter&sort&order` | the functions table, one page |
//! | `GET /v1/dashboard/functions/{name}` | one function: settings, instances, the last hour |
//! | `GET /v1/dashboard/functions/{name}/tail` | its log, live (`text/event-stream`) |
//!
//! Everything but the login form and its style sheet needs a session (or
//! the bearer token); the changes the pages make (rollback, environment,
//! invoke) go to the admin API's own routes with the CSRF header.

pub(crate) mod assets;
mod data;
pub(crate) mod session;
pub(crate) mod table;
mod tail;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use crate::auth::{client_of, Guard};
use crate::AdminState;

/// Routes behind the guard that read the admin state.
pub(crate) fn protected() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/", get(|| async { redirect("/ui/") }))
        .route("/ui", get(|| async { redirect("/ui/") }))
        .route("/ui/", get(|| async { assets::serve("index.html") }))
        .route(
            "/ui/function",
            get(|| async { assets::serve("function.html") }),
        )
        .route(
            "/ui/{file}",
            get(
                |axum::extract::Path(file): axum::extract::Path<String>| async move {
                    assets::serve(&file)
                },
            ),
        )
        .route("/v1/dashboard/functions", get(data::functions))
        .route("/v1/dashboard/functions/{name}", get(data::function))
        .route("/v1/dashboard/functions/{name}/tail", get(tail::tail))
}

/// Routes behind the guard that read the sessions.
pub(crate) fn sessions() -> Router<Arc<Guard>> {
    Router::new()
        .route("/ui/session", get(session_info))
        .route("/ui/logout", post(logout))
}

/// Routes anyone may call: the login form and the exchange itself (which
/// goes through the same lockout as a bearer token).
pub(crate) fn public() -> Router<Arc<Guard>> {
    Router::new()
        .route(
            "/ui/login",
            get(|| async { assets::serve("login.html") }).post(login),
        )
        .route(
            "/ui/login.css",
            get(|| async { assets::serve("style.css") }),
        )
}

/// Whether a request without credentials is a browser asking for a page,
/// which is better sent to the login form than given a 401.
pub(crate) fn wants_login_page<B>(req: &axum::http::Request<B>) -> bool {
    let path = req.uri().path();
    req.method() == Method::GET
        && (path == "/" || path == "/ui" || path.starts_with("/ui/"))
        && path != "/ui/session"
}

pub(crate) fn redirect(to: &'static str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    resp
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

fn secure<B>(req: &axum::http::Request<B>) -> bool {
    req.extensions()
        .get::<rouse_gateway::listen::Secure>()
        .is_some()
}

/// Hex of 32 random bytes.
fn random_id() -> Result<String, crate::error::ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        crate::error::ApiError::internal(format!("no randomness for a session: {e}"))
    })?;
    Ok(hex::encode(bytes))
}

async fn login(State(guard): State<Arc<Guard>>, req: Request) -> Response {
    let client = client_of(&req);
    let secure = secure(&req);
    let now = guard.now();
    let form = <Form<LoginForm> as axum::extract::FromRequest<()>>::from_request(req, &()).await;
    let presented = form.as_ref().ok().map(|Form(f)| f.token.trim());
    if let Err(refused) = guard.check_token(client, presented, "/ui/login", now) {
        if refused.status() == StatusCode::TOO_MANY_REQUESTS {
            return *refused;
        }
        // Back to the form, whose `:target` rule says the token was wrong
        // (no script on the login page).
        return redirect("/ui/login#failed");
    }
    let (id, csrf) = match (random_id(), random_id()) {
        (Ok(id), Ok(csrf)) => (id, csrf),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    guard.sessions().create(&id, &csrf, now);
    tracing::info!(%client, "dashboard session started");
    let mut resp = redirect("/ui/");
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&id, secure)) {
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    resp
}

#[derive(serde::Serialize)]
struct SessionInfo {
    csrf: Option<String>,
}

/// The CSRF token for the page's scripts (a same-origin read: no other
/// site can see the answer).
async fn session_info(State(guard): State<Arc<Guard>>, req: Request) -> Response {
    let now = guard.now();
    let csrf = session_id(&req).and_then(|id| guard.sessions().csrf(id, now).map(str::to_string));
    let mut resp = Json(SessionInfo { csrf }).into_response();
    assets::harden(&mut resp);
    resp
}

async fn logout(State(guard): State<Arc<Guard>>, req: Request) -> Response {
    if let Some(id) = session_id(&req) {
        guard.sessions().end(id);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie(secure(&req))) {
        resp.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    resp
}

pub(crate) fn session_id<B>(req: &axum::http::Request<B>) -> Option<&str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| session::cookie_value(v, session::COOKIE))
}
