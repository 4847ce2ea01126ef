//! Placement as the store keeps it (PostgreSQL only: a single node serves
//! everything itself) and node draining. The decision made from it is
//! [`crate::placement::home_nodes`].

use std::collections::HashMap;

use crate::store::Engine;
use crate::{Store, StoreError};

impl Store {
    /// Pinned nodes by function; a function not listed is placed automatically.
    pub async fn placements(&self) -> Result<HashMap<String, Vec<String>>, StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Ok(HashMap::new()),
            Engine::Postgres(pg) => Ok(pg.placements().await?.into_iter().collect()),
        }
    }

    /// Pins `function` to `nodes` (`None`: automatic again).
    pub async fn set_placement(
        &self,
        function: &str,
        nodes: Option<&[String]>,
    ) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Err(StoreError::Config(NOT_A_CLUSTER.into())),
            Engine::Postgres(pg) => match pg.set_placement(function, nodes).await? {
                true => Ok(()),
                false => Err(StoreError::UnknownFunction(function.to_string())),
            },
        }
    }

    /// Marks a node draining (or not); `false` when there is no such node.
    pub async fn set_node_draining(&self, node: &str, draining: bool) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Err(StoreError::Config(NOT_A_CLUSTER.into())),
            Engine::Postgres(pg) => pg.set_draining(node, draining).await,
        }
    }
}

const NOT_A_CLUSTER: &str =
    "placement needs a cluster: this server runs on SQLite, a single node that serves every function (see --store postgres://)";
