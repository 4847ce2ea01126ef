//! The async event queue on PostgreSQL (the contract is `crate::events`;
//! the SQLite twin is `db/events.rs`). Claims lock the rows they take with
//! `FOR UPDATE SKIP LOCKED`, so nodes claiming at once skip each other's
//! rows instead of waiting on them or taking them twice.

use std::time::Duration;

use tokio_postgres::Row;

use super::Postgres;
use crate::events::{DeadLetter, EventCounts, EventRecord, EventState, NewEvent, Retry};
use crate::StoreError;

/// The schema step that adds the queue (appended to `pg::schema`).
pub(crate) const MIGRATION: &str = "CREATE TABLE async_events (
        id              TEXT PRIMARY KEY,
        function        TEXT NOT NULL,
        version         BIGINT,
        payload         BYTEA NOT NULL,
        accepted_at     BIGINT NOT NULL,
        attempts        BIGINT NOT NULL DEFAULT 0,
        throttles       BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        claimed_by      TEXT,
        claim_until     BIGINT,
        state           TEXT NOT NULL DEFAULT 'pending',
        last_error      TEXT,
        condition       TEXT,
        response        BYTEA
    );
    CREATE INDEX async_events_due ON async_events (state, next_attempt_at);
    CREATE INDEX async_events_by_function ON async_events (function, state);";

const COLUMNS: &str = "id, function, version, payload, accepted_at, attempts, throttles,
    next_attempt_at, claimed_by, claim_until, state, last_error, condition, response";

fn record(row: &Row) -> Result<EventRecord, StoreError> {
    let id: String = row.try_get(0)?;
    let state: String = row.try_get(10)?;
    let state = EventState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("async event {id}: unknown state {state:?}")))?;
    let count = |i: usize| -> Result<u32, StoreError> {
        Ok(u32::try_from(row.try_get::<_, i64>(i)?).unwrap_or(u32::MAX))
    };
    let version: Option<i64> = row.try_get(2)?;
    Ok(EventRecord {
        function: row.try_get(1)?,
        version: version.and_then(|v| u32::try_from(v).ok()),
        payload: row.try_get(3)?,
        accepted_at_ms: row.try_get(4)?,
        attempts: count(5)?,
        throttles: count(6)?,
        next_attempt_at_ms: row.try_get(7)?,
        claimed_by: row.try_get(8)?,
        claim_until_ms: row.try_get(9)?,
        state,
        last_error: row.try_get(11)?,
        condition: row.try_get(12)?,
        response: row.try_get(13)?,
        id,
    })
}

fn big(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Postgres {
    pub(crate) async fn enqueue(&self, event: &NewEvent) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO async_events (id, function, version, payload, accepted_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $5)",
                &[
                    &event.id,
                    &event.function,
                    &event.version.map(i64::from),
                    &event.payload,
                    &event.accepted_at_ms,
                ],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn claim_due(
        &self,
        node: &str,
        now_ms: i64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let until = now_ms.saturating_add(big(lease.as_millis()));
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "UPDATE async_events SET claimed_by = $1, claim_until = $2
                     WHERE id IN (
                         SELECT id FROM async_events
                         WHERE state = 'pending' AND next_attempt_at <= $3
                           AND (claim_until IS NULL OR claim_until <= $3)
                         ORDER BY next_attempt_at LIMIT $4
                         FOR UPDATE SKIP LOCKED)
                     RETURNING {COLUMNS}"
                ),
                &[&node, &until, &now_ms, &big(max)],
            )
            .await?;
        let mut events = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| e.next_attempt_at_ms);
        Ok(events)
    }

    pub(crate) async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .client()
            .await?
            .query_one(
                "SELECT MIN(GREATEST(next_attempt_at, COALESCE(claim_until, 0)))
                 FROM async_events WHERE state = 'pending'",
                &[],
            )
            .await?
            .try_get(0)?)
    }

    pub(crate) async fn complete(&self, id: &str, node: &str) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM async_events WHERE id = $1 AND claimed_by = $2",
                &[&id, &node],
            )
            .await?
            > 0)
    }

    pub(crate) async fn retry_at(
        &self,
        id: &str,
        node: &str,
        retry: &Retry,
    ) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE async_events SET attempts = $3, throttles = $4, next_attempt_at = $5,
                     last_error = COALESCE($6, last_error), claimed_by = NULL, claim_until = NULL
                 WHERE id = $1 AND claimed_by = $2",
                &[
                    &id,
                    &node,
                    &i64::from(retry.attempts),
                    &i64::from(retry.throttles),
                    &retry.next_attempt_at_ms,
                    &retry.last_error,
                ],
            )
            .await?
            > 0)
    }

    pub(crate) async fn dead_letter(
        &self,
        id: &str,
        node: &str,
        dead: &DeadLetter,
    ) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE async_events SET state = 'dead', attempts = $3, condition = $4,
                     last_error = COALESCE($5, last_error), response = $6,
                     claimed_by = NULL, claim_until = NULL
                 WHERE id = $1 AND claimed_by = $2",
                &[
                    &id,
                    &node,
                    &i64::from(dead.attempts),
                    &dead.condition,
                    &dead.last_error,
                    &dead.response,
                ],
            )
            .await?
            > 0)
    }

    pub(crate) async fn release_claims(&self, node: &str) -> Result<usize, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE async_events SET claimed_by = NULL, claim_until = NULL
                 WHERE claimed_by = $1 AND state = 'pending'",
                &[&node],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(crate) async fn events_of(
        &self,
        function: &str,
        max: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM async_events WHERE function = $1
                     ORDER BY state = 'pending', accepted_at, id LIMIT $2"
                ),
                &[&function, &big(max)],
            )
            .await?;
        rows.iter().map(record).collect()
    }

    pub(crate) async fn event(
        &self,
        function: &str,
        id: &str,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM async_events WHERE function = $1 AND id = $2"),
                &[&function, &id],
            )
            .await?
            .map(|row| record(&row))
            .transpose()
    }

    pub(crate) async fn redrive(
        &self,
        function: &str,
        id: Option<&str>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE async_events SET state = 'pending', attempts = 0, throttles = 0,
                     accepted_at = $3, next_attempt_at = $3, condition = NULL,
                     claimed_by = NULL, claim_until = NULL
                 WHERE function = $1 AND state = 'dead' AND ($2::TEXT IS NULL OR id = $2)",
                &[&function, &id, &now_ms],
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub(crate) async fn event_counts(&self) -> Result<Vec<(String, EventCounts)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT function, COUNT(*) FILTER (WHERE state = 'pending'),
                        COUNT(*) FILTER (WHERE state = 'dead')
                 FROM async_events GROUP BY function ORDER BY function",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    EventCounts {
                        pending: u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
                        dead: u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0),
                    },
                ))
            })
            .collect()
    }

    /// Runs a store future to completion from synchronous code, the
    /// [`crate::AsyncEvents`] interface being synchronous: on the main
    /// (multi-threaded) runtime the worker steps aside (`block_in_place`);
    /// on a single-threaded runtime (the gateway's) the future runs on a
    /// scoped thread of its own; elsewhere (a blocking-pool thread) it runs
    /// on the store's runtime directly. The caller waits one round trip,
    /// like a SQLite call waits for its lock.
    pub(crate) fn blocking<T: Send>(
        &self,
        future: impl std::future::Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(future))
            }
            Ok(_) => std::thread::scope(|scope| {
                scope
                    .spawn(|| self.home.block_on(future))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(StoreError::Unavailable("a store call panicked".into()))
                    })
            }),
            Err(_) => self.home.block_on(future),
        }
    }
}
