//! `GET /metrics`: the pool's counters in the Prometheus text exposition
//! format (version 0.0.4), written by hand.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use rouse_pool::metrics::{
    FunctionMetricsSnapshot, HistogramSnapshot, DURATION_BUCKETS, INSTANCE_STATES,
};

use crate::AdminState;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) async fn metrics(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let mut text = render(&state.pool.metrics(), &ProcessStats::read());
    match rouse_store::AsyncEvents::event_counts(state.store.as_ref()) {
        Ok(counts) => render_async_events(&mut text, &counts),
        Err(err) => tracing::error!(%err, "cannot count async events for /metrics"),
    }
    match stream_ages(&state.store).await {
        Ok(ages) => render_stream_ages(&mut text, &ages),
        Err(err) => tracing::error!(%err, "cannot read stream checkpoints for /metrics"),
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}

/// (function, stream, iterator age in ms: the oldest unprocessed record's
/// age over the stream's shards) for every deployed stream mapping, from
/// the store, so every node of a cluster reports the same.
async fn stream_ages(
    store: &rouse_store::Store,
) -> Result<Vec<(String, String, i64)>, rouse_store::StoreError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let mut ages = Vec::new();
    for f in store.list_functions().await? {
        for event in &f.spec.events {
            let rouse_manifest::Event::Stream(mapping) = event else {
                continue;
            };
            let id = rouse_gateway::stream_mapping_id(&f.name, &mapping.stream);
            let age = store
                .checkpoints_of(&mapping.stream)
                .await?
                .iter()
                .filter(|c| c.mapping == id)
                .map(|c| c.iterator_age_ms(now))
                .max()
                .unwrap_or(0);
            ages.push((f.name.clone(), mapping.stream.clone(), age));
        }
    }
    Ok(ages)
}

/// `rouse_stream_iterator_age_seconds{function, stream}`.
pub(crate) fn render_stream_ages(out: &mut String, ages: &[(String, String, i64)]) {
    let name = "rouse_stream_iterator_age_seconds";
    header(
        out,
        name,
        "Age of the oldest record a stream mapping has not processed yet (0: caught up), over the stream's shards.",
        "gauge",
    );
    for (function, stream, age_ms) in ages {
        let labels = labels(&[("function", function), ("stream", stream)]);
        let _ = writeln!(out, "{name}{labels} {:.3}", *age_ms as f64 / 1000.0);
    }
}

/// rouse's own process, from `/proc/self` (absent elsewhere).
#[derive(Debug, Default)]
pub(crate) struct ProcessStats {
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
}

impl ProcessStats {
    fn read() -> ProcessStats {
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| vm_rss_bytes(&s));
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as u64);
        ProcessStats {
            resident_bytes,
            open_fds,
        }
    }
}

/// `VmRSS:  1234 kB` from `/proc/self/status`, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The whole exposition: every family has its HELP and TYPE even when no
/// function has been called yet, so dashboards see the names from the start.
pub(crate) fn render(functions: &[FunctionMetricsSnapshot], process: &ProcessStats) -> String {
    let mut text = String::new();
    function_families(&mut text, functions);
    process_gauge(
        &mut text,
        "rouse_process_resident_memory_bytes",
        "Resident memory of the rouse process.",
        process.resident_bytes,
    );
    process_gauge(
        &mut text,
        "rouse_process_open_fds",
        "Open file descriptors of the rouse process.",
        process.open_fds,
    );
    text
}

