//! One instance and the supervisor task that owns its process: start, gate on
//! readiness, then stop it when it is idle, too old, drained, asked to, or
//! dead.

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

use rouse_runtime_api::RuntimeEndpoint;
use rouse_sandbox::Process;
use tokio::sync::{watch, Notify};

use crate::capture::Capture;
use crate::lifecycle::{self, Next, SlotState};
use crate::placement::Phase;
use crate::{
    far_future, leftovers, start, warm::keep_min_warm, Deployment, FunctionPool, Shared,
    StartFailure,
};

/// Time between SIGTERM and SIGKILL when stopping an instance.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub(crate) enum Startup {
    Pending,
    Ready,
    Failed(Arc<StartFailure>),
}

pub(crate) struct Instance {
    pub id: String,
    pub port: AtomicU16,
    pub deployment: Arc<Deployment>,
    pub started: Instant,
    pub pid: AtomicU32,
    pub startup: watch::Sender<Startup>,
    /// Wakes the supervisor: a stop was requested, or a draining instance
    /// finished its last request. A stored permit means no wake-up is lost.
    pub wake: Notify,
    /// The Runtime API endpoint of a lambda instance.
    pub runtime: OnceLock<Arc<RuntimeEndpoint>>,
    /// Output of the current invocation, for `X-Amz-Log-Result`.
    pub capture: Arc<Capture>,
    /// Tells when the process's output so far has reached the log (set at spawn).
    pub output: OnceLock<rouse_sandbox::OutputSync>,
    /// Spawn to ready; reported once, by the request that waited for it.
    pub init_duration: Mutex<Option<Duration>>,
    /// Set when the process is gone (its exit status), so an invocation in
    /// flight ends at once instead of waiting for its timeout.
    pub exit: watch::Sender<Option<Arc<str>>>,
    /// Set (before `exit`) when the kernel killed it at its memory limit.
    pub out_of_memory: std::sync::atomic::AtomicBool,
    /// Requests it has been handed (leases taken on it).
    pub served: std::sync::atomic::AtomicU64,
    /// Where REPORT's Max Memory Used comes from (set at spawn).
    pub memory_peak: OnceLock<rouse_sandbox::procfs::PeakMemory>,
    /// The runtime a lambda instance's Runtime API is served on: the
    /// gateway thread whose request started it, so that thread's later
    /// invocations stay on it; `None` for the main runtime.
    pub home: Option<tokio::runtime::Handle>,
    stop_reason: Mutex<Option<String>>,
}

impl Instance {
    pub(crate) fn new(
        deployment: Arc<Deployment>,
        home: Option<tokio::runtime::Handle>,
    ) -> Instance {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        Instance {
            id,
            // Chosen when the process starts; 0 until then.
            port: AtomicU16::new(0),
            deployment,
            started: Instant::now(),
            pid: AtomicU32::new(0),
            startup: watch::Sender::new(Startup::Pending),
            wake: Notify::new(),
            runtime: OnceLock::new(),
            capture: Arc::new(Capture::default()),
            output: OnceLock::new(),
            init_duration: Mutex::new(None),
            exit: watch::Sender::new(None),
            out_of_memory: std::sync::atomic::AtomicBool::new(false),
            served: std::sync::atomic::AtomicU64::new(0),
            memory_peak: OnceLock::new(),
            home,
            stop_reason: Mutex::new(None),
        }
    }

    pub(crate) fn request_stop(&self, reason: &str) {
        let mut stop = self.stop_reason.lock().unwrap_or_else(|e| e.into_inner());
        stop.get_or_insert_with(|| reason.to_string());
        drop(stop);
        self.wake.notify_one();
    }

    /// Waits until the instance is ready, or says why it did not start.
    pub(crate) async fn started_up(&self) -> Result<(), Arc<StartFailure>> {
        let mut startup = self.startup.subscribe();
        let outcome = startup
            .wait_for(|s| !matches!(s, Startup::Pending))
            .await
            .map(|s| s.clone());
        match outcome {
            Ok(Startup::Ready) => Ok(()),
            Ok(Startup::Failed(failure)) => Err(failure),
            Ok(Startup::Pending) | Err(_) => Err(Arc::new(StartFailure {
                message: "instance supervisor ended".into(),
                init_error: None,
            })),
        }
    }

