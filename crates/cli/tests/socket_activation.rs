//! `web.socketActivation`: rouse binds the socket and the app inherits it as
//! fd 3 (`LISTEN_FDS=1`, `LISTEN_PID`), so requests queue in the kernel
//! while the app starts instead of waiting for readiness polling.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn activated_project(parent: &Path, service: &str, delay: &str) -> PathBuf {
    activated_project_with(parent, service, delay, "")
}

/// `extra_web` is added to the function's `web:` block (indented lines).
fn activated_project_with(parent: &Path, service: &str, delay: &str, extra_web: &str) -> PathBuf {
    let app = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/socket_activated.py"),
    )
    .expect("fixture");
    let manifest = format!(
        "service: {service}\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n      socketActivation: true\n{extra_web}    environment: {{ START_DELAY: \"{delay}\", OUTBOUND: \"127.0.0.1:9\" }}\n    events:\n      - http: {{ path: \"/{{proxy+}}\", method: any }}\n"
    );
    project(parent, service, &manifest, &[("app.py", &app)])
}

async fn check_inherited_socket(extra_args: &[&str]) {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), extra_args);
    server.deploy(&activated_project(tmp.path(), "sock", "0.5"));
    let http = client();

    let started = Instant::now();
    let first = get(&http, &format!("{}/", server.gateway)).await;
    let waited = started.elapsed();
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(
        waited >= Duration::from_millis(500),
        "the request waited in the kernel's queue for the app: {waited:?}"
    );
    let doc = first.json();
    assert_eq!(doc["listen_fds"], "1", "{doc}");
    assert_eq!(
        doc["listen_pid"],
        doc["pid"].to_string(),
        "LISTEN_PID is the app's own pid: {doc}"
    );
    assert_eq!(
        doc["port"],
        doc["bound"].to_string(),
        "PORT names the socket: {doc}"
    );
    let logs = server.logs("sock-dev-app");
    assert!(logs.contains("serving on inherited fd 3"), "{logs}");
    let again = get(&http, &format!("{}/", server.gateway)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["pid"], doc["pid"], "warm reuse");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_activated_app_serves_on_fd_3_and_requests_queue_while_it_starts() {
    check_inherited_socket(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_activation_without_isolation() {
    check_inherited_socket(&["--isolation", "none"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn network_none_leaves_the_app_only_its_socket() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: network namespaces need root");
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let http = client();
    // The app tries to reach the gateway itself: possible only with a network.
    let gateway = server.gateway.trim_start_matches("http://").to_string();
    let answer = |service: &'static str, network: &'static str| {
        let dir = activated_project_with(tmp.path(), service, "0", network);
        let manifest = dir.join("rouse.yaml");
        let text = std::fs::read_to_string(&manifest).expect("manifest");
        std::fs::write(&manifest, text.replace("127.0.0.1:9", &gateway)).expect("manifest");
        server.deploy(&dir);
        let (http, url) = (&http, format!("{}/", server.gateway));
        async move {
            let resp = get(http, &url).await;
            assert_eq!(resp.status, 200, "{}", resp.text());
            resp.json()
        }
    };

    let closed = answer("closed", "      network: none\n").await;
    assert_eq!(closed["interfaces"], serde_json::json!(["lo"]), "{closed}");
    assert!(
        closed["outbound"]
            .as_str()
            .unwrap_or("")
            .starts_with("error"),
        "{closed}"
    );
    server.cli(&["rm", "closed-dev-app"]);

    let open = answer("open", "").await;
    assert_eq!(open["outbound"], "connected", "{open}");
}

#[tokio::test(flavor = "multi_thread")]
async fn network_none_is_refused_without_namespaces() {
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    server.deploy(&activated_project_with(
        tmp.path(),
        "closed",
        "0",
        "      network: none\n",
    ));
    let resp = get(&client(), &format!("{}/", server.gateway)).await;
    assert_eq!(resp.status, 502, "{}", resp.text());
    let logs = server.logs("closed-dev-app");
    assert!(
        logs.contains("`network: none` needs namespace isolation"),
        "{logs}"
    );
}
