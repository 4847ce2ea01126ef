//! `GET`/`PUT /v1/functions/{name}/placement`: which nodes serve a function
//! (cluster only). The row is the same one an `UPDATE placements` in psql
//! changes; every node applies either within a second.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use crate::error::ApiError;
use crate::types::{PlacementBody, PlacementSummary};
use crate::AdminState;

pub(crate) async fn show(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<PlacementSummary>, ApiError> {
    let record = state
        .store
        .get_function(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("function {name}")))?;
    let pinned = state
        .store
        .placements()
        .await?
        .remove(&record.name)
        .unwrap_or_default();
    Ok(Json(PlacementSummary {
        homes: state.gateway.homes(&record.name),
        function: record.name,
        pinned,
    }))
}

pub(crate) async fn set(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    Json(body): Json<PlacementBody>,
) -> Result<Json<PlacementSummary>, ApiError> {
    if !state.store.is_shared() {
        return Err(ApiError::bad_request(
            "placement needs a cluster: this server runs on SQLite, a single node that serves every function (start the nodes with --store postgres://…)",
        ));
    }
    let record = state
        .store
        .get_function(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("function {name}")))?;
    let nodes = pins(body.nodes, &state.store.nodes().await?)?;
    state
        .store
        .set_placement(&record.name, nodes.as_deref())
        .await?;
    // Applied here at once; other nodes within a second (the change bumps
    // the generation they watch).
    crate::cluster::refresh_placement(&state).await?;
    show(State(state), Path(record.name)).await
}

/// The pins asked for, checked: names of known nodes, no repeats; empty
/// means automatic (`None`).
fn pins(
    asked: Option<Vec<String>>,
    known: &[rouse_store::NodeRecord],
) -> Result<Option<Vec<String>>, ApiError> {
    let asked: Vec<String> = asked
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.trim().to_string())
        .collect();
    if asked.is_empty() {
        return Ok(None);
    }
    let mut seen = Vec::new();
    for name in asked {
        if name.is_empty() {
            return Err(ApiError::bad_request("an empty node name"));
        }
        if !known.iter().any(|n| n.info.name == name) {
            return Err(ApiError::bad_request(format!(
                "no node is named {name:?} (`rouse nodes` lists them)"
            )));
        }
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    Ok(Some(seen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rouse_store::{NodeInfo, NodeRecord};

    fn node(name: &str) -> NodeRecord {
        NodeRecord {
            info: NodeInfo {
                id: format!("id-{name}"),
                name: name.into(),
                gateway: String::new(),
                admin: String::new(),
                internal: String::new(),
                version: String::new(),
                started_at: 0,
            },
            heartbeat_age: std::time::Duration::ZERO,
            draining: false,
        }
    }

    #[test]
    fn pins_name_known_nodes_once() {
        let known = [node("a"), node("b")];
        let ok = |asked: &[&str]| {
            pins(Some(asked.iter().map(|s| s.to_string()).collect()), &known).map_err(|e| e.message)
        };
        assert_eq!(
            ok(&[" b", "a", "b"]),
            Ok(Some(vec!["b".into(), "a".into()]))
        );
        assert_eq!(ok(&[]), Ok(None));
        assert_eq!(pins(None, &known).map_err(|e| e.message), Ok(None));
        assert!(ok(&["c"]).unwrap_err().contains("no node is named \"c\""));
        assert!(ok(&["a", " "]).unwrap_err().contains("empty node name"));
    }
}
