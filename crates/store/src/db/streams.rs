//! Streams in SQLite (see `crate::streams` for the contract and how appends
//! are ordered). The statements are plain SQL that PostgreSQL runs as they
//! are (`ON CONFLICT`, `RETURNING`), apart from placeholders and `MAX(a, b)`
//! (PostgreSQL: `GREATEST`).

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::leases::{self, Grant, Lease, Step};
use crate::streams::{Checkpoint, NewRecord, ShardStats, StreamInfo, StreamRecord};
use crate::StoreError;

/// The schema step that adds streams (appended to `db::MIGRATIONS`).
pub(crate) const MIGRATION: &str = "CREATE TABLE streams (
        name            TEXT PRIMARY KEY,
        shards          INTEGER NOT NULL,
        retention_hours INTEGER NOT NULL,
        created_at      INTEGER NOT NULL
    );
    CREATE TABLE stream_shards (
        stream   TEXT NOT NULL REFERENCES streams (name) ON DELETE CASCADE,
        shard    INTEGER NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (stream, shard)
    );
    CREATE TABLE stream_records (
        stream        TEXT NOT NULL,
        shard         INTEGER NOT NULL,
        seq           INTEGER NOT NULL,
        partition_key TEXT NOT NULL,
        data          BLOB NOT NULL,
        arrived_at    INTEGER NOT NULL,
        PRIMARY KEY (stream, shard, seq)
    );
    CREATE TABLE stream_checkpoints (
        mapping    TEXT NOT NULL,
        stream     TEXT NOT NULL,
        shard      INTEGER NOT NULL,
        seq        INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (mapping, shard)
    );
    CREATE INDEX stream_checkpoints_by_stream ON stream_checkpoints (stream);";

/// The schema step that adds per-shard poller leases.
pub(crate) const LEASES_MIGRATION: &str = "CREATE TABLE stream_leases (
        mapping  TEXT NOT NULL,
        shard    INTEGER NOT NULL,
        node     TEXT NOT NULL,
        until_ms INTEGER NOT NULL,
        PRIMARY KEY (mapping, shard)
    );";

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

pub(crate) fn create_stream(
    conn: &mut Connection,
    name: &str,
    shards: u32,
    retention_hours: u32,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let created = tx.execute(
        "INSERT INTO streams (name, shards, retention_hours, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO NOTHING",
        params![name, shards, retention_hours, now_ms],
    )? > 0;
    if created {
        for shard in 0..shards {
            tx.execute(
                "INSERT INTO stream_shards (stream, shard) VALUES (?1, ?2)",
                params![name, shard],
            )?;
        }
    }
    tx.commit()?;
    Ok(created)
}

fn info(row: &rusqlite::Row<'_>) -> rusqlite::Result<StreamInfo> {
    Ok(StreamInfo {
        name: row.get(0)?,
        shards: to_u32(row.get(1)?),
        retention_hours: to_u32(row.get(2)?),
        created_at_ms: row.get(3)?,
    })
}

pub(crate) fn stream(conn: &Connection, name: &str) -> Result<Option<StreamInfo>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT name, shards, retention_hours, created_at FROM streams WHERE name = ?1",
        )?
        .query_row([name], info)
        .optional()?)
}

