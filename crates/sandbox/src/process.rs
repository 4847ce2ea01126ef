//! Starting the instance command and owning its process group: output
//! capture, waiting, and group-wide signals.

use std::collections::{BTreeMap, VecDeque};
use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::activation::Activation;
use crate::cgroup::Cgroup;
use crate::confine::Plan;
use crate::output_sync::{Counted, OutputSync, PipeMeter};
use crate::{LineSink, SandboxError, Stream};

/// Lines longer than this are delivered in pieces, so an instance printing
/// megabytes without a newline cannot make us buffer without bound.
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024;

/// After the leader exits, how long `wait` gives the output readers to reach
/// end-of-file. Normally microseconds; bounded because a surviving grandchild
/// may hold the pipes open indefinitely.
const OUTPUT_DRAIN: Duration = Duration::from_millis(100);

/// A running instance process (the leader of its own process group).
pub struct Process {
    child: Child,
    /// Also the process group id (the child was started with `process_group(0)`).
    pid: u32,
    work_dir: PathBuf,
    /// Set once the leader has been reaped; from then on `child` is finished.
    status: Option<ExitStatus>,
    lines: Arc<LineRing>,
    /// The stdout and stderr readers; `None` once finished.
    readers: [Option<JoinHandle<()>>; 2],
    output: OutputSync,
    output_drained: bool,
    /// SIGKILL has gone to the group; later stops need not signal again.
    group_killed: AtomicBool,
    /// The instance's cgroup while it exists (isolated instances only).
    cgroup: Option<Cgroup>,
    /// OOM kills seen when the cgroup was removed.
    oom_kills: u64,
    memory_limit_mb: u32,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("work_dir", &self.work_dir)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to exit. Cancel-safe; may be called again after a cancel.
    ///
    /// Also gives the output readers a moment to catch up, so `last_lines`
    /// afterwards includes what the process printed just before it exited
    /// (usually the reason it did).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = match self.status {
            Some(status) => status,
            None => {
                // tokio's `Child::wait` is cancel-safe: it records the status in
                // the same poll that reaps, and we store it in that poll too.
                let status = self.child.wait().await?;
                self.status = Some(status);
                status
            }
        };
        if !self.output_drained {
            let _ = tokio::time::timeout(OUTPUT_DRAIN, self.readers_done()).await;
            self.output_drained = true;
        }
        Ok(status)
    }

    /// The exit status if the leader has already exited, without blocking.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
            }
        }
        self.status
    }

    /// SIGTERM to the whole group, then SIGKILL to the group after `grace`; waits
    /// for the leader. Idempotent.
    ///
    /// SIGKILL follows even when the leader exits within `grace`: children it
    /// left behind (a backgrounded daemon, a worker that ignores SIGTERM) are
    /// still in the group and must not outlive the instance.
    pub async fn stop(&mut self, grace: Duration) {
        if self.status.is_some() && self.group_killed.load(Ordering::Relaxed) {
            return;
        }
        if !self.group_killed.load(Ordering::Relaxed) {
            self.signal_group(Signal::SIGTERM);
            if tokio::time::timeout(grace, self.wait()).await.is_err() {
                tracing::debug!(pid = self.pid, ?grace, "instance ignored SIGTERM, killing");
            }
        }
        self.kill_now();
        if let Err(err) = self.wait().await {
            tracing::warn!(pid = self.pid, error = %err, "waiting for a killed instance");
        }
        if let Some(cgroup) = self.cgroup.take() {
            self.oom_kills = cgroup.oom_kills();
            // Removal retries while the last processes finish exiting.
            let _ = tokio::task::spawn_blocking(move || cgroup.remove()).await;
        }
    }

    /// SIGKILL to the whole group (and to everything in its cgroup, which
    /// also catches processes that left the group), without waiting.
    pub fn kill_now(&self) {
        self.signal_group(Signal::SIGKILL);
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
        }
        self.group_killed.store(true, Ordering::Relaxed);
    }

    /// The memory limit in MB if the kernel killed a process of this
    /// instance for exceeding it (isolated instances only).
    pub fn out_of_memory(&self) -> Option<u32> {
        let kills = match &self.cgroup {
            Some(cgroup) => cgroup.oom_kills(),
            None => self.oom_kills,
        };
        (kills > 0).then_some(self.memory_limit_mb)
    }

    /// Where the kernel keeps the most memory the instance (all its
    /// processes) has used, in bytes, when it has a cgroup.
    pub fn peak_memory_file(&self) -> Option<PathBuf> {
        self.cgroup.as_ref().map(Cgroup::peak_memory_file)
    }

    /// Tells when what the process has written so far has reached the sink.
    pub fn output_sync(&self) -> OutputSync {
        self.output.clone()
    }

    /// The last captured output lines (both streams, in arrival order).
    pub fn last_lines(&self) -> Vec<String> {
        self.lines.snapshot()
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    fn signal_group(&self, signal: Signal) {
        let Ok(pgid) = i32::try_from(self.pid) else {
            return;
        };
        match killpg(Pid::from_raw(pgid), signal) {
            // The whole group is already gone.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(err) => {
                tracing::warn!(pgid, ?signal, error = %err, "signalling instance process group")
            }
        }
    }

    async fn readers_done(&mut self) {
        for slot in &mut self.readers {
            if let Some(handle) = slot {
                // Awaiting `&mut JoinHandle` is cancel-safe; clear the slot only
                // once it has finished so it is never polled after completion.
                let _ = handle.await;
                *slot = None;
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // `kill_on_drop` only reaches the leader. While the leader is unreaped
        // its pid cannot be reused, so signalling the group is safe here.
        if self.status.is_none() {
            self.signal_group(Signal::SIGKILL);
        }
        if let Some(cgroup) = self.cgroup.take() {
            cgroup.remove();
        }
    }
}

/// Starts `argv` in `work_dir` with exactly `env`, as the leader of a new
/// process group, with its output pumped into `sink`.
pub(crate) fn start(
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    work_dir: PathBuf,
    sink: LineSink,
    keep_last_lines: usize,
    confined: Option<(Plan, Cgroup)>,
    listener: Option<std::net::TcpListener>,
) -> Result<Process, SandboxError> {
    let Some(program) = argv.first() else {
        return Err(SandboxError::Spawn {
            program: String::new(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        });
    };
    let spawn_error = |source| SandboxError::Spawn {
        program: program.clone(),
        source,
    };

    let path_var = env
        .get("PATH")
        .map(|p| p.clone().into())
        .or_else(|| std::env::var_os("PATH"));
    // An instance running as a function uid cannot execute what only root
    // can reach (a `/root/.pyenv/shims/python3` early in PATH, say).
    let for_others = confined.is_some();
    let resolved = resolve_program(program, &work_dir, path_var.as_deref(), for_others)
        .map_err(spawn_error)?;

    let mut command = Command::new(&resolved);
    command
        .arg0(program)
        .args(&argv[1..])
        .env_clear()
        .envs(&env)
        .current_dir(&work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so one killpg reaches everything it starts.
        .process_group(0)
        .kill_on_drop(true);
    let (plan, cgroup) = match confined {
        Some((plan, cgroup)) => (Some(plan), Some(cgroup)),
        None => (None, None),
    };
    let activation = match listener
        .map(|listener| Activation::new(listener, &resolved, &argv, &env))
        .transpose()
    {
        Ok(activation) => activation,
        Err(err) => {
            if let Some(cgroup) = cgroup {
                cgroup.remove();
            }
            return Err(spawn_error(err));
        }
    };
    let parent = nix::libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    let mut activation = activation;
    // SAFETY: `enter`, `die_with_parent` and `exec` only make raw,
    // async-signal-safe syscalls on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            match &plan {
                Some(plan) => plan.enter(parent)?,
                None => crate::confine::die_with_parent(parent)?,
            }
            match &mut activation {
                Some(activation) => activation.exec(),
                None => Ok(()),
            }
        });
    }
    let spawned = command.spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            if let Some(cgroup) = cgroup {
                cgroup.remove();
            }
            return Err(spawn_error(err));
        }
    };
    let memory_limit_mb = cgroup.as_ref().map_or(0, Cgroup::memory_limit_mb);

    let pid = child
        .id()
        .ok_or_else(|| spawn_error(io::Error::other("child exited before its pid was read")))?;
    let lines = Arc::new(LineRing::new(keep_last_lines));
    let out_meter = Arc::new(PipeMeter::new(child.stdout.as_ref()));
    let err_meter = Arc::new(PipeMeter::new(child.stderr.as_ref()));
    let output = OutputSync::new(vec![out_meter.clone(), err_meter.clone()]);
    let stdout = child.stdout.take().map(|out| {
        let reader = Counted::new(out, out_meter.clone());
        tokio::spawn(pump(
            reader,
            Stream::Stdout,
            sink.clone(),
            lines.clone(),
            out_meter,
        ))
    });
    let stderr = child.stderr.take().map(|err| {
        let reader = Counted::new(err, err_meter.clone());
        tokio::spawn(pump(reader, Stream::Stderr, sink, lines.clone(), err_meter))
    });

    tracing::debug!(pid, program = %resolved.display(), work_dir = %work_dir.display(), "instance started");
    Ok(Process {
        child,
        pid,
        work_dir,
        status: None,
        lines,
        readers: [stdout, stderr],
        output,
        output_drained: false,
        group_killed: AtomicBool::new(false),
        cgroup,
        oom_kills: 0,
        memory_limit_mb,
    })
}

