//! Control groups for instances: memory, CPU weight and pids limits, killing
//! everything an instance started, and telling whether the kernel OOM-killed
//! it. Works on the unified (v2) hierarchy and on v1/hybrid hosts.
//!
//! Instances live in `rouse/<tree>/<instance>` at the root of each hierarchy,
//! where `<tree>` is derived from the data dir: several rouse servers on one
//! host never touch each other's cgroups, and a restarted server finds what
//! its predecessor left. (Inside a container with a cgroup namespace, the
//! root is the container's own cgroup.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Processes and threads one instance may have (Lambda's limit).
pub const PIDS_MAX: u32 = 1024;
/// Lambda gives one full vCPU at this much memory; CPU weight scales with it.
const MB_PER_VCPU: u64 = 1769;

/// Where the controllers rouse uses are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupKind {
    /// Unified hierarchy with memory, pids and cpu available.
    V2 { root: PathBuf },
    /// One hierarchy per controller (v1, including hybrid hosts).
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
    },
}

impl CgroupKind {
    pub fn name(&self) -> &'static str {
        match self {
            CgroupKind::V2 { .. } => "cgroup v2",
            CgroupKind::V1 { .. } => "cgroup v1",
        }
    }

    /// Hierarchy roots, memory first (its `cgroup.procs` is the one read).
    fn roots(&self) -> Vec<PathBuf> {
        match self {
            CgroupKind::V2 { root } => vec![root.clone()],
            CgroupKind::V1 { memory, pids, cpu } => vec![memory.clone(), pids.clone(), cpu.clone()],
        }
    }
}

/// Finds memory, pids and cpu controllers: the unified hierarchy when it has
/// them, else v1 hierarchies.
pub fn detect() -> Result<CgroupKind, String> {
    let root = Path::new(CGROUP_ROOT);
    if let Ok(controllers) = fs::read_to_string(root.join("cgroup.controllers")) {
        let have: Vec<&str> = controllers.split_whitespace().collect();
        let lacking: Vec<&str> = ["memory", "pids", "cpu"]
            .into_iter()
            .filter(|c| !have.contains(c))
            .collect();
        if lacking.is_empty() {
            return Ok(CgroupKind::V2 {
                root: root.to_path_buf(),
            });
        }
        return Err(format!(
            "cgroup v2 without the {} controller(s)",
            lacking.join(", ")
        ));
    }
    let memory = root.join("memory");
    let pids = root.join("pids");
    let cpu = root.join("cpu");
    let checks = [
        (&memory, "memory.limit_in_bytes", "memory"),
        (&pids, "cgroup.procs", "pids"),
        (&cpu, "cpu.shares", "cpu"),
    ];
    let lacking: Vec<&str> = checks
        .iter()
        .filter(|(dir, file, _)| !dir.join(file).exists())
        .map(|(_, _, name)| *name)
        .collect();
    if lacking.is_empty() {
        Ok(CgroupKind::V1 { memory, pids, cpu })
    } else {
        Err(format!(
            "no cgroup hierarchy for {} under {CGROUP_ROOT}",
            lacking.join(", ")
        ))
    }
}

/// The limits of one instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_mb: u32,
    pub pids: u32,
}

impl Limits {
    /// v1 `cpu.shares` (1024 = one default process group): proportional to
    /// memory, as Lambda's CPU is, but a weight, not a quota.
    fn cpu_shares(&self) -> u64 {
        (1024 * u64::from(self.memory_mb) / MB_PER_VCPU).clamp(2, 262_144)
    }

    /// v2 `cpu.weight` (100 = default).
    fn cpu_weight(&self) -> u64 {
        (100 * u64::from(self.memory_mb) / MB_PER_VCPU).clamp(1, 10_000)
    }
}

/// `rouse/<tree>` in every hierarchy: the parent of this server's instances.
#[derive(Debug)]
pub struct CgroupTree {
    kind: CgroupKind,
    /// `rouse/<tree>` under each hierarchy root, memory first.
    dirs: Vec<PathBuf>,
}

