//! Spawning, preparing, probing and killing one function instance.
//!
//! The pool decides *when* an instance starts and stops; this crate knows *how*:
//! lay out the instance's working directory, rewrite its config files, start the
//! command in its own process group with its output captured line by line, wait
//! for readiness, and kill the whole group.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use rouse_manifest::{Readiness, Rewrite};

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
}

/// A running instance process (the leader of its own process group).
pub struct Process {
    _private: (),
}

impl Process {
    pub fn pid(&self) -> u32 {
        todo!()
    }

    /// Waits for the process to exit. Cancel-safe; may be called again after a cancel.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        todo!()
    }

    /// SIGTERM to the whole group, then SIGKILL to the group after `grace`; waits
    /// for the leader. Idempotent.
    pub async fn stop(&mut self, grace: Duration) {
        let _ = grace;
        todo!()
    }

    /// SIGKILL to the whole group, without waiting.
    pub fn kill_now(&self) {
        todo!()
    }

    /// The last captured output lines (both streams, in arrival order).
    pub fn last_lines(&self) -> Vec<String> {
        todo!()
    }

    pub fn work_dir(&self) -> &Path {
        todo!()
    }
}

/// Substitutes `${NAME}` from `vars`; unknown names are left as written.
pub fn substitute(template: &str, vars: &BTreeMap<String, String>) -> String {
    let _ = (template, vars);
    todo!()
}

/// Lays out `work_dir` from `code_dir` (cheaply: hard links where possible),
/// applies the rewrites to the instance's own copies, substitutes the command
/// with `spec.env`, and starts it in a new process group with stdout/stderr
/// captured. `PORT` etc. are expected in `spec.env` already.
pub async fn spawn(spec: SpawnSpec) -> Result<Process, SandboxError> {
    let _ = spec;
    todo!()
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
    let _ = (process, port, readiness, timeout);
    todo!()
}

/// A free TCP port on 127.0.0.1 (bind to 0, read it back, release it).
pub fn free_port() -> std::io::Result<u16> {
    todo!()
}

/// Removes an instance directory after the process is gone.
pub fn remove_work_dir(dir: &Path) {
    let _ = dir;
    todo!()
}
