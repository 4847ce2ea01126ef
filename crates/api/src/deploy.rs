//! Artifact upload and deployments.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rouse_manifest::FunctionKind;

use crate::error::ApiError;
use crate::functions::{routes_by_function, summarize};
use crate::types::{ArtifactUploaded, DeployRequest, DeployResponse};
use crate::AdminState;

pub async fn upload_artifact(
    State(state): State<Arc<AdminState>>,
    body: Body,
) -> Result<(StatusCode, Json<ArtifactUploaded>), ApiError> {
    let limit = state.max_artifact_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large = std::error::Error::source(&err)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                format!("artifacts are limited to {limit} bytes"),
            )
        } else {
            ApiError::bad_request(format!("reading the upload: {err}"))
        }
    })?;
    let size = bytes.len() as u64;
    let sha256 = state
        .store
        .put_artifact(std::io::Cursor::new(bytes))
        .await?;
    Ok((StatusCode::CREATED, Json(ArtifactUploaded { sha256, size })))
}

pub async fn deploy(
    State(state): State<Arc<AdminState>>,
    body: axum::body::Bytes,
) -> Result<Json<DeployResponse>, ApiError> {
    // Parsed by hand so a bad body gets the API's JSON error, not axum's text.
    let req: DeployRequest = serde_json::from_slice(&body)
        .map_err(|err| ApiError::bad_request(format!("deployment request: {err}")))?;
    if !state.store.has_artifact(&req.artifact).await? {
        return Err(ApiError::bad_request(format!(
            "artifact {} has not been uploaded",
            req.artifact
        )));
    }
    let host_routed = req
        .spec
        .functions
        .iter()
        .any(|f| f.stage_routing == rouse_manifest::StageRouting::Host);
    if host_routed && state.domain.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidStageRouting",
            format!(
                "`stageRouting: host` serves stage {} on {}.DOMAIN, but this server has no domain: start it with `rouse serve --domain DOMAIN`, or use `stageRouting: prefix`",
                req.spec.stage, req.spec.stage
            ),
        ));
    }
    let prefixed = req
        .spec
        .functions
        .iter()
        .any(|f| f.stage_routing == rouse_manifest::StageRouting::Prefix);
    if prefixed && req.spec.stage == "urls" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidStageRouting",
            "stage `urls` cannot be served under /urls/…, where Function URLs live: pick another stage name, or `stageRouting: host`",
        ));
    }
    // A runtime that cannot start here is a deploy error, not a failed
    // first request.
    let path = std::env::var("PATH").unwrap_or_default();
    for f in &req.spec.functions {
        crate::schedules::parse(f).map_err(|message| {
            ApiError::new(StatusCode::BAD_REQUEST, "InvalidSchedule", message)
        })?;
        let scheduled = f
            .events
            .iter()
            .any(|e| matches!(e, rouse_manifest::Event::Schedule { .. }));
        if scheduled && matches!(f.kind, FunctionKind::Web(_)) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidSchedule",
                format!(
                    "function {}: schedules need a lambda function (a handler receives the scheduled event)",
                    f.short_name
                ),
            ));
        }
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
    for name in &removed {
        state.scheduler.remove_function(name);
        state.pool.remove(name);
        state.logs.platform(name, "function removed by deploy");
    }
    state.gateway.reload_routes().await?;
    // Each function's new version is live (or known broken) before the
    // deploy answers, so the next request after `rouse deploy` sees it.
    let mut warnings = Vec::new();
    for record in &records {
        crate::schedules::sync(&state.scheduler, record);
        state.logs.platform(
            &record.name,
            &format!(
                "deployed version {} (artifact {})",
                record.version,
                &record.artifact[..12.min(record.artifact.len())]
            ),
        );
        if let Err(err) = state.pool.reload_and_wait(&record.name).await {
            warnings.push(format!(
                "{}: version {} did not start, warm instances of the previous version keep serving: {err}",
                record.name, record.version
            ));
        }
    }
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
