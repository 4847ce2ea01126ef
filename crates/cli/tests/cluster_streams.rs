//! A stream consumed by a mapping in a three-node cluster (a private
//! PostgreSQL, three real `rouse serve --store postgres://…` nodes, boto3's
//! `kinesis.put_records` as the producer). One poller per shard runs in the
//! cluster (the lease holder's); when that node is killed with SIGKILL
//! mid-stream, a surviving node takes the shard over after the lease TTL
//! and resumes from the last committed checkpoint.
//!
//! What is asserted (at least once, in order): every record put is
//! processed; per shard the handler sees records in sequence order and
//! never skips one; the only repeats are contiguous runs of records
//! already seen, at most one batch in total (the batch in flight on the
//! killed node, run again by the node that took the shard over), on a
//! shard the killed node held; shards it did not hold see every record
//! exactly once, as does every shard before the kill. Skipped, saying so, without PostgreSQL.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

const BATCH: u64 = 10;

fn node(tmp: &Path, url: &str, name: &str) -> Server {
    Server::start_with(
        &tmp.join(name),
        &["--store", url, "--node-name", name, "--isolation", "none"],
    )
}

/// `(data, shard, sequence counter)` per line the handler wrote, in order.
fn received(path: &Path) -> Vec<(String, String, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let data = w.next()?.to_string();
            let seq = w.next()?;
            let shard = w.next()?.to_string();
            Some((data, shard, seq.get(14..)?.parse().ok()?))
        })
        .collect()
}

