//! Streams in the SQLite store: sequence numbers, reads past a checkpoint,
//! retention, checkpoints that only move forward.

use rouse_store::streams::NewRecord;
use rouse_store::{Store, StoreError, Streams};

fn rec(shard: u32, key: &str, data: &str) -> NewRecord {
    NewRecord {
        shard,
        partition_key: key.into(),
        data: data.as_bytes().to_vec(),
    }
}

const HOUR: i64 = 3_600_000;

#[test]
fn appends_get_increasing_sequence_numbers_per_shard_and_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.create_stream("orders", 2, 24, 0).unwrap());
    assert!(!store.create_stream("orders", 5, 24, 0).unwrap());
    assert_eq!(store.stream("orders").unwrap().unwrap().shards, 2);
    let seqs = store
        .append(
            "orders",
            &[rec(0, "a", "1"), rec(1, "b", "2"), rec(0, "a", "3")],
            10,
        )
        .unwrap();
    assert_eq!(seqs, vec![1, 1, 2]);
    let more = store.append("orders", &[rec(0, "a", "4")], 11).unwrap();
    assert_eq!(more, vec![3]);
    let read = store.read("orders", 0, 0, 10).unwrap();
    let data: Vec<&[u8]> = read.iter().map(|r| r.data.as_slice()).collect();
    assert_eq!(data, vec![b"1".as_slice(), b"3", b"4"]);
    let after = store.read("orders", 0, 1, 1).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].seq, 2);
    let stats = store.shard_stats("orders").unwrap();
    assert_eq!((stats[0].records, stats[0].last_seq), (3, 3));
    assert_eq!((stats[1].records, stats[1].last_seq), (1, 1));
}

#[test]
fn unknown_streams_and_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(
        store.append("nope", &[rec(0, "a", "x")], 0),
        Err(StoreError::UnknownStream(_))
    ));
    store.create_stream("s", 1, 24, 0).unwrap();
    assert!(matches!(
        store.append("s", &[rec(0, "a", "x"), rec(3, "a", "y")], 0),
        Err(StoreError::UnknownStream(_))
    ));
    // Nothing of the refused append was kept.
    assert!(store.read("s", 0, 0, 10).unwrap().is_empty());
}

#[test]
fn records_past_retention_are_trimmed_on_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.create_stream("s", 1, 24, 0).unwrap();
    store.append("s", &[rec(0, "k", "old")], 0).unwrap();
    store.append("s", &[rec(0, "k", "mid")], 12 * HOUR).unwrap();
    store.append("s", &[rec(0, "k", "new")], 25 * HOUR).unwrap();
    let kept: Vec<u64> = store
        .read("s", 0, 0, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(kept, vec![2, 3]);
    assert_eq!(store.seq_before_time("s", 0, 12 * HOUR).unwrap(), 1);
    assert_eq!(store.seq_before_time("s", 0, 30 * HOUR).unwrap(), 3);
}

#[test]
fn checkpoints_only_move_forward_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_stream("s", 2, 24, 0).unwrap();
        assert_eq!(store.checkpoint("m", 0).unwrap(), None);
        store.set_checkpoint("m", "s", 0, 5, 1).unwrap();
        store.set_checkpoint("m", "s", 0, 3, 2).unwrap();
        store.set_checkpoint("m", "s", 1, 7, 2).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.checkpoint("m", 0).unwrap(), Some(5));
    let all = store.checkpoints_of("s").unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!((all[1].shard, all[1].seq), (1, 7));
}
