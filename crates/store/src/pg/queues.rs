//! Queues on PostgreSQL (the contract is `crate::queues`; the SQLite twin
//! is `db/queues.rs`). A receive locks the rows it takes with
//! `FOR UPDATE SKIP LOCKED`, so nodes receiving from one queue at once
//! skip each other's messages instead of waiting on them or taking them
//! twice.

use tokio_postgres::Row;

use super::Postgres;
use crate::queues::{
    self, Created, NewMessage, QueueAttributes, QueueCounts, QueueInfo, QueueMessage, Received,
    Redrive,
};
use crate::StoreError;

/// The schema step that adds queues (appended to `pg::schema`).
pub(crate) const MIGRATION: &str = "CREATE TABLE queues (
        name               TEXT PRIMARY KEY,
        visibility_timeout BIGINT NOT NULL,
        retention          BIGINT NOT NULL,
        delay              BIGINT NOT NULL,
        receive_wait       BIGINT NOT NULL,
        max_message_size   BIGINT NOT NULL,
        dead_letter_queue  TEXT,
        max_receive_count  BIGINT,
        created_at         BIGINT NOT NULL,
        updated_at         BIGINT NOT NULL
    );
    CREATE TABLE queue_messages (
        seq               BIGSERIAL PRIMARY KEY,
        queue             TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
        id                TEXT NOT NULL,
        body              TEXT NOT NULL,
        attributes        TEXT NOT NULL,
        md5_of_body       TEXT NOT NULL,
        md5_of_attributes TEXT,
        sender            TEXT NOT NULL,
        sent_at           BIGINT NOT NULL,
        visible_at        BIGINT NOT NULL,
        receive_count     BIGINT NOT NULL DEFAULT 0,
        first_received_at BIGINT,
        receipt           TEXT
    );
    CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at);
    CREATE UNIQUE INDEX queue_messages_receipt ON queue_messages (receipt);";

const QUEUE_COLUMNS: &str = "name, visibility_timeout, retention, delay, receive_wait,
    max_message_size, dead_letter_queue, max_receive_count, created_at, updated_at";

