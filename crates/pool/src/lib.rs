//! Instances per function: cold start sharing, concurrency, idle reaping,
//! recycling and crash back-off.
//!
//! [`Pool::acquire`] hands out a [`Lease`] on an instance that can take one
//! more request, starting one if needed; dropping the lease gives the slot
//! back. Each instance has one supervisor task that owns its process and
//! decides when it stops (idle, max lifetime, drained, crashed). A function
//! with no instances has no tasks and no timers at all.

mod backoff;
mod capture;
mod confinement;
mod instance;
pub mod lambda;
mod lease;
mod leftovers;
pub mod metrics;
pub mod placement;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rouse_logs::LogBook;
use rouse_manifest::FunctionSpec;
use rouse_store::Store;
use tokio::sync::Notify;

use backoff::CrashStreak;
pub use lease::{InvokeFailure, Lease};
use placement::{Decision, Limits, Phase, SlotView};
pub use rouse_runtime_api::{Invocation, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("function {0} not found")]
    NotFound(String),
    #[error("function {function} has no free instance (all {max_instances} busy)")]
    Throttled {
        function: String,
        max_instances: u32,
        retry_after: Duration,
    },
    #[error("instance failed to start: {}", .0.message)]
    StartFailed(Arc<StartFailure>),
    /// The function's instances keep crashing soon after start; no new one
    /// is started until the back-off ends. Failing fast here is what keeps
    /// a broken app from tying up every caller for the whole back-off.
    #[error("function {function} is crash-looping; next start in {retry_after:?}")]
    BackingOff {
        function: String,
        retry_after: Duration,
    },
    #[error("rouse is shutting down")]
    ShuttingDown,
    #[error("store: {0}")]
    Store(#[from] rouse_store::StoreError),
}

/// Why an instance did not start.
#[derive(Debug)]
pub struct StartFailure {
    /// What happened, with the instance's last output lines.
    pub message: String,
    /// What a lambda runtime posted to `init/error`: Lambda returns it to
    /// the invoker as the function's error.
    pub init_error: Option<rouse_runtime_api::InitFailure>,
}

/// A function's deployed version as the pool runs it.
#[derive(Debug)]
pub struct Deployment {
    pub version: u32,
    pub artifact: String,
    pub spec: FunctionSpec,
    /// Runs as its numbered version (an alias or a qualified invoke asked
    /// for it) rather than as `$LATEST`.
    pub pinned: bool,
}

impl Deployment {
    /// The version as Lambda names it: `$LATEST`, or the number when pinned.
    pub fn lambda_version(&self) -> String {
        if self.pinned {
            self.version.to_string()
        } else {
            "$LATEST".to_string()
        }
    }
}

/// One instance as `rouse ls` shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    pub id: String,
    pub pid: u32,
    pub port: u16,
    pub version: u32,
    pub state: &'static str,
    pub in_flight: u32,
    pub age_secs: f64,
}

#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<Store>,
    logs: Arc<LogBook>,
    instances_dir: PathBuf,
    /// Where the bootstraps rouse ships for managed runtimes are written.
    runtime_dir: PathBuf,
    /// Environment every instance inherits from rouse (PATH, HOME, LANG, ...).
    base_env: BTreeMap<String, String>,
    functions: Mutex<HashMap<String, Arc<FunctionPool>>>,
    shutting_down: AtomicBool,
    live_instances: AtomicUsize,
    all_stopped: Notify,
    /// Supervisors run here, whichever thread's request started them.
    runtime: tokio::runtime::Handle,
    confinement: confinement::Confinement,
}

struct FunctionPool {
    name: String,
    /// `Some(v)` for the instances of one version run beside the current
    /// one (for an alias or a qualified invoke); such a pool never changes
    /// version, and shares the function's metrics.
    pinned: Option<u32>,
    deployment: Mutex<Arc<Deployment>>,
    state: Mutex<State>,
    /// Wakes requests waiting for a slot: an instance became ready, failed,
    /// stopped, or a slot was freed.
    changed: Notify,
    metrics: Arc<metrics::FunctionMetrics>,
    /// The uid (and gid) its instances run as when isolated.
    uid: u32,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    streak: CrashStreak,
    backoff_until: Option<Instant>,
    removed: bool,
}

struct Slot {
    instance: Arc<instance::Instance>,
    phase: Phase,
    in_flight: u32,
    last_used: Instant,
}

