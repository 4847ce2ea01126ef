//! The one thread that appends log lines to the files.
//!
//! Callers queue lines and return; the thread takes everything queued at
//! once and writes each run of lines of one function with a single
//! `write`. A `write` to a file can block for milliseconds when the disk is
//! busy (the kernel throttles processes that dirty pages faster than they
//! are written back), and before this thread that wait fell on whoever
//! logged: a gateway thread between a lambda's response and its caller.
//! Past [`MAX_QUEUED_BYTES`] callers wait for the disk again, so a flood of
//! output costs memory only up to a bound and no line is dropped.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// Log files kept open at once; the least recently written is closed first.
pub(crate) const MAX_OPEN_FILES: usize = 128;

/// Bytes queued and not yet taken by the thread past which writers wait.
const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

pub(crate) fn path(dir: &Path, function: &str) -> PathBuf {
    // Function names are validated to [A-Za-z0-9_-], so they are safe file names.
    dir.join(format!("{function}.log"))
}

pub(crate) struct Writer {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

struct Queue {
    pending: Mutex<Pending>,
    /// Wakes the thread when it waits for work.
    work: Condvar,
    /// Wakes callers waiting for lines to reach the files.
    written: Condvar,
}

#[derive(Default)]
struct Pending {
    ops: Vec<Op>,
    bytes: usize,
    /// Operations ever queued / ever carried out: a caller that queued the
    /// n-th knows it is on disk once `done >= n`.
    queued: u64,
    done: u64,
    /// The thread is waiting on `work` (only then is it worth a wake-up).
    idle: bool,
    /// Callers waiting on `written`.
    waiting: usize,
    stop: bool,
    open_files: usize,
}

enum Op {
    Append { function: String, text: String },
    Remove(String),
}

impl Writer {
    pub(crate) fn start(dir: PathBuf) -> std::io::Result<Writer> {
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending::default()),
            work: Condvar::new(),
            written: Condvar::new(),
        });
        let thread_queue = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("rouse-logs".into())
            .spawn(move || run(&dir, &thread_queue))?;
        Ok(Writer {
            queue,
            thread: Some(thread),
        })
    }

    /// Queues `text` (whole lines) for the file of `function`.
    pub(crate) fn append(&self, function: &str, text: String) {
        let mut pending = self.queue.lock();
        while pending.bytes > MAX_QUEUED_BYTES && !pending.stop {
            pending = self.queue.wait_written(pending);
        }
        pending.bytes += text.len();
        self.queue.push(
            pending,
            Op::Append {
                function: function.to_string(),
                text,
            },
        );
    }

    /// Closes and deletes the file of `function` once what was queued
    /// before is written; returns when it is gone.
    pub(crate) fn remove(&self, function: &str) {
        let pending = self.queue.lock();
        let n = self.queue.push(pending, Op::Remove(function.to_string()));
        self.queue.wait_done(self.queue.lock(), n);
    }

    /// Returns once every line queued before the call is in its file.
    pub(crate) fn flush(&self) {
        let pending = self.queue.lock();
        let n = pending.queued;
        self.queue.wait_done(pending, n);
    }

    pub(crate) fn open_files(&self) -> usize {
        self.queue.lock().open_files
    }
}

impl Drop for Writer {
    /// Writes what is queued, then stops the thread.
    fn drop(&mut self) {
        let mut pending = self.queue.lock();
        pending.stop = true;
        drop(pending);
        self.queue.work.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // Every update keeps `Pending` consistent, so a poisoned lock is usable.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `op`; returns its number for [`Queue::wait_done`].
    fn push(&self, mut pending: MutexGuard<'_, Pending>, op: Op) -> u64 {
        pending.ops.push(op);
        pending.queued += 1;
        let n = pending.queued;
        let wake = std::mem::take(&mut pending.idle);
        drop(pending);
        if wake {
            self.work.notify_one();
        }
        n
    }

    fn wait_done(&self, mut pending: MutexGuard<'_, Pending>, n: u64) {
        while pending.done < n {
            pending = self.wait_written(pending);
        }
    }

    fn wait_written<'a>(&self, mut pending: MutexGuard<'a, Pending>) -> MutexGuard<'a, Pending> {
        pending.waiting += 1;
        let mut pending = self
            .written
            .wait(pending)
            .unwrap_or_else(|e| e.into_inner());
        pending.waiting -= 1;
        pending
    }
}

/// The thread: take all queued operations, carry them out, repeat; after
/// `stop`, finish what is queued and return.
fn run(dir: &Path, queue: &Queue) {
    let mut files = Files::new(dir);
    loop {
        let (ops, upto) = {
            let mut pending = queue.lock();
            while pending.ops.is_empty() {
                if pending.stop {
                    return;
                }
                pending.idle = true;
                pending = queue.work.wait(pending).unwrap_or_else(|e| e.into_inner());
            }
            pending.idle = false;
            pending.bytes = 0;
            (std::mem::take(&mut pending.ops), pending.queued)
        };
        files.apply(ops);
        let mut pending = queue.lock();
        pending.done = upto;
        pending.open_files = files.open.len();
        let waiting = pending.waiting > 0;
        drop(pending);
        if waiting {
            queue.written.notify_all();
        }
    }
}

/// The open files, owned by the thread.
struct Files<'a> {
    dir: &'a Path,
    open: HashMap<String, OpenFile>,
    /// Counts writes, to find the least recently written file.
    clock: u64,
}

struct OpenFile {
    file: File,
    last_write: u64,
}

impl<'a> Files<'a> {
    fn new(dir: &'a Path) -> Files<'a> {
        Files {
            dir,
            open: HashMap::new(),
            clock: 0,
        }
    }

    /// Carries out `ops` in order, joining each run of appends to one
    /// function into one write.
    fn apply(&mut self, ops: Vec<Op>) {
        let mut run: Option<(String, String)> = None;
        for op in ops {
            match op {
                Op::Append { function, text } => match &mut run {
                    Some((current, buf)) if *current == function => buf.push_str(&text),
                    _ => {
                        if let Some((current, buf)) = run.replace((function, text)) {
                            self.write(&current, buf.as_bytes());
                        }
                    }
                },
                Op::Remove(function) => {
                    if let Some((current, buf)) = run.take() {
                        self.write(&current, buf.as_bytes());
                    }
                    self.open.remove(&function);
                    let _ = std::fs::remove_file(path(self.dir, &function));
                }
            }
        }
        if let Some((current, buf)) = run {
            self.write(&current, buf.as_bytes());
        }
    }

    fn write(&mut self, function: &str, bytes: &[u8]) {
        self.clock += 1;
        let now = self.clock;
        if !self.open.contains_key(function) {
            if self.open.len() >= MAX_OPEN_FILES {
                self.close_least_recent();
            }
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(path(self.dir, function))
            {
                Ok(file) => {
                    self.open.insert(
                        function.to_string(),
                        OpenFile {
                            file,
                            last_write: now,
                        },
                    );
                }
                Err(err) => tracing::warn!(function, %err, "cannot open log file"),
            }
        }
        if let Some(open) = self.open.get_mut(function) {
            open.last_write = now;
            if let Err(err) = open.file.write_all(bytes) {
                tracing::warn!(function, %err, "cannot append to log file");
            }
        }
    }

    fn close_least_recent(&mut self) {
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, f)| f.last_write)
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            self.open.remove(&name);
        }
    }
}
