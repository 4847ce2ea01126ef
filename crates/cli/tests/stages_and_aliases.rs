//! Stages side by side (prefix, host, none) and aliases with weighted
//! routing: a real `rouse serve`, the Serverless fixture project deployed
//! with the real CLI, real HTTP, boto3.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use serde_json::Value;

/// A copy of `tests/fixtures/sls-project` that a test may change.
fn sls_project(parent: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sls-project");
    let dir = parent.join("shop");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for name in ["serverless.yml", "handler.py"] {
        std::fs::copy(src.join(name), dir.join(name)).expect("copy fixture");
    }
    dir
}

/// Rewrites the handler so the next deploy is a visibly different version.
fn set_release(dir: &Path, release: &str) {
    let path = dir.join("handler.py");
    let code = std::fs::read_to_string(&path).expect("read handler");
    let start = code.find("RELEASE = \"").expect("RELEASE line");
    let end = start + code[start..].find('\n').expect("end of line");
    let code = format!("{}RELEASE = \"{release}\"{}", &code[..start], &code[end..]);
    std::fs::write(path, code).expect("write handler");
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "command failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn deploy_stage(server: &Server, dir: &Path, stage: &str) -> String {
    ok(&server.cli(&["deploy", dir.to_str().expect("utf-8"), "--stage", stage]))
}

async fn get_json(http: &HttpClient, url: &str) -> Value {
    let resp = get(http, url).await;
    assert_eq!(resp.status, 200, "GET {url}: {}", resp.text());
    resp.json()
}

/// What the `hello` handler answers at `url` (`release`, `greeting`, …).
async fn release_at(http: &HttpClient, url: &str) -> String {
    get_json(http, url).await["release"]
        .as_str()
        .expect("release")
        .to_string()
}

