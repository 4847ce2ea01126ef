//! The last hour of one function at 10 s resolution, for the dashboard's
//! charts and its "last 5 minutes" columns. A ring of fixed slots: a slot
//! is reused when its 10 s window comes round again, so nothing is ever
//! freed or grown. Pure: time (seconds since 1970) is a parameter.

use std::time::Duration;

use super::DURATION_BUCKETS;

/// Seconds one slot covers.
pub const STEP_SECS: u64 = 10;
/// Slots kept: one hour.
pub const SLOTS: usize = 360;

/// What happened to a function in one 10 s window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slot {
    /// Start of the window (seconds since 1970, a multiple of
    /// [`STEP_SECS`]); 0 for a slot never used.
    pub at: u64,
    pub invocations: u32,
    pub errors: u32,
    pub throttles: u32,
    pub cold_starts: u32,
    /// Sum of the cold starts' init durations, in milliseconds.
    pub init_ms: u32,
    /// Highest number of requests in flight seen in the window.
    pub concurrency: u32,
    /// Request durations per bucket of [`DURATION_BUCKETS`] (not
    /// cumulative; the last one is `+Inf`).
    pub durations: [u32; DURATION_BUCKETS.len() + 1],
}

impl Slot {
    fn add(&mut self, other: &Slot) {
        self.invocations += other.invocations;
        self.errors += other.errors;
        self.throttles += other.throttles;
        self.cold_starts += other.cold_starts;
        self.init_ms = self.init_ms.saturating_add(other.init_ms);
        self.concurrency = self.concurrency.max(other.concurrency);
        for (sum, n) in self.durations.iter_mut().zip(&other.durations) {
            *sum += n;
        }
    }

    /// The `q` quantile (0..1) of the window's request durations in
    /// seconds, interpolated inside its bucket; `None` without requests.
    pub fn duration_quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.durations, q)
    }
}

/// The `q` quantile of a histogram over [`DURATION_BUCKETS`] (per-bucket
/// counts), assuming durations spread evenly inside a bucket. Past the last
/// bound it answers the last bound: all that is known is "slower".
pub fn quantile(counts: &[u32; DURATION_BUCKETS.len() + 1], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().map(|&n| u64::from(n)).sum();
    if total == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0u64;
    for (i, &n) in counts.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if (seen + u64::from(n)) as f64 >= rank {
            let Some(&upper) = DURATION_BUCKETS.get(i) else {
                return DURATION_BUCKETS.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { DURATION_BUCKETS[i - 1] };
            let within = (rank - seen as f64) / f64::from(n);
            return Some(lower + (upper - lower) * within);
        }
        seen += u64::from(n);
    }
    DURATION_BUCKETS.last().copied()
}

/// One function's ring of slots.
pub struct History {
    slots: Box<[Slot]>,
}

impl Default for History {
    fn default() -> Self {
        History {
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
        }
    }
}

fn window(now: u64) -> u64 {
    now - now % STEP_SECS
}

impl History {
    /// The slot for `now`, emptied first if it still holds an older window.
    fn slot(&mut self, now: u64) -> &mut Slot {
        let at = window(now);
        let i = ((at / STEP_SECS) % SLOTS as u64) as usize;
        let slot = &mut self.slots[i];
        if slot.at != at {
            *slot = Slot {
                at,
                ..Slot::default()
            };
        }
        slot
    }

    /// One invocation ended after `duration`, failed or not.
    pub fn invocation(&mut self, now: u64, failed: bool, duration: Duration) {
        let slot = self.slot(now);
        slot.invocations += 1;
        slot.errors += u32::from(failed);
        let secs = duration.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        slot.durations[i] += 1;
    }

    pub fn throttle(&mut self, now: u64) {
        self.slot(now).throttles += 1;
    }

    pub fn cold_start(&mut self, now: u64, init: Duration) {
        let slot = self.slot(now);
        slot.cold_starts += 1;
        let ms = u32::try_from(init.as_millis()).unwrap_or(u32::MAX);
        slot.init_ms = slot.init_ms.saturating_add(ms);
    }

