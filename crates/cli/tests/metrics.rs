//! `GET /metrics` end to end: real traffic, then the exposition parsed by
//! the Python `prometheus_client` parser (installed by `test.sh`), so the
//! format is checked by a real Prometheus text parser, not by our own.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::*;

/// Prints every sample as JSON: `{"types": {family: type}, "samples": [[name, labels, value]]}`.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
types, samples = {}, []
for family in text_string_to_metric_families(sys.stdin.read()):
    types[family.name] = family.type
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"types": types, "samples": samples}))
"#;

struct Parsed {
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Parsed {
    /// The value of the one sample named `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        found[0]
    }
}

fn parse(text: &str) -> Parsed {
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write exposition");
    let out = child.wait_with_output().expect("python3 output");
    assert!(
        out.status.success(),
        "prometheus_client rejected the exposition (or is missing: run ./test.sh):\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("parser JSON");
    let types = doc["types"]
        .as_object()
        .expect("types")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let samples = doc["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            let labels = s[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            (
                s[0].as_str().expect("name").to_string(),
                labels,
                s[2].as_f64().expect("value"),
            )
        })
        .collect();
    Parsed { types, samples }
}

async fn scrape(http: &HttpClient, server: &Server) -> Response {
    let auth = format!("Bearer {TOKEN}");
    request(
        http,
        "GET",
        &format!("{}/metrics", server.admin),
        &[("authorization", &auth)],
        Bytes::new(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_the_traffic_did() {
    let tmp = open_tempdir();
    let server = Server::start(&tmp.path().join("data"));
    let manifest = "service: met\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    timeout: 1\n    events:\n      - http: { path: \"/{proxy+}\", method: any }\n";
    let dir = project(tmp.path(), "met", manifest, &[("app.py", &fixture_app())]);
    server.deploy(&dir);
    let http = client();
    let function = "met-dev-app";

    let unauthorized = get(&http, &format!("{}/metrics", server.admin)).await;
    assert_eq!(unauthorized.status, 401, "the metrics need the admin token");

    // 10 requests: 5 fine, 2 over the 1 s timeout, 1 crash, 2 fine again.
    let mut expected = Vec::new();
    for _ in 0..5 {
        expected.push((
            get(&http, &format!("{}/", server.gateway)).await.status,
            200,
        ));
    }
    for _ in 0..2 {
        let slow = get(&http, &format!("{}/sleep?s=5", server.gateway)).await;
        expected.push((slow.status, 504));
    }
    let crash = get(&http, &format!("{}/crash", server.gateway)).await;
    expected.push((crash.status, 502));
    for _ in 0..2 {
        expected.push((
            get(&http, &format!("{}/", server.gateway)).await.status,
            200,
        ));
    }
    for (i, (got, want)) in expected.iter().enumerate() {
        assert_eq!(got, want, "request {i}");
    }
    let n = expected.len() as f64;

    let resp = scrape(&http, &server).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let content_type = resp
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let m = parse(&resp.text());

    for (family, kind) in [
        ("rouse_invocations", "counter"),
        ("rouse_errors", "counter"),
        ("rouse_throttles", "counter"),
        ("rouse_cold_starts", "counter"),
        ("rouse_request_duration_seconds", "histogram"),
        ("rouse_init_duration_seconds", "histogram"),
        ("rouse_concurrent_executions", "gauge"),
        ("rouse_instances", "gauge"),
        ("rouse_queue_depth", "gauge"),
        ("rouse_process_resident_memory_bytes", "gauge"),
        ("rouse_process_open_fds", "gauge"),
    ] {
        assert_eq!(
            m.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    let f = [("function", function)];
    assert_eq!(m.value("rouse_invocations_total", &f), n);
    let errors = |kind: &str| {
        m.value(
            "rouse_errors_total",
            &[("function", function), ("kind", kind)],
        )
    };
    assert_eq!(errors("timeout"), 2.0);
    assert_eq!(errors("crash"), 1.0);
    assert_eq!(errors("bad_gateway"), 0.0);
    assert_eq!(errors("start_failed"), 0.0);
    assert_eq!(errors("function_error"), 0.0);
    for reason in ["max_instances", "burst", "node"] {
        let labels = [("function", function), ("reason", reason)];
        assert_eq!(m.value("rouse_throttles_total", &labels), 0.0);
    }
    // The first start, one after each timed-out instance and one after the crash.
    let cold = m.value("rouse_cold_starts_total", &f);
    assert!((1.0..=4.0).contains(&cold), "cold starts {cold}");
    assert_eq!(m.value("rouse_init_duration_seconds_count", &f), cold);
    assert_eq!(m.value("rouse_request_duration_seconds_count", &f), n);
    assert_eq!(
        m.value(
            "rouse_request_duration_seconds_bucket",
            &[("function", function), ("le", "+Inf")]
        ),
        n
    );
    // The two timeouts took at least their 1 s each.
    let sum = m.value("rouse_request_duration_seconds_sum", &f);
    assert!(sum >= 2.0, "duration sum {sum}");
    let under_half_second = m.value(
        "rouse_request_duration_seconds_bucket",
        &[("function", function), ("le", "0.5")],
    );
    assert!(under_half_second <= n - 2.0, "{under_half_second}");
    let ready = m.value(
        "rouse_instances",
        &[("function", function), ("state", "ready")],
    );
    assert_eq!(ready, 1.0, "one warm instance serves the last requests");
    assert_eq!(m.value("rouse_queue_depth", &f), 0.0);
    assert!(m.value("rouse_process_resident_memory_bytes", &[]) > 0.0);
    assert!(m.value("rouse_process_open_fds", &[]) > 0.0);

    // A lease lives until its response body is sent, a moment after the
    // client has it: poll for the gauge to settle.
    let mut concurrent = f64::NAN;
    for _ in 0..50 {
        let text = scrape(&http, &server).await.text();
        concurrent = parse(&text).value("rouse_concurrent_executions", &f);
        if concurrent == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(concurrent, 0.0, "no request in flight");
}
