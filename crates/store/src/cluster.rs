//! Nodes of a cluster as the store records them, and the one decision about
//! them: alive or dead, from the age of the last heartbeat.

use std::time::Duration;

use serde::Serialize;

/// A node is dead once its last heartbeat is older than this.
pub const NODE_TTL: Duration = Duration::from_secs(10);
/// How often a node refreshes its row: several beats fit in the TTL, so a
/// slow query or two does not make a live node look dead.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// What a node says about itself when it registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// Unique per start of a node.
    pub id: String,
    /// Stable across restarts (`--node-name`, default host name and port).
    pub name: String,
    /// Addresses as the node listens on them.
    pub gateway: String,
    pub admin: String,
    /// The internal listener other nodes forward requests to (signed).
    pub internal: String,
    /// rouse's version.
    pub version: String,
    /// Unix seconds.
    pub started_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub info: NodeInfo,
    /// Since the last heartbeat, on the database's clock.
    pub heartbeat_age: Duration,
    /// `rouse node drain`: placement skips it; it still answers what it gets.
    pub draining: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeState {
    Alive,
    Dead,
}

/// Alive while the last heartbeat is younger than `ttl`.
pub fn node_state(heartbeat_age: Duration, ttl: Duration) -> NodeState {
    if heartbeat_age < ttl {
        NodeState::Alive
    } else {
        NodeState::Dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_dead_once_its_heartbeat_is_as_old_as_the_ttl() {
        let ttl = Duration::from_secs(10);
        for (age_ms, state) in [
            (0, NodeState::Alive),
            (2_000, NodeState::Alive),
            (9_999, NodeState::Alive),
            (10_000, NodeState::Dead),
            (60_000, NodeState::Dead),
        ] {
            assert_eq!(
                node_state(Duration::from_millis(age_ms), ttl),
                state,
                "{age_ms}"
            );
        }
    }
}
