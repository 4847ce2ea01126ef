//! Streams as the store keeps them: named, sharded, append-only logs of
//! records (Kinesis-like), and the checkpoints of the mappings that consume
//! them.
//!
//! [`Streams`] is the whole interface, so the PostgreSQL engine of a
//! cluster implements the same calls; SQLite is the one today
//! (`db/streams.rs`). Times are milliseconds since the Unix epoch and come
//! in as parameters.
//!
//! Ordering: a shard's row holds its last sequence number. An append bumps
//! it and inserts the records in one transaction, so the shard row is
//! locked until commit (SQLite: the database write lock; PostgreSQL:
//! `UPDATE stream_shards … RETURNING last_seq` takes the row lock). A
//! second appender to the same shard waits for the first to commit, so
//! sequence order is commit order and a reader reading past its checkpoint
//! never skips a record that commits late.

use serde::Serialize;

use crate::StoreError;

/// Records are kept this long unless a stream says otherwise.
pub const DEFAULT_RETENTION_HOURS: u32 = 24;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamInfo {
    pub name: String,
    pub shards: u32,
    pub retention_hours: u32,
    pub created_at_ms: i64,
}

/// One shard's contents, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShardStats {
    pub shard: u32,
    /// Records kept (not yet trimmed).
    pub records: u64,
    /// The last sequence number given out (0: none yet).
    pub last_seq: u64,
}

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub shard: u32,
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub shard: u32,
    /// Strictly increasing per shard, from 1.
    pub seq: u64,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub arrived_at_ms: i64,
}

/// Where a mapping stands on one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub mapping: String,
    pub shard: u32,
    /// Every record up to and including this one has been processed.
    pub seq: u64,
    pub updated_at_ms: i64,
}

/// The stream store. Every call is one short transaction.
pub trait Streams {
    /// Creates a stream; `false` when one of that name exists (unchanged).
    fn create_stream(
        &self,
        name: &str,
        shards: u32,
        retention_hours: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    fn stream(&self, name: &str) -> Result<Option<StreamInfo>, StoreError>;

    /// Every stream, by name.
    fn list_streams(&self) -> Result<Vec<StreamInfo>, StoreError>;

    /// Appends `records` (each to its own shard) in one transaction; returns
    /// their sequence numbers in the same order. Records older than the
    /// stream's retention are trimmed from the shards written to.
    fn append(
        &self,
        stream: &str,
        records: &[NewRecord],
        now_ms: i64,
    ) -> Result<Vec<u64>, StoreError>;

    /// Up to `limit` records of a shard with sequence numbers above `after`,
    /// in order.
    fn read(
        &self,
        stream: &str,
        shard: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StreamRecord>, StoreError>;

    /// The sequence number just before the first record that arrived at or
    /// after `at_ms` (what `AT_TIMESTAMP` starts after).
    fn seq_before_time(&self, stream: &str, shard: u32, at_ms: i64) -> Result<u64, StoreError>;

    fn shard_stats(&self, stream: &str) -> Result<Vec<ShardStats>, StoreError>;

    fn checkpoint(&self, mapping: &str, shard: u32) -> Result<Option<u64>, StoreError>;

    /// Moves a mapping's checkpoint on a shard (forward only: a lower
    /// sequence number than the stored one is ignored).
    fn set_checkpoint(
        &self,
        mapping: &str,
        stream: &str,
        shard: u32,
        seq: u64,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// The checkpoints of every mapping consuming `stream`.
    fn checkpoints_of(&self, stream: &str) -> Result<Vec<Checkpoint>, StoreError>;
}

pub use rouse_manifest::valid_stream_name;