/// The families with a sample per function, in a fixed order.
fn function_families(out: &mut String, functions: &[FunctionMetricsSnapshot]) {
    per_function(
        out,
        functions,
        "rouse_invocations_total",
        "Requests and invocations that reached a function (all but throttled ones).",
        "counter",
        |f| f.invocations,
    );
    by_label(
        out,
        functions,
        "rouse_errors_total",
        "Invocations that failed, by kind: timeout, crash, start_failed, function_error, bad_gateway.",
        ("counter", "kind"),
        |f| f.errors.iter().map(|(kind, n)| (kind.as_str(), *n)).collect(),
    );
    by_label(
        out,
        functions,
        "rouse_throttles_total",
        "Requests refused with 429 after queueing for queueTimeout, by the limit that stopped them: max_instances, burst, node.",
        ("counter", "reason"),
        |f| f.throttles.iter().map(|(limit, n)| (limit.as_str(), *n)).collect(),
    );
    per_function(
        out,
        functions,
        "rouse_cold_starts_total",
        "Instances that started and became ready.",
        "counter",
        |f| f.cold_starts,
    );
    histogram(
        out,
        functions,
        "rouse_request_duration_seconds",
        "Time from arrival to the response head (web) or the whole result (lambda), including cold starts and queueing.",
        |f| &f.request_duration,
    );
    histogram(
        out,
        functions,
        "rouse_init_duration_seconds",
        "Time from spawning an instance to its readiness.",
        |f| &f.init_duration,
    );
    per_function(
        out,
        functions,
        "rouse_concurrent_executions",
        "Requests holding an instance slot right now.",
        "gauge",
        |f| f.concurrent,
    );
    by_label(
        out,
        functions,
        "rouse_instances",
        "Instances by state: starting, ready, draining.",
        ("gauge", "state"),
        |f| INSTANCE_STATES.iter().copied().zip(f.instances).collect(),
    );
    per_function(
        out,
        functions,
        "rouse_queue_depth",
        "Requests waiting for a busy function to free a slot.",
        "gauge",
        |f| f.queued,
    );
}

/// A family with one sample per function.
fn per_function(
    out: &mut String,
    functions: &[FunctionMetricsSnapshot],
    name: &str,
    help: &str,
    kind: &str,
    value: fn(&FunctionMetricsSnapshot) -> u64,
) {
    header(out, name, help, kind);
    for f in functions {
        sample(out, name, &[("function", &f.function)], value(f));
    }
}

/// A family with one sample per function and value of `label`.
fn by_label(
    out: &mut String,
    functions: &[FunctionMetricsSnapshot],
    name: &str,
    help: &str,
    (kind, label): (&str, &str),
    values: fn(&FunctionMetricsSnapshot) -> Vec<(&str, u64)>,
) {
    header(out, name, help, kind);
    for f in functions {
        for (value, n) in values(f) {
            sample(out, name, &[("function", &f.function), (label, value)], n);
        }
    }
}

/// A gauge of the rouse process, left out when it could not be read.
fn process_gauge(out: &mut String, name: &str, help: &str, value: Option<u64>) {
    if let Some(value) = value {
        header(out, name, help, "gauge");
        sample(out, name, &[], value);
    }
}

/// `rouse_async_events{function, state}`: events waiting in the store
/// (pending, claimed or not) and dead letters, per function.
pub(crate) fn render_async_events(
    out: &mut String,
    counts: &[(String, rouse_store::events::EventCounts)],
) {
    header(
        out,
        "rouse_async_events",
        "Async (Event) invocations in the store, by state: pending (waiting or running), dead (dead letters).",
        "gauge",
    );
    for (function, c) in counts {
        sample(
            out,
            "rouse_async_events",
            &[("function", function), ("state", "pending")],
            c.pending,
        );
        sample(
            out,
            "rouse_async_events",
            &[("function", function), ("state", "dead")],
            c.dead,
        );
    }
}

