//! The CLI around the server: `init` templates deployed to a real server,
//! shell completions, `doctor`, `--output json`, exit codes, deploy progress.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// Template → (the example it is, the example's service name).
const TEMPLATES: &[(&str, &str, &str)] = &[
    ("python-web", "python-web", "hello"),
    ("python-lambda", "python-lambda", "pylambda"),
    ("node-lambda", "node-lambda", "nodelambda"),
    ("rust-lambda", "rust-lambda", "rustlambda"),
    ("nginx-site", "nginx-site", "static"),
];

/// `rouse ARGS` with no server configured (a dead endpoint, no token).
fn rouse(args: &[&str], cwd: &Path) -> Output {
    Command::new(rouse_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("ROUSE_ADMIN_TOKEN")
        .env_remove("ROUSE_ENDPOINT")
        .env_remove("ROUSE_DATA_DIR")
        .output()
        .expect("run rouse")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Every file under `dir`, by relative path.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("prefix").to_path_buf();
                found.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    found
}

fn init(template: &str, dir: &Path) {
    let parent = dir.parent().expect("parent");
    let out = rouse(&["init", template, dir.to_str().expect("utf-8")], parent);
    assert!(
        out.status.success(),
        "init {template}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------- init

#[test]
fn every_template_is_its_example_file_for_file() {
    let tmp = tempfile::tempdir().unwrap();
    let listing = rouse(&["init"], tmp.path());
    assert!(listing.status.success());
    let listing = text(&listing.stdout);
    let listed: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let expected: Vec<&str> = TEMPLATES.iter().map(|t| t.0).collect();
    assert_eq!(listed, expected, "{listing}");
    assert!(listing.contains("(default)"), "{listing}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "listing writes nothing"
    );

    for (template, example, service) in TEMPLATES {
        // Named like the example's service, the project is the example exactly.
        let dir = tmp.path().join(template).join(service);
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        init(template, &dir);
        let written = files_under(&dir);
        let original = files_under(&repo_root().join("examples").join(example));
        assert_eq!(
            written.keys().collect::<Vec<_>>(),
            original.keys().collect::<Vec<_>>(),
            "{template}: the same files as examples/{example}"
        );
        for (path, content) in &original {
            assert!(
                written[path] == *content,
                "{template}: {} differs from examples/{example}",
                path.display()
            );
        }
    }
}

#[test]
fn init_names_the_service_after_the_directory_and_says_what_to_run_next() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rouse(&["init", "python-web", "My_Shop"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = std::fs::read_to_string(tmp.path().join("My_Shop/rouse.yaml")).unwrap();
    assert!(manifest.contains("\nservice: my-shop\n"), "{manifest}");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("cd My_Shop && rouse dev"), "{stdout}");

    // Into the current directory: no `cd`.
    let here = tmp.path().join("here");
    std::fs::create_dir(&here).unwrap();
    let out = rouse(&["init", "rust"], &here);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .contains("Next: cargo build --release && cp target/release/bootstrap . && rouse dev"),
        "{stdout}"
    );
    let manifest = std::fs::read_to_string(here.join("rouse.yaml")).unwrap();
    assert!(manifest.contains("\nservice: here\n"), "{manifest}");
}

#[test]
fn init_refuses_to_overwrite_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("app.py"), "mine\n").unwrap();
    let out = rouse(&["init", "python", "app"], tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("app.py") && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("app.py")).unwrap(),
        "mine\n"
    );
    assert!(!dir.join("rouse.yaml").exists());

    let bad = rouse(&["init", "cobol", "x"], tmp.path());
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown template is a usage error"
    );
    assert!(
        text(&bad.stderr).contains("python-web"),
        "names the templates"
    );
    assert!(!tmp.path().join("x").exists());
}