impl CgroupTree {
    /// Creates (or reuses) the tree for the data dir `key`.
    pub fn open(kind: CgroupKind, key: &str) -> io::Result<CgroupTree> {
        let dirs: Vec<PathBuf> = kind
            .roots()
            .into_iter()
            .map(|root| root.join("rouse").join(key))
            .collect();
        for dir in &dirs {
            fs::create_dir_all(dir)?;
        }
        if let CgroupKind::V2 { root } = &kind {
            // Controllers must be enabled on the path down to the leaves;
            // `rouse/` and `rouse/<tree>` hold no processes themselves, so the
            // no-internal-processes rule is kept.
            let rouse = root.join("rouse");
            for parent in [root.as_path(), rouse.as_path(), dirs[0].as_path()] {
                write_file(&parent.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
            }
        }
        Ok(CgroupTree { kind, dirs })
    }

    /// Kills and removes every instance cgroup a previous run left behind;
    /// returns how many there were.
    pub fn clean_leftovers(&self) -> usize {
        let Ok(entries) = fs::read_dir(&self.dirs[0]) else {
            return 0;
        };
        let mut cleaned = 0;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let cgroup = self.leaf(&entry.file_name().to_string_lossy());
                cgroup.kill_all();
                cgroup.remove_dirs();
                cleaned += 1;
            }
        }
        cleaned
    }

    /// Removes `rouse/<tree>` (and `rouse/` when nothing else is in it).
    /// Best effort: fails harmlessly while an instance cgroup is left.
    pub fn remove(&self) {
        for dir in &self.dirs {
            if fs::remove_dir(dir).is_ok() {
                if let Some(rouse) = dir.parent() {
                    let _ = fs::remove_dir(rouse);
                }
            }
        }
    }

    fn leaf(&self, name: &str) -> Cgroup {
        Cgroup {
            v2: matches!(self.kind, CgroupKind::V2 { .. }),
            dirs: self.dirs.iter().map(|d| d.join(name)).collect(),
            memory_mb: 0,
        }
    }

    /// Creates the cgroup `name` with `limits`.
    pub fn create(&self, name: &str, limits: Limits) -> io::Result<Cgroup> {
        let mut cgroup = self.leaf(name);
        cgroup.memory_mb = limits.memory_mb;
        for dir in &cgroup.dirs {
            fs::create_dir(dir)?;
        }
        let applied = cgroup.apply(limits);
        if applied.is_err() {
            cgroup.remove_dirs();
        }
        applied.map(|()| cgroup)
    }
}

/// One instance's cgroup (a directory in each hierarchy).
#[derive(Debug)]
pub struct Cgroup {
    v2: bool,
    /// Memory hierarchy first; on v2 just the one directory.
    dirs: Vec<PathBuf>,
    memory_mb: u32,
}

impl Cgroup {
    fn apply(&self, limits: Limits) -> io::Result<()> {
        let bytes = (u64::from(limits.memory_mb) * 1024 * 1024).to_string();
        let pids = limits.pids.to_string();
        if self.v2 {
            let dir = &self.dirs[0];
            write_file(&dir.join("memory.max"), &bytes)?;
            // No swap: past its limit an instance is killed, as on Lambda,
            // rather than slowing the host down by swapping.
            write_optional(&dir.join("memory.swap.max"), "0")?;
            write_file(&dir.join("pids.max"), &pids)?;
            write_file(&dir.join("cpu.weight"), &limits.cpu_weight().to_string())?;
        } else {
            let (memory, pids_dir, cpu) = (&self.dirs[0], &self.dirs[1], &self.dirs[2]);
            write_file(&memory.join("memory.limit_in_bytes"), &bytes)?;
            // memsw must not be below the memory limit, so it comes second;
            // absent when the kernel does not account swap.
            write_optional(&memory.join("memory.memsw.limit_in_bytes"), &bytes)?;
            write_file(&pids_dir.join("pids.max"), &pids)?;
            write_file(&cpu.join("cpu.shares"), &limits.cpu_shares().to_string())?;
        }
        Ok(())
    }

    /// `cgroup.procs` of every hierarchy, open for writing, for the child to
    /// move itself in before it execs (writing "0" means "me").
    pub(crate) fn open_procs(&self) -> io::Result<Vec<File>> {
        self.dirs
            .iter()
            .map(|dir| {
                OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
            })
            .collect()
    }

    pub fn memory_limit_mb(&self) -> u32 {
        self.memory_mb
    }

    /// How many times the kernel's OOM killer killed a process here.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = if self.v2 {
            ("memory.events", "oom_kill")
        } else {
            ("memory.oom_control", "oom_kill")
        };
        fs::read_to_string(self.dirs[0].join(file))
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let (name, value) = line.split_once(' ')?;
                    (name == key).then(|| value.trim().parse().ok())?
                })
            })
            .unwrap_or(0)
    }

    /// The file holding the most memory the cgroup has used, in bytes.
    pub fn peak_memory_file(&self) -> PathBuf {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        self.dirs[0].join(file)
    }

    fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.dirs[0].join("cgroup.procs"))
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every process in the cgroup until it is empty (bounded: the
    /// pids limit keeps a fork bomb from outrunning this for long).
    pub fn kill_all(&self) {
        if self.v2 && write_file(&self.dirs[0].join("cgroup.kill"), "1").is_ok() {
            return;
        }
        for round in 0..200 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if round > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        tracing::warn!(cgroup = %self.dirs[0].display(), "processes survived repeated SIGKILL");
    }

    /// Kills what is left and removes the directories. A cgroup whose last
    /// processes are still exiting cannot be removed yet, so it retries briefly.
    pub fn remove(&self) {
        self.kill_all();
        self.remove_dirs();
    }

    fn remove_dirs(&self) {
        for dir in &self.dirs {
            let mut tries = 0;
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => break,
                    Err(err) if tries < 50 => {
                        let _ = err;
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(err) => {
                        tracing::warn!(cgroup = %dir.display(), error = %err, "cannot remove instance cgroup");
                        break;
                    }
                }
            }
        }
    }
}

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("writing {value:?} to {}: {e}", path.display()),
            )
        })
}

