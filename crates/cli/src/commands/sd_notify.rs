//! systemd's readiness protocol (`Type=notify`): one datagram to the socket
//! named by `$NOTIFY_SOCKET` when the server is ready and when it begins to
//! stop, so `systemctl start` returns only once requests are served and
//! units ordered after rouse start after it. Without the variable (not run
//! by systemd) nothing is sent.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `READY=1`); failures are logged, never fatal: a
/// service that works but could not say so is better than one that stops.
pub(crate) fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = address(&path).and_then(|addr| {
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(state.as_bytes(), &addr)
    });
    if let Err(err) = sent {
        tracing::warn!(%err, state, "could not notify systemd");
    }
}

/// `@name` is a socket in the abstract namespace; anything else a path.
fn address(name: &std::ffi::OsStr) -> std::io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    match name.as_bytes().strip_prefix(b"@") {
        Some(abstract_name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name)
        }
        None => SocketAddr::from_pathname(name),
    }
}
