//! Lambda functions end to end: a real `rouse serve`, the examples and a
//! fault-injecting handler deployed with the real CLI, real runtimes
//! (rouse's Python and Node bootstraps, a `lambda_runtime` binary), real
//! HTTP, the Invoke API called with hyper, boto3 and the AWS CLI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

/// Lambda's request payload limits.
const SYNC_LIMIT: usize = 6 * 1024 * 1024;
const ASYNC_LIMIT: usize = 256 * 1024;

fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// The Rust example as a deployable project: its manifest next to the
/// `bootstrap` binary the workspace build produced.
fn rust_example_project(parent: &Path) -> PathBuf {
    let target_dir = Path::new(rouse_bin())
        .parent()
        .expect("the rouse binary lives in a target dir");
    let bootstrap = target_dir.join("bootstrap");
    assert!(
        bootstrap.is_file(),
        "{} is missing: build the workspace first (`cargo build --workspace`, as test.sh does)",
        bootstrap.display()
    );
    let dir = parent.join("rust-lambda");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(&bootstrap, dir.join("bootstrap")).expect("copy bootstrap");
    std::fs::copy(
        example("rust-lambda").join("rouse.yaml"),
        dir.join("rouse.yaml"),
    )
    .expect("copy manifest");
    dir
}

/// A project running `lambda_faults.py` as function `f` of service `name`,
/// with `extra` lines added to the function (indented by four spaces).
fn faults_project(parent: &Path, name: &str, extra: &str) -> PathBuf {
    let manifest = format!(
        "service: {name}\nfunctions:\n  f:\n    runtime: python3.12\n    handler: faults.handler\n    memorySize: 128\n{extra}"
    );
    let code = std::fs::read_to_string(fixture("lambda_faults.py")).expect("fixture");
    project(parent, name, &manifest, &[("faults.py", &code)])
}

fn invoke_url(server: &Server, function: &str) -> String {
    format!(
        "{}/2015-03-31/functions/{function}/invocations",
        server.gateway
    )
}

/// One call to the Invoke API.
async fn invoke(
    http: &HttpClient,
    server: &Server,
    function: &str,
    headers: &[(&str, &str)],
    payload: impl Into<Bytes>,
) -> Response {
    request(
        http,
        "POST",
        &invoke_url(server, function),
        headers,
        payload.into(),
    )
    .await
}

async fn invoke_json(
    http: &HttpClient,
    server: &Server,
    function: &str,
    payload: Value,
) -> Response {
    invoke(http, server, function, &[], payload.to_string()).await
}

fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.headers.get(name).and_then(|v| v.to_str().ok())
}

fn request_id(resp: &Response) -> String {
    header(resp, "x-amzn-requestid")
        .expect("x-amzn-RequestId on every Invoke API answer")
        .to_string()
}

/// Asserts a function error as the Invoke API reports it: 200,
/// `X-Amz-Function-Error: Unhandled`, and the error JSON as the payload.
fn assert_function_error(resp: &Response, error_type: &str) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        header(resp, "x-amz-function-error"),
        Some("Unhandled"),
        "{}",
        resp.text()
    );
    let doc = resp.json();
    assert_eq!(doc["errorType"], error_type, "{doc}");
    doc
}

/// Waits until the function's log holds `needle`; returns the log.
async fn logs_containing(server: &Server, function: &str, needle: &str) -> String {
    let mut logs = String::new();
    let found = eventually(Duration::from_secs(5), || {
        logs = server.logs(function);
        logs.contains(needle)
    })
    .await;
    assert!(
        found,
        "{needle:?} never reached the log of {function}:\n{logs}"
    );
    logs
}

fn lines_with<'l>(logs: &'l str, needle: &str) -> Vec<&'l str> {
    logs.lines().filter(|l| l.contains(needle)).collect()
}

/// A `REPORT` line's field, e.g. `Max Memory Used` → `22 MB`.
fn report_field<'l>(line: &'l str, name: &str) -> Option<&'l str> {
    line.split('\t')
        .find_map(|f| f.trim().strip_prefix(name)?.strip_prefix(": "))
}

// ---------------------------------------------------- the three examples

