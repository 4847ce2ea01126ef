//! The async event queue against real engines (a SQLite file and a private
//! PostgreSQL): claims, leases, reschedules, dead letters and redrive, with
//! time as a parameter.

mod engines;

use std::time::Duration;

use engines::Engine;
use rouse_store::events::{DeadLetter, EventState, NewEvent, Retry};
use rouse_store::AsyncEvents;

const LEASE: Duration = Duration::from_secs(60);

fn event(id: &str, function: &str, at: i64) -> NewEvent {
    NewEvent {
        id: id.into(),
        function: function.into(),
        version: None,
        payload: format!(r#"{{"id":"{id}"}}"#).into_bytes(),
        accepted_at_ms: at,
    }
}

fn ids(events: &[rouse_store::events::EventRecord]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

async fn enqueued_events_survive_reopening_and_are_claimed_once_oldest_first(e: Engine) {
    {
        let store = e.open().await;
        store.enqueue(&event("b", "f", 2_000)).unwrap();
        store.enqueue(&event("a", "f", 1_000)).unwrap();
        store.enqueue(&event("later", "g", 9_000)).unwrap();
    }
    let store = e.open().await;
    assert_eq!(store.next_due().unwrap(), Some(1_000));

    let claimed = store.claim_due("n1", 5_000, LEASE, 10).unwrap();
    assert_eq!(ids(&claimed), ["a", "b"], "not yet due: later");
    assert_eq!(claimed[0].payload, br#"{"id":"a"}"#);
    assert_eq!(claimed[0].claimed_by.as_deref(), Some("n1"));
    assert_eq!(claimed[0].claim_until_ms, Some(65_000));

    // Claimed rows are nobody else's until the lease ends.
    assert!(store.claim_due("n2", 5_001, LEASE, 10).unwrap().is_empty());
    assert_eq!(store.next_due().unwrap(), Some(9_000));
    assert_eq!(
        ids(&store.claim_due("n2", 9_000, LEASE, 10).unwrap()),
        ["later"]
    );
}

async fn limit_caps_a_claim(e: Engine) {
    let store = e.open().await;
    for i in 0..5 {
        store.enqueue(&event(&format!("e{i}"), "f", i)).unwrap();
    }
    assert_eq!(
        ids(&store.claim_due("n", 10, LEASE, 2).unwrap()),
        ["e0", "e1"]
    );
    assert_eq!(
        ids(&store.claim_due("n", 10, LEASE, 10).unwrap()),
        ["e2", "e3", "e4"]
    );
}

async fn an_expired_claim_is_claimed_again_and_the_old_holder_cannot_finish_it(e: Engine) {
    let store = e.open().await;
    store.enqueue(&event("e", "f", 0)).unwrap();
    store.claim_due("dead-node", 0, LEASE, 10).unwrap();
    assert_eq!(
        store.next_due().unwrap(),
        Some(60_000),
        "when the lease ends"
    );
    assert!(store.claim_due("n2", 59_999, LEASE, 10).unwrap().is_empty());
    assert_eq!(
        ids(&store.claim_due("n2", 60_000, LEASE, 10).unwrap()),
        ["e"]
    );
    assert!(!store.complete("e", "dead-node").unwrap());
    assert!(store.complete("e", "n2").unwrap());
    assert_eq!(store.next_due().unwrap(), None);
}

async fn a_restarting_node_takes_back_its_own_claims_at_once(e: Engine) {
    let store = e.open().await;
    store.enqueue(&event("mine", "f", 0)).unwrap();
    store.enqueue(&event("theirs", "f", 1)).unwrap();
    store.claim_due("n1", 0, LEASE, 1).unwrap();
    store.claim_due("n2", 1, LEASE, 1).unwrap();
    assert_eq!(store.release_claims("n1").unwrap(), 1);
    assert_eq!(ids(&store.claim_due("n1", 2, LEASE, 10).unwrap()), ["mine"]);
}

async fn retry_reschedules_and_dead_letter_keeps_the_outcome(e: Engine) {
    let store = e.open().await;
    store.enqueue(&event("e", "f", 0)).unwrap();
    store.claim_due("n", 0, LEASE, 10).unwrap();
    let retry = Retry {
        attempts: 1,
        throttles: 0,
        next_attempt_at_ms: 1_000,
        last_error: Some("ValueError".into()),
    };
    assert!(store.retry_at("e", "n", &retry).unwrap());
    assert!(
        !store.retry_at("e", "n", &retry).unwrap(),
        "no longer claimed"
    );
    assert_eq!(store.next_due().unwrap(), Some(1_000));
    assert!(store.claim_due("n", 999, LEASE, 10).unwrap().is_empty());
    let again = store.claim_due("n", 1_000, LEASE, 10).unwrap();
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("ValueError"));

    let dead = DeadLetter {
        attempts: 3,
        condition: "RetriesExhausted".into(),
        last_error: None,
        response: Some(br#"{"errorType":"ValueError"}"#.to_vec()),
    };
    assert!(store.dead_letter("e", "n", &dead).unwrap());
    assert_eq!(store.next_due().unwrap(), None, "dead events are not due");
    let shown = store.event("f", "e").unwrap().unwrap();
    assert_eq!(shown.state, EventState::Dead);
    assert_eq!(shown.attempts, 3);
    assert_eq!(shown.condition.as_deref(), Some("RetriesExhausted"));
    assert_eq!(shown.last_error.as_deref(), Some("ValueError"), "kept");
    assert_eq!(
        shown.response.as_deref(),
        Some(&br#"{"errorType":"ValueError"}"#[..])
    );
    assert!(
        store.event("g", "e").unwrap().is_none(),
        "scoped to its function"
    );
}

async fn redrive_queues_dead_letters_again_as_new_invocations(e: Engine) {
    let store = e.open().await;
    for id in ["a", "b", "c"] {
        store.enqueue(&event(id, "f", 0)).unwrap();
    }
    store.enqueue(&event("p", "f", 5)).unwrap();
    let claimed = store.claim_due("n", 0, LEASE, 3).unwrap();
    let dead = DeadLetter {
        attempts: 3,
        condition: "RetriesExhausted".into(),
        last_error: Some("boom".into()),
        response: None,
    };
    for e in &claimed {
        store.dead_letter(&e.id, "n", &dead).unwrap();
    }
    let counts = store.event_counts().unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].1.pending, counts[0].1.dead), (1, 3));
    let listed = store.events_of("f", 100).unwrap();
    assert_eq!(ids(&listed), ["a", "b", "c", "p"], "dead first");

    assert_eq!(store.redrive("f", Some("b"), 10_000).unwrap(), 1);
    assert_eq!(
        store.redrive("f", Some("p"), 10_000).unwrap(),
        0,
        "pending: not dead"
    );
    let b = store.event("f", "b").unwrap().unwrap();
    assert_eq!(b.state, EventState::Pending);
    assert_eq!(
        (b.attempts, b.accepted_at_ms, b.next_attempt_at_ms),
        (0, 10_000, 10_000)
    );
    assert_eq!(b.condition, None);
    assert_eq!(store.redrive("f", None, 20_000).unwrap(), 2);
    assert_eq!(store.redrive("g", None, 20_000).unwrap(), 0);
    let counts = store.event_counts().unwrap();
    assert_eq!((counts[0].1.pending, counts[0].1.dead), (4, 0));
}

async fn two_stores_on_one_file_never_claim_the_same_event(e: Engine) {
    let a = e.open().await;
    let b = e.open().await;
    for i in 0..200 {
        a.enqueue(&event(&format!("e{i:03}"), "f", i)).unwrap();
    }
    let (got_a, got_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| {
            let mut got = Vec::new();
            for _ in 0..50 {
                got.extend(a.claim_due("a", 1_000, LEASE, 3).unwrap());
            }
            got
        });
        let tb = s.spawn(|| {
            let mut got = Vec::new();
            for _ in 0..50 {
                got.extend(b.claim_due("b", 1_000, LEASE, 3).unwrap());
            }
            got
        });
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let mut all: Vec<&str> = ids(&got_a).into_iter().chain(ids(&got_b)).collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "no event claimed twice");
    assert_eq!(n, 200);
}

on_both_engines!(
    enqueued_events_survive_reopening_and_are_claimed_once_oldest_first,
    limit_caps_a_claim,
    an_expired_claim_is_claimed_again_and_the_old_holder_cannot_finish_it,
    a_restarting_node_takes_back_its_own_claims_at_once,
    retry_reschedules_and_dead_letter_keeps_the_outcome,
    redrive_queues_dead_letters_again_as_new_invocations,
    two_stores_on_one_file_never_claim_the_same_event
);