fn small(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn info(row: &Row) -> Result<QueueInfo, StoreError> {
    let dlq: Option<String> = row.try_get(6)?;
    let max: Option<i64> = row.try_get(7)?;
    Ok(QueueInfo {
        name: row.try_get(0)?,
        attributes: QueueAttributes {
            visibility_timeout_secs: small(row.try_get(1)?),
            retention_secs: small(row.try_get(2)?),
            delay_secs: small(row.try_get(3)?),
            receive_wait_secs: small(row.try_get(4)?),
            maximum_message_size: small(row.try_get(5)?),
            redrive: dlq.zip(max).map(|(dead_letter_queue, max)| Redrive {
                dead_letter_queue,
                max_receive_count: small(max),
            }),
        },
        created_at_ms: row.try_get(8)?,
        updated_at_ms: row.try_get(9)?,
    })
}

/// The attribute columns as parameters $2..$8.
fn columns(a: &QueueAttributes) -> [i64; 5] {
    [
        i64::from(a.visibility_timeout_secs),
        i64::from(a.retention_secs),
        i64::from(a.delay_secs),
        i64::from(a.receive_wait_secs),
        i64::from(a.maximum_message_size),
    ]
}

fn message(r: &Row) -> Result<QueueMessage, StoreError> {
    Ok(QueueMessage {
        id: r.try_get(0)?,
        body: r.try_get(1)?,
        message_attributes: r.try_get(2)?,
        md5_of_body: r.try_get(3)?,
        md5_of_message_attributes: r.try_get(4)?,
        sender: r.try_get(5)?,
        sent_at_ms: r.try_get(6)?,
        receive_count: small(r.try_get(7)?),
        first_received_at_ms: r.try_get(8)?,
        receipt_handle: r.try_get(9)?,
    })
}

async fn queue_in(
    client: &impl deadpool_postgres::GenericClient,
    name: &str,
    lock: bool,
) -> Result<Option<QueueInfo>, StoreError> {
    let lock = if lock { " FOR SHARE" } else { "" };
    let row = client
        .query_opt(
            &format!("SELECT {QUEUE_COLUMNS} FROM queues WHERE name = $1{lock}"),
            &[&name],
        )
        .await?;
    row.as_ref().map(info).transpose()
}

impl Postgres {
    pub(crate) async fn create_queue(
        &self,
        name: &str,
        a: &QueueAttributes,
        now_ms: i64,
    ) -> Result<Created, StoreError> {
        let client = self.client().await?;
        let [vis, ret, delay, wait, size] = columns(a);
        let dlq = a.redrive.as_ref().map(|r| r.dead_letter_queue.clone());
        let max = a.redrive.as_ref().map(|r| i64::from(r.max_receive_count));
        let inserted = client
            .execute(
                "INSERT INTO queues (name, visibility_timeout, retention, delay, receive_wait,
                     max_message_size, dead_letter_queue, max_receive_count, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &vis, &ret, &delay, &wait, &size, &dlq, &max, &now_ms],
            )
            .await?
            > 0;
        if inserted {
            return Ok(Created::Created);
        }
        let existing = queue_in(&client, name, false)
            .await?
            .ok_or_else(|| StoreError::UnknownQueue(name.to_string()))?;
        Ok(Created::Exists(existing.attributes))
    }

    pub(crate) async fn queue(&self, name: &str) -> Result<Option<QueueInfo>, StoreError> {
        queue_in(&self.client().await?, name, false).await
    }

    pub(crate) async fn list_queues(&self) -> Result<Vec<QueueInfo>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name"),
                &[],
            )
            .await?;
        rows.iter().map(info).collect()
    }

    pub(crate) async fn set_queue_attributes(
        &self,
        name: &str,
        a: &QueueAttributes,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let [vis, ret, delay, wait, size] = columns(a);
        let dlq = a.redrive.as_ref().map(|r| r.dead_letter_queue.clone());
        let max = a.redrive.as_ref().map(|r| i64::from(r.max_receive_count));
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE queues SET visibility_timeout = $2, retention = $3, delay = $4,
                     receive_wait = $5, max_message_size = $6, dead_letter_queue = $7,
                     max_receive_count = $8, updated_at = $9
                 WHERE name = $1",
                &[&name, &vis, &ret, &delay, &wait, &size, &dlq, &max, &now_ms],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::UnknownQueue(name.to_string()));
        }
        Ok(())
    }

    pub(crate) async fn delete_queue(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute("DELETE FROM queues WHERE name = $1", &[&name])
            .await?
            > 0)
    }

    pub(crate) async fn purge_queue(&self, name: &str) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if queue_in(&tx, name, true).await?.is_none() {
            return Err(StoreError::UnknownQueue(name.to_string()));
        }
        let n = tx
            .execute("DELETE FROM queue_messages WHERE queue = $1", &[&name])
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    pub(crate) async fn send(
        &self,
        queue: &str,
        messages: &[NewMessage],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // FOR SHARE: a DeleteQueue waits for the send instead of racing it.
        if queue_in(&tx, queue, true).await?.is_none() {
            return Err(StoreError::UnknownQueue(queue.to_string()));
        }
        let insert = tx
            .prepare(
                "INSERT INTO queue_messages (queue, id, body, attributes, md5_of_body,
                     md5_of_attributes, sender, sent_at, visible_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .await?;
        for m in messages {
            tx.execute(
                &insert,
                &[
                    &queue,
                    &m.id,
                    &m.body,
                    &m.message_attributes,
                    &m.md5_of_body,
                    &m.md5_of_message_attributes,
                    &m.sender,
                    &now_ms,
                    &m.visible_at_ms,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility_ms: i64,
        token: &str,
        now_ms: i64,
    ) -> Result<Received, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let info = queue_in(&tx, queue, false)
            .await?
            .ok_or_else(|| StoreError::UnknownQueue(queue.to_string()))?;
        let cutoff = queues::retention_cutoff(now_ms, info.attributes.retention_secs);
        tx.execute(
            "DELETE FROM queue_messages WHERE seq IN (
                 SELECT seq FROM queue_messages WHERE queue = $1 AND sent_at <= $2
                 FOR UPDATE SKIP LOCKED)",
            &[&queue, &cutoff],
        )
        .await?;
        let redrive = match &info.attributes.redrive {
            Some(r) if queue_in(&tx, &r.dead_letter_queue, false).await?.is_some() => {
                Some(r.clone())
            }
            _ => None,
        };
        let mut received = Received::default();
        loop {
            let want = max.saturating_sub(received.messages.len());
            if want == 0 {
                break;
            }
            let rows = tx
                .query(
                    "SELECT seq, id, receive_count FROM queue_messages
                     WHERE queue = $1 AND visible_at <= $2 ORDER BY seq LIMIT $3
                     FOR UPDATE SKIP LOCKED",
                    &[&queue, &now_ms, &i64::try_from(want).unwrap_or(i64::MAX)],
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let seq: i64 = row.try_get(0)?;
                let id: String = row.try_get(1)?;
                let count = small(row.try_get(2)?);
                match &redrive {
                    Some(r) if queues::redrive_due(count, Some(r)) => {
                        tx.execute(
                            "UPDATE queue_messages SET queue = $2, receive_count = 0,
                                 first_received_at = NULL, receipt = NULL, visible_at = $3
                             WHERE seq = $1",
                            &[&seq, &r.dead_letter_queue, &now_ms],
                        )
                        .await?;
                        received.dead_lettered += 1;
                    }
                    _ => {
                        let count = count.saturating_add(1);
                        let handle = queues::receipt_handle(token, &id, count);
                        let row = tx
                            .query_one(
                                "UPDATE queue_messages SET receive_count = $2, receipt = $3,
                                     first_received_at = COALESCE(first_received_at, $4),
                                     visible_at = $5
                                 WHERE seq = $1
                                 RETURNING id, body, attributes, md5_of_body, md5_of_attributes,
                                     sender, sent_at, receive_count, first_received_at, receipt",
                                &[
                                    &seq,
                                    &i64::from(count),
                                    &handle,
                                    &now_ms,
                                    &now_ms.saturating_add(visibility_ms),
                                ],
                            )
                            .await?;
                        received.messages.push(message(&row)?);
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(received)
    }

    pub(crate) async fn delete_message(
        &self,
        queue: &str,
        receipt: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM queue_messages WHERE queue = $1 AND receipt = $2",
                &[&queue, &receipt],
            )
            .await?
            > 0)
    }

    pub(crate) async fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visible_at_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE queue_messages SET visible_at = $3 WHERE queue = $1 AND receipt = $2",
                &[&queue, &receipt, &visible_at_ms],
            )
            .await?
            > 0)
    }

    pub(crate) async fn queue_counts(
        &self,
        queue: &str,
        now_ms: i64,
    ) -> Result<QueueCounts, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE visible_at <= $2),
                        COUNT(*) FILTER (WHERE visible_at > $2 AND receipt IS NOT NULL),
                        COUNT(*) FILTER (WHERE visible_at > $2 AND receipt IS NULL)
                 FROM queue_messages WHERE queue = $1",
                &[&queue, &now_ms],
            )
            .await?;
        let n = |i: usize| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0))
        };
        Ok(QueueCounts {
            visible: n(0)?,
            in_flight: n(1)?,
            delayed: n(2)?,
        })
    }

    pub(crate) async fn next_visible_at(&self, queue: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_one(
                "SELECT MIN(visible_at) FROM queue_messages WHERE queue = $1",
                &[&queue],
            )
            .await?
            .try_get(0)?)
    }
}
