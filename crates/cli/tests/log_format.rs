//! `--log-format json`: every line rouse writes to stderr is one JSON
//! object a log collector can parse, from start to shutdown.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[test]
fn json_logs_parse_line_by_line() {
    let tmp = open_tempdir();
    let mut child = Command::new(rouse_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("ROUSE_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rouse serve");
    let (_, admin) = banner_urls(&mut child);
    // Something to log besides start-up: a refused login and a listing.
    let ls = Command::new(rouse_bin())
        .args(["ls"])
        .env("ROUSE_ENDPOINT", &admin)
        .env("ROUSE_ADMIN_TOKEN", "wrong")
        .output()
        .expect("rouse ls");
    assert!(!ls.status.success());
    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let lines: Vec<String> = stderr.lines().map(|l| l.expect("line")).collect();
    assert!(child.wait().expect("wait").success());
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        let doc: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(doc["timestamp"].is_string(), "{line}");
        assert!(doc["level"].is_string(), "{line}");
        assert!(doc["message"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"rouse started\"")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("\"rouse stopped\"")),
        "{lines:?}"
    );
}