/// Finds the executable for `program`: a path with a slash is taken relative
/// to `work_dir` (the instance's cwd, so `./server` means the artifact's
/// server); a bare name is looked up in `path_var`.
///
/// Resolving here rather than leaving it to exec makes the lookup use the
/// instance's PATH and the relative path independent of our own cwd.
pub(crate) fn resolve_program(
    program: &str,
    work_dir: &Path,
    path_var: Option<&OsStr>,
    for_others: bool,
) -> io::Result<PathBuf> {
    if program.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty program name",
        ));
    }
    if program.contains('/') {
        return Ok(work_dir.join(program));
    }
    let found = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| {
            // An empty PATH entry traditionally means the current directory.
            let dir = if dir.as_os_str().is_empty() {
                work_dir.to_path_buf()
            } else {
                work_dir.join(dir)
            };
            dir.join(program)
        })
        .find(|candidate| {
            is_executable(candidate) && (!for_others || reachable_by_others(candidate))
        });
    found.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{program:?} not found in PATH"),
        )
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a user other than the owner may execute `path`: the file has
/// `o+x` and every directory above it `o+x`.
fn reachable_by_others(path: &Path) -> bool {
    path.ancestors()
        .all(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// The most recent output lines, shared between the two readers.
struct LineRing {
    capacity: usize,
    lines: Mutex<VecDeque<String>>,
}

impl LineRing {
    fn new(capacity: usize) -> Self {
        LineRing {
            capacity,
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
        }
    }

    fn push(&self, line: String) {
        if self.capacity == 0 {
            return;
        }
        // A panicking sink cannot leave the deque half-updated; keep going.
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn snapshot(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

/// Reads `reader` to end-of-file, handing each line to `sink` and the ring,
/// and telling `meter` what has been handed over.
async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    stream: Stream,
    sink: LineSink,
    ring: Arc<LineRing>,
    meter: Arc<PipeMeter>,
) {
    let mut reader = BufReader::with_capacity(8 * 1024, reader);
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(buf) => buf,
            Err(err) => {
                tracing::debug!(?stream, error = %err, "reading instance output");
                break;
            }
        };
        let room = MAX_LINE_BYTES - line.len();
        let window = &buf[..buf.len().min(room)];
        match window.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                line.extend_from_slice(&window[..newline]);
                reader.consume(newline + 1);
                emit(&mut line, stream, &sink, &ring);
                meter.delivered(newline + 1);
            }
            None => {
                let taken = window.len();
                line.extend_from_slice(window);
                reader.consume(taken);
                if line.len() >= MAX_LINE_BYTES {
                    emit(&mut line, stream, &sink, &ring);
                }
                meter.delivered(taken);
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line, stream, &sink, &ring);
    }
}

fn emit(line: &mut Vec<u8>, stream: Stream, sink: &LineSink, ring: &LineRing) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text = String::from_utf8_lossy(line).into_owned();
    line.clear();
    // Ring first: whoever the sink notifies can already see the line in
    // `last_lines`.
    ring.push(text.clone());
    sink(stream, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_last_lines() {
        let ring = LineRing::new(2);
        for line in ["a", "b", "c"] {
            ring.push(line.to_string());
        }
        assert_eq!(ring.snapshot(), ["b", "c"]);
        let none = LineRing::new(0);
        none.push("x".to_string());
        assert!(none.snapshot().is_empty());
    }

    #[test]
    fn resolve_relative_and_bare_names() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve_program("./server", dir.path(), None, false).unwrap(),
            dir.path().join("./server")
        );
        assert_eq!(
            resolve_program("/bin/sh", dir.path(), None, false).unwrap(),
            Path::new("/bin/sh")
        );

        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths(["/nonexistent", bin.to_str().unwrap()]).unwrap();
        // Not executable yet: skipped.
        assert!(resolve_program("tool", dir.path(), Some(&path), false).is_err());
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            resolve_program("tool", dir.path(), Some(&path), false).unwrap(),
            tool
        );
        // Behind a 0700 directory, others cannot reach the tool.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(resolve_program("tool", dir.path(), Some(&path), true).is_err());
        assert!(
            resolve_program("sh", dir.path(), Some(std::ffi::OsStr::new("/bin")), true).is_ok()
        );

        let err = resolve_program("no-such-tool", dir.path(), Some(&path), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(resolve_program("", dir.path(), Some(&path), false).is_err());
    }

    #[tokio::test]
    async fn pump_splits_lines_and_long_lines() {
        let long = "x".repeat(MAX_LINE_BYTES * 2 + 10);
        let input = format!("one\r\ntwo\n{long}\n\nlast");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink: LineSink = {
            let seen = seen.clone();
            Arc::new(move |stream, line: &str| {
                seen.lock().unwrap().push((stream, line.to_string()))
            })
        };
        let ring = Arc::new(LineRing::new(10));
        let meter = Arc::new(PipeMeter::new(None::<&std::fs::File>));
        let reader = Counted::new(input.as_bytes(), meter.clone());
        pump(reader, Stream::Stderr, sink, ring.clone(), meter.clone()).await;
        let sync = OutputSync::new(vec![meter]);
        assert!(sync.settled(), "every byte read was handed over");

        let seen = seen.lock().unwrap();
        let lines: Vec<&str> = seen.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(
            lines.len(),
            7,
            "{:?}",
            lines.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines[0], "one");
        assert_eq!(lines[1], "two");
        assert_eq!(lines[2].len(), MAX_LINE_BYTES);
        assert_eq!(lines[3].len(), MAX_LINE_BYTES);
        assert_eq!(lines[4].len(), 10);
        assert_eq!(lines[5], "");
        assert_eq!(lines[6], "last");
        assert!(seen.iter().all(|(s, _)| *s == Stream::Stderr));
        assert_eq!(ring.snapshot().len(), 7);
    }

    #[tokio::test]
    async fn pump_is_lossy_on_invalid_utf8() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink: LineSink = {
            let seen = seen.clone();
            Arc::new(move |_, line: &str| seen.lock().unwrap().push(line.to_string()))
        };
        pump(
            &b"ok \xff\xfe end\n"[..],
            Stream::Stdout,
            sink,
            Arc::new(LineRing::new(1)),
            Arc::new(PipeMeter::new(None::<&std::fs::File>)),
        )
        .await;
        assert_eq!(*seen.lock().unwrap(), ["ok \u{fffd}\u{fffd} end"]);
    }
}
