//! `GET /v1/nodes`: the nodes sharing this store, alive or dead.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use rouse_store::{node_state, NodeInfo, NodeState, NODE_TTL};

use crate::error::ApiError;
use crate::types::{DrainBody, NodeSummary};
use crate::AdminState;

pub(crate) async fn list(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<Vec<NodeSummary>>, ApiError> {
    let records = state.store.nodes().await?;
    if records.is_empty() {
        // SQLite: this node is the whole cluster.
        return Ok(Json(vec![summary(
            &state.node,
            &state.node,
            0,
            NodeState::Alive,
        )]));
    }
    Ok(Json(
        records
            .iter()
            .map(|r| {
                let age = u64::try_from(r.heartbeat_age.as_millis()).unwrap_or(u64::MAX);
                let mut node = summary(
                    &r.info,
                    &state.node,
                    age,
                    node_state(r.heartbeat_age, NODE_TTL),
                );
                if r.draining && node.state == "alive" {
                    node.state = "draining".into();
                }
                node
            })
            .collect(),
    ))
}

fn summary(node: &NodeInfo, this: &NodeInfo, age_ms: u64, state: NodeState) -> NodeSummary {
    NodeSummary {
        name: node.name.clone(),
        id: node.id.clone(),
        state: match state {
            NodeState::Alive => "alive",
            NodeState::Dead => "dead",
        }
        .into(),
        gateway: node.gateway.clone(),
        admin: node.admin.clone(),
        internal: node.internal.clone(),
        version: node.version.clone(),
        started_at: node.started_at,
        heartbeat_age_ms: age_ms,
        this: node.id == this.id,
    }
}

/// `POST /v1/nodes/{name}/drain`: placement skips a draining node, so its
/// functions move to others and its instances stop; `{"draining": false}`
/// undoes it.
pub(crate) async fn drain(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    Json(body): Json<DrainBody>,
) -> Result<Json<NodeSummary>, ApiError> {
    if !state.store.set_node_draining(&name, body.draining).await? {
        return Err(ApiError::not_found(format!("node {name}")));
    }
    let Json(nodes) = list(State(state)).await?;
    nodes
        .into_iter()
        .find(|n| n.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("node {name}")))
}
