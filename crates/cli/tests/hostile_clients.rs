//! Clients that connect and hold on: silent connections, slow request
//! heads and floods from one address must not take the gateway or the
//! admin API away from everyone else. Real `rouse serve`, raw sockets.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// Lets this test process hold a few thousand sockets.
fn raise_open_files() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
}

fn addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().expect("address")
}

/// Whether the server closed `stream` (EOF or reset) rather than keeping
/// it open with nothing to say.
fn closed_by_server(stream: &TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let mut reader = stream;
    match reader.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// One `GET` on a fresh connection from `from`; the status line's code.
async fn status_from(from: &str, to: SocketAddr, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(format!("{from}:0").parse().ok()?).ok()?;
    let mut stream = socket.connect(to).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn web_project(parent: &std::path::Path) -> std::path::PathBuf {
    let manifest = "service: hostile\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n";
    project(parent, "hostile", manifest, &[("app.py", &fixture_app())])
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_connections_are_closed_at_the_header_timeout_while_others_are_served() {
    raise_open_files();
    let tmp = open_tempdir();
    let server = Server::start_with(
        &tmp.path().join("data"),
        &[
            "--header-timeout",
            "2",
            "--max-connections-per-client",
            "5000",
        ],
    );
    server.deploy(&web_project(tmp.path()));
    let gateway = addr(&server.gateway);
    let http = client();
    assert_eq!(
        get(&http, &format!("{}/warm", server.gateway)).await.status,
        200
    );

    let opened = Instant::now();
    let idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(gateway).expect("connect"))
        .collect();
    // Slow request heads: one header line every half second, for ever.
    let slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(gateway).expect("connect");
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .expect("write");
            s
        })
        .collect();
    let trickle = std::thread::spawn({
        let mut slow: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().expect("clone")).collect();
        move || {
            for _ in 0..12 {
                std::thread::sleep(Duration::from_millis(500));
                for s in &mut slow {
                    let _ = s.write_all(b"X-Slow: 1\r\n");
                }
            }
        }
    });

    // While they are held: the function and the admin API answer.
    for i in 0..20 {
        let resp = get(&http, &format!("{}/busy/{i}", server.gateway)).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let ls = server.cli(&["ls"]);
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    assert!(
        opened.elapsed() < Duration::from_millis(1500),
        "the checks above ran before the timeout ({:?}), so the early check means something",
        opened.elapsed()
    );
    // Not closed early: a sample is still open before the timeout.
    for s in idle.iter().step_by(100) {
        assert!(!closed_by_server(s), "closed before the header timeout");
    }

    tokio::time::sleep(Duration::from_secs(2) + Duration::from_millis(1500)).await;
    let still_open = idle.iter().filter(|s| !closed_by_server(s)).count();
    assert_eq!(
        still_open, 0,
        "idle connections open after the header timeout"
    );
    let slow_open = slow.iter().filter(|s| !closed_by_server(s)).count();
    assert_eq!(
        slow_open, 0,
        "slow request heads open after the header timeout"
    );
    let _ = trickle.join();
    assert_eq!(
        get(&http, &format!("{}/after", server.gateway))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_caps_new_connections_get_503_and_the_admin_api_still_answers() {
    raise_open_files();
    let tmp = open_tempdir();
    let server = Server::start_with(
        &tmp.path().join("data"),
        &[
            "--max-connections",
            "20",
            "--max-connections-per-client",
            "10",
        ],
    );
    let gateway = addr(&server.gateway);
    let _held: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(gateway).expect("connect"))
        .collect();
    // Accepts are asynchronous: give the server a moment to count them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(status_from("127.0.0.1", gateway, "/").await, Some(503));
    // Another address still has room, and gets the gateway's own 404.
    assert_eq!(status_from("127.0.0.2", gateway, "/").await, Some(404));

    let _more: Vec<TcpStream> = (0..10)
        .map(|i| {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            let from: SocketAddr = format!("127.0.0.{}:0", 3 + i).parse().expect("from");
            socket.bind(&from.into()).expect("bind");
            socket.connect(&gateway.into()).expect("connect");
            socket.into()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        status_from("127.0.0.200", gateway, "/").await,
        Some(503),
        "the total cap"
    );

    let ls = server.cli(&["ls"]);
    assert!(
        ls.status.success(),
        "the admin API has a budget of its own: {}",
        String::from_utf8_lossy(&ls.stderr)
    );
}
