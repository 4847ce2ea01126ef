//! Signed calls to the AWS-compatible APIs and the guarded admin API, end to
//! end: a real `rouse serve --aws-auth required`, keys made with the real
//! CLI, boto3 and the AWS CLI signing with them, raw HTTP for what SDKs
//! would never send.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use serde_json::{json, Value};

fn echo_project(parent: &Path) -> PathBuf {
    project(
        parent,
        "signed",
        "service: signed\nfunctions:\n  echo:\n    runtime: python3.12\n    handler: app.handler\n    memorySize: 128\n",
        &[("app.py", "def handler(event, context):\n    return {\"got\": event}\n")],
    )
}

/// `aws`/`python3` with no credentials or endpoint from the machine.
fn aws_command(program: &str, akid: &str, secret: &str) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_LAMBDA",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", akid)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/rouse-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/rouse-test-aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

async fn boto3_cases(server: &Server, akid: &str, secret: &str, only_ok: bool) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/boto3_signed.py");
    let mut cmd = aws_command("python3", "unused", "unused");
    cmd.arg(script)
        .args([&server.gateway, "signed-dev-echo", akid, secret]);
    if only_ok {
        cmd.arg("only-ok");
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run python3"))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "boto3 script failed (test.sh installs boto3):\n{stderr}"
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_api_requires_a_valid_signature_by_a_rouse_key() {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--aws-auth", "required"]);
    server.deploy(&echo_project(tmp.path()));

    let made = server.cli_json(&["keys", "create", "--json", "--description", "ci runner"]);
    let akid = made["AccessKeyId"]
        .as_str()
        .expect("AccessKeyId")
        .to_string();
    let secret = made["SecretAccessKey"]
        .as_str()
        .expect("SecretAccessKey")
        .to_string();
    assert!(akid.starts_with("AKIA") && akid.len() == 20, "{akid}");
    assert_eq!(secret.len(), 40);

    // The text form prints the lines to paste into an environment.
    let text = server.cli(&["keys", "create"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("\nAWS_ACCESS_KEY_ID=AKIA"), "{text}");
    assert!(text.contains("\nAWS_SECRET_ACCESS_KEY="), "{text}");

    let listed = server.cli(&["keys", "ls", "--json"]);
    let listed_text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(!listed_text.contains(&secret), "ls never shows secrets");
    let listed: Value = serde_json::from_str(&listed_text).expect("ls json");
    let mine = listed
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["AccessKeyId"] == akid.as_str()))
        .unwrap_or_else(|| panic!("{akid} not listed: {listed}"));
    assert_eq!(mine["Description"], "ci runner");
    assert_eq!(mine["LastUsedAt"], Value::Null);

    // Unsigned: refused before anything runs.
    let http = client();
    let url = format!(
        "{}/2015-03-31/functions/signed-dev-echo/invocations",
        server.gateway
    );
    let unsigned = request(&http, "POST", &url, &[], Bytes::from_static(b"{}")).await;
    assert_eq!(unsigned.status, 403, "{}", unsigned.text());
    assert_eq!(
        unsigned.headers["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    assert_eq!(
        unsigned.json(),
        json!({"message": "Missing Authentication Token"})
    );

    // Every function has a Function URL: unsigned, it is refused too.
    let fn_url = format!("{}/urls/signed-dev-echo/hello", server.gateway);
    let unsigned_url = request(&http, "POST", &fn_url, &[], Bytes::from_static(b"{}")).await;
    assert_eq!(unsigned_url.status, 403, "{}", unsigned_url.text());

    let doc = boto3_cases(&server, &akid, &secret, false).await;
    assert_eq!(doc["function_url_signed"]["status"], 200, "{doc}");
    assert_eq!(doc["ok"]["StatusCode"], 200, "{doc}");
    assert_eq!(
        doc["ok"]["Payload"],
        json!({"got": {"hello": "signed"}}),
        "{doc}"
    );
    assert_eq!(doc["signed_raw"]["status"], 200, "{doc}");

    let refused = |case: &str, code: &str| {
        let c = &doc[case];
        assert_eq!(c["HTTPStatusCode"], 403, "{case}: {doc}");
        assert_eq!(c["Code"], code, "{case}: {doc}");
        c["Message"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(
        refused("wrong_secret", "InvalidSignatureException"),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    assert_eq!(
        refused("unknown_key", "UnrecognizedClientException"),
        "The security token included in the request is invalid."
    );
    let raw_refused = |case: &str, code: &str| {
        let c = &doc[case];
        assert_eq!(c["status"], 403, "{case}: {doc}");
        assert_eq!(c["ErrorType"], code, "{case}: {doc}");
        c["body"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let expired = raw_refused("expired", "InvalidSignatureException");
    assert!(
        expired.starts_with("Signature expired: ") && expired.ends_with(" - 15 min.)"),
        "{expired}"
    );
    assert!(raw_refused("tampered", "InvalidSignatureException")
        .starts_with("The request signature we calculated"));
    assert_eq!(
        doc["presigned"]["status"], 200,
        "a presigned URL works too: {doc}"
    );

    // The AWS CLI with the pair from `rouse keys create` in its environment.
    let outfile = tmp.path().join("out.json");
    let out = tokio::task::spawn_blocking({
        let (gateway, akid, secret, outfile) = (
            server.gateway.clone(),
            akid.clone(),
            secret.clone(),
            outfile.clone(),
        );
        move || {
            let v2 = Command::new("aws")
                .arg("--version")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("aws-cli/2"));
            let mut cmd = aws_command("aws", &akid, &secret);
            cmd.args(["lambda", "invoke", "--endpoint-url", &gateway])
                .args([
                    "--function-name",
                    "signed-dev-echo",
                    "--payload",
                    r#"{"from":"aws cli"}"#,
                ]);
            if v2 {
                cmd.args(["--cli-binary-format", "raw-in-base64-out"]);
            }
            cmd.arg(&outfile).output()
        }
    })
    .await
    .expect("join")
    .expect("the AWS CLI is installed (test.sh installs awscli)");
    assert!(
        out.status.success(),
        "aws lambda invoke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let payload: Value =
        serde_json::from_slice(&std::fs::read(&outfile).expect("outfile")).expect("JSON");
    assert_eq!(payload, json!({"got": {"from": "aws cli"}}));

    // `rouse invoke` goes through the admin API (its token), not SigV4.
    let direct = server.cli(&["invoke", "signed-dev-echo", "--data", r#"{"n":1}"#]);
    assert!(
        direct.status.success(),
        "{}",
        String::from_utf8_lossy(&direct.stderr)
    );

    let listed = server.cli_json(&["keys", "ls", "--json"]);
    let used = listed
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["AccessKeyId"] == akid.as_str()))
        .map(|k| k["LastUsedAt"].clone());
    assert!(
        used.is_some_and(|t| t.is_i64()),
        "last use recorded: {listed}"
    );

    // A removed key stops working at once.
    let rm = server.cli(&["keys", "rm", &akid]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    let after = boto3_cases(&server, &akid, &secret, true).await;
    assert_eq!(
        after["ok"]["Code"], "UnrecognizedClientException",
        "{after}"
    );
    let again = server.cli(&["keys", "rm", &akid]);
    assert!(!again.status.success(), "removing it twice is an error");
}

/// One raw admin request from `source` (any 127/8 address is this host).
async fn admin_status(admin: &str, source: &str, token: &str) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr: std::net::SocketAddr = admin.trim_start_matches("http://").parse().expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("source"))
        .expect("bind source");
    let mut stream = socket.connect(addr).await.expect("connect");
    let req = format!(
        "GET /v1/health HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut resp = String::new();
    stream.read_to_string(&mut resp).await.expect("read");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {resp}"));
    let retry_after = resp.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after:")
            .map(|v| v.trim().to_string())
    });
    (status, retry_after)
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_locks_out_an_address_that_keeps_guessing() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    for i in 0..10 {
        let (status, _) = admin_status(&server.admin, "127.0.0.1", &format!("guess-{i}")).await;
        assert_eq!(status, 401, "guess {i}");
    }
    let (status, retry_after) = admin_status(&server.admin, "127.0.0.1", "guess-10").await;
    assert_eq!(status, 429);
    let wait: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=6).contains(&wait), "{wait}");
    // While locked out even the right token gets no answer from that
    // address (so guessing on tells nothing) ...
    assert_eq!(admin_status(&server.admin, "127.0.0.1", TOKEN).await.0, 429);
    // ... but another client is served.
    assert_eq!(admin_status(&server.admin, "127.0.0.2", TOKEN).await.0, 200);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(admin_status(&server.admin, "127.0.0.1", TOKEN).await.0, 200);
}
