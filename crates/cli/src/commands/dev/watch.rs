//! Watching a project directory and turning bursts of file events into one
//! batch of changed paths.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How long the tree must stay quiet before a batch is handed over. Editors
/// save through temporary files and renames, several events per save.
const QUIET: Duration = Duration::from_millis(60);

/// A batch is handed over after this long even while events keep coming, so
/// a tool writing continuously cannot hold redeploys off forever.
const MAX_BATCH_WAIT: Duration = Duration::from_millis(400);

/// Directories whose changes never touch the package (`rouse_store`'s default
/// ignores) or are too noisy to watch for.
const IGNORED_DIRS: &[&str] = &[
    ".git",
    ".rouse",
    ".serverless",
    "target",
    "__pycache__",
    "node_modules/.cache",
];

pub(super) struct ProjectWatcher {
    // Dropping the watcher stops the events, so it lives as long as the receiver.
    _watcher: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<PathBuf>,
}

impl ProjectWatcher {
    /// Watches `dir` recursively, leaving out changes under any of `exclude`.
    pub(super) fn start(dir: &Path, exclude: &[PathBuf]) -> anyhow::Result<ProjectWatcher> {
        let exclude: Vec<PathBuf> = exclude
            .iter()
            .filter_map(|path| std::fs::canonicalize(path).ok())
            .collect();
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let Ok(event) = event else { return };
            if !is_content_change(&event.kind) {
                return;
            }
            for path in event.paths {
                if !exclude.iter().any(|ex| path.starts_with(ex)) && !in_ignored_dir(&path) {
                    // The receiver is gone only while rouse dev shuts down.
                    let _ = tx.send(path);
                }
            }
        })
        .context("starting the file watcher")?;
        watcher
            .watch(dir, RecursiveMode::Recursive)
            .with_context(|| format!("watching {}", dir.display()))?;
        Ok(ProjectWatcher {
            _watcher: watcher,
            events,
        })
    }

    /// Waits for a change, then collects further changes until the tree is
    /// quiet; returns the changed paths (each once), or `None` if watching ended.
    pub(super) async fn next_batch(&mut self) -> Option<Vec<PathBuf>> {
        let first = self.events.recv().await?;
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + MAX_BATCH_WAIT;
        loop {
            let quiet_until = (tokio::time::Instant::now() + QUIET).min(deadline);
            match tokio::time::timeout_at(quiet_until, self.events.recv()).await {
                Ok(Some(path)) => {
                    if !batch.contains(&path) {
                        batch.push(path);
                    }
                }
                Ok(None) | Err(_) => return Some(batch),
            }
        }
    }
}

/// Reads and opens are not changes; packaging the project reads every file,
/// so counting them would redeploy forever.
fn is_content_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Any | EventKind::Other => true,
    }
}

fn in_ignored_dir(path: &Path) -> bool {
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect();
    IGNORED_DIRS.iter().any(|ignored| {
        let ignored: Vec<&str> = ignored.split('/').collect();
        parts
            .windows(ignored.len())
            .any(|window| window.iter().zip(&ignored).all(|(a, b)| *a == *b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_dirs_match_whole_components() {
        assert!(in_ignored_dir(Path::new("/p/.git/index")));
        assert!(in_ignored_dir(Path::new("/p/src/__pycache__/a.pyc")));
        assert!(in_ignored_dir(Path::new("/p/node_modules/.cache/x")));
        assert!(!in_ignored_dir(Path::new(
            "/p/node_modules/left-pad/index.js"
        )));
        assert!(!in_ignored_dir(Path::new("/p/targets/app.py")));
        assert!(!in_ignored_dir(Path::new("/p/app.py")));
    }

    #[test]
    fn reads_are_not_changes() {
        assert!(!is_content_change(&EventKind::Access(AccessKind::Open(
            AccessMode::Read
        ))));
        assert!(is_content_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
    }
}
