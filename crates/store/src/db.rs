//! The SQLite side of the store: schema, migrations and queries.

pub(crate) mod access_keys;
pub(crate) mod aliases;
pub(crate) mod deploy;
pub(crate) mod events;
pub(crate) mod queues;
pub(crate) mod streams;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::rules::RawRecord;
use crate::{FunctionRecord, RouteRecord, StoreError, VersionRecord};

pub(crate) use deploy::deploy;

/// Schema changes, applied in order; `PRAGMA user_version` counts how many a
/// database has had. Only ever append: a released entry must never change.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE functions (
        name            TEXT PRIMARY KEY,
        service         TEXT NOT NULL,
        stage           TEXT NOT NULL,
        current_version INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX functions_by_service ON functions (service, stage);
    CREATE TABLE versions (
        function   TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
        version    INTEGER NOT NULL,
        artifact   TEXT NOT NULL,
        spec_json  TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (function, version)
    );
    CREATE TABLE routes (
        function TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
        method   TEXT NOT NULL,
        path     TEXT NOT NULL,
        shape    TEXT NOT NULL
    );
    CREATE INDEX routes_by_function ON routes (function);
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 2: stage routing per route, and aliases (a name pointing at a version,
    // optionally sending a share of requests to a second one).
    "ALTER TABLE routes ADD COLUMN stage_routing TEXT NOT NULL DEFAULT 'none';
    CREATE TABLE aliases (
        function       TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
        name           TEXT NOT NULL,
        version        INTEGER NOT NULL,
        canary_version INTEGER,
        canary_weight  REAL,
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (function, name)
    );",
    // 3: access keys for the AWS-compatible APIs. The secret is sealed (see
    // access_keys.rs): a SigV4 check needs the secret itself.
    "CREATE TABLE access_keys (
        id            TEXT PRIMARY KEY,
        sealed_secret BLOB NOT NULL,
        description   TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        last_used_at  INTEGER
    );",
    // 4: the queue of async (`Event`) invocations.
    events::MIGRATION,
    // 5: streams, their shards and records, and mapping checkpoints.
    streams::MIGRATION,
    // 6: per-shard poller leases (one poller per shard in a cluster).
    streams::LEASES_MIGRATION,
    // 7: queues (SQS-like) and their messages.
    queues::MIGRATION,
];

pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    // Several rouse processes (a server and a CLI on the same data dir) may
    // write at once; wait for the lock instead of failing with SQLITE_BUSY.
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL lets the gateway's route reloads read while a deploy writes.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "{}: could not switch to WAL journaling (got {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        // Version read inside the write lock, so two processes opening a new
        // database at once do not both run the same migration.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let applied = usize::try_from(applied).unwrap_or(usize::MAX);
        if applied == MIGRATIONS.len() {
            return Ok(());
        }
        let Some(sql) = MIGRATIONS.get(applied) else {
            return Err(StoreError::Corrupt(format!(
                "database schema version {applied} is newer than this rouse knows ({})",
                MIGRATIONS.len()
            )));
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", applied + 1)?;
        tx.commit()?;
    }
}

fn delete_function(tx: &Transaction<'_>, name: &str) -> Result<bool, StoreError> {
    // Explicit rather than relying on ON DELETE CASCADE alone, so the
    // outcome does not hinge on the foreign_keys pragma of this connection.
    tx.execute("DELETE FROM routes WHERE function = ?1", [name])?;
    tx.execute("DELETE FROM aliases WHERE function = ?1", [name])?;
    tx.execute("DELETE FROM versions WHERE function = ?1", [name])?;
    Ok(tx.execute("DELETE FROM functions WHERE name = ?1", [name])? > 0)
}

const SELECT_RECORDS: &str = "SELECT f.name, f.service, f.stage, f.current_version,
        v.artifact, v.spec_json, f.created_at, f.updated_at
    FROM functions f
    LEFT JOIN versions v ON v.function = f.name AND v.version = f.current_version";

