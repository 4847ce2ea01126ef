//! A private PostgreSQL for tests: one cluster per test process, started on
//! first use in a temp dir with the machine's `initdb` and `postgres`
//! (Debian's PostgreSQL under `/usr/lib/postgresql/*/bin/`), listening on
//! 127.0.0.1 and a free port, with its unix socket in the temp dir so it
//! never meets a system PostgreSQL. Each test gets a database of its own.
//!
//! The server dies with the test process (`PR_SET_PDEATHSIG` on a thread
//! that lives as long as the process), and a later run removes the temp
//! dirs of clusters whose server is gone.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

const PREFIX: &str = "rouse-testpg-";

/// A running private cluster.
pub struct Cluster {
    bin: PathBuf,
    port: u16,
    socket_dir: PathBuf,
}

/// The cluster of this test process, started on the first call. `None` (after
/// printing why) when PostgreSQL is not installed, so tests can skip.
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| match find_bin() {
            None => {
                eprintln!(
                    "SKIPPED: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); \
                     `apt-get install postgresql` runs these tests"
                );
                None
            }
            Some(bin) => Some(start(bin).unwrap_or_else(|e| panic!("starting PostgreSQL: {e}"))),
        })
        .as_ref()
}

/// One database of the cluster.
pub struct Database {
    pub name: String,
    /// `postgres://postgres@127.0.0.1:PORT/NAME`
    pub url: String,
    cluster: &'static Cluster,
}

impl Database {
    /// Runs SQL in this database; its output (`psql -At`) on success.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.cluster.psql(&self.name, sql)
    }
}

/// A fresh, empty database on the cluster (`None` without PostgreSQL).
pub fn database() -> Option<Database> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let cluster = cluster()?;
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    cluster
        .psql("postgres", &format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
    Some(Database {
        url: cluster.url(&name),
        name,
        cluster,
    })
}

impl Cluster {
    /// The URL of database `db` (trust authentication, user `postgres`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs SQL with the cluster's `psql`; its output on success.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", &self.socket_dir.to_string_lossy()])
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    // The newest major version when several are installed.
    found.sort();
    found.pop()
}

/// PostgreSQL refuses to run as root: as root, the server runs as the
/// `postgres` user Debian's package creates.
fn server_user() -> Result<Option<(u32, u32)>, String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")
        .map_err(|e| e.to_string())?
        .ok_or("running as root and there is no `postgres` user to run the server as")?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn start(bin: PathBuf) -> Result<Cluster, String> {
    remove_stale_clusters();
    let user = server_user()?;
    let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let data = dir.join("data");
    let out = as_user(&mut Command::new(bin.join("initdb")), user)
        .args(["-D", &data.to_string_lossy()])
        .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = free_port()?;
    spawn_server(&bin, &data, &dir, port, user)?;
    let cluster = Cluster {
        bin,
        port,
        socket_dir: dir,
    };
    wait_ready(&cluster)?;
    Ok(cluster)
}

/// Starts `postgres` from a thread that never ends, so the parent-death
/// signal (sent when the *thread* that forked exits) fires only when the
/// test process does.
fn spawn_server(
    bin: &Path,
    data: &Path,
    dir: &Path,
    port: u16,
    user: Option<(u32, u32)>,
) -> Result<(), String> {
    let mut cmd = Command::new(bin.join("postgres"));
    as_user(&mut cmd, user)
        .args(["-D", &data.to_string_lossy(), "-p", &port.to_string()])
        .args(["-h", "127.0.0.1", "-k", &dir.to_string_lossy()])
        // Durability is not what tests check; this keeps them fast.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?,
        ));
    // Runs after the uid change in the child, which would clear it.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || match cmd.spawn() {
        Ok(mut child) => {
            let _ = tx.send(Ok(()));
            let _ = child.wait();
            // Keep the thread alive: its exit would kill a restarted server.
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            let _ = tx.send(Err(format!("postgres: {e}")));
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}

fn wait_ready(cluster: &Cluster) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match cluster.psql("postgres", "SELECT 1") {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("PostgreSQL did not come up: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Temp dirs of earlier test processes whose server has gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
