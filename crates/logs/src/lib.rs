//! Per-function log files with live tailing.
//!
//! Every line an instance writes, and every platform event (cold start, stop,
//! crash), is appended to `logs/<function>.log` under the data directory with a
//! timestamp and its source, and fanned out to live `--tail` subscribers.
//! Files are the durable record; the broadcast is best-effort (a slow tail
//! reader skips lines rather than slowing the instance down).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

/// Lines kept for a tail subscriber that falls behind.
const TAIL_BUFFER: usize = 1024;
/// Source name of lines rouse itself writes about a function.
pub const PLATFORM: &str = "platform";

pub struct LogBook {
    dir: PathBuf,
    state: Mutex<State>,
}

/// Open files and live tails. Only functions that log often or are being
/// tailed are here, so ten thousand idle functions cost neither file
/// descriptors nor tail buffers.
#[derive(Default)]
struct State {
    files: HashMap<String, OpenFile>,
    tails: HashMap<String, broadcast::Sender<Arc<str>>>,
    /// Counts writes, to find the least recently written file.
    clock: u64,
}

struct OpenFile {
    file: File,
    last_write: u64,
}

/// Log files kept open at once; the least recently written is closed first.
const MAX_OPEN_FILES: usize = 128;

impl LogBook {
    pub fn open(dir: &Path) -> std::io::Result<LogBook> {
        std::fs::create_dir_all(dir)?;
        Ok(LogBook {
            dir: dir.to_path_buf(),
            state: Mutex::new(State::default()),
        })
    }

    /// Appends one line from `source` (an instance id, or [`PLATFORM`]).
    pub fn write(&self, function: &str, source: &str, message: &str) {
        // One buffer with the newline, so the file gets a single write.
        let mut text = format!(
            "{} [{source}] {message}\n",
            humantime::format_rfc3339_millis(SystemTime::now())
        );
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        if !state.files.contains_key(function) {
            if state.files.len() >= MAX_OPEN_FILES {
                state.close_least_recent();
            }
            match self.open_file(function) {
                Ok(file) => {
                    state.files.insert(
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
        if let Some(open) = state.files.get_mut(function) {
            open.last_write = now;
            if let Err(err) = open.file.write_all(text.as_bytes()) {
                tracing::warn!(function, %err, "cannot append to log file");
            }
        }
        if let Some(live) = state.tails.get(function) {
            text.pop();
            if live.send(Arc::from(text)).is_err() {
                // Every tail has gone: free the buffer until the next one.
                state.tails.remove(function);
            }
        }
    }

    /// A platform event about `function`.
    pub fn platform(&self, function: &str, message: &str) {
        self.write(function, PLATFORM, message);
    }

    /// The last `lines` lines of the function's log file.
    pub fn last_lines(&self, function: &str, lines: usize) -> std::io::Result<Vec<String>> {
        let path = self.path(function);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        // Read only the end of big files: 512 bytes a line is generous.
        let len = file.metadata()?.len();
        let window = (lines as u64).saturating_mul(512).max(64 * 1024);
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut out: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        if start > 0 && !out.is_empty() {
            out.remove(0); // probably a partial line
        }
        let skip = out.len().saturating_sub(lines);
        Ok(out.split_off(skip))
    }

    /// Live lines of `function` from now on.
    pub fn subscribe(&self, function: &str) -> broadcast::Receiver<Arc<str>> {
        let mut state = self.lock();
        if let Some(live) = state.tails.get(function) {
            return live.subscribe();
        }
        let (live, rx) = broadcast::channel(TAIL_BUFFER);
        state.tails.insert(function.to_string(), live);
        rx
    }

    /// Forgets a removed function: closes its file and deletes it.
    pub fn remove(&self, function: &str) {
        let mut state = self.lock();
        state.files.remove(function);
        state.tails.remove(function);
        let _ = std::fs::remove_file(self.path(function));
    }

    /// Log files open right now (bounded by [`MAX_OPEN_FILES`]).
    pub fn open_files(&self) -> usize {
        self.lock().files.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_file(&self, function: &str) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(function))
    }

    fn path(&self, function: &str) -> PathBuf {
        // Function names are validated to [A-Za-z0-9_-], so they are safe file names.
        self.dir.join(format!("{function}.log"))
    }
}

impl State {
    fn close_least_recent(&mut self) {
        let oldest = self
            .files
            .iter()
            .min_by_key(|(_, f)| f.last_write)
            .map(|(name, _)| name.clone());
        if let Some(name) = oldest {
            self.files.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_with_source_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::open(dir.path()).unwrap();
        book.write("f", "i-1", "hello");
        book.platform("f", "cold start");
        drop(book);
        let book = LogBook::open(dir.path()).unwrap();
        let lines = book.last_lines("f", 10).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with(" [i-1] hello"), "{}", lines[0]);
        assert!(lines[1].ends_with(" [platform] cold start"), "{}", lines[1]);
    }

    #[test]
    fn last_lines_returns_only_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::open(dir.path()).unwrap();
        for i in 0..100 {
            book.write("f", "i-1", &format!("line {i}"));
        }
        let lines = book.last_lines("f", 3).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with("line 99"));
        assert!(lines[0].ends_with("line 97"));
        assert!(book.last_lines("unknown", 3).unwrap().is_empty());
    }

    #[test]
    fn idle_functions_keep_no_file_open() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::open(dir.path()).unwrap();
        for i in 0..(MAX_OPEN_FILES * 3) {
            book.platform(&format!("f{i}"), "deployed");
        }
        assert_eq!(book.open_files(), MAX_OPEN_FILES);
        // A closed file is reopened on the next write, nothing is lost.
        book.platform("f0", "again");
        let lines = book.last_lines("f0", 10).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].ends_with("again"));
    }

    #[tokio::test]
    async fn subscribers_see_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::open(dir.path()).unwrap();
        let mut rx = book.subscribe("f");
        book.write("f", "i-2", "live");
        let line = rx.recv().await.unwrap();
        assert!(line.ends_with("[i-2] live"));
    }
}