/// Writes a control file the kernel may not have (swap accounting off).
fn write_optional(path: &Path, value: &str) -> io::Result<()> {
    if path.exists() {
        write_file(path, value)
    } else {
        Ok(())
    }
}

/// A short, stable name for the data dir's cgroup tree.
/// Makes moving a process into a cgroup fast on v1 hosts; returns whether
/// it did.
///
/// Joining a cgroup takes the kernel's thread-group lock for writing, and in
/// its default mode that waits for an RCU grace period: 5–16 ms measured on a
/// hybrid host, on every cold start. The `favordynmods` mode (documented for
/// cgroup v2, accepted by v1 mounts too) makes that write cheap (0.4 ms) at a
/// small cost to forks and exits. Any hierarchy mounted with it switches the
/// lock, so a named hierarchy with no controllers is mounted in `scratch` and
/// detached again; it cannot be remounted on the host's own hierarchies. The
/// switch outlives the mount (the hierarchy lingers while processes that
/// existed when it was mounted do), so the host keeps the mode until reboot.
/// The mount happens in a private mount namespace and is never visible.
/// On v2 the option belongs on the host's `/sys/fs/cgroup` mount and is left
/// to its administrator.
pub fn favor_dynamic_changes(kind: &CgroupKind, scratch: &Path) -> io::Result<bool> {
    if matches!(kind, CgroupKind::V2 { .. }) {
        return Ok(false);
    }
    fs::create_dir_all(scratch)?;
    let target =
        std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(scratch.as_os_str()))
            .map_err(|_| io::Error::other("scratch path contains a NUL byte"))?;
    // In a thread of its own with a private mount namespace, so the mount is
    // never seen by anyone else: an instance starting meanwhile copies the
    // host's mount list and must not find one that vanishes under it.
    let result = std::thread::spawn(move || mount_favoring_dynmods(&target))
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the mounting thread panicked")));
    let _ = fs::remove_dir(scratch);
    result.map(|()| true)
}

fn mount_favoring_dynmods(target: &std::ffi::CStr) -> io::Result<()> {
    use nix::libc;
    // SAFETY: plain syscalls on NUL-terminated strings that outlive them;
    // unsharing the mount namespace affects only this thread, which ends here.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 || !crate::confine::make_mounts_private() {
            return Err(io::Error::last_os_error());
        }
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        if libc::mount(
            c"cgroup".as_ptr(),
            target.as_ptr(),
            c"cgroup".as_ptr(),
            flags,
            c"none,name=rouse-dynmods,favordynmods".as_ptr().cast(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        libc::umount2(target.as_ptr(), libc::MNT_DETACH);
    }
    Ok(())
}

pub fn tree_key(data_dir: &Path) -> String {
    let real = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    // FNV-1a: stable across builds and Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in real.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_proportional_to_memory() {
        let at = |mb| Limits {
            memory_mb: mb,
            pids: PIDS_MAX,
        };
        assert_eq!(at(1769).cpu_shares(), 1024);
        assert_eq!(at(1769).cpu_weight(), 100);
        assert_eq!(at(128).cpu_shares(), 74);
        assert_eq!(at(128).cpu_weight(), 7);
        assert_eq!(at(1).cpu_weight(), 1, "never zero");
        assert_eq!(at(10240).cpu_shares(), 5927);
    }

    #[test]
    fn favordynmods_is_switched_on_where_v1_hierarchies_are_mounted() {
        let Ok(kind) = detect() else {
            eprintln!("skipped: no usable cgroups here");
            return;
        };
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting a hierarchy needs root");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let scratch = tmp.path().join("fav");
        let switched = favor_dynamic_changes(&kind, &scratch).expect("mount with favordynmods");
        assert_eq!(switched, matches!(kind, CgroupKind::V1 { .. }));
        assert!(!scratch.exists(), "the scratch mount point is removed");
        let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        assert!(!mounts.contains("rouse-dynmods"), "nothing stays mounted");
    }

    #[test]
    fn tree_key_is_stable_and_distinct() {
        assert_eq!(
            tree_key(Path::new("/nonexistent/a")),
            tree_key(Path::new("/nonexistent/a"))
        );
        assert_ne!(
            tree_key(Path::new("/nonexistent/a")),
            tree_key(Path::new("/nonexistent/b"))
        );
        assert_eq!(tree_key(Path::new("/x")).len(), 16);
    }
}
