//! Streams against real engines (a SQLite file and a private PostgreSQL):
//! sequence numbers in commit order, reads past a checkpoint, retention,
//! checkpoints that only move forward and only while the lease is held,
//! per-shard leases taken over after expiry, with time as a parameter.

mod engines;

use std::sync::Arc;
use std::time::Duration;

use engines::Engine;
use rouse_store::leases::Grant;
use rouse_store::streams::NewRecord;
use rouse_store::StoreError;

fn rec(shard: u32, key: &str, data: &str) -> NewRecord {
    NewRecord {
        shard,
        partition_key: key.into(),
        data: data.as_bytes().to_vec(),
    }
}

const HOUR: i64 = 3_600_000;
const TTL: Duration = Duration::from_secs(10);

async fn appends_get_increasing_sequence_numbers_per_shard_and_read_in_order(e: Engine) {
    let store = e.open().await;
    assert!(store.create_stream("orders", 2, 24, 0).await.unwrap());
    assert!(!store.create_stream("orders", 5, 24, 0).await.unwrap());
    assert_eq!(store.stream("orders").await.unwrap().unwrap().shards, 2);
    let seqs = store
        .append(
            "orders",
            &[rec(0, "a", "1"), rec(1, "b", "2"), rec(0, "a", "3")],
            10,
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec![1, 1, 2]);
    let more = store
        .append("orders", &[rec(0, "a", "4")], 11)
        .await
        .unwrap();
    assert_eq!(more, vec![3]);
    let read = store.read("orders", 0, 0, 10).await.unwrap();
    let data: Vec<&[u8]> = read.iter().map(|r| r.data.as_slice()).collect();
    assert_eq!(data, vec![b"1".as_slice(), b"3", b"4"]);
    assert_eq!(read[0].partition_key, "a");
    assert_eq!(read[0].arrived_at_ms, 10);
    let after = store.read("orders", 0, 1, 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].seq, 2);
    let stats = store.shard_stats("orders").await.unwrap();
    assert_eq!((stats[0].records, stats[0].last_seq), (3, 3));
    assert_eq!((stats[1].records, stats[1].last_seq), (1, 1));
    let names: Vec<String> = store
        .list_streams()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["orders"]);
}

async fn unknown_streams_and_shards_are_refused(e: Engine) {
    let store = e.open().await;
    assert!(matches!(
        store.append("nope", &[rec(0, "a", "x")], 0).await,
        Err(StoreError::UnknownStream(_))
    ));
    store.create_stream("s", 1, 24, 0).await.unwrap();
    assert!(matches!(
        store
            .append("s", &[rec(0, "a", "x"), rec(3, "a", "y")], 0)
            .await,
        Err(StoreError::UnknownStream(_))
    ));
    // Nothing of the refused append was kept.
    assert!(store.read("s", 0, 0, 10).await.unwrap().is_empty());
    assert_eq!(store.shard_stats("s").await.unwrap()[0].last_seq, 0);
}

