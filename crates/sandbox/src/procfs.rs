//! What rouse reads from Linux `/proc` (and an instance's cgroup): the
//! machine's memory, a process's peak memory, and whether a recorded pid
//! still leads its process group. Parsing is split from reading so it is
//! tested on text.

use std::path::Path;

/// Peak memory of an instance in MB: of its whole cgroup when it is
/// isolated (`peak_file`, the cgroup's peak usage in bytes), else of its
/// main process `pid` (`VmHWM` in `/proc/<pid>/status`). `None` when
/// neither can be read, e.g. the process is gone.
pub fn peak_memory_mb(peak_file: Option<&Path>, pid: u32) -> Option<u64> {
    if let Some(file) = peak_file {
        let bytes: u64 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
        return Some(bytes.div_ceil(1024 * 1024));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(kb_field(&status, "VmHWM:")?.div_ceil(1024))
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
        assert!(peak_memory_mb(None, pid).is_some_and(|mb| mb > 0));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("memory.peak");
        std::fs::write(&file, "3145729\n").unwrap();
        assert_eq!(peak_memory_mb(Some(&file), pid), Some(4));
        assert_eq!(peak_memory_mb(None, u32::MAX), None);
    }
}
