//! Spawning, preparing, probing and killing one function instance.
//!
//! The pool decides *when* an instance starts and stops; this crate knows *how*:
//! lay out the instance's working directory, rewrite its config files, start the
//! command in its own process group with its output captured line by line, wait
//! for readiness, and kill the whole group.

mod activation;
pub mod cgroup;
mod confine;
pub mod confinement;
pub mod isolation;
mod layout;
pub mod netguard;
mod output_sync;
pub mod peer;
mod process;
pub mod procfs;
mod readiness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use rouse_manifest::{Readiness, Rewrite};

pub use confinement::Confinement;
pub use output_sync::OutputSync;
pub use process::Process;

/// Which output stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives every line the instance writes, without the trailing newline.
pub type LineSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("preparing the instance directory: {0}")]
    Prepare(#[source] std::io::Error),
    #[error("rewrite of {file}: {message}")]
    Rewrite { file: String, message: String },
    #[error("starting {program:?}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("isolating the instance: {0}")]
    Isolate(#[source] std::io::Error),
    #[error("the instance exited before it was ready ({status})")]
    ExitedBeforeReady { status: ExitStatus },
    #[error("the instance was not ready within {0:?}")]
    ReadinessTimeout(Duration),
}

/// Everything needed to start one instance.
pub struct SpawnSpec {
    /// Extracted artifact, shared by all instances of a version; never written to.
    pub code_dir: PathBuf,
    /// The instance's own directory (created; must not exist yet). Becomes the cwd.
    pub work_dir: PathBuf,
    /// argv before substitution.
    pub command: Vec<String>,
    /// Full environment of the child (the parent's is not inherited except PATH,
    /// HOME, LANG, which the caller includes if it wants them).
    pub env: BTreeMap<String, String>,
    pub rewrite: Vec<Rewrite>,
    /// Receives the instance's output lines.
    pub sink: LineSink,
    /// How many of the last output lines to keep for error reports.
    pub keep_last_lines: usize,
    /// Confinement beyond a process group; `None` runs it as rouse's user.
    pub isolation: Option<Isolate>,
    /// Socket activation: this listening socket becomes the app's fd 3.
    pub listener: Option<std::net::TcpListener>,
}

/// How to confine one instance (levels `process` and `namespaces`).
pub struct Isolate {
    /// `Process` or `Namespaces`.
    pub level: isolation::Level,
    /// The function's uid (and gid).
    pub uid: u32,
    /// The server's cgroup tree; the instance gets `cgroup_name` in it.
    pub cgroups: Arc<cgroup::CgroupTree>,
    pub cgroup_name: String,
    pub limits: cgroup::Limits,
    /// Directories besides the instance dir it must read (runtime bootstraps).
    pub visible: Vec<PathBuf>,
    /// A network namespace of its own with nothing in it (needs `Namespaces`).
    pub no_network: bool,
}

/// Substitutes `${NAME}` from `vars`; unknown names are left as written.
///
/// Only the braced form is recognised: `$NAME` and `$$` have no special meaning
/// and pass through unchanged, so shell snippets and nginx variables (`$host`)
/// in commands and rewrites survive.
pub fn substitute(template: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => match vars.get(&after[..end]) {
                Some(value) => {
                    out.push_str(value);
                    rest = &after[end + 1..];
                }
                None => {
                    // Keep the `${` and rescan after it, so a known name nested
                    // inside an unknown-looking one is still found.
                    out.push_str("${");
                    rest = after;
                }
            },
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lays out `work_dir` from `code_dir` (cheaply: hard links where possible),
/// applies the rewrites to the instance's own copies, substitutes the command
/// with `spec.env`, and starts it in a new process group with stdout/stderr
/// captured. `PORT` etc. are expected in `spec.env` already.
///
/// On failure after `work_dir` was created, it is removed again so failed cold
/// starts do not pile up directories.
pub async fn spawn(spec: SpawnSpec) -> Result<Process, SandboxError> {
    let SpawnSpec {
        code_dir,
        work_dir,
        command,
        env,
        rewrite,
        sink,
        keep_last_lines,
        isolation,
        listener,
    } = spec;

    let argv: Vec<String> = command.iter().map(|arg| substitute(arg, &env)).collect();

    if let Some(iso) = &isolation {
        netguard::admit(iso.uid)
            .await
            .map_err(SandboxError::Isolate)?;
    }

    // Mirroring a large artifact is many blocking syscalls; keep them off the
    // async workers that are proxying requests.
    let prepared = {
        let work_dir = work_dir.clone();
        let env = env.clone();
        let owner = isolation.as_ref().map(|iso| iso.uid);
        tokio::task::spawn_blocking(move || {
            layout::prepare(&code_dir, &work_dir, &rewrite, &env, owner)
        })
        .await
    };
    match prepared {
        Ok(Ok(())) => {}
        // `Created`: the directory is ours, so clean it up.
        Ok(Err(layout::PrepareFailure::Created(err))) => {
            remove_work_dir(&work_dir);
            return Err(err);
        }
        Ok(Err(layout::PrepareFailure::NotCreated(err))) => return Err(err),
        Err(join) => {
            remove_work_dir(&work_dir);
            return Err(SandboxError::Prepare(std::io::Error::other(join)));
        }
    }

    let confined = match isolation.map(|iso| confine(iso, &work_dir)).transpose() {
        Ok(confined) => confined,
        Err(err) => {
            remove_work_dir(&work_dir);
            return Err(SandboxError::Isolate(err));
        }
    };
    let started = process::start(
        argv,
        env,
        work_dir.clone(),
        sink,
        keep_last_lines,
        confined,
        listener,
    );
    match started {
        Ok(process) => Ok(process),
        Err(err) => {
            remove_work_dir(&work_dir);
            Err(err)
        }
    }
}

/// Creates the instance's cgroup and prepares what the child does before
/// exec; the cgroup is removed again if preparing fails.
fn confine(iso: Isolate, work_dir: &Path) -> std::io::Result<(confine::Plan, cgroup::Cgroup)> {
    let namespaces = iso.level >= isolation::Level::Namespaces;
    if iso.no_network && !namespaces {
        return Err(std::io::Error::other(format!(
            "`network: none` needs namespace isolation; this server runs with `--isolation {}`",
            iso.level
        )));
    }
    let cgroup = iso.cgroups.create(&iso.cgroup_name, iso.limits)?;
    let plan = cgroup.open_procs().and_then(|procs| {
        confine::Plan::new(
            procs,
            iso.uid,
            namespaces.then_some(confine::NamespaceOptions {
                network: !iso.no_network,
            }),
            work_dir,
            &iso.visible,
        )
    });
    match plan {
        Ok(plan) => Ok((plan, cgroup)),
        Err(err) => {
            cgroup.remove();
            Err(err)
        }
    }
}

/// Waits until the instance accepts connections on `127.0.0.1:port` (TCP connect)
/// or, when `readiness.path` is set, answers a GET on it with 2xx. Polls with a
/// back-off starting in the tens of microseconds. Fails early if the process
/// exits, and after `timeout`.
pub async fn wait_ready(
    process: &mut Process,
    port: u16,
    readiness: &Readiness,
    timeout: Duration,
) -> Result<(), SandboxError> {
    readiness::wait_ready(process, port, readiness, timeout).await
}

/// A free TCP port on 127.0.0.1 (bind to 0, read it back, release it).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Removes an instance directory after the process is gone.
///
/// Best effort: a leftover directory costs disk space, not correctness, so a
/// failure is only logged.
pub fn remove_work_dir(dir: &Path) {
    if let Err(err) = std::fs::remove_dir_all(dir) {
        tracing::debug!(dir = %dir.display(), error = %err, "could not remove instance directory");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitute_known_names() {
        let v = vars(&[("PORT", "8123"), ("HOST", "127.0.0.1")]);
        assert_eq!(substitute("listen ${PORT};", &v), "listen 8123;");
        assert_eq!(substitute("${HOST}:${PORT}", &v), "127.0.0.1:8123");
        assert_eq!(substitute("${PORT}${PORT}", &v), "81238123");
        assert_eq!(substitute("no vars", &v), "no vars");
        assert_eq!(substitute("", &v), "");
        assert_eq!(substitute("é${PORT}ü", &v), "é8123ü");
    }

    #[test]
    fn substitute_leaves_unknown_and_other_dollar_forms() {
        let v = vars(&[("PORT", "8123")]);
        assert_eq!(substitute("${NOPE}", &v), "${NOPE}");
        assert_eq!(substitute("$PORT", &v), "$PORT");
        assert_eq!(substitute("$$", &v), "$$");
        assert_eq!(substitute("$$ ${PORT}", &v), "$$ 8123");
        assert_eq!(substitute("${}", &v), "${}");
        assert_eq!(substitute("${PORT", &v), "${PORT");
        assert_eq!(substitute("a ${ b", &v), "a ${ b");
        assert_eq!(substitute("$", &v), "$");
        assert_eq!(substitute("${X${PORT}}", &v), "${X8123}");
    }

    #[test]
    fn substitute_does_not_rescan_values() {
        let v = vars(&[("A", "${B}"), ("B", "b")]);
        assert_eq!(substitute("${A}", &v), "${B}");
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
