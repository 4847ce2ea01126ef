//! The scheduler on tokio's paused clock: hours of schedule run in
//! milliseconds, and the wall clock the scheduler reads is derived from the
//! paused clock plus an offset a test can move to fake a clock change or a
//! suspended machine.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use rouse_triggers::calendar::{system_time, DateTime};
use rouse_triggers::{Clock, Invoke, Schedule, Scheduler, Tick};
use tokio::time::{sleep, Instant};

/// Wall time = `base` + paused-clock time since creation + `offset_ms`.
struct TestClock {
    base: SystemTime,
    start: Instant,
    offset_ms: AtomicI64,
    reads: AtomicUsize,
}

impl TestClock {
    fn new(base: &str) -> Arc<TestClock> {
        Arc::new(TestClock {
            base: system_time(t(base)).expect("base time"),
            start: Instant::now(),
            offset_ms: AtomicI64::new(0),
            reads: AtomicUsize::new(0),
        })
    }

    /// Moves the wall clock without moving tokio's clock, as setting the
    /// system time or resuming from suspend does.
    fn jump(&self, by_seconds: i64) {
        self.offset_ms
            .fetch_add(by_seconds * 1000, Ordering::SeqCst);
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let offset = self.offset_ms.load(Ordering::SeqCst);
        let wall = self.base + self.start.elapsed();
        if offset >= 0 {
            wall + Duration::from_millis(offset.unsigned_abs())
        } else {
            wall - Duration::from_millis(offset.unsigned_abs())
        }
    }
}

/// A fired tick and the wall time its invocation started.
#[derive(Debug, Clone, PartialEq)]
struct Fired {
    tick: Tick,
    at: SystemTime,
}

type Log = Arc<Mutex<Vec<Fired>>>;

/// An invoke callback that records each tick, then takes `busy` to finish.
fn recorder(clock: Arc<TestClock>, busy: Duration) -> (Invoke, Log) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let invoke: Invoke = Arc::new(move |tick| {
        let sink = Arc::clone(&sink);
        let clock = Arc::clone(&clock);
        async move {
            let at = clock.now();
            sink.lock().expect("log").push(Fired { tick, at });
            sleep(busy).await;
        }
        .boxed()
    });
    (invoke, log)
}

fn setup(base: &str) -> (Scheduler, Arc<TestClock>, Log) {
    let clock = TestClock::new(base);
    let (invoke, log) = recorder(Arc::clone(&clock), Duration::ZERO);
    let scheduler = Scheduler::with_clock(invoke, clock.clone());
    (scheduler, clock, log)
}

fn t(text: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| -> u32 {
        text.get(range)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad test time {text}"))
    };
    DateTime::new(
        number(0..4) as i32,
        number(5..7),
        number(8..10),
        number(11..13),
        number(14..16),
        number(17..19),
    )
    .unwrap_or_else(|| panic!("impossible test time {text}"))
    .to_unix()
}

fn show(secs: i64) -> String {
    DateTime::from_unix(secs).to_string()
}

fn schedules(expressions: &[&str]) -> Vec<Schedule> {
    expressions
        .iter()
        .map(|e| Schedule::parse(e).unwrap_or_else(|err| panic!("{e}: {err}")))
        .collect()
}

/// Takes what fired so far as (function, index, scheduled time) rows.
fn drain(log: &Log) -> Vec<(String, usize, String)> {
    std::mem::take(&mut *log.lock().expect("log"))
        .into_iter()
        .map(|f| (f.tick.function, f.tick.index, show(f.tick.scheduled)))
        .collect()
}

