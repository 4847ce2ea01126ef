//! Instances a previous rouse left running (it was killed with SIGKILL or
//! crashed, so it could not stop them). Each running instance has a pid file
//! naming its process group; the next start kills what is still there.

use std::path::{Path, PathBuf};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

const PID_DIR: &str = ".pids";

pub(crate) fn pid_file(instances_dir: &Path, instance_id: &str) -> PathBuf {
    instances_dir.join(PID_DIR).join(instance_id)
}

/// Records that `pid` leads the process group of an instance.
pub(crate) fn record(instances_dir: &Path, instance_id: &str, pid: u32) {
    let path = pid_file(instances_dir, instance_id);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(err) = std::fs::write(&path, pid.to_string()) {
        tracing::warn!(%err, path = %path.display(), "cannot record an instance pid");
    }
}

pub(crate) fn forget(instances_dir: &Path, instance_id: &str) {
    let _ = std::fs::remove_file(pid_file(instances_dir, instance_id));
}

/// Kills the process groups recorded by a previous run that are still
/// alive; returns how many it killed.
pub(crate) fn kill_recorded(instances_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(instances_dir.join(PID_DIR)) else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|pid| *pid > 1)
        else {
            continue;
        };
        // Only a live group leader is ours: a reused pid is rarely one.
        if rouse_sandbox::procfs::leads_its_group(pid)
            && killpg(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
        {
            killed += 1;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn kills_recorded_live_groups_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        record(dir.path(), "a", child.id());
        // A stale record whose process is gone is skipped.
        record(dir.path(), "b", 999_999);
        assert_eq!(kill_recorded(dir.path()), 1);
        let status = child.wait().unwrap();
        assert!(!status.success());
        forget(dir.path(), "a");
        assert!(!pid_file(dir.path(), "a").exists());
    }
}