/// The outcome of one placement round in [`Pool::acquire`].
enum Action {
    Serve(Arc<instance::Instance>),
    AwaitStart(Arc<instance::Instance>),
    Wait(Instant),
}

/// Variables rouse passes on from its own environment to every instance.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "TMPDIR"];

impl Pool {
    /// Must be called inside the tokio runtime that is to run the instance
    /// supervisors.
    pub fn new(store: Arc<Store>, logs: Arc<LogBook>) -> std::io::Result<Pool> {
        Pool::with_isolation(store, logs, rouse_sandbox::isolation::Level::None)
    }

    /// Like [`Pool::new`], running instances at isolation `level` (which the
    /// caller has checked the host supports).
    pub fn with_isolation(
        store: Arc<Store>,
        logs: Arc<LogBook>,
        level: rouse_sandbox::isolation::Level,
    ) -> std::io::Result<Pool> {
        let instances_dir = store.data_dir().join("instances");
        let killed = leftovers::kill_recorded(&instances_dir);
        if killed > 0 {
            tracing::warn!(killed, "stopped instances a previous run left behind");
        }
        // Directories left by a previous run belong to processes now gone.
        let _ = std::fs::remove_dir_all(&instances_dir);
        std::fs::create_dir_all(&instances_dir)?;
        let runtime_dir = store.data_dir().join("runtime");
        rouse_runtime_api::write_bootstraps(&runtime_dir)?;
        let base_env = INHERITED_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        let confinement = confinement::Confinement::prepare(level, store.data_dir())?;
        Ok(Pool {
            shared: Arc::new(Shared {
                store,
                logs,
                instances_dir,
                runtime_dir,
                base_env,
                functions: Mutex::new(HashMap::new()),
                shutting_down: AtomicBool::new(false),
                live_instances: AtomicUsize::new(0),
                all_stopped: Notify::new(),
                runtime: tokio::runtime::Handle::current(),
                confinement,
            }),
        })
    }

    /// A slot on an instance of `name` that can take one more request.
    /// Waits while an instance starts (sharing it with other waiters) and,
    /// when every instance is busy and no more may start, for up to the
    /// function's `queueTimeout`.
    pub async fn acquire(&self, name: &str) -> Result<Lease, AcquireError> {
        self.acquire_version(name, None).await
    }

