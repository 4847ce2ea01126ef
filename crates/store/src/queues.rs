//! Queues as the store keeps them (SQS-like): messages that a receive
//! hides for a visibility timeout under a fresh receipt handle, that a
//! delete by that handle removes, and that come back when the timeout ends
//! without a delete, until a redrive policy moves them to a dead-letter
//! queue.
//!
//! [`Queues`] is the whole interface; SQLite (`db/queues.rs`) and
//! PostgreSQL (`pg/queues.rs`) implement it with the same statements. Times
//! are milliseconds since the Unix epoch and come in as parameters; the
//! decisions (visible now? redriven? expired?) are the plain functions
//! below, which both engines' SQL follows.

use serde::Serialize;

use crate::StoreError;

/// SQS's defaults and limits for queue attributes (seconds, bytes).
pub const DEFAULT_VISIBILITY_TIMEOUT: u32 = 30;
pub const MAX_VISIBILITY_TIMEOUT: u32 = 43_200;
/// Four days.
pub const DEFAULT_RETENTION: u32 = 345_600;
pub const MIN_RETENTION: u32 = 60;
/// Fourteen days.
pub const MAX_RETENTION: u32 = 1_209_600;
pub const MAX_DELAY: u32 = 900;
pub const MAX_RECEIVE_WAIT: u32 = 20;
/// 256 KiB: the largest message SQS takes.
pub const MAX_MESSAGE_SIZE: u32 = 262_144;
pub const MIN_MESSAGE_SIZE: u32 = 1_024;
pub const MAX_RECEIVE_COUNT: u32 = 1_000;

/// Where messages received too often go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redrive {
    /// The dead-letter queue's name (its ARN's last field).
    pub dead_letter_queue: String,
    /// A message received this many times without a delete is moved on its
    /// next receive.
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueAttributes {
    pub visibility_timeout_secs: u32,
    pub retention_secs: u32,
    /// Every message sent waits this long before its first receive, unless
    /// it names its own delay.
    pub delay_secs: u32,
    /// Long polling for receives that do not name a wait.
    pub receive_wait_secs: u32,
    pub maximum_message_size: u32,
    pub redrive: Option<Redrive>,
}

impl Default for QueueAttributes {
    fn default() -> Self {
        QueueAttributes {
            visibility_timeout_secs: DEFAULT_VISIBILITY_TIMEOUT,
            retention_secs: DEFAULT_RETENTION,
            delay_secs: 0,
            receive_wait_secs: 0,
            maximum_message_size: MAX_MESSAGE_SIZE,
            redrive: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueInfo {
    pub name: String,
    pub attributes: QueueAttributes,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub id: String,
    pub body: String,
    /// Message attributes as the API keeps them (JSON text, opaque here).
    pub message_attributes: String,
    pub md5_of_body: String,
    pub md5_of_message_attributes: Option<String>,
    /// Who sent it (`SenderId`).
    pub sender: String,
    /// When its first receive may happen (now + its delay).
    pub visible_at_ms: i64,
}

/// A message as a receive hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: String,
    pub body: String,
    pub message_attributes: String,
    pub md5_of_body: String,
    pub md5_of_message_attributes: Option<String>,
    pub sender: String,
    pub sent_at_ms: i64,
    /// Counting this receive.
    pub receive_count: u32,
    pub first_received_at_ms: i64,
    /// Deletes and visibility changes name the message by this; a later
    /// receive gives it a new one.
    pub receipt_handle: String,
}

/// What one receive did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Received {
    pub messages: Vec<QueueMessage>,
    /// Messages moved to the dead-letter queue instead of being handed out.
    pub dead_lettered: usize,
}

/// Messages of a queue by state (SQS's approximate counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueCounts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

/// Where a message stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// A receive may take it.
    Visible,
    /// Received, hidden until its visibility timeout ends.
    InFlight,
    /// Sent with a delay that has not passed.
    Delayed,
}

/// `received`: it has been handed out at least once.
pub fn message_state(visible_at_ms: i64, received: bool, now_ms: i64) -> MessageState {
    if visible_at_ms <= now_ms {
        MessageState::Visible
    } else if received {
        MessageState::InFlight
    } else {
        MessageState::Delayed
    }
}

/// A visible message received `receive_count` times already goes to the
/// dead-letter queue instead of being handed out again.
pub fn redrive_due(receive_count: u32, redrive: Option<&Redrive>) -> bool {
    redrive.is_some_and(|r| receive_count >= r.max_receive_count)
}

/// Messages sent at or before this moment have outlived the retention.
pub fn retention_cutoff(now_ms: i64, retention_secs: u32) -> i64 {
    now_ms.saturating_sub(i64::from(retention_secs) * 1000)
}

