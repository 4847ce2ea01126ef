//! Instance isolation end to end: a real `rouse serve` (default isolation:
//! the strongest the host allows), real Python instances looking at their
//! sandbox from the inside, real cgroups.
//!
//! As root these tests require isolation and fail without it; as another
//! user they say why and return.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!(
        "skipping: isolation needs root (running as uid {})",
        nix::unistd::geteuid()
    );
    false
}

fn probe_app() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/isolation_probe.py"),
    )
    .expect("fixture")
}

/// A web function `<service>-dev-app` running the probe app.
fn probe_project(parent: &Path, service: &str, extra: &str) -> PathBuf {
    let manifest = format!(
        "service: {service}\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"probe.py\"]\n{extra}    events:\n      - http: {{ path: \"/{service}/{{proxy+}}\", method: any }}\n"
    );
    project(parent, service, &manifest, &[("probe.py", &probe_app())])
}

async fn ask(http: &HttpClient, server: &Server, service: &str, path: &str) -> Response {
    get(http, &format!("{}/{service}{path}", server.gateway)).await
}

async fn ask_json(http: &HttpClient, server: &Server, service: &str, path: &str) -> Value {
    let resp = ask(http, server, service, path).await;
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    resp.json()
}

/// Host pids of processes running as `uid`.
fn processes_of(uid: u64) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let real_uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            .and_then(|id| id.parse::<u64>().ok());
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        if real_uid == Some(uid) && !zombie {
            pids.push(pid);
        }
    }
    pids
}

