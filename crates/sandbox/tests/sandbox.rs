//! End-to-end tests with real processes in temporary directories.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use rouse_manifest::{Readiness, Rewrite};
use rouse_sandbox::{
    free_port, remove_work_dir, spawn, wait_ready, LineSink, Process, SandboxError, SpawnSpec,
    Stream,
};

type Captured = Arc<Mutex<Vec<(Stream, String)>>>;

struct Fixture {
    _root: tempfile::TempDir,
    code_dir: PathBuf,
    instances: PathBuf,
    port: u16,
    captured: Captured,
}

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let code_dir = root.path().join("code");
        fs::create_dir(&code_dir).unwrap();
        Fixture {
            code_dir,
            instances: root.path().join("instances"),
            _root: root,
            port: free_port().unwrap(),
            captured: Arc::default(),
        }
    }

    fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.code_dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    fn spec(&self, name: &str, command: &[&str]) -> SpawnSpec {
        let mut env = BTreeMap::new();
        env.insert("PORT".to_string(), self.port.to_string());
        env.insert("PATH".to_string(), std::env::var("PATH").unwrap());
        let captured = self.captured.clone();
        let sink: LineSink = Arc::new(move |stream, line: &str| {
            captured.lock().unwrap().push((stream, line.to_string()));
        });
        SpawnSpec {
            code_dir: self.code_dir.clone(),
            work_dir: self.instances.join(name),
            command: command.iter().map(|s| s.to_string()).collect(),
            env,
            rewrite: Vec::new(),
            sink,
            keep_last_lines: 50,
            isolation: None,
            listener: None,
        }
    }

    fn lines(&self) -> Vec<(Stream, String)> {
        self.captured.lock().unwrap().clone()
    }
}

fn tcp() -> Readiness {
    Readiness { path: None }
}

fn http(path: &str) -> Readiness {
    Readiness {
        path: Some(path.to_string()),
    }
}

fn rewrite(file: &str, pattern: &str, replace: &str) -> Rewrite {
    Rewrite {
        file: file.to_string(),
        pattern: pattern.to_string(),
        replace: replace.to_string(),
    }
}

const PY_SERVER: &[&str] = &[
    "python3",
    "-m",
    "http.server",
    "${PORT}",
    "--bind",
    "127.0.0.1",
];

/// A server answering 200 on /ok and 500 on everything else.
const PY_STATUS_SERVER: &str = r#"
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ok" else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// True once `pid` is gone or only a zombie (orphans may never be reaped when
/// PID 1 does not reap, as in some containers).
fn is_dead(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH) {
        return true;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

/// Fails the test instead of hanging it when a process outlives a kill.
async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("process did not exit within 10 s")
}

