//! Client mistakes in the protocol get 400 from the gateway and are not
//! counted against the function; dot segments are normalised before
//! routing. Raw sockets, so the bytes are exactly the client's.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `raw` on a fresh connection; the answer's status and text (until
/// rouse closes or 5 s pass).
async fn exchange(gateway: &str, raw: &[u8]) -> (u16, String) {
    let addr = gateway.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(raw).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the head and its declared body are in (or the connection ends).
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

fn body_of(text: &str) -> serde_json::Value {
    let (_, body) = text.split_once("\r\n\r\n").expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn client_protocol_errors_get_400_and_dot_segments_are_normalised() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let manifest = "service: proto\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n";
    server.deploy(&project(
        tmp.path(),
        "proto",
        manifest,
        &[("app.py", &fixture_app())],
    ));
    let gw = &server.gateway;
    let warm = get(&client(), &format!("{gw}/warm")).await;
    assert_eq!(warm.status, 200, "{}", warm.text());

    // A chunk size that is not hex, after a good chunk.
    let (status, text) = exchange(
        gw,
        b"POST /echo HTTP/1.1\r\nHost: proto\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nrest\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{text}");

    let (status, text) = exchange(gw, b"OPTIONS * HTTP/1.1\r\nHost: proto\r\n\r\n").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("allow: get, head, post"),
        "{text}"
    );

    let (status, text) = exchange(gw, b"GET /x HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("missing Host header"), "{text}");
    // HTTP/1.0 has no Host requirement.
    let (status, text) = exchange(gw, b"GET /x HTTP/1.0\r\n\r\n").await;
    assert_eq!(status, 200, "{text}");

    for (sent, seen) in [
        ("/a/../hello?q=1", "/hello?q=1"),
        ("/a/%2e%2E/b/./c", "/b/c"),
    ] {
        let raw = format!("GET {sent} HTTP/1.1\r\nHost: proto\r\nConnection: close\r\n\r\n");
        let (status, text) = exchange(gw, raw.as_bytes()).await;
        assert_eq!(status, 200, "{sent}: {text}");
        assert_eq!(body_of(&text)["path"], seen, "{sent}");
    }
    let (status, text) = exchange(
        gw,
        b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: proto\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{text}");

    // None of it counts as the function's failure.
    let auth = format!("Bearer {TOKEN}");
    let metrics = request(
        &client(),
        "GET",
        &format!("{}/metrics", server.admin),
        &[("authorization", &auth)],
        "",
    )
    .await;
    let text = metrics.text();
    let bad = text
        .lines()
        .find(|l| l.starts_with("rouse_errors_total") && l.contains("kind=\"bad_gateway\""))
        .unwrap_or_else(|| panic!("no bad_gateway line in {text}"));
    assert!(bad.ends_with(" 0"), "{bad}");
    assert!(get(&client(), &format!("{gw}/after")).await.status == 200);
}
