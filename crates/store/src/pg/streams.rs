//! Streams on PostgreSQL (the contract is `crate::streams`; the SQLite twin
//! is `db/streams.rs`). An append locks the shard rows it writes to, in
//! shard order, with the `UPDATE … RETURNING last_seq` that hands out its
//! sequence numbers; the locks are held to commit, so a later sequence
//! number never commits before an earlier one and a reader past its
//! checkpoint never skips a record that commits late. The commit notifies
//! `rouse_streams` with the stream's name, which wakes that stream's
//! pollers on every node.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use futures_util::future::poll_fn;
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::Postgres;
use crate::leases::{self, Grant, Lease, Step};
use crate::streams::{Checkpoint, NewRecord, ShardStats, StreamInfo, StreamRecord};
use crate::StoreError;

/// The channel appends notify (payload: the stream's name).
pub(crate) const CHANNEL: &str = "rouse_streams";

/// The schema step that adds streams, checkpoints and poller leases
/// (appended to `pg::schema`; SQLite's steps 5 and 6).
pub(crate) const MIGRATION: &str = "CREATE TABLE streams (
        name            TEXT PRIMARY KEY,
        shards          BIGINT NOT NULL,
        retention_hours BIGINT NOT NULL,
        created_at      BIGINT NOT NULL
    );
    CREATE TABLE stream_shards (
        stream   TEXT NOT NULL REFERENCES streams (name) ON DELETE CASCADE,
        shard    BIGINT NOT NULL,
        last_seq BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (stream, shard)
    );
    CREATE TABLE stream_records (
        stream        TEXT NOT NULL,
        shard         BIGINT NOT NULL,
        seq           BIGINT NOT NULL,
        partition_key TEXT NOT NULL,
        data          BYTEA NOT NULL,
        arrived_at    BIGINT NOT NULL,
        PRIMARY KEY (stream, shard, seq)
    );
    CREATE TABLE stream_checkpoints (
        mapping    TEXT NOT NULL,
        stream     TEXT NOT NULL,
        shard      BIGINT NOT NULL,
        seq        BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (mapping, shard)
    );
    CREATE INDEX stream_checkpoints_by_stream ON stream_checkpoints (stream);
    CREATE TABLE stream_leases (
        mapping  TEXT NOT NULL,
        shard    BIGINT NOT NULL,
        node     TEXT NOT NULL,
        until_ms BIGINT NOT NULL,
        PRIMARY KEY (mapping, shard)
    );";

fn big(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn info(row: &Row) -> Result<StreamInfo, StoreError> {
    Ok(StreamInfo {
        name: row.try_get(0)?,
        shards: to_u32(row.try_get(1)?),
        retention_hours: to_u32(row.try_get(2)?),
        created_at_ms: row.try_get(3)?,
    })
}

async fn stream_row(
    client: &impl GenericClient,
    name: &str,
) -> Result<Option<StreamInfo>, StoreError> {
    client
        .query_opt(
            "SELECT name, shards, retention_hours, created_at FROM streams WHERE name = $1",
            &[&name],
        )
        .await?
        .map(|row| info(&row))
        .transpose()
}

async fn lease_row(
    client: &impl GenericClient,
    mapping: &str,
    shard: u32,
    lock: &str,
) -> Result<Option<Lease>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT node, until_ms FROM stream_leases WHERE mapping = $1 AND shard = $2 {lock}"
            ),
            &[&mapping, &i64::from(shard)],
        )
        .await?;
    row.map(|row| {
        Ok(Lease {
            mapping: mapping.to_string(),
            shard,
            node: row.try_get(0)?,
            until_ms: row.try_get(1)?,
        })
    })
    .transpose()
}

