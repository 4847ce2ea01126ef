//! Access keys for the AWS-compatible APIs (`rouse keys`). The secret is
//! in the response to the create call only.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::error::ApiError;
use crate::types::{AccessKeySummary, CreateKeyRequest, CreatedKey};
use crate::AdminState;

/// Longest description kept.
const MAX_DESCRIPTION: usize = 256;

pub(crate) async fn create(
    State(state): State<Arc<AdminState>>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let req: CreateKeyRequest = if body.is_empty() {
        CreateKeyRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("key request: {e}")))?
    };
    let description = req.description.unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION || description.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "a key description is at most {MAX_DESCRIPTION} characters, without control characters"
        )));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let made = state.store.create_access_key(&description, now).await?;
    tracing::info!(id = %made.record.id, "access key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            access_key_id: made.record.id,
            secret_access_key: made.secret,
            description: made.record.description,
            created_at: made.record.created_at,
        }),
    ))
}

pub(crate) async fn list(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<Vec<AccessKeySummary>>, ApiError> {
    Ok(Json(
        state
            .store
            .list_access_keys()
            .await?
            .into_iter()
            .map(|k| AccessKeySummary {
                access_key_id: k.id,
                description: k.description,
                created_at: k.created_at,
                last_used_at: k.last_used_at,
            })
            .collect(),
    ))
}

pub(crate) async fn remove(
    State(state): State<Arc<AdminState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.store.remove_access_key(&id).await? {
        tracing::info!(%id, "access key removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("access key {id}")))
    }
}