pub(crate) fn list_streams(conn: &Connection) -> Result<Vec<StreamInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, shards, retention_hours, created_at FROM streams ORDER BY name",
    )?;
    let rows = stmt.query_map([], info)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn append(
    conn: &mut Connection,
    stream: &str,
    records: &[NewRecord],
    now_ms: i64,
) -> Result<Vec<u64>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(info) = self::stream(&tx, stream)? else {
        return Err(StoreError::UnknownStream(stream.to_string()));
    };
    let cutoff = now_ms.saturating_sub(i64::from(info.retention_hours) * 3_600_000);
    let mut seqs = Vec::with_capacity(records.len());
    let mut touched = Vec::new();
    for record in records {
        // The row lock on the shard (held to commit) orders appenders.
        let seq: Option<i64> = tx
            .prepare_cached(
                "UPDATE stream_shards SET last_seq = last_seq + 1
                 WHERE stream = ?1 AND shard = ?2 RETURNING last_seq",
            )?
            .query_row(params![stream, record.shard], |row| row.get(0))
            .optional()?;
        let Some(seq) = seq else {
            return Err(StoreError::UnknownStream(format!(
                "{stream} (shard {})",
                record.shard
            )));
        };
        tx.prepare_cached(
            "INSERT INTO stream_records (stream, shard, seq, partition_key, data, arrived_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            stream,
            record.shard,
            seq,
            record.partition_key,
            record.data,
            now_ms
        ])?;
        if !touched.contains(&record.shard) {
            touched.push(record.shard);
        }
        seqs.push(to_u64(seq));
    }
    for shard in touched {
        trim(&tx, stream, shard, cutoff)?;
    }
    tx.commit()?;
    Ok(seqs)
}

/// Drops a shard's records that arrived before `cutoff`. Arrival times grow
/// with sequence numbers, so the scan stops at the first record it keeps:
/// when nothing is old this is one index step.
fn trim(conn: &Connection, stream: &str, shard: u32, cutoff: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM stream_records WHERE stream = ?1 AND shard = ?2 AND seq < COALESCE(
             (SELECT seq FROM stream_records WHERE stream = ?1 AND shard = ?2 AND arrived_at >= ?3
              ORDER BY seq LIMIT 1), 0)",
    )?
    .execute(params![stream, shard, cutoff])?;
    Ok(())
}

