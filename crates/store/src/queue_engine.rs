//! [`Queues`] on both engines. The interface is synchronous, like
//! `AsyncEvents` (its callers run it off the gateway threads); on
//! PostgreSQL each call runs through `Postgres::blocking`.

use crate::queues::{self, Queues};
use crate::store::Engine;
use crate::{db, Store, StoreError};

impl Queues for Store {
    fn create_queue(
        &self,
        name: &str,
        attributes: &queues::QueueAttributes,
        now_ms: i64,
    ) -> Result<queues::Created, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::queues::create_queue(&mut Store::sqlite(c), name, attributes, now_ms)
            }
            Engine::Postgres(pg) => pg.blocking(pg.create_queue(name, attributes, now_ms)),
        }
    }

    fn queue(&self, name: &str) -> Result<Option<queues::QueueInfo>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::queue(&Store::sqlite(c), name),
            Engine::Postgres(pg) => pg.blocking(pg.queue(name)),
        }
    }

    fn list_queues(&self) -> Result<Vec<queues::QueueInfo>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::list_queues(&Store::sqlite(c)),
            Engine::Postgres(pg) => pg.blocking(pg.list_queues()),
        }
    }

    fn set_queue_attributes(
        &self,
        name: &str,
        attributes: &queues::QueueAttributes,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::queues::set_queue_attributes(&Store::sqlite(c), name, attributes, now_ms)
            }
            Engine::Postgres(pg) => pg.blocking(pg.set_queue_attributes(name, attributes, now_ms)),
        }
    }

    fn delete_queue(&self, name: &str) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::delete_queue(&Store::sqlite(c), name),
            Engine::Postgres(pg) => pg.blocking(pg.delete_queue(name)),
        }
    }

    fn purge_queue(&self, name: &str) -> Result<u64, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::purge_queue(&mut Store::sqlite(c), name),
            Engine::Postgres(pg) => pg.blocking(pg.purge_queue(name)),
        }
    }

    fn send(
        &self,
        queue: &str,
        messages: &[queues::NewMessage],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::send(&mut Store::sqlite(c), queue, messages, now_ms),
            Engine::Postgres(pg) => pg.blocking(pg.send(queue, messages, now_ms)),
        }
    }

    fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility_ms: i64,
        token: &str,
        now_ms: i64,
    ) -> Result<queues::Received, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::receive(
                &mut Store::sqlite(c),
                queue,
                max,
                visibility_ms,
                token,
                now_ms,
            ),
            Engine::Postgres(pg) => {
                pg.blocking(pg.receive(queue, max, visibility_ms, token, now_ms))
            }
        }
    }

    fn delete_message(&self, queue: &str, receipt: &str) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::delete_message(&Store::sqlite(c), queue, receipt),
            Engine::Postgres(pg) => pg.blocking(pg.delete_message(queue, receipt)),
        }
    }

    fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visible_at_ms: i64,
    ) -> Result<bool, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => {
                db::queues::change_visibility(&Store::sqlite(c), queue, receipt, visible_at_ms)
            }
            Engine::Postgres(pg) => {
                pg.blocking(pg.change_visibility(queue, receipt, visible_at_ms))
            }
        }
    }

    fn queue_counts(&self, queue: &str, now_ms: i64) -> Result<queues::QueueCounts, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::queue_counts(&Store::sqlite(c), queue, now_ms),
            Engine::Postgres(pg) => pg.blocking(pg.queue_counts(queue, now_ms)),
        }
    }

    fn next_visible_at(&self, queue: &str) -> Result<Option<i64>, StoreError> {
        match self.engine() {
            Engine::Sqlite(c) => db::queues::next_visible_at(&Store::sqlite(c), queue),
            Engine::Postgres(pg) => pg.blocking(pg.next_visible_at(queue)),
        }
    }
}