async fn put(server: &Server, prefix: &str, n: usize) -> Vec<Value> {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(fixture("kinesis_client.py"))
        .arg(&server.gateway)
        .args(["put", "orders", prefix, &n.to_string(), "16"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/rouse-test-aws-config")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("python3"))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "boto3 put failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .expect("JSON")
        .as_array()
        .expect("list")
        .clone()
}

/// Shard id → the node id holding its lease, from `rouse streams ls`.
fn holders(server: &Server) -> BTreeMap<String, String> {
    let out = server.cli(&["streams", "ls", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ls: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut found = BTreeMap::new();
    for s in ls.as_array().into_iter().flatten() {
        for m in s["mappings"].as_array().into_iter().flatten() {
            for shard in m["shards"].as_array().into_iter().flatten() {
                if let (Some(id), Some(node)) = (shard["shardId"].as_str(), shard["node"].as_str())
                {
                    found.insert(id.to_string(), node.to_string());
                }
            }
        }
    }
    found
}

fn node_id(tmp: &Path, name: &str) -> String {
    std::fs::read_to_string(tmp.join(name).join("node-id"))
        .expect("node-id")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_nodes_shards_resume_on_another_node_from_the_checkpoint() {
    let Some(db) = rouse_testpg::database() else {
        return;
    };
    let tmp = open_tempdir();
    let out = tmp.path().join("got.txt");
    let mut nodes: BTreeMap<&str, Server> = ["a", "b", "c"]
        .into_iter()
        .map(|n| (n, node(tmp.path(), &db.url, n)))
        .collect();
    let created = nodes["a"].cli(&["streams", "create", "orders", "--shards", "2"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let functions = format!(
        "  rec:\n    handler: handlers.slow\n    environment: {{ OUT: {}, SLEEP: '0.15' }}\n    events:\n      - stream: {{ arn: 'arn:aws:kinesis:us-east-1:000000000000:stream/orders', batchSize: {BATCH} }}\n",
        out.display()
    );
    nodes["a"].deploy(&handlers_project(
        tmp.path(),
        "cs",
        "stream_handlers.py",
        &functions,
    ));

    // Phase 1: all nodes up; records put through b are processed once each.
    let mut all = put(&nodes["b"], "p", 60).await;
    let ok = eventually(Duration::from_secs(30), || received(&out).len() >= 60).await;
    assert!(ok, "got {} of 60", received(&out).len());
    let first = received(&out);
    let distinct: BTreeSet<&str> = first.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        (first.len(), distinct.len()),
        (60, 60),
        "once each with every node up"
    );

    // One poller per shard in the cluster, on a live node.
    let ids: BTreeMap<String, &str> = ["a", "b", "c"]
        .into_iter()
        .map(|n| (node_id(tmp.path(), n), n))
        .collect();
    let lease = holders(&nodes["c"]);
    assert_eq!(lease.len(), 2, "a lease per shard: {lease:?}");
    let holder_of_0 = ids[&lease["shardId-000000000000"]];
    let victims: BTreeSet<String> = lease
        .iter()
        .filter(|(_, n)| ids[n.as_str()] == holder_of_0)
        .map(|(s, _)| s.clone())
        .collect();
    let survivor = ["a", "b", "c"]
        .into_iter()
        .find(|n| *n != holder_of_0)
        .expect("a survivor");

    // Phase 2: a stream of batches, and SIGKILL to shard 0's holder while
    // they run (each batch takes 0.15 s).
    let second = put(&nodes[survivor], "q", 300).await;
    let on_victims = second
        .iter()
        .filter(|r| victims.contains(r[2].as_str().unwrap_or_default()))
        .count();
    all.extend(second);
    tokio::time::sleep(Duration::from_millis(700)).await;
    nodes.get_mut(holder_of_0).expect("node").kill();
    let at_kill = received(&out)
        .iter()
        .filter(|r| r.0.starts_with('q') && victims.contains(&r.1))
        .count();
    eprintln!("killed {holder_of_0}, holder of {victims:?}, after {at_kill} of {on_victims} records there");
    // The takeover has work to do: the killed node was mid-stream.
    assert!(
        at_kill < on_victims,
        "{at_kill} of {on_victims} done before the kill"
    );
    let want: BTreeSet<String> = all
        .iter()
        .map(|r| r[0].as_str().expect("data").to_string())
        .collect();
    let done = eventually(Duration::from_secs(60), || {
        let got: BTreeSet<String> = received(&out).into_iter().map(|r| r.0).collect();
        want.is_subset(&got)
    })
    .await;
    let got = received(&out);
    let seen: BTreeSet<&str> = got.iter().map(|r| r.0.as_str()).collect();
    assert!(
        done,
        "missing after the kill: {:?}",
        want.iter()
            .filter(|d| !seen.contains(d.as_str()))
            .collect::<Vec<_>>()
    );

    // In order per shard; repeats only as contiguous runs, at most a batch
    // in all, on a shard the killed node held.
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let seqs: Vec<u64> = got.iter().filter(|r| r.1 == shard).map(|r| r.2).collect();
        let mut high = 0u64;
        let mut repeats = 0u64;
        for (i, &seq) in seqs.iter().enumerate() {
            if seq == high + 1 {
                high = seq;
            } else {
                assert!(
                    seq <= high,
                    "{shard}: {seq} after {high} skips records: {seqs:?}"
                );
                // A repeat continues the previous line or starts a replay.
                assert!(
                    i > 0 && (seqs[i - 1] + 1 == seq || seqs[i - 1] >= seq),
                    "{shard}: out of order at {i}: {seqs:?}"
                );
                repeats += 1;
            }
        }
        if victims.contains(shard) {
            assert!(
                repeats <= BATCH,
                "{shard}: {repeats} repeats, more than one batch: {seqs:?}"
            );
        } else {
            assert_eq!(repeats, 0, "{shard} was not on the killed node: {seqs:?}");
        }
        eprintln!("{shard}: {} records, {repeats} processed twice", seqs.len());
    }

    // The shards are now polled by live nodes, caught up.
    let moved = eventually(Duration::from_secs(10), || {
        holders(&nodes[survivor])
            .values()
            .all(|n| ids.get(n.as_str()).is_some_and(|name| *name != holder_of_0))
    })
    .await;
    assert!(moved, "leases: {:?}", holders(&nodes[survivor]));
}
