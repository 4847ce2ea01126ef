//! The web dashboard against a real `rouse serve`: the session login, the
//! JSON the pages read, CSRF on changes, the SSE log tail; then a real
//! headless chromium (Debian's, driven by playwright-core; both installed
//! by `test.sh`) through the pages, with screenshots in
//! `target/dashboard-screenshots/`.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;

fn python_web() -> std::path::PathBuf {
    repo_root().join("examples/python-web")
}

/// Logs in with `token`; the session cookie (`name=value`) if it worked.
async fn login(http: &HttpClient, admin: &str, token: &str) -> (Response, Option<String>) {
    let resp = request(
        http,
        "POST",
        &format!("{admin}/ui/login"),
        &[("content-type", "application/x-www-form-urlencoded")],
        format!("token={token}"),
    )
    .await;
    let cookie = resp
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (resp, cookie)
}

#[tokio::test(flavor = "multi_thread")]
async fn session_cookie_csrf_and_live_tail() {
    let dir = open_tempdir();
    let server = Server::start(&dir.path().join("data"));
    server.deploy(&python_web());
    let http = client();
    assert_eq!(
        get(&http, &format!("{}/hi", server.gateway)).await.status,
        200
    );
    let admin = &server.admin;

    // Nothing without a session: data, the tail, and pages (sent to the form).
    let none = get(&http, &format!("{admin}/v1/dashboard/functions")).await;
    assert_eq!(none.status, 401);
    let tail_url = format!("{admin}/v1/dashboard/functions/hello-dev-web/tail");
    assert_eq!(get(&http, &tail_url).await.status, 401);
    let page = get(&http, &format!("{admin}/ui/")).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.headers["location"], "/ui/login");
    let stale = [("cookie", "rouse_session=0123")];
    let stale = request(
        &http,
        "GET",
        &format!("{admin}/v1/dashboard/functions"),
        &stale,
        Bytes::new(),
    )
    .await;
    assert_eq!(stale.status, 401);

    // A wrong token: back to the form, no cookie.
    let (wrong, cookie) = login(&http, admin, "not-the-token").await;
    assert_eq!((wrong.status, cookie), (303, None));
    assert_eq!(wrong.headers["location"], "/ui/login#failed");

    let (ok, cookie) = login(&http, admin, TOKEN).await;
    assert_eq!(ok.status, 303);
    let set_cookie = ok.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = cookie.expect("session cookie");
    let with_cookie = [("cookie", cookie.as_str())];

    let table = request(
        &http,
        "GET",
        &format!("{admin}/v1/dashboard/functions?sort=requests&order=desc"),
        &with_cookie,
        Bytes::new(),
    )
    .await;
    assert_eq!(table.status, 200, "{}", table.text());
    let table = table.json();
    assert_eq!(table["total"], 1);
    let row = &table["functions"][0];
    assert_eq!(row["name"], "hello-dev-web");
    assert_eq!(row["kind"], "web");
    assert_eq!(row["invocations"], 1);
    assert_eq!(row["coldStarts"], 1);
    assert_eq!(row["routes"][0]["path"], "/{proxy+}");
    let bad = request(
        &http,
        "GET",
        &format!("{admin}/v1/dashboard/functions?sort=size"),
        &with_cookie,
        Bytes::new(),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text());

    let one = request(
        &http,
        "GET",
        &format!("{admin}/v1/dashboard/functions/hello-dev-web"),
        &with_cookie,
        Bytes::new(),
    )
    .await;
    let one = one.json();
    assert_eq!(one["history"].as_array().map(Vec::len), Some(360));
    let total: u64 = one["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["invocations"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 1);
    assert_eq!(one["instances"][0]["requests"], 1);

    // A change with the cookie but without the CSRF header is refused, and
    // leaves the function as it was; with it, it goes through.
    let rollback = format!("{admin}/v1/functions/hello-dev-web/env");
    let body = r#"{"set": {"COLOR": "blue"}}"#;
    let json = ("content-type", "application/json");
    let refused = request(&http, "PATCH", &rollback, &[with_cookie[0], json], body).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let versions = server.cli_json(&["versions", "hello-dev-web", "--output", "json"]);
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");
    let session = request(
        &http,
        "GET",
        &format!("{admin}/ui/session"),
        &with_cookie,
        Bytes::new(),
    )
    .await
    .json();
    let csrf = session["csrf"].as_str().expect("csrf").to_string();
    let wrong_csrf = request(
        &http,
        "PATCH",
        &rollback,
        &[with_cookie[0], json, ("x-rouse-csrf", "nope")],
        body,
    )
    .await;
    assert_eq!(wrong_csrf.status, 403);
    let changed = request(
        &http,
        "PATCH",
        &rollback,
        &[with_cookie[0], json, ("x-rouse-csrf", &csrf)],
        body,
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text());

    // The tail: a request through the gateway arrives as an SSE event.
    let req = http::Request::get(&tail_url)
        .header("cookie", &cookie)
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    let resp = http.request(req).await.expect("tail");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(&http, &format!("{}/sse-marker", server.gateway))
            .await
            .status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = String::new();
    while !seen.contains("data: ") || !seen.contains("/sse-marker") {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, body.frame()).await;
        let Ok(Some(Ok(frame))) = frame else {
            panic!("the tail ended or timed out before the request's line: {seen}");
        };
        if let Some(data) = frame.data_ref() {
            seen.push_str(&String::from_utf8_lossy(data));
        }
    }

    // Logging out ends the session.
    let out = request(
        &http,
        "POST",
        &format!("{admin}/ui/logout"),
        &[with_cookie[0], ("x-rouse-csrf", &csrf)],
        Bytes::new(),
    )
    .await;
    assert_eq!(out.status, 204);
    let after = request(
        &http,
        "GET",
        &format!("{admin}/v1/dashboard/functions"),
        &with_cookie,
        Bytes::new(),
    )
    .await;
    assert_eq!(after.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_drives_the_dashboard() {
    let dir = open_tempdir();
    let server = Server::start(&dir.path().join("data"));
    server.deploy(&python_web());
    // A second version, so the page has one to roll back to.
    let out = server.cli(&["env", "set", "hello-dev-web", "COLOR=blue"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let http = client();
    assert_eq!(
        get(&http, &format!("{}/hi", server.gateway)).await.status,
        200
    );
    let shots = repo_root().join("target/dashboard-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let browser_dir = repo_root().join("crates/cli/tests/browser");
    let gateway = server.gateway.clone();
    let admin = server.admin.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .current_dir(&browser_dir)
            .arg("dashboard.mjs")
            .args([&admin, &gateway, TOKEN, "hello-dev-web", "/hi"])
            .arg(&shots)
            .output()
            .expect("run node (test.sh installs playwright-core and chromium)")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The rollback the page made is a new version the CLI sees.
    let versions = server.cli_json(&["versions", "hello-dev-web", "--output", "json"]);
    assert_eq!(versions.as_array().map(Vec::len), Some(3), "{versions}");
}
