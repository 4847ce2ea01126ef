//! Who polls a shard: one lease per (mapping, shard), held by one node
//! until a time, renewed by its poller, taken over once it has expired.
//! A node that dies stops renewing, so its shards move to another node
//! within the lease's time to live and resume from the last checkpoint.
//!
//! The decision is a plain function of the lease row and the time; the
//! engines read the row, ask [`decide`] and write the answer back with a
//! compare-and-set on the row they read, so two nodes deciding at once
//! cannot both win.

use serde::Serialize;

/// A lease row as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub mapping: String,
    pub shard: u32,
    /// The id of the node whose poller holds it.
    pub node: String,
    /// Valid before this time (ms since the epoch).
    pub until_ms: i64,
}

/// What a node asking for a lease should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nobody holds it: write a new row.
    Take,
    /// Expired: take it over from its holder (which may be the asking
    /// node itself, if its renewals failed for a whole lease; it must read
    /// the checkpoint again all the same).
    TakeOver { from: String, until_ms: i64 },
    /// The asking node holds it and it has not expired: move the expiry on.
    Renew,
    /// Another node holds it; ask again at `until_ms`.
    Wait { holder: String, until_ms: i64 },
}

/// The step for `node` asking at `now_ms`, given the stored lease.
pub fn decide(current: Option<&Lease>, node: &str, now_ms: i64) -> Step {
    match current {
        None => Step::Take,
        Some(lease) if lease.until_ms <= now_ms => Step::TakeOver {
            from: lease.node.clone(),
            until_ms: lease.until_ms,
        },
        Some(lease) if lease.node == node => Step::Renew,
        Some(lease) => Step::Wait {
            holder: lease.node.clone(),
            until_ms: lease.until_ms,
        },
    }
}

/// Whether `node` may commit a checkpoint at `now_ms`: it holds a lease
/// that has not expired. A poller whose lease lapsed commits nothing, even
/// if nobody took the lease over yet: the batch runs again.
pub fn may_commit(current: Option<&Lease>, node: &str, now_ms: i64) -> bool {
    current.is_some_and(|lease| lease.node == node && now_ms < lease.until_ms)
}

/// The answer to an acquire call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Held by the caller until `until_ms`. `fresh` when it was not the
    /// caller's live lease before this call (the checkpoint must be read
    /// again: another node may have moved it).
    Held { until_ms: i64, fresh: bool },
    /// Held by another node until `until_ms`.
    Busy { holder: String, until_ms: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(node: &str, until_ms: i64) -> Lease {
        Lease {
            mapping: "f/s".into(),
            shard: 0,
            node: node.into(),
            until_ms,
        }
    }

    #[test]
    fn a_free_shard_is_taken() {
        assert_eq!(decide(None, "a", 0), Step::Take);
    }

    #[test]
    fn the_holder_renews_a_live_lease_and_takes_a_lapsed_one_anew() {
        assert_eq!(decide(Some(&lease("a", 100)), "a", 50), Step::Renew);
        assert_eq!(
            decide(Some(&lease("a", 100)), "a", 100),
            Step::TakeOver {
                from: "a".into(),
                until_ms: 100
            }
        );
    }

    #[test]
    fn another_holder_is_waited_for_until_its_lease_expires() {
        assert_eq!(
            decide(Some(&lease("a", 100)), "b", 99),
            Step::Wait {
                holder: "a".into(),
                until_ms: 100
            }
        );
        assert_eq!(
            decide(Some(&lease("a", 100)), "b", 100),
            Step::TakeOver {
                from: "a".into(),
                until_ms: 100
            }
        );
    }

    #[test]
    fn only_a_live_lease_of_ones_own_commits() {
        assert!(may_commit(Some(&lease("a", 100)), "a", 99));
        assert!(!may_commit(Some(&lease("a", 100)), "a", 100));
        assert!(!may_commit(Some(&lease("a", 100)), "b", 50));
        assert!(!may_commit(None, "a", 0));
    }
}