fn histogram(
    out: &mut String,
    functions: &[FunctionMetricsSnapshot],
    name: &str,
    help: &str,
    value: fn(&FunctionMetricsSnapshot) -> &HistogramSnapshot,
) {
    header(out, name, help, "histogram");
    let bucket = format!("{name}_bucket");
    for f in functions {
        let h = value(f);
        for (bound, n) in DURATION_BUCKETS.iter().zip(&h.cumulative) {
            let le = bound.to_string();
            sample(out, &bucket, &[("function", &f.function), ("le", &le)], *n);
        }
        sample(
            out,
            &bucket,
            &[("function", &f.function), ("le", "+Inf")],
            h.count(),
        );
        let labels = labels(&[("function", &f.function)]);
        let _ = writeln!(out, "{name}_sum{labels} {}", h.sum_secs);
        let _ = writeln!(out, "{name}_count{labels} {}", h.count());
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels_: &[(&str, &str)], value: u64) {
    let _ = writeln!(out, "{name}{} {value}", labels(labels_));
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{}\"", escape_label(v));
    }
    s.push('}');
    s
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text escapes backslash and line feed (not quotes).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rouse_pool::metrics::ErrorKind;
    use rouse_pool::Limit;

    fn hist(cumulative_last: u64, sum_secs: f64) -> HistogramSnapshot {
        let mut cumulative = [0; DURATION_BUCKETS.len() + 1];
        for (i, c) in cumulative.iter_mut().enumerate() {
            *c = if i >= 8 { cumulative_last } else { 0 };
        }
        HistogramSnapshot {
            cumulative,
            sum_secs,
        }
    }

    fn snapshot(name: &str) -> FunctionMetricsSnapshot {
        FunctionMetricsSnapshot {
            function: name.into(),
            invocations: 3,
            errors: ErrorKind::ALL.map(|k| (k, u64::from(k == ErrorKind::Timeout))),
            throttles: Limit::ALL.map(|l| (l, 0)),
            cold_starts: 1,
            request_duration: hist(3, 1.5),
            init_duration: hist(1, 0.25),
            concurrent: 2,
            queued: 0,
            instances: [0, 1, 0],
        }
    }

    #[test]
    fn stream_ages_are_seconds_per_function_and_stream() {
        let mut out = String::new();
        super::render_stream_ages(&mut out, &[("f".into(), "orders".into(), 1_500)]);
        assert!(out.contains("# TYPE rouse_stream_iterator_age_seconds gauge"));
        assert!(
            out.contains(
                "rouse_stream_iterator_age_seconds{function=\"f\",stream=\"orders\"} 1.500"
            ),
            "{out}"
        );
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(
            labels(&[("function", "q\""), ("kind", "t")]),
            r#"{function="q\"",kind="t"}"#
        );
        assert_eq!(labels(&[]), "");
    }

    #[test]
    fn renders_families_samples_and_histograms() {
        let text = render(
            &[snapshot("shop-dev-web")],
            &ProcessStats {
                resident_bytes: Some(4096),
                open_fds: Some(9),
            },
        );
        for line in [
            "# TYPE rouse_invocations_total counter",
            r#"rouse_invocations_total{function="shop-dev-web"} 3"#,
            r#"rouse_errors_total{function="shop-dev-web",kind="timeout"} 1"#,
            r#"rouse_errors_total{function="shop-dev-web",kind="bad_gateway"} 0"#,
            "# TYPE rouse_request_duration_seconds histogram",
            r#"rouse_request_duration_seconds_bucket{function="shop-dev-web",le="0.001"} 0"#,
            r#"rouse_request_duration_seconds_bucket{function="shop-dev-web",le="1"} 3"#,
            r#"rouse_request_duration_seconds_bucket{function="shop-dev-web",le="+Inf"} 3"#,
            r#"rouse_request_duration_seconds_sum{function="shop-dev-web"} 1.5"#,
            r#"rouse_request_duration_seconds_count{function="shop-dev-web"} 3"#,
            r#"rouse_init_duration_seconds_count{function="shop-dev-web"} 1"#,
            r#"rouse_concurrent_executions{function="shop-dev-web"} 2"#,
            r#"rouse_instances{function="shop-dev-web",state="ready"} 1"#,
            r#"rouse_instances{function="shop-dev-web",state="starting"} 0"#,
            r#"rouse_queue_depth{function="shop-dev-web"} 0"#,
            "rouse_process_resident_memory_bytes 4096",
            "rouse_process_open_fds 9",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn no_functions_still_names_every_family() {
        let text = render(&[], &ProcessStats::default());
        assert!(text.contains("# TYPE rouse_queue_depth gauge"));
        assert!(!text.contains("rouse_process_open_fds"));
        assert!(text.lines().all(|l| l.starts_with('#')));
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\trouse\nVmHWM:\t  9000 kB\nVmRSS:\t  1234 kB\n";
        assert_eq!(vm_rss_bytes(status), Some(1234 * 1024));
        assert_eq!(vm_rss_bytes("Name: x\n"), None);
    }
}
