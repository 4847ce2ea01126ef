//! Streams as the store keeps them: named, sharded, append-only logs of
//! records (Kinesis-like), and the checkpoints of the mappings that consume
//! them.
//!
//! The calls are async methods of [`crate::Store`] (`stream_engine.rs`),
//! the same on both engines: SQLite (`db/streams.rs`) and PostgreSQL
//! (`pg/streams.rs`). Times are milliseconds since the Unix epoch and come
//! in as parameters.
//!
//! Ordering: a shard's row holds its last sequence number. An append bumps
//! it and inserts the records in one transaction, so the shard row is
//! locked until commit (SQLite: the database write lock; PostgreSQL:
//! `UPDATE stream_shards … RETURNING last_seq` takes the row lock, shard
//! by shard in shard order so two appends never wait on each other in a
//! circle). A second appender to the same shard waits for the first to
//! commit, so sequence order is commit order and a reader reading past its
//! checkpoint never skips a record that commits late.
//!
//! Who reads a shard for a mapping is decided by a lease
//! ([`crate::leases`]); a checkpoint is only written by the lease's holder.

use serde::Serialize;

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
    /// When the first record after the checkpoint arrived (`None`: caught
    /// up). The iterator age is the time since then.
    pub next_arrival_ms: Option<i64>,
    /// The node whose poller holds the shard's lease, if any.
    pub holder: Option<String>,
}

impl Checkpoint {
    /// How far behind the mapping is on this shard at `now_ms`, in ms.
    pub fn iterator_age_ms(&self, now_ms: i64) -> i64 {
        self.next_arrival_ms
            .map_or(0, |arrived| now_ms.saturating_sub(arrived).max(0))
    }
}

pub use rouse_manifest::valid_stream_name;