    /// [`Pool::acquire`] on a given version of `name` (`None`: the current
    /// one). A version other than the current runs on instances of its own,
    /// started on demand and reaped when idle like any other, so versions
    /// nobody calls cost nothing.
    pub async fn acquire_version(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Lease, AcquireError> {
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err(AcquireError::ShuttingDown);
        }
        let fp = self.function(name)?;
        let fp = match version {
            Some(v) if v != fp.deployment().version => self.pinned(&fp, v)?,
            _ => fp,
        };
        let spec_limits = {
            let dep = fp.deployment();
            (
                Limits {
                    concurrency: dep.spec.concurrency.max(1),
                    max_instances: dep.spec.scaling.max_instances.max(1),
                },
                Duration::from_secs_f64(dep.spec.scaling.queue_timeout_secs),
            )
        };
        let (limits, queue_timeout) = spec_limits;
        let started = Instant::now();
        let queue_deadline = started + queue_timeout;
        // Held while this request waits for a busy function to free a slot.
        let mut queued = None;
        loop {
            let changed = fp.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();

            let action = {
                let mut state = fp.lock_state();
                if state.removed {
                    return Err(AcquireError::NotFound(name.to_string()));
                }
                let current = fp.deployment().version;
                let views: Vec<SlotView> = state
                    .slots
                    .iter()
                    .map(|s| SlotView {
                        phase: s.phase,
                        in_flight: s.in_flight,
                        current: s.instance.deployment.version == current,
                    })
                    .collect();
                match placement::decide(&views, &limits, state.backoff_until, Instant::now()) {
                    Decision::Use(i) => {
                        let slot = &mut state.slots[i];
                        slot.in_flight += 1;
                        Action::Serve(slot.instance.clone())
                    }
                    Decision::Join(i) => {
                        let slot = &mut state.slots[i];
                        slot.in_flight += 1;
                        Action::AwaitStart(slot.instance.clone())
                    }
                    Decision::Start => Action::AwaitStart(self.start_instance(&fp, &mut state, 1)),
                    Decision::Wait { until: Some(until) } => {
                        fp.metrics
                            .record(Some(metrics::ErrorKind::StartFailed), started.elapsed());
                        return Err(AcquireError::BackingOff {
                            function: name.to_string(),
                            retry_after: until.saturating_duration_since(Instant::now()),
                        });
                    }
                    Decision::Wait { until: None } => Action::Wait(queue_deadline),
                }
            };
            let wait_until = match action {
                Action::Serve(instance) => {
                    return Ok(Lease::new(self.shared.clone(), fp.clone(), instance, false));
                }
                Action::AwaitStart(instance) => {
                    drop(queued);
                    let result = self.await_start(fp.clone(), instance).await;
                    if result.is_err() {
                        fp.metrics
                            .record(Some(metrics::ErrorKind::StartFailed), started.elapsed());
                    }
                    return result;
                }
                Action::Wait(until) => until,
            };
            if Instant::now() >= queue_deadline {
                fp.metrics.throttles.fetch_add(1, Ordering::Relaxed);
                return Err(AcquireError::Throttled {
                    function: name.to_string(),
                    max_instances: limits.max_instances,
                    retry_after: Duration::from_secs(1),
                });
            }
            queued.get_or_insert_with(|| metrics::Gauge::enter(&fp.metrics.queued));
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(wait_until.into()) => {}
            }
            if self.shared.shutting_down.load(Ordering::Acquire) {
                return Err(AcquireError::ShuttingDown);
            }
        }
    }

    /// Picks up a new deployment of `name` from the store. Running instances
    /// of the old version keep serving until an instance of the new one is
    /// ready, then drain; a function removed from the store is stopped.
    pub fn reload(&self, name: &str) -> Result<(), AcquireError> {
        self.start_new_version(name).map(drop)
    }

    /// Like [`Pool::reload`], and when warm instances had to be replaced,
    /// waits until the new version's first instance is ready (or failed to
    /// start, in which case the old instances keep serving). So when it
    /// returns, new requests reach the new version. `Err(StartFailed)` says
    /// the new version did not start.
    pub async fn reload_and_wait(&self, name: &str) -> Result<(), AcquireError> {
        let Some(instance) = self.start_new_version(name)? else {
            return Ok(());
        };
        instance
            .started_up()
            .await
            .map_err(AcquireError::StartFailed)
    }

    fn start_new_version(
        &self,
        name: &str,
    ) -> Result<Option<Arc<instance::Instance>>, AcquireError> {
        let Some(record) = self.shared.store.get_function(name)? else {
            self.remove(name);
            return Ok(None);
        };
        let existing = self.lock_functions().get(name).cloned();
        let Some(fp) = existing else {
            return Ok(None); // loaded fresh on its next request
        };
        let deployment = Arc::new(Deployment {
            version: record.version,
            artifact: record.artifact,
            spec: record.spec,
            pinned: false,
        });
        *fp.deployment.lock().unwrap_or_else(|e| e.into_inner()) = deployment;
        let mut state = fp.lock_state();
        state.streak.reset();
        state.backoff_until = None;
        let warm = state.slots.iter().any(|s| s.phase == Phase::Ready);
        let started = (warm && !self.shared.shutting_down.load(Ordering::Acquire))
            // Zero-downtime deploy: start the new version now; its
            // supervisor drains the old instances once it is ready.
            .then(|| self.start_instance(&fp, &mut state, 0));
        drop(state);
        fp.changed.notify_waiters();
        Ok(started)
    }

    /// Stops every instance of `name` (of every version) and forgets it.
    pub fn remove(&self, name: &str) {
        let removed: Vec<Arc<FunctionPool>> = {
            let mut functions = self.lock_functions();
            let pinned_prefix = format!("{name}@");
            let keys: Vec<String> = functions
                .keys()
                .filter(|k| *k == name || k.starts_with(&pinned_prefix))
                .cloned()
                .collect();
            keys.iter().filter_map(|k| functions.remove(k)).collect()
        };
        for fp in removed {
            let mut state = fp.lock_state();
            state.removed = true;
            for slot in &mut state.slots {
                slot.phase = Phase::Draining;
                slot.instance.request_stop("function removed");
            }
            drop(state);
            fp.changed.notify_waiters();
        }
    }

    /// Drains the instances of versions of `name` run beside its current one
    /// that are not in `keep` (the versions its aliases still serve), so a
    /// version no alias points at stops costing memory at once rather than
    /// after `idleTimeout`. Calling it by number starts it again.
    pub fn drain_versions_except(&self, name: &str, keep: &[u32]) {
        for fp in self.pools_of(name) {
            if fp.pinned.is_none_or(|v| keep.contains(&v)) {
                continue;
            }
            let mut state = fp.lock_state();
            for slot in &mut state.slots {
                if slot.phase != Phase::Draining {
                    slot.phase = Phase::Draining;
                    slot.instance.wake.notify_one();
                }
            }
            drop(state);
            fp.changed.notify_waiters();
        }
    }

    /// The pool running version `version` of the function `main` beside
    /// its current one, created on first use.
    fn pinned(
        &self,
        main: &Arc<FunctionPool>,
        version: u32,
    ) -> Result<Arc<FunctionPool>, AcquireError> {
        let key = format!("{}@{version}", main.name);
        if let Some(fp) = self.lock_functions().get(&key) {
            return Ok(fp.clone());
        }
        let record = self
            .shared
            .store
            .version(&main.name, version)?
            .ok_or_else(|| AcquireError::NotFound(format!("{}:{version}", main.name)))?;
        let fp = Arc::new(FunctionPool {
            name: main.name.clone(),
            pinned: Some(version),
            deployment: Mutex::new(Arc::new(Deployment {
                version,
                artifact: record.artifact,
                spec: record.spec,
                pinned: true,
            })),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            metrics: main.metrics.clone(),
            // Versions of one function run as the same user.
            uid: main.uid,
        });
        Ok(self.lock_functions().entry(key).or_insert(fp).clone())
    }

    /// The pools of `name`: its current version first, then pinned ones.
    fn pools_of(&self, name: &str) -> Vec<Arc<FunctionPool>> {
        let functions = self.lock_functions();
        let mut pools: Vec<Arc<FunctionPool>> = functions.get(name).cloned().into_iter().collect();
        let pinned_prefix = format!("{name}@");
        pools.extend(
            functions
                .iter()
                .filter(|(k, _)| k.starts_with(&pinned_prefix))
                .map(|(_, fp)| fp.clone()),
        );
        pools
    }

    /// Instances of `name`, for listings.
    pub fn instances(&self, name: &str) -> Vec<InstanceInfo> {
        let pools = self.pools_of(name);
        let states: Vec<_> = pools.iter().map(|fp| fp.lock_state()).collect();
        states
            .iter()
            .flat_map(|state| state.slots.iter())
            .map(|s| InstanceInfo {
                id: s.instance.id.clone(),
                pid: s.instance.pid.load(Ordering::Relaxed),
                port: s.instance.port.load(Ordering::Relaxed),
                version: s.instance.deployment.version,
                state: match s.phase {
                    Phase::Starting => "starting",
                    Phase::Ready => "ready",
                    Phase::Draining => "draining",
                },
                in_flight: s.in_flight,
                age_secs: s.instance.started.elapsed().as_secs_f64(),
            })
            .collect()
    }

    /// Every function that has been called since it was (re)loaded, with its
    /// counters and its instances by state; functions never called have no
    /// pool state and are left out.
    pub fn metrics(&self) -> Vec<metrics::FunctionMetricsSnapshot> {
        let functions: Vec<_> = self.lock_functions().values().cloned().collect();
        // Pinned versions share their function's counters; only their
        // instances are added to its gauges.
        let mut instances: HashMap<&str, [u64; 3]> = HashMap::new();
        for fp in &functions {
            let counts = instances.entry(fp.name.as_str()).or_default();
            for slot in &fp.lock_state().slots {
                counts[match slot.phase {
                    Phase::Starting => 0,
                    Phase::Ready => 1,
                    Phase::Draining => 2,
                }] += 1;
            }
        }
        let mut out: Vec<_> = functions
            .iter()
            .filter(|fp| fp.pinned.is_none())
            .map(|fp| {
                let counts = instances.get(fp.name.as_str()).copied().unwrap_or_default();
                fp.metrics.snapshot(&fp.name, counts)
            })
            .collect();
        out.sort_by(|a, b| a.function.cmp(&b.function));
        out
    }

    /// Writes a platform line to a function's log.
    pub fn platform_log(&self, function: &str, message: &str) {
        self.shared.logs.platform(function, message);
    }

    /// Number of instance processes alive right now, over all functions.
    pub fn live_instances(&self) -> usize {
        self.shared.live_instances.load(Ordering::Acquire)
    }

    /// Stops every instance (SIGTERM, then SIGKILL after `grace`) and waits
    /// for them, refusing new requests from now on.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.shutting_down.store(true, Ordering::Release);
        let functions: Vec<_> = self.lock_functions().values().cloned().collect();
        for fp in functions {
            let mut state = fp.lock_state();
            for slot in &mut state.slots {
                slot.phase = Phase::Draining;
                slot.instance.request_stop("rouse is shutting down");
            }
            drop(state);
            fp.changed.notify_waiters();
        }
        let deadline = Instant::now() + grace + Duration::from_secs(2);
        loop {
            let stopped = self.shared.all_stopped.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if self.live_instances() == 0 {
                self.shared.confinement.remove_tree();
                return;
            }
            if Instant::now() >= deadline {
                return;
            }
            let _ = tokio::time::timeout_at(deadline.into(), stopped).await;
        }
    }

    fn function(&self, name: &str) -> Result<Arc<FunctionPool>, AcquireError> {
        if let Some(fp) = self.lock_functions().get(name) {
            return Ok(fp.clone());
        }
        let record = self
            .shared
            .store
            .get_function(name)?
            .ok_or_else(|| AcquireError::NotFound(name.to_string()))?;
        let number = self.shared.store.function_number(name)?.unwrap_or(0);
        let fp = Arc::new(FunctionPool {
            name: name.to_string(),
            pinned: None,
            deployment: Mutex::new(Arc::new(Deployment {
                version: record.version,
                artifact: record.artifact,
                spec: record.spec,
                pinned: false,
            })),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            metrics: Arc::new(metrics::FunctionMetrics::default()),
            uid: self.shared.confinement.function_uid(number),
        });
        // Another request may have loaded it meanwhile; keep the first.
        Ok(self
            .lock_functions()
            .entry(name.to_string())
            .or_insert(fp)
            .clone())
    }

    fn lock_functions(&self) -> MutexGuard<'_, HashMap<String, Arc<FunctionPool>>> {
        self.shared
            .functions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a starting instance with `reserved` slots already taken and
    /// spawns its supervisor.
    fn start_instance(
        &self,
        fp: &Arc<FunctionPool>,
        state: &mut State,
        reserved: u32,
    ) -> Arc<instance::Instance> {
        let instance = Arc::new(instance::Instance::new(fp.deployment()));
        state.slots.push(Slot {
            instance: instance.clone(),
            phase: Phase::Starting,
            in_flight: reserved,
            last_used: Instant::now(),
        });
        self.shared.live_instances.fetch_add(1, Ordering::AcqRel);
        self.shared.runtime.spawn(instance::supervise(
            self.shared.clone(),
            fp.clone(),
            instance.clone(),
        ));
        instance
    }

    /// Waits for a starting instance on which a slot is already reserved.
    async fn await_start(
        &self,
        fp: Arc<FunctionPool>,
        instance: Arc<instance::Instance>,
    ) -> Result<Lease, AcquireError> {
        // The lease exists before the wait so a cancelled request (client
        // gone) still gives its reserved slot back.
        let lease = Lease::new(self.shared.clone(), fp, instance.clone(), true);
        instance
            .started_up()
            .await
            .map_err(AcquireError::StartFailed)?;
        Ok(lease)
    }
}

impl FunctionPool {
    fn deployment(&self) -> Arc<Deployment> {
        self.deployment
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back a slot taken by a lease.
    fn release(&self, instance: &instance::Instance) {
        let mut state = self.lock_state();
        if let Some(slot) = state
            .slots
            .iter_mut()
            .find(|s| std::ptr::eq(Arc::as_ptr(&s.instance), instance))
        {
            slot.in_flight = slot.in_flight.saturating_sub(1);
            slot.last_used = Instant::now();
            if slot.phase == Phase::Draining && slot.in_flight == 0 {
                // Its supervisor waits for the last request before stopping it.
                slot.instance.wake.notify_one();
            }
        }
        drop(state);
        self.changed.notify_waiters();
    }
}

/// `sleep_until` needs some instant when there is nothing to wait for.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
