//! Streams end to end: a real `rouse serve`, boto3's kinesis client and the
//! AWS CLI as producers, Python handlers consuming through `stream:` events
//! and writing what they receive to files, `rouse streams ls` for the
//! checkpoints.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A project of `stream_handlers.py` functions.
fn handlers_project(parent: &Path, service: &str, functions: &str) -> PathBuf {
    common::handlers_project(parent, service, "stream_handlers.py", functions)
}

/// One line per record a handler received: (data, sequence, shard, batch).
fn received(path: &Path) -> Vec<(String, String, String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().map(str::to_string);
            Some((w.next()?, w.next()?, w.next()?, w.next()?))
        })
        .collect()
}

fn aws_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/rouse-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/rouse-test-aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// `kinesis_client.py` (boto3) with `args`; its JSON output.
async fn boto3(server: &Server, args: &[&str]) -> Value {
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(fixture("kinesis_client.py"))
        .arg(&server.gateway)
        .args(args);
    aws_env(&mut cmd);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run python3"))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "boto3 script failed (is boto3 installed? test.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the boto3 script")
}

/// `[[data, key, shardId, sequenceNumber], …]` from a `put`.
fn puts(doc: &Value) -> Vec<(String, String, String, String)> {
    doc.as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().expect("string").to_string();
            (s(0), s(1), s(2), s(3))
        })
        .collect()
}

