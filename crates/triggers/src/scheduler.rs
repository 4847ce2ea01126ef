//! The imperative shell around [`Schedule`]: one tokio task that sleeps
//! until the earliest planned tick across all functions, fires what is due
//! and plans again.
//!
//! Design points:
//!
//! - **One timer.** There is no task or timer per function; with no
//!   schedules (or none that will ever fire again) the task waits only for
//!   [`Scheduler::set_function`], so an idle platform never wakes up.
//! - **Wall clock, re-read.** Cron is wall-clock time, but tokio sleeps on
//!   the monotonic clock, which does not see the wall clock being set or
//!   the machine being suspended. The task therefore never sleeps longer
//!   than [`RECHECK`] while a tick is planned, and re-reads the wall clock
//!   each time it wakes.
//! - **No bursts.** A tick whose time has passed fires once, however many
//!   of its fire times were missed (a stalled runtime, a suspended machine,
//!   a clock set forward), and the schedule is then planned from now. A
//!   scheduler starts empty, so ticks due while the process was down are
//!   not replayed either.
//! - **Invocations never hold the timer.** Each tick's callback runs in its
//!   own task, so a slow function cannot delay another's tick.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::calendar::{format_utc, unix_millis, unix_seconds};
use crate::Schedule;

/// Longest the timer task sleeps while a tick is planned before it looks at
/// the wall clock again: how late a tick can be after the clock was set
/// forward or the machine resumed from suspend.
pub const RECHECK: Duration = Duration::from_secs(60);

/// A wall-clock step backwards by more than this re-plans every schedule
/// from the new time (otherwise a clock set back a day would hold every
/// rate schedule for a day). Smaller steps only delay the next tick, which
/// avoids firing a tick twice when NTP nudges the clock back a little.
const STEP_BACK_MS: i64 = 60_000;

/// What the scheduler calls for each tick. The returned future runs in its
/// own task.
pub type Invoke = Arc<dyn Fn(Tick) -> BoxFuture<'static, ()> + Send + Sync>;

/// The source of wall-clock time; [`SystemClock`] outside tests.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// One firing of one schedule of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// The function the schedule belongs to.
    pub function: String,
    /// Position of the schedule in the list given to `set_function`
    /// (e.g. to name its rule `<function>-schedule-<index>`).
    pub index: usize,
    /// The schedule expression, as written.
    pub expression: String,
    /// The fire time this tick stands for, in unix seconds (the `time` of
    /// the scheduled event). When ticks were missed, the earliest of them.
    pub scheduled: i64,
    /// How long after `scheduled` the tick fired.
    pub late: Duration,
    /// True when later fire times had also passed and were folded into this
    /// tick instead of being fired one after another.
    pub coalesced: bool,
}

/// Fires schedule ticks for every function that has schedules.
///
/// Dropping the scheduler stops its timer task; invocations already
/// started run to completion.
pub struct Scheduler {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Wakes the timer task when the schedules change.
    changed: Notify,
}

#[derive(Default)]
struct State {
    functions: HashMap<String, Vec<Entry>>,
    /// The wall clock (unix ms) when the timer task last looked, to notice
    /// it being set back.
    last_look_ms: Option<i64>,
}

struct Entry {
    schedule: Schedule,
    /// The planned fire time (unix seconds); `None` once it never fires again.
    next: Option<i64>,
}

