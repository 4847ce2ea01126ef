//! Aliases: `live`, `canary`, … pointing at a version, optionally sharing
//! requests with a second version by weight. HTTP routes serve `live`; the
//! Invoke API serves any alias named as its qualifier.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rouse_store::{AliasRecord, Canary};

use crate::error::ApiError;
use crate::types::{AliasSummary, CanarySummary, SetAliasRequest};
use crate::AdminState;

pub async fn list(
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

pub async fn set(
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
    state.gateway.reload_routes().await?;
    drain_unaliased(&state, &name).await?;
    let target = match record.canary {
        Some(c) => format!(
            "version {} and version {} for {:.0}% of requests",
            record.version,
            c.version,
            c.weight * 100.0
        ),
        None => format!("version {}", record.version),
    };
    state
        .logs
        .platform(&name, &format!("alias {alias} now serves {target}"));
    Ok(Json(summary(&record)))
}

pub async fn remove(
    State(state): State<Arc<AdminState>>,
    Path((name, alias)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    exists(&state, &name).await?;
    if !state.store.remove_alias(&name, &alias).await? {
        return Err(ApiError::not_found(format!(
            "alias {alias} of function {name}"
        )));
    }
    state.gateway.reload_routes().await?;
    drain_unaliased(&state, &name).await?;
    state
        .logs
        .platform(&name, &format!("alias {alias} removed"));
    Ok(StatusCode::NO_CONTENT)
}

/// Stops the instances of older versions that no alias serves any more.
async fn drain_unaliased(state: &AdminState, name: &str) -> Result<(), ApiError> {
    let keep: Vec<u32> = state
        .store
        .aliases(name)
        .await?
        .iter()
        .flat_map(|a| std::iter::once(a.version).chain(a.canary.map(|c| c.version)))
        .collect();
    state.pool.drain_versions_except(name, &keep);
    Ok(())
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