pub(crate) fn read(
    conn: &Connection,
    stream: &str,
    shard: u32,
    after: u64,
    limit: usize,
) -> Result<Vec<StreamRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, partition_key, data, arrived_at FROM stream_records
         WHERE stream = ?1 AND shard = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![stream, shard, to_i64(after), limit], |row| {
            Ok(StreamRecord {
                shard,
                seq: to_u64(row.get(0)?),
                partition_key: row.get(1)?,
                data: row.get(2)?,
                arrived_at_ms: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn seq_before_time(
    conn: &Connection,
    stream: &str,
    shard: u32,
    at_ms: i64,
) -> Result<u64, StoreError> {
    let first: Option<i64> = conn
        .prepare_cached(
            "SELECT seq FROM stream_records WHERE stream = ?1 AND shard = ?2 AND arrived_at >= ?3
             ORDER BY seq LIMIT 1",
        )?
        .query_row(params![stream, shard, at_ms], |row| row.get(0))
        .optional()?;
    match first {
        Some(seq) => Ok(to_u64(seq - 1)),
        // Nothing that recent: start after the last record.
        None => Ok(to_u64(
            conn.prepare_cached(
                "SELECT last_seq FROM stream_shards WHERE stream = ?1 AND shard = ?2",
            )?
            .query_row(params![stream, shard], |row| row.get(0))
            .optional()?
            .unwrap_or(0),
        )),
    }
}

pub(crate) fn shard_stats(conn: &Connection, stream: &str) -> Result<Vec<ShardStats>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.shard, s.last_seq,
                (SELECT COUNT(*) FROM stream_records r WHERE r.stream = s.stream AND r.shard = s.shard)
         FROM stream_shards s WHERE s.stream = ?1 ORDER BY s.shard",
    )?;
    let rows = stmt
        .query_map([stream], |row| {
            Ok(ShardStats {
                shard: to_u32(row.get(0)?),
                last_seq: to_u64(row.get(1)?),
                records: to_u64(row.get(2)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn checkpoint(
    conn: &Connection,
    mapping: &str,
    shard: u32,
) -> Result<Option<u64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT seq FROM stream_checkpoints WHERE mapping = ?1 AND shard = ?2")?
        .query_row(params![mapping, shard], |row| row.get::<_, i64>(0))
        .optional()?
        .map(to_u64))
}

/// Moves the checkpoint forward if `node` holds a live lease on the
/// shard; `false` (nothing written) when it does not.
pub(crate) fn set_checkpoint(
    conn: &mut Connection,
    mapping: &str,
    stream: &str,
    shard: u32,
    seq: u64,
    node: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !leases::may_commit(lease(&tx, mapping, shard)?.as_ref(), node, now_ms) {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO stream_checkpoints (mapping, stream, shard, seq, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (mapping, shard) DO UPDATE SET
             seq = MAX(stream_checkpoints.seq, excluded.seq), updated_at = excluded.updated_at",
    )?
    .execute(params![mapping, stream, shard, to_i64(seq), now_ms])?;
    tx.commit()?;
    Ok(true)
}

fn lease(conn: &Connection, mapping: &str, shard: u32) -> Result<Option<Lease>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT node, until_ms FROM stream_leases WHERE mapping = ?1 AND shard = ?2",
        )?
        .query_row(params![mapping, shard], |row| {
            Ok(Lease {
                mapping: mapping.to_string(),
                shard,
                node: row.get(0)?,
                until_ms: row.get(1)?,
            })
        })
        .optional()?)
}

/// Takes, renews or reports the holder of a shard's lease (see
/// [`leases::decide`]); the write is in the same transaction as the read.
pub(crate) fn acquire_lease(
    conn: &mut Connection,
    mapping: &str,
    shard: u32,
    node: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<Grant, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let until_ms = now_ms.saturating_add(ttl_ms);
    let grant = match leases::decide(lease(&tx, mapping, shard)?.as_ref(), node, now_ms) {
        Step::Wait { holder, until_ms } => Grant::Busy { holder, until_ms },
        step => {
            tx.prepare_cached(
                "INSERT INTO stream_leases (mapping, shard, node, until_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (mapping, shard) DO UPDATE SET
                     node = excluded.node, until_ms = excluded.until_ms",
            )?
            .execute(params![mapping, shard, node, until_ms])?;
            Grant::Held {
                until_ms,
                fresh: step != Step::Renew,
            }
        }
    };
    tx.commit()?;
    Ok(grant)
}

/// Gives a lease up (a poller stopping cleanly), so another node can take
/// the shard at once.
pub(crate) fn release_lease(
    conn: &Connection,
    mapping: &str,
    shard: u32,
    node: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM stream_leases WHERE mapping = ?1 AND shard = ?2 AND node = ?3",
    )?
    .execute(params![mapping, shard, node])?;
    Ok(())
}

/// Drops every record past its stream's retention (shards that get no
/// appends are trimmed here, not on append).
pub(crate) fn trim_expired(conn: &Connection, now_ms: i64) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "DELETE FROM stream_records WHERE arrived_at < ?1 - 3600000 * (
                 SELECT retention_hours FROM streams WHERE streams.name = stream_records.stream)",
        )?
        .execute(params![now_ms])?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn checkpoints_of(
    conn: &Connection,
    stream: &str,
) -> Result<Vec<Checkpoint>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.mapping, c.shard, c.seq, c.updated_at,
                (SELECT r.arrived_at FROM stream_records r
                 WHERE r.stream = c.stream AND r.shard = c.shard AND r.seq > c.seq
                 ORDER BY r.seq LIMIT 1),
                (SELECT l.node FROM stream_leases l WHERE l.mapping = c.mapping AND l.shard = c.shard)
         FROM stream_checkpoints c
         WHERE c.stream = ?1 ORDER BY c.mapping, c.shard",
    )?;
    let rows = stmt
        .query_map([stream], |row| {
            Ok(Checkpoint {
                mapping: row.get(0)?,
                shard: to_u32(row.get(1)?),
                seq: to_u64(row.get(2)?),
                updated_at_ms: row.get(3)?,
                next_arrival_ms: row.get(4)?,
                holder: row.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
