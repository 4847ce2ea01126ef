//! Aliases: `live`, `canary`, … pointing at a version, optionally sharing
//! requests with a second version by weight. HTTP routes serve `live`; the
//! Invoke API serves any alias named as its qualifier.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rouse_store::{AliasRecord, Canary};

use crate::apply::apply_aliases;
use crate::error::ApiError;
use crate::types::{AliasSummary, CanarySummary, SetAliasRequest};
use crate::AdminState;

pub(crate) async fn list(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<AliasSummary>>, ApiError> {
    exists(&state, &name).await?;
    Ok(Json(
        state
            .store
            .aliases(&name)
            .await?
            .iter()
            .map(summary)
            .collect(),
    ))
}

pub(crate) async fn set(
    State(state): State<Arc<AdminState>>,
    Path((name, alias)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<AliasSummary>, ApiError> {
    exists(&state, &name).await?;
    let req: SetAliasRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("alias request: {e}")))?;
    let canary = req.canary.map(|c| Canary {
        version: c.version,
        weight: c.weight,
    });
    let record = state
        .store
        .set_alias(&name, &alias, req.version, canary)
        .await?;
    let target = match record.canary {
        Some(c) => format!(
            "version {} and version {} for {:.0}% of requests",
            record.version,
            c.version,
            c.weight * 100.0
        ),
        None => format!("version {}", record.version),
    };
    apply_aliases(&state, &name, &format!("alias {alias} now serves {target}")).await?;
    Ok(Json(summary(&record)))
}

pub(crate) async fn remove(
    State(state): State<Arc<AdminState>>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    exists(&state, &name).await?;
    if !state.store.remove_alias(&name, &alias).await? {
        return Err(ApiError::not_found(format!(
            "alias {alias} of function {name}"
        )));
    }
    apply_aliases(&state, &name, &format!("alias {alias} removed")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn exists(state: &AdminState, name: &str) -> Result<(), ApiError> {
    match state.store.get_function(name).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!("function {name}"))),
    }
}

fn summary(record: &AliasRecord) -> AliasSummary {
    AliasSummary {
        name: record.name.clone(),
        version: record.version,
        canary: record.canary.map(|c| CanarySummary {
            version: c.version,
            weight: c.weight,
        }),
        updated_at: record.updated_at,
    }
}
