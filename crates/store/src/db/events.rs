//! The async event queue in SQLite (see `crate::events` for the contract).
//!
//! Claims are one `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`: a
//! single statement holds SQLite's write lock, so two processes never claim
//! the same row. The PostgreSQL engine runs the same statement with
//! `FOR UPDATE SKIP LOCKED` in the subquery, so concurrent nodes skip each
//! other's rows instead of waiting on them.

use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::events::{DeadLetter, EventCounts, EventRecord, EventState, NewEvent, Retry};
use crate::StoreError;

/// The schema step that adds the queue (appended to `db::MIGRATIONS`).
pub(crate) const MIGRATION: &str = "CREATE TABLE async_events (
        id              TEXT PRIMARY KEY,
        function        TEXT NOT NULL,
        version         INTEGER,
        payload         BLOB NOT NULL,
        accepted_at     INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        throttles       INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        claimed_by      TEXT,
        claim_until     INTEGER,
        state           TEXT NOT NULL DEFAULT 'pending',
        last_error      TEXT,
        condition       TEXT,
        response        BLOB
    );
    CREATE INDEX async_events_due ON async_events (state, next_attempt_at);
    CREATE INDEX async_events_by_function ON async_events (function, state);";

const COLUMNS: &str = "id, function, version, payload, accepted_at, attempts, throttles,
    next_attempt_at, claimed_by, claim_until, state, last_error, condition, response";

fn record(row: &Row<'_>) -> rusqlite::Result<(EventRecord, String)> {
    let state: String = row.get(10)?;
    let version: Option<i64> = row.get(2)?;
    let count = |i: usize| -> rusqlite::Result<u32> {
        Ok(u32::try_from(row.get::<_, i64>(i)?).unwrap_or(u32::MAX))
    };
    Ok((
        EventRecord {
            id: row.get(0)?,
            function: row.get(1)?,
            version: version.and_then(|v| u32::try_from(v).ok()),
            payload: row.get(3)?,
            accepted_at_ms: row.get(4)?,
            attempts: count(5)?,
            throttles: count(6)?,
            next_attempt_at_ms: row.get(7)?,
            claimed_by: row.get(8)?,
            claim_until_ms: row.get(9)?,
            // Replaced below once parsed; rows only ever hold the two states.
            state: EventState::Pending,
            last_error: row.get(11)?,
            condition: row.get(12)?,
            response: row.get(13)?,
        },
        state,
    ))
}

fn parse((mut event, state): (EventRecord, String)) -> Result<EventRecord, StoreError> {
    event.state = EventState::parse(&state).ok_or_else(|| {
        StoreError::Corrupt(format!("async event {}: unknown state {state:?}", event.id))
    })?;
    Ok(event)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn enqueue(conn: &Connection, event: &NewEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO async_events (id, function, version, payload, accepted_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        event.id,
        event.function,
        event.version,
        event.payload,
        event.accepted_at_ms
    ])?;
    Ok(())
}

pub(crate) fn claim_due(
    conn: &Connection,
    node: &str,
    now_ms: i64,
    lease: Duration,
    max: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(&format!(
        "UPDATE async_events SET claimed_by = ?1, claim_until = ?2
         WHERE id IN (
             SELECT id FROM async_events
             WHERE state = 'pending' AND next_attempt_at <= ?3
               AND (claim_until IS NULL OR claim_until <= ?3)
             ORDER BY next_attempt_at LIMIT ?4)
         RETURNING {COLUMNS}"
    ))?;
    let rows = stmt
        .query_map(params![node, until, now_ms, limit(max)], record)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut events = rows.into_iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    // RETURNING gives no order; oldest due first is what callers expect.
    events.sort_by_key(|e| e.next_attempt_at_ms);
    Ok(events)
}

pub(crate) fn next_due(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(MAX(next_attempt_at, COALESCE(claim_until, 0)))
             FROM async_events WHERE state = 'pending'",
        )?
        .query_row([], |row| row.get(0))?)
}

pub(crate) fn complete(conn: &Connection, id: &str, node: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM async_events WHERE id = ?1 AND claimed_by = ?2")?
        .execute([id, node])?
        > 0)
}

pub(crate) fn retry_at(
    conn: &Connection,
    id: &str,
    node: &str,
    retry: &Retry,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE async_events SET attempts = ?3, throttles = ?4, next_attempt_at = ?5,
                 last_error = COALESCE(?6, last_error), claimed_by = NULL, claim_until = NULL
             WHERE id = ?1 AND claimed_by = ?2",
        )?
        .execute(params![
            id,
            node,
            retry.attempts,
            retry.throttles,
            retry.next_attempt_at_ms,
            retry.last_error
        ])?
        > 0)
}

pub(crate) fn dead_letter(
    conn: &Connection,
    id: &str,
    node: &str,
    dead: &DeadLetter,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE async_events SET state = 'dead', attempts = ?3, condition = ?4,
                 last_error = COALESCE(?5, last_error), response = ?6,
                 claimed_by = NULL, claim_until = NULL
             WHERE id = ?1 AND claimed_by = ?2",
        )?
        .execute(params![
            id,
            node,
            dead.attempts,
            dead.condition,
            dead.last_error,
            dead.response
        ])?
        > 0)
}

pub(crate) fn release_claims(conn: &Connection, node: &str) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE async_events SET claimed_by = NULL, claim_until = NULL
         WHERE claimed_by = ?1 AND state = 'pending'",
        [node],
    )?)
}

pub(crate) fn events_of(
    conn: &Connection,
    function: &str,
    max: usize,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM async_events WHERE function = ?1
         ORDER BY state = 'pending', accepted_at, id LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![function, limit(max)], record)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(parse).collect()
}

pub(crate) fn event(
    conn: &Connection,
    function: &str,
    id: &str,
) -> Result<Option<EventRecord>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM async_events WHERE function = ?1 AND id = ?2"
    ))?
    .query_row([function, id], record)
    .optional()?
    .map(parse)
    .transpose()
}

pub(crate) fn redrive(
    conn: &Connection,
    function: &str,
    id: Option<&str>,
    now_ms: i64,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE async_events SET state = 'pending', attempts = 0, throttles = 0,
             accepted_at = ?3, next_attempt_at = ?3, condition = NULL,
             claimed_by = NULL, claim_until = NULL
         WHERE function = ?1 AND state = 'dead' AND (?2 IS NULL OR id = ?2)",
        params![function, id, now_ms],
    )?)
}

pub(crate) fn event_counts(conn: &Connection) -> Result<Vec<(String, EventCounts)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT function, SUM(state = 'pending'), SUM(state = 'dead')
         FROM async_events GROUP BY function ORDER BY function",
    )?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                EventCounts {
                    pending: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    dead: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                },
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
