//! An instance reaches only itself, the gateway and the outside world: a
//! real `rouse serve` under `namespaces` and under `process` isolation, an
//! intruder lambda trying to reach a victim lambda's Runtime API and a
//! victim web instance's port, as an attacker on the same host would.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipping: isolation needs root");
    false
}

fn intruder_app() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/intruder.py"),
    )
    .expect("fixture")
}

const VICTIM_LAMBDA: &str = "def handler(event, context):\n    return {\"real\": True}\n";

const VICTIM_WEB: &str = "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\n\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200)\n        self.send_header('Content-Length', '2')\n        self.end_headers()\n        self.wfile.write(b'ok')\n\nHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

fn deploy_all(server: &Server, parent: &Path) {
    let intruder = project(
        parent,
        "intruder",
        "service: intruder\nfunctions:\n  f:\n    runtime: python3.11\n    handler: intruder.handler\n    timeout: 30\n",
        &[("intruder.py", &intruder_app())],
    );
    let victim = project(
        parent,
        "victim",
        "service: victim\nfunctions:\n  f:\n    runtime: python3.11\n    handler: app.handler\n  site:\n    web:\n      command: [\"python3\", \"-u\", \"site.py\"]\n    events:\n      - http: { path: \"/site\", method: get }\n",
        &[("app.py", VICTIM_LAMBDA), ("site.py", VICTIM_WEB)],
    );
    server.deploy(&intruder);
    server.deploy(&victim);
}

async fn invoke(http: &HttpClient, server: &Server, function: &str, event: Value) -> Value {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        server.gateway
    );
    let resp = request(http, "POST", &url, &[], event.to_string()).await;
    assert_eq!(resp.status, 200, "{function}: {}", resp.text());
    resp.json()
}

/// An environment variable of the first live process of `function`'s
/// instances that has it (the instance's own process, not its wrappers).
fn instance_env(function: &str, key: &str) -> Option<String> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
        let me = format!("ROUSE_FUNCTION={function}");
        let is_it = vars.contains(&me.as_bytes());
        if !is_it {
            continue;
        }
        let prefix = format!("{key}=");
        if let Some(value) = vars.iter().find_map(|v| v.strip_prefix(prefix.as_bytes())) {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    None
}

/// The port a web instance listens on, found as root from the outside.
fn web_port(function: &str) -> u16 {
    instance_env(function, "PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no PORT for {function}"))
}

async fn instances_stay_apart(isolation: &str) {
    if !is_root() {
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--isolation", isolation]);
    deploy_all(&server, tmp.path());
    let http = client();

    // Warm both victims and find their ports the way an attacker would.
    assert_eq!(
        invoke(&http, &server, "victim-dev-f", json!({})).await,
        json!({"real": true})
    );
    let site = get(&http, &format!("{}/site", server.gateway)).await;
    assert_eq!(site.text(), "ok");
    let runtime_api = instance_env("victim-dev-f", "AWS_LAMBDA_RUNTIME_API")
        .expect("the victim lambda's Runtime API address");
    let runtime_port: u16 = runtime_api
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let site_port = web_port("victim-dev-site");

    // Another function's web instance: refused.
    let reached = invoke(
        &http,
        &server,
        "intruder-dev-f",
        json!({"connect": site_port}),
    )
    .await;
    assert_eq!(
        reached["ok"], false,
        "reached the victim's web port: {reached}"
    );

    // Another function's Runtime API: polling it gets nothing, and the
    // victim's callers keep getting the victim's own answers meanwhile.
    let steal = {
        let http = http.clone();
        let gateway = server.gateway.clone();
        tokio::spawn(async move {
            let url = format!("{gateway}/2015-03-31/functions/intruder-dev-f/invocations");
            let body = json!({"steal": runtime_port, "for": 2.5}).to_string();
            request(&http, "POST", &url, &[], body).await.json()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        assert_eq!(
            invoke(&http, &server, "victim-dev-f", json!({})).await,
            json!({"real": true})
        );
    }
    let stolen = steal.await.expect("intruder");
    assert_eq!(stolen["stolen"], 0, "{stolen}");
    assert!(stolen["failures"].as_u64().unwrap_or(0) > 0, "{stolen}");
    // Not even an HTTP error (a 403 for a second poller): the endpoint
    // closes the intruder's connections unanswered.
    assert!(
        !stolen["errors"].to_string().contains("HTTPError"),
        "the victim's Runtime API answered the intruder: {stolen}"
    );

    // Still reachable: the instance's own sockets, the gateway, and a
    // server on the host (the outside world as far as this test goes).
    let own = invoke(
        &http,
        &server,
        "intruder-dev-f",
        json!({"own_listener": true}),
    )
    .await;
    assert_eq!(own["ok"], true, "{own}");
    let gateway_port: u16 = server
        .gateway
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("gateway port");
    let gw = invoke(
        &http,
        &server,
        "intruder-dev-f",
        json!({"connect": gateway_port}),
    )
    .await;
    assert_eq!(gw["ok"], true, "{gw}");
    let outside = std::net::TcpListener::bind("127.0.0.1:0").expect("host server");
    let outside_port = outside.local_addr().expect("addr").port();
    let host = invoke(
        &http,
        &server,
        "intruder-dev-f",
        json!({"connect": outside_port}),
    )
    .await;
    assert_eq!(host["ok"], true, "{host}");
}

#[tokio::test(flavor = "multi_thread")]
async fn under_namespaces_an_instance_cannot_reach_another_functions_instances() {
    instances_stay_apart("namespaces").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn under_process_isolation_an_instance_cannot_reach_another_functions_instances() {
    instances_stay_apart("process").await;
}