async fn records_past_retention_are_trimmed(e: Engine) {
    let store = e.open().await;
    store.create_stream("s", 1, 24, 0).await.unwrap();
    store.create_stream("idle", 1, 1, 0).await.unwrap();
    store.append("s", &[rec(0, "k", "old")], 0).await.unwrap();
    store
        .append("s", &[rec(0, "k", "mid")], 12 * HOUR)
        .await
        .unwrap();
    store
        .append("s", &[rec(0, "k", "new")], 25 * HOUR)
        .await
        .unwrap();
    let kept: Vec<u64> = store
        .read("s", 0, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(kept, vec![2, 3], "trimmed on append");
    assert_eq!(store.seq_before_time("s", 0, 12 * HOUR).await.unwrap(), 1);
    assert_eq!(store.seq_before_time("s", 0, 30 * HOUR).await.unwrap(), 3);

    // A shard nobody appends to is trimmed by the periodic sweep.
    store.append("idle", &[rec(0, "k", "a")], 0).await.unwrap();
    store
        .append("idle", &[rec(0, "k", "b")], HOUR)
        .await
        .unwrap();
    assert_eq!(store.trim_streams(HOUR + 1).await.unwrap(), 1);
    let idle = store.read("idle", 0, 0, 10).await.unwrap();
    assert_eq!(idle.len(), 1);
    assert_eq!(idle[0].data, b"b");
    assert_eq!(
        store.read("s", 0, 0, 10).await.unwrap().len(),
        2,
        "a 24 h stream keeps its records"
    );
}

async fn leases_go_to_one_node_and_move_after_expiry(e: Engine) {
    let store = e.open().await;
    let held = |until_ms, fresh| Grant::Held { until_ms, fresh };
    assert_eq!(
        store
            .acquire_lease("f/s", 0, "a", 1_000, TTL)
            .await
            .unwrap(),
        held(11_000, true)
    );
    assert_eq!(
        store
            .acquire_lease("f/s", 0, "b", 2_000, TTL)
            .await
            .unwrap(),
        Grant::Busy {
            holder: "a".into(),
            until_ms: 11_000
        }
    );
    // Another shard, another mapping: leases of their own.
    assert!(matches!(
        store
            .acquire_lease("f/s", 1, "b", 2_000, TTL)
            .await
            .unwrap(),
        Grant::Held { fresh: true, .. }
    ));
    assert!(matches!(
        store
            .acquire_lease("g/s", 0, "b", 2_000, TTL)
            .await
            .unwrap(),
        Grant::Held { fresh: true, .. }
    ));
    assert_eq!(
        store
            .acquire_lease("f/s", 0, "a", 4_000, TTL)
            .await
            .unwrap(),
        held(14_000, false),
        "renewed"
    );
    // a stops renewing (killed): b takes the shard at expiry.
    assert!(matches!(
        store
            .acquire_lease("f/s", 0, "b", 13_999, TTL)
            .await
            .unwrap(),
        Grant::Busy { .. }
    ));
    assert_eq!(
        store
            .acquire_lease("f/s", 0, "b", 14_000, TTL)
            .await
            .unwrap(),
        held(24_000, true)
    );
    // A clean stop gives the lease up at once.
    store.release_lease("f/s", 0, "a").await.unwrap();
    assert!(
        matches!(
            store
                .acquire_lease("f/s", 0, "a", 15_000, TTL)
                .await
                .unwrap(),
            Grant::Busy { .. }
        ),
        "releasing is only for the holder"
    );
    store.release_lease("f/s", 0, "b").await.unwrap();
    assert_eq!(
        store
            .acquire_lease("f/s", 0, "a", 15_000, TTL)
            .await
            .unwrap(),
        held(25_000, true)
    );
}

async fn checkpoints_move_forward_only_and_only_for_the_lease_holder(e: Engine) {
    {
        let store = e.open().await;
        store.create_stream("s", 2, 24, 0).await.unwrap();
        assert_eq!(store.checkpoint("m", 0).await.unwrap(), None);
        assert!(
            !store.set_checkpoint("m", "s", 0, 5, "a", 1).await.unwrap(),
            "no lease, no checkpoint"
        );
        store.acquire_lease("m", 0, "a", 0, TTL).await.unwrap();
        store.acquire_lease("m", 1, "a", 0, TTL).await.unwrap();
        assert!(store.set_checkpoint("m", "s", 0, 5, "a", 1).await.unwrap());
        assert!(store.set_checkpoint("m", "s", 0, 3, "a", 2).await.unwrap());
        assert!(store.set_checkpoint("m", "s", 1, 7, "a", 2).await.unwrap());
        assert!(
            !store.set_checkpoint("m", "s", 0, 9, "b", 2).await.unwrap(),
            "not b's lease"
        );
        assert!(
            !store
                .set_checkpoint("m", "s", 0, 9, "a", 10_000)
                .await
                .unwrap(),
            "a's lease has lapsed"
        );
        // b took the shard over: a's late commit is refused.
        store.acquire_lease("m", 0, "b", 10_000, TTL).await.unwrap();
        assert!(!store
            .set_checkpoint("m", "s", 0, 8, "a", 10_001)
            .await
            .unwrap());
        assert!(store
            .set_checkpoint("m", "s", 0, 6, "b", 10_001)
            .await
            .unwrap());
    }
    let store = e.open().await;
    assert_eq!(store.checkpoint("m", 0).await.unwrap(), Some(6));
    let all = store.checkpoints_of("s").await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[0].shard, all[0].seq), (0, 6));
    assert_eq!(all[0].holder.as_deref(), Some("b"));
    assert_eq!((all[1].shard, all[1].seq), (1, 7));
}