async fn eventually(what: &str, deadline: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn read_pid_file(path: &Path) -> i32 {
    eventually("pid file", Duration::from_secs(5), || {
        fs::read_to_string(path).is_ok_and(|s| s.ends_with('\n'))
    })
    .await;
    fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

async fn started(spec: SpawnSpec) -> Process {
    spawn(spec).await.unwrap()
}

#[tokio::test]
async fn python_server_becomes_ready_over_tcp_and_http() {
    let fx = Fixture::new();
    fx.write("healthz", "ok\n");
    let mut process = started(fx.spec("py", PY_SERVER)).await;

    let start = Instant::now();
    wait_ready(&mut process, fx.port, &tcp(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    std::net::TcpStream::connect(("127.0.0.1", fx.port)).unwrap();

    wait_ready(
        &mut process,
        fx.port,
        &http("/healthz"),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    // A 404 is not ready.
    let err = wait_ready(
        &mut process,
        fx.port,
        &http("/missing"),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SandboxError::ReadinessTimeout(_)), "{err}");

    // http.server logs each request on stderr.
    eventually("request log line", Duration::from_secs(5), || {
        fx.lines()
            .iter()
            .any(|(s, l)| *s == Stream::Stderr && l.contains("GET /healthz"))
    })
    .await;
    // The 404 probes came last and filled the ring.
    let last = process.last_lines();
    assert_eq!(last.len(), 50);
    assert!(last.iter().any(|l| l.contains("GET /missing")), "{last:?}");

    bounded(process.stop(Duration::from_secs(2))).await;
    assert!(bounded(process.wait()).await.is_ok());
}

#[tokio::test]
async fn http_readiness_requires_2xx() {
    let fx = Fixture::new();
    fx.write("server.py", PY_STATUS_SERVER);
    let mut process = started(fx.spec("status", &["python3", "server.py"])).await;

    // Prove the server is up, so the timeout below is about the 500.
    wait_ready(&mut process, fx.port, &http("/ok"), Duration::from_secs(10))
        .await
        .unwrap();
    let start = Instant::now();
    let err = wait_ready(
        &mut process,
        fx.port,
        &http("/fail"),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SandboxError::ReadinessTimeout(d) if d == Duration::from_millis(300)));
    assert!(start.elapsed() >= Duration::from_millis(300));
    bounded(process.stop(Duration::from_secs(1))).await;
}

#[tokio::test]
async fn output_reaches_sink_with_stream() {
    let fx = Fixture::new();
    let mut process = started(fx.spec(
        "out",
        &[
            "sh",
            "-c",
            "echo out1; echo err1 >&2; echo out2; printf tail",
        ],
    ))
    .await;
    assert!(bounded(process.wait()).await.unwrap().success());

    let lines = fx.lines();
    let of = |stream| -> Vec<&str> {
        lines
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l.as_str())
            .collect()
    };
    assert_eq!(of(Stream::Stdout), ["out1", "out2", "tail"]);
    assert_eq!(of(Stream::Stderr), ["err1"]);
    // Both streams end up in the ring (their interleaving is up to the scheduler).
    let mut ring = process.last_lines();
    ring.sort();
    assert_eq!(ring, ["err1", "out1", "out2", "tail"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_sync_waits_for_everything_written_so_far() {
    let fx = Fixture::new();
    let marker = fx.instances.join("printed");
    let script = format!(
        "import sys, time\n\
         for i in range(3000):\n    print('out', i); print('err', i, file=sys.stderr)\n\
         sys.stdout.flush(); sys.stderr.flush()\n\
         open({:?}, 'w').close()\n\
         time.sleep(30)\n",
        marker.to_str().unwrap()
    );
    let mut spec = fx.spec("sync", &["python3", "-c", &script]);
    // A slow sink keeps the readers behind the writer, as a busy server would.
    let captured = fx.captured.clone();
    spec.sink = Arc::new(move |stream, line: &str| {
        std::thread::sleep(Duration::from_micros(50));
        captured.lock().unwrap().push((stream, line.to_string()));
    });
    let mut process = started(spec).await;
    let sync = process.output_sync();
    // Everything is in the pipes (or delivered) once the marker exists.
    eventually("the marker file", Duration::from_secs(10), || {
        marker.exists()
    })
    .await;
    sync.settle(Duration::from_secs(5)).await;
    assert!(sync.settled());
    assert_eq!(
        fx.lines().len(),
        6000,
        "every line written before the marker"
    );

    // A process that never stops printing does not hold `settle` up.
    let flood = started(fx.spec("flood", &["sh", "-c", "yes flood"])).await;
    let start = Instant::now();
    flood.output_sync().settle(Duration::from_millis(50)).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    drop(flood);
    process.stop(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn last_lines_keeps_only_the_most_recent() {
    let fx = Fixture::new();
    let mut spec = fx.spec(
        "ring",
        &["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"],
    );
    spec.keep_last_lines = 3;
    let mut process = started(spec).await;
    bounded(process.wait()).await.unwrap();
    assert_eq!(process.last_lines(), ["line3", "line4", "line5"]);
    assert_eq!(fx.lines().len(), 5, "the sink still sees every line");
}

#[tokio::test]
async fn very_long_lines_are_split() {
    let fx = Fixture::new();
    let mut process = started(fx.spec(
        "long",
        &["python3", "-c", "print('x' * 40000); print('short')"],
    ))
    .await;
    bounded(process.wait()).await.unwrap();
    let lengths: Vec<usize> = fx.lines().iter().map(|(_, l)| l.len()).collect();
    assert_eq!(lengths, [16384, 16384, 40000 - 2 * 16384, 5]);
}

#[tokio::test]
async fn command_is_substituted_and_env_is_exactly_the_spec() {
    // cargo sets this for the test binary; the child must not inherit it.
    assert!(std::env::var("CARGO_PKG_NAME").is_ok());
    let fx = Fixture::new();
    let mut spec = fx.spec(
        "env",
        &[
            "sh",
            "-c",
            "echo \"port=${PORT} [$CARGO_PKG_NAME] $FOO\"; pwd",
        ],
    );
    spec.env.insert("FOO".to_string(), "bar".to_string());
    let work_dir = spec.work_dir.clone();
    let mut process = started(spec).await;
    assert_eq!(process.work_dir(), work_dir);
    bounded(process.wait()).await.unwrap();
    let lines: Vec<String> = fx.lines().into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        lines,
        [
            format!("port={} [] bar", fx.port),
            fs::canonicalize(&work_dir).unwrap().display().to_string()
        ]
    );
}

#[tokio::test]
async fn relative_program_runs_from_the_instance_dir() {
    let fx = Fixture::new();
    let server = fx.write("bin/server", "#!/bin/sh\necho \"hello on $1 in $(pwd)\"\n");
    fs::set_permissions(&server, fs::Permissions::from_mode(0o755)).unwrap();
    let mut process = started(fx.spec("rel", &["./bin/server", "${PORT}"])).await;
    assert!(bounded(process.wait()).await.unwrap().success());
    let cwd = fs::canonicalize(process.work_dir()).unwrap();
    assert_eq!(
        fx.lines(),
        [(
            Stream::Stdout,
            format!("hello on {} in {}", fx.port, cwd.display())
        )]
    );
}

#[tokio::test]
async fn layout_links_files_and_recreates_dirs_and_symlinks() {
    let fx = Fixture::new();
    let app = fx.write("lib/app.txt", "app");
    std::os::unix::fs::symlink("lib/app.txt", fx.code_dir.join("current")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", fx.code_dir.join("dangling")).unwrap();
    fs::create_dir(fx.code_dir.join("empty")).unwrap();

    let mut process = started(fx.spec("layout", &["true"])).await;
    bounded(process.wait()).await.unwrap();
    let wd = process.work_dir().to_path_buf();

    assert_eq!(
        fs::metadata(wd.join("lib/app.txt")).unwrap().ino(),
        fs::metadata(&app).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(wd.join("current")).unwrap(),
        Path::new("lib/app.txt")
    );
    assert_eq!(fs::read_to_string(wd.join("current")).unwrap(), "app");
    assert_eq!(
        fs::read_link(wd.join("dangling")).unwrap(),
        Path::new("/nonexistent/target")
    );
    assert!(wd.join("empty").is_dir());

    remove_work_dir(&wd);
    assert!(!wd.exists());
    assert!(
        app.exists(),
        "removing the instance dir must not touch the artifact"
    );
    remove_work_dir(&wd); // already gone: no panic
}

#[tokio::test]
async fn rewrite_changes_only_the_instance_copy() {
    let fx = Fixture::new();
    let original = "worker_processes 1;\nserver {\n    listen 8080;\n    listen  9090;\n}\n";
    let conf = fx.write("conf/nginx.conf", original);
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o640)).unwrap();
    let before = fs::metadata(&conf).unwrap();

    let mut spec = fx.spec("rw", &["cat", "conf/nginx.conf"]);
    // `$1` and `$$` must be inserted verbatim, not read as group references.
    spec.rewrite = vec![
        rewrite(
            "conf/nginx.conf",
            r"listen\s+\d+;",
            "listen ${PORT}; # $1 $$",
        ),
        rewrite(
            "conf/nginx.conf",
            r"worker_processes \d+",
            "worker_processes ${WORKERS}",
        ),
    ];
    spec.env.insert("WORKERS".to_string(), "4".to_string());
    let mut process = started(spec).await;
    bounded(process.wait()).await.unwrap();

    let port = fx.port;
    let expected = format!(
        "worker_processes 4;\nserver {{\n    listen {port}; # $1 $$\n    listen {port}; # $1 $$\n}}\n"
    );
    let copy = process.work_dir().join("conf/nginx.conf");
    assert_eq!(fs::read_to_string(&copy).unwrap(), expected);
    let stdout: Vec<String> = fx.lines().into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        stdout.join("\n") + "\n",
        expected,
        "the process saw the rewritten file"
    );

    // The shared file: same content, same inode, not modified.
    assert_eq!(fs::read_to_string(&conf).unwrap(), original);
    let after = fs::metadata(&conf).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec())
    );
    assert_eq!(
        after.nlink(),
        1,
        "the instance's link was replaced, not kept"
    );
    let copy_meta = fs::metadata(&copy).unwrap();
    assert_ne!(copy_meta.ino(), before.ino());
    assert_eq!(copy_meta.permissions().mode() & 0o777, 0o640);
}

#[tokio::test]
async fn rewrite_errors_are_reported_and_clean_up() {
    let fx = Fixture::new();
    fx.write("nginx.conf", "listen 8080;\n");
    let cases = [
        ("missing", rewrite("nope.conf", "listen", "x")),
        (
            "nomatch",
            rewrite("nginx.conf", r"listen\s+\d+ default;", "x"),
        ),
        ("escape", rewrite("../code/nginx.conf", "listen", "x")),
        ("badregex", rewrite("nginx.conf", "listen (", "x")),
    ];
    for (name, rw) in cases {
        let mut spec = fx.spec(name, &["true"]);
        let work_dir = spec.work_dir.clone();
        spec.rewrite = vec![rw.clone()];
        match spawn(spec).await {
            Err(SandboxError::Rewrite { file, message }) => {
                assert_eq!(file, rw.file, "{name}: {message}");
            }
            Err(other) => panic!("{name}: unexpected error {other}"),
            Ok(_) => panic!("{name}: rewrite should have failed"),
        }
        assert!(!work_dir.exists(), "{name}: instance dir left behind");
    }
    assert_eq!(
        fs::read_to_string(fx.code_dir.join("nginx.conf")).unwrap(),
        "listen 8080;\n"
    );
}

#[tokio::test]
async fn spawn_errors() {
    let fx = Fixture::new();
    let spec = fx.spec("missing-program", &["definitely-not-a-program-rouse"]);
    let work_dir = spec.work_dir.clone();
    let err = spawn(spec).await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Spawn { program, .. } if program == "definitely-not-a-program-rouse"),
        "{err}"
    );
    assert!(!work_dir.exists());

    let err = spawn(fx.spec("empty", &[])).await.unwrap_err();
    assert!(matches!(err, SandboxError::Spawn { .. }), "{err}");

    // An existing instance dir is refused and left alone.
    let taken = fx.instances.join("taken");
    fs::create_dir_all(&taken).unwrap();
    fs::write(taken.join("keep"), "").unwrap();
    let err = spawn(fx.spec("taken", &["true"])).await.unwrap_err();
    assert!(matches!(err, SandboxError::Prepare(_)), "{err}");
    assert!(taken.join("keep").exists());
}

