//! `GET /v1/nodes`: the nodes sharing this store, alive or dead.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use rouse_store::{node_state, NodeInfo, NodeState, NODE_TTL};

use crate::error::ApiError;
use crate::types::NodeSummary;
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
                summary(
                    &r.info,
                    &state.node,
                    age,
                    node_state(r.heartbeat_age, NODE_TTL),
                )
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
        version: node.version.clone(),
        started_at: node.started_at,
        heartbeat_age_ms: age_ms,
        this: node.id == this.id,
    }
}
