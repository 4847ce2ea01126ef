//! API Gateway's route policies on a real `rouse serve`: CORS checked by
//! headless Chromium making cross-origin `fetch` calls from a page served
//! by another server, plus the exact preflight answers over plain HTTP.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use common::*;

/// A process killed when the test ends, pass or fail.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 page_server.py DIR`: serves `dir` and returns its port.
fn serve_pages(dir: &Path) -> (Guard, u16) {
    let mut child = Command::new("python3")
        .arg(fixture("api-gateway/page_server.py"))
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the page server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read port");
    let port = line.trim().parse().expect("port");
    (Guard(child), port)
}

/// The page's DOM after its scripts ran, as headless Chromium renders it.
fn browser_dom(url: &str, profile: &Path) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            // Virtual time waits while fetches are in flight, so the DOM
            // is dumped after they settled.
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium (apt-get install chromium)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A serverless.yml project: an HTTP API route and a REST route, each with
/// CORS allowing only `allowed_origin`.
fn cors_project(parent: &Path, allowed_origin: &str) -> PathBuf {
    let dir = parent.join("corsapp");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(fixture("api-gateway/handler.py"), dir.join("handler.py")).expect("copy");
    let manifest = format!(
        "service: corsapp
provider:
  name: aws
  runtime: python3.12
  httpApi:
    cors:
      allowedOrigins: ['{allowed_origin}']
      allowedHeaders: [content-type, x-custom]
      exposedResponseHeaders: [x-trace]
      maxAge: 300
functions:
  v2:
    handler: handler.hello
    events:
      - httpApi: GET /v2/hello
  v1:
    handler: handler.hello
    events:
      - http:
          path: v1/hello
          method: get
          cors:
            origin: '{allowed_origin}'
            headers: [Content-Type, X-Custom]
"
    );
    std::fs::write(dir.join("serverless.yml"), manifest).expect("write manifest");
    dir
}

/// A page that fetches both routes with a custom header (so the browser
/// sends a preflight first) and writes what it got into the DOM.
fn write_page(dir: &Path, api: &str) {
    let page = format!(
        r#"<!doctype html><html><body>
<pre id="v2">pending</pre><pre id="v1">pending</pre>
<script>
async function call(id, url) {{
  try {{
    const r = await fetch(url, {{ headers: {{ "X-Custom": "from-" + id }} }});
    const body = await r.json();
    document.getElementById(id).textContent = "OK " + r.status + " " + body.custom;
  }} catch (e) {{
    document.getElementById(id).textContent = "BLOCKED " + e.name;
  }}
}}
call("v2", "{api}/dev/v2/hello");
call("v1", "{api}/dev/v1/hello");
</script></body></html>"#
    );
    std::fs::write(dir.join("index.html"), page).expect("write page");
}

/// The text of `<pre id="ID">` in a dumped DOM.
fn element(dom: &str, id: &str) -> String {
    let open = format!("<pre id=\"{id}\">");
    let start = dom
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in {dom}"))
        + open.len();
    let end = start + dom[start..].find("</pre>").expect("closing tag");
    dom[start..end].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_cross_origin_fetch_follows_the_cors_policy() {
    let tmp = open_tempdir();
    let pages = tmp.path().join("pages");
    std::fs::create_dir_all(&pages).expect("mkdir");
    let (_page_server, port) = serve_pages(&pages);
    // One page server, two origins: 127.0.0.1 is allowed, localhost is not.
    let allowed = format!("http://127.0.0.1:{port}");
    let other = format!("http://localhost:{port}");

    let server = Server::start(&tmp.path().join("data"));
    let project = cors_project(tmp.path(), &allowed);
    let out = server.cli(&["deploy", project.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "deploy failed: {stderr}");
    assert!(
        !stderr.contains("not supported"),
        "CORS no longer warns: {stderr}"
    );
    write_page(&pages, &server.gateway);

    let dom = browser_dom(
        &format!("{allowed}/index.html"),
        &tmp.path().join("profile1"),
    );
    assert_eq!(element(&dom, "v2"), "OK 200 from-v2", "{dom}");
    assert_eq!(element(&dom, "v1"), "OK 200 from-v1", "{dom}");

    let dom = browser_dom(&format!("{other}/index.html"), &tmp.path().join("profile2"));
    assert_eq!(element(&dom, "v2"), "BLOCKED TypeError", "{dom}");
    assert_eq!(element(&dom, "v1"), "BLOCKED TypeError", "{dom}");
}

#[tokio::test(flavor = "multi_thread")]
async fn preflights_and_responses_carry_api_gateways_headers() {
    let tmp = open_tempdir();
    let allowed = "https://app.example.com";
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&cors_project(tmp.path(), allowed));
    let http = client();
    let gw = &server.gateway;

    // HTTP API: the gateway answers the preflight itself, 204.
    let preflight = [
        ("origin", allowed),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "x-custom"),
    ];
    let resp = request(
        &http,
        "OPTIONS",
        &format!("{gw}/dev/v2/hello"),
        &preflight,
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    let h = |name: &str| {
        resp.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    };
    assert_eq!(h("access-control-allow-origin").as_deref(), Some(allowed));
    assert_eq!(
        h("access-control-allow-methods").as_deref(),
        Some("GET,OPTIONS")
    );
    assert_eq!(
        h("access-control-allow-headers").as_deref(),
        Some("content-type,x-custom")
    );
    assert_eq!(h("access-control-max-age").as_deref(), Some("300"));

    // A disallowed origin's preflight gets no CORS headers at all.
    let evil = [
        ("origin", "https://evil.example.net"),
        ("access-control-request-method", "GET"),
    ];
    let resp = request(
        &http,
        "OPTIONS",
        &format!("{gw}/dev/v2/hello"),
        &evil,
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 204);
    assert!(
        !resp
            .headers
            .keys()
            .any(|k| k.as_str().starts_with("access-control-")),
        "{:?}",
        resp.headers
    );

    // The actual response: origin, Vary and the exposed headers.
    let resp = request(
        &http,
        "GET",
        &format!("{gw}/dev/v2/hello"),
        &[("origin", allowed)],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.headers["access-control-allow-origin"], allowed);
    assert_eq!(resp.headers["access-control-expose-headers"], "x-trace");
    assert_eq!(resp.headers["vary"], "Origin");

    // REST: OPTIONS on the path is the framework's mock, 200, for any OPTIONS.
    let resp = request(
        &http,
        "OPTIONS",
        &format!("{gw}/dev/v1/hello"),
        &[],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.headers["access-control-allow-methods"], "GET,OPTIONS");
    assert_eq!(
        resp.headers["access-control-allow-headers"],
        "Content-Type,X-Custom"
    );
    let resp = request(
        &http,
        "GET",
        &format!("{gw}/dev/v1/hello"),
        &[("origin", allowed)],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.headers["access-control-allow-origin"], allowed);

    // A path without CORS still has no OPTIONS answer.
    let resp = request(
        &http,
        "OPTIONS",
        &format!("{gw}/dev/nothing"),
        &preflight,
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 404);
}