#[tokio::test]
async fn exit_before_ready_is_noticed_promptly() {
    let fx = Fixture::new();
    let mut process =
        started(fx.spec("dies", &["sh", "-c", "echo 'fatal: no config' >&2; exit 3"])).await;
    let start = Instant::now();
    let err = wait_ready(&mut process, fx.port, &tcp(), Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    match err {
        SandboxError::ExitedBeforeReady { status } => assert_eq!(status.code(), Some(3)),
        other => panic!("unexpected {other}"),
    }
    assert_eq!(process.last_lines(), ["fatal: no config"]);
}

#[tokio::test]
async fn never_listening_times_out() {
    let fx = Fixture::new();
    let mut process = started(fx.spec("idle", &["sleep", "30"])).await;
    let start = Instant::now();
    let err = wait_ready(&mut process, fx.port, &tcp(), Duration::from_millis(300))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, SandboxError::ReadinessTimeout(_)), "{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    bounded(process.stop(Duration::from_secs(1))).await;
}

#[tokio::test]
async fn stop_kills_the_whole_group() {
    let fx = Fixture::new();
    let mut process = started(fx.spec(
        "group",
        &[
            "sh",
            "-c",
            "sleep 1000 & echo $! > grandchild.pid; sleep 1000",
        ],
    ))
    .await;
    let grandchild = read_pid_file(&process.work_dir().join("grandchild.pid")).await;
    assert!(!is_dead(grandchild));

    let start = Instant::now();
    bounded(process.stop(Duration::from_secs(5))).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "SIGTERM should have sufficed"
    );
    assert!(bounded(process.wait()).await.is_ok());
    eventually("grandchild to die", Duration::from_secs(2), || {
        is_dead(grandchild)
    })
    .await;

    // Idempotent.
    bounded(process.stop(Duration::from_secs(1))).await;
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_grace() {
    let fx = Fixture::new();
    // Ignored signals stay ignored across fork/exec, so the sleep ignores it too.
    let mut process = started(fx.spec(
        "stubborn",
        &[
            "sh",
            "-c",
            "trap '' TERM; sleep 1000 & echo $! > grandchild.pid; wait",
        ],
    ))
    .await;
    let grandchild = read_pid_file(&process.work_dir().join("grandchild.pid")).await;

    let start = Instant::now();
    bounded(process.stop(Duration::from_millis(300))).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    let status = bounded(process.wait()).await.unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    eventually("grandchild to die", Duration::from_secs(2), || {
        is_dead(grandchild)
    })
    .await;
}

