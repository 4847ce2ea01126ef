//! Artifact upload and deployments.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rouse_manifest::{FunctionKind, StageRouting};

use crate::apply::{self, Change, Removal, Why};
use crate::error::ApiError;
use crate::functions::{routes_by_function, summarize};
use crate::types::{ArtifactUploaded, DeployRequest, DeployResponse};
use crate::AdminState;

pub(crate) async fn upload_artifact(
    State(state): State<Arc<AdminState>>,
    body: Body,
) -> Result<(StatusCode, Json<ArtifactUploaded>), ApiError> {
    let limit = state.max_artifact_bytes;
    let (sha256, size) = crate::upload::store(state.store.clone(), body, limit).await?;
    Ok((StatusCode::CREATED, Json(ArtifactUploaded { sha256, size })))
}

/// `POST /v1/deployments`: parse → validate → store → apply.
pub(crate) async fn deploy(
    State(state): State<Arc<AdminState>>,
    body: axum::body::Bytes,
) -> Result<Json<DeployResponse>, ApiError> {
    // Parsed by hand so a bad body gets the API's JSON error, not axum's text.
    let req: DeployRequest = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("deployment request: {err}")))?;
    validate(&state, &req).await?;
    let before: BTreeSet<String> = state
        .store
        .list_functions()
        .await?
        .into_iter()
        .filter(|f| f.service == req.spec.service && f.stage == req.spec.stage)
        .map(|f| f.name)
        .collect();
    let records = state.store.deploy(&req.spec, &req.artifact).await?;
    // Extract the code now, so the first request does not pay for it.
    state.store.code_dir(&req.artifact).await?;

    let deployed: BTreeSet<&str> = records.iter().map(|r| r.name.as_str()).collect();
    let removed: Vec<String> = before
        .iter()
        .filter(|name| !deployed.contains(name.as_str()))
        .cloned()
        .collect();
    let change = Change {
        removed: &removed,
        removal: Removal::ByDeploy,
        activated: &records,
        why: Why::Deployed,
    };
    let mut warnings = crate::streams::create_missing(&state, &req.spec).await?;
    warnings.extend(apply::apply(&state, change).await?);
    let routes = state.store.routes().await?;
    let grouped = routes_by_function(&routes);
    Ok(Json(DeployResponse {
        functions: records
            .iter()
            .map(|r| summarize(&state, r, &grouped))
            .collect(),
        removed,
        warnings,
    }))
}

/// What the server checks before storing anything: the names are ones
/// the manifest would allow (they become paths), the artifact is here,
/// the stage routing fits this server, the functions keep the manifest's
/// rules (the spec may not have come from `rouse deploy`), and each
/// runtime can start on this machine (a deploy error, not a failed first
/// request).
async fn validate(state: &AdminState, req: &DeployRequest) -> Result<(), ApiError> {
    rouse_manifest::names::check_spec(&req.spec)
        .map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "InvalidName", message))?;
    if !state.store.has_artifact(&req.artifact).await? {
        return Err(ApiError::bad_request(format!(
            "artifact {} has not been uploaded",
            req.artifact
        )));
    }
    let routings: Vec<StageRouting> = req.spec.functions.iter().map(|f| f.stage_routing).collect();
    check_stage_routing(&req.spec.stage, &routings, state.domain.is_some()).map_err(|message| {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidStageRouting", message)
    })?;
    let path = std::env::var("PATH").unwrap_or_default();
    for f in &req.spec.functions {
        crate::schedules::parse(f).map_err(|message| {
            ApiError::new(StatusCode::BAD_REQUEST, "InvalidSchedule", message)
        })?;
        rouse_manifest::rules::check_function(f).map_err(|broken| {
            ApiError::new(StatusCode::BAD_REQUEST, broken.code, broken.message)
        })?;
        if let FunctionKind::Lambda(l) = &f.kind {
            rouse_pool::lambda::check_runtime(&l.runtime, &path).map_err(|message| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "UnsupportedRuntime",
                    format!("function {}: {message}", f.short_name),
                )
            })?;
        }
    }
    Ok(())
}

/// Whether this server can serve `stage` with the functions' stage routings.
fn check_stage_routing(
    stage: &str,
    routings: &[StageRouting],
    has_domain: bool,
) -> Result<(), String> {
    if routings.contains(&StageRouting::Host) && !has_domain {
        return Err(format!(
            "`stageRouting: host` serves stage {stage} on {stage}.DOMAIN, but this server has no domain: start it with `rouse serve --domain DOMAIN`, or use `stageRouting: prefix`"
        ));
    }
    if routings.contains(&StageRouting::Prefix) && stage == "urls" {
        return Err("stage `urls` cannot be served under /urls/…, where Function URLs live: pick another stage name, or `stageRouting: host`".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_routing_that_this_server_cannot_serve() {
        use StageRouting::{Host, None as Plain, Prefix};
        // (stage, routings, server has a domain, refused)
        let table: &[(&str, &[StageRouting], bool, bool)] = &[
            ("dev", &[Plain], false, false),
            ("dev", &[Host], true, false),
            ("dev", &[Plain, Host], false, true),
            ("dev", &[Prefix], false, false),
            ("urls", &[Prefix], true, true),
            ("urls", &[Host], true, false),
            ("urls", &[Plain], false, false),
        ];
        for (stage, routings, domain, refused) in table {
            let result = check_stage_routing(stage, routings, *domain);
            assert_eq!(result.is_err(), *refused, "{stage} {routings:?} {domain}");
        }
        assert!(check_stage_routing("dev", &[Host], false)
            .unwrap_err()
            .contains("serves stage dev on dev.DOMAIN"));
    }
}