    fn stop_reason(&self) -> Option<String> {
        self.stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Owns one instance from spawn to exit. `live_instances` was incremented by
/// the caller; it is decremented here when the process is gone.
pub(crate) async fn supervise(shared: Arc<Shared>, fp: Arc<FunctionPool>, instance: Arc<Instance>) {
    let logs = &shared.logs;
    match start::start(&shared, &fp, &instance).await {
        Ok(mut process) => {
            run(&shared, &fp, &instance, &mut process).await;
            process.stop(STOP_GRACE).await;
            leftovers::forget(&shared.instances_dir, &instance.id);
            rouse_sandbox::remove_work_dir(process.work_dir());
        }
        Err(err) => {
            let message = &err.message;
            logs.platform(
                &fp.name,
                &format!("instance {} failed to start: {message}", instance.id),
            );
            tracing::warn!(function = %fp.name, instance = %instance.id, "start failed: {message}");
            let mut state = fp.lock_state();
            let delay = state.streak.record_exit(Duration::ZERO);
            state.backoff_until = Some(Instant::now() + delay);
            drop(state);
            instance
                .startup
                .send_replace(Startup::Failed(Arc::new(err)));
        }
    }
    fp.remove_slot(&instance);
    shared.unreserve(u64::from(instance.deployment.spec.memory_size));
    if shared.live_instances.fetch_sub(1, Ordering::AcqRel) == 1 {
        shared.all_stopped.notify_waiters();
    }
    // A crashed, recycled or failed instance is replaced if the function
    // keeps some warm.
    keep_min_warm(&shared, &fp);
}

/// The warm life of an instance, until something says it must stop.
async fn run(
    shared: &Arc<Shared>,
    fp: &Arc<FunctionPool>,
    instance: &Instance,
    process: &mut Process,
) {
    let dep = &instance.deployment;
    let idle_timeout = Duration::from_secs_f64(dep.spec.scaling.idle_timeout_secs);
    let retire_at = lifecycle::retire_at(
        instance.started,
        Duration::from_secs_f64(dep.spec.scaling.max_lifetime_secs),
    );
    fp.mark_ready(instance);
    // Old versions drain before anyone hears this one is ready, so a
    // caller that waited for it never reaches an old instance afterwards.
    fp.drain_older_than(dep.version);
    instance.startup.send_replace(Startup::Ready);
    fp.changed.notify_waiters();
    // After a redeploy, the rest of `minInstances` runs the new version.
    keep_min_warm(shared, fp);

    let reason = loop {
        let next = fp.next_step(shared, instance, idle_timeout, Instant::now());
        let idle_deadline = match next {
            Next::Stop(reason) => break reason,
            Next::Sleep { until } => until.unwrap_or_else(far_future),
        };
        tokio::select! {
            status = process.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                if let Some(limit) = process.out_of_memory() {
                    report_out_of_memory(shared, fp, instance, limit);
                }
                instance.exit.send_replace(Some(status.as_str().into()));
                break fp.exited(shared, instance, &status, process.last_lines());
            }
            () = tokio::time::sleep_until(idle_deadline) => {}
            () = tokio::time::sleep_until(retire_at), if Instant::now() < retire_at => {
                shared.logs.platform(&fp.name, &format!("instance {} reached maxLifetime; draining", instance.id));
                fp.retire(instance);
                // Its replacement starts now, not when it has drained.
                keep_min_warm(shared, fp);
            }
            () = instance.wake.notified() => {}
        }
    };
    fp.retire(instance);
    fp.changed.notify_waiters();
    shared.logs.platform(
        &fp.name,
        &format!("instance {} stopped: {reason}", instance.id),
    );
}

/// Marks the instance as killed at its memory limit and says so in the log.
pub(crate) fn report_out_of_memory(
    shared: &Shared,
    fp: &FunctionPool,
    instance: &Instance,
    limit_mb: u32,
) {
    instance.out_of_memory.store(true, Ordering::Release);
    shared.logs.platform(
        &fp.name,
        &format!(
            "instance {} killed: out of memory (limit {limit_mb} MB)",
            instance.id
        ),
    );
}

pub(crate) async fn wait_for_stop(instance: &Instance) {
    while instance.stop_reason().is_none() {
        instance.wake.notified().await;
    }
}

impl FunctionPool {
    fn mark_ready(&self, instance: &Instance) {
        let mut state = self.lock_state();
        if let Some(slot) = find(&mut state.slots, instance) {
            if slot.phase == Phase::Starting {
                slot.phase = Phase::Ready;
            }
        }
    }

