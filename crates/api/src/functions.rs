//! Listing, showing and removing functions.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use rouse_manifest::{FunctionKind, StageRouting};
use rouse_store::{FunctionRecord, RouteRecord};

use crate::error::ApiError;
use crate::types::{FunctionSummary, Health, InstanceSummary, RouteSummary};
use crate::AdminState;

pub async fn health(State(state): State<Arc<AdminState>>) -> Result<Json<Health>, ApiError> {
    Ok(Json(Health {
        status: "ok".into(),
        functions: state.store.list_functions()?.len(),
        instances: state.pool.live_instances(),
    }))
}

pub async fn list(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<Vec<FunctionSummary>>, ApiError> {
    let routes = state.store.routes()?;
    let grouped = routes_by_function(&routes);
    let functions = state.store.list_functions()?;
    Ok(Json(
        functions
            .iter()
            .map(|f| summarize(&state, f, &grouped))
            .collect(),
    ))
}

pub async fn show(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<FunctionSummary>, ApiError> {
    let function = state
        .store
        .get_function(&name)?
        .ok_or_else(|| ApiError::not_found(format!("function {name}")))?;
    let routes = state.store.routes()?;
    Ok(Json(summarize(
        &state,
        &function,
        &routes_by_function(&routes),
    )))
}

pub async fn remove(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.remove_function(&name)? {
        return Err(ApiError::not_found(format!("function {name}")));
    }
    state.scheduler.remove_function(&name);
    state.pool.remove(&name);
    state.gateway.reload_routes()?;
    state.logs.platform(&name, "function removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Routes by the function they belong to, so summarizing many functions
/// does not scan every route once per function.
pub(crate) type RoutesByFunction<'r> = HashMap<&'r str, Vec<&'r RouteRecord>>;

pub(crate) fn routes_by_function(routes: &[RouteRecord]) -> RoutesByFunction<'_> {
    let mut grouped: RoutesByFunction<'_> = HashMap::new();
    for route in routes {
        grouped
            .entry(route.function.as_str())
            .or_default()
            .push(route);
    }
    grouped
}

/// `:8080` of the public URL, or nothing.
fn public_port(state: &AdminState) -> String {
    state
        .public_url
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default()
}

/// Where a route answers, with its stage's prefix or host.
fn route_url(state: &AdminState, stage: &str, route: &RouteRecord) -> String {
    match (route.stage_routing, &state.domain) {
        (StageRouting::Prefix, _) => format!("{}/{stage}{}", state.public_url, route.path),
        (StageRouting::Host, Some(domain)) => {
            format!(
                "http://{stage}.{domain}{}{}",
                public_port(state),
                route.path
            )
        }
        _ => format!("{}{}", state.public_url, route.path),
    }
}

pub(crate) fn summarize(
    state: &AdminState,
    f: &FunctionRecord,
    routes: &RoutesByFunction<'_>,
) -> FunctionSummary {
    let mut route_summaries: Vec<RouteSummary> = routes
        .get(f.name.as_str())
        .into_iter()
        .flatten()
        .map(|r| RouteSummary {
            method: r.method.clone(),
            path: r.path.clone(),
            url: route_url(state, &f.stage, r),
        })
        .collect();
    if let Some(domain) = &state.domain {
        let port = public_port(state);
        route_summaries.push(RouteSummary {
            method: "ANY".into(),
            path: "/".into(),
            url: format!("http://{}.{domain}{port}/", f.name),
        });
    }
    FunctionSummary {
        name: f.name.clone(),
        service: f.service.clone(),
        stage: f.stage.clone(),
        version: f.version,
        kind: match f.spec.kind {
            FunctionKind::Web(_) => "web",
            FunctionKind::Lambda(_) => "lambda",
        }
        .into(),
        routes: route_summaries,
        instances: state
            .pool
            .instances(&f.name)
            .into_iter()
            .map(|i| InstanceSummary {
                id: i.id,
                pid: i.pid,
                port: i.port,
                version: i.version,
                state: i.state.into(),
                in_flight: i.in_flight,
                age_secs: i.age_secs,
            })
            .collect(),
        updated_at: f.updated_at,
    }
}