async fn iterator_age_is_the_age_of_the_first_record_after_the_checkpoint(e: Engine) {
    let store = e.open().await;
    store.create_stream("s", 1, 24, 0).await.unwrap();
    for (i, at) in [1_000, 2_000, 3_000].iter().enumerate() {
        store
            .append("s", &[rec(0, "k", &i.to_string())], *at)
            .await
            .unwrap();
    }
    store.acquire_lease("m", 0, "a", 0, TTL).await.unwrap();
    store
        .set_checkpoint("m", "s", 0, 1, "a", 5_000)
        .await
        .unwrap();
    let c = &store.checkpoints_of("s").await.unwrap()[0];
    assert_eq!(c.next_arrival_ms, Some(2_000));
    assert_eq!(c.iterator_age_ms(9_000), 7_000);
    store
        .set_checkpoint("m", "s", 0, 3, "a", 5_000)
        .await
        .unwrap();
    let c = &store.checkpoints_of("s").await.unwrap()[0];
    assert_eq!(c.iterator_age_ms(9_000), 0, "caught up");
}

/// Appenders on stores of their own (connections of their own, on
/// PostgreSQL) write to both shards in both orders while a reader follows
/// shard 0 past its checkpoint: every read continues exactly where the
/// last one ended (no record that committed late is skipped), and no two
/// appends deadlock.
async fn readers_never_skip_a_record_that_commits_late(e: Engine) {
    let setup = e.open().await;
    setup.create_stream("s", 2, 24, 0).await.unwrap();
    const WRITERS: usize = 4;
    const APPENDS: usize = 40;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::new(e.open().await);
        writers.push(tokio::spawn(async move {
            for i in 0..APPENDS {
                let (a, b) = if (w + i) % 2 == 0 { (0, 1) } else { (1, 0) };
                let records = [
                    rec(a, "k", &format!("{w}-{i}-a")),
                    rec(b, "k", &format!("{w}-{i}-b")),
                    rec(0, "k", &format!("{w}-{i}-c")),
                ];
                store.append("s", &records, 1).await.unwrap();
            }
        }));
    }
    let reader = e.open().await;
    let total = WRITERS * APPENDS * 2; // each append puts two records on shard 0
    let mut checkpoint = 0u64;
    let mut seen = 0usize;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen < total {
        assert!(
            std::time::Instant::now() < deadline,
            "read {seen} of {total}"
        );
        let records = reader.read("s", 0, checkpoint, 7).await.unwrap();
        for r in &records {
            assert_eq!(r.seq, checkpoint + 1, "read past {checkpoint}");
            checkpoint = r.seq;
        }
        seen += records.len();
        if records.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    let stats = reader.shard_stats("s").await.unwrap();
    assert_eq!(stats[0].last_seq as usize, total);
    assert_eq!(stats[1].last_seq as usize, WRITERS * APPENDS);
}

on_both_engines!(
    appends_get_increasing_sequence_numbers_per_shard_and_read_in_order,
    unknown_streams_and_shards_are_refused,
    records_past_retention_are_trimmed,
    leases_go_to_one_node_and_move_after_expiry,
    checkpoints_move_forward_only_and_only_for_the_lease_holder,
    iterator_age_is_the_age_of_the_first_record_after_the_checkpoint,
    readers_never_skip_a_record_that_commits_late,
);
