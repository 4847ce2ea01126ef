//! Per-function counters, gauges and histograms, kept as atomics in each
//! function's pool state so the request path takes no lock and allocates
//! nothing. [`crate::Pool::metrics`] snapshots them for rendering.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use crate::placement::Limit;

pub mod history;

use history::History;

/// Upper bounds (seconds) of the duration histograms' buckets; one more
/// bucket past the last catches everything slower (`+Inf`).
pub const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Why an invocation failed, as the `kind` label of `rouse_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Over the function's `timeout` (504, `Sandbox.Timedout`).
    Timeout,
    /// The instance exited while handling the request (`Runtime.ExitError`).
    Crash,
    /// No instance could be started for it (including crash-loop back-off).
    StartFailed,
    /// A lambda handler returned an error.
    FunctionError,
    /// The instance is alive but the request to it failed (502).
    BadGateway,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Timeout,
        ErrorKind::Crash,
        ErrorKind::StartFailed,
        ErrorKind::FunctionError,
        ErrorKind::BadGateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Crash => "crash",
            ErrorKind::StartFailed => "start_failed",
            ErrorKind::FunctionError => "function_error",
            ErrorKind::BadGateway => "bad_gateway",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A fixed-bucket histogram of durations.
#[derive(Default)]
pub(crate) struct Histogram {
    /// Per-bucket (not cumulative) counts; the last one is `+Inf`.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = [0; DURATION_BUCKETS.len() + 1];
        let mut total = 0;
        for (out, bucket) in cumulative.iter_mut().zip(&self.buckets) {
            total += bucket.load(Ordering::Relaxed);
            *out = total;
        }
        HistogramSnapshot {
            cumulative,
            sum_secs: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// A histogram as scraped: cumulative counts per bucket of
/// [`DURATION_BUCKETS`], then `+Inf` (which is the total count).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub cumulative: [u64; DURATION_BUCKETS.len() + 1],
    pub sum_secs: f64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.cumulative[DURATION_BUCKETS.len()]
    }
}

/// Everything counted for one function, owned by its `FunctionPool`.
#[derive(Default)]
pub(crate) struct FunctionMetrics {
    invocations: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Requests refused with 429, by the limit that stopped them.
    throttles: [AtomicU64; Limit::ALL.len()],
    cold_starts: AtomicU64,
    request_duration: Histogram,
    init_duration: Histogram,
    /// Leases alive right now.
    pub concurrent: AtomicU64,
    /// Requests waiting in `Pool::acquire` for a busy function to free a slot.
    pub queued: AtomicU64,
    /// The last hour in 10 s windows, made on the first thing counted: a
    /// function that is loaded but never called keeps only the empty cell.
    /// Behind a lock, unlike the counters: a window is several numbers that
    /// change together; the lock is per function and held for a few adds.
    history: OnceLock<Mutex<History>>,
}

/// Seconds since 1970: the history's windows are wall-clock times, so the
/// dashboard's charts line up with the log's timestamps.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl FunctionMetrics {
    /// One invocation ended after `duration`, failed with `error` if any.
    pub(crate) fn record(&self, error: Option<ErrorKind>, duration: Duration) {
        self.invocations.fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = error {
            self.errors[kind.index()].fetch_add(1, Ordering::Relaxed);
        }
        self.request_duration.observe(duration);
        let in_flight = self.concurrent.load(Ordering::Relaxed);
        let mut history = self.history_mut();
        let now = unix_now();
        history.invocation(now, error.is_some(), duration);
        history.concurrency(now, in_flight);
    }

    /// A request got 429 after queueing, stopped by `limit`.
    pub(crate) fn throttled(&self, limit: Limit) {
        self.throttles[limit as usize].fetch_add(1, Ordering::Relaxed);
        self.history_mut().throttle(unix_now());
    }

    /// An instance became ready `init` after it was spawned.
    pub(crate) fn cold_start(&self, init: Duration) {
        self.cold_starts.fetch_add(1, Ordering::Relaxed);
        self.init_duration.observe(init);
        self.history_mut().cold_start(unix_now(), init);
    }

    /// A lease was taken: one more request in flight.
    pub(crate) fn leased(&self) {
        let in_flight = self.concurrent.fetch_add(1, Ordering::Relaxed) + 1;
        self.history_mut().concurrency(unix_now(), in_flight);
    }

    fn history_mut(&self) -> MutexGuard<'_, History> {
        // Counts only: a panic mid-update leaves nothing unsafe to read.
        self.history
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The last `count` windows up to `now`, oldest first, or `None` when
    /// nothing was ever counted.
    pub(crate) fn series(&self, now: u64, count: usize) -> Option<Vec<history::Slot>> {
        let history = self.history.get()?;
        let history = history.lock().unwrap_or_else(|p| p.into_inner());
        Some(history.series(now, count))
    }

    /// The last `count` windows added up, or `None` when nothing was ever
    /// counted.
    pub(crate) fn total(&self, now: u64, count: usize) -> Option<history::Slot> {
        let history = self.history.get()?;
        let history = history.lock().unwrap_or_else(|p| p.into_inner());
        Some(history.total(now, count))
    }

    pub(crate) fn snapshot(&self, function: &str, instances: [u64; 3]) -> FunctionMetricsSnapshot {
        FunctionMetricsSnapshot {
            function: function.to_string(),
            invocations: self.invocations.load(Ordering::Relaxed),
            errors: ErrorKind::ALL.map(|k| (k, self.errors[k.index()].load(Ordering::Relaxed))),
            throttles: Limit::ALL.map(|l| (l, self.throttles[l as usize].load(Ordering::Relaxed))),
            cold_starts: self.cold_starts.load(Ordering::Relaxed),
            request_duration: self.request_duration.snapshot(),
            init_duration: self.init_duration.snapshot(),
            concurrent: self.concurrent.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            instances,
        }
    }
}

/// Counts a request as queued for as long as it lives, so a request that
/// is cancelled while waiting (client gone) stops being counted too.
pub(crate) struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    pub(crate) fn enter(gauge: &'a AtomicU64) -> Gauge<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Gauge(gauge)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One function's metrics at scrape time.
#[derive(Debug, Clone)]
pub struct FunctionMetricsSnapshot {
    pub function: String,
    pub invocations: u64,
    pub errors: [(ErrorKind, u64); ErrorKind::ALL.len()],
    /// By the limit that refused them.
    pub throttles: [(Limit, u64); Limit::ALL.len()],
    pub cold_starts: u64,
    pub request_duration: HistogramSnapshot,
    pub init_duration: HistogramSnapshot,
    pub concurrent: u64,
    pub queued: u64,
    /// Instances by state, in the order of [`INSTANCE_STATES`].
    pub instances: [u64; 3],
}

/// The `state` label values of `rouse_instances`.
pub const INSTANCE_STATES: [&str; 3] = ["starting", "ready", "draining"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(1)); // le 0.001 (bounds are inclusive)
        h.observe(Duration::from_millis(3)); // le 0.005
        h.observe(Duration::from_millis(700)); // le 1
        h.observe(Duration::from_secs(60)); // +Inf only
        let s = h.snapshot();
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[7], 2); // le 0.5
        assert_eq!(s.cumulative[8], 3); // le 1
        assert_eq!(s.cumulative[12], 3); // le 30
        assert_eq!(s.count(), 4);
        assert!((s.sum_secs - 60.704).abs() < 1e-9);
    }

    #[test]
    fn record_counts_invocations_errors_and_durations() {
        let m = FunctionMetrics::default();
        m.record(None, Duration::from_millis(2));
        m.record(Some(ErrorKind::Timeout), Duration::from_secs(1));
        m.record(Some(ErrorKind::Crash), Duration::from_millis(5));
        m.cold_start(Duration::from_millis(40));
        let s = m.snapshot("f", [0, 1, 0]);
        assert_eq!(s.invocations, 3);
        let errors: Vec<_> = s.errors.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(
            errors,
            [
                ("timeout", 1),
                ("crash", 1),
                ("start_failed", 0),
                ("function_error", 0),
                ("bad_gateway", 0)
            ]
        );
        assert_eq!(s.request_duration.count(), 3);
        assert_eq!(s.cold_starts, 1);
        assert_eq!(s.init_duration.count(), 1);
    }

    #[test]
    fn history_is_made_on_first_activity() {
        let m = FunctionMetrics::default();
        assert!(m.series(unix_now(), 6).is_none());
        m.leased();
        m.record(None, Duration::from_millis(2));
        let total = m.total(unix_now(), 6).expect("history");
        assert_eq!((total.invocations, total.concurrency), (1, 1));
    }

    #[test]
    fn gauge_guard_gives_back_on_drop() {
        let m = FunctionMetrics::default();
        {
            let _a = Gauge::enter(&m.queued);
            let _b = Gauge::enter(&m.queued);
            assert_eq!(m.queued.load(Ordering::Relaxed), 2);
        }
        assert_eq!(m.queued.load(Ordering::Relaxed), 0);
    }
}