/// The Rust template is a Cargo project of its own (not a member of a
/// workspace) whose `bootstrap` deploys and answers.
#[tokio::test(flavor = "multi_thread")]
async fn the_rust_template_builds_a_bootstrap_that_deploys_and_answers() {
    let tmp = open_tempdir();
    let dir = tmp.path().join("fn-rs");
    init("rust", &dir);
    // The workspace's lock file pins the versions already downloaded, so the
    // build works offline; its own target dir keeps the compiled
    // dependencies across runs without touching the workspace's `bootstrap`.
    std::fs::copy(repo_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target = Path::new(rouse_bin())
        .ancestors()
        .nth(2)
        .expect("target dir")
        .join("init-rust");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--offline", "--target-dir"])
        .arg(&target)
        // Without debug info the binary is a fraction of the size to upload.
        .args([
            "--config",
            "profile.dev.package.rust-lambda-example.debug=false",
            "--config",
            "profile.dev.package.rust-lambda-example.strip=true",
        ])
        .current_dir(&dir)
        .output()
        .expect("run cargo");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::copy(target.join("debug/bootstrap"), dir.join("bootstrap")).unwrap();

    let server = Server::start(&tmp.path().join("data"));
    server.deploy(&dir);
    let resp = get(&client(), &format!("{}/rs/v1/42", server.gateway)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.headers["x-handler"], "rust");
    assert_eq!(resp.json()["pathParameters"]["id"], "42");
}

#[tokio::test(flavor = "multi_thread")]
async fn projects_from_init_deploy_and_answer() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let http = client();

    let py = tmp.path().join("pyfn");
    init("python", &py);
    server.deploy(&py);
    let resp = get(&http, &format!("{}/py/v1/42", server.gateway)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.headers["x-handler"], "python");
    assert_eq!(resp.json()["pathParameters"]["id"], "42");

    let node = tmp.path().join("nodefn");
    init("node", &node);
    server.deploy(&node);
    let resp = get(&http, &format!("{}/node/v2/7", server.gateway)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.headers["x-handler"], "node");
    assert_eq!(resp.json()["shape"], "v2");

    let web = tmp.path().join("webapp");
    init("python-web", &web);
    let stdout = server.deploy(&web);
    assert!(stdout.contains("webapp-dev-web"), "{stdout}");
    let resp = get(&http, &format!("{}/hello", server.gateway)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["message"], "Hello from rouse");
    assert_eq!(resp.json()["path"], "/hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nginx_template_serves_its_site() {
    if Command::new("nginx").arg("-v").output().is_err() {
        eprintln!("skipped: nginx is not installed (test.sh installs it)");
        return;
    }
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let site = tmp.path().join("site");
    init("nginx-static", &site);
    server.deploy(&site);
    let page = get(&client(), &format!("{}/", server.gateway)).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let index =
        std::fs::read_to_string(repo_root().join("examples/nginx-site/site/index.html")).unwrap();
    assert_eq!(page.text(), index);
}

// ---------------------------------------------------------------- completions

#[test]
fn completions_know_the_subcommands() {
    let tmp = tempfile::tempdir().unwrap();
    let bash = rouse(&["completions", "bash"], tmp.path());
    assert!(bash.status.success());
    let script = text(&bash.stdout);
    assert!(script.contains("complete -F"), "a bash completion script");
    for sub in ["deploy", "invoke", "logs", "init", "doctor", "completions"] {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
    assert!(script.contains("python-web"), "template names complete too");
    for shell in ["zsh", "fish"] {
        let out = rouse(&["completions", shell], tmp.path());
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("doctor"), "{shell}");
    }
    let bad = rouse(&["completions", "cmd.exe"], tmp.path());
    assert_eq!(bad.status.code(), Some(2));
}

// ---------------------------------------------------------------- doctor

fn doctor_json(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> (Option<i32>, Value) {
    let mut cmd = Command::new(rouse_bin());
    cmd.arg("doctor")
        .args(args)
        .args(["--output", "json"])
        .current_dir(cwd)
        .env_remove("ROUSE_ADMIN_TOKEN")
        .env_remove("ROUSE_ENDPOINT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run doctor");
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor JSON ({e}): {}", text(&out.stdout)));
    (out.status.code(), doc)
}

fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {doc}"))
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[test]
fn doctor_sees_a_running_server_and_its_ports() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let gateway = server.gateway.trim_start_matches("http://");
    let admin = server.admin.trim_start_matches("http://");
    let data = tmp.path().join("data");
    let (code, doc) = doctor_json(
        &[
            "--listen",
            gateway,
            "--admin-listen",
            admin,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[
            ("ROUSE_ENDPOINT", &server.admin),
            ("ROUSE_ADMIN_TOKEN", TOKEN),
        ],
        tmp.path(),
    );
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["ok"], true);
    for name in ["gateway-port", "admin-port"] {
        let c = check(&doc, name);
        assert_eq!(c["status"], "ok", "{c}");
        assert!(
            c["detail"].as_str().unwrap().contains("rouse server"),
            "{c}"
        );
    }
    assert_eq!(check(&doc, "server")["status"], "ok");
    assert_eq!(check(&doc, "data-dir")["status"], "ok");
    for name in ["python3", "node", "ruby", "nginx", "isolation"] {
        let status = check(&doc, name)["status"].as_str().unwrap().to_string();
        assert!(status == "ok" || status == "warn", "{name}: {status}");
    }
    // As root (CI), doctor reports what the server itself chose at start.
    if nix::unistd::geteuid().is_root() {
        let isolation = check(&doc, "isolation");
        assert_eq!(isolation["status"], "ok", "{isolation}");
        assert!(
            isolation["detail"]
                .as_str()
                .unwrap()
                .contains("gives namespaces"),
            "{isolation}"
        );
        // test.sh installs nftables, which keeps instances apart.
        let ports = check(&doc, "instance-ports");
        assert_eq!(ports["status"], "ok", "{ports}");
    }
    let python = check(&doc, "python3");
    if python["status"] == "ok" {
        assert!(
            python["detail"].as_str().unwrap().contains("Python 3"),
            "{python}"
        );
    }

    // The same server with a wrong token: a failure, exit 1.
    let (code, doc) = doctor_json(
        &["--listen", &free_addr(), "--admin-listen", &free_addr()],
        &[
            ("ROUSE_ENDPOINT", &server.admin),
            ("ROUSE_ADMIN_TOKEN", "wrong"),
        ],
        tmp.path(),
    );
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["ok"], false);
    let c = check(&doc, "server");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["hint"].as_str().unwrap().contains("ROUSE_ADMIN_TOKEN"),
        "{c}"
    );
}

