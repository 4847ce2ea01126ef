//! The Kinesis operations against a real SQLite store, with time as a
//! parameter (iterator expiry, AT_TIMESTAMP, LATEST).

use base64::Engine;
use rouse_store::Store;
use serde_json::{json, Value};

use super::kinesis_api::execute;

fn call(store: &Store, op: &str, req: Value, now: i64) -> Result<Value, (String, String)> {
    // SQLite's calls finish without waiting: a runtime of the test's own
    // drives them.
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(execute(store, op, req.to_string().as_bytes(), now))
        .answer
        .map_err(|e| (e.code.to_string(), e.message))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn iterator(store: &Store, kind: &str, extra: Value, now: i64) -> String {
    let mut req =
        json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": kind});
    if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    let answer = call(store, "GetShardIterator", req, now).expect("iterator");
    answer["ShardIterator"]
        .as_str()
        .expect("string")
        .to_string()
}

fn data(store: &Store, it: &str, now: i64) -> Vec<String> {
    let got = call(store, "GetRecords", json!({ "ShardIterator": it }), now).expect("records");
    got["Records"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            let d = base64::engine::general_purpose::STANDARD
                .decode(r["Data"].as_str().expect("data"))
                .expect("base64");
            String::from_utf8(d).expect("utf-8")
        })
        .collect()
}

#[test]
fn iterators_start_where_their_type_says_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    call(
        &store,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 1}),
        0,
    )
    .unwrap();
    let put = |d: &str, now: i64| {
        call(
            &store,
            "PutRecord",
            json!({"StreamName": "s", "Data": b64(d), "PartitionKey": "k"}),
            now,
        )
        .unwrap()["SequenceNumber"]
            .as_str()
            .unwrap()
            .to_string()
    };
    put("a", 1_000);
    let second = put("b", 2_000);
    let latest = iterator(&store, "LATEST", json!({}), 2_500);
    put("c", 3_000);
    assert_eq!(
        data(
            &store,
            &iterator(&store, "TRIM_HORIZON", json!({}), 3_000),
            3_000
        ),
        ["a", "b", "c"]
    );
    assert_eq!(data(&store, &latest, 3_000), ["c"]);
    let at = iterator(
        &store,
        "AT_SEQUENCE_NUMBER",
        json!({"StartingSequenceNumber": second}),
        3_000,
    );
    assert_eq!(data(&store, &at, 3_000), ["b", "c"]);
    let after = iterator(
        &store,
        "AFTER_SEQUENCE_NUMBER",
        json!({"StartingSequenceNumber": second}),
        3_000,
    );
    assert_eq!(data(&store, &after, 3_000), ["c"]);
    let ts = iterator(&store, "AT_TIMESTAMP", json!({"Timestamp": 1.5}), 3_000);
    assert_eq!(data(&store, &ts, 3_000), ["b", "c"]);
    // Five minutes later the iterator is refused.
    let err = call(
        &store,
        "GetRecords",
        json!({ "ShardIterator": ts }),
        3_000 + 300_000,
    )
    .unwrap_err();
    assert_eq!(err.0, "ExpiredIteratorException");
}

#[test]
fn errors_have_kinesis_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    call(&store, "CreateStream", json!({"StreamName": "s"}), 0).unwrap();
    let cases = [
        (
            "CreateStream",
            json!({"StreamName": "s"}),
            "ResourceInUseException",
        ),
        (
            "CreateStream",
            json!({"StreamName": "bad name"}),
            "InvalidArgumentException",
        ),
        (
            "CreateStream",
            json!({"StreamName": "t", "ShardCount": 0}),
            "InvalidArgumentException",
        ),
        (
            "DescribeStream",
            json!({"StreamName": "nope"}),
            "ResourceNotFoundException",
        ),
        (
            "PutRecord",
            json!({"StreamName": "s", "Data": b64("x"), "PartitionKey": ""}),
            "InvalidArgumentException",
        ),
        (
            "PutRecord",
            json!({"StreamName": "s", "Data": "!!", "PartitionKey": "k"}),
            "InvalidArgumentException",
        ),
        (
            "PutRecords",
            json!({"StreamName": "s", "Records": []}),
            "InvalidArgumentException",
        ),
        (
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000009", "ShardIteratorType": "LATEST"}),
            "ResourceNotFoundException",
        ),
        (
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "NEWEST"}),
            "InvalidArgumentException",
        ),
        (
            "GetRecords",
            json!({"ShardIterator": "garbage"}),
            "InvalidArgumentException",
        ),
        ("MergeShards", json!({}), "UnknownOperationException"),
    ];
    for (op, req, code) in cases {
        let got = call(&store, op, req.clone(), 0);
        assert_eq!(
            got.as_ref().map_err(|e| e.0.as_str()).err(),
            Some(code),
            "{op} {req}: {got:?}"
        );
    }
}

#[test]
fn put_records_answers_in_request_order_with_increasing_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    call(
        &store,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 4}),
        0,
    )
    .unwrap();
    let records: Vec<Value> = (0..20)
        .map(|i| json!({"Data": b64(&i.to_string()), "PartitionKey": format!("k{}", i % 7)}))
        .collect();
    let got = call(
        &store,
        "PutRecords",
        json!({"StreamName": "s", "Records": records}),
        0,
    )
    .unwrap();
    assert_eq!(got["FailedRecordCount"], 0);
    let answers = got["Records"].as_array().unwrap();
    assert_eq!(answers.len(), 20);
    let mut last: std::collections::HashMap<String, String> = Default::default();
    for a in answers {
        let shard = a["ShardId"].as_str().unwrap().to_string();
        let seq = a["SequenceNumber"].as_str().unwrap().to_string();
        if let Some(prev) = last.insert(shard, seq.clone()) {
            assert!(prev < seq, "{prev} then {seq}");
        }
    }
    let summary = call(
        &store,
        "DescribeStreamSummary",
        json!({"StreamName": "s"}),
        0,
    )
    .unwrap();
    assert_eq!(summary["StreamDescriptionSummary"]["OpenShardCount"], 4);
}