impl Postgres {
    pub(crate) async fn create_stream(
        &self,
        name: &str,
        shards: u32,
        retention_hours: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let created = tx
            .execute(
                "INSERT INTO streams (name, shards, retention_hours, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                &[
                    &name,
                    &i64::from(shards),
                    &i64::from(retention_hours),
                    &now_ms,
                ],
            )
            .await?
            > 0;
        if created {
            tx.execute(
                "INSERT INTO stream_shards (stream, shard) SELECT $1, generate_series(0::BIGINT, $2::BIGINT - 1)",
                &[&name, &i64::from(shards)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    pub(crate) async fn stream(&self, name: &str) -> Result<Option<StreamInfo>, StoreError> {
        stream_row(&self.client().await?, name).await
    }

    pub(crate) async fn list_streams(&self) -> Result<Vec<StreamInfo>, StoreError> {
        self.client()
            .await?
            .query(
                "SELECT name, shards, retention_hours, created_at FROM streams ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(info)
            .collect()
    }

    pub(crate) async fn append(
        &self,
        stream: &str,
        records: &[NewRecord],
        now_ms: i64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(info) = stream_row(&tx, stream).await? else {
            return Err(StoreError::UnknownStream(stream.to_string()));
        };
        if let Some(bad) = records.iter().find(|r| r.shard >= info.shards) {
            return Err(StoreError::UnknownStream(format!(
                "{stream} (shard {})",
                bad.shard
            )));
        }
        let mut per_shard: BTreeMap<u32, i64> = BTreeMap::new();
        for record in records {
            *per_shard.entry(record.shard).or_default() += 1;
        }
        // Shard by shard in order: two appends to the same shards lock them
        // in the same order, so neither waits for the other in a circle.
        let mut next: BTreeMap<u32, i64> = BTreeMap::new();
        for (&shard, &count) in &per_shard {
            let last: i64 = tx
                .query_one(
                    "UPDATE stream_shards SET last_seq = last_seq + $3
                     WHERE stream = $1 AND shard = $2 RETURNING last_seq",
                    &[&stream, &i64::from(shard), &count],
                )
                .await?
                .try_get(0)?;
            next.insert(shard, last - count + 1);
        }
        let mut seqs = Vec::with_capacity(records.len());
        let (mut shards, mut keys, mut data) = (Vec::new(), Vec::new(), Vec::new());
        for record in records {
            let seq = next.get_mut(&record.shard).ok_or_else(|| {
                StoreError::Corrupt(format!("{stream}: shard {} not locked", record.shard))
            })?;
            seqs.push(*seq);
            *seq += 1;
            shards.push(i64::from(record.shard));
            keys.push(record.partition_key.as_str());
            data.push(record.data.as_slice());
        }
        tx.execute(
            "INSERT INTO stream_records (stream, shard, seq, partition_key, data, arrived_at)
             SELECT $1, r.shard, r.seq, r.partition_key, r.data, $6
             FROM UNNEST($2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::BYTEA[])
                  AS r (shard, seq, partition_key, data)",
            &[&stream, &shards, &seqs, &keys, &data, &now_ms],
        )
        .await?;
        let cutoff = now_ms.saturating_sub(i64::from(info.retention_hours) * 3_600_000);
        for &shard in per_shard.keys() {
            // Arrival times grow with sequence numbers: the scan stops at
            // the first record kept.
            tx.execute(
                "DELETE FROM stream_records WHERE stream = $1 AND shard = $2 AND seq < COALESCE(
                     (SELECT seq FROM stream_records
                      WHERE stream = $1 AND shard = $2 AND arrived_at >= $3
                      ORDER BY seq LIMIT 1), 0)",
                &[&stream, &i64::from(shard), &cutoff],
            )
            .await?;
        }
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &stream])
            .await?;
        tx.commit().await?;
        Ok(seqs.into_iter().map(to_u64).collect())
    }

    pub(crate) async fn read(
        &self,
        stream: &str,
        shard: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StreamRecord>, StoreError> {
        self.client()
            .await?
            .query(
                "SELECT seq, partition_key, data, arrived_at FROM stream_records
                 WHERE stream = $1 AND shard = $2 AND seq > $3 ORDER BY seq LIMIT $4",
                &[&stream, &i64::from(shard), &big(after), &big(limit)],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(StreamRecord {
                    shard,
                    seq: to_u64(row.try_get(0)?),
                    partition_key: row.try_get(1)?,
                    data: row.try_get(2)?,
                    arrived_at_ms: row.try_get(3)?,
                })
            })
            .collect()
    }

    pub(crate) async fn seq_before_time(
        &self,
        stream: &str,
        shard: u32,
        at_ms: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let first = client
            .query_opt(
                "SELECT seq FROM stream_records WHERE stream = $1 AND shard = $2 AND arrived_at >= $3
                 ORDER BY seq LIMIT 1",
                &[&stream, &i64::from(shard), &at_ms],
            )
            .await?;
        if let Some(row) = first {
            return Ok(to_u64(row.try_get::<_, i64>(0)? - 1));
        }
        // Nothing that recent: start after the last record.
        let last = client
            .query_opt(
                "SELECT last_seq FROM stream_shards WHERE stream = $1 AND shard = $2",
                &[&stream, &i64::from(shard)],
            )
            .await?;
        Ok(match last {
            Some(row) => to_u64(row.try_get(0)?),
            None => 0,
        })
    }

    pub(crate) async fn shard_stats(&self, stream: &str) -> Result<Vec<ShardStats>, StoreError> {
        self.client()
            .await?
            .query(
                "SELECT s.shard, s.last_seq,
                        (SELECT COUNT(*) FROM stream_records r
                         WHERE r.stream = s.stream AND r.shard = s.shard)
                 FROM stream_shards s WHERE s.stream = $1 ORDER BY s.shard",
                &[&stream],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(ShardStats {
                    shard: to_u32(row.try_get(0)?),
                    last_seq: to_u64(row.try_get(1)?),
                    records: to_u64(row.try_get(2)?),
                })
            })
            .collect()
    }