#[test]
fn doctor_fails_on_a_taken_port_and_an_unwritable_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().to_string();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let data = file.join("data");
    let (code, doc) = doctor_json(
        &[
            "--listen",
            &taken,
            "--admin-listen",
            &free_addr(),
            "--data-dir",
            data.to_str().unwrap(),
            "--endpoint",
            &format!("http://{}", free_addr()),
        ],
        &[],
        tmp.path(),
    );
    assert_eq!(code, Some(1), "{doc}");
    let port = check(&doc, "gateway-port");
    assert_eq!(port["status"], "fail", "{port}");
    assert!(
        port["hint"].as_str().unwrap().contains("--listen"),
        "{port}"
    );
    assert_eq!(check(&doc, "admin-port")["status"], "ok");
    assert_eq!(check(&doc, "data-dir")["status"], "fail");
    let server = check(&doc, "server");
    assert_eq!(server["status"], "warn", "no server is not a failure");
    assert!(
        server["hint"].as_str().unwrap().contains("rouse serve"),
        "{server}"
    );

    // Text output: one line per check, starting with its status.
    let out = Command::new(rouse_bin())
        .args(["doctor", "--listen", &taken, "--data-dir"])
        .arg(&data)
        .args(["--endpoint", &format!("http://{}", free_addr())])
        .env_remove("ROUSE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let gateway_line = stdout
        .lines()
        .find(|l| l.contains("gateway-port"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(gateway_line.starts_with("fail"), "{gateway_line}");
    let node: Vec<&str> = stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("node"))
        .collect();
    assert!(
        matches!(node.as_slice(), [line] if line.starts_with("ok ") || line.starts_with("warn ")),
        "one node line, ok or warn: {stdout}"
    );
    drop(squatter);
}

// ---------------------------------------------------------------- JSON output

#[test]
fn listings_print_json_with_stable_fields() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let app = project(
        tmp.path(),
        "shop",
        "service: shop\nprovider:\n  environment: { COLOR: blue }\nfunctions:\n  web:\n    web:\n      command: [python3, -u, app.py]\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n",
        &[("app.py", &fixture_app())],
    );
    server.deploy(&app);

    let out = server.cli(&["ls", "--output", "json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).expect("ls JSON");
    let f = &list[0];
    assert_eq!(f["name"], "shop-dev-web");
    assert_eq!(f["service"], "shop");
    assert_eq!(f["stage"], "dev");
    assert_eq!(f["kind"], "web");
    assert_eq!(f["version"], 1);
    assert!(f["updatedAt"].is_i64(), "{f}");
    assert!(f["instances"].is_array(), "{f}");
    assert_eq!(f["routes"][0]["method"], "ANY");
    assert_eq!(f["routes"][0]["path"], "/{proxy+}");
    assert!(f["routes"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://"));

    let out = server.cli(&["versions", "web", "-o", "json"]);
    let versions: Value = serde_json::from_slice(&out.stdout).expect("versions JSON");
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["current"], true);
    assert!(versions[0]["artifact"].as_str().unwrap().len() == 64);
    assert!(versions[0]["createdAt"].is_i64());

    let out = server.cli(&["env", "ls", "web", "--output", "json"]);
    let env: Value = serde_json::from_slice(&out.stdout).expect("env JSON");
    assert_eq!(env["COLOR"], "blue", "{env}");

    // Text stays the default.
    let out = server.cli(&["ls"]);
    assert!(text(&out.stdout).starts_with("NAME"));

    // Exit codes that need a deployed function.
    assert_eq!(
        server.cli(&["env", "get", "web", "NOPE"]).status.code(),
        Some(3)
    );
    assert_eq!(
        server.cli(&["rollback", "web", "--to", "42"]).status.code(),
        Some(3),
        "no such version"
    );
    assert_eq!(
        server.cli(&["invoke", "web", "--path", "/"]).status.code(),
        Some(0)
    );
    let crashed = server.cli(&["invoke", "web", "--path", "/crash"]);
    assert_eq!(crashed.status.code(), Some(4), "the app failed the request");
    assert!(
        text(&crashed.stderr).contains("answered HTTP 5"),
        "{}",
        text(&crashed.stderr)
    );
}

// ---------------------------------------------------------------- exit codes

#[test]
fn exit_codes_tell_scripts_what_went_wrong() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));

    let missing = server.cli(&["logs", "nope"]);
    assert_eq!(missing.status.code(), Some(3), "unknown function");
    assert!(
        text(&missing.stderr).contains("`rouse ls`"),
        "{}",
        text(&missing.stderr)
    );
    assert_eq!(server.cli(&["rm", "nope"]).status.code(), Some(3));

    let usage = server.cli(&["invoke"]);
    assert_eq!(usage.status.code(), Some(2), "clap usage error");
    assert_eq!(
        server.cli(&["ls", "--output", "yaml"]).status.code(),
        Some(2)
    );

    let refused = Command::new(rouse_bin())
        .args(["ls"])
        .env("ROUSE_ENDPOINT", &server.admin)
        .env("ROUSE_ADMIN_TOKEN", "wrong")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(6), "token refused");

    let down = Command::new(rouse_bin())
        .args(["ls"])
        .env("ROUSE_ENDPOINT", format!("http://{}", free_addr()))
        .env("ROUSE_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(5), "server unreachable");
    let stderr = text(&down.stderr);
    assert!(
        stderr.contains("`rouse serve`") && stderr.contains("`rouse dev`"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------- deploy output

#[test]
fn deploy_without_a_terminal_prints_plain_progress_lines() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let dir = tmp.path().join("plain");
    init("python", &dir);
    let out = server.cli(&["deploy", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}'),
        "no terminal escapes: {stderr:?}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("Packaged ")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("Uploaded ")),
        "{stderr}"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = server.cli(&["deploy", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no manifest found") && stderr.contains("`rouse init`"),
        "{stderr}"
    );
}
