//! Queues against real engines (a SQLite file and a private PostgreSQL):
//! receive hides, delete by handle, visibility, redrive to a dead-letter
//! queue, retention, delays, concurrent receivers — time as a parameter.

mod engines;

use std::collections::BTreeSet;
use std::sync::Arc;

use engines::Engine;
use rouse_store::queues::{Created, NewMessage, QueueAttributes, QueueCounts, Redrive};
use rouse_store::Queues;

fn message(id: &str, visible_at_ms: i64) -> NewMessage {
    NewMessage {
        id: id.into(),
        body: format!("body of {id}"),
        message_attributes: "{}".into(),
        md5_of_body: "0".repeat(32),
        md5_of_message_attributes: None,
        sender: "rouse".into(),
        visible_at_ms,
    }
}

fn ids(messages: &[rouse_store::queues::QueueMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.id.as_str()).collect()
}

async fn received_messages_hide_until_their_timeout_and_deletes_take_the_handle(e: Engine) {
    let store = e.open().await;
    let attrs = QueueAttributes::default();
    assert_eq!(
        store.create_queue("q", &attrs, 0).unwrap(),
        Created::Created
    );
    assert_eq!(
        store.create_queue("q", &attrs, 5).unwrap(),
        Created::Exists(attrs.clone())
    );
    store
        .send("q", &[message("a", 1_000), message("b", 1_000)], 1_000)
        .unwrap();
    store.send("q", &[message("c", 1_000)], 1_000).unwrap();

    let first = store.receive("q", 2, 30_000, "t1", 2_000).unwrap();
    assert_eq!(
        ids(&first.messages),
        ["a", "b"],
        "oldest first, at most max"
    );
    let a = &first.messages[0];
    assert_eq!(a.receive_count, 1);
    assert_eq!(a.first_received_at_ms, 2_000);
    assert_eq!(a.sent_at_ms, 1_000);
    assert_eq!(a.body, "body of a");
    assert_eq!(
        store.queue_counts("q", 2_000).unwrap(),
        QueueCounts {
            visible: 1,
            in_flight: 2,
            delayed: 0
        }
    );
    // Hidden: the next receive gets only c.
    let second = store.receive("q", 10, 30_000, "t2", 3_000).unwrap();
    assert_eq!(ids(&second.messages), ["c"]);
    assert!(store
        .receive("q", 10, 30_000, "t3", 4_000)
        .unwrap()
        .messages
        .is_empty());

    // a's timeout ends: it comes back with a new handle; the old one is stale.
    let again = store.receive("q", 10, 30_000, "t4", 32_000).unwrap();
    assert_eq!(ids(&again.messages), ["a", "b"]);
    let a2 = &again.messages[0];
    assert_eq!(a2.receive_count, 2);
    assert_eq!(a2.first_received_at_ms, 2_000, "the first receive is kept");
    assert_ne!(a2.receipt_handle, a.receipt_handle);
    assert!(!store.delete_message("q", &a.receipt_handle).unwrap());
    assert!(store.delete_message("q", &a2.receipt_handle).unwrap());
    assert_eq!(
        store.queue_counts("q", 32_000).unwrap(),
        QueueCounts {
            visible: 0,
            in_flight: 2,
            delayed: 0
        }
    );

    // Visibility 0 makes b visible at once; a later one hides it longer.
    let b = &again.messages[1];
    assert!(store
        .change_visibility("q", &b.receipt_handle, 32_000)
        .unwrap());
    assert!(!store.change_visibility("q", "x.y.1", 32_000).unwrap());
    let b_again = store.receive("q", 10, 1_000, "t5", 32_000).unwrap();
    assert_eq!(ids(&b_again.messages), ["b"]);
    assert_eq!(store.next_visible_at("q").unwrap(), Some(33_000));

    assert_eq!(store.purge_queue("q").unwrap(), 2);
    assert_eq!(store.next_visible_at("q").unwrap(), None);
}

