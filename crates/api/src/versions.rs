//! Changes that make a new version without new code: environment edits and
//! rollbacks. Warm instances are replaced the same way a deploy replaces
//! them (the new version starts, then the old drains).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use rouse_store::FunctionRecord;
use serde::Deserialize;

use crate::apply::{self, Change, Why};
use crate::error::ApiError;
use crate::functions::{routes_by_function, summarize};
use crate::types::{EnvResponse, FunctionSummary, VersionSummary};
use crate::AdminState;

pub(crate) async fn list(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<VersionSummary>>, ApiError> {
    let current = current(&state, &name).await?;
    let versions = state.store.versions(&name).await?;
    Ok(Json(
        versions
            .into_iter()
            .map(|v| VersionSummary {
                current: v.version == current.version,
                version: v.version,
                artifact: v.artifact,
                created_at: v.created_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize, Default)]
pub(crate) struct RollbackRequest {
    #[serde(default)]
    to: Option<u32>,
}

pub(crate) async fn rollback(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<FunctionSummary>, ApiError> {
    current(&state, &name).await?;
    let req: RollbackRequest = if body.is_empty() {
        RollbackRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("rollback request: {e}")))?
    };
    let record = state.store.rollback(&name, req.to).await?;
    apply::apply(
        &state,
        Change::activation(std::slice::from_ref(&record), Why::RolledBack),
    )
    .await?;
    let routes = state.store.routes().await?;
    let grouped = routes_by_function(&routes);
    Ok(Json(summarize(&state, &record, &grouped)))
}

pub(crate) async fn env(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<EnvResponse>, ApiError> {
    let record = current(&state, &name).await?;
    Ok(Json(EnvResponse {
        version: record.version,
        environment: record.spec.environment,
    }))
}

#[derive(Deserialize)]
pub(crate) struct EnvChange {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    unset: Vec<String>,
}

pub(crate) async fn change_env(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<EnvResponse>, ApiError> {
    let change: EnvChange = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("environment change: {e}")))?;
    if let Some(bad) = change
        .set
        .keys()
        .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
    {
        return Err(ApiError::bad_request(format!(
            "{bad:?} is not a valid variable name"
        )));
    }
    let mut spec = current(&state, &name).await?.spec;
    for key in &change.unset {
        spec.environment.remove(key);
    }
    spec.environment.extend(change.set);
    let record = state.store.update_spec(&spec).await?;
    apply::apply(
        &state,
        Change::activation(std::slice::from_ref(&record), Why::EnvironmentChanged),
    )
    .await?;
    Ok(Json(EnvResponse {
        version: record.version,
        environment: record.spec.environment,
    }))
}

async fn current(state: &AdminState, name: &str) -> Result<FunctionRecord, ApiError> {
    state
        .store
        .get_function(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("function {name}")))
}
