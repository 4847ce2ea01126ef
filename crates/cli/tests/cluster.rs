//! Cluster mode end to end: a private PostgreSQL and three real `rouse
//! serve --store postgres://…` nodes on this machine. A deploy through one
//! node is served by the others within a second; nodes see each other
//! alive and a killed one dead after the TTL; a restart of every node keeps
//! every function; a schedule tick fires once with three nodes. Skipped,
//! saying so, without PostgreSQL.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const HANDLER: &str = r#"import json, os

def main(event, context):
    if event.get("source") == "aws.events":
        with open(os.environ["MARK_FILE"], "a") as f:
            f.write(event["time"] + "\n")
        return {}
    return {"statusCode": 200, "body": json.dumps({"from": "lambda", "path": event.get("rawPath")})}
"#;

fn cluster_project(parent: &Path, mark: &Path) -> PathBuf {
    let manifest = format!(
        "service: cl\nfunctions:\n  api:\n    runtime: python3.12\n    handler: handler.main\n    environment:\n      MARK_FILE: {}\n    events:\n      - httpApi: {{ path: /api, method: get }}\n      - schedule: rate(1 minute)\n  site:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: {{ path: \"/site/{{proxy+}}\", method: any }}\n",
        mark.display()
    );
    project(
        parent,
        "cl",
        &manifest,
        &[("handler.py", HANDLER), ("app.py", &fixture_app())],
    )
}

fn node(tmp: &Path, url: &str, name: &str) -> Server {
    Server::start_with(
        &tmp.join(name),
        &["--store", url, "--node-name", name, "--isolation", "none"],
    )
}

fn nodes(server: &Server) -> Vec<(String, String)> {
    let out = server.cli(&["nodes", "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("nodes json");
    list.as_array()
        .expect("a list")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_string(),
                n["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn states(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

/// Both functions answer through `server`.
async fn serves_both(client: &HttpClient, server: &Server) {
    let api = get(client, &format!("{}/api", server.gateway)).await;
    assert_eq!(api.status, 200, "{}: {}", server.gateway, api.text());
    assert_eq!(api.json()["from"], "lambda");
    let site = get(client, &format!("{}/site/hello", server.gateway)).await;
    assert_eq!(site.status, 200, "{}: {}", server.gateway, site.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_share_deploys_survive_a_kill_and_fire_a_schedule_once() {
    let Some(db) = rouse_testpg::database() else {
        return;
    };
    let tmp = open_tempdir();
    let mark = tmp.path().join("ticks.txt");
    let mut a = node(tmp.path(), &db.url, "a");
    let mut b = node(tmp.path(), &db.url, "b");
    let mut c = node(tmp.path(), &db.url, "c");
    let client = client();

    // Deploy through A; B and C learn the routes within a second.
    a.deploy(&cluster_project(tmp.path(), &mark));
    let deployed = Instant::now();
    for server in [&b, &c] {
        loop {
            let resp = get(&client, &format!("{}/api", server.gateway)).await;
            if resp.status != 404 {
                break;
            }
            assert!(
                deployed.elapsed() < Duration::from_secs(1),
                "{} still had no route 1 s after the deploy",
                server.gateway
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("deploy reached B and C in {:?}", deployed.elapsed());
    for server in [&a, &b, &c] {
        serves_both(&client, server).await;
    }
    assert_eq!(
        nodes(&b),
        states(&[("a", "alive"), ("b", "alive"), ("c", "alive")])
    );

    // An environment change through C: B's warm instance rolls over to the
    // new version (the fixture app echoes GREETING).
    let out = c.cli(&["env", "set", "cl-dev-site", "GREETING=from-c"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changed = Instant::now();
    loop {
        let resp = get(&client, &format!("{}/site/env", b.gateway)).await;
        if resp.status == 200 && resp.json()["env"]["GREETING"] == "from-c" {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "B still serves the old environment: {}",
            resp.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "env change reached B (new instance ready) in {:?}",
        changed.elapsed()
    );

    // kill -9 A: B and C keep serving; A shows dead once its TTL is over.
    a.kill();
    for server in [&b, &c] {
        serves_both(&client, server).await;
    }
    let dead = eventually(Duration::from_secs(15), || {
        nodes(&c) == states(&[("a", "dead"), ("b", "alive"), ("c", "alive")])
    })
    .await;
    assert!(dead, "A not dead after the TTL: {:?}", nodes(&c));

    // Restart every node: everything deployed is still there. Before they
    // start, the rate's anchor moves back so its next tick comes within
    // seconds, while all three run.
    b.terminate();
    c.terminate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    db.psql(&format!(
        "UPDATE functions SET updated_at = {} WHERE name = 'cl-dev-api'",
        now - 50
    ))
    .expect("move the anchor");
    a.start_again();
    b.start_again();
    c.start_again();
    // New connections only: a pooled one to a stopped node's port could
    // be picked for a new node that got the same port.
    let client = common::client();
    for server in [&a, &b, &c] {
        serves_both(&client, server).await;
    }
    assert_eq!(
        nodes(&a),
        states(&[("a", "alive"), ("b", "alive"), ("c", "alive")])
    );

    // The tick fires once, on one node, though all three planned it.
    let fired = eventually(Duration::from_secs(20), || {
        std::fs::read_to_string(&mark).is_ok_and(|t| !t.is_empty())
    })
    .await;
    assert!(fired, "the schedule did not fire");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticks = std::fs::read_to_string(&mark).expect("ticks");
    assert_eq!(ticks.lines().count(), 1, "one tick, one run: {ticks}");
    let fired_on: Vec<&str> = [(&a, "a"), (&b, "b"), (&c, "c")]
        .into_iter()
        .filter(|(server, _)| {
            server
                .logs("cl-dev-api")
                .contains("schedule rate(1 minute) fired")
        })
        .map(|(_, name)| name)
        .collect();
    assert_eq!(fired_on.len(), 1, "fired on {fired_on:?}");

    // A removal through C is gone from A and B within a second.
    let out = c.cli(&["rm", "cl-dev-site"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let removed = Instant::now();
    for server in [&a, &b] {
        while get(&client, &format!("{}/site/x", server.gateway))
            .await
            .status
            != 404
        {
            assert!(
                removed.elapsed() < Duration::from_secs(1),
                "{} still routes /site",
                server.gateway
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[test]
fn a_node_with_another_admin_token_refuses_to_join() {
    let Some(db) = rouse_testpg::database() else {
        return;
    };
    let tmp = open_tempdir();
    let _first = node(tmp.path(), &db.url, "first");
    let mut other = std::process::Command::new(rouse_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--store", &db.url, "--isolation", "none", "--data-dir"])
        .arg(tmp.path().join("other"))
        .env("ROUSE_ADMIN_TOKEN", "not-the-clusters-token")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start rouse serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = other.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = other.kill();
            panic!("a node with another token started");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(other.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!status.success());
    assert!(stderr.contains("not the cluster's"), "{stderr}");
}
