//! Admin API errors: always JSON `{"error": {"code", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rouse_store::StoreError;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{what} not found"),
        )
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub(crate) fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!("admin API internal error: {message}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal",
            message.to_string(),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::RouteConflict { .. } | StoreError::StageRouteConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "RouteConflict", err.to_string())
            }
            StoreError::FunctionConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "FunctionConflict", err.to_string())
            }
            StoreError::UnknownFunction(_) | StoreError::UnknownVersion { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "NotFound", err.to_string())
            }
            StoreError::InvalidAlias(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidAlias", err.to_string())
            }
            StoreError::InvalidSpec(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "InvalidSpec", err.to_string())
            }
            StoreError::UnknownArtifact(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "UnknownArtifact", err.to_string())
            }
            StoreError::Archive(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "BadArchive", err.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        (self.status, Json(body)).into_response()
    }
}