#[tokio::test]
async fn kill_now_and_drop_take_down_grandchildren() {
    let fx = Fixture::new();
    let cmd = &[
        "sh",
        "-c",
        "sleep 1000 & echo $! > grandchild.pid; sleep 1000",
    ];

    let mut process = started(fx.spec("kill-now", cmd)).await;
    let grandchild = read_pid_file(&process.work_dir().join("grandchild.pid")).await;
    process.kill_now();
    process.kill_now(); // already dying: harmless
    bounded(process.wait()).await.unwrap();
    eventually("grandchild to die", Duration::from_secs(2), || {
        is_dead(grandchild)
    })
    .await;

    let process = started(fx.spec("dropped", cmd)).await;
    let grandchild = read_pid_file(&process.work_dir().join("grandchild.pid")).await;
    let leader = process.pid() as i32;
    drop(process);
    eventually("leader to die", Duration::from_secs(2), || is_dead(leader)).await;
    eventually("grandchild to die", Duration::from_secs(2), || {
        is_dead(grandchild)
    })
    .await;
}

#[tokio::test]
async fn wait_is_cancel_safe_and_cached() {
    let fx = Fixture::new();
    let mut process = started(fx.spec("wait", &["sleep", "1000"])).await;
    assert!(process.try_status().is_none());
    assert!(
        tokio::time::timeout(Duration::from_millis(20), process.wait())
            .await
            .is_err()
    );
    process.kill_now();
    let first = bounded(process.wait()).await.unwrap();
    let second = bounded(process.wait()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(process.try_status(), Some(first));
    assert!(!first.success());
}

#[test]
fn process_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Process>();
}