/// What every example must do: answer the Invoke API with plain JSON and
/// HTTP routes in the v1, v2 and Function URL shapes, all from one warm
/// process whose module state counts the calls, with Lambda's log lines.
async fn example_answers_every_way(server: &Server, function: &str, prefix: &str, language: &str) {
    let http = client();
    let mut pid = None;
    for n in 1..=3 {
        let resp = invoke_json(&http, server, function, json!({ "n": n })).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert!(header(&resp, "x-amz-function-error").is_none());
        assert_eq!(header(&resp, "x-amz-executed-version"), Some("$LATEST"));
        let doc = resp.json();
        assert_eq!(doc["count"], n, "module state persists: {doc}");
        assert_eq!(doc["event"], json!({ "n": n }));
        assert_eq!(doc["functionName"], function);
        assert_eq!(
            doc["requestId"],
            request_id(&resp),
            "context has the RequestId"
        );
        let this_pid = doc["pid"].as_u64().expect("pid");
        assert_eq!(
            *pid.get_or_insert(this_pid),
            this_pid,
            "warm calls reuse the process"
        );
    }
    let pid = pid.expect("three calls ran");

    // API Gateway REST API, payload v1.
    let v1 = request(
        &http,
        "POST",
        &format!("{}{prefix}/v1/42?color=red", server.gateway),
        &[("content-type", "application/json")],
        r#"{"hello":"v1"}"#,
    )
    .await;
    assert_eq!(v1.status, 200, "{}", v1.text());
    assert_eq!(header(&v1, "x-handler"), Some(language));
    assert_eq!(header(&v1, "content-type"), Some("application/json"));
    let doc = v1.json();
    assert_eq!(doc["count"], 4, "{doc}");
    assert_eq!(doc["pid"], pid);
    assert_eq!(doc["shape"], "v1");
    assert_eq!(doc["httpMethod"], "POST");
    assert_eq!(doc["resource"], format!("{prefix}/v1/{{id}}"));
    assert_eq!(doc["path"], format!("{prefix}/v1/42"));
    assert_eq!(doc["pathParameters"], json!({ "id": "42" }));
    assert_eq!(doc["queryStringParameters"], json!({ "color": "red" }));
    assert_eq!(doc["body"], r#"{"hello":"v1"}"#);

    // HTTP API, payload v2.
    let v2 = get(&http, &format!("{}{prefix}/v2/7?x=1&y=2", server.gateway)).await;
    assert_eq!(v2.status, 200, "{}", v2.text());
    assert_eq!(header(&v2, "x-handler"), Some(language));
    let doc = v2.json();
    assert_eq!(doc["count"], 5, "{doc}");
    assert_eq!(doc["pid"], pid);
    assert_eq!(doc["version"], "2.0");
    assert_eq!(doc["routeKey"], format!("ANY {prefix}/v2/{{id}}"));
    assert_eq!(doc["rawPath"], format!("{prefix}/v2/7"));
    assert_eq!(doc["rawQueryString"], "x=1&y=2");
    assert_eq!(doc["method"], "GET");
    assert_eq!(doc["pathParameters"], json!({ "id": "7" }));

    // Function URL: the v2 shape on any path, with the `$default` route.
    let url = get(
        &http,
        &format!("{}/urls/{function}/any/where", server.gateway),
    )
    .await;
    assert_eq!(url.status, 200, "{}", url.text());
    let doc = url.json();
    assert_eq!(doc["count"], 6, "{doc}");
    assert_eq!(doc["version"], "2.0");
    assert_eq!(doc["routeKey"], "$default");
    assert_eq!(doc["rawPath"], "/any/where");

    // Logs: the handler's output, and START / END / REPORT for every call,
    // with Init Duration on the cold start only.
    let logs = logs_containing(server, function, &format!("invocation 6 in pid {pid}")).await;
    assert!(logs.contains("invocation 1 in pid"), "{logs}");
    assert_eq!(lines_with(&logs, "START RequestId: ").len(), 6, "{logs}");
    assert_eq!(lines_with(&logs, "END RequestId: ").len(), 6, "{logs}");
    let reports = lines_with(&logs, "REPORT RequestId: ");
    assert_eq!(reports.len(), 6, "{logs}");
    for (i, line) in reports.iter().enumerate() {
        let duration = report_field(line, "Duration").expect("Duration");
        assert!(duration.ends_with(" ms"), "{line}");
        assert!(report_field(line, "Billed Duration").is_some(), "{line}");
        assert_eq!(report_field(line, "Memory Size"), Some("128 MB"), "{line}");
        let used: u64 = report_field(line, "Max Memory Used")
            .and_then(|v| v.strip_suffix(" MB"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("Max Memory Used in {line}"));
        assert!(used > 0, "{line}");
        assert_eq!(
            report_field(line, "Init Duration").is_some(),
            i == 0,
            "Init Duration only on the cold start: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_example_answers_through_the_gateway_and_the_invoke_api() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let out = server.deploy(&example("python-lambda"));
    assert!(
        out.contains("rouse invoke pylambda-dev-py --data '{}'"),
        "deploy suggests an invoke with an event: {out}"
    );
    example_answers_every_way(&server, "pylambda-dev-py", "/py", "python").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relative_data_dir_still_runs_python_handlers() {
    // Instances run in their own directories: the bootstrap path rouse hands
    // them must not be relative to the directory rouse was started in.
    let tmp = open_tempdir();
    let server = Server::start_in(tmp.path(), "data");
    server.deploy(&example("python-lambda"));
    let resp = invoke_json(
        &client(),
        &server,
        "pylambda-dev-py",
        json!({"name": "rel"}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        header(&resp, "x-amz-function-error").is_none(),
        "{}",
        resp.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn node_example_answers_through_the_gateway_and_the_invoke_api() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&example("node-lambda"));
    example_answers_every_way(&server, "nodelambda-dev-node", "/node", "node").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_lambda_runtime_example_answers_through_the_gateway_and_the_invoke_api() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&rust_example_project(tmp.path()));
    example_answers_every_way(&server, "rustlambda-dev-rs", "/rs", "rust").await;
}

// ------------------------------------------------------ SDKs and the CLI

/// Environment for AWS SDKs and the CLI: dummy credentials (rouse does not
/// check signatures) and nothing from the user's own AWS configuration.
fn aws_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_LAMBDA",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/rouse-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/rouse-test-aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_invoke_gets_payload_function_error_and_log_result() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&faults_project(tmp.path(), "sdk", ""));
    let function = "sdk-dev-f";

    let script = fixture("boto3_invoke.py");
    let out = tokio::task::spawn_blocking({
        let gateway = server.gateway.clone();
        move || {
            aws_command("python3")
                .arg(script)
                .arg(gateway)
                .arg(function)
                .output()
                .expect("run python3")
        }
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "boto3 script failed (is boto3 installed? test.sh installs it):\n{stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("script output is not JSON ({e}): {stderr}"));

    let ok = &doc["ok"];
    assert_eq!(ok["StatusCode"], 200, "{doc}");
    assert_eq!(ok["FunctionError"], Value::Null, "{doc}");
    assert_eq!(ok["ExecutedVersion"], "$LATEST", "{doc}");
    assert_eq!(ok["Payload"]["calls"], 1, "{doc}");
    assert_eq!(ok["Payload"]["action"], "echo", "{doc}");
    let log = ok["Log"].as_str().expect("LogResult");
    let id = ok["RequestId"].as_str().expect("RequestId");
    assert!(log.contains(&format!("START RequestId: {id}")), "{log}");
    assert!(log.contains("faults: call 1 action echo"), "{log}");
    assert!(log.contains(&format!("REPORT RequestId: {id}")), "{log}");

    let err = &doc["error"];
    assert_eq!(err["StatusCode"], 200, "{doc}");
    assert_eq!(err["FunctionError"], "Unhandled", "{doc}");
    assert_eq!(err["Payload"]["errorType"], "ValueError", "{doc}");
    assert_eq!(
        err["Payload"]["errorMessage"], "boto3 asked for it",
        "{doc}"
    );
    let log = err["Log"].as_str().expect("LogResult");
    assert!(log.contains("START RequestId: "), "{log}");
    assert!(
        log.contains("ValueError"),
        "the traceback is in the log: {log}"
    );

    assert_eq!(doc["arn"]["StatusCode"], 200, "a full ARN works: {doc}");
    assert_eq!(doc["arn"]["Payload"]["calls"], 3, "{doc}");
    assert_eq!(doc["arn"]["HasLogResult"], false, "no Tail, no log: {doc}");
    assert_eq!(doc["event"]["StatusCode"], 202, "{doc}");
    assert_eq!(doc["event"]["Payload"], "", "{doc}");
    assert_eq!(doc["dryrun"]["StatusCode"], 204, "{doc}");
    let missing = &doc["missing"];
    assert_eq!(missing["raised"], "ResourceNotFoundException", "{doc}");
    assert_eq!(missing["HTTPStatusCode"], 404, "{doc}");
    assert!(
        missing["Message"]
            .as_str()
            .is_some_and(|m| m.contains("function:no-such-function")),
        "{doc}"
    );

    // The Event invocation runs in the background.
    logs_containing(&server, function, "action event").await;
}

/// The AWS CLI is optional on a test machine: `aws lambda invoke
/// --endpoint-url` is checked when it is installed.
#[tokio::test(flavor = "multi_thread")]
async fn aws_cli_invoke_works_when_installed() {
    let installed = Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("skipped: the AWS CLI (`aws`) is not installed");
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&faults_project(tmp.path(), "cli", ""));
    let outfile = tmp.path().join("out.json");
    let out = tokio::task::spawn_blocking({
        let gateway = server.gateway.clone();
        let outfile = outfile.clone();
        move || {
            // AWS CLI v1 sends `--payload` as given; v2 wants it base64 unless told otherwise.
            let v2 = aws_command("aws")
                .arg("--version")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("aws-cli/2"));
            let mut cmd = aws_command("aws");
            cmd.args(["lambda", "invoke", "--endpoint-url", &gateway])
                .args(["--function-name", "cli-dev-f", "--log-type", "Tail"])
                .args(["--payload", r#"{"action":"echo"}"#]);
            if v2 {
                cmd.args(["--cli-binary-format", "raw-in-base64-out"]);
            }
            cmd.arg(&outfile).output().expect("run aws")
        }
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "aws lambda invoke failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("aws prints JSON");
    assert_eq!(meta["StatusCode"], 200, "{meta}");
    assert!(meta.get("FunctionError").is_none(), "{meta}");
    use base64::Engine;
    let log = base64::engine::general_purpose::STANDARD
        .decode(meta["LogResult"].as_str().expect("LogResult"))
        .expect("base64");
    assert!(String::from_utf8_lossy(&log).contains("START RequestId: "));
    let payload: Value =
        serde_json::from_slice(&std::fs::read(&outfile).expect("outfile")).expect("JSON payload");
    assert_eq!(payload["action"], "echo", "{payload}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rouse_invoke_prints_the_log_tail_and_exits_4_on_a_function_error() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&faults_project(tmp.path(), "cmd", ""));

    let ok = server.cli(&["invoke", "f", "--data", r#"{"action":"echo"}"#]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let doc: Value = serde_json::from_str(stdout.trim()).expect("payload on stdout");
    assert_eq!(doc["action"], "echo");
    assert!(stderr.contains("START RequestId: "), "{stderr}");
    assert!(stderr.contains("faults: call 1 action echo"), "{stderr}");
    assert!(stderr.contains("REPORT RequestId: "), "{stderr}");

    let failed = server.cli(&["invoke", "f", "--data", r#"{"action":"raise"}"#]);
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(4), "{stdout}");
    let doc: Value = serde_json::from_str(stdout.trim()).expect("error JSON on stdout");
    assert_eq!(doc["errorType"], "ValueError");
    assert_eq!(doc["errorMessage"], "boom");
}

// ----------------------------------------------------------------- faults

#[tokio::test(flavor = "multi_thread")]
async fn timeout_reports_task_timed_out_and_the_next_call_gets_a_fresh_instance() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let extra = "    timeout: 1\n    events:\n      - httpApi: { path: /slow, method: post }\n";
    server.deploy(&faults_project(tmp.path(), "slow", extra));
    let function = "slow-dev-f";
    let http = client();

    let first = invoke_json(&http, &server, function, json!({})).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let instance = first.json()["instance"].clone();
    assert!(instance.is_string(), "{}", first.text());

    let started = Instant::now();
    let slow = invoke_json(
        &http,
        &server,
        function,
        json!({ "action": "sleep", "seconds": 30 }),
    )
    .await;
    let waited = started.elapsed();
    let doc = assert_function_error(&slow, "Sandbox.Timedout");
    let id = request_id(&slow);
    let message = doc["errorMessage"].as_str().expect("errorMessage");
    assert!(
        message.contains(&id) && message.contains("Task timed out after 1.00 seconds"),
        "{message}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "the timeout ends the call: {waited:?}"
    );

    let next = invoke_json(&http, &server, function, json!({})).await;
    assert_eq!(next.status, 200, "{}", next.text());
    let doc = next.json();
    assert_ne!(doc["instance"], instance, "a fresh instance: {doc}");
    assert_eq!(doc["calls"], 1, "{doc}");

    let logs = logs_containing(&server, function, "Task timed out after 1.00 seconds").await;
    let report = lines_with(&logs, &format!("REPORT RequestId: {id}"));
    assert_eq!(report.len(), 1, "{logs}");
    assert!(report[0].contains("Status: timeout"), "{logs}");

    // Through an HTTP route a timeout is API Gateway's 504.
    let slow_http = request(
        &http,
        "POST",
        &format!("{}/slow", server.gateway),
        &[("content-type", "application/json")],
        r#"{"action":"sleep","seconds":30}"#,
    )
    .await;
    assert_eq!(slow_http.status, 504, "{}", slow_http.text());
    assert_eq!(slow_http.json()["message"], "Endpoint request timed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_reports_runtime_exit_error_and_the_next_call_gets_a_fresh_instance() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let extra = "    events:\n      - http: { path: /crash, method: post }\n";
    server.deploy(&faults_project(tmp.path(), "crash", extra));
    let function = "crash-dev-f";
    let http = client();

    let first = invoke_json(&http, &server, function, json!({})).await;
    let instance = first.json()["instance"].clone();
    assert!(instance.is_string(), "{}", first.text());

    let started = Instant::now();
    let crashed = invoke_json(
        &http,
        &server,
        function,
        json!({ "action": "exit", "code": 1 }),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a crash ends the call at once, not at the timeout"
    );
    let doc = assert_function_error(&crashed, "Runtime.ExitError");
    let id = request_id(&crashed);
    let message = doc["errorMessage"].as_str().expect("errorMessage");
    assert!(
        message.starts_with(&format!(
            "RequestId: {id} Error: Runtime exited with error: exit status"
        )),
        "{message}"
    );
    assert!(message.contains('1'), "the exit status is named: {message}");

    let next = invoke_json(&http, &server, function, json!({})).await;
    assert_eq!(next.status, 200, "{}", next.text());
    assert_ne!(next.json()["instance"], instance, "a fresh instance");
    let logs = logs_containing(&server, function, "Runtime exited with error").await;
    let report = lines_with(&logs, &format!("REPORT RequestId: {id}"));
    assert_eq!(report.len(), 1, "{logs}");
    assert!(
        report[0].contains("Error Type: Runtime.ExitError"),
        "{logs}"
    );

    // Through an HTTP route a crash is API Gateway's 502.
    let crashed_http = request(
        &http,
        "POST",
        &format!("{}/crash", server.gateway),
        &[("content-type", "application/json")],
        r#"{"action":"exit","code":3}"#,
    )
    .await;
    assert_eq!(crashed_http.status, 502, "{}", crashed_http.text());
    assert_eq!(crashed_http.json()["message"], "Internal server error");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_errors_return_the_runtimes_error_to_the_caller() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let manifest = "service: broken\nfunctions:\n  py:\n    runtime: python3.12\n    handler: missing_module.handler\n    events:\n      - httpApi: { path: /broken, method: get }\n  node:\n    runtime: nodejs20.x\n    handler: missing_module.handler\n";
    let dir = project(
        tmp.path(),
        "broken",
        manifest,
        &[("README", "no code here\n")],
    );
    server.deploy(&dir);
    let http = client();

    let py = invoke_json(&http, &server, "broken-dev-py", json!({})).await;
    let doc = assert_function_error(&py, "Runtime.ImportModuleError");
    let message = doc["errorMessage"].as_str().expect("errorMessage");
    assert!(
        message.contains("Unable to import module 'missing_module'"),
        "{message}"
    );

    let node = invoke_json(&http, &server, "broken-dev-node", json!({})).await;
    let doc = assert_function_error(&node, "Runtime.ImportModuleError");
    let message = doc["errorMessage"].as_str().expect("errorMessage");
    assert!(message.contains("missing_module"), "{message}");

    logs_containing(&server, "broken-dev-py", "Runtime.ImportModuleError").await;

    // Through an HTTP route an init failure is a 502.
    let resp = get(&http, &format!("{}/broken", server.gateway)).await;
    assert_eq!(resp.status, 502, "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_payloads_get_request_too_large() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&faults_project(tmp.path(), "big", "    timeout: 30\n"));
    let function = "big-dev-f";
    let http = client();

    // A JSON payload of exactly `size` bytes.
    let payload = |size: usize| {
        let frame = r#"{"action":"echo","pad":""}"#.len();
        format!(
            r#"{{"action":"echo","pad":"{}"}}"#,
            "x".repeat(size - frame)
        )
    };
    let event = [("x-amz-invocation-type", "Event")];

    let too_big = invoke(&http, &server, function, &[], payload(SYNC_LIMIT + 1)).await;
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    assert_eq!(
        header(&too_big, "x-amzn-errortype"),
        Some("RequestTooLargeException")
    );
    assert_eq!(too_big.json()["__type"], "RequestTooLargeException");

    let async_too_big = invoke(&http, &server, function, &event, payload(ASYNC_LIMIT + 1)).await;
    assert_eq!(async_too_big.status, 413, "{}", async_too_big.text());
    assert_eq!(
        header(&async_too_big, "x-amzn-errortype"),
        Some("RequestTooLargeException")
    );

    // At the limits the payloads are accepted.
    let async_max = invoke(&http, &server, function, &event, payload(ASYNC_LIMIT)).await;
    assert_eq!(async_max.status, 202, "{}", async_max.text());
    let sync_max = invoke(&http, &server, function, &[], payload(SYNC_LIMIT)).await;
    assert_eq!(sync_max.status, 200, "{}", sync_max.text());
    assert!(
        header(&sync_max, "x-amz-function-error").is_none(),
        "{}",
        sync_max.text()
    );
    assert_eq!(sync_max.json()["action"], "echo");

    // A result over 6 MB is the function's error, not the caller's.
    let big_result = invoke_json(
        &http,
        &server,
        function,
        json!({ "action": "big", "size": SYNC_LIMIT + 1024 }),
    )
    .await;
    assert_function_error(&big_result, "Function.ResponseSizeTooLarge");
}

// ------------------------------------------------------------------ async

#[tokio::test(flavor = "multi_thread")]
async fn event_invocations_run_in_the_background_and_failures_are_retried_twice() {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--async-retry-delay", "0.2"]);
    server.deploy(&faults_project(tmp.path(), "later", ""));
    let function = "later-dev-f";
    let http = client();
    let event = [("x-amz-invocation-type", "Event")];

    let accepted = invoke(&http, &server, function, &event, r#"{"action":"echo"}"#).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    assert!(accepted.body.is_empty());
    let ok_id = request_id(&accepted);

    let started = Instant::now();
    let failing = invoke(&http, &server, function, &event, r#"{"action":"raise"}"#).await;
    assert_eq!(failing.status, 202, "{}", failing.text());
    let failed_id = request_id(&failing);

    let start_line = format!("START RequestId: {failed_id}");
    let mut logs = String::new();
    let retried = eventually(Duration::from_secs(5), || {
        logs = server.logs(function);
        logs.matches(&start_line).count() >= 3 && logs.contains("failed 3 times")
    })
    .await;
    assert!(retried, "three attempts within 5 s:\n{logs}");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "retries wait 0.2 s, then 0.4 s"
    );
    assert!(logs.contains(&format!("END RequestId: {ok_id}")), "{logs}");

    // No fourth attempt, and the successful event ran exactly once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let logs = server.logs(function);
    assert_eq!(logs.matches(&start_line).count(), 3, "{logs}");
    assert_eq!(
        logs.matches(&format!("START RequestId: {ok_id}")).count(),
        1,
        "{logs}"
    );
    assert_eq!(
        lines_with(&logs, &format!("REPORT RequestId: {failed_id}"))
            .iter()
            .filter(|l| l.contains("Status: error"))
            .count(),
        3,
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_schedule_invokes_the_function_with_a_scheduled_event() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    // Every minute: the test waits for the next whole minute, at most ~60 s.
    server.deploy(&faults_project(
        tmp.path(),
        "cron",
        "    events:\n      - schedule: cron(* * * * ? *)\n",
    ));
    let mut logs = String::new();
    let fired = eventually(Duration::from_secs(70), || {
        logs = server.logs("cron-dev-f");
        logs.contains("faults: Scheduled Event from aws.events")
    })
    .await;
    assert!(fired, "no scheduled invocation within 70 s:\n{logs}");
    assert!(logs.contains("schedule cron(* * * * ? *) fired"), "{logs}");
    assert_eq!(
        lines_with(&logs, "START RequestId").len(),
        1,
        "one tick, one invocation: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_schedules_are_rejected_at_deploy() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let bad = faults_project(
        tmp.path(),
        "badcron",
        "    events:\n      - schedule: cron(0 12 * * * *)\n",
    );
    let out = server.cli(&["deploy", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("InvalidSchedule") && stderr.contains("cron(0 12 * * * *)"),
        "{stderr}"
    );
}
