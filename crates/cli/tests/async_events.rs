//! Durable async (`Event`) invocations end to end: a real `rouse serve`
//! killed with SIGKILL and restarted on its data dir, boto3 as the producer,
//! Python handlers that write what they receive to files, destinations, dead
//! letters and `rouse events redrive` through the real CLI.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A project of `async_handlers.py` functions.
fn handlers_project(parent: &Path, service: &str, functions: &str) -> PathBuf {
    common::handlers_project(parent, service, "async_handlers.py", functions)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// boto3 `invoke(InvocationType='Event')` `n` times; the request ids.
async fn boto3_events(server: &Server, function: &str, n: usize) -> Vec<String> {
    let script = fixture("boto3_events.py");
    let gateway = server.gateway.clone();
    let function = function.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(gateway)
            .arg(function)
            .arg(n.to_string())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/rouse-test-aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/rouse-test-aws-credentials",
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run python3")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "boto3 script failed (is boto3 installed? test.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON list of request ids")
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_events_all_run_although_rouse_is_killed_midway() {
    let tmp = open_tempdir();
    let out = tmp.path().join("ran.txt");
    let mut server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    // Two instances, 0.1 s each: 100 events take about 5 s, so the kill
    // lands with most of them still in the store.
    let functions = format!(
        "  rec:\n    handler: handlers.record\n    scaling: {{ maxInstances: 2 }}\n    environment: {{ OUT: {}, SLEEP: '0.1' }}\n",
        out.display()
    );
    server.deploy(&handlers_project(tmp.path(), "dur", &functions));
    let function = "dur-dev-rec";

    let ids = boto3_events(&server, function, 100).await;
    assert_eq!(ids.len(), 100);
    let started = eventually(Duration::from_secs(20), || lines(&out).len() >= 10).await;
    assert!(started, "events started running: {:?}", lines(&out));
    server.kill();
    let ran_before = lines(&out).len();
    assert!(ran_before < 100, "the kill came too late to prove anything");

    server.start_again();
    let wanted: BTreeSet<u64> = (0..100).collect();
    let ran = || -> BTreeSet<u64> {
        lines(&out)
            .iter()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    };
    let all = eventually(Duration::from_secs(60), || ran() == wanted).await;
    let missing: Vec<u64> = wanted.difference(&ran()).copied().collect();
    assert!(all, "events never ran after the restart: {missing:?}");
    // Each ran with the request id its 202 carried.
    let seen: BTreeSet<String> = lines(&out)
        .iter()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    for id in &ids {
        assert!(
            seen.contains(id),
            "request id {id} never reached the handler"
        );
    }
    let pending = eventually(Duration::from_secs(5), || {
        server.cli_json(&["events", "ls", function, "--json"])["pending"] == 0
    })
    .await;
    assert!(pending, "nothing is left pending once all ran");
    eprintln!(
        "{ran_before} of 100 ran before SIGKILL, {} runs in all (at least once)",
        lines(&out).len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_event_is_retried_twice_then_sent_to_its_on_failure_destination() {
    let tmp = open_tempdir();
    let out = tmp.path().join("destination.txt");
    let server = Server::start_with(
        &tmp.path().join("data"),
        &["--isolation", "none", "--async-retry-delay", "0.2"],
    );
    let functions = format!(
        "  bad:\n    handler: handlers.fail\n    destinations: {{ onFailure: sink }}\n  good:\n    handler: handlers.record\n    environment: {{ OUT: {0}.good }}\n    destinations: {{ onSuccess: sink }}\n  sink:\n    handler: handlers.sink\n    environment: {{ OUT: {0} }}\n",
        out.display()
    );
    server.deploy(&handlers_project(tmp.path(), "dest", &functions));
    let http = client();
    let invoke = |function: &str, payload: &str| {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            server.gateway
        );
        let payload = payload.to_string();
        let http = http.clone();
        async move {
            let resp = request(
                &http,
                "POST",
                &url,
                &[("x-amz-invocation-type", "Event")],
                payload,
            )
            .await;
            assert_eq!(resp.status, 202, "{}", resp.text());
            resp.headers["x-amzn-requestid"]
                .to_str()
                .expect("id")
                .to_string()
        }
    };
    let failed_id = invoke("dest-dev-bad", r#"{"message":"no good","n":7}"#).await;
    let ok_id = invoke("dest-dev-good", r#"{"n":8}"#).await;

    let records = || -> Vec<Value> {
        lines(&out)
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let both = eventually(Duration::from_secs(20), || records().len() >= 2).await;
    assert!(both, "two destination records: {:?}", lines(&out));
    let find = |id: &str| {
        records()
            .into_iter()
            .find(|r| r["requestContext"]["requestId"] == id)
            .unwrap_or_else(|| panic!("no record for {id}: {:?}", records()))
    };

    let failure = find(&failed_id);
    assert_eq!(failure["version"], "1.0", "{failure}");
    assert!(
        failure["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{failure}"
    );
    let context = &failure["requestContext"];
    assert_eq!(context["condition"], "RetriesExhausted", "{failure}");
    assert_eq!(context["approximateInvokeCount"], 3, "{failure}");
    assert_eq!(
        context["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:dest-dev-bad:$LATEST",
        "{failure}"
    );
    assert_eq!(failure["requestPayload"]["message"], "no good", "{failure}");
    assert_eq!(failure["requestPayload"]["n"], 7, "{failure}");
    assert_eq!(failure["responseContext"]["statusCode"], 200, "{failure}");
    assert_eq!(
        failure["responseContext"]["executedVersion"], "$LATEST",
        "{failure}"
    );
    assert_eq!(
        failure["responseContext"]["functionError"], "Unhandled",
        "{failure}"
    );
    assert_eq!(
        failure["responsePayload"]["errorType"], "ValueError",
        "{failure}"
    );
    assert_eq!(
        failure["responsePayload"]["errorMessage"], "no good",
        "{failure}"
    );

    let logs = server.logs("dest-dev-bad");
    let starts = logs
        .matches(&format!("START RequestId: {failed_id}"))
        .count();
    assert_eq!(starts, 3, "the first attempt and two retries:\n{logs}");
    assert!(
        logs.contains("onFailure destination dest-dev-sink"),
        "{logs}"
    );

    let success = find(&ok_id);
    assert_eq!(
        success["requestContext"]["condition"], "Success",
        "{success}"
    );
    assert_eq!(
        success["requestContext"]["approximateInvokeCount"], 1,
        "{success}"
    );
    assert_eq!(success["requestPayload"]["n"], 8, "{success}");
    assert_eq!(success["responsePayload"]["n"], 8, "{success}");
    assert!(
        success["responseContext"].get("functionError").is_none(),
        "{success}"
    );

    // Handed on, so not kept as dead letters.
    let listed = server.cli_json(&["events", "ls", "dest-dev-bad", "--json"]);
    assert_eq!(
        (listed["pending"].clone(), listed["dead"].clone()),
        (0.into(), 0.into()),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_destination_a_failure_is_a_dead_letter_that_redrive_runs_again() {
    let tmp = open_tempdir();
    let out = tmp.path().join("flaky.txt");
    let flag = tmp.path().join("fixed");
    let server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    let functions = format!(
        "  flaky:\n    handler: handlers.flaky\n    maximumRetryAttempts: 0\n    environment: {{ OUT: {}, FLAG: {} }}\n",
        out.display(),
        flag.display()
    );
    server.deploy(&handlers_project(tmp.path(), "dl", &functions));
    let function = "dl-dev-flaky";

    let queued = server.cli(&["invoke", "flaky", "--async", "--data", r#"{"n":42}"#]);
    assert!(
        queued.status.success(),
        "{}",
        String::from_utf8_lossy(&queued.stderr)
    );
    let id = String::from_utf8_lossy(&queued.stdout).trim().to_string();
    assert_eq!(id.len(), 36, "a request id on stdout: {id:?}");

    let mut listed = Value::Null;
    let dead = eventually(Duration::from_secs(20), || {
        listed = server.cli_json(&["events", "ls", "flaky", "--json"]);
        listed["dead"] == 1
    })
    .await;
    assert!(dead, "one dead letter: {listed}");
    let event = &listed["events"][0];
    assert_eq!(event["id"], id.as_str(), "{listed}");
    assert_eq!(event["state"], "dead", "{listed}");
    assert_eq!(
        event["attempts"], 1,
        "maximumRetryAttempts: 0 means one try: {listed}"
    );
    assert_eq!(event["condition"], "RetriesExhausted", "{listed}");
    assert_eq!(event["lastError"], "ValueError", "{listed}");

    let text = server.cli(&["events", "ls", "flaky"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.starts_with(&format!("{function}: 0 pending, 1 dead")),
        "{text}"
    );
    assert!(text.contains(&id), "{text}");

    let shown = server.cli_json(&["events", "show", "flaky", &id]);
    assert_eq!(shown["payload"]["n"], 42, "{shown}");
    assert_eq!(shown["response"]["errorMessage"], "not yet", "{shown}");

    let http = client();
    let metrics = request(
        &http,
        "GET",
        &format!("{}/metrics", server.admin),
        &[("authorization", &format!("Bearer {TOKEN}"))],
        "",
    )
    .await
    .text();
    assert!(
        metrics.contains(&format!(
            "rouse_async_events{{function=\"{function}\",state=\"dead\"}} 1"
        )),
        "{metrics}"
    );

    std::fs::write(&flag, "").expect("fix the function");
    let redrive = server.cli(&["events", "redrive", "flaky", &id]);
    assert!(
        redrive.status.success(),
        "{}",
        String::from_utf8_lossy(&redrive.stderr)
    );
    assert!(String::from_utf8_lossy(&redrive.stdout).contains("queued 1 dead letter"));
    let ran = eventually(Duration::from_secs(20), || !lines(&out).is_empty()).await;
    assert!(ran, "the redriven event ran");
    let payload: Value = serde_json::from_str(&lines(&out)[0]).expect("json line");
    assert_eq!(payload["n"], 42);
    let cleared = eventually(Duration::from_secs(5), || {
        let l = server.cli_json(&["events", "ls", "flaky", "--json"]);
        l["dead"] == 0 && l["pending"] == 0
    })
    .await;
    assert!(cleared, "no dead letter left after a successful redrive");

    let missing = server.cli(&["events", "redrive", "flaky", "no-such-id"]);
    assert!(!missing.status.success(), "redriving an unknown id fails");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_waiting_or_running_at_a_sigterm_run_at_the_next_start() {
    let tmp = open_tempdir();
    let out = tmp.path().join("ran.txt");
    // The default retry delay (60 s): an interrupted event that counted as
    // a failure would wait a minute; one rouse takes back runs at once.
    let mut server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    let functions = format!(
        "  rec:\n    handler: handlers.record\n    scaling: {{ maxInstances: 1 }}\n    environment: {{ OUT: {}, SLEEP: '1' }}\n",
        out.display()
    );
    server.deploy(&handlers_project(tmp.path(), "term", &functions));
    let function = "term-dev-rec";
    let ids = boto3_events(&server, function, 5).await;
    let started = eventually(Duration::from_secs(20), || !lines(&out).is_empty()).await;
    assert!(started, "the first event started");
    assert_eq!(server.terminate(), Some(0), "a clean exit on SIGTERM");
    let ran_before = lines(&out).len();

    server.start_again();
    let all = eventually(Duration::from_secs(30), || {
        let seen: BTreeSet<String> = lines(&out)
            .iter()
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
            .collect();
        ids.iter().all(|id| seen.contains(id))
    })
    .await;
    assert!(
        all,
        "every event ran within 30 s of the restart: {:?}",
        lines(&out)
    );
    let listed = server.cli_json(&["events", "ls", function, "--json"]);
    assert_eq!(listed["dead"], 0, "{listed}");
    let logs = server.logs(function);
    assert!(
        !logs.contains("retry 1 of"),
        "nothing counted as a failure:\n{logs}"
    );
    eprintln!("{ran_before} of 5 started before SIGTERM");
}
