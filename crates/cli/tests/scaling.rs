//! Scaling controls end to end: throttling past `maxInstances`, the
//! scale-out token bucket, the node's `--max-instances` and
//! `--memory-budget`, `minInstances` kept warm across idle timeouts,
//! restarts and redeploys, and `rouse ls` paging. Real `rouse serve`, real
//! instances, real HTTP.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A project with web functions running the fixture app (each routed at
/// `/<name>/{proxy+}`) and lambda functions running `lambda_faults.py`;
/// `functions` is the YAML of the `functions:` mapping's entries, with
/// `WEB` and `LAMBDA` standing for those two function bodies.
fn scaling_project(parent: &Path, service: &str, functions: &str) -> PathBuf {
    let manifest = format!("service: {service}\nfunctions:\n{functions}")
        .replace(
            "WEB",
            "web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    memorySize: 128",
        )
        .replace(
            "LAMBDA",
            "runtime: python3.12\n    handler: faults.handler\n    memorySize: 128",
        );
    let faults = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lambda_faults.py"),
    )
    .expect("fixture");
    project(
        parent,
        service,
        &manifest,
        &[("app.py", &fixture_app()), ("faults.py", &faults)],
    )
}

fn route(name: &str) -> String {
    format!("    events:\n      - http: {{ path: \"/{name}/{{proxy+}}\", method: any }}\n")
}

async fn invoke(http: &HttpClient, server: &Server, function: &str, payload: Value) -> Response {
    request(
        http,
        "POST",
        &format!(
            "{}/2015-03-31/functions/{function}/invocations",
            server.gateway
        ),
        &[],
        payload.to_string(),
    )
    .await
}

/// A request that keeps one slot busy for `secs`, running in the background.
fn hold_web(server: &Server, path: &str, secs: f64) -> tokio::task::JoinHandle<Response> {
    let url = format!("{}{path}/sleep?s={secs}", server.gateway);
    tokio::spawn(async move { get(&client(), &url).await })
}

fn hold_lambda(server: &Server, function: &str, secs: f64) -> tokio::task::JoinHandle<Response> {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        server.gateway
    );
    let payload = json!({ "action": "sleep", "seconds": secs }).to_string();
    tokio::spawn(async move { request(&client(), "POST", &url, &[], payload).await })
}

/// Asserts an HTTP route's throttle answer: 429 with a whole-seconds
/// `Retry-After` of at least `min_retry`, and returns that value.
fn assert_http_throttled(resp: &Response, min_retry: u64) -> u64 {
    assert_eq!(resp.status, 429, "{}", resp.text());
    let retry: u64 = resp
        .headers
        .get("retry-after")
        .expect("Retry-After on a 429")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry >= min_retry, "Retry-After {retry} < {min_retry}");
    retry
}

/// Asserts the Invoke API's throttle answer with its `Reason`.
fn assert_invoke_throttled(resp: &Response, reason: &str) {
    assert_eq!(resp.status, 429, "{}", resp.text());
    assert_eq!(
        resp.headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some("TooManyRequestsException")
    );
    assert!(resp.headers.contains_key("retry-after"));
    let body = resp.json();
    assert_eq!(body["Reason"], reason, "{body}");
    assert_eq!(body["__type"], "TooManyRequestsException", "{body}");
}

async fn admin_get(server: &Server, path: &str) -> Response {
    request(
        &client(),
        "GET",
        &format!("{}{path}", server.admin),
        &[("authorization", &format!("Bearer {TOKEN}"))],
        "",
    )
    .await
}