/// The instance cgroups of `function` in the pids hierarchy (v1) or the
/// unified one (v2).
fn cgroups_of(function: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for root in ["/sys/fs/cgroup/pids/rouse", "/sys/fs/cgroup/rouse"] {
        let Ok(trees) = std::fs::read_dir(root) else {
            continue;
        };
        for tree in trees.flatten() {
            for leaf in std::fs::read_dir(tree.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if leaf
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{function}-"))
                {
                    found.push(leaf.path());
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_sees_only_itself_writes_only_tmp_and_runs_unprivileged() {
    if !is_root() {
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let alpha = probe_project(tmp.path(), "alpha", "");
    // Owner-only and world-writable files in a project.
    for (name, mode) in [("secret.conf", 0o600), ("open.txt", 0o666)] {
        std::fs::write(alpha.join(name), name).unwrap();
        std::fs::set_permissions(alpha.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    server.deploy(&alpha);
    server.deploy(&probe_project(tmp.path(), "beta", ""));
    let http = client();

    let me = ask_json(&http, &server, "alpha", "/whoami").await;
    let uid = me["uid"].as_u64().expect("uid");
    assert!(uid >= 200_000, "runs as a function uid, not root: {me}");
    assert_eq!(me["gid"].as_u64(), Some(uid), "{me}");
    let pids: Vec<u64> = me["pids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    let own = me["pid"].as_u64().unwrap();
    assert_eq!(
        pids,
        vec![1, own],
        "/proc shows only the instance (its init and the app): {me}"
    );
    assert_eq!(me["hostname"], "localhost", "{me}");

    let cwd = me["cwd"].as_str().unwrap().to_string();
    let doc = ask_json(&http, &server, "alpha", "/read?path=secret.conf").await;
    assert_eq!(
        doc["content"], "secret.conf",
        "its own owner-only file: {doc}"
    );
    for path in [
        format!("{cwd}/open.txt"),
        format!("{cwd}/new-file"),
        format!("{cwd}/probe.py"),
        "/new-file".to_string(),
        "/var/tmp/new-file".to_string(),
        "/root/new-file".to_string(),
        "/etc/new-file".to_string(),
        server.data_dir.join("new-file").display().to_string(),
    ] {
        let doc = ask_json(&http, &server, "alpha", &format!("/write?path={path}")).await;
        assert_eq!(doc["ok"], false, "writing {path} must fail: {doc}");
    }
    let doc = ask_json(
        &http,
        &server,
        "alpha",
        "/write?path=/tmp/secret&content=alpha-only",
    )
    .await;
    assert_eq!(doc["ok"], true, "/tmp is writable: {doc}");
    let doc = ask_json(&http, &server, "alpha", "/read?path=/tmp/secret").await;
    assert_eq!(doc["content"], "alpha-only", "{doc}");
    let doc = ask_json(&http, &server, "alpha", "/write?path=/dev/shm/x").await;
    assert_eq!(doc["ok"], true, "/dev/shm is writable: {doc}");
    assert!(
        !Path::new(&cwd).join("new-file").exists(),
        "nothing reached the shared artifact"
    );

    // Another function: its own /tmp, its own uid, and rouse's files are closed.
    let other = ask_json(&http, &server, "beta", "/whoami").await;
    let other_uid = other["uid"].as_u64().unwrap();
    assert!(other_uid >= 200_000 && other_uid != uid, "{other} vs {me}");
    let doc = ask_json(&http, &server, "beta", "/read?path=/tmp/secret").await;
    assert_eq!(doc["ok"], false, "beta cannot read alpha's /tmp: {doc}");
    for private in ["rouse.db", "admin-token"] {
        let path = server.data_dir.join(private);
        if path.exists() {
            let doc = ask_json(
                &http,
                &server,
                "beta",
                &format!("/read?path={}", path.display()),
            )
            .await;
            assert_eq!(doc["ok"], false, "{private} is rouse's alone: {doc}");
        }
    }
    let doc = ask_json(
        &http,
        &server,
        "beta",
        &format!("/read?path={cwd}/probe.py"),
    )
    .await;
    assert_eq!(
        doc["ok"], false,
        "beta cannot reach alpha's instance dir: {doc}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_instance_past_its_memory_is_killed_with_a_502_and_a_log_line() {
    if !is_root() {
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&probe_project(
        tmp.path(),
        "hungry",
        "    memorySize: 128\n",
    ));
    let http = client();

    let small = ask_json(&http, &server, "hungry", "/alloc?mb=16").await;
    assert_eq!(small["allocated_mb"], 16);
    let big = ask(&http, &server, "hungry", "/alloc?mb=400").await;
    assert_eq!(big.status, 502, "{}", big.text());
    let logs = wait_for_log(&server, "hungry-dev-app", "killed: out of memory").await;
    assert!(
        logs.contains("killed: out of memory (limit 128 MB)"),
        "{logs}"
    );

    // The next request gets a fresh instance.
    let again = ask_json(&http, &server, "hungry", "/alloc?mb=16").await;
    assert_eq!(again["allocated_mb"], 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lambda_past_its_memory_gets_runtime_out_of_memory() {
    if !is_root() {
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let handler = "def handler(event, context):\n    mb = event.get('mb', 1)\n    data = bytearray(mb * 1024 * 1024)\n    for i in range(0, len(data), 4096):\n        data[i] = 1\n    return {'allocated_mb': mb}\n";
    let dir = project(
        tmp.path(),
        "greedy",
        "service: greedy\nfunctions:\n  f:\n    runtime: python3.12\n    handler: main.handler\n    memorySize: 128\n",
        &[("main.py", handler)],
    );
    server.deploy(&dir);
    let http = client();
    let url = format!(
        "{}/2015-03-31/functions/greedy-dev-f/invocations",
        server.gateway
    );

    let fine = request(&http, "POST", &url, &[], json!({"mb": 64}).to_string()).await;
    assert_eq!(fine.status, 200, "{}", fine.text());
    assert_eq!(fine.json()["allocated_mb"], 64);
    // REPORT's Max Memory Used is the instance's (its cgroup's) peak.
    let logs = wait_for_log(&server, "greedy-dev-f", "Max Memory Used").await;
    let used: u64 = logs
        .split("Max Memory Used: ")
        .nth(1)
        .and_then(|rest| rest.split(" MB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Max Memory Used in {logs}"));
    assert!((64..=128).contains(&used), "Max Memory Used: {used} MB");

    let oom = request(&http, "POST", &url, &[], json!({"mb": 400}).to_string()).await;
    assert_eq!(oom.status, 200, "{}", oom.text());
    assert_eq!(
        oom.headers
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok()),
        Some("Unhandled")
    );
    let doc = oom.json();
    assert_eq!(doc["errorType"], "Runtime.OutOfMemory", "{doc}");
    let message = doc["errorMessage"].as_str().unwrap();
    assert!(
        message.ends_with("Error: Runtime exited with error: signal: killed"),
        "{message}"
    );
    wait_for_log(
        &server,
        "greedy-dev-f",
        "killed: out of memory (limit 128 MB)",
    )
    .await;

    let after = request(&http, "POST", &url, &[], json!({"mb": 8}).to_string()).await;
    assert_eq!(after.json()["allocated_mb"], 8, "a fresh instance answers");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_hits_the_pids_limit_and_leaves_nothing_behind() {
    if !is_root() {
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&probe_project(tmp.path(), "bomb", ""));
    server.deploy(&probe_project(tmp.path(), "calm", ""));
    let http = client();

    let me = ask_json(&http, &server, "bomb", "/whoami").await;
    let uid = me["uid"].as_u64().unwrap();
    let cgroups = cgroups_of("bomb-dev-app");
    assert_eq!(cgroups.len(), 1, "one instance, one cgroup: {cgroups:?}");
    let limit = std::fs::read_to_string(cgroups[0].join("pids.max")).expect("pids.max");
    assert_eq!(limit.trim(), "1024");

    let started = ask_json(&http, &server, "bomb", "/forkbomb").await;
    assert_eq!(started["started"], true);
    let current = cgroups[0].join("pids.current");
    let saturated = eventually(Duration::from_secs(20), || {
        std::fs::read_to_string(&current)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .is_some_and(|n| n >= 1000)
    })
    .await;
    let count: u32 = std::fs::read_to_string(&current)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(saturated, "the bomb grows to the limit (at {count})");
    assert!(count <= 1024, "never past the limit: {count}");

    // rouse and other functions keep answering.
    let begin = Instant::now();
    let calm = ask_json(&http, &server, "calm", "/whoami").await;
    assert!(calm["uid"].as_u64().is_some());
    assert!(
        begin.elapsed() < Duration::from_secs(10),
        "{:?}",
        begin.elapsed()
    );

    // Removing the function stops the instance: every process and the
    // cgroup are gone.
    let bomb_pids: Vec<u32> = std::fs::read_to_string(cgroups[0].join("cgroup.procs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(bomb_pids.len() > 100, "{}", bomb_pids.len());
    let out = server.cli(&["rm", "bomb-dev-app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alive = || bomb_pids.iter().filter(|pid| process_alive(**pid)).count();
    let gone = eventually(Duration::from_secs(20), || {
        alive() == 0 && processes_of(uid).is_empty() && cgroups_of("bomb-dev-app").is_empty()
    })
    .await;
    assert!(
        gone,
        "left behind: {} of the bomb's processes, {} with its uid, cgroups {:?}",
        alive(),
        processes_of(uid).len(),
        cgroups_of("bomb-dev-app")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_requests_then_leaves_no_process_or_cgroup() {
    if !is_root() {
        return;
    }
    let tmp = open_tempdir();
    let mut server = Server::start(&tmp.path().join("data"));
    let manifest = "service: drain\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n";
    let dir = project(tmp.path(), "drain", manifest, &[("app.py", &fixture_app())]);
    server.deploy(&dir);
    let http = client();
    let warm = get(&http, &format!("{}/warm", server.gateway)).await;
    assert_eq!(warm.status, 200, "{}", warm.text());
    let cgroups = cgroups_of("drain-dev-app");
    assert_eq!(cgroups.len(), 1, "{cgroups:?}");
    let in_cgroup = std::fs::read_to_string(cgroups[0].join("cgroup.procs")).unwrap();
    assert!(!in_cgroup.trim().is_empty());

    let slow = {
        let http = http.clone();
        let url = format!("{}/sleep?s=1", server.gateway);
        tokio::spawn(async move { get(&http, &url).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.terminate(), Some(0));
    let slow = slow.await.unwrap();
    assert_eq!(
        slow.status,
        200,
        "the request in flight finished: {}",
        slow.text()
    );
    assert!(
        cgroups_of("drain-dev-app").is_empty(),
        "cgroup removed on stop"
    );
    let pids: Vec<u32> = in_cgroup
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(
        pids.iter().all(|pid| !process_alive(*pid)),
        "instance processes stopped: {pids:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn isolation_none_runs_instances_as_plain_children() {
    if !is_root() {
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--isolation", "none"]);
    server.deploy(&probe_project(tmp.path(), "plain", ""));
    let http = client();
    let me = ask_json(&http, &server, "plain", "/whoami").await;
    assert_eq!(me["uid"], 0, "{me}");
    assert!(
        me["pids"].as_array().unwrap().len() > 2,
        "the host's processes are visible"
    );
    assert!(cgroups_of("plain-dev-app").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn isolation_process_gives_a_uid_and_limits_without_namespaces() {
    if !is_root() {
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start_with(&tmp.path().join("data"), &["--isolation", "process"]);
    server.deploy(&probe_project(tmp.path(), "proc", "    memorySize: 256\n"));
    let http = client();
    let me = ask_json(&http, &server, "proc", "/whoami").await;
    assert!(me["uid"].as_u64().unwrap() >= 200_000, "{me}");
    assert!(
        me["pids"].as_array().unwrap().len() > 2,
        "no pid namespace at this level: {me}"
    );
    let cgroups = cgroups_of("proc-dev-app");
    assert_eq!(cgroups.len(), 1, "{cgroups:?}");
    let doc = ask_json(&http, &server, "proc", "/write?path=probe.py").await;
    assert_eq!(
        doc["ok"], false,
        "the code stays read-only for the function: {doc}"
    );
    let big = ask(&http, &server, "proc", "/alloc?mb=400").await;
    assert_eq!(big.status, 502, "{}", big.text());
    wait_for_log(
        &server,
        "proc-dev-app",
        "killed: out of memory (limit 256 MB)",
    )
    .await;
}

#[test]
fn an_unknown_isolation_level_is_refused_at_start() {
    let tmp = open_tempdir();
    let out = std::process::Command::new(rouse_bin())
        .args(["serve", "--isolation", "full", "--data-dir"])
        .arg(tmp.path().join("data"))
        .output()
        .expect("run rouse");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("auto, none, process or namespaces"),
        "{stderr}"
    );
}

/// Waits until the function's log holds `needle`; returns the log.
async fn wait_for_log(server: &Server, function: &str, needle: &str) -> String {
    let mut logs = String::new();
    let found = eventually(Duration::from_secs(10), || {
        logs = server.logs(function);
        logs.contains(needle)
    })
    .await;
    assert!(found, "no {needle:?} in the log of {function}:\n{logs}");
    logs
}
