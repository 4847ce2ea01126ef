//! Run by systemd with `Type=notify`: rouse says READY=1 once its gateway
//! answers and STOPPING=1 when SIGTERM arrives.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn next_state(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn tells_systemd_when_ready_and_when_stopping() {
    let tmp = open_tempdir();
    let socket_path = tmp.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut child = Command::new(rouse_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .env("ROUSE_ADMIN_TOKEN", TOKEN)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rouse serve");
    let (gateway, _) = banner_urls(&mut child);

    assert_eq!(next_state(&socket), "READY=1");
    // Ready means serving: the gateway answers (404: nothing deployed).
    let resp = get(&client(), &format!("{gateway}/nothing-here")).await;
    assert_eq!(resp.status, 404, "{}", resp.text());

    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    assert_eq!(next_state(&socket), "STOPPING=1");
    let status = child.wait().expect("rouse exits");
    assert!(status.success(), "{status:?}");
}