async fn delays_retention_and_deleted_queues(e: Engine) {
    let store = e.open().await;
    let attrs = QueueAttributes {
        retention_secs: 60,
        ..QueueAttributes::default()
    };
    store.create_queue("q", &attrs, 0).unwrap();
    store
        .send("q", &[message("old", 0), message("late", 10_000)], 0)
        .unwrap();
    assert_eq!(
        store.queue_counts("q", 0).unwrap(),
        QueueCounts {
            visible: 1,
            in_flight: 0,
            delayed: 1
        }
    );
    let got = store.receive("q", 10, 1, "t", 5_000).unwrap();
    assert_eq!(ids(&got.messages), ["old"], "late is still delayed");
    // Past the 60 s retention both are gone, received or not.
    assert!(store
        .receive("q", 10, 1, "t", 60_000)
        .unwrap()
        .messages
        .is_empty());
    assert_eq!(
        store.queue_counts("q", 60_000).unwrap(),
        QueueCounts::default()
    );

    assert!(matches!(
        store.send("nope", &[message("x", 0)], 0),
        Err(rouse_store::StoreError::UnknownQueue(_))
    ));
    assert!(matches!(
        store.receive("nope", 1, 1, "t", 0),
        Err(rouse_store::StoreError::UnknownQueue(_))
    ));
    store.send("q", &[message("x", 0)], 70_000).unwrap();
    assert!(store.delete_queue("q").unwrap());
    assert!(!store.delete_queue("q").unwrap());
    assert!(store.queue("q").unwrap().is_none());
    assert!(store.list_queues().unwrap().is_empty());
}

async fn messages_received_max_receive_count_times_move_to_the_dead_letter_queue(e: Engine) {
    let store = e.open().await;
    store
        .create_queue("dlq", &QueueAttributes::default(), 0)
        .unwrap();
    let attrs = QueueAttributes {
        redrive: Some(Redrive {
            dead_letter_queue: "dlq".into(),
            max_receive_count: 2,
        }),
        ..QueueAttributes::default()
    };
    store.create_queue("work", &attrs, 0).unwrap();
    assert_eq!(store.queue("work").unwrap().unwrap().attributes, attrs);
    store
        .send("work", &[message("poison", 0), message("fine", 0)], 0)
        .unwrap();
    for (round, at) in [(1, 0), (2, 1_000)] {
        let got = store.receive("work", 1, 1_000, "t", at).unwrap();
        assert_eq!(ids(&got.messages), ["poison"], "round {round}");
        assert_eq!(got.messages[0].receive_count, round);
    }
    // Third time visible: moved instead, and the next message handed out.
    let got = store.receive("work", 1, 1_000, "t", 2_000).unwrap();
    assert_eq!(got.dead_lettered, 1);
    assert_eq!(ids(&got.messages), ["fine"]);
    let dead = store.receive("dlq", 10, 1_000, "t", 2_000).unwrap();
    assert_eq!(ids(&dead.messages), ["poison"]);
    assert_eq!(dead.messages[0].receive_count, 1, "counted afresh there");
    assert_eq!(dead.messages[0].body, "body of poison");

    // Policy changed away: no more moves.
    store
        .set_queue_attributes("work", &QueueAttributes::default(), 3_000)
        .unwrap();
    assert_eq!(
        store.queue("work").unwrap().unwrap().attributes.redrive,
        None
    );
    assert!(matches!(
        store.set_queue_attributes("gone", &QueueAttributes::default(), 0),
        Err(rouse_store::StoreError::UnknownQueue(_))
    ));
}

async fn concurrent_receivers_never_get_the_same_message(e: Engine) {
    let store = Arc::new(e.open().await);
    store
        .create_queue("q", &QueueAttributes::default(), 0)
        .unwrap();
    let batch: Vec<NewMessage> = (0..200).map(|i| message(&format!("m{i}"), 0)).collect();
    store.send("q", &batch, 0).unwrap();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let store = store.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            loop {
                let r = store
                    .receive("q", 10, 60_000, &format!("w{worker}"), 1)
                    .unwrap();
                if r.messages.is_empty() {
                    return got;
                }
                got.extend(r.messages.into_iter().map(|m| m.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200, "each message handed out once");
    assert_eq!(unique.len(), 200);
}

on_both_engines!(
    received_messages_hide_until_their_timeout_and_deletes_take_the_handle,
    delays_retention_and_deleted_queues,
    messages_received_max_receive_count_times_move_to_the_dead_letter_queue,
    concurrent_receivers_never_get_the_same_message,
);
