//! What rouse reads from Linux `/proc` (and an instance's cgroup): the
//! machine's memory, a process's peak memory, and whether a recorded pid
//! still leads its process group. Parsing is split from reading so it is
//! tested on text.

use std::path::Path;

/// Where an instance's peak memory is read: its whole cgroup's peak usage
/// in bytes when it is isolated, else its main process's `VmHWM` in
/// `/proc/<pid>/status`. The file is opened once and re-read from offset 0
/// (both regenerate their text on every read): REPORT reads it after each
/// invocation, and one `pread` costs less than the open, read and close of
/// a path lookup every time.
pub struct PeakMemory {
    file: Option<std::fs::File>,
    cgroup: bool,
}

impl PeakMemory {
    /// Opens the cgroup's `peak_file` if given, else `/proc/<pid>/status`.
    /// A file that cannot be opened (the process is already gone) reads as
    /// `None`.
    pub fn open(peak_file: Option<&Path>, pid: u32) -> PeakMemory {
        let (file, cgroup) = match peak_file {
            Some(path) => (std::fs::File::open(path), true),
            None => (std::fs::File::open(format!("/proc/{pid}/status")), false),
        };
        PeakMemory {
            file: file.ok(),
            cgroup,
        }
    }

    /// Peak memory in MB; `None` when it cannot be read, e.g. the process
    /// is gone.
    pub fn read_mb(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let file = self.file.as_ref()?;
        // `/proc/<pid>/status` is about 1.5 kB; VmHWM is in its first half.
        let mut buf = [0u8; 4096];
        let n = file.read_at(&mut buf, 0).ok()?;
        let text = std::str::from_utf8(&buf[..n]).ok()?;
        if self.cgroup {
            let bytes: u64 = text.trim().parse().ok()?;
            Some(bytes.div_ceil(1024 * 1024))
        } else {
            Some(kb_field(text, "VmHWM:")?.div_ceil(1024))
        }
    }
}

/// The machine's memory in kB (`MemTotal` in `/proc/meminfo`).
pub fn mem_total_kb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    kb_field(&meminfo, "MemTotal:")
}

/// The value of the `name` line (`VmHWM:`, `MemTotal:`) of a `/proc` text
/// that counts in kB.
fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Whether `pid` is alive (not a zombie) and leads its own process group,
/// which is how rouse starts every instance: a reused pid rarely does.
pub fn leads_its_group(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat_leads_group(&stat, pid))
}

/// [`leads_its_group`] over the text of `/proc/<pid>/stat`.
fn stat_leads_group(stat: &str, pid: i32) -> bool {
    // The command name is in parentheses and may itself hold ") ";
    // the fields after the last one are: state, ppid, pgrp, ...
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.first() != Some(&"Z") && fields.get(2) == Some(&pid.to_string().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_from_meminfo() {
        let text = "MemTotal:       24684092 kB\nMemFree:         1000 kB\n";
        assert_eq!(kb_field(text, "MemTotal:"), Some(24_684_092));
        assert_eq!(kb_field("nothing", "MemTotal:"), None);
        assert!(mem_total_kb().is_some_and(|kb| kb > 0));
    }

    #[test]
    fn vm_hwm_is_read_from_the_status_text() {
        let cases = [
            (
                "Name:\tpython3\nVmPeak:\t  9000 kB\nVmHWM:\t   20480 kB\n",
                Some(20480),
            ),
            ("VmHWM:\t1 kB", Some(1)),
            ("Name:\tkthreadd\n", None),
            ("VmHWM:\tlots kB\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(kb_field(text, "VmHWM:"), want, "{text:?}");
        }
    }

    #[test]
    fn a_group_leader_is_told_from_its_stat_line() {
        let cases = [
            ("42 (app) S 1 42 42 0", true),
            ("42 (my) app) S 1 42 42 0", true),
            ("42 (app) Z 1 42 42 0", false),
            ("42 (app) S 1 7 7 0", false),
            ("42 app S 1 42", false),
        ];
        for (stat, want) in cases {
            assert_eq!(stat_leads_group(stat, 42), want, "{stat:?}");
        }
    }

    #[test]
    fn this_process_has_a_peak_and_a_cgroup_file_wins() {
        let pid = std::process::id();
        let own = PeakMemory::open(None, pid);
        let before = own.read_mb().expect("VmHWM of this process");
        assert!(before > 0);
        // The same open file sees the peak grow.
        let big = vec![1u8; 64 * 1024 * 1024];
        assert!(
            own.read_mb().is_some_and(|mb| mb >= before + 60),
            "{before}"
        );
        drop(big);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.peak");
        std::fs::write(&file, "3145729\n").unwrap();
        let cgroup = PeakMemory::open(Some(&file), pid);
        assert_eq!(cgroup.read_mb(), Some(4));
        std::fs::write(&file, "8388608\n").unwrap();
        assert_eq!(cgroup.read_mb(), Some(8), "re-read, not cached");
        assert_eq!(PeakMemory::open(None, u32::MAX).read_mb(), None);
    }
}
