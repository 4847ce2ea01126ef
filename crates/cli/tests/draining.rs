//! SIGTERM while keep-alive clients keep sending: no request written to
//! a connection is left without an answer. Real `rouse serve`, raw sockets.
//!
//! What counts as a failure, precisely: a request whose bytes were written
//! to a connection that then ended without a complete response. Not a
//! failure: a connect that is refused (the listener is closed; nothing was
//! sent, so the client may retry elsewhere), and a connection ending after
//! a response that said `Connection: close`. The clients are naive on
//! purpose: they never look for a close before writing, they only obey
//! `Connection: close`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Default)]
struct Tally {
    answered: AtomicUsize,
    failed: AtomicUsize,
    told_to_close: AtomicUsize,
}

/// One response head and body; `None` if the connection ended first.
/// Returns whether the response said `Connection: close`.
async fn read_response(stream: &mut BufReader<TcpStream>) -> Option<bool> {
    let mut length = 0usize;
    let mut close = false;
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if first {
            first = false;
            if !line.starts_with("HTTP/1.1 200") {
                return None;
            }
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if lower.starts_with("connection:") && lower.contains("close") {
            close = true;
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(close)
}

async fn client_loop(addr: String, tally: Arc<Tally>) {
    loop {
        let Ok(stream) = TcpStream::connect(&addr).await else {
            return; // refused: the server has stopped listening
        };
        let mut stream = BufReader::new(stream);
        loop {
            let sent = stream
                .get_mut()
                .write_all(b"GET /x HTTP/1.1\r\nHost: drain\r\n\r\n")
                .await;
            match (sent, read_response(&mut stream).await) {
                (Ok(()), Some(close)) => {
                    tally.answered.fetch_add(1, Ordering::Relaxed);
                    if close {
                        tally.told_to_close.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                _ => {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            // Idle between requests, so SIGTERM finds most connections idle.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_answers_every_request_keep_alive_clients_send() {
    let tmp = open_tempdir();
    let mut server = Server::start(&tmp.path().join("data"));
    let manifest = "service: drain\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    concurrency: 50\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n";
    server.deploy(&project(
        tmp.path(),
        "drain",
        manifest,
        &[("app.py", &fixture_app())],
    ));
    assert_eq!(
        get(&client(), &format!("{}/warm", server.gateway))
            .await
            .status,
        200
    );

    let addr = server.gateway.trim_start_matches("http://").to_string();
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..16)
        .map(|_| tokio::spawn(client_loop(addr.clone(), tally.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = tally.answered.load(Ordering::Relaxed);
    assert!(before > 16, "the clients are running ({before} answered)");
    let code = server.terminate();
    for c in clients {
        tokio::time::timeout(Duration::from_secs(10), c)
            .await
            .expect("clients end once the server is gone")
            .expect("client task");
    }
    assert_eq!(code, Some(0));
    let failed = tally.failed.load(Ordering::Relaxed);
    let told = tally.told_to_close.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "requests written but never answered");
    assert!(told >= 1, "draining connections are told to close ({told})");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_that_never_spoke_does_not_hold_up_shutdown() {
    let tmp = open_tempdir();
    let mut server = Server::start(&tmp.path().join("data"));
    let addr = server.gateway.trim_start_matches("http://").to_string();
    let _silent = TcpStream::connect(&addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    assert_eq!(server.terminate(), Some(0));
    // The drain timeout is 30 s and the header timeout 30 s; neither applies.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
}
