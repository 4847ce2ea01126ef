//! Official runtime interface clients, unchanged, against a real `rouse
//! serve`: AWS's Python client (`awslambdaric`) as a `provided` runtime's
//! bootstrap, packaged into the artifact as a Lambda user would, serving
//! an HTTP API route and the Invoke API, warm and across errors.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::*;
use serde_json::{json, Value};

const HANDLER: &str = r#"import json, os

COUNT = {"n": 0}

def handler(event, context):
    COUNT["n"] += 1
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("asked to fail")
    if isinstance(event, dict) and "rawPath" in event:
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"path": event["rawPath"], "n": COUNT["n"]})}
    return {"echo": event, "n": COUNT["n"], "request_id": context.aws_request_id,
            "function": context.function_name,
            "remaining_ms": context.get_remaining_time_in_millis()}
"#;

const BOOTSTRAP: &str = "#!/bin/sh\n# The official client, from the artifact, on the machine's python3.\nexport PYTHONPATH=\"$LAMBDA_TASK_ROOT/vendor\"\nexec python3 -m awslambdaric app.handler\n";

/// The project with awslambdaric installed into `vendor/` (as users
/// package dependencies for a `provided` runtime); `None` when pip cannot
/// install it here.
fn project_with_ric(parent: &Path) -> Option<PathBuf> {
    let dir = project(
        parent,
        "ric",
        "service: ric\nfunctions:\n  py:\n    runtime: provided.al2023\n    handler: app.handler\n    timeout: 10\n    events:\n      - httpApi: { path: /ric, method: get }\n",
        &[("app.py", HANDLER), ("bootstrap", BOOTSTRAP)],
    );
    std::fs::set_permissions(
        dir.join("bootstrap"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    // The instance runs the machine's own python3 (/usr/bin, not a per-user
    // install), so the package must match that interpreter.
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let version = Command::new(python)
        .args([
            "-c",
            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
        ])
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let installed = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--only-binary=:all:"])
        .args(["--python-version", &version, "--target"])
        .arg(dir.join("vendor"))
        .arg("awslambdaric")
        .status()
        .ok()?;
    if !installed.success() {
        return None;
    }
    Some(dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn awslambdaric_serves_routes_and_invokes_unchanged() {
    let tmp = open_tempdir();
    let Some(dir) = project_with_ric(tmp.path()) else {
        // test.sh installs pip; a machine without it cannot run this test.
        panic!("could not install awslambdaric with pip");
    };
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&dir);
    let http = client();
    let url = format!(
        "{}/2015-03-31/functions/ric-dev-py/invocations",
        server.gateway
    );

    let first = request(&http, "POST", &url, &[], Bytes::from_static(b"{\"a\":1}")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let doc = first.json();
    assert_eq!(doc["echo"], json!({"a": 1}), "{doc}");
    assert_eq!(doc["function"], "ric-dev-py");
    assert!(doc["remaining_ms"].as_i64().unwrap_or(0) > 0, "{doc}");
    assert_eq!(
        doc["request_id"],
        first.headers["x-amzn-requestid"].to_str().unwrap()
    );

    // A handler error, reported by the client as Lambda reports it; the
    // same warm process serves the next call.
    let failed = request(
        &http,
        "POST",
        &url,
        &[],
        Bytes::from_static(b"{\"fail\":true}"),
    )
    .await;
    assert_eq!(failed.status, 200);
    assert_eq!(failed.headers["x-amz-function-error"], "Unhandled");
    let error: Value = failed.json();
    assert_eq!(error["errorType"], "ValueError", "{error}");
    assert_eq!(error["errorMessage"], "asked to fail");

    let route = get(&http, &format!("{}/ric", server.gateway)).await;
    assert_eq!(route.status, 200, "{}", route.text());
    assert_eq!(route.json()["path"], "/ric");
    assert_eq!(route.json()["n"], 3, "one warm process served all three");
}