    /// `in_flight` requests are running right now.
    pub fn concurrency(&mut self, now: u64, in_flight: u64) {
        let slot = self.slot(now);
        slot.concurrency = slot
            .concurrency
            .max(u32::try_from(in_flight).unwrap_or(u32::MAX));
    }

    /// The last `count` windows up to and including `now`'s, oldest first;
    /// windows nothing happened in (or older than the ring) are empty slots
    /// with their `at` set.
    pub fn series(&self, now: u64, count: usize) -> Vec<Slot> {
        let count = count.min(SLOTS);
        let last = window(now);
        (0..count as u64)
            .rev()
            .filter_map(|back| last.checked_sub(back * STEP_SECS))
            .map(|at| {
                let i = ((at / STEP_SECS) % SLOTS as u64) as usize;
                match self.slots[i] {
                    slot if slot.at == at => slot,
                    _ => Slot {
                        at,
                        ..Slot::default()
                    },
                }
            })
            .collect()
    }

    /// The last `count` windows added up (`at` is the oldest window's;
    /// concurrency is the highest seen).
    pub fn total(&self, now: u64, count: usize) -> Slot {
        let series = self.series(now, count);
        let mut sum = Slot {
            at: series.first().map_or(0, |s| s.at),
            ..Slot::default()
        };
        for slot in &series {
            sum.add(slot);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000;

    #[test]
    fn counts_land_in_their_ten_second_window() {
        let mut h = History::default();
        h.invocation(T, false, Duration::from_millis(3));
        h.invocation(T + 9, true, Duration::from_millis(3));
        h.invocation(T + 10, false, Duration::from_millis(3));
        h.throttle(T + 10);
        h.cold_start(T + 10, Duration::from_millis(120));
        h.concurrency(T + 10, 4);
        h.concurrency(T + 11, 2);
        let s = h.series(T + 15, 3);
        assert_eq!(
            s.iter().map(|s| s.at).collect::<Vec<_>>(),
            [T - 10, T, T + 10]
        );
        assert_eq!(
            s[0],
            Slot {
                at: T - 10,
                ..Slot::default()
            }
        );
        assert_eq!((s[1].invocations, s[1].errors), (2, 1));
        assert_eq!((s[2].invocations, s[2].throttles), (1, 1));
        assert_eq!(
            (s[2].cold_starts, s[2].init_ms, s[2].concurrency),
            (1, 120, 4)
        );
    }

    #[test]
    fn a_slot_an_hour_old_is_reused_empty() {
        let mut h = History::default();
        h.invocation(T, false, Duration::from_millis(3));
        let hour = STEP_SECS * SLOTS as u64;
        // The old window is out of the hour asked for: not reported.
        assert_eq!(h.total(T + hour, SLOTS).invocations, 0);
        h.invocation(T + hour, false, Duration::from_millis(3));
        assert_eq!(h.total(T + hour, SLOTS).invocations, 1);
        assert_eq!(h.series(T + hour, 1)[0].invocations, 1);
    }

    #[test]
    fn totals_add_the_last_windows_only() {
        let mut h = History::default();
        for i in 0..60 {
            h.invocation(T + i * 10, i % 2 == 0, Duration::from_millis(20));
        }
        let last5 = h.total(T + 590, 30);
        assert_eq!(last5.invocations, 30);
        assert_eq!(last5.errors, 15);
        assert_eq!(last5.at, T + 300);
    }

    #[test]
    fn quantiles_interpolate_inside_a_bucket() {
        let mut counts = [0u32; DURATION_BUCKETS.len() + 1];
        assert_eq!(quantile(&counts, 0.5), None);
        counts[1] = 100; // (1 ms, 5 ms]
        let p50 = quantile(&counts, 0.5).unwrap();
        assert!((p50 - 0.003).abs() < 1e-9, "{p50}");
        counts[DURATION_BUCKETS.len()] = 2; // slower than the last bound
        assert_eq!(quantile(&counts, 0.99), Some(30.0));
        let mut one = [0u32; DURATION_BUCKETS.len() + 1];
        one[0] = 1;
        assert_eq!(quantile(&one, 0.99), Some(0.001));
    }
}
