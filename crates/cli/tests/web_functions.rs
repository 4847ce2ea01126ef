//! Web functions end to end: a real `rouse serve`, projects deployed with the
//! real CLI, real app processes, real HTTP.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

fn fixture_project(
    parent: &std::path::Path,
    name: &str,
    function_yaml: &str,
) -> std::path::PathBuf {
    let manifest = format!(
        "service: {name}\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n{function_yaml}    events:\n      - http: {{ path: \"/{{proxy+}}\", method: any }}\n"
    );
    project(parent, name, &manifest, &[("app.py", &fixture_app())])
}

#[tokio::test(flavor = "multi_thread")]
async fn cold_start_then_warm_reuse_of_the_same_process() {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--cold-start-header"]);
    let dir = fixture_project(tmp.path(), "warm", "");
    let out = server.deploy(&dir);
    assert!(out.contains("warm-dev-app"), "{out}");
    assert!(
        out.contains(&format!("{}/{{proxy+}}", server.gateway)),
        "deploy prints the URL: {out}"
    );

    let http = client();
    let first = get(&http, &format!("{}/hello?x=1", server.gateway)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.headers["x-rouse-cold-start"], "true");
    let doc = first.json();
    assert_eq!(doc["path"], "/hello?x=1");
    let pid = answered_by(&server, &doc);
    for _ in 0..5 {
        let again = get(&http, &format!("{}/again", server.gateway)).await;
        assert_eq!(again.status, 200);
        assert!(again.headers.get("x-rouse-cold-start").is_none());
        assert_eq!(
            answered_by(&server, &again.json()),
            pid,
            "warm requests reuse the instance"
        );
    }
    let logs = server.logs("warm-dev-app");
    assert_eq!(logs.matches("cold start").count(), 1, "{logs}");
    assert!(
        logs.contains("handled GET /hello?x=1"),
        "instance output reaches the logs: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_requests_share_one_cold_start() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    // A slow start makes sure all 50 arrive while the instance is starting.
    let dir = fixture_project(
        tmp.path(),
        "burst",
        "    concurrency: 64\n    environment: { START_DELAY: \"0.5\" }\n",
    );
    server.deploy(&dir);
    let http = client();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let http = http.clone();
        let url = format!("{}/r{i}", server.gateway);
        tasks.push(tokio::spawn(async move { get(&http, &url).await }));
    }
    let mut pids = HashSet::new();
    for task in tasks {
        let resp = task.await.unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        pids.insert(answered_by(&server, &resp.json()));
    }
    assert_eq!(
        pids.len(),
        1,
        "exactly one instance served the burst: {pids:?}"
    );
    let logs = server.logs("burst-dev-app");
    assert_eq!(logs.matches("cold start").count(), 1, "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_functions_and_routes() {
    let tmp = open_tempdir();
    let mut server = Server::start(&tmp.path().join("data"));
    let dir = fixture_project(tmp.path(), "keep", "");
    server.deploy(&dir);
    let http = client();
    assert_eq!(
        get(&http, &format!("{}/a", server.gateway)).await.status,
        200
    );
    server.restart();
    let resp = get(&http, &format!("{}/b", server.gateway)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let ls = String::from_utf8_lossy(&server.cli(&["ls"]).stdout).to_string();
    assert!(ls.contains("keep-dev-app"), "{ls}");
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_left_by_a_killed_server_are_stopped_on_the_next_start() {
    let tmp = open_tempdir();
    let mut server = Server::start(&tmp.path().join("data"));
    server.deploy(&fixture_project(tmp.path(), "orphan", ""));
    let http = client();
    let pid = answered_by(
        &server,
        &get(&http, &format!("{}/", server.gateway)).await.json(),
    );
    server.kill();
    // SIGKILL gives rouse no chance to stop its instances; the kernel
    // does (the parent-death signal), and the next start cleans up what
    // is left (pid files, cgroups).
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(pid)).await,
        "the orphan is stopped"
    );
    server.start_again();
    assert_eq!(
        get(&http, &format!("{}/", server.gateway)).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_gives_502_then_a_fresh_instance_serves() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = fixture_project(tmp.path(), "crash", "");
    server.deploy(&dir);
    let http = client();
    let pid = answered_by(
        &server,
        &get(&http, &format!("{}/", server.gateway)).await.json(),
    );
    let crashed = get(&http, &format!("{}/crash", server.gateway)).await;
    assert_eq!(crashed.status, 502, "{}", crashed.text());
    assert!(crashed.json()["message"].is_string());
    let after = get(&http, &format!("{}/", server.gateway)).await;
    assert_eq!(after.status, 200, "{}", after.text());
    assert_ne!(
        answered_by(&server, &after.json()),
        pid,
        "a new instance took over"
    );
    let logs = server.logs("crash-dev-app");
    assert!(logs.contains("crashed"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_requests_get_504_and_the_instance_is_replaced() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = fixture_project(tmp.path(), "slow", "    timeout: 1\n");
    server.deploy(&dir);
    let http = client();
    let pid = answered_by(
        &server,
        &get(&http, &format!("{}/", server.gateway)).await.json(),
    );
    let started = std::time::Instant::now();
    let slow = get(&http, &format!("{}/sleep?s=5", server.gateway)).await;
    assert_eq!(slow.status, 504, "{}", slow.text());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "504 after the 1 s timeout, not the app's 5 s"
    );
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(pid)).await,
        "timed-out instance is killed"
    );
    let next = get(&http, &format!("{}/", server.gateway)).await;
    assert_eq!(next.status, 200);
    assert_ne!(answered_by(&server, &next.json()), pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_never_reached_gives_502_with_the_last_output_in_the_log() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = fixture_project(
        tmp.path(),
        "stuck",
        "    environment: { NEVER_LISTEN: \"1\" }\n    scaling: { startTimeout: 1 }\n",
    );
    server.deploy(&dir);
    let http = client();
    let resp = get(&http, &format!("{}/", server.gateway)).await;
    assert_eq!(resp.status, 502, "{}", resp.text());
    let logs = server.logs("stuck-dev-app");
    assert!(logs.contains("not ready"), "{logs}");
    assert!(
        logs.contains("starting up but never listening"),
        "last output lines are logged: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stock_nginx_runs_unmodified_through_a_rewrite_rule() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let example = repo_root().join("examples/nginx-site");
    let original = std::fs::read_to_string(example.join("nginx.conf")).unwrap();
    server.deploy(&example);
    let http = client();
    let page = get(&http, &format!("{}/", server.gateway)).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text().contains("Served by stock nginx"),
        "{}",
        page.text()
    );
    assert_eq!(
        std::fs::read_to_string(example.join("nginx.conf")).unwrap(),
        original,
        "the project's nginx.conf is untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_example_answers_with_forwarding_headers() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&repo_root().join("examples/python-web"));
    let http = client();
    let resp = request(
        &http,
        "POST",
        &format!("{}/greet", server.gateway),
        &[
            ("connection", "keep-alive, x-drop-me"),
            ("x-drop-me", "secret"),
        ],
        "hello",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let doc = resp.json();
    assert_eq!(doc["message"], "Hello from rouse");
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["body"], "hello");
    assert_eq!(doc["forwarded_for"], "127.0.0.1");
    assert!(
        resp.headers.get("x-rouse-cold-start").is_none(),
        "the cold-start header is opt-in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_headers_are_not_forwarded_and_chunked_responses_stream() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&fixture_project(tmp.path(), "hops", ""));
    let http = client();
    let resp = request(
        &http,
        "GET",
        &format!("{}/h", server.gateway),
        &[
            ("connection", "x-drop-me"),
            ("x-drop-me", "1"),
            ("x-keep", "2"),
            ("host", "shop.example"),
        ],
        "",
    )
    .await;
    let headers = &resp.json()["headers"];
    assert!(headers.get("x-drop-me").is_none(), "{headers}");
    assert_eq!(headers["x-keep"], "2");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "shop.example");

    let stream = get(&http, &format!("{}/stream", server.gateway)).await;
    assert_eq!(stream.status, 200);
    assert_eq!(
        stream.text(),
        "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_bodies_get_413() {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--max-body-bytes", "1000"]);
    server.deploy(&fixture_project(tmp.path(), "big", ""));
    let http = client();
    let ok = request(
        &http,
        "POST",
        &format!("{}/u", server.gateway),
        &[],
        vec![b'a'; 1000],
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["body_len"], 1000);
    let big = request(
        &http,
        "POST",
        &format!("{}/u", server.gateway),
        &[],
        vec![b'a'; 1001],
    )
    .await;
    assert_eq!(big.status, 413, "{}", big.text());
    assert!(big.json()["message"].as_str().unwrap().contains("1000"));
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_oversize_bodies_get_413_too() {
    use http_body_util::BodyExt;
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--max-body-bytes", "1000"]);
    server.deploy(&fixture_project(tmp.path(), "bigchunk", ""));
    // A streamed body has no Content-Length: the limit applies while streaming.
    let chunks: Vec<Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>> = (0..4)
        .map(|_| {
            Ok(hyper::body::Frame::data(bytes::Bytes::from(vec![
                b'b';
                400
            ])))
        })
        .collect();
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(chunks));
    let http: hyper_util::client::legacy::Client<_, _> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let req = http::Request::post(format!("{}/u", server.gateway))
        .body(body)
        .unwrap();
    let resp = http.request(req).await.unwrap();
    assert_eq!(resp.status(), 413);
    let _ = resp.into_body().collect().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_get_a_json_404() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let http = client();
    let resp = get(&http, &format!("{}/nothing/here", server.gateway)).await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json(), serde_json::json!({"message": "Not Found"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_an_in_flight_request_then_exits_0() {
    let tmp = open_tempdir();
    let mut server = Server::start(&tmp.path().join("data"));
    server.deploy(&fixture_project(tmp.path(), "drain", ""));
    let http = client();
    let pid = answered_by(
        &server,
        &get(&http, &format!("{}/", server.gateway)).await.json(),
    );
    let url = format!("{}/sleep?s=1.5", server.gateway);
    let in_flight = tokio::spawn({
        let http = http.clone();
        async move { get(&http, &url).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let code = tokio::task::spawn_blocking(move || {
        let code = server.terminate();
        (code, server)
    });
    let resp = in_flight.await.unwrap();
    assert_eq!(
        resp.status,
        200,
        "the in-flight request finished: {}",
        resp.text()
    );
    let (code, _server) = code.await.unwrap();
    assert_eq!(code, Some(0));
    assert!(!process_alive(pid), "instances are stopped on shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_names_route_to_functions_with_a_domain() {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--domain", "fn.test"]);
    let manifest = "service: hosty\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n";
    server.deploy(&project(
        tmp.path(),
        "hosty",
        manifest,
        &[("app.py", &fixture_app())],
    ));
    let http = client();
    let resp = request(
        &http,
        "GET",
        &format!("{}/any/path", server.gateway),
        &[("host", "hosty-dev-app.fn.test")],
        "",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["path"], "/any/path");
    let other = request(
        &http,
        "GET",
        &format!("{}/any/path", server.gateway),
        &[("host", "nope.fn.test")],
        "",
    )
    .await;
    assert_eq!(other.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_server_uses_no_cpu() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        // utime + stime, in clock ticks (usually 10 ms).
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu(server.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu(server.pid()) - before;
    assert!(used <= 2, "idle rouse used {used} ticks of CPU in 2 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_requests_are_not_held_up_by_delayed_acks() {
    // Python's http.server sends headers and body separately. With Nagle on
    // the app's side and a delayed ACK on a reused upstream connection, each
    // such response used to wait about 40 ms for the body.
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&repo_root().join("examples/python-web"));
    let http = client();
    let url = format!("{}/warm", server.gateway);
    assert_eq!(get(&http, &url).await.status, 200);
    let mut took = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        assert_eq!(get(&http, &url).await.status, 200);
        took.push(started.elapsed());
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(
        median < Duration::from_millis(20),
        "median warm request {median:?}; all: {took:?}"
    );
}