/// A receipt handle: the receive's random token, the message and its
/// receive count, so every receive of a message gets a different one.
pub fn receipt_handle(token: &str, message_id: &str, receive_count: u32) -> String {
    format!("{token}.{message_id}.{receive_count}")
}

/// Whether `handle` has the shape [`receipt_handle`] gives (a handle that
/// does not is invalid; one that does but is stale is a no-op to delete).
pub fn well_formed_receipt(handle: &str) -> bool {
    let parts: Vec<&str> = handle.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty()) && parts[2].parse::<u32>().is_ok()
}

/// How a create went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    /// A queue of that name exists, with these attributes (SQS answers its
    /// URL when they match the request's, and an error when they do not).
    Exists(QueueAttributes),
}

/// The queue store. Every call is one short transaction.
pub trait Queues {
    fn create_queue(
        &self,
        name: &str,
        attributes: &QueueAttributes,
        now_ms: i64,
    ) -> Result<Created, StoreError>;

    fn queue(&self, name: &str) -> Result<Option<QueueInfo>, StoreError>;

    /// Every queue, by name.
    fn list_queues(&self) -> Result<Vec<QueueInfo>, StoreError>;

    /// `UnknownQueue` when there is no such queue.
    fn set_queue_attributes(
        &self,
        name: &str,
        attributes: &QueueAttributes,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// The queue and its messages; `false` when there was none.
    fn delete_queue(&self, name: &str) -> Result<bool, StoreError>;

    /// Deletes every message; how many there were.
    fn purge_queue(&self, name: &str) -> Result<u64, StoreError>;

    /// Writes `messages` in one transaction (`UnknownQueue` for no queue).
    fn send(&self, queue: &str, messages: &[NewMessage], now_ms: i64) -> Result<(), StoreError>;

    /// Claims up to `max` visible messages, oldest first: each gets a new
    /// receipt handle (from `token`), one more receive and is hidden until
    /// `now + visibility_ms`. Messages past the retention are deleted
    /// first; visible ones already received `maxReceiveCount` times move to
    /// the dead-letter queue (when it exists) instead. Two receivers never
    /// get the same message from one round.
    fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility_ms: i64,
        token: &str,
        now_ms: i64,
    ) -> Result<Received, StoreError>;

    /// Deletes the message holding `receipt`; `false` when none does (a
    /// stale handle after another receive: SQS treats that as done).
    fn delete_message(&self, queue: &str, receipt: &str) -> Result<bool, StoreError>;

    /// Hides the message holding `receipt` until `visible_at_ms`; `false`
    /// when no message holds it.
    fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visible_at_ms: i64,
    ) -> Result<bool, StoreError>;

    fn queue_counts(&self, queue: &str, now_ms: i64) -> Result<QueueCounts, StoreError>;

    /// The earliest moment a message of the queue becomes visible (now or
    /// in the past when one is visible already); `None` for an empty queue.
    fn next_visible_at(&self, queue: &str) -> Result<Option<i64>, StoreError>;
}

pub use rouse_manifest::names::{check as check_name, NameKind};

/// AWS's rule for queue names (`.fifo` only on FIFO queues).
pub fn valid_queue_name(name: &str) -> bool {
    check_name(NameKind::Queue, name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_visible_from_its_moment_on() {
        assert_eq!(message_state(1_000, false, 999), MessageState::Delayed);
        assert_eq!(message_state(1_000, true, 999), MessageState::InFlight);
        assert_eq!(message_state(1_000, true, 1_000), MessageState::Visible);
        assert_eq!(message_state(1_000, false, 5_000), MessageState::Visible);
    }

    #[test]
    fn redrive_moves_a_message_received_max_receive_count_times() {
        let policy = Redrive {
            dead_letter_queue: "dlq".into(),
            max_receive_count: 3,
        };
        assert!(!redrive_due(0, Some(&policy)));
        assert!(!redrive_due(2, Some(&policy)));
        assert!(redrive_due(3, Some(&policy)));
        assert!(redrive_due(9, Some(&policy)));
        assert!(!redrive_due(1_000, None), "no policy: never");
    }

    #[test]
    fn retention_counts_back_from_now() {
        assert_eq!(retention_cutoff(100_000, 60), 40_000);
        assert_eq!(retention_cutoff(0, MAX_RETENTION), -1_209_600_000);
    }

    #[test]
    fn receipt_handles_differ_per_receive_and_are_recognised() {
        let a = receipt_handle("t1", "m", 1);
        let b = receipt_handle("t2", "m", 2);
        assert_ne!(a, b);
        assert!(well_formed_receipt(&a));
        for bad in ["", "x", "a.b", "a..1", "a.b.c", "a.b.1.2"] {
            assert!(!well_formed_receipt(bad), "{bad}");
        }
    }
}
