//! What runs in the forked child between `fork` and `exec` to confine an
//! instance: join its cgroup, enter new namespaces, set up the mounts, drop
//! to the function's uid.
//!
//! With namespaces the child `C` (the process rouse waits for and signals)
//! unshares and forks `G`, PID 1 of the new pid namespace. `G` sets up the
//! mounts (a fresh `/proc` must be mounted from inside the namespace), forks
//! the app `A`, then only reaps until `A` exits and ends with `A`'s status;
//! `C` mirrors `G`'s. `A` is not PID 1, so signals rouse sends to the
//! process group reach it with their default actions intact (PID 1 would
//! silently drop a SIGTERM it has no handler for).
//!
//! Between fork and exec only async-signal-safe raw syscalls are allowed:
//! everything here (paths, options, file descriptors) is prepared in the
//! parent, and the child neither allocates nor locks.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::libc::{self, c_int, c_ulong};

/// Size of the private `/tmp` (Lambda gives 512 MB of ephemeral storage).
const TMP_OPTIONS: &CStr = c"size=512m,mode=1777";
const SHM_OPTIONS: &CStr = c"size=64m,mode=1777";
/// The most directories under `/tmp` that can be carried into the private one.
const MAX_KEEPS: usize = 8;

/// Everything the child needs, prepared by the parent.
pub(crate) struct Plan {
    /// `cgroup.procs` of each hierarchy, open for writing.
    cgroup_procs: Vec<File>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    namespaces: Option<Namespaces>,
}

/// What an instance with namespaces shares with the host.
pub(crate) struct NamespaceOptions {
    /// Keep the host's network; without it the instance gets a network
    /// namespace with only a loopback device, down.
    pub network: bool,
}

struct Namespaces {
    /// `unshare` flags.
    flags: c_int,
    /// Every mount point to make read-only, with the flags it keeps.
    remounts: Vec<(CString, c_ulong)>,
    /// Directories under `/tmp` (instance dir, runtime bootstraps) that must
    /// stay visible once a private tmpfs covers `/tmp`.
    keeps: Vec<Keep>,
    /// The instance dir, to re-enter after the mounts changed under it.
    work_dir: CString,
}

struct Keep {
    /// Each directory from below `/tmp` down to the kept one, created in the
    /// private tmpfs as mount points.
    mkdirs: Vec<CString>,
    path: CString,
}

impl Plan {
    /// `namespaces`: also enter new namespaces; `work_dir` and `visible` (the
    /// directories the instance must be able to read) stay reachable.
    pub(crate) fn new(
        cgroup_procs: Vec<File>,
        uid: u32,
        namespaces: Option<NamespaceOptions>,
        work_dir: &Path,
        visible: &[PathBuf],
    ) -> io::Result<Plan> {
        let namespaces = if let Some(options) = namespaces {
            let mut keeps = Vec::new();
            for dir in std::iter::once(work_dir).chain(visible.iter().map(PathBuf::as_path)) {
                let real = dir.canonicalize()?;
                if let Ok(below) = real.strip_prefix("/tmp") {
                    let mut mkdirs = Vec::new();
                    let mut at = PathBuf::from("/tmp");
                    for part in below.components() {
                        at.push(part);
                        mkdirs.push(cstring(&at)?);
                    }
                    keeps.push(Keep {
                        mkdirs,
                        path: cstring(&real)?,
                    });
                }
            }
            if keeps.len() > MAX_KEEPS {
                return Err(io::Error::other("too many directories under /tmp to keep"));
            }
            let mut flags =
                libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
            if !options.network {
                flags |= libc::CLONE_NEWNET;
            }
            Some(Namespaces {
                flags,
                remounts: mount_points()?,
                keeps,
                work_dir: cstring(&work_dir.canonicalize()?)?,
            })
        } else {
            None
        };
        Ok(Plan {
            cgroup_procs,
            uid,
            gid: uid,
            namespaces,
        })
    }

