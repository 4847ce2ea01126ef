//! What the nodes of a cluster share besides the CMDB: their own rows
//! (registration and heartbeat), the change generation and its
//! notifications, and the claims that make a schedule tick fire once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::poll_fn;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use super::write::CHANNEL;
use super::Postgres;
use crate::{NodeInfo, NodeRecord, StoreError};

/// How long a claimed tick is remembered: long past any retry of it.
const TICK_MEMORY_MS: i64 = 24 * 3600 * 1000;

impl Postgres {
    /// Adds this node, or takes over the row of a node of the same name
    /// (the same node restarted: a node keeps its name, not its id).
    pub(crate) async fn register_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO nodes (name, id, gateway, admin, version, started_at, heartbeat_at, internal)
                 VALUES ($1, $2, $3, $4, $5, $6, now(), $7)
                 ON CONFLICT (name) DO UPDATE SET id = excluded.id, gateway = excluded.gateway,
                   admin = excluded.admin, version = excluded.version, internal = excluded.internal,
                   started_at = excluded.started_at, heartbeat_at = now()",
                &[
                    &node.name,
                    &node.id,
                    &node.gateway,
                    &node.admin,
                    &node.version,
                    &node.started_at,
                    &node.internal,
                ],
            )
            .await?;
        Ok(())
    }

    /// `false` when the row is no longer this node's (another node took
    /// its name): the caller registers again, loudly.
    pub(crate) async fn heartbeat(&self, node: &NodeInfo) -> Result<bool, StoreError> {
        let updated = self
            .client()
            .await?
            .execute(
                "UPDATE nodes SET heartbeat_at = now() WHERE name = $1 AND id = $2",
                &[&node.name, &node.id],
            )
            .await?;
        Ok(updated == 1)
    }

    /// A node leaving cleanly: its row says so at once instead of after the TTL.
    pub(crate) async fn deregister_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE nodes SET heartbeat_at = 'epoch' WHERE name = $1 AND id = $2",
                &[&node.name, &node.id],
            )
            .await?;
        Ok(())
    }

    /// Every node with the age of its last heartbeat on the database's
    /// clock, so nodes whose clocks disagree still agree on who is alive.
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT name, id, gateway, admin, version, started_at,
                   (EXTRACT(EPOCH FROM (now() - heartbeat_at)) * 1000)::BIGINT,
                   internal, draining
                 FROM nodes ORDER BY name",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let age_ms: i64 = row.try_get(6)?;
                Ok(NodeRecord {
                    info: NodeInfo {
                        name: row.try_get(0)?,
                        id: row.try_get(1)?,
                        gateway: row.try_get(2)?,
                        admin: row.try_get(3)?,
                        version: row.try_get(4)?,
                        started_at: row.try_get(5)?,
                        internal: row.try_get(7)?,
                    },
                    heartbeat_age: Duration::from_millis(u64::try_from(age_ms).unwrap_or(0)),
                    draining: row.try_get(8)?,
                })
            })
            .collect()
    }

    pub(crate) async fn generation(&self) -> Result<i64, StoreError> {
        Ok(self
            .client()
            .await?
            .query_one("SELECT value FROM generation", &[])
            .await?
            .get(0))
    }

    /// `true` for exactly one caller per (schedule, tick) in the cluster.
    pub(crate) async fn claim_tick(
        &self,
        schedule: &str,
        tick_ms: i64,
        node: &str,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let won = client
            .execute(
                "INSERT INTO schedule_ticks (schedule, tick, node) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&schedule, &tick_ms, &node],
            )
            .await?
            == 1;
        if won {
            client
                .execute(
                    "DELETE FROM schedule_ticks WHERE schedule = $1 AND tick < $2",
                    &[&schedule, &(tick_ms - TICK_MEMORY_MS)],
                )
                .await?;
        }
        Ok(won)
    }

    /// Listens for change notifications on a connection of its own (a
    /// pooled one would be recycled) and wakes `hint` for each; returns
    /// when the connection ends. Notifications only arrive while the
    /// connection is polled, so the poll loop is the task itself.
    pub(crate) async fn listen(&self, hint: Arc<Notify>) -> Result<(), StoreError> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let sql = format!("LISTEN {CHANNEL}");
        let listen = client.batch_execute(&sql);
        tokio::pin!(listen);
        let mut listening = false;
        loop {
            tokio::select! {
                done = &mut listen, if !listening => {
                    done?;
                    listening = true;
                    // Whatever changed before LISTEN took effect is caught by
                    // the caller's poll; one wake-up makes it look now.
                    hint.notify_one();
                }
                message = poll_fn(|cx| connection.poll_message(cx)) => match message {
                    Some(Ok(AsyncMessage::Notification(_))) => hint.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
            }
        }
    }
}