impl Scheduler {
    /// A scheduler on the system clock, with no schedules yet.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn new(invoke: Invoke) -> Scheduler {
        Scheduler::with_clock(invoke, Arc::new(SystemClock))
    }

    /// A scheduler reading wall-clock time from `clock`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn with_clock(invoke: Invoke, clock: Arc<dyn Clock>) -> Scheduler {
        let shared = Arc::new(Shared {
            clock,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        let task = tokio::spawn(run(Arc::clone(&shared), invoke));
        Scheduler { shared, task }
    }

    /// Sets the schedules of `function`, replacing any it had; an empty list
    /// removes it.
    ///
    /// A schedule the function already had keeps its planned tick, so
    /// redeploying a function at the moment a tick is due does not skip it.
    /// New schedules are planned from now: they never fire for the past.
    pub fn set_function(&self, function: &str, schedules: Vec<Schedule>) {
        if schedules.is_empty() {
            self.remove_function(function);
            return;
        }
        let now = unix_seconds(self.shared.clock.now());
        let mut state = self.shared.lock();
        let mut previous = state.functions.remove(function).unwrap_or_default();
        let entries = schedules
            .into_iter()
            .map(|schedule| {
                let kept = previous
                    .iter()
                    .position(|entry| entry.schedule == schedule)
                    .map(|at| previous.swap_remove(at).next);
                let next = kept.unwrap_or_else(|| schedule.next_after(now));
                if next.is_none() {
                    tracing::warn!(function, schedule = %schedule, "schedule never fires again");
                }
                Entry { schedule, next }
            })
            .collect();
        state.functions.insert(function.to_string(), entries);
        drop(state);
        self.shared.changed.notify_one();
    }

    /// Removes every schedule of `function`.
    pub fn remove_function(&self, function: &str) {
        let removed = self.shared.lock().functions.remove(function).is_some();
        if removed {
            self.shared.changed.notify_one();
        }
    }

    /// When `function` next fires (unix seconds), if it has a schedule that
    /// will.
    pub fn next_fire(&self, function: &str) -> Option<i64> {
        let state = self.shared.lock();
        state
            .functions
            .get(function)?
            .iter()
            .filter_map(|entry| entry.next)
            .min()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every
        // update is a single assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the ticks due at `now_ms`, re-plans their schedules, and
    /// returns them with the earliest planned fire time that remains.
    fn take_due(&self, now_ms: i64) -> (Vec<Tick>, Option<i64>) {
        let now = now_ms.div_euclid(1000);
        let mut guard = self.lock();
        let state = &mut *guard;
        let stepped_back = state
            .last_look_ms
            .is_some_and(|last| now_ms < last.saturating_sub(STEP_BACK_MS));
        state.last_look_ms = Some(now_ms);
        let mut due = Vec::new();
        let mut earliest: Option<i64> = None;
        for (function, entries) in &mut state.functions {
            for (index, entry) in entries.iter_mut().enumerate() {
                if stepped_back {
                    entry.next = entry.schedule.next_after(now);
                }
                if let Some(scheduled) = entry.next.filter(|next| *next <= now) {
                    let following = entry.schedule.next_after(scheduled);
                    let coalesced = following.is_some_and(|following| following <= now);
                    // Whatever else came due is folded into this tick; the
                    // schedule carries on from now.
                    entry.next = if coalesced {
                        entry.schedule.next_after(now)
                    } else {
                        following
                    };
                    let late_ms = now_ms.saturating_sub(scheduled.saturating_mul(1000));
                    due.push(Tick {
                        function: function.clone(),
                        index,
                        expression: entry.schedule.expression().to_string(),
                        scheduled,
                        late: Duration::from_millis(u64::try_from(late_ms).unwrap_or(0)),
                        coalesced,
                    });
                }
                if let Some(next) = entry.next {
                    earliest = Some(earliest.map_or(next, |e| e.min(next)));
                }
            }
        }
        // A stable order for ticks due at the same time (the map has none).
        due.sort_by(|a, b| {
            (a.scheduled, &a.function, a.index).cmp(&(b.scheduled, &b.function, b.index))
        });
        (due, earliest)
    }
}

/// The timer task.
async fn run(shared: Arc<Shared>, invoke: Invoke) {
    loop {
        let now_ms = unix_millis(shared.clock.now());
        let (due, earliest) = shared.take_due(now_ms);
        for tick in due {
            log_tick(&tick);
            let invoke = Arc::clone(&invoke);
            // The callback itself runs in the new task too, so a panic in
            // it cannot take the timer down.
            tokio::spawn(async move { invoke(tick).await });
        }
        // `notify_one` leaves a permit when nobody is waiting, so a change
        // made during this pass still ends the wait below at once.
        let changed = shared.changed.notified();
        match earliest {
            None => changed.await,
            Some(next) => {
                let until_ms = next.saturating_mul(1000).saturating_sub(now_ms);
                let wait = Duration::from_millis(u64::try_from(until_ms).unwrap_or(0)).min(RECHECK);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = changed => {}
                }
            }
        }
    }
}

fn log_tick(tick: &Tick) {
    let scheduled = format_utc(tick.scheduled);
    if tick.coalesced {
        tracing::warn!(
            function = %tick.function,
            schedule = %tick.expression,
            %scheduled,
            late_seconds = tick.late.as_secs(),
            "schedule tick fired late; the ticks missed since are folded into this one"
        );
    } else {
        tracing::info!(
            function = %tick.function,
            schedule = %tick.expression,
            %scheduled,
            late_ms = tick.late.as_millis() as u64,
            "schedule tick"
        );
    }
}