/// Pids of the instances of `function` that take requests (starting or
/// ready), as the admin API lists them.
async fn live_pids(server: &Server, function: &str) -> Vec<u64> {
    let doc = admin_get(server, &format!("/v1/functions/{function}"))
        .await
        .json();
    let mut pids: Vec<u64> = doc["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["state"] != "draining")
        .filter_map(|i| i["pid"].as_u64())
        .filter(|&pid| pid != 0)
        .collect();
    pids.sort_unstable();
    pids
}

/// Waits until `function` has `count` live instances; false after 20 s.
async fn wait_live(server: &Server, function: &str, count: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if live_pids(server, function).await.len() == count {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_instances_requests_get_429_with_retry_after_instead_of_hanging() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let scaling = "    concurrency: 1\n    scaling: { maxInstances: 1, queueTimeout: 0.3 }\n";
    let functions = format!(
        "  web:\n    WEB\n{scaling}{}  fn:\n    LAMBDA\n{scaling}",
        route("web")
    );
    server.deploy(&scaling_project(tmp.path(), "cap", &functions));
    let http = client();

    let busy_web = hold_web(&server, "/web", 3.0);
    let busy_fn = hold_lambda(&server, "cap-dev-fn", 3.0);
    // Both holders have their one instance (cold starts included).
    assert!(wait_live(&server, "cap-dev-web", 1).await);
    assert!(wait_live(&server, "cap-dev-fn", 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let asked = Instant::now();
    let web = get(&http, &format!("{}/web/x", server.gateway)).await;
    assert_http_throttled(&web, 1);
    let lambda = invoke(&http, &server, "cap-dev-fn", json!({})).await;
    assert_invoke_throttled(&lambda, "ReservedFunctionConcurrentInvocationLimitExceeded");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "throttled after queueTimeout, not after the busy request: {:?}",
        asked.elapsed()
    );

    assert_eq!(busy_web.await.expect("holder").status, 200);
    assert_eq!(busy_fn.await.expect("holder").status, 200);
    // The slot is free again: the next request is served.
    assert_eq!(
        get(&http, &format!("{}/web/x", server.gateway))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_burst_bucket_throttles_starts_and_refills() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    // A burst of 2 (web) or 1 (lambda) starts, then one every 3 seconds.
    let functions = format!(
        "  web:\n    WEB\n    concurrency: 1\n    scaling: {{ maxInstances: 10, burst: 2, burstRefillPerMinute: 20, queueTimeout: 0.3 }}\n{}  fn:\n    LAMBDA\n    scaling: {{ maxInstances: 10, burst: 1, burstRefillPerMinute: 20, queueTimeout: 0.3 }}\n",
        route("web")
    );
    server.deploy(&scaling_project(tmp.path(), "rate", &functions));
    let http = client();

    let holders = [
        hold_web(&server, "/web", 10.0),
        hold_web(&server, "/web", 10.0),
    ];
    let busy_fn = hold_lambda(&server, "rate-dev-fn", 10.0);
    assert!(wait_live(&server, "rate-dev-web", 2).await);
    assert!(wait_live(&server, "rate-dev-fn", 1).await);
    // The tokens went on those starts: another concurrent request may not
    // start an instance until the bucket refills.
    let web = get(&http, &format!("{}/web/x", server.gateway)).await;
    assert_http_throttled(&web, 1);
    let lambda = invoke(&http, &server, "rate-dev-fn", json!({})).await;
    assert_invoke_throttled(&lambda, "FunctionInvocationRateLimitExceeded");

    // Three seconds later a token is back: one more instance starts and
    // serves while the others are still busy.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let refilled = invoke(&http, &server, "rate-dev-fn", json!({})).await;
    assert_eq!(refilled.status, 200, "{}", refilled.text());
    assert_eq!(live_pids(&server, "rate-dev-fn").await.len(), 2);
    let web = get(&http, &format!("{}/web/x", server.gateway)).await;
    assert_eq!(web.status, 200, "{}", web.text());
    assert_eq!(live_pids(&server, "rate-dev-web").await.len(), 3);

    for holder in holders {
        assert_eq!(holder.await.expect("holder").status, 200);
    }
    assert_eq!(busy_fn.await.expect("holder").status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_instance_cap_spans_functions_and_idle_ones_make_room() {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--max-instances", "2"]);
    let scaling = "    concurrency: 1\n    scaling: { maxInstances: 5, queueTimeout: 0.3, idleTimeout: 60 }\n";
    let functions = format!(
        "  web:\n    WEB\n{scaling}{}  fn:\n    LAMBDA\n{scaling}  other:\n    WEB\n    scaling: {{ queueTimeout: 10, idleTimeout: 60 }}\n{}",
        route("web"),
        route("other")
    );
    server.deploy(&scaling_project(tmp.path(), "node", &functions));
    let http = client();

    let busy_web = hold_web(&server, "/web", 4.0);
    let busy_fn = hold_lambda(&server, "node-dev-fn", 4.0);
    assert!(wait_live(&server, "node-dev-web", 1).await);
    assert!(wait_live(&server, "node-dev-fn", 1).await);
    // Each function is far from its own cap, but the node is full.
    let web = get(&http, &format!("{}/web/x", server.gateway)).await;
    assert_http_throttled(&web, 1);
    let lambda = invoke(&http, &server, "node-dev-fn", json!({})).await;
    assert_invoke_throttled(&lambda, "ConcurrentInvocationLimitExceeded");

    // `other` queues (queueTimeout 10) until a busy instance finishes and
    // its now idle instance is stopped early to make room.
    let asked = Instant::now();
    let other = get(&http, &format!("{}/other/x", server.gateway)).await;
    assert_eq!(other.status, 200, "{}", other.text());
    assert!(
        asked.elapsed() > Duration::from_secs(1),
        "served only once room was made: {:?}",
        asked.elapsed()
    );
    assert_eq!(busy_web.await.expect("holder").status, 200);
    assert_eq!(busy_fn.await.expect("holder").status, 200);
    let stopped_early = server.logs("node-dev-web") + &server.logs("node-dev-fn");
    assert!(
        stopped_early.contains("stopped early to make room on the node for node-dev-other"),
        "{stopped_early}"
    );
    let metrics = admin_get(&server, "/metrics").await.text();
    for line in [
        r#"rouse_throttles_total{function="node-dev-web",reason="node"} 1"#,
        r#"rouse_throttles_total{function="node-dev-fn",reason="node"} 1"#,
        r#"rouse_throttles_total{function="node-dev-web",reason="max_instances"} 0"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    let health = admin_get(&server, "/v1/health").await.json();
    assert!(health["instances"].as_u64().unwrap() <= 2, "{health}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_memory_budget_counts_memory_size_over_functions() {
    let tmp = open_tempdir();
    // Room for one 128 MB instance and a half.
    let server = Server::start_with(&tmp.path().join("data"), &["--memory-budget", "200"]);
    let scaling = "    concurrency: 1\n    scaling: { queueTimeout: 1 }\n";
    let functions = format!(
        "  a:\n    WEB\n{scaling}{}  b:\n    WEB\n{scaling}{}",
        route("a"),
        route("b")
    );
    server.deploy(&scaling_project(tmp.path(), "mem", &functions));
    let http = client();
    let busy = hold_web(&server, "/a", 3.0);
    assert!(wait_live(&server, "mem-dev-a", 1).await);
    let b = get(&http, &format!("{}/b/x", server.gateway)).await;
    assert_http_throttled(&b, 1);
    assert_eq!(busy.await.expect("holder").status, 200);
    // `a` is idle now: `b` gets its room.
    let b = get(&http, &format!("{}/b/x", server.gateway)).await;
    assert_eq!(b.status, 200, "{}", b.text());
}

/// Service `pool` with web function `w` and the scaling given.
fn warm_project(parent: &Path, min: u32, max: u32) -> PathBuf {
    let functions = format!(
        "  w:\n    WEB\n    scaling: {{ minInstances: {min}, maxInstances: {max}, idleTimeout: 0.3 }}\n{}",
        route("warm")
    );
    scaling_project(parent, "pool", &functions)
}

#[tokio::test(flavor = "multi_thread")]
async fn min_instances_start_at_deploy_stay_warm_and_come_back_after_a_restart() {
    let tmp = open_tempdir();
    let mut server = Server::start(&tmp.path().join("data"));
    server.deploy(&warm_project(tmp.path(), 2, 4));
    // Up right after the deploy, before any request.
    let warm = live_pids(&server, "pool-dev-w").await;
    assert_eq!(warm.len(), 2, "{warm:?}");

    // Several idle timeouts later, the same two processes (the pool's
    // paused-clock tests cover many more).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(live_pids(&server, "pool-dev-w").await, warm);
    for pid in &warm {
        assert!(process_alive(*pid as u32));
    }

    // A crashed one is replaced.
    signal(warm[0] as u32, nix::sys::signal::Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = live_pids(&server, "pool-dev-w").await;
        if now.len() == 2 && !now.contains(&warm[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "not replaced: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // After a restart of rouse they are started again, with no request.
    server.restart();
    assert!(
        wait_live(&server, "pool-dev-w", 2).await,
        "minInstances not started at serve start"
    );

    // Raised by a redeploy: three.
    server.deploy(&warm_project(tmp.path(), 3, 4));
    assert!(wait_live(&server, "pool-dev-w", 3).await);
    // Lowered: the surplus drains away.
    server.deploy(&warm_project(tmp.path(), 1, 1));
    assert!(wait_live(&server, "pool-dev-w", 1).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(live_pids(&server, "pool-dev-w").await.len(), 1);
    let http = client();
    assert_eq!(
        get(&http, &format!("{}/warm/x", server.gateway))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ls_pages_through_hundreds_of_functions() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let mut functions = String::new();
    for i in 0..250 {
        functions.push_str(&format!("  f{i:03}:\n    web: {{ command: [\"true\"] }}\n"));
    }
    server.deploy(&project(
        tmp.path(),
        "many",
        &format!("service: many\nfunctions:\n{functions}"),
        &[],
    ));

    let listed = |args: &[&str]| -> Vec<String> {
        let out = server.cli(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
        doc.as_array()
            .expect("a list")
            .iter()
            .map(|f| f["name"].as_str().expect("name").to_string())
            .collect()
    };
    let all = listed(&["ls", "--output", "json"]);
    let expected: Vec<String> = (0..250).map(|i| format!("many-dev-f{i:03}")).collect();
    assert_eq!(all, expected);
    assert_eq!(
        listed(&["ls", "--output", "json", "--limit", "120"]),
        expected[..120]
    );
    let text = server.cli(&["ls", "--limit", "3"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.lines().count(),
        4,
        "a header and three functions: {text}"
    );

    // The API itself: pages with a cursor, and bad limits refused.
    let first = admin_get(&server, "/v1/functions?limit=100").await.json();
    assert_eq!(first["functions"].as_array().unwrap().len(), 100);
    assert_eq!(first["next"], "many-dev-f099");
    let last = admin_get(&server, "/v1/functions?limit=100&after=many-dev-f199")
        .await
        .json();
    assert_eq!(last["functions"].as_array().unwrap().len(), 50);
    assert_eq!(last["functions"][0]["name"], "many-dev-f200");
    assert!(last.get("next").is_none(), "{last}");
    for bad in ["0", "abc", "100000"] {
        let resp = admin_get(&server, &format!("/v1/functions?limit={bad}")).await;
        assert_eq!(resp.status, 400, "{}", resp.text());
        assert!(resp.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`limit`"));
    }
    let bad = server.cli(&["ls", "--limit", "0"]);
    assert!(!bad.status.success());
}

#[test]
fn node_limits_must_be_positive() {
    for (flag, value) in [
        ("--max-instances", "0"),
        ("--memory-budget", "0"),
        ("--memory-budget", "lots"),
    ] {
        let out = std::process::Command::new(rouse_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                flag,
                value,
            ])
            .output()
            .expect("run rouse");
        assert!(!out.status.success(), "{flag} {value} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}