fn streams_ls(server: &Server) -> Value {
    let out = server.cli(&["streams", "ls", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The checkpoint of `function` on each shard of `stream`.
fn checkpoints(server: &Server, stream: &str, function: &str) -> Vec<Option<u64>> {
    let ls = streams_ls(server);
    let s = ls
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stream))
        .unwrap_or_else(|| panic!("stream {stream} not listed: {ls}"));
    let m = s["mappings"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["function"] == function))
        .unwrap_or_else(|| panic!("mapping of {function} not listed: {s}"));
    m["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|x| x["checkpoint"].as_u64())
        .collect()
}

fn seq_counter(seq: &str) -> u64 {
    seq[14..].parse().expect("56-digit sequence number")
}

async fn wait_for(path: &Path, n: usize) -> bool {
    eventually(Duration::from_secs(30), || received(path).len() >= n).await
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_puts_reach_the_handler_in_order_per_shard() {
    let tmp = open_tempdir();
    let out = tmp.path().join("got.txt");
    let server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    let created = boto3(&server, &["create", "orders", "2"]).await;
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(
        created["shards"],
        serde_json::json!(["shardId-000000000000", "shardId-000000000001"])
    );
    assert_eq!(created["open"], 2);
    assert_eq!(created["listed"], serde_json::json!(["orders"]));
    assert_eq!(created["listShards"], created["shards"]);
    let functions = format!(
        "  rec:\n    handler: handlers.record\n    environment: {{ OUT: {} }}\n    events:\n      - stream: {{ arn: 'arn:aws:kinesis:us-east-1:000000000000:stream/orders', batchSize: 10 }}\n",
        out.display()
    );
    server.deploy(&handlers_project(tmp.path(), "kin", &functions));

    let put = puts(&boto3(&server, &["put", "orders", "r", "50", "5"]).await);
    assert_eq!(put.len(), 50);
    assert!(put.iter().all(|p| p.3.len() == 56), "{put:?}");
    assert!(wait_for(&out, 50).await, "got {:?}", received(&out));
    let got = received(&out);
    assert_eq!(got.len(), 50, "each record once: {got:?}");
    // Each record arrived with the shard and sequence number its put got.
    let by_data: BTreeMap<&str, (&str, &str)> = got
        .iter()
        .map(|g| (g.0.as_str(), (g.2.as_str(), g.1.as_str())))
        .collect();
    for (data, _, shard, seq) in &put {
        assert_eq!(
            by_data.get(data.as_str()),
            Some(&(shard.as_str(), seq.as_str()))
        );
    }
    // Per shard, in sequence order; per partition key, in put order.
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let seqs: Vec<u64> = got
            .iter()
            .filter(|g| g.2 == shard)
            .map(|g| seq_counter(&g.1))
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{shard}: {seqs:?}");
    }
    for key in 0..5 {
        let key = format!("key-{key}");
        let want: Vec<&str> = put
            .iter()
            .filter(|p| p.1 == key)
            .map(|p| p.0.as_str())
            .collect();
        let order: Vec<&str> = got
            .iter()
            .map(|g| g.0.as_str())
            .filter(|d| want.contains(d))
            .collect();
        assert_eq!(order, want, "{key}");
    }

    // The AWS CLI is a producer too.
    let mut cmd = std::process::Command::new("aws");
    cmd.args(["kinesis", "put-record", "--endpoint-url", &server.gateway])
        .args([
            "--stream-name",
            "orders",
            "--partition-key",
            "cli",
            "--data",
            "from-cli",
        ])
        .args(["--output", "json"]);
    aws_env(&mut cmd);
    let cli = cmd.output().expect("run aws");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let answer: Value = serde_json::from_slice(&cli.stdout).expect("JSON");
    assert!(answer["ShardId"]
        .as_str()
        .is_some_and(|s| s.starts_with("shardId-")));
    assert!(wait_for(&out, 51).await);
    assert_eq!(received(&out)[50].0, "from-cli");

    // Reading with GetRecords sees the same records, and the checkpoints
    // are at each shard's last record.
    let read = boto3(&server, &["read", "orders"]).await;
    let total: usize = read
        .as_object()
        .expect("map")
        .values()
        .map(|v| v.as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(total, 51);
    let last: Vec<Option<u64>> = ["shardId-000000000000", "shardId-000000000001"]
        .iter()
        .map(|s| {
            received(&out)
                .iter()
                .filter(|g| g.2 == *s)
                .map(|g| seq_counter(&g.1))
                .max()
        })
        .collect();
    let ok = eventually(Duration::from_secs(5), || {
        checkpoints(&server, "orders", "kin-dev-rec") == last
    })
    .await;
    assert!(
        ok,
        "checkpoints {:?}, want {last:?}",
        checkpoints(&server, "orders", "kin-dev-rec")
    );

    let errors = boto3(&server, &["errors", "orders"]).await;
    assert_eq!(
        errors,
        serde_json::json!([
            "ResourceNotFoundException",
            "ResourceInUseException",
            "InvalidArgumentException",
            "InvalidArgumentException"
        ])
    );
}

fn consumer(out: &Path, enabled: bool) -> String {
    format!(
        "  rec:\n    handler: handlers.record\n    environment: {{ OUT: {} }}\n    events:\n      - stream: {{ arn: buffer, batchSize: 100, enabled: {enabled} }}\n",
        out.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn records_put_while_the_consumer_is_stopped_are_processed_from_the_checkpoint() {
    let tmp = open_tempdir();
    let out = tmp.path().join("got.txt");
    let mut server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    // The stream does not exist: deploy creates it.
    let dir = handlers_project(tmp.path(), "buf", &consumer(&out, true));
    let deployed = server.cli(&["deploy", dir.to_str().expect("utf-8")]);
    let said = String::from_utf8_lossy(&deployed.stderr);
    assert!(deployed.status.success(), "{said}");
    assert!(
        said.contains("stream buffer did not exist: created with 1 shard"),
        "{said}"
    );
    puts(&boto3(&server, &["put", "buffer", "a", "10", "3"]).await);
    assert!(wait_for(&out, 10).await, "{:?}", received(&out));

    // A clean stop and a restart: the consumer resumes from its
    // checkpoint, so nothing is delivered twice.
    assert_eq!(server.terminate(), Some(0));
    server.start_again();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received(&out).len(), 10, "redelivered after a clean stop");

    // The consumer stopped (`enabled: false`): records wait in the stream.
    handlers_project(tmp.path(), "buf", &consumer(&out, false));
    server.deploy(&dir);
    puts(&boto3(&server, &["put", "buffer", "b", "20", "3"]).await);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        received(&out).len(),
        10,
        "a disabled mapping consumed records"
    );
    assert_eq!(
        checkpoints(&server, "buffer", "buf-dev-rec"),
        vec![Some(10)]
    );

    // Enabled again (and restarted): exactly the 20 new ones, in order.
    server.restart();
    handlers_project(tmp.path(), "buf", &consumer(&out, true));
    server.deploy(&dir);
    assert!(wait_for(&out, 30).await, "{:?}", received(&out));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let data: Vec<String> = received(&out).into_iter().map(|g| g.0).collect();
    let want: Vec<String> = (0..10)
        .map(|i| format!("a{i}"))
        .chain((0..20).map(|i| format!("b{i}")))
        .collect();
    assert_eq!(data, want);
    assert_eq!(
        checkpoints(&server, "buffer", "buf-dev-rec"),
        vec![Some(30)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_record_is_isolated_by_bisect_and_sent_to_on_failure() {
    let tmp = open_tempdir();
    let out = tmp.path().join("got.txt");
    let failed = tmp.path().join("failed.txt");
    let server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    let out_str = out.display().to_string();
    let failed_str = failed.display().to_string();
    let functions = format!(
        "  rec:\n    handler: handlers.record\n    environment: {{ OUT: {out_str} }}\n    events:\n      - stream: {{ arn: jobs, batchSize: 10, maximumRetryAttempts: 1, bisectBatchOnFunctionError: true, destinations: {{ onFailure: failures }} }}\n  failures:\n    handler: handlers.sink\n    environment: {{ OUT: {failed_str} }}\n"
    );
    let dir = handlers_project(tmp.path(), "poi", &functions);
    assert!(server
        .cli(&["streams", "create", "jobs", "--shards", "1"])
        .status
        .success());
    server.deploy(&dir);
    // Ten records in one put: one batch, the poison fifth.
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c")
        .arg("import boto3,sys,json;k=boto3.client('kinesis',endpoint_url=sys.argv[1]);r=k.put_records(StreamName='jobs',Records=[{'Data':('poison' if i==4 else f'j{i}').encode(),'PartitionKey':'p'} for i in range(10)]);print(json.dumps([x['SequenceNumber'] for x in r['Records']]))")
        .arg(&server.gateway);
    aws_env(&mut cmd);
    let put = cmd.output().expect("python3");
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let seqs: Vec<String> = serde_json::from_slice(&put.stdout).expect("JSON");

    let lines = || std::fs::read_to_string(&failed).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(30), || !lines().is_empty()).await,
        "no on-failure record"
    );
    let record: Value =
        serde_json::from_str(lines().lines().next().expect("a line")).expect("JSON");
    let info = &record["KinesisBatchInfo"];
    assert_eq!(info["batchSize"], 1, "{record}");
    assert_eq!(info["startSequenceNumber"], seqs[4].as_str());
    assert_eq!(info["endSequenceNumber"], seqs[4].as_str());
    assert_eq!(info["shardId"], "shardId-000000000000");
    assert_eq!(
        info["streamArn"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/jobs"
    );
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");

    assert!(wait_for(&out, 9).await, "{:?}", received(&out));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let data: Vec<String> = received(&out).into_iter().map(|g| g.0).collect();
    let want: Vec<String> = (0..10)
        .filter(|i| *i != 4)
        .map(|i| format!("j{i}"))
        .collect();
    assert_eq!(data, want, "the rest went through, once each, in order");
    assert_eq!(checkpoints(&server, "jobs", "poi-dev-rec"), vec![Some(10)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn reported_item_failures_move_the_checkpoint_before_the_failed_record() {
    let tmp = open_tempdir();
    let out = tmp.path().join("got.txt");
    let server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    let functions = format!(
        "  part:\n    handler: handlers.partial\n    environment: {{ OUT: {}, FAIL: p6 }}\n    events:\n      - stream: {{ arn: parts, batchSize: 10, functionResponseType: ReportBatchItemFailures }}\n",
        out.display()
    );
    assert!(server.cli(&["streams", "create", "parts"]).status.success());
    server.deploy(&handlers_project(tmp.path(), "rep", &functions));
    puts(&boto3(&server, &["put", "parts", "p", "10", "1"]).await);
    // First batch p0..p9 reports p6; the retry starts exactly at p6.
    assert!(wait_for(&out, 14).await, "{:?}", received(&out));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = received(&out);
    let data: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    let mut want: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    want.extend((6..10).map(|i| format!("p{i}")));
    assert_eq!(data, want);
    assert_ne!(got[0].3, got[10].3, "the retry is a batch of its own");
    assert_eq!(
        checkpoints(&server, "parts", "rep-dev-part"),
        vec![Some(10)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kinesis_api_checks_signatures_when_required() {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--aws-auth", "required"]);
    let made = server.cli(&["keys", "create", "--json"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key: Value = serde_json::from_slice(&made.stdout).expect("JSON");
    let script = "import boto3,sys\nfrom botocore.exceptions import ClientError\nk=boto3.client('kinesis',endpoint_url=sys.argv[1],region_name='us-east-1',aws_access_key_id=sys.argv[2],aws_secret_access_key=sys.argv[3])\ntry:\n  k.create_stream(StreamName='signed',ShardCount=1)\n  print(k.list_streams()['StreamNames'])\nexcept ClientError as e:\n  print(e.response['Error']['Code'])\n";
    let run = |id: &str, secret: &str| {
        let mut cmd = std::process::Command::new("python3");
        cmd.arg("-c")
            .arg(script)
            .arg(&server.gateway)
            .arg(id)
            .arg(secret);
        aws_env(&mut cmd);
        let out = cmd.output().expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        run("AKIAUNKNOWN000000000", "nope"),
        "UnrecognizedClientException"
    );
    let id = key["AccessKeyId"].as_str().expect("id");
    let secret = key["SecretAccessKey"].as_str().expect("secret");
    assert_eq!(run(id, "wrong-secret"), "InvalidSignatureException");
    assert_eq!(run(id, secret), "['signed']");
}
