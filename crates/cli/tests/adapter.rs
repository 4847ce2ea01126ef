//! `rouse package --target aws-lambda` and `rouse-adapter` end to end: the
//! Python web example is packaged as a Lambda zip, the zip is unpacked and
//! deployed to a real `rouse serve` as a `provided.al2023` lambda function
//! (its `bootstrap` is the adapter, which runs the zip's `run.sh`), and an
//! HTTP API route reaches the unmodified app through it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{client, get, open_tempdir, repo_root, request, rouse_bin, Server};

/// `rouse-adapter` from the same build as `rouse` (test.sh builds the
/// workspace before testing).
fn adapter_bin() -> PathBuf {
    let path = Path::new(rouse_bin()).with_file_name("rouse-adapter");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` (test.sh does) before these tests",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test]
async fn packaged_web_app_runs_as_a_lambda_function_through_the_adapter() {
    adapter_bin();
    let tmp = open_tempdir();
    let zip_path = tmp.path().join("web.zip");
    let out = Command::new(rouse_bin())
        .args(["package"])
        .arg(repo_root().join("examples/python-web"))
        .args(["--target", "aws-lambda", "--out"])
        .arg(&zip_path)
        .output()
        .expect("run rouse package");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "package failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("aws lambda create-function"), "{stdout}");
    assert!(stdout.contains("--runtime python3.13"), "{stdout}");

    // Unpack the zip as Lambda would into /var/task.
    let project = tmp.path().join("project");
    let file = std::fs::File::open(&zip_path).expect("zip");
    zip::ZipArchive::new(file)
        .expect("valid zip")
        .extract(&project)
        .expect("extract");
    let mode = std::fs::metadata(project.join("bootstrap"))
        .expect("bootstrap in the zip")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        std::fs::read(project.join("bootstrap")).expect("bootstrap"),
        std::fs::read(adapter_bin()).expect("adapter"),
    );
    let script = std::fs::read_to_string(project.join("run.sh")).expect("run.sh");
    assert!(
        script.ends_with("exec 'python3' '-u' 'app.py'\n"),
        "{script}"
    );

    // The same files as a rouse lambda function; the manifest's GREETING
    // overrides run.sh's default, as Lambda configuration would.
    let port = free_port();
    std::fs::write(
        project.join("rouse.yaml"),
        format!(
            r#"service: adapted
functions:
  web:
    runtime: provided.al2023
    handler: run.sh
    timeout: 10
    environment:
      PORT: "{port}"
      GREETING: Hello through rouse-adapter
    events:
      - httpApi: {{ path: "/{{proxy+}}", method: any }}
"#
        ),
    )
    .expect("manifest");

    let data = open_tempdir();
    let server = Server::start(data.path());
    server.deploy(&project);
    let http = client();

    let first = get(&http, &format!("{}/hello?x=1", server.gateway)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.headers["content-type"], "application/json");
    let doc = first.json();
    assert_eq!(doc["message"], "Hello through rouse-adapter");
    assert_eq!(doc["method"], "GET");
    assert_eq!(doc["path"], "/hello?x=1");

    let second = request(
        &http,
        "POST",
        &format!("{}/orders", server.gateway),
        &[("content-type", "text/plain")],
        "two pizzas",
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text());
    let doc2 = second.json();
    assert_eq!(doc2["body"], "two pizzas");
    assert_eq!(doc2["path"], "/orders");
    // Warm: the same app process answered both.
    assert_eq!(doc2["pid"], doc["pid"]);
    assert_eq!(doc2["hits"], 2);
}

#[test]
fn package_explains_what_is_missing() {
    let tmp = open_tempdir();
    let lambda_only = common::project(
        tmp.path(),
        "fn",
        "service: s\nfunctions:\n  f:\n    runtime: python3.12\n    handler: app.handler\n",
        &[("app.py", "def handler(e, c): return 1\n")],
    );
    let out = Command::new(rouse_bin())
        .args(["package"])
        .arg(&lambda_only)
        .args(["--target", "aws-lambda"])
        .current_dir(tmp.path())
        .output()
        .expect("run rouse package");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no web function"), "{stderr}");
}
