//! Queues in SQLite (see `crate::queues` for the contract). A receive is
//! one immediate transaction: SQLite's write lock makes it the only
//! receiver of that moment, so no message is handed out twice in one
//! round. The PostgreSQL twin (`pg/queues.rs`) takes row locks with
//! `FOR UPDATE SKIP LOCKED` instead.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::queues::{
    self, Created, NewMessage, QueueAttributes, QueueCounts, QueueInfo, QueueMessage, Received,
    Redrive,
};
use crate::StoreError;

/// The schema step that adds queues (appended to `db::MIGRATIONS`).
pub(crate) const MIGRATION: &str = "CREATE TABLE queues (
        name               TEXT PRIMARY KEY,
        visibility_timeout INTEGER NOT NULL,
        retention          INTEGER NOT NULL,
        delay              INTEGER NOT NULL,
        receive_wait       INTEGER NOT NULL,
        max_message_size   INTEGER NOT NULL,
        dead_letter_queue  TEXT,
        max_receive_count  INTEGER,
        created_at         INTEGER NOT NULL,
        updated_at         INTEGER NOT NULL
    );
    CREATE TABLE queue_messages (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        queue             TEXT NOT NULL REFERENCES queues (name) ON DELETE CASCADE,
        id                TEXT NOT NULL,
        body              TEXT NOT NULL,
        attributes        TEXT NOT NULL,
        md5_of_body       TEXT NOT NULL,
        md5_of_attributes TEXT,
        sender            TEXT NOT NULL,
        sent_at           INTEGER NOT NULL,
        visible_at        INTEGER NOT NULL,
        receive_count     INTEGER NOT NULL DEFAULT 0,
        first_received_at INTEGER,
        receipt           TEXT
    );
    CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at);
    CREATE UNIQUE INDEX queue_messages_receipt ON queue_messages (receipt);";

const QUEUE_COLUMNS: &str = "name, visibility_timeout, retention, delay, receive_wait,
    max_message_size, dead_letter_queue, max_receive_count, created_at, updated_at";

fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn info(row: &rusqlite::Row<'_>) -> rusqlite::Result<QueueInfo> {
    let dlq: Option<String> = row.get(6)?;
    let max: Option<i64> = row.get(7)?;
    Ok(QueueInfo {
        name: row.get(0)?,
        attributes: QueueAttributes {
            visibility_timeout_secs: to_u32(row.get(1)?),
            retention_secs: to_u32(row.get(2)?),
            delay_secs: to_u32(row.get(3)?),
            receive_wait_secs: to_u32(row.get(4)?),
            maximum_message_size: to_u32(row.get(5)?),
            redrive: dlq.zip(max).map(|(dead_letter_queue, max)| Redrive {
                dead_letter_queue,
                max_receive_count: to_u32(max),
            }),
        },
        created_at_ms: row.get(8)?,
        updated_at_ms: row.get(9)?,
    })
}

fn redrive_columns(a: &QueueAttributes) -> (Option<&str>, Option<u32>) {
    match &a.redrive {
        Some(r) => (
            Some(r.dead_letter_queue.as_str()),
            Some(r.max_receive_count),
        ),
        None => (None, None),
    }
}

pub(crate) fn create_queue(
    conn: &mut Connection,
    name: &str,
    a: &QueueAttributes,
    now_ms: i64,
) -> Result<Created, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (dlq, max) = redrive_columns(a);
    let inserted = tx.execute(
        "INSERT INTO queues (name, visibility_timeout, retention, delay, receive_wait,
             max_message_size, dead_letter_queue, max_receive_count, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (name) DO NOTHING",
        params![
            name,
            a.visibility_timeout_secs,
            a.retention_secs,
            a.delay_secs,
            a.receive_wait_secs,
            a.maximum_message_size,
            dlq,
            max,
            now_ms
        ],
    )? > 0;
    let outcome = if inserted {
        Created::Created
    } else {
        let existing = queue_in(&tx, name)?
            .ok_or_else(|| StoreError::Corrupt(format!("queue {name} vanished")))?;
        Created::Exists(existing.attributes)
    };
    tx.commit()?;
    Ok(outcome)
}

fn queue_in(conn: &Connection, name: &str) -> Result<Option<QueueInfo>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ?1"
        ))?
        .query_row([name], info)
        .optional()?)
}

pub(crate) fn queue(conn: &Connection, name: &str) -> Result<Option<QueueInfo>, StoreError> {
    queue_in(conn, name)
}

pub(crate) fn list_queues(conn: &Connection) -> Result<Vec<QueueInfo>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name"))?;
    let rows = stmt.query_map([], info)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn set_queue_attributes(
    conn: &Connection,
    name: &str,
    a: &QueueAttributes,
    now_ms: i64,
) -> Result<(), StoreError> {
    let (dlq, max) = redrive_columns(a);
    let n = conn.execute(
        "UPDATE queues SET visibility_timeout = ?2, retention = ?3, delay = ?4,
             receive_wait = ?5, max_message_size = ?6, dead_letter_queue = ?7,
             max_receive_count = ?8, updated_at = ?9
         WHERE name = ?1",
        params![
            name,
            a.visibility_timeout_secs,
            a.retention_secs,
            a.delay_secs,
            a.receive_wait_secs,
            a.maximum_message_size,
            dlq,
            max,
            now_ms
        ],
    )?;
    if n == 0 {
        return Err(StoreError::UnknownQueue(name.to_string()));
    }
    Ok(())
}

