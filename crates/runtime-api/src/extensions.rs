//! Extensions API (`/2020-01-01/extension/…`) on the runtime's listener.
//!
//! For now a stub, so external extensions can start: `register` hands out an
//! identifier (during init only) and `event/next` blocks. Lambda's full
//! behaviour (init waiting for extensions, INVOKE and SHUTDOWN events) builds
//! on the same state and routes.

use std::sync::Arc;

use http::header::HeaderName;
use http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;

use crate::errors::ApiError;
use crate::server::{api_error, drain, header_str, json, HttpResponse};
use crate::state::Shared;

const EXTENSION_ID: HeaderName = HeaderName::from_static("lambda-extension-identifier");

/// Extensions API stub: hands out an identifier so extensions can start.
/// Init does not wait for them yet, and they receive no events.
pub(crate) async fn register(shared: &Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    drain(req.into_body()).await;
    match shared.register_extension() {
        Ok(id) => {
            // Lambda fills these in; the endpoint does not know them (yet),
            // and extensions only need the identifier header to proceed.
            let body =
                serde_json::json!({ "functionName": "", "functionVersion": "", "handler": "" });
            let mut response = json(StatusCode::OK, body.to_string().into());
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(EXTENSION_ID, value);
            }
            response
        }
        Err(err) => api_error(&err),
    }
}

/// Extensions API stub: `event/next` for a registered extension blocks until
/// the endpoint goes away (INVOKE/SHUTDOWN events come later).
pub(crate) async fn event_next(shared: &Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    match header_str(req.headers(), &EXTENSION_ID) {
        None => api_error(&ApiError::ExtensionIdentifier(
            "Extension.MissingExtensionIdentifier",
        )),
        Some(id) if !shared.is_extension(id) => api_error(&ApiError::ExtensionIdentifier(
            "Extension.InvalidExtensionIdentifier",
        )),
        Some(_) => std::future::pending().await,
    }
}
