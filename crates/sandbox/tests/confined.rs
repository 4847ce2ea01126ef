//! Isolated instances with real namespaces and cgroups: exit statuses and
//! signals pass through the namespace's init unchanged, SIGTERM reaches the
//! app, and the memory limit kills. Needs root; as another user each test
//! says why and returns.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rouse_sandbox::cgroup::{self, CgroupTree, Limits};
use rouse_sandbox::isolation::{self, Level};
use rouse_sandbox::{spawn, Isolate, LineSink, Process, SpawnSpec};

struct Fixture {
    root: tempfile::TempDir,
    tree: Arc<CgroupTree>,
}

impl Fixture {
    /// `None` (after saying why) when this host cannot isolate.
    fn new() -> Option<Fixture> {
        if let Some(missing) = isolation::probe().missing_for(Level::Namespaces) {
            assert!(
                !nix::unistd::geteuid().is_root(),
                "running as root, isolation must work: {missing}"
            );
            eprintln!("skipping: {missing}");
            return None;
        }
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(root.path().join("code")).unwrap();
        let kind = cgroup::detect().unwrap();
        let tree = CgroupTree::open(kind, &cgroup::tree_key(root.path())).unwrap();
        Some(Fixture {
            root,
            tree: Arc::new(tree),
        })
    }

    async fn start(&self, name: &str, command: &[&str], memory_mb: u32) -> Process {
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string(),
        );
        let sink: LineSink = Arc::new(|_, line: &str| eprintln!("instance: {line}"));
        spawn(SpawnSpec {
            code_dir: self.root.path().join("code"),
            work_dir: self.root.path().join(name),
            command: command.iter().map(|s| s.to_string()).collect(),
            env,
            rewrite: Vec::new(),
            sink,
            keep_last_lines: 10,
            isolation: Some(Isolate {
                level: Level::Namespaces,
                uid: 201_234,
                cgroups: self.tree.clone(),
                cgroup_name: name.to_string(),
                limits: Limits {
                    memory_mb,
                    pids: cgroup::PIDS_MAX,
                },
                visible: Vec::<PathBuf>::new(),
                no_network: false,
            }),
            listener: None,
        })
        .await
        .unwrap()
    }

    fn cgroup_exists(&self, name: &str) -> bool {
        ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
            .iter()
            .any(|root| {
                Path::new(root)
                    .join("rouse")
                    .join(cgroup::tree_key(self.root.path()))
                    .join(name)
                    .exists()
            })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.tree.remove();
    }
}

#[tokio::test]
async fn exit_codes_and_signals_pass_through_the_namespace_init() {
    let Some(fx) = Fixture::new() else { return };
    let mut exits = fx.start("exits", &["sh", "-c", "exit 3"], 64).await;
    assert_eq!(exits.wait().await.unwrap().code(), Some(3));
    exits.stop(Duration::from_secs(1)).await;
    assert!(!fx.cgroup_exists("exits"), "cgroup removed on stop");

    let mut killed = fx.start("killed", &["sh", "-c", "kill -TERM $$"], 64).await;
    let status = killed.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc_sigterm()), "{status}");
    killed.stop(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sigterm_reaches_the_app_and_stop_is_prompt() {
    let Some(fx) = Fixture::new() else { return };
    let mut sleeper = fx.start("sleeper", &["sleep", "30"], 64).await;
    // Give it a moment to exec, so the signal meets `sleep`, not the setup.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    sleeper.stop(Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "SIGTERM ended the app instead of waiting for SIGKILL: {:?}",
        started.elapsed()
    );
    assert!(!fx.cgroup_exists("sleeper"));
}

#[tokio::test]
async fn the_memory_limit_kills_and_is_reported() {
    let Some(fx) = Fixture::new() else { return };
    let script = "b = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n";
    let mut hungry = fx.start("hungry", &["python3", "-c", script], 64).await;
    let status = hungry.wait().await.unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    assert_eq!(hungry.out_of_memory(), Some(64));
    hungry.stop(Duration::from_secs(1)).await;
    assert_eq!(hungry.out_of_memory(), Some(64), "still known after stop");

    let mut modest = fx.start("modest", &["sh", "-c", "exit 0"], 64).await;
    modest.wait().await.unwrap();
    assert_eq!(modest.out_of_memory(), None);
    modest.stop(Duration::from_secs(1)).await;
}

fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}
