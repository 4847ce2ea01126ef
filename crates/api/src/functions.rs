//! Listing, showing and removing functions.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use rouse_manifest::{FunctionKind, StageRouting};
use rouse_store::{FunctionRecord, RouteRecord};

use crate::apply::{self, Change, Removal};
use crate::error::ApiError;
use serde::Deserialize;

use crate::types::{FunctionPage, FunctionSummary, Health, InstanceSummary, RouteSummary};
use crate::AdminState;

pub(crate) async fn health(State(state): State<Arc<AdminState>>) -> Result<Json<Health>, ApiError> {
    Ok(Json(Health {
        status: "ok".into(),
        functions: state.store.count_functions().await?,
        instances: state.pool.live_instances(),
    }))
}

/// Functions on one page when the caller does not say.
pub(crate) const DEFAULT_PAGE: usize = 100;
/// The largest page one call may ask for.
pub(crate) const MAX_PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    /// Functions per page (1 to [`MAX_PAGE`]); a string, so that a bad
    /// value gets this API's JSON error rather than the extractor's.
    limit: Option<String>,
    /// The `next` of the previous page: list names after this one.
    after: Option<String>,
}

/// One page of functions by name. Reads only that page (and its routes)
/// from the store, so listing stays cheap with thousands deployed.
pub(crate) async fn list(
    State(state): State<Arc<AdminState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<FunctionPage>, ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`limit` must be a whole number from 1 to {MAX_PAGE}, found {text:?}"
                ))
            })?,
    };
    // One more than asked tells whether another page follows.
    let mut functions = state
        .store
        .list_functions_page(query.after.as_deref(), limit + 1)
        .await?;
    let next = if functions.len() > limit {
        functions.truncate(limit);
        functions.last().map(|f| f.name.clone())
    } else {
        None
    };
    let mut summaries = Vec::with_capacity(functions.len());
    for f in &functions {
        let routes = state.store.routes_of(&f.name).await?;
        let grouped = routes_by_function(&routes);
        summaries.push(summarize(&state, f, &grouped));
    }
    Ok(Json(FunctionPage {
        functions: summaries,
        next,
    }))
}

pub(crate) async fn show(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<FunctionSummary>, ApiError> {
    let function = state
        .store
        .get_function(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("function {name}")))?;
    let routes = state.store.routes().await?;
    Ok(Json(summarize(
        &state,
        &function,
        &routes_by_function(&routes),
    )))
}

pub(crate) async fn remove(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.remove_function(&name).await? {
        return Err(ApiError::not_found(format!("function {name}")));
    }
    let change = Change::removal(std::slice::from_ref(&name), Removal::Removed);
    apply::apply(&state, change).await?;
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
                requests: i.requests,
                memory_mb: i.memory_mb,
            })
            .collect(),
        updated_at: f.updated_at,
    }
}
