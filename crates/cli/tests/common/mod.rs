//! Test harness: a real `rouse serve` process, real projects deployed with the
//! real CLI, real HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub(crate) const TOKEN: &str = "test-token-0123456789";

pub(crate) fn rouse_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rouse")
}

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temp dir others (nginx workers run as `nobody`) can traverse.
pub(crate) fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

pub(crate) struct Server {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub gateway: String,
    pub admin: String,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Server {
    pub(crate) fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    pub(crate) fn start_with(data_dir: &Path, extra_args: &[&str]) -> Server {
        Server::launch(None, data_dir, extra_args, &[])
    }

    /// With environment variables added (kept for `start_again`).
    pub(crate) fn start_with_env(
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Server::launch(None, data_dir, extra_args, env)
    }

    /// `rouse serve` run from `cwd` with `--data-dir` as written (say, relative).
    pub(crate) fn start_in(cwd: &Path, data_dir: &str) -> Server {
        let mut server = Server::launch(Some(cwd), Path::new(data_dir), &[], &[]);
        server.data_dir = cwd.join(data_dir);
        server
    }

    fn launch(
        cwd: Option<&Path>,
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let mut command = Command::new(rouse_bin());
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data_dir)
            .args(extra_args)
            .env("ROUSE_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rouse serve");
        let (gateway, admin) = banner_urls(&mut child);
        Server {
            gateway,
            admin,
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Runs a CLI command against this server.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        Command::new(rouse_bin())
            .args(args)
            .env("ROUSE_ENDPOINT", &self.admin)
            .env("ROUSE_ADMIN_TOKEN", TOKEN)
            .output()
            .expect("run rouse")
    }

    /// `rouse deploy DIR`, asserting success.
    /// `rouse ARGS` (expected to succeed) with its JSON output.
    pub(crate) fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "rouse {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("rouse {args:?} did not print JSON ({e})"))
    }

    pub(crate) fn deploy(&self, dir: &Path) -> String {
        let out = self.cli(&["deploy", dir.to_str().expect("utf-8 path")]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "deploy failed:\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// SIGTERM and wait; returns the exit code.
    pub(crate) fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        signal(child.id(), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rouse did not exit within 20s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to stop instances.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn restart(&mut self) {
        self.terminate();
        self.start_again();
    }

    /// Starts a new server on the same data directory (after `kill` or `terminate`).
    pub(crate) fn start_again(&mut self) {
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let next = Server::launch(None, &self.data_dir, &args, &env);
        *self = next;
    }

    pub(crate) fn logs(&self, function: &str) -> String {
        let out = self.cli(&["logs", function, "-n", "1000"]);
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            signal(child.id(), nix::sys::signal::Signal::SIGTERM);
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The gateway and admin URLs from the first line `rouse serve` prints:
/// "rouse is serving functions at http://A (admin API http://B, data in ...)".
pub(crate) fn banner_urls(child: &mut Child) -> (String, String) {
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read banner");
    let urls: Vec<&str> = line
        .split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.trim_end_matches([',', ')']))
        .collect();
    assert_eq!(urls.len(), 2, "unexpected banner: {line}");
    (urls[0].to_string(), urls[1].to_string())
}

pub(crate) fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

pub(crate) fn process_alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

/// The host pid of the instance that produced `doc` (a fixture's answer
/// naming its `instance`), from `rouse ls`. An isolated app's own
/// `getpid()` counts in its pid namespace, so only rouse knows this one.
pub(crate) fn answered_by(server: &Server, doc: &serde_json::Value) -> u32 {
    let id = doc["instance"]
        .as_str()
        .unwrap_or_else(|| panic!("no instance id in {doc}"));
    let ls = server.cli(&["ls", "--output", "json"]);
    let functions: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("ls json");
    functions
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["instances"].as_array().into_iter().flatten())
        .find(|i| i["id"] == id)
        .and_then(|i| i["pid"].as_u64())
        .unwrap_or_else(|| panic!("instance {id} is not live: {functions}")) as u32
}

/// A project directory: `rouse.yaml` plus files.
pub(crate) fn project(
    parent: &Path,
    name: &str,
    manifest: &str,
    files: &[(&str, &str)],
) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir project");
    std::fs::write(dir.join("rouse.yaml"), manifest).expect("write manifest");
    for (path, content) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, content).expect("write file");
    }
    dir
}

/// The fixture app with fault endpoints (`/pid`, `/crash`, `/sleep?s=`, ...).
pub(crate) fn fixture_app() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app.py"))
        .expect("fixture app")
}

pub(crate) struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

pub(crate) type HttpClient =
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub(crate) fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(crate) async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response {
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).expect("request");
    let resp = client
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Response {
        status,
        headers,
        body,
    }
}

pub(crate) async fn get(client: &HttpClient, url: &str) -> Response {
    request(client, "GET", url, &[], Bytes::new()).await
}

/// Polls `check` until it holds or `timeout` passes.
pub(crate) async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// A file under `tests/fixtures/`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A Python project whose `handlers.py` is the fixture `handlers`;
/// `functions` is the YAML under `functions:` (indented by two spaces).
pub(crate) fn handlers_project(
    parent: &Path,
    service: &str,
    handlers: &str,
    functions: &str,
) -> PathBuf {
    let manifest =
        format!("service: {service}\nprovider: {{ runtime: python3.12 }}\nfunctions:\n{functions}");
    let code = std::fs::read_to_string(fixture(handlers)).expect("fixture");
    project(parent, service, &manifest, &[("handlers.py", &code)])
}
