//! The admin API and the CLI as a user meets them: auth, errors, logs,
//! invoke, rm, redeploys, and the lifecycle rules that span requests.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn app_project(parent: &std::path::Path, name: &str, extra: &str) -> std::path::PathBuf {
    let manifest = format!(
        "service: {name}\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n{extra}    events:\n      - http: {{ path: \"/{{proxy+}}\", method: any }}\n"
    );
    project(parent, name, &manifest, &[("app.py", &fixture_app())])
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_needs_the_token_and_answers_errors_in_json() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let http = client();
    let url = format!("{}/v1/functions", server.admin);

    let none = get(&http, &url).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"]["code"], "Unauthorized");
    let wrong = request(&http, "GET", &url, &[("authorization", "Bearer nope")], "").await;
    assert_eq!(wrong.status, 401);
    let auth = format!("Bearer {TOKEN}");
    let ok = request(&http, "GET", &url, &[("authorization", &auth)], "").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), serde_json::json!({ "functions": [] }));

    let missing = request(
        &http,
        "GET",
        &format!("{url}/nope"),
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "NotFound");
    assert!(missing.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));

    let garbage = request(
        &http,
        "POST",
        &format!("{}/v1/deployments", server.admin),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        "{not json",
    )
    .await;
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.json()["error"]["code"], "BadRequest");

    // The CLI explains a wrong token instead of failing obscurely.
    let out = Command::new(rouse_bin())
        .args(["ls"])
        .env("ROUSE_ENDPOINT", &server.admin)
        .env("ROUSE_ADMIN_TOKEN", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_file_is_created_private_and_read_by_the_cli() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = open_tempdir();
    let data = tmp.path().join("data");
    let mut child = Command::new(rouse_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("ROUSE_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_, admin) = banner_urls(&mut child);
    let token_file = data.join("admin-token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = Command::new(rouse_bin())
        .args(["ls", "--data-dir"])
        .arg(&data)
        .env("ROUSE_ENDPOINT", &admin)
        .env_remove("ROUSE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("No functions deployed"));
    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn unsafe_archives_are_rejected_and_nothing_is_written() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let evil_target = tmp.path().join("evil");
    // A tarball whose entry climbs out of the extraction dir.
    let mut raw = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut raw, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        let name = b"../../../evil";
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_size(4);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, &b"pwnd"[..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let http = client();
    let resp = request(
        &http,
        "POST",
        &format!("{}/v1/artifacts", server.admin),
        &[("authorization", &format!("Bearer {TOKEN}"))],
        raw,
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.json()["error"]["code"], "BadArchive");
    assert!(resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("evil"));
    assert!(!evil_target.exists());
    let artifacts = std::fs::read_dir(server.data_dir.join("artifacts"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.gz"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(artifacts, 0, "a rejected upload is not stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_manifest_names_file_line_and_column() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = project(
        tmp.path(),
        "typo",
        "service: typo\nfunctions:\n  app:\n    web:\n      comand: [\"python3\", \"app.py\"]\n",
        &[("app.py", "")],
    );
    let out = server.cli(&["deploy", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rouse.yaml:5:7"), "{stderr}");
    assert!(stderr.contains("did you mean `command`"), "{stderr}");
    let ls = String::from_utf8_lossy(&server.cli(&["ls"]).stdout).to_string();
    assert!(
        ls.contains("No functions deployed"),
        "nothing was deployed: {ls}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_tail_follows_new_lines_and_invoke_calls_the_function() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&app_project(tmp.path(), "tail", ""));

    let mut tail = Command::new(rouse_bin())
        .args(["logs", "app", "--tail", "-n", "0"])
        .env("ROUSE_ENDPOINT", &server.admin)
        .env("ROUSE_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let out = server.cli(&[
        "invoke",
        "app",
        "--path",
        "/from-cli?q=1",
        "--method",
        "post",
        "--data",
        "hi",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["path"], "/from-cli?q=1");
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["body_len"], 2);
    assert!(
        doc["headers"].get("authorization").is_none(),
        "the admin token is not passed on"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let done = line.contains("handled POST /from-cli?q=1");
            seen.push(line);
            if done {
                break;
            }
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(
        seen.iter().any(|l| l.contains("cold start")),
        "platform events are tailed: {seen:?}"
    );
    let handled = seen
        .iter()
        .find(|l| l.contains("handled POST /from-cli?q=1"));
    let handled = handled.unwrap_or_else(|| panic!("instance output is tailed: {seen:?}"));
    // `2026-11-23T23:59:00.123Z [instance-id] message`
    assert!(
        handled.starts_with("20") && handled.contains("Z ["),
        "{handled}"
    );

    let missing = server.cli(&["invoke", "nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rm_stops_the_instance_and_removes_the_route() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&app_project(tmp.path(), "gone", ""));
    let http = client();
    let pid = answered_by(
        &server,
        &get(&http, &format!("{}/", server.gateway)).await.json(),
    );
    let out = server.cli(&["rm", "app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get(&http, &format!("{}/", server.gateway)).await.status,
        404
    );
    assert!(eventually(Duration::from_secs(5), || !process_alive(pid)).await);
    let again = server.cli(&["rm", "app"]);
    assert!(!again.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loop_backs_off_instead_of_spinning() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let manifest = "service: loop\nfunctions:\n  app:\n    web:\n      command: [\"sh\", \"-c\", \"echo boom; exit 1\"]\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n";
    server.deploy(&project(tmp.path(), "loop", manifest, &[]));
    let http = client();
    let started = Instant::now();
    let mut retry_after_seen = false;
    for _ in 0..20 {
        let resp = get(&http, &format!("{}/", server.gateway)).await;
        assert_eq!(resp.status, 502, "{}", resp.text());
        retry_after_seen |= resp.headers.contains_key("retry-after");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let starts = server.logs("loop-dev-app").matches("cold start").count();
    assert!(retry_after_seen, "back-off answers carry Retry-After");
    assert!(
        starts <= 6,
        "{starts} starts in {elapsed:?}: a crash loop must back off (0, 100, 200, 400 ms ...)"
    );
    assert!(
        server.logs("loop-dev-app").contains("boom"),
        "the app's output explains the failure"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redeploy_switches_versions_without_failed_requests() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = app_project(tmp.path(), "roll", "    environment: { GREETING: v1 }\n");
    server.deploy(&dir);
    let http = client();
    let old = get(&http, &format!("{}/", server.gateway)).await.json();
    assert_eq!(old["env"]["GREETING"], "v1");
    let old_pid = answered_by(&server, &old);

    let manifest = std::fs::read_to_string(dir.join("rouse.yaml"))
        .unwrap()
        .replace("v1", "v2");
    std::fs::write(dir.join("rouse.yaml"), manifest).unwrap();
    // Requests keep flowing while the deploy runs: none may fail.
    let traffic = tokio::spawn({
        let http = http.clone();
        let url = format!("{}/", server.gateway);
        async move {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                statuses.push(get(&http, &url).await.status);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            statuses
        }
    });
    let out = server.deploy(&dir);
    assert!(out.contains("version 2"), "{out}");
    // The deploy answers once version 2 is live: the next request sees it.
    let next = get(&http, &format!("{}/", server.gateway)).await;
    assert_eq!(next.json()["env"]["GREETING"], "v2");
    let statuses = traffic.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(old_pid)).await,
        "the old instance drains and stops"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn env_set_takes_effect_on_the_next_request_and_rollback_restores_it() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&app_project(
        tmp.path(),
        "envy",
        "    environment: { GREETING: one }\n",
    ));
    let http = client();
    let greeting = |r: Response| r.json()["env"]["GREETING"].as_str().map(str::to_string);
    assert_eq!(
        greeting(get(&http, &format!("{}/", server.gateway)).await).as_deref(),
        Some("one")
    );

    let out = server.cli(&["env", "set", "app", "GREETING=two", "EXTRA=x=y"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        greeting(get(&http, &format!("{}/", server.gateway)).await).as_deref(),
        Some("two")
    );
    let got = server.cli(&["env", "get", "app", "EXTRA"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "x=y");
    let ls = String::from_utf8_lossy(&server.cli(&["env", "ls", "app"]).stdout).to_string();
    assert!(
        ls.contains("GREETING=two") && ls.contains("EXTRA=x=y"),
        "{ls}"
    );

    let out = server.cli(&["env", "unset", "app", "GREETING"]);
    assert!(out.status.success());
    assert_eq!(
        greeting(get(&http, &format!("{}/", server.gateway)).await),
        None
    );
    let missing = server.cli(&["env", "get", "app", "GREETING"]);
    assert_eq!(missing.status.code(), Some(3));

    // Versions: 1 deploy, 2 set, 3 unset. Rolling back to 2 restores "two".
    let out = server.cli(&["rollback", "app", "--to", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        greeting(get(&http, &format!("{}/", server.gateway)).await).as_deref(),
        Some("two")
    );
    let out = server.cli(&["rollback", "app"]);
    assert!(out.status.success());
    assert_eq!(
        greeting(get(&http, &format!("{}/", server.gateway)).await),
        None,
        "back to version 3"
    );
    let versions = server.cli(&["versions", "app", "--output", "json"]);
    let versions: serde_json::Value = serde_json::from_slice(&versions.stdout).unwrap();
    let numbers: Vec<u64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
    assert_eq!(versions[4]["current"], true);
    let bad = server.cli(&["rollback", "app", "--to", "42"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no version 42"));
}