    /// Marks the instance as taking no new requests.
    pub(crate) fn retire(&self, instance: &Instance) {
        let mut state = self.lock_state();
        if let Some(slot) = find(&mut state.slots, instance) {
            slot.phase = Phase::Draining;
        }
    }

    /// Once a new version is ready, older instances drain.
    fn drain_older_than(&self, version: u32) {
        let mut state = self.lock_state();
        for slot in &mut state.slots {
            if slot.instance.deployment.version < version && slot.phase != Phase::Draining {
                slot.phase = Phase::Draining;
                slot.instance.wake.notify_one();
            }
        }
    }

    /// The idle verdict on `instance` now (see [`lifecycle::idle_verdict`]).
    fn next_step(
        &self,
        shared: &Shared,
        instance: &Instance,
        idle_timeout: Duration,
        now: Instant,
    ) -> Next {
        let stop = instance.stop_reason();
        let current = self.deployment().version;
        let state = self.lock_state();
        // Only the current version is kept warm; an older instance left
        // over from a redeploy is reaped when idle.
        let live = state
            .slots
            .iter()
            .filter(|s| s.phase != Phase::Draining && s.instance.deployment.version == current)
            .count();
        let min = if instance.deployment.version == current {
            shared.min_instances(&self.name, instance.deployment.spec.scaling.min_instances)
                as usize
        } else {
            0
        };
        let slot = state
            .slots
            .iter()
            .find(|s| std::ptr::eq(Arc::as_ptr(&s.instance), instance))
            .map(|s| SlotState {
                phase: s.phase,
                in_flight: s.in_flight,
                last_used: s.last_used,
            });
        lifecycle::idle_verdict(stop.as_deref(), slot, live, min, idle_timeout, now)
    }

    /// The process exited on its own (or was killed on request). Returns the
    /// reason to log; unplanned exits feed the crash back-off.
    fn exited(
        &self,
        shared: &Shared,
        instance: &Instance,
        status: &str,
        last: Vec<String>,
    ) -> String {
        if let Some(reason) = instance.stop_reason() {
            return reason;
        }
        let mut state = self.lock_state();
        let in_flight = find(&mut state.slots, instance).map_or(0, |s| s.in_flight);
        let delay = state.streak.record_exit(instance.started.elapsed());
        state.backoff_until = Some(Instant::now() + delay);
        drop(state);
        tracing::warn!(function = %self.name, instance = %instance.id, %status, in_flight, "instance exited unexpectedly");
        if !last.is_empty() {
            shared.logs.platform(
                &self.name,
                &format!(
                    "instance {} last output:\n  {}",
                    instance.id,
                    last.join("\n  ")
                ),
            );
        }
        format!("crashed ({status}) with {in_flight} request(s) in flight")
    }

    pub(crate) fn remove_slot(&self, instance: &Instance) {
        let mut state = self.lock_state();
        state
            .slots
            .retain(|s| !std::ptr::eq(Arc::as_ptr(&s.instance), instance));
        drop(state);
        self.changed.notify_waiters();
    }
}

fn find<'a>(slots: &'a mut [crate::Slot], instance: &Instance) -> Option<&'a mut crate::Slot> {
    slots
        .iter_mut()
        .find(|s| std::ptr::eq(Arc::as_ptr(&s.instance), instance))
}