fn raw_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        name: row.get(0)?,
        service: row.get(1)?,
        stage: row.get(2)?,
        version: row.get(3)?,
        artifact: row.get(4)?,
        spec_json: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
    })
}

pub(crate) fn list_functions(conn: &Connection) -> Result<Vec<FunctionRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!("{SELECT_RECORDS} ORDER BY f.name"))?;
    let raws = stmt
        .query_map([], raw_record)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(RawRecord::parse).collect()
}

pub(crate) fn count_functions(conn: &Connection) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM functions", [], |row| row.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Up to `limit` functions with names after `after`, by name: one page of
/// a listing, read through the primary key without touching the rest.
pub(crate) fn list_functions_page(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<FunctionRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT_RECORDS} WHERE f.name > ?1 ORDER BY f.name LIMIT ?2"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let raws = stmt
        .query_map(rusqlite::params![after.unwrap_or(""), limit], raw_record)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(RawRecord::parse).collect()
}

pub(crate) fn get_function(
    conn: &Connection,
    name: &str,
) -> Result<Option<FunctionRecord>, StoreError> {
    conn.query_row(
        &format!("{SELECT_RECORDS} WHERE f.name = ?1"),
        [name],
        raw_record,
    )
    .optional()?
    .map(RawRecord::parse)
    .transpose()
}

/// The function's row id: stable for as long as the function exists, never
/// shared with another existing function.
pub(crate) fn function_number(conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT rowid FROM functions WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .optional()?)
}

/// The artifact of every version of every function.
pub(crate) fn referenced_artifacts(
    conn: &Connection,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT DISTINCT artifact FROM versions")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn remove_function(conn: &mut Connection, name: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let removed = delete_function(&tx, name)?;
    tx.commit()?;
    Ok(removed)
}

pub(crate) fn routes(conn: &Connection) -> Result<Vec<RouteRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT function, method, path, shape, stage_routing FROM routes
         ORDER BY path, method, function",
    )?;
    let routes = route_rows(stmt.query([])?);
    routes
}

/// The routes of one function, ordered by path and method.
pub(crate) fn routes_of(conn: &Connection, function: &str) -> Result<Vec<RouteRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT function, method, path, shape, stage_routing FROM routes WHERE function = ?1 ORDER BY path, method",
    )?;
    let routes = route_rows(stmt.query([function])?);
    routes
}

fn route_rows(rows: rusqlite::Rows<'_>) -> Result<Vec<RouteRecord>, StoreError> {
    let rows = rows
        .mapped(|row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(crate::rules::route_record).collect()
}

/// Every version of a function, oldest first.
pub(crate) fn versions(conn: &Connection, name: &str) -> Result<Vec<VersionRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT version, artifact, spec_json, created_at FROM versions
         WHERE function = ?1 ORDER BY version",
    )?;
    let rows = stmt.query_map([name], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (version, artifact, spec_json, created_at) = row?;
        let spec = serde_json::from_str(&spec_json)
            .map_err(|e| StoreError::Corrupt(format!("function {name} version {version}: {e}")))?;
        out.push(VersionRecord {
            version: u32::try_from(version)
                .map_err(|_| StoreError::Corrupt(format!("function {name}: version {version}")))?,
            artifact,
            spec,
            created_at,
        });
    }
    Ok(out)
}

pub(crate) fn get_setting(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()?)
}

pub(crate) fn set_setting(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_idempotent_and_reject_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(open(&path).unwrap());
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        conn.pragma_update(None, "user_version", 999).unwrap();
        drop(conn);
        assert!(matches!(open(&path), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_database_from_before_the_event_queue_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..2] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('kept', 'yes')",
                [],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
        }
        let conn = open(&path).unwrap();
        assert_eq!(get_setting(&conn, "kept").unwrap().as_deref(), Some("yes"));
        let queued: i64 = conn
            .query_row("SELECT COUNT(*) FROM async_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(queued, 0);
    }
}
