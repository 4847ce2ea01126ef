//! Streams on the store's engines: one async call per operation, run in
//! place under SQLite's lock (`db/streams.rs`) or on a pooled PostgreSQL
//! connection (`pg/streams.rs`). The contract is in `crate::streams`; the
//! lease rule in `crate::leases`.

use std::time::Duration;

use crate::leases::Grant;
use crate::store::Engine;
use crate::streams::{Checkpoint, NewRecord, ShardStats, StreamInfo, StreamRecord};
use crate::{db, Store, StoreError};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Creates a stream; `false` when one of that name exists (unchanged).
    pub async fn create_stream(
        &self,
        name: &str,
        shards: u32,
        retention_hours: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::create_stream(
                &mut Store::sqlite(c),
                name,
                shards,
                retention_hours,
                now_ms,
            ),
            Engine::Postgres(pg) => {
                pg.create_stream(name, shards, retention_hours, now_ms)
                    .await
            }
        }
    }

    pub async fn stream(&self, name: &str) -> Result<Option<StreamInfo>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::stream(&Store::sqlite(c), name),
            Engine::Postgres(pg) => pg.stream(name).await,
        }
    }

    /// Every stream, by name.
    pub async fn list_streams(&self) -> Result<Vec<StreamInfo>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::list_streams(&Store::sqlite(c)),
            Engine::Postgres(pg) => pg.list_streams().await,
        }
    }

    /// Appends `records` (each to its own shard) in one transaction; returns
    /// their sequence numbers in the same order. Records older than the
    /// stream's retention are trimmed from the shards written to. On
    /// PostgreSQL the commit notifies every node's pollers of the stream.
    pub async fn append(
        &self,
        stream: &str,
        records: &[NewRecord],
        now_ms: i64,
    ) -> Result<Vec<u64>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::streams::append(&mut Store::sqlite(c), stream, records, now_ms)
            }
            Engine::Postgres(pg) => pg.append(stream, records, now_ms).await,
        }
    }

    /// Up to `limit` records of a shard with sequence numbers above `after`,
    /// in order.
    pub async fn read(
        &self,
        stream: &str,
        shard: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StreamRecord>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::read(&Store::sqlite(c), stream, shard, after, limit),
            Engine::Postgres(pg) => pg.read(stream, shard, after, limit).await,
        }
    }

    /// The sequence number just before the first record that arrived at or
    /// after `at_ms` (what `AT_TIMESTAMP` starts after).
    pub async fn seq_before_time(
        &self,
        stream: &str,
        shard: u32,
        at_ms: i64,
    ) -> Result<u64, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::streams::seq_before_time(&Store::sqlite(c), stream, shard, at_ms)
            }
            Engine::Postgres(pg) => pg.seq_before_time(stream, shard, at_ms).await,
        }
    }

    pub async fn shard_stats(&self, stream: &str) -> Result<Vec<ShardStats>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::shard_stats(&Store::sqlite(c), stream),
            Engine::Postgres(pg) => pg.shard_stats(stream).await,
        }
    }

    pub async fn checkpoint(&self, mapping: &str, shard: u32) -> Result<Option<u64>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::checkpoint(&Store::sqlite(c), mapping, shard),
            Engine::Postgres(pg) => pg.checkpoint(mapping, shard).await,
        }
    }

    /// Moves a mapping's checkpoint on a shard (forward only: a lower
    /// sequence number than the stored one is ignored), if `node` holds a
    /// live lease on the shard. `false`: it does not, nothing was written.
    pub async fn set_checkpoint(
        &self,
        mapping: &str,
        stream: &str,
        shard: u32,
        seq: u64,
        node: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::set_checkpoint(
                &mut Store::sqlite(c),
                mapping,
                stream,
                shard,
                seq,
                node,
                now_ms,
            ),
            Engine::Postgres(pg) => {
                pg.set_checkpoint(mapping, stream, shard, seq, node, now_ms)
                    .await
            }
        }
    }

    /// The checkpoints of every mapping consuming `stream`, with how far
    /// behind each is and who holds its lease.
    pub async fn checkpoints_of(&self, stream: &str) -> Result<Vec<Checkpoint>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::checkpoints_of(&Store::sqlite(c), stream),
            Engine::Postgres(pg) => pg.checkpoints_of(stream).await,
        }
    }

    /// Takes or renews `node`'s lease on a mapping's shard for `ttl`, or
    /// says who holds it ([`crate::leases::decide`]).
    pub async fn acquire_lease(
        &self,
        mapping: &str,
        shard: u32,
        node: &str,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<Grant, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::acquire_lease(
                &mut Store::sqlite(c),
                mapping,
                shard,
                node,
                now_ms,
                ms(ttl),
            ),
            Engine::Postgres(pg) => {
                pg.acquire_lease(mapping, shard, node, now_ms, ms(ttl))
                    .await
            }
        }
    }

    /// Gives `node`'s lease on a shard up, so another node takes it at once.
    pub async fn release_lease(
        &self,
        mapping: &str,
        shard: u32,
        node: &str,
    ) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::streams::release_lease(&Store::sqlite(c), mapping, shard, node)
            }
            Engine::Postgres(pg) => pg.release_lease(mapping, shard, node).await,
        }
    }

    /// Drops every record past its stream's retention; returns how many.
    pub async fn trim_streams(&self, now_ms: i64) -> Result<u64, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::trim_expired(&Store::sqlite(c), now_ms),
            Engine::Postgres(pg) => pg.trim_expired(now_ms).await,
        }
    }

    /// PostgreSQL: calls `wake(stream)` for every append committed on any
    /// node, until the listening connection drops (then returns; callers
    /// listen again, and poll meanwhile). SQLite: returns at once (the one
    /// node wakes its pollers itself).
    pub async fn listen_streams(&self, wake: impl Fn(&str) + Send) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(_) => Ok(()),
            Engine::Postgres(pg) => pg.listen_streams(wake).await,
        }
    }
}
