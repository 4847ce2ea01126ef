//! Deciding when a freshly started instance can take traffic.
//!
//! Requests are forwarded only once the app listens (or its health path says
//! so): forwarding on process start turns every cold start into errors. The
//! default probe is a bare TCP connect, because an HTTP probe on an arbitrary
//! path runs user code and looks like a spurious request.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rouse_manifest::Readiness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Process, SandboxError};

/// First pause between probes. Apps often listen within a millisecond or two
/// of exec, so the first retries must be much finer than a millisecond.
const INITIAL_BACKOFF: Duration = Duration::from_micros(50);
/// Keeps a slow starter from being probed less often than this: a refused
/// local connect costs tens of microseconds, while every millisecond of
/// gap is added to the cold start of an app that becomes ready in it.
const MAX_BACKOFF: Duration = Duration::from_millis(1);
/// Enough for any sane status line; more means this is not an HTTP server.
const MAX_STATUS_LINE: usize = 1024;

pub(crate) async fn wait_ready(
    process: &mut Process,
    port: u16,
    readiness: &Readiness,
    timeout: Duration,
) -> Result<(), SandboxError> {
    let request = readiness
        .path
        .as_deref()
        .map(|path| http_request(path, port));
    let probing = probe_until_ready(port, request.as_deref());
    let exited = async {
        match process.wait().await {
            Ok(status) => status,
            Err(err) => {
                // Without a way to observe the exit, rely on the probe and the
                // timeout alone.
                tracing::warn!(pid = process.pid(), error = %err, "waiting on instance");
                std::future::pending().await
            }
        }
    };
    let raced = async {
        tokio::select! {
            // Exit first: a process that died is not ready, even if something
            // else happens to answer on its port.
            biased;
            status = exited => Err(SandboxError::ExitedBeforeReady { status }),
            () = probing => Ok(()),
        }
    };
    match tokio::time::timeout(timeout, raced).await {
        Ok(result) => result,
        Err(_) => match process.try_status() {
            // It died while the last probe was in flight: say so, it is the
            // more useful error.
            Some(status) => Err(SandboxError::ExitedBeforeReady { status }),
            None => Err(SandboxError::ReadinessTimeout(timeout)),
        },
    }
}

async fn probe_until_ready(port: u16, request: Option<&[u8]>) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut delay = INITIAL_BACKOFF;
    loop {
        if probe_once(addr, request).await {
            return;
        }
        pause(delay).await;
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

async fn probe_once(addr: SocketAddr, request: Option<&[u8]>) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    match request {
        None => true,
        Some(request) => http_ok(&mut stream, request).await.unwrap_or(false),
    }
}

/// Sends `request` and reports whether the status line says 2xx.
async fn http_ok(stream: &mut TcpStream, request: &[u8]) -> std::io::Result<bool> {
    stream.set_nodelay(true)?;
    stream.write_all(request).await?;
    let mut head = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(status_is_success(&head))
}

/// `HTTP/1.x 2xx ...` on the first line.
fn status_is_success(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let version_ok = parts.next().is_some_and(|v| v.starts_with(b"HTTP/"));
    let code = parts.next().unwrap_or_default();
    version_ok && code.len() == 3 && code[0] == b'2' && code.iter().all(u8::is_ascii_digit)
}

fn http_request(path: &str, port: u16) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: */*\r\nUser-Agent: rouse-readiness\r\n\r\n",
        request_target(path)
    )
    .into_bytes()
}

/// The manifest's path as a valid origin-form request target: leading slash,
/// and no bytes that would break the request line or inject headers.
fn request_target(path: &str) -> String {
    let mut target = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        target.push('/');
    }
    for &byte in path.as_bytes() {
        if byte.is_ascii_graphic() {
            target.push(char::from(byte));
        } else {
            target.push_str(&format!("%{byte:02X}"));
        }
    }
    target
}

/// Sleeps for `delay`. tokio's timer has millisecond resolution, so a
/// sub-millisecond delay would become a whole millisecond; those go to a
/// blocking-pool thread, which sleeps for about the time asked.
async fn pause(delay: Duration) {
    if delay < Duration::from_millis(1) {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
    } else {
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert!(status_is_success(b"HTTP/1.1 200 OK\r\n"));
        assert!(status_is_success(b"HTTP/1.0 204 No Content\r\nX: y\r\n"));
        assert!(status_is_success(b"HTTP/1.1 299"));
        assert!(!status_is_success(
            b"HTTP/1.1 500 Internal Server Error\r\n"
        ));
        assert!(!status_is_success(b"HTTP/1.1 404 Not Found\r\n"));
        assert!(!status_is_success(b"HTTP/1.1 301 Moved\r\n"));
        assert!(!status_is_success(b"HTTP/1.1 2000 Odd\r\n"));
        assert!(!status_is_success(b"SSH-2.0-OpenSSH 200\r\n"));
        assert!(!status_is_success(b""));
    }

    #[test]
    fn request_targets_are_sanitised() {
        assert_eq!(request_target("/healthz"), "/healthz");
        assert_eq!(request_target("healthz"), "/healthz");
        assert_eq!(request_target("/a b"), "/a%20b");
        assert_eq!(request_target("/x\r\nHost: evil"), "/x%0D%0AHost:%20evil");
        assert_eq!(request_target("/é"), "/%C3%A9");
        let request = String::from_utf8(http_request("/ready?x=1", 9000)).unwrap();
        assert!(request.starts_with("GET /ready?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"));
        assert!(request.contains("Connection: close\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
    }

    #[tokio::test]
    async fn backoff_pause_is_short() {
        let start = std::time::Instant::now();
        pause(INITIAL_BACKOFF).await;
        assert!(start.elapsed() < Duration::from_millis(50));
    }
}
