//! The JSON the dashboard's pages read: the functions table (one page of
//! it) and one function's settings, instances and last hour.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use rouse_manifest::{FunctionKind, Scaling};
use rouse_pool::metrics::history::{self, History, Slot};
use rouse_pool::Activity;
use rouse_store::FunctionRecord;
use serde::Serialize;

use super::table::{self, PageQuery, Row};
use crate::error::ApiError;
use crate::functions::{routes_by_function, summarize};
use crate::types::{FunctionSummary, RouteSummary};
use crate::AdminState;

/// The table's columns cover the last 5 minutes.
const RECENT_WINDOWS: usize = 30;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn ms(secs: Option<f64>) -> Option<f64> {
    secs.map(|s| (s * 1e5).round() / 100.0)
}

/// A function's row from its record and what the pool says it is doing.
pub(crate) fn row_of(f: &FunctionRecord, activity: Option<&Activity>) -> Row {
    let (kind, runtime) = match &f.spec.kind {
        FunctionKind::Web(_) => ("web", "web".to_string()),
        FunctionKind::Lambda(l) => ("lambda", l.runtime.clone()),
    };
    let activity = activity.cloned().unwrap_or_default();
    let recent = activity.recent.unwrap_or_default();
    let window_secs = (RECENT_WINDOWS as u64 * history::STEP_SECS) as f64;
    Row {
        name: f.name.clone(),
        service: f.service.clone(),
        stage: f.stage.clone(),
        kind,
        runtime,
        version: f.version,
        starting: activity.starting,
        busy: activity.busy,
        idle: activity.idle,
        invocations: recent.invocations.into(),
        requests_per_sec: (f64::from(recent.invocations) / window_secs * 100.0).round() / 100.0,
        errors: recent.errors.into(),
        throttles: recent.throttles.into(),
        cold_starts: recent.cold_starts.into(),
        p50_ms: ms(recent.duration_quantile(0.5)),
        p99_ms: ms(recent.duration_quantile(0.99)),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AliasView {
    name: String,
    version: u32,
    canary_version: Option<u32>,
    canary_weight: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageRow {
    #[serde(flatten)]
    row: Row,
    routes: Vec<RouteSummary>,
    aliases: Vec<AliasView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionsPage {
    /// Functions matching the filter (all pages).
    total: usize,
    offset: usize,
    limit: usize,
    window_secs: u64,
    functions: Vec<PageRow>,
}

async fn aliases_of(state: &AdminState, name: &str) -> Result<Vec<AliasView>, ApiError> {
    Ok(state
        .store
        .aliases(name)
        .await?
        .into_iter()
        .map(|a| AliasView {
            name: a.name,
            version: a.version,
            canary_version: a.canary.as_ref().map(|c| c.version),
            canary_weight: a.canary.as_ref().map(|c| c.weight),
        })
        .collect())
}

/// `GET /v1/dashboard/functions`: every function is filtered and sorted
/// (rows are small and built from memory), then routes and aliases are
/// read for the page's rows only.
pub(crate) async fn functions(
    State(state): State<Arc<AdminState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<FunctionsPage>, ApiError> {
    let query = PageQuery::parse(&params).map_err(ApiError::bad_request)?;
    let activity = state.pool.activity(unix_now(), RECENT_WINDOWS);
    let records = state.store.list_functions().await?;
    let rows: Vec<Row> = records
        .iter()
        .map(|f| row_of(f, activity.get(&f.name)))
        .collect();
    let (total, rows) = table::page(rows, &query);
    let by_name: HashMap<&str, &FunctionRecord> =
        records.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut functions = Vec::with_capacity(rows.len());
    for row in rows {
        let routes = match by_name.get(row.name.as_str()) {
            Some(record) => {
                let routes = state.store.routes_of(&row.name).await?;
                summarize(&state, record, &routes_by_function(&routes)).routes
            }
            None => Vec::new(),
        };
        let aliases = aliases_of(&state, &row.name).await?;
        functions.push(PageRow {
            row,
            routes,
            aliases,
        });
    }
    Ok(Json(FunctionsPage {
        total,
        offset: query.offset,
        limit: query.limit,
        window_secs: RECENT_WINDOWS as u64 * history::STEP_SECS,
        functions,
    }))
}

/// One 10 s window as the charts draw it.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Point {
    /// Window start, seconds since 1970.
    t: u64,
    invocations: u32,
    errors: u32,
    throttles: u32,
    cold_starts: u32,
    /// Mean init duration of the window's cold starts.
    init_ms: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    concurrency: u32,
}

pub(crate) fn point(slot: &Slot) -> Point {
    Point {
        t: slot.at,
        invocations: slot.invocations,
        errors: slot.errors,
        throttles: slot.throttles,
        cold_starts: slot.cold_starts,
        init_ms: (slot.cold_starts > 0)
            .then(|| f64::from(slot.init_ms) / f64::from(slot.cold_starts)),
        p50_ms: ms(slot.duration_quantile(0.5)),
        p99_ms: ms(slot.duration_quantile(0.99)),
        concurrency: slot.concurrency,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionView {
    #[serde(flatten)]
    summary: FunctionSummary,
    runtime: String,
    handler: Option<String>,
    memory_size: u32,
    timeout_secs: f64,
    concurrency: u32,
    scaling: Scaling,
    aliases: Vec<AliasView>,
    step_secs: u64,
    history: Vec<Point>,
}

/// `GET /v1/dashboard/functions/{name}`.
pub(crate) async fn function(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<FunctionView>, ApiError> {
    let record = state
        .store
        .get_function(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("function {name}")))?;
    let routes = state.store.routes_of(&name).await?;
    let summary = summarize(&state, &record, &routes_by_function(&routes));
    let now = unix_now();
    // A function that has done nothing since it was loaded has no ring:
    // its hour is drawn from an empty one.
    let slots = state
        .pool
        .history(&name, now, history::SLOTS)
        .unwrap_or_else(|| History::default().series(now, history::SLOTS));
    let (runtime, handler) = match &record.spec.kind {
        FunctionKind::Web(_) => ("web".to_string(), None),
        FunctionKind::Lambda(l) => (l.runtime.clone(), Some(l.handler.clone())),
    };
    Ok(Json(FunctionView {
        summary,
        runtime,
        handler,
        memory_size: record.spec.memory_size,
        timeout_secs: record.spec.timeout_secs,
        concurrency: record.spec.concurrency,
        scaling: record.spec.scaling.clone(),
        aliases: aliases_of(&state, &name).await?,
        step_secs: history::STEP_SECS,
        history: slots.iter().map(point).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_reports_means_and_quantiles_in_ms() {
        let mut h = History::default();
        h.cold_start(1000, std::time::Duration::from_millis(100));
        h.cold_start(1001, std::time::Duration::from_millis(300));
        h.invocation(1002, false, std::time::Duration::from_millis(3));
        h.invocation(1003, false, std::time::Duration::from_millis(4));
        let p = point(&h.series(1005, 1)[0]);
        assert_eq!(p.t, 1000);
        assert_eq!(p.init_ms, Some(200.0));
        assert_eq!(p.cold_starts, 2);
        // Two requests in (1 ms, 5 ms]: the median is the bucket's middle.
        assert_eq!(p.p50_ms, Some(3.0));
        let empty = point(&h.series(2000, 1)[0]);
        assert_eq!((empty.init_ms, empty.p50_ms), (None, None));
    }
}
