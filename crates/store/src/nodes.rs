//! The cluster side of [`Store`]: node rows, the change generation and its
//! notifications, schedule-tick claims. On SQLite (one node) each is the
//! trivial answer.

use std::sync::Arc;

use crate::store::Engine;
use crate::{NodeInfo, NodeRecord, Store, StoreError};

impl Store {
    /// Registers this node (PostgreSQL only; a single node has no row).
    pub async fn register_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Ok(()),
            Engine::Postgres(pg) => pg.register_node(node).await,
        }
    }

    /// Refreshes this node's row; `false` if another node took its name.
    pub async fn heartbeat(&self, node: &NodeInfo) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Ok(true),
            Engine::Postgres(pg) => pg.heartbeat(node).await,
        }
    }

    /// Marks this node gone (a clean stop), so it shows dead at once.
    pub async fn deregister_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Ok(()),
            Engine::Postgres(pg) => pg.deregister_node(node).await,
        }
    }

    /// The cluster's nodes by name (empty on SQLite).
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Ok(Vec::new()),
            Engine::Postgres(pg) => pg.nodes().await,
        }
    }

    /// Bumped by every change nodes must pick up (deploy, removal, new
    /// version, alias), in the transaction of the change. Always 0 on
    /// SQLite, where the one node applies its own changes.
    pub async fn generation(&self) -> Result<i64, StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Ok(0),
            Engine::Postgres(pg) => pg.generation().await,
        }
    }

    /// Wakes `hint` whenever another node may have changed the store, until
    /// the listening connection drops (then returns; callers listen again).
    /// A hint only: callers compare [`Store::generation`]. On SQLite there
    /// is nothing to hear and it never returns.
    pub async fn listen(&self, hint: Arc<tokio::sync::Notify>) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => std::future::pending().await,
            Engine::Postgres(pg) => pg.listen(hint).await,
        }
    }

    /// Claims one tick of a schedule for `node`: `true` for exactly one
    /// claimant in the cluster (always `true` on SQLite).
    pub async fn claim_tick(
        &self,
        schedule: &str,
        tick_ms: i64,
        node: &str,
    ) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Ok(true),
            Engine::Postgres(pg) => pg.claim_tick(schedule, tick_ms, node).await,
        }
    }
}
