//! Per-function log files with live tailing.
//!
//! Every line an instance writes, and every platform event (cold start, stop,
//! crash), is appended to `logs/<function>.log` under the data directory with a
//! timestamp and its source, and fanned out to live `--tail` subscribers.
//! Files are the durable record; the broadcast is best-effort (a slow tail
//! reader skips lines rather than slowing the instance down).

#![forbid(unsafe_code)]

mod writer;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

use writer::Writer;

/// Lines kept for a tail subscriber that falls behind.
const TAIL_BUFFER: usize = 1024;
/// Source name of lines rouse itself writes about a function.
pub const PLATFORM: &str = "platform";

/// The log files and live tails of every function.
///
/// Lines reach the files through one writer thread ([`writer`]): a caller
/// (often a gateway thread answering a request) only queues the line, so a
/// slow disk delays the file, not the request. Reads ([`LogBook::last_lines`])
/// wait for what was queued before them, so they see every line written
/// before the call.
pub struct LogBook {
    dir: PathBuf,
    tails: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
    writer: Writer,
}

impl LogBook {
    pub fn open(dir: &Path) -> std::io::Result<LogBook> {
        std::fs::create_dir_all(dir)?;
        Ok(LogBook {
            dir: dir.to_path_buf(),
            tails: Mutex::new(HashMap::new()),
            writer: Writer::start(dir.to_path_buf())?,
        })
    }

    /// Appends one line from `source` (an instance id, or [`PLATFORM`]).
    pub fn write(&self, function: &str, source: &str, message: &str) {
        // One buffer with the newline, so the file gets a single write.
        let mut text = format!(
            "{} [{source}] {message}\n",
            humantime::format_rfc3339_millis(SystemTime::now())
        );
        {
            let mut tails = self.lock_tails();
            if let Some(live) = tails.get(function) {
                let line: Arc<str> = Arc::from(&text[..text.len() - 1]);
                if live.send(line).is_err() {
                    // Every tail has gone: free the buffer until the next one.
                    tails.remove(function);
                }
            }
        }
        text.shrink_to_fit();
        self.writer.append(function, text);
    }

    /// A platform event about `function`.
    pub fn platform(&self, function: &str, message: &str) {
        self.write(function, PLATFORM, message);
    }

    /// The last `lines` lines of the function's log file.
    pub fn last_lines(&self, function: &str, lines: usize) -> std::io::Result<Vec<String>> {
        self.writer.flush();
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
        let mut tails = self.lock_tails();
        if let Some(live) = tails.get(function) {
            return live.subscribe();
        }
        let (live, rx) = broadcast::channel(TAIL_BUFFER);
        tails.insert(function.to_string(), live);
        rx
    }

    /// Forgets a removed function: closes its file and deletes it (after
    /// the lines queued before this call, so none of them recreates it).
    pub fn remove(&self, function: &str) {
        self.lock_tails().remove(function);
        self.writer.remove(function);
    }

    /// Log files open right now (bounded by [`writer::MAX_OPEN_FILES`]).
    pub fn open_files(&self) -> usize {
        self.writer.flush();
        self.writer.open_files()
    }

    fn lock_tails(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<str>>>> {
        self.tails.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, function: &str) -> PathBuf {
        writer::path(&self.dir, function)
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
        for i in 0..(writer::MAX_OPEN_FILES * 3) {
            book.platform(&format!("f{i}"), "deployed");
        }
        assert_eq!(book.open_files(), writer::MAX_OPEN_FILES);
        // A closed file is reopened on the next write, nothing is lost.
        book.platform("f0", "again");
        let lines = book.last_lines("f0", 10).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].ends_with("again"));
    }

    #[test]
    fn lines_from_many_threads_all_arrive_in_each_writers_order() {
        let dir = tempfile::tempdir().unwrap();
        let book = Arc::new(LogBook::open(dir.path()).unwrap());
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let book = Arc::clone(&book);
                std::thread::spawn(move || {
                    for i in 0..500 {
                        book.write(
                            if i % 2 == 0 { "a" } else { "b" },
                            &format!("w{w}"),
                            &format!("{i}"),
                        );
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        // Read right after the writes: `last_lines` waits for the queue.
        for (function, parity) in [("a", 0), ("b", 1)] {
            let lines = book.last_lines(function, 10_000).unwrap();
            assert_eq!(lines.len(), 1000, "{function}");
            for w in 0..4 {
                let seen: Vec<u32> = lines
                    .iter()
                    .filter_map(|l| l.split_once(&format!(" [w{w}] ")))
                    .map(|(_, n)| n.parse().unwrap())
                    .collect();
                let want: Vec<u32> = (0..500).filter(|i| i % 2 == parity).collect();
                assert_eq!(seen, want, "{function} w{w}");
            }
        }
    }

    #[test]
    fn a_removed_function_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::open(dir.path()).unwrap();
        book.write("f", "i-1", "old");
        book.remove("f");
        assert!(!dir.path().join("f.log").exists());
        book.write("f", "i-2", "new");
        let lines = book.last_lines("f", 10).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with("[i-2] new"));
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