    pub(crate) async fn checkpoint(
        &self,
        mapping: &str,
        shard: u32,
    ) -> Result<Option<u64>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT seq FROM stream_checkpoints WHERE mapping = $1 AND shard = $2",
                &[&mapping, &i64::from(shard)],
            )
            .await?;
        row.map(|row| Ok(to_u64(row.try_get(0)?))).transpose()
    }

    pub(crate) async fn set_checkpoint(
        &self,
        mapping: &str,
        stream: &str,
        shard: u32,
        seq: u64,
        node: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // FOR SHARE: a takeover (an UPDATE of the row) waits for this
        // commit, so a checkpoint is never written by a node that lost the
        // lease in between.
        let lease = lease_row(&tx, mapping, shard, "FOR SHARE").await?;
        if !leases::may_commit(lease.as_ref(), node, now_ms) {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO stream_checkpoints (mapping, stream, shard, seq, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (mapping, shard) DO UPDATE SET
                 seq = GREATEST(stream_checkpoints.seq, excluded.seq),
                 updated_at = excluded.updated_at",
            &[&mapping, &stream, &i64::from(shard), &big(seq), &now_ms],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(crate) async fn checkpoints_of(&self, stream: &str) -> Result<Vec<Checkpoint>, StoreError> {
        self.client()
            .await?
            .query(
                "SELECT c.mapping, c.shard, c.seq, c.updated_at,
                        (SELECT r.arrived_at FROM stream_records r
                         WHERE r.stream = c.stream AND r.shard = c.shard AND r.seq > c.seq
                         ORDER BY r.seq LIMIT 1),
                        (SELECT l.node FROM stream_leases l
                         WHERE l.mapping = c.mapping AND l.shard = c.shard)
                 FROM stream_checkpoints c WHERE c.stream = $1 ORDER BY c.mapping, c.shard",
                &[&stream],
            )
            .await?
            .iter()
            .map(|row| {
                Ok(Checkpoint {
                    mapping: row.try_get(0)?,
                    shard: to_u32(row.try_get(1)?),
                    seq: to_u64(row.try_get(2)?),
                    updated_at_ms: row.try_get(3)?,
                    next_arrival_ms: row.try_get(4)?,
                    holder: row.try_get(5)?,
                })
            })
            .collect()
    }

    pub(crate) async fn acquire_lease(
        &self,
        mapping: &str,
        shard: u32,
        node: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Grant, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let until_ms = now_ms.saturating_add(ttl_ms);
        let current = lease_row(&tx, mapping, shard, "FOR UPDATE").await?;
        let step = leases::decide(current.as_ref(), node, now_ms);
        let grant = match step {
            Step::Wait { holder, until_ms } => Grant::Busy { holder, until_ms },
            Step::Take => {
                // Two nodes may both have found no row: the insert decides.
                let won = tx
                    .execute(
                        "INSERT INTO stream_leases (mapping, shard, node, until_ms)
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        &[&mapping, &i64::from(shard), &node, &until_ms],
                    )
                    .await?
                    == 1;
                if won {
                    Grant::Held {
                        until_ms,
                        fresh: true,
                    }
                } else {
                    let holder = lease_row(&tx, mapping, shard, "").await?;
                    Grant::Busy {
                        holder: holder.as_ref().map_or(String::new(), |l| l.node.clone()),
                        until_ms: holder.map_or(now_ms, |l| l.until_ms),
                    }
                }
            }
            Step::TakeOver { .. } | Step::Renew => {
                // The row is locked (FOR UPDATE): it is still what was read.
                tx.execute(
                    "UPDATE stream_leases SET node = $3, until_ms = $4
                     WHERE mapping = $1 AND shard = $2",
                    &[&mapping, &i64::from(shard), &node, &until_ms],
                )
                .await?;
                Grant::Held {
                    until_ms,
                    fresh: step != Step::Renew,
                }
            }
        };
        tx.commit().await?;
        Ok(grant)
    }

    pub(crate) async fn release_lease(
        &self,
        mapping: &str,
        shard: u32,
        node: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM stream_leases WHERE mapping = $1 AND shard = $2 AND node = $3",
                &[&mapping, &i64::from(shard), &node],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn trim_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM stream_records r USING streams s
                 WHERE r.stream = s.name AND r.arrived_at < $1 - 3600000 * s.retention_hours",
                &[&now_ms],
            )
            .await?)
    }

    /// Listens on [`CHANNEL`] on a connection of its own and calls `wake`
    /// with each notified stream name; returns when the connection ends.
    pub(crate) async fn listen_streams(
        &self,
        wake: impl Fn(&str) + Send,
    ) -> Result<(), StoreError> {
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
                }
                message = poll_fn(|cx| connection.poll_message(cx)) => match message {
                    Some(Ok(AsyncMessage::Notification(n))) => wake(n.payload()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
            }
        }
    }
}
