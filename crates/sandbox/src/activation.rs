//! Socket activation (systemd's convention): rouse binds the instance's
//! listening socket and the app inherits it as fd 3, with `LISTEN_FDS=1`
//! and `LISTEN_PID` set to the app's own pid. Connections queue in the
//! kernel from the moment rouse binds, so nobody waits for the app to start
//! listening.
//!
//! The pid is known only after fork (and, in a pid namespace, only to the
//! app itself), so the environment is prepared in the parent with a
//! fixed-width placeholder that the child fills in before it calls
//! `execve` itself — std's exec would use its own copy of the environment.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc::{self, c_char};

use crate::confine::write_decimal;

const LISTEN_FD: libc::c_int = 3;
const PID_PREFIX: &[u8] = b"LISTEN_PID=";
/// Room for any pid (at most 2^22 on Linux, 10 digits for any u32).
const PID_WIDTH: usize = 10;

/// What the child needs to exec with the socket; built in the parent.
pub(crate) struct Activation {
    listener: TcpListener,
    program: CString,
    /// Owned strings behind `argv` and `envp` (their heap buffers never move).
    _args: Vec<CString>,
    env: Vec<Vec<u8>>,
    pid_entry: usize,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

// SAFETY: the raw pointers point into buffers this struct owns and never
// reallocates; they are only dereferenced by `execve` in the forked child.
unsafe impl Send for Activation {}
unsafe impl Sync for Activation {}

impl Activation {
    pub(crate) fn new(
        listener: TcpListener,
        program: &Path,
        argv: &[String],
        env: &BTreeMap<String, String>,
    ) -> io::Result<Activation> {
        let nul = |e| io::Error::new(io::ErrorKind::InvalidInput, e);
        let program = CString::new(program.as_os_str().as_bytes()).map_err(nul)?;
        let args: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(nul))
            .collect::<Result<_, _>>()?;
        let mut entries: Vec<Vec<u8>> = env
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "LISTEN_FDS" | "LISTEN_PID" | "LISTEN_FDNAMES"))
            .map(|(k, v)| {
                let entry = CString::new(format!("{k}={v}")).map_err(nul)?;
                Ok(entry.into_bytes_with_nul())
            })
            .collect::<io::Result<_>>()?;
        entries.push(b"LISTEN_FDS=1\0".to_vec());
        let mut pid = PID_PREFIX.to_vec();
        pid.extend_from_slice(&[b'0'; PID_WIDTH]);
        pid.push(0);
        entries.push(pid);
        let pid_entry = entries.len() - 1;
        let argv = args
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp = entries
            .iter()
            .map(|e| e.as_ptr().cast())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Ok(Activation {
            listener,
            program,
            _args: args,
            env: entries,
            pid_entry,
            argv,
            envp,
        })
    }

    /// In the child that is to become the app: the socket to fd 3, its own
    /// pid into `LISTEN_PID`, then `execve`. Returns only on failure.
    ///
    /// # Safety
    /// Only between fork and exec.
    pub(crate) unsafe fn exec(&mut self) -> io::Result<()> {
        let fd = self.listener.as_raw_fd();
        if fd == LISTEN_FD {
            // Already in place; dup2 would keep close-on-exec set.
            if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(fd, LISTEN_FD) != LISTEN_FD {
            return Err(io::Error::last_os_error());
        }
        let entry = &mut self.env[self.pid_entry];
        let digits = &mut entry[PID_PREFIX.len()..];
        let len = write_decimal(libc::getpid().unsigned_abs(), digits);
        digits[len] = 0;
        libc::execve(
            self.program.as_ptr(),
            self.argv.as_ptr(),
            self.envp.as_ptr(),
        );
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pids_in_place() {
        let mut out = [b'0'; PID_WIDTH + 1];
        let len = write_decimal(4_194_304, &mut out);
        assert_eq!(&out[..len], b"4194304");
        assert_eq!(write_decimal(7, &mut out), 1);
        assert_eq!(out[0], b'7');
    }

    #[test]
    fn environment_has_the_placeholder_and_no_stale_listen_vars() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let env = BTreeMap::from([
            ("A".to_string(), "1".to_string()),
            ("LISTEN_PID".to_string(), "99".to_string()),
        ]);
        let act =
            Activation::new(listener, Path::new("/bin/true"), &["true".into()], &env).unwrap();
        let names: Vec<&[u8]> = act.env.iter().map(|e| &e[..e.len() - 1]).collect();
        assert_eq!(
            names,
            [&b"A=1"[..], b"LISTEN_FDS=1", b"LISTEN_PID=0000000000"]
        );
        assert_eq!(act.envp.len(), 4, "null-terminated");
        assert!(act.envp[3].is_null() && act.argv[1].is_null());
    }
}
