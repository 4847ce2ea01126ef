//! [`Streams`] on the store's engines. Only SQLite has the stream tables so
//! far; on a PostgreSQL store every call says so. The SQL in
//! `db/streams.rs` ports as it is (appends order by the shard row's lock:
//! `UPDATE stream_shards … RETURNING last_seq` holds it until commit), with
//! per-shard poller leases to add for a cluster.

use crate::store::Engine;
use crate::streams::{self, Streams};
use crate::{db, Store, StoreError};

fn not_yet() -> StoreError {
    StoreError::Config(
        "streams are not yet stored in PostgreSQL; use the SQLite store for them".into(),
    )
}

impl Streams for Store {
    fn create_stream(
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
            Engine::Postgres(_) => Err(not_yet()),
        }
    }

    fn stream(&self, name: &str) -> Result<Option<streams::StreamInfo>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::stream(&Store::sqlite(c), name),
            Engine::Postgres(_) => Err(not_yet()),
        }
    }

    fn list_streams(&self) -> Result<Vec<streams::StreamInfo>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::list_streams(&Store::sqlite(c)),
            // Nothing to list: lets `rouse streams ls` and the pollers run.
            Engine::Postgres(_) => Ok(Vec::new()),
        }
    }

    fn append(
        &self,
        stream: &str,
        records: &[streams::NewRecord],
        now_ms: i64,
    ) -> Result<Vec<u64>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::streams::append(&mut Store::sqlite(c), stream, records, now_ms)
            }
            Engine::Postgres(_) => Err(not_yet()),
        }
    }

    fn read(
        &self,
        stream: &str,
        shard: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<streams::StreamRecord>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::read(&Store::sqlite(c), stream, shard, after, limit),
            Engine::Postgres(_) => Err(not_yet()),
        }
    }

    fn seq_before_time(&self, stream: &str, shard: u32, at_ms: i64) -> Result<u64, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::streams::seq_before_time(&Store::sqlite(c), stream, shard, at_ms)
            }
            Engine::Postgres(_) => Err(not_yet()),
        }
    }

    fn shard_stats(&self, stream: &str) -> Result<Vec<streams::ShardStats>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::shard_stats(&Store::sqlite(c), stream),
            Engine::Postgres(_) => Err(not_yet()),
        }
    }

    fn checkpoint(&self, mapping: &str, shard: u32) -> Result<Option<u64>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::checkpoint(&Store::sqlite(c), mapping, shard),
            Engine::Postgres(_) => Err(not_yet()),
        }
    }

    fn set_checkpoint(
        &self,
        mapping: &str,
        stream: &str,
        shard: u32,
        seq: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::streams::set_checkpoint(&Store::sqlite(c), mapping, stream, shard, seq, now_ms)
            }
            Engine::Postgres(_) => Err(not_yet()),
        }
    }

    fn checkpoints_of(&self, stream: &str) -> Result<Vec<streams::Checkpoint>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::streams::checkpoints_of(&Store::sqlite(c), stream),
            Engine::Postgres(_) => Err(not_yet()),
        }
    }
}
