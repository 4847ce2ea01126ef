//! How strongly instances are isolated from the host and from each other,
//! what this host can offer, and the choice between the two.
//!
//! [`probe`] is cheap (a few file reads and one short-lived fork) and has no
//! side effects, so `rouse doctor` can call it as well as `rouse serve`.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::cgroup::{self, CgroupKind};

/// Isolation levels, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A plain child in its own process group.
    None,
    /// Plus an unprivileged uid/gid per function and cgroup limits (memory,
    /// CPU weight, pids).
    Process,
    /// Plus mount, pid, ipc and uts namespaces: a read-only view of the host,
    /// a private `/tmp` and `/dev/shm`, a `/proc` showing only the instance.
    Namespaces,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Process => "process",
            Level::Namespaces => "namespaces",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `--isolation` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// The strongest level the host supports.
    Auto,
    Exactly(Level),
}

impl FromStr for Requested {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Requested::Auto),
            "none" => Ok(Requested::Exactly(Level::None)),
            "process" => Ok(Requested::Exactly(Level::Process)),
            "namespaces" => Ok(Requested::Exactly(Level::Namespaces)),
            other => Err(format!(
                "unknown isolation level {other:?} (expected auto, none, process or namespaces)"
            )),
        }
    }
}

/// What this host lets rouse do; each `Err` says what is missing.
#[derive(Debug, Clone)]
pub struct Support {
    /// Root, or the capabilities rouse needs (CAP_SETUID, CAP_SETGID,
    /// CAP_SYS_ADMIN, CAP_KILL).
    pub privileged: Result<(), String>,
    /// Which cgroup layout holds the memory, pids and cpu controllers.
    pub cgroups: Result<CgroupKind, String>,
    /// `unshare` of mount, pid, ipc and uts namespaces works.
    pub namespaces: Result<(), String>,
}

impl Support {
    /// Why `level` cannot be had here, if it cannot.
    pub fn missing_for(&self, level: Level) -> Option<String> {
        let mut needs: Vec<&Result<_, String>> = Vec::new();
        let cgroups = self.cgroups.as_ref().map(|_| ()).map_err(Clone::clone);
        if level >= Level::Process {
            needs.push(&self.privileged);
            needs.push(&cgroups);
        }
        if level >= Level::Namespaces {
            needs.push(&self.namespaces);
        }
        let missing: Vec<&str> = needs
            .into_iter()
            .filter_map(|r| r.as_ref().err().map(String::as_str))
            .collect();
        (!missing.is_empty()).then(|| missing.join("; "))
    }

    /// The strongest level available.
    pub fn best(&self) -> Level {
        [Level::Namespaces, Level::Process]
            .into_iter()
            .find(|level| self.missing_for(*level).is_none())
            .unwrap_or(Level::None)
    }
}

/// Checks what this host supports.
pub fn probe() -> Support {
    let privileged = check_privileged();
    let cgroups = cgroup::detect();
    let namespaces = match &privileged {
        Ok(()) => check_unshare(),
        Err(_) => Err("namespaces need privileges".to_string()),
    };
    Support {
        privileged,
        cgroups,
        namespaces,
    }
}

/// The level to run at, and the one line to log about it; an error when an
/// explicitly requested level is not available (naming what is missing).
pub fn choose(
    requested: Requested,
    support: &Support,
    data_dir: &Path,
) -> Result<(Level, String), String> {
    let reachable = data_dir_reachable(data_dir);
    let missing = |level: Level| -> Option<String> {
        let mut why = support.missing_for(level);
        if level > Level::None {
            if let Err(err) = &reachable {
                why = Some(match why {
                    Some(w) => format!("{w}; {err}"),
                    None => err.clone(),
                });
            }
        }
        why
    };
    match requested {
        Requested::Exactly(level) => match missing(level) {
            Some(why) => Err(format!("isolation {level} is not available: {why}")),
            None => Ok((level, format!("isolation: {}", describe(level, support)))),
        },
        Requested::Auto => {
            let best = [Level::Namespaces, Level::Process]
                .into_iter()
                .find(|level| missing(*level).is_none())
                .unwrap_or(Level::None);
            let mut line = format!("isolation: {}", describe(best, support));
            if best < Level::Namespaces {
                if let Some(why) = missing(Level::Namespaces) {
                    line.push_str(&format!(" (namespaces unavailable: {why})"));
                }
            }
            Ok((best, line))
        }
    }
}

fn describe(level: Level, support: &Support) -> String {
    let cgroups = match &support.cgroups {
        Ok(kind) => kind.name(),
        Err(_) => "no cgroups",
    };
    match level {
        Level::None => "none, process groups only".to_string(),
        Level::Process => format!("process (uid per function, {cgroups} limits)"),
        Level::Namespaces => format!(
            "namespaces (mount, pid, ipc, uts; read-only host, private /tmp; uid per function; {cgroups} limits)"
        ),
    }
}

