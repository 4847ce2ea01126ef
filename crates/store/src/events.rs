//! The work queue of asynchronous (`Event`) invocations, as the store keeps
//! it: an event is written before its 202 is sent, claimed by one node for a
//! lease, and then completed, rescheduled or dead-lettered.
//!
//! [`AsyncEvents`] is the whole interface, so a second engine (PostgreSQL,
//! for a cluster) implements the same calls; SQLite is the one today
//! (`db/events.rs`). Times are milliseconds since the Unix epoch and always
//! come in as parameters, never from a clock inside the store.

use std::time::Duration;

use serde::Serialize;

use crate::StoreError;

/// An accepted invocation, as it is first written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The request id the caller got with its 202.
    pub id: String,
    pub function: String,
    /// The version resolved from the caller's qualifier (`None`: the current one).
    pub version: Option<u32>,
    pub payload: Vec<u8>,
    pub accepted_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    /// Waiting for its next attempt, or claimed by a node running it.
    Pending,
    /// Given up on and kept for `rouse events show|redrive`.
    Dead,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Dead => "dead",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<EventState> {
        match text {
            "pending" => Some(EventState::Pending),
            "dead" => Some(EventState::Dead),
            _ => None,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: String,
    pub function: String,
    pub version: Option<u32>,
    pub payload: Vec<u8>,
    pub accepted_at_ms: i64,
    /// Times the function ran it (Lambda's `approximateInvokeCount`).
    pub attempts: u32,
    /// Times it was throttled in a row (sets the back-off).
    pub throttles: u32,
    pub next_attempt_at_ms: i64,
    pub claimed_by: Option<String>,
    pub claim_until_ms: Option<i64>,
    pub state: EventState,
    pub last_error: Option<String>,
    /// Why a dead event was given up (`RetriesExhausted`, `EventAgeExceeded`).
    pub condition: Option<String>,
    /// What the last attempt returned (the error JSON of a function error).
    pub response: Option<Vec<u8>>,
}

/// An attempt that will be made again.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub attempts: u32,
    pub throttles: u32,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
}

/// An event given up on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub attempts: u32,
    pub condition: String,
    pub last_error: Option<String>,
    pub response: Option<Vec<u8>>,
}

/// Pending and dead events of one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct EventCounts {
    pub pending: u64,
    pub dead: u64,
}

/// The async event queue. Every call is one short transaction.
///
/// Delivery is at least once: a node that dies holding a claim loses it when
/// the lease runs out, and the event is claimed again (by any node).
pub trait AsyncEvents {
    /// Writes an accepted event, due at once. Returns when it is committed.
    fn enqueue(&self, event: &NewEvent) -> Result<(), StoreError>;

    /// Claims up to `limit` due events for `node` until `now + lease`: pending,
    /// due by `now`, and unclaimed or with an expired claim. Oldest due first.
    /// Two nodes never get the same event from one round of claims.
    fn claim_due(
        &self,
        node: &str,
        now_ms: i64,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// When the next pending event becomes claimable (its next attempt, or
    /// the end of the claim holding it); `None` when nothing is pending.
    fn next_due(&self) -> Result<Option<i64>, StoreError>;

    /// Removes an event `node` ran to the end. `false` if `node` no longer
    /// holds it (its lease ran out and another node claimed it).
    fn complete(&self, id: &str, node: &str) -> Result<bool, StoreError>;

    /// Reschedules an event `node` holds, releasing the claim.
    fn retry_at(&self, id: &str, node: &str, retry: &Retry) -> Result<bool, StoreError>;

    /// Moves an event `node` holds to the dead-letter list.
    fn dead_letter(&self, id: &str, node: &str, dead: &DeadLetter) -> Result<bool, StoreError>;

    /// Drops every claim `node` holds (a node restarting after a crash takes
    /// its events back at once instead of waiting for the leases).
    fn release_claims(&self, node: &str) -> Result<usize, StoreError>;

    /// The events of `function` (dead first, then pending, oldest first), at most `limit`.
    fn events_of(&self, function: &str, limit: usize) -> Result<Vec<EventRecord>, StoreError>;

    fn event(&self, function: &str, id: &str) -> Result<Option<EventRecord>, StoreError>;

    /// Queues dead events of `function` again as new invocations accepted at
    /// `now` (all of them, or the one with `id`); returns how many.
    fn redrive(&self, function: &str, id: Option<&str>, now_ms: i64) -> Result<usize, StoreError>;

    /// Pending and dead counts per function, by function name.
    fn event_counts(&self) -> Result<Vec<(String, EventCounts)>, StoreError>;
}