pub(crate) fn delete_queue(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    // Messages go with it (ON DELETE CASCADE).
    Ok(conn.execute("DELETE FROM queues WHERE name = ?1", [name])? > 0)
}

pub(crate) fn purge_queue(conn: &mut Connection, name: &str) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if queue_in(&tx, name)?.is_none() {
        return Err(StoreError::UnknownQueue(name.to_string()));
    }
    let n = tx.execute("DELETE FROM queue_messages WHERE queue = ?1", [name])?;
    tx.commit()?;
    Ok(n as u64)
}

pub(crate) fn send(
    conn: &mut Connection,
    queue: &str,
    messages: &[NewMessage],
    now_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if queue_in(&tx, queue)?.is_none() {
        return Err(StoreError::UnknownQueue(queue.to_string()));
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO queue_messages (queue, id, body, attributes, md5_of_body,
                 md5_of_attributes, sender, sent_at, visible_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for m in messages {
            insert.execute(params![
                queue,
                m.id,
                m.body,
                m.message_attributes,
                m.md5_of_body,
                m.md5_of_message_attributes,
                m.sender,
                now_ms,
                m.visible_at_ms
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A candidate of a receive: (seq, id, receive count).
type Candidate = (i64, String, u32);

pub(crate) fn receive(
    conn: &mut Connection,
    queue: &str,
    max: usize,
    visibility_ms: i64,
    token: &str,
    now_ms: i64,
) -> Result<Received, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let info = queue_in(&tx, queue)?.ok_or_else(|| StoreError::UnknownQueue(queue.to_string()))?;
    let cutoff = queues::retention_cutoff(now_ms, info.attributes.retention_secs);
    tx.execute(
        "DELETE FROM queue_messages WHERE queue = ?1 AND sent_at <= ?2",
        params![queue, cutoff],
    )?;
    // A redrive to a queue that does not exist keeps the message here.
    let redrive = match &info.attributes.redrive {
        Some(r) if queue_in(&tx, &r.dead_letter_queue)?.is_some() => Some(r.clone()),
        _ => None,
    };
    let mut received = Received::default();
    loop {
        let want = max.saturating_sub(received.messages.len());
        if want == 0 {
            break;
        }
        let candidates: Vec<Candidate> = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, id, receive_count FROM queue_messages
                 WHERE queue = ?1 AND visible_at <= ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![queue, now_ms, i64::try_from(want).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?, to_u32(r.get(2)?))),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        if candidates.is_empty() {
            break;
        }
        for (seq, id, count) in candidates {
            match &redrive {
                Some(r) if queues::redrive_due(count, Some(r)) => {
                    tx.execute(
                        "UPDATE queue_messages SET queue = ?2, receive_count = 0,
                             first_received_at = NULL, receipt = NULL, visible_at = ?3
                         WHERE seq = ?1",
                        params![seq, r.dead_letter_queue, now_ms],
                    )?;
                    received.dead_lettered += 1;
                }
                _ => {
                    let count = count.saturating_add(1);
                    let handle = queues::receipt_handle(token, &id, count);
                    let message = tx
                        .prepare_cached(
                            "UPDATE queue_messages SET receive_count = ?2, receipt = ?3,
                                 first_received_at = COALESCE(first_received_at, ?4),
                                 visible_at = ?5
                             WHERE seq = ?1
                             RETURNING id, body, attributes, md5_of_body, md5_of_attributes,
                                 sender, sent_at, receive_count, first_received_at, receipt",
                        )?
                        .query_row(
                            params![
                                seq,
                                count,
                                handle,
                                now_ms,
                                now_ms.saturating_add(visibility_ms)
                            ],
                            |r| {
                                Ok(QueueMessage {
                                    id: r.get(0)?,
                                    body: r.get(1)?,
                                    message_attributes: r.get(2)?,
                                    md5_of_body: r.get(3)?,
                                    md5_of_message_attributes: r.get(4)?,
                                    sender: r.get(5)?,
                                    sent_at_ms: r.get(6)?,
                                    receive_count: to_u32(r.get(7)?),
                                    first_received_at_ms: r.get(8)?,
                                    receipt_handle: r.get(9)?,
                                })
                            },
                        )?;
                    received.messages.push(message);
                }
            }
        }
    }
    tx.commit()?;
    Ok(received)
}

pub(crate) fn delete_message(
    conn: &Connection,
    queue: &str,
    receipt: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2")?
        .execute([queue, receipt])?
        > 0)
}

pub(crate) fn change_visibility(
    conn: &Connection,
    queue: &str,
    receipt: &str,
    visible_at_ms: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE queue_messages SET visible_at = ?3 WHERE queue = ?1 AND receipt = ?2",
        )?
        .execute(params![queue, receipt, visible_at_ms])?
        > 0)
}

pub(crate) fn queue_counts(
    conn: &Connection,
    queue: &str,
    now_ms: i64,
) -> Result<QueueCounts, StoreError> {
    let (visible, in_flight, delayed): (i64, i64, i64) = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(visible_at <= ?2), 0),
                    COALESCE(SUM(visible_at > ?2 AND receipt IS NOT NULL), 0),
                    COALESCE(SUM(visible_at > ?2 AND receipt IS NULL), 0)
             FROM queue_messages WHERE queue = ?1",
        )?
        .query_row(params![queue, now_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(QueueCounts {
        visible: n(visible),
        in_flight: n(in_flight),
        delayed: n(delayed),
    })
}

pub(crate) fn next_visible_at(conn: &Connection, queue: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT MIN(visible_at) FROM queue_messages WHERE queue = ?1")?
        .query_row([queue], |r| r.get(0))?)
}