fn rows(expected: &[(&str, usize, &str)]) -> Vec<(String, usize, String)> {
    expected
        .iter()
        .map(|(f, i, at)| (f.to_string(), *i, at.to_string()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn fires_on_time_and_in_order_across_functions() {
    let (scheduler, _clock, log) = setup("2024-01-01T00:00:00Z");
    scheduler.set_function("every5", schedules(&["rate(5 minutes)"]));
    scheduler.set_function(
        "two",
        schedules(&["cron(7 * * * ? *)", "cron(0/20 * * * ? *)"]),
    );
    sleep(Duration::from_secs(30 * 60 + 30)).await;

    let fired = log.lock().expect("log").clone();
    for f in &fired {
        // Paused time makes "on time" exact.
        assert_eq!(f.at, system_time(f.tick.scheduled).expect("time"), "{f:?}");
        assert_eq!(f.tick.late, Duration::ZERO);
        assert!(!f.tick.coalesced);
    }
    assert_eq!(
        fired
            .iter()
            .map(|f| f.tick.expression.as_str())
            .collect::<Vec<_>>()[..2],
        ["rate(5 minutes)", "cron(7 * * * ? *)"]
    );
    assert_eq!(
        drain(&log),
        rows(&[
            ("every5", 0, "2024-01-01T00:05:00Z"),
            ("two", 0, "2024-01-01T00:07:00Z"),
            ("every5", 0, "2024-01-01T00:10:00Z"),
            ("every5", 0, "2024-01-01T00:15:00Z"),
            ("every5", 0, "2024-01-01T00:20:00Z"),
            ("two", 1, "2024-01-01T00:20:00Z"),
            ("every5", 0, "2024-01-01T00:25:00Z"),
            ("every5", 0, "2024-01-01T00:30:00Z"),
        ])
    );
    assert_eq!(
        scheduler.next_fire("every5"),
        Some(t("2024-01-01T00:35:00Z"))
    );
    assert_eq!(scheduler.next_fire("two"), Some(t("2024-01-01T00:40:00Z")));
    assert_eq!(scheduler.next_fire("unknown"), None);
}

#[tokio::test(start_paused = true)]
async fn sleeps_without_waking_while_there_is_nothing_to_fire() {
    let (scheduler, clock, log) = setup("2024-01-01T00:00:00Z");
    sleep(Duration::from_secs(1)).await;
    let reads = clock.reads();
    sleep(Duration::from_secs(86_400)).await;
    assert_eq!(clock.reads(), reads, "the timer woke with no schedules");

    // A schedule that never fires again is the same as none.
    scheduler.set_function("feb30", schedules(&["cron(0 0 30 2 ? *)"]));
    assert_eq!(scheduler.next_fire("feb30"), None);
    sleep(Duration::from_secs(1)).await;
    let reads = clock.reads();
    sleep(Duration::from_secs(86_400)).await;
    assert_eq!(clock.reads(), reads, "the timer woke for a dead schedule");

    // And so is a removed one.
    scheduler.set_function("f", schedules(&["rate(1 minute)"]));
    sleep(Duration::from_secs(90)).await;
    scheduler.remove_function("f");
    sleep(Duration::from_secs(1)).await;
    let reads = clock.reads();
    sleep(Duration::from_secs(86_400)).await;
    assert_eq!(clock.reads(), reads, "the timer woke after removal");
    assert_eq!(drain(&log), rows(&[("f", 0, "2024-01-03T00:01:00Z")]));
}

#[tokio::test(start_paused = true)]
async fn set_function_replaces_and_remove_function_stops() {
    let (scheduler, _clock, log) = setup("2024-01-01T00:00:00Z");
    scheduler.set_function("f", schedules(&["rate(5 minutes)"]));
    sleep(Duration::from_secs(11 * 60)).await;
    scheduler.set_function("f", schedules(&["rate(1 hour)"]));
    sleep(Duration::from_secs(80 * 60)).await; // to 01:31
    scheduler.remove_function("f");
    scheduler.set_function("g", Vec::new()); // an empty list is a removal
    sleep(Duration::from_secs(3 * 3600)).await;
    assert_eq!(
        drain(&log),
        rows(&[
            ("f", 0, "2024-01-01T00:05:00Z"),
            ("f", 0, "2024-01-01T00:10:00Z"),
            ("f", 0, "2024-01-01T01:00:00Z"),
        ])
    );
    assert_eq!(scheduler.next_fire("f"), None);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_runtime_fires_once_then_carries_on() {
    let (scheduler, _clock, log) = setup("2024-01-01T00:00:00Z");
    scheduler.set_function("f", schedules(&["rate(5 minutes)"]));
    sleep(Duration::from_secs(12 * 60 + 30)).await;
    // Nothing runs for three hours, then everything does at once.
    tokio::time::advance(Duration::from_secs(3 * 3600)).await;
    sleep(Duration::from_secs(8 * 60)).await; // to 03:20:30
    let fired = std::mem::take(&mut *log.lock().expect("log"));
    let summary: Vec<(String, bool, u64)> = fired
        .iter()
        .map(|f| {
            (
                show(f.tick.scheduled),
                f.tick.coalesced,
                f.tick.late.as_secs(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("2024-01-01T00:05:00Z".to_string(), false, 0),
            ("2024-01-01T00:10:00Z".to_string(), false, 0),
            // One tick for the 36 missed, 2h57m30s late …
            ("2024-01-01T00:15:00Z".to_string(), true, 10_650),
            // … then on schedule again from now.
            ("2024-01-01T03:15:00Z".to_string(), false, 0),
            ("2024-01-01T03:20:00Z".to_string(), false, 0),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_jump_forward_fires_once_within_the_recheck() {
    let (scheduler, clock, log) = setup("2024-01-01T00:00:00Z");
    scheduler.set_function("f", schedules(&["rate(5 minutes)"]));
    scheduler.set_function("daily", schedules(&["cron(0 0 * * ? *)"]));
    sleep(Duration::from_secs(12 * 60 + 30)).await;
    // The machine slept for three days: tokio's clock did not move.
    clock.jump(3 * 86_400);
    sleep(Duration::from_secs(60)).await; // the wake at 00:13 sees it
    let late: Vec<(String, String, bool)> = std::mem::take(&mut *log.lock().expect("log"))
        .into_iter()
        .filter(|f| f.tick.late > Duration::ZERO)
        .map(|f| (f.tick.function, show(f.tick.scheduled), f.tick.coalesced))
        .collect();
    assert_eq!(
        late,
        [
            ("f".to_string(), "2024-01-01T00:15:00Z".to_string(), true),
            (
                "daily".to_string(),
                "2024-01-02T00:00:00Z".to_string(),
                true
            ),
        ]
    );
    sleep(Duration::from_secs(7 * 60)).await; // wall 2024-01-04T00:20:30
    assert_eq!(
        drain(&log),
        rows(&[
            ("f", 0, "2024-01-04T00:15:00Z"),
            ("f", 0, "2024-01-04T00:20:00Z"),
        ])
    );
    assert_eq!(
        scheduler.next_fire("daily"),
        Some(t("2024-01-05T00:00:00Z"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_set_back_replans_instead_of_going_quiet() {
    let (scheduler, clock, log) = setup("2024-01-01T00:00:00Z");
    scheduler.set_function("f", schedules(&["rate(5 minutes)"]));
    sleep(Duration::from_secs(12 * 60 + 30)).await;
    drain(&log);
    clock.jump(-2 * 3600); // now 2023-12-31T22:12:30
    sleep(Duration::from_secs(8 * 60)).await;
    assert_eq!(
        drain(&log),
        rows(&[
            ("f", 0, "2023-12-31T22:15:00Z"),
            ("f", 0, "2023-12-31T22:20:00Z"),
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn a_small_step_back_only_delays() {
    let (scheduler, clock, log) = setup("2024-01-01T00:00:00Z");
    let noon = || schedules(&["cron(0 12 * * ? *)"]);
    scheduler.set_function("f", schedules(&["rate(1 minute)"]));
    sleep(Duration::from_secs(90)).await;
    // Each change makes the timer look at the clock: at 00:01:30, then at
    // 00:00:40 after the clock is stepped back 50 seconds.
    scheduler.set_function("g", noon());
    tokio::task::yield_now().await;
    clock.jump(-50);
    scheduler.set_function("h", noon());
    sleep(Duration::from_secs(150)).await; // wall 00:03:10
    assert_eq!(
        drain(&log),
        rows(&[
            ("f", 0, "2024-01-01T00:01:00Z"), // once, before the step
            ("f", 0, "2024-01-01T00:02:00Z"),
            ("f", 0, "2024-01-01T00:03:00Z"),
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn redeploying_an_unchanged_schedule_keeps_a_due_tick() {
    let (scheduler, clock, log) = setup("2024-01-01T00:00:00Z");
    scheduler.set_function("f", schedules(&["rate(5 minutes)", "rate(1 hour)"]));
    // The wall clock reaches 00:05:00 before the timer task has looked …
    clock.jump(5 * 60);
    // … and the function is redeployed with one of its schedules unchanged.
    scheduler.set_function("f", schedules(&["rate(5 minutes)", "rate(2 hours)"]));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(drain(&log), rows(&[("f", 0, "2024-01-01T00:05:00Z")]));
    assert_eq!(scheduler.next_fire("f"), Some(t("2024-01-01T00:10:00Z")));
}

#[tokio::test(start_paused = true)]
async fn slow_invocations_do_not_hold_up_ticks() {
    let clock = TestClock::new("2024-01-01T00:00:00Z");
    let (invoke, log) = recorder(Arc::clone(&clock), Duration::from_secs(3600));
    let scheduler = Scheduler::with_clock(invoke, clock.clone());
    scheduler.set_function("slow", schedules(&["rate(1 minute)"]));
    scheduler.set_function("other", schedules(&["cron(30 0 * * ? *)"]));
    sleep(Duration::from_secs(31 * 60 + 30)).await;
    let fired = std::mem::take(&mut *log.lock().expect("log"));
    assert_eq!(
        fired.iter().filter(|f| f.tick.function == "slow").count(),
        31
    );
    assert!(fired.iter().all(|f| f.tick.late == Duration::ZERO));
    assert!(fired.iter().any(|f| f.tick.function == "other"));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_callback_does_not_stop_the_timer() {
    let clock = TestClock::new("2024-01-01T00:00:00Z");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let invoke: Invoke = Arc::new(move |_tick| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        assert_ne!(n, 0, "the first invocation fails");
        async {}.boxed()
    });
    let scheduler = Scheduler::with_clock(invoke, clock.clone());
    scheduler.set_function("f", schedules(&["rate(1 minute)"]));
    sleep(Duration::from_secs(3 * 60 + 30)).await;
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_scheduler_stops_it() {
    let (scheduler, _clock, log) = setup("2024-01-01T00:00:00Z");
    scheduler.set_function("f", schedules(&["rate(1 minute)"]));
    sleep(Duration::from_secs(90)).await;
    drop(scheduler);
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(drain(&log), rows(&[("f", 0, "2024-01-01T00:01:00Z")]));
}
