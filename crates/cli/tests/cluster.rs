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

/// Each node's name and `field` (its state, its internal address, ...).
fn node_field(server: &Server, field: &str) -> Vec<(String, String)> {
    let list = server.cli_json(&["nodes", "--output", "json"]);
    list.as_array()
        .expect("a list")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_string(),
                n[field].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn nodes(server: &Server) -> Vec<(String, String)> {
    node_field(server, "state")
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

/// The node that served a response, as rouse names it.
fn served_by(resp: &Response) -> String {
    resp.headers
        .get("x-rouse-node")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `rouse fn place FN ARGS` through `server`: the function's homes.
fn place(server: &Server, function: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["fn", "place", function, "--output", "json"];
    all.extend_from_slice(args);
    let placement = server.cli_json(&all);
    placement["homes"]
        .as_array()
        .expect("homes")
        .iter()
        .filter_map(|h| h.as_str().map(str::to_string))
        .collect()
}

/// The homes of `function` once every node computes the same (each reads
/// the node rows every half second).
async fn agreed_homes(servers: &[&Server], function: &str) -> Vec<String> {
    let started = Instant::now();
    loop {
        let all: Vec<Vec<String>> = servers.iter().map(|s| place(s, function, &[])).collect();
        if all.windows(2).all(|w| w[0] == w[1]) {
            return all[0].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "nodes disagree on {function}: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The internal address each node advertises, by name.
fn internal_addrs(server: &Server) -> Vec<(String, String)> {
    node_field(server, "internal")
}

/// Waits until `url` is answered by `node`, through every one of `servers`.
async fn until_served_by(
    client: &HttpClient,
    servers: &[&Server],
    path: &str,
    node: &str,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    for server in servers {
        loop {
            let resp = get(client, &format!("{}{path}", server.gateway)).await;
            if resp.status == 200 && served_by(&resp) == node {
                break;
            }
            assert!(
                started.elapsed() < within,
                "{}{path} still served by {:?} ({}), not {node}",
                server.gateway,
                served_by(&resp),
                resp.status
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn any_node_serves_any_function_from_its_home_and_moves_lose_no_request() {
    let Some(db) = rouse_testpg::database() else {
        return;
    };
    let tmp = open_tempdir();
    let mark = tmp.path().join("ticks.txt");
    let mut a = node(tmp.path(), &db.url, "a");
    let mut b = node(tmp.path(), &db.url, "b");
    let c = node(tmp.path(), &db.url, "c");
    let client = client();
    a.deploy(&cluster_project(tmp.path(), &mark));
    let site = "cl-dev-site";
    let api = "cl-dev-api";

    // Each function is served by its home, whichever node the request
    // reaches: HTTP routes (web and lambda), the Invoke API, rouse invoke.
    for (function, path) in [(site, "/site/hello"), (api, "/api")] {
        let homes = agreed_homes(&[&a, &b, &c], function).await;
        assert_eq!(homes.len(), 1, "{function}: {homes:?}");
        until_served_by(
            &client,
            &[&a, &b, &c],
            path,
            &homes[0],
            Duration::from_secs(5),
        )
        .await;
    }
    let api_home = place(&a, api, &[]).remove(0);
    for server in [&a, &b, &c] {
        let resp = request(
            &client,
            "POST",
            &format!("{}/2015-03-31/functions/{api}/invocations", server.gateway),
            &[],
            "{}",
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(
            served_by(&resp),
            api_home,
            "Invoke API via {}",
            server.gateway
        );
        let out = server.cli(&["invoke", api]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = server.cli(&["invoke", site, "--path", "/hello"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Only the home ran the web function.
    let site_home = place(&a, site, &[]).remove(0);
    for (server, name) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let ran = server.logs(site).contains("cold start: instance");
        assert_eq!(ran, name == site_home, "{name} ran {site}: {ran}");
    }

    // Pinned by the CLI: served by b through every node within a second.
    assert_eq!(place(&c, site, &["--nodes", "b"]), ["b"]);
    let took = until_served_by(
        &client,
        &[&a, &b, &c],
        "/site/hello",
        "b",
        Duration::from_secs(1),
    )
    .await;
    eprintln!("pin reached every node in {took:?}");

    // Moved by SQL under steady load through all three nodes: no request fails.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let urls: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|s| format!("{}/site/hello", s.gateway))
        .collect();
    let load = {
        let (stop, client) = (stop.clone(), client.clone());
        tokio::spawn(async move {
            let (mut sent, mut failed, mut by) =
                (0u32, Vec::new(), std::collections::BTreeMap::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = get(&client, &urls[sent as usize % urls.len()]).await;
                sent += 1;
                if resp.status != 200 {
                    failed.push(format!("{} {}", resp.status, resp.text()));
                }
                *by.entry(served_by(&resp)).or_insert(0u32) += 1;
            }
            (sent, failed, by)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    db.psql(&format!(
        "UPDATE placements SET nodes = '{{c}}' WHERE function = '{site}'"
    ))
    .expect("move by SQL");
    let took = until_served_by(
        &client,
        &[&a, &b, &c],
        "/site/hello",
        "c",
        Duration::from_secs(2),
    )
    .await;
    eprintln!("SQL move reached every node in {took:?}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, failed, by) = load.await.expect("load");
    eprintln!("during the move: {sent} requests, served by {by:?}");
    assert!(
        failed.is_empty(),
        "{} of {sent} failed: {failed:?}",
        failed.len()
    );
    assert!(by.contains_key("b") && by.contains_key("c"), "{by:?}");
    // b's instance drained and stopped.
    let drained = eventually(Duration::from_secs(5), || {
        b.logs(site).contains("served by c now") && instances_of(&b, site) == 0
    })
    .await;
    assert!(drained, "b still runs {site}: {}", b.logs(site));

    // The internal port takes only signed requests.
    let internal = internal_addrs(&a)
        .into_iter()
        .find(|(name, _)| name == "c")
        .map(|(_, addr)| addr)
        .expect("c's internal address");
    let unsigned = get(&client, &format!("http://{internal}/site/hello")).await;
    assert_eq!(unsigned.status, 403, "{}", unsigned.text());
    let forged = request(
        &client,
        "GET",
        &format!("http://{internal}/site/hello"),
        &[
            ("x-rouse-from-node", "intruder"),
            ("x-rouse-time", &format!("{}", now_ms())),
            (
                "x-rouse-body-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("x-rouse-client", "127.0.0.1:1"),
            ("x-rouse-proto", "http"),
            ("x-rouse-deadline-ms", "1000"),
            ("x-rouse-direct", ""),
            ("x-rouse-signature", &"ab".repeat(32)),
        ],
        "",
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.text());
    assert_eq!(
        served_by(&forged),
        "",
        "a refused request reaches no function"
    );

    // Draining c: its pinned function goes to the others, c shows draining.
    let out = a.cli(&["node", "drain", "c"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(nodes(&b).contains(&("c".to_string(), "draining".to_string())));
    let moved = eventually(Duration::from_secs(2), || {
        let homes = place(&a, site, &[]);
        homes.len() == 1 && homes[0] != "c"
    })
    .await;
    assert!(moved, "{:?}", place(&a, site, &[]));
    let new_home = place(&a, site, &[]).remove(0);
    until_served_by(
        &client,
        &[&a, &b, &c],
        "/site/hello",
        &new_home,
        Duration::from_secs(2),
    )
    .await;
    let out = a.cli(&["node", "drain", "c", "--undo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(place(&a, site, &["--auto"]).len(), 1);

    // kill -9 of a function's home: the survivors answer at once (the dead
    // home refuses connections) and for good once its heartbeat expires.
    let home = place(&a, site, &[]).remove(0);
    let (victim, survivors): (&mut Server, Vec<&Server>) = match home.as_str() {
        "a" => (&mut a, vec![&b, &c]),
        "b" => (&mut b, vec![&a, &c]),
        _ => {
            // c is the home: kill it through a handle we own.
            let mut c = c;
            c.kill();
            let killed = Instant::now();
            for server in [&a, &b] {
                let resp = get(&client, &format!("{}/site/hello", server.gateway)).await;
                assert_eq!(resp.status, 200, "{}", resp.text());
            }
            eprintln!("answered by survivors {:?} after kill -9", killed.elapsed());
            return;
        }
    };
    victim.kill();
    let killed = Instant::now();
    for server in &survivors {
        let resp = get(&client, &format!("{}/site/hello", server.gateway)).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_ne!(served_by(&resp), home);
    }
    eprintln!("answered by survivors {:?} after kill -9", killed.elapsed());
}

/// How many instances of `function` run on `server`.
fn instances_of(server: &Server, function: &str) -> usize {
    let list = server.cli_json(&["ls", "--output", "json"]);
    let functions = list.get("functions").unwrap_or(&list);
    functions
        .as_array()
        .expect("functions")
        .iter()
        .find(|f| f["name"] == function)
        .and_then(|f| f["instances"].as_array())
        .map_or(0, Vec::len)
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
}
