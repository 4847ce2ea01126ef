//! [`AsyncEvents`] on both engines. The interface is synchronous (it came
//! first, for SQLite); on PostgreSQL each call runs through
//! `Postgres::blocking`. Making it async is the next step.

use std::time::Duration;

use crate::events::{self, AsyncEvents};
use crate::store::Engine;
use crate::{db, Store, StoreError};

impl AsyncEvents for Store {
    fn enqueue(&self, event: &events::NewEvent) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::enqueue(&Store::sqlite(c), event),
            Engine::Postgres(pg) => pg.blocking(pg.enqueue(event)),
        }
    }

    fn claim_due(
        &self,
        node: &str,
        now_ms: i64,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<events::EventRecord>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::events::claim_due(&Store::sqlite(c), node, now_ms, lease, limit)
            }
            Engine::Postgres(pg) => pg.blocking(pg.claim_due(node, now_ms, lease, limit)),
        }
    }

    fn next_due(&self) -> Result<Option<i64>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::next_due(&Store::sqlite(c)),
            Engine::Postgres(pg) => pg.blocking(pg.next_due()),
        }
    }

    fn complete(&self, id: &str, node: &str) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::complete(&Store::sqlite(c), id, node),
            Engine::Postgres(pg) => pg.blocking(pg.complete(id, node)),
        }
    }

    fn retry_at(&self, id: &str, node: &str, retry: &events::Retry) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::retry_at(&Store::sqlite(c), id, node, retry),
            Engine::Postgres(pg) => pg.blocking(pg.retry_at(id, node, retry)),
        }
    }

    fn dead_letter(
        &self,
        id: &str,
        node: &str,
        dead: &events::DeadLetter,
    ) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::dead_letter(&Store::sqlite(c), id, node, dead),
            Engine::Postgres(pg) => pg.blocking(pg.dead_letter(id, node, dead)),
        }
    }

    fn release_claims(&self, node: &str) -> Result<usize, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::release_claims(&Store::sqlite(c), node),
            Engine::Postgres(pg) => pg.blocking(pg.release_claims(node)),
        }
    }

    fn events_of(
        &self,
        function: &str,
        limit: usize,
    ) -> Result<Vec<events::EventRecord>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::events_of(&Store::sqlite(c), function, limit),
            Engine::Postgres(pg) => pg.blocking(pg.events_of(function, limit)),
        }
    }

    fn event(&self, function: &str, id: &str) -> Result<Option<events::EventRecord>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::event(&Store::sqlite(c), function, id),
            Engine::Postgres(pg) => pg.blocking(pg.event(function, id)),
        }
    }

    fn redrive(&self, function: &str, id: Option<&str>, now_ms: i64) -> Result<usize, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::redrive(&Store::sqlite(c), function, id, now_ms),
            Engine::Postgres(pg) => pg.blocking(pg.redrive(function, id, now_ms)),
        }
    }

    fn event_counts(&self) -> Result<Vec<(String, events::EventCounts)>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::events::event_counts(&Store::sqlite(c)),
            Engine::Postgres(pg) => pg.blocking(pg.event_counts()),
        }
    }
}