/// Capability bits in `CapEff` rouse needs to isolate instances.
const NEEDED_CAPS: &[(u32, &str)] = &[
    (5, "CAP_KILL"),
    (6, "CAP_SETGID"),
    (7, "CAP_SETUID"),
    (21, "CAP_SYS_ADMIN"),
];

fn check_privileged() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or("no CapEff in /proc/self/status")?;
    let lacking: Vec<&str> = NEEDED_CAPS
        .iter()
        .filter(|(bit, _)| caps & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect();
    if lacking.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not running as root (missing {})",
            lacking.join(", ")
        ))
    }
}

/// Forks a child that tries the `unshare` instances will do; seccomp
/// profiles and some container runtimes refuse it even to root.
fn check_unshare() -> Result<(), String> {
    use nix::libc;
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    // SAFETY: the child only calls async-signal-safe functions (unshare,
    // _exit) before exiting.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: raw syscalls in the forked child.
        unsafe {
            let code = if libc::unshare(flags) == 0 {
                0
            } else {
                *libc::__errno_location()
            };
            libc::_exit(code);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for the child forked above.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    if waited != pid || !libc::WIFEXITED(status) {
        return Err("the unshare probe did not exit normally".to_string());
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        errno => Err(format!(
            "unshare of mount/pid/ipc/uts namespaces failed: {}",
            std::io::Error::from_raw_os_error(errno)
        )),
    }
}

/// An unprivileged uid must be able to reach its instance directory and the
/// runtime bootstraps under `data_dir`: every ancestor needs `o+x`.
fn data_dir_reachable(data_dir: &Path) -> Result<(), String> {
    let Ok(real) = data_dir.canonicalize() else {
        return Ok(()); // created later with a traversable mode
    };
    let mut blocked: Option<PathBuf> = None;
    for dir in real.ancestors() {
        if let Ok(meta) = std::fs::metadata(dir) {
            if meta.permissions().mode() & 0o001 == 0 {
                blocked = Some(dir.to_path_buf());
            }
        }
    }
    match blocked {
        Some(dir) if dir != real => Err(format!(
            "{} is not traversable by other users (mode o-x), so function uids cannot reach the data dir",
            dir.display()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn support(privileged: bool, cgroups: bool, ns: bool) -> Support {
        let res = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
        Support {
            privileged: res(privileged, "not root"),
            cgroups: if cgroups {
                Ok(CgroupKind::V2 {
                    root: "/sys/fs/cgroup".into(),
                })
            } else {
                Err("no cgroups".into())
            },
            namespaces: res(ns, "no unshare"),
        }
    }

    #[test]
    fn parse_requested() {
        assert_eq!("auto".parse(), Ok(Requested::Auto));
        assert_eq!("none".parse(), Ok(Requested::Exactly(Level::None)));
        assert_eq!(
            "namespaces".parse(),
            Ok(Requested::Exactly(Level::Namespaces))
        );
        let err = "full".parse::<Requested>().unwrap_err();
        assert!(err.contains("auto, none, process or namespaces"), "{err}");
    }

    #[test]
    fn auto_picks_the_strongest_and_says_why_not_more() {
        let dir = Path::new("/");
        let (level, line) = choose(Requested::Auto, &support(true, true, true), dir).unwrap();
        assert_eq!(level, Level::Namespaces);
        assert!(line.starts_with("isolation: namespaces"), "{line}");

        let (level, line) = choose(Requested::Auto, &support(true, true, false), dir).unwrap();
        assert_eq!(level, Level::Process);
        assert!(line.contains("no unshare"), "{line}");

        let (level, line) = choose(Requested::Auto, &support(false, true, false), dir).unwrap();
        assert_eq!(level, Level::None);
        assert!(line.contains("not root"), "{line}");
    }

    #[test]
    fn explicit_level_names_what_is_missing() {
        let err = choose(
            Requested::Exactly(Level::Namespaces),
            &support(true, false, false),
            Path::new("/"),
        )
        .unwrap_err();
        assert!(
            err.contains("no cgroups") && err.contains("no unshare"),
            "{err}"
        );
        let (level, _) = choose(
            Requested::Exactly(Level::None),
            &support(false, false, false),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(level, Level::None);
    }

    #[test]
    fn unreachable_data_dir_blocks_isolation() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::set_permissions(outer.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let data = outer.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let err = choose(
            Requested::Exactly(Level::Process),
            &support(true, true, true),
            &data,
        )
        .unwrap_err();
        assert!(err.contains("not traversable"), "{err}");
        // The data dir itself is rouse's to chmod; only ancestors count.
        assert!(data_dir_reachable(outer.path()).is_ok());
    }
}