    /// Runs in the forked child (`C`); see the module docs. Returns in the
    /// process that is to exec the command.
    ///
    /// # Safety
    /// Only to be called between fork and exec.
    pub(crate) unsafe fn enter(&self, parent: libc::pid_t) -> io::Result<()> {
        if self.namespaces.is_some() {
            // C: what rouse forked and waits for; G and A follow it.
            die_with_parent(parent)?;
        }
        for procs in &self.cgroup_procs {
            if libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        // The output pipes are rouse's (mode 0600); the app may reopen them
        // as /dev/stdout, which checks the inode's owner.
        libc::fchown(1, self.uid, self.gid);
        libc::fchown(2, self.uid, self.gid);
        let Some(ns) = &self.namespaces else {
            drop_privileges(self.uid, self.gid)?;
            // Changing uid clears the parent-death signal, so only now.
            return die_with_parent(parent);
        };
        if libc::unshare(ns.flags) != 0 {
            return Err(io::Error::last_os_error());
        }
        match libc::fork() {
            -1 => return Err(io::Error::last_os_error()),
            0 => {}
            g => mirror(g),
        }
        // G: PID 1 of the new namespace; when it dies the kernel kills A and
        // everything else in the namespace.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        setup_mounts(ns);
        let hostname = b"localhost";
        libc::sethostname(hostname.as_ptr().cast(), hostname.len());
        match libc::fork() {
            -1 => fail(b"fork", None),
            0 => {}
            a => reap_until(a),
        }
        // A: the app.
        if libc::chdir(ns.work_dir.as_ptr()) != 0 {
            fail(b"chdir", Some(&ns.work_dir));
        }
        drop_privileges(self.uid, self.gid)
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// `C`: waits for `G` and exits the way it did, so rouse sees the app's
/// status. Ignores SIGTERM/SIGINT only now: SIG_IGN survives exec, so
/// setting it before `A` was forked would leak into the app.
unsafe fn mirror(g: libc::pid_t) -> ! {
    close_from(3);
    libc::signal(libc::SIGTERM, libc::SIG_IGN);
    libc::signal(libc::SIGINT, libc::SIG_IGN);
    let status = wait_for(g);
    let signal = if libc::WIFSIGNALED(status) {
        libc::WTERMSIG(status)
    } else {
        let code = libc::WEXITSTATUS(status);
        // `G` reports an app killed by signal N as 128+N (it cannot die of
        // the signal itself); turn it back into that signal.
        if code > 128 && code < 128 + 32 && code - 128 != libc::SIGSTOP {
            code - 128
        } else {
            libc::_exit(code)
        }
    };
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    libc::setrlimit(libc::RLIMIT_CORE, &no_core);
    libc::signal(signal, libc::SIG_DFL);
    libc::kill(libc::getpid(), signal);
    libc::_exit(128 + signal)
}

/// `G`: reaps every orphan until the app exits, then ends the namespace.
unsafe fn reap_until(a: libc::pid_t) -> ! {
    close_from(3);
    let mut app_status = 0;
    loop {
        let mut status = 0;
        let pid = libc::waitpid(-1, &mut status, 0);
        if pid == a {
            app_status = status;
            break;
        }
        if pid < 0 && *libc::__errno_location() != libc::EINTR {
            break;
        }
    }
    // Whatever the app left running goes with it.
    libc::kill(-1, libc::SIGKILL);
    if libc::WIFSIGNALED(app_status) {
        libc::_exit(128 + libc::WTERMSIG(app_status))
    }
    libc::_exit(libc::WEXITSTATUS(app_status))
}

unsafe fn wait_for(pid: libc::pid_t) -> c_int {
    let mut status = 0;
    loop {
        if libc::waitpid(pid, &mut status, 0) == pid {
            return status;
        }
        if *libc::__errno_location() != libc::EINTR {
            libc::_exit(127);
        }
    }
}

/// Closes inherited descriptors in `C` and `G`, which never exec: close-on-
/// exec would not close them, and std's spawn waits for its error pipe to
/// reach end-of-file.
unsafe fn close_from(first: u32) {
    if libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) != 0 {
        for fd in first..4096 {
            libc::close(fd as c_int);
        }
    }
}

/// Asks the kernel to SIGKILL the calling process when rouse dies, so a
/// killed server leaves no instance running; if rouse already died
/// (`parent` is no longer the parent), fails so the instance never starts.
/// The signal follows the death of the *thread* that forked: rouse spawns
/// instances from its runtime's worker threads, which live as long as it.
///
/// # Safety
/// Only between fork and exec (two raw syscalls).
pub(crate) unsafe fn die_with_parent(parent: libc::pid_t) -> io::Result<()> {
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
        return Err(io::Error::last_os_error());
    }
    if libc::getppid() != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

unsafe fn drop_privileges(uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    if libc::setgroups(0, std::ptr::null()) != 0
        || libc::setresgid(gid, gid, gid) != 0
        || libc::setresuid(uid, uid, uid) != 0
        || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes every mount of the calling thread's mount namespace private, so
/// nothing mounted or unmounted from here on propagates back to the host.
/// One raw syscall: safe between fork and exec.
///
/// # Safety
/// Only in a mount namespace of its own (after `unshare(CLONE_NEWNS)`).
pub(crate) unsafe fn make_mounts_private() -> bool {
    libc::mount(
        std::ptr::null(),
        c"/".as_ptr(),
        std::ptr::null(),
        libc::MS_REC | libc::MS_PRIVATE,
        std::ptr::null(),
    ) == 0
}

/// `G`: a read-only view of the host with a fresh `/proc`, a private `/tmp`
/// and `/dev/shm`, and the kept directories bound read-only into the new `/tmp`.
unsafe fn setup_mounts(ns: &Namespaces) {
    let none: *const libc::c_char = std::ptr::null();
    if !make_mounts_private() {
        fail(b"making / private", None);
    }
    // Handles on the kept directories before /tmp is covered.
    let mut kept_fds = [-1; MAX_KEEPS];
    for (keep, fd) in ns.keeps.iter().zip(kept_fds.iter_mut()) {
        *fd = libc::open(
            keep.path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if *fd < 0 {
            fail(b"opening", Some(&keep.path));
        }
    }
    for (path, flags) in &ns.remounts {
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags;
        if libc::mount(none, path.as_ptr(), none, flags, std::ptr::null()) != 0
            // Listed by the parent, unmounted and removed by someone else
            // since: there is nothing left there to protect.
            && *libc::__errno_location() != libc::ENOENT
        {
            fail(b"remounting read-only", Some(path));
        }
    }
    let private = libc::MS_NOSUID | libc::MS_NODEV;
    if libc::mount(
        c"proc".as_ptr(),
        c"/proc".as_ptr(),
        c"proc".as_ptr(),
        private | libc::MS_NOEXEC,
        std::ptr::null(),
    ) != 0
    {
        fail(b"mounting /proc", None);
    }
    if libc::mount(
        c"tmpfs".as_ptr(),
        c"/tmp".as_ptr(),
        c"tmpfs".as_ptr(),
        private,
        TMP_OPTIONS.as_ptr().cast(),
    ) != 0
    {
        fail(b"mounting /tmp", None);
    }
    for (keep, fd) in ns.keeps.iter().zip(kept_fds) {
        for dir in &keep.mkdirs {
            if libc::mkdir(dir.as_ptr(), 0o755) != 0 && *libc::__errno_location() != libc::EEXIST {
                fail(b"mkdir", Some(dir));
            }
        }
        let mut source = [0u8; 32];
        fd_path(fd, &mut source);
        if libc::mount(
            source.as_ptr().cast(),
            keep.path.as_ptr(),
            none,
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ) != 0
        {
            fail(b"binding", Some(&keep.path));
        }
        let ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | private;
        if libc::mount(none, keep.path.as_ptr(), none, ro, std::ptr::null()) != 0 {
            fail(b"remounting read-only", Some(&keep.path));
        }
        libc::close(fd);
    }
    if libc::mount(
        c"tmpfs".as_ptr(),
        c"/dev/shm".as_ptr(),
        c"tmpfs".as_ptr(),
        private,
        SHM_OPTIONS.as_ptr().cast(),
    ) != 0
    {
        fail(b"mounting /dev/shm", None);
    }
}

/// Writes `/proc/self/fd/<fd>\0` into `out` without allocating.
fn fd_path(fd: c_int, out: &mut [u8; 32]) {
    let prefix = b"/proc/self/fd/";
    out[..prefix.len()].copy_from_slice(prefix);
    let mut at = prefix.len();
    at += write_decimal(fd.unsigned_abs(), &mut out[at..]);
    out[at] = 0;
}

/// Writes `n` in decimal at the start of `out` (no allocation: usable
/// between fork and exec); returns the length.
pub(crate) fn write_decimal(mut n: u32, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        out[i] = digits[len - 1 - i];
    }
    len
}

/// Reports a setup failure on the instance's stderr (rouse logs it) and
/// exits; used where there is no error pipe to return through.
unsafe fn fail(what: &[u8], path: Option<&CString>) -> ! {
    let errno = *libc::__errno_location();
    let mut line = [0u8; 512];
    let mut len = 0;
    let mut push = |bytes: &[u8]| {
        let n = bytes.len().min(line.len() - len);
        line[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    push(b"rouse: setting up the instance's isolation failed: ");
    push(what);
    if let Some(path) = path {
        push(b" ");
        push(path.as_bytes());
    }
    push(b": errno ");
    let mut number = [0u8; 10];
    let n = write_decimal(errno.unsigned_abs(), &mut number);
    push(&number[..n]);
    push(b"\n");
    libc::write(2, line.as_ptr().cast(), len);
    libc::_exit(127)
}

/// Every mount point in this mount namespace with the per-mount flags a
/// read-only remount must keep (`nosuid`, `nodev`, ...). `/proc` is left
/// out: the instance gets its own.
fn mount_points() -> io::Result<Vec<(CString, c_ulong)>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mut points = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let point = unescape(point);
        if point == b"/proc" || point.starts_with(b"/proc/") {
            continue;
        }
        let flags = options.split(',').fold(0, |acc, option| {
            acc | match option {
                "nosuid" => libc::MS_NOSUID,
                "nodev" => libc::MS_NODEV,
                "noexec" => libc::MS_NOEXEC,
                "noatime" => libc::MS_NOATIME,
                "nodiratime" => libc::MS_NODIRATIME,
                "relatime" => libc::MS_RELATIME,
                _ => 0,
            }
        });
        points.push((CString::new(point).map_err(io::Error::other)?, flags));
    }
    Ok(points)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape(r"/mnt/my\040disk"), b"/mnt/my disk");
        assert_eq!(unescape(r"/a\134b"), b"/a\\b");
        assert_eq!(unescape("/plain"), b"/plain");
        assert_eq!(unescape(r"/trailing\04"), br"/trailing\04");
    }

    #[test]
    fn formats_fd_paths_without_allocating() {
        let mut out = [0u8; 32];
        fd_path(1234, &mut out);
        assert_eq!(
            CStr::from_bytes_until_nul(&out).unwrap(),
            c"/proc/self/fd/1234"
        );
        fd_path(0, &mut out);
        assert_eq!(
            CStr::from_bytes_until_nul(&out).unwrap(),
            c"/proc/self/fd/0"
        );
    }

    #[test]
    fn lists_mount_points_without_proc() {
        let points = mount_points().unwrap();
        assert!(points.iter().any(|(p, _)| p.as_bytes() == b"/"));
        assert!(points
            .iter()
            .all(|(p, _)| !p.as_bytes().starts_with(b"/proc")));
    }
}