/// An Invoke API call; returns the status, `X-Amz-Executed-Version` and the
/// handler's decoded body (or the error document).
async fn invoke(
    http: &HttpClient,
    server: &Server,
    name: &str,
    query: &str,
) -> (u16, String, Value) {
    let url = format!(
        "{}/2015-03-31/functions/{name}/invocations{query}",
        server.gateway
    );
    let resp = request(http, "POST", &url, &[], "{}").await;
    let version = resp
        .headers
        .get("x-amz-executed-version")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    let doc = resp.json();
    let body = match doc["body"].as_str() {
        Some(body) => serde_json::from_str(body).expect("handler body is JSON"),
        None => doc,
    };
    (resp.status, version, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_serverless_project_runs_two_stages_side_by_side_under_their_prefixes() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = sls_project(tmp.path());
    let dev = deploy_stage(&server, &dir, "dev");
    let prod = deploy_stage(&server, &dir, "prod");
    let gw = &server.gateway;
    assert!(dev.contains(&format!("{gw}/dev/hello")), "{dev}");
    assert!(prod.contains(&format!("{gw}/prod/items/{{id}}")), "{prod}");

    let http = client();
    for stage in ["dev", "prod"] {
        let doc = get_json(&http, &format!("{gw}/{stage}/hello")).await;
        assert_eq!(doc["greeting"], format!("hello from {stage}"), "{doc}");
        assert_eq!(doc["stageName"], stage, "{doc}");
        // API Gateway REST with a named stage: `path` without the stage,
        // `requestContext.path` with it.
        assert_eq!(doc["contextStage"], stage, "{doc}");
        assert_eq!(doc["contextPath"], format!("/{stage}/hello"), "{doc}");
        assert_eq!(doc["path"], "/hello", "{doc}");
        assert_eq!(doc["resource"], "/hello", "{doc}");

        // HTTP API with a named stage: `rawPath` keeps the stage.
        let doc = get_json(&http, &format!("{gw}/{stage}/items/42")).await;
        assert_eq!(doc["greeting"], format!("hello from {stage}"), "{doc}");
        assert_eq!(doc["contextStage"], stage, "{doc}");
        assert_eq!(doc["rawPath"], format!("/{stage}/items/42"), "{doc}");
        assert_eq!(doc["httpPath"], format!("/{stage}/items/42"), "{doc}");
        assert_eq!(doc["routeKey"], "GET /items/{id}", "{doc}");
        assert_eq!(doc["id"], "42", "{doc}");
    }
    assert_eq!(get(&http, &format!("{gw}/hello")).await.status, 404);
    assert_eq!(get(&http, &format!("{gw}/test/hello")).await.status, 404);

    let ls = ok(&server.cli(&["ls"]));
    for url in [
        format!("{gw}/dev/hello"),
        format!("{gw}/prod/hello"),
        format!("{gw}/dev/items/{{id}}"),
    ] {
        assert!(ls.contains(&url), "ls shows {url}:\n{ls}");
    }
    assert!(ls.contains("shop-prod-tick"), "{ls}");

    // A second version on both stages, then a rollback of prod only.
    set_release(&dir, "two");
    deploy_stage(&server, &dir, "dev");
    deploy_stage(&server, &dir, "prod");
    assert_eq!(release_at(&http, &format!("{gw}/prod/hello")).await, "two");
    ok(&server.cli(&["rollback", "hello", "--stage", "prod"]));
    assert_eq!(release_at(&http, &format!("{gw}/prod/hello")).await, "one");
    assert_eq!(release_at(&http, &format!("{gw}/dev/hello")).await, "two");

    // Removing a function of one stage leaves the other stage's alone.
    ok(&server.cli(&["rm", "items", "--stage", "dev"]));
    assert_eq!(get(&http, &format!("{gw}/dev/items/1")).await.status, 404);
    let doc = get_json(&http, &format!("{gw}/prod/items/1")).await;
    assert_eq!(doc["greeting"], "hello from prod", "{doc}");
}

fn web_project(parent: &Path, name: &str, routing: &str) -> PathBuf {
    let manifest = format!(
        "service: {name}\n{routing}functions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: {{ path: \"/{{proxy+}}\", method: any }}\n"
    );
    project(parent, name, &manifest, &[("app.py", &fixture_app())])
}

#[tokio::test(flavor = "multi_thread")]
async fn web_functions_under_a_prefix_see_their_own_path_and_the_prefix_header() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = web_project(tmp.path(), "site", "stageRouting: prefix\n");
    deploy_stage(&server, &dir, "dev");
    deploy_stage(&server, &dir, "prod");
    let http = client();
    for stage in ["dev", "prod"] {
        let doc = get_json(&http, &format!("{}/{stage}/a/b?x=1", server.gateway)).await;
        assert_eq!(doc["path"], "/a/b?x=1", "{doc}");
        assert_eq!(doc["headers"]["x-forwarded-prefix"], format!("/{stage}"));
        assert_eq!(doc["env"]["ROUSE_FUNCTION"], format!("site-{stage}-app"));
        // The bare prefix is the app's root.
        let root = get_json(&http, &format!("{}/{stage}", server.gateway)).await;
        assert_eq!(root["path"], "/", "{root}");
    }
    // `/urls/…` belongs to Function URLs.
    let err = failed(&server.cli(&["deploy", dir.to_str().expect("utf-8"), "--stage", "urls"]));
    assert!(err.contains("Function URLs"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stages_without_stage_routing_clash_and_the_error_names_the_setting() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = web_project(tmp.path(), "plain", "");
    deploy_stage(&server, &dir, "dev");
    let err = failed(&server.cli(&["deploy", dir.to_str().expect("utf-8"), "--stage", "prod"]));
    assert!(err.contains("plain-dev-app"), "{err}");
    assert!(err.contains("stageRouting: prefix"), "{err}");
    assert!(err.contains("custom.rouse.stageRouting"), "{err}");
    // The quick start keeps working: `none` serves `/` as declared.
    let doc = get_json(&client(), &format!("{}/", server.gateway)).await;
    assert_eq!(doc["env"]["ROUSE_FUNCTION"], "plain-dev-app");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_stage_routing_serves_each_stage_on_its_own_host() {
    let tmp = open_tempdir();
    let dir = web_project(tmp.path(), "web", "stageRouting: host\n");

    let plain = Server::start(&tmp.path().join("plain"));
    let err = failed(&plain.cli(&["deploy", dir.to_str().expect("utf-8")]));
    assert!(err.contains("--domain"), "{err}");
    drop(plain);

    let server = Server::start_with(&tmp.path().join("data"), &["--domain", "fn.test"]);
    let port = server.gateway.rsplit(':').next().expect("port").to_string();
    let out = deploy_stage(&server, &dir, "dev");
    assert!(
        out.contains(&format!("http://dev.fn.test:{port}/{{proxy+}}")),
        "{out}"
    );
    deploy_stage(&server, &dir, "prod");
    let http = client();
    for stage in ["dev", "prod"] {
        let host = format!("{stage}.fn.test:{port}");
        let resp = request(
            &http,
            "GET",
            &format!("{}/x", server.gateway),
            &[("host", &host)],
            "",
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let doc = resp.json();
        assert_eq!(doc["env"]["ROUSE_FUNCTION"], format!("web-{stage}-app"));
        assert_eq!(doc["path"], "/x", "{doc}");
    }
    // Host routes answer on their host only.
    assert_eq!(
        get(&http, &format!("{}/x", server.gateway)).await.status,
        404
    );
}

const BOTO3_QUALIFIERS: &str = r#"
import json, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
client = boto3.client("lambda", endpoint_url=sys.argv[1],
                      config=Config(retries={"max_attempts": 1}))
out = {}
for q in ["live", "1", "$LATEST"]:
    r = client.invoke(FunctionName=sys.argv[2], Qualifier=q, Payload=b"{}")
    out[q] = {"ExecutedVersion": r["ExecutedVersion"],
              "release": json.loads(json.loads(r["Payload"].read())["body"])["release"]}
try:
    client.invoke(FunctionName=sys.argv[2] + ":nope", Payload=b"{}")
except ClientError as e:
    out["nope"] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_live_alias_pins_routes_while_unqualified_invokes_run_the_latest() {
    let tmp = open_tempdir();
    let mut server = Server::start(&tmp.path().join("data"));
    let dir = sls_project(tmp.path());
    deploy_stage(&server, &dir, "dev");
    set_release(&dir, "two");
    deploy_stage(&server, &dir, "dev");
    let route = format!("{}/dev/hello", server.gateway);
    let http = client();
    assert_eq!(release_at(&http, &route).await, "two");

    ok(&server.cli(&["alias", "set", "hello", "live", "--version", "1"]));
    let doc = get_json(&http, &route).await;
    assert_eq!(doc["release"], "one", "{doc}");
    assert_eq!(doc["functionVersion"], "1", "{doc}");

    let name = "shop-dev-hello";
    let (status, version, body) = invoke(&http, &server, name, "").await;
    assert_eq!((status, version.as_str()), (200, "$LATEST"));
    assert_eq!(body["release"], "two", "{body}");
    assert_eq!(body["functionVersion"], "$LATEST", "{body}");
    let (_, version, body) = invoke(&http, &server, name, "?Qualifier=live").await;
    assert_eq!(
        (version.as_str(), &body["release"]),
        ("1", &Value::from("one"))
    );
    let (_, version, body) = invoke(&http, &server, &format!("{name}:2"), "").await;
    assert_eq!(
        (version.as_str(), &body["release"]),
        ("2", &Value::from("two"))
    );
    let (status, _, body) = invoke(&http, &server, &format!("{name}:1"), "?Qualifier=2").await;
    assert_eq!(status, 400, "{body}");
    for missing in ["?Qualifier=nope", "?Qualifier=9"] {
        let (status, _, body) = invoke(&http, &server, name, missing).await;
        assert_eq!(status, 404, "{missing}: {body}");
        assert_eq!(body["__type"], "ResourceNotFoundException", "{body}");
    }

    let out = tokio::task::spawn_blocking({
        let gateway = server.gateway.clone();
        move || {
            std::process::Command::new("python3")
                .args(["-c", BOTO3_QUALIFIERS, &gateway, name])
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_ENDPOINT_URL")
                .env("AWS_CONFIG_FILE", "/nonexistent/rouse-test-aws-config")
                .env(
                    "AWS_SHARED_CREDENTIALS_FILE",
                    "/nonexistent/rouse-test-aws-creds",
                )
                .output()
                .expect("run python3")
        }
    })
    .await
    .expect("join");
    let doc: Value = serde_json::from_str(&ok(&out)).expect("script output is JSON");
    assert_eq!(doc["live"]["ExecutedVersion"], "1", "{doc}");
    assert_eq!(doc["live"]["release"], "one", "{doc}");
    assert_eq!(doc["1"]["release"], "one", "{doc}");
    assert_eq!(doc["$LATEST"]["ExecutedVersion"], "$LATEST", "{doc}");
    assert_eq!(doc["$LATEST"]["release"], "two", "{doc}");
    assert_eq!(doc["nope"], "ResourceNotFoundException", "{doc}");

    // Bad input is refused with a reason.
    let err = failed(&server.cli(&["alias", "set", "hello", "live", "--version", "9"]));
    assert!(err.contains("no version 9"), "{err}");
    let err = failed(&server.cli(&["alias", "set", "hello", "7", "--version", "1"]));
    assert!(err.contains("invalid alias name"), "{err}");
    let err = failed(&server.cli(&[
        "alias",
        "set",
        "hello",
        "live",
        "--version",
        "1",
        "--canary",
        "2",
        "--weight",
        "1.5",
    ]));
    assert!(err.contains("between 0 and 1"), "{err}");

    // Aliases live in the CMDB: a restart keeps serving version 1.
    server.restart();
    let route = format!("{}/dev/hello", server.gateway);
    assert_eq!(release_at(&http, &route).await, "one");
    let listed: Value = serde_json::from_str(&ok(
        &server.cli(&["alias", "ls", "hello", "--output", "json"])
    ))
    .expect("json");
    assert_eq!(listed[0]["name"], "live", "{listed}");
    assert_eq!(listed[0]["version"], 1, "{listed}");

    // Without the alias, routes serve the latest version again, and the
    // instance of version 1 stops: nothing serves it any more.
    let versions_running = |server: &Server| -> Vec<u64> {
        let ls: Value =
            serde_json::from_str(&ok(&server.cli(&["ls", "--output", "json"]))).expect("json");
        ls.as_array()
            .expect("array")
            .iter()
            .filter(|f| f["name"] == "shop-dev-hello")
            .flat_map(|f| f["instances"].as_array().cloned().unwrap_or_default())
            .filter_map(|i| i["version"].as_u64())
            .collect()
    };
    assert!(versions_running(&server).contains(&1));
    ok(&server.cli(&["alias", "rm", "hello", "live"]));
    assert_eq!(release_at(&http, &route).await, "two");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while versions_running(&server).contains(&1) {
        assert!(
            std::time::Instant::now() < deadline,
            "version 1 still runs: {:?}",
            versions_running(&server)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let err = failed(&server.cli(&["alias", "rm", "hello", "live"]));
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_weighted_alias_sends_its_share_of_requests_to_the_canary() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = sls_project(tmp.path());
    deploy_stage(&server, &dir, "dev");
    set_release(&dir, "two");
    deploy_stage(&server, &dir, "dev");
    let out = ok(&server.cli(&[
        "alias",
        "set",
        "hello",
        "live",
        "--version",
        "1",
        "--canary",
        "2",
        "--weight",
        "0.3",
    ]));
    assert!(out.contains("version 2 (30%)"), "{out}");

    let http = client();
    let route = format!("{}/dev/hello", server.gateway);
    let mut canary = 0;
    for _ in 0..200 {
        if release_at(&http, &route).await == "two" {
            canary += 1;
        }
    }
    // Expected 60 of 200 (sd ≈ 6.5): a band of about ±4 sd.
    assert!(
        (34..=86).contains(&canary),
        "{canary} of 200 went to the canary"
    );

    // Both versions ran side by side, each on instances of its own.
    let ls: Value =
        serde_json::from_str(&ok(&server.cli(&["ls", "--output", "json"]))).expect("json");
    let hello = ls
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["name"] == "shop-dev-hello")
        .expect("hello listed");
    let mut versions: Vec<u64> = hello["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter_map(|i| i["version"].as_u64())
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions, [1, 2], "{hello}");
}
