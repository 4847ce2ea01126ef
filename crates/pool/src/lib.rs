//! Instances per function: cold start sharing, concurrency, idle reaping,
//! recycling and crash back-off.
//!
//! [`Pool::acquire`] hands out a [`Lease`] on an instance that can take one
//! more request, starting one if needed; dropping the lease gives the slot
//! back. Each instance has one supervisor task that owns its process and
//! decides when it stops (idle, max lifetime, drained, crashed). A function
//! with no instances has no tasks and no timers at all.
//!
//! Starts are limited per function (`maxInstances`, the `burst` token
//! bucket, crash back-off) and per node ([`NodeLimits`]); a request that
//! finds no slot queues until one frees up or its `queueTimeout` ends in
//! [`AcquireError::Throttled`]. `minInstances` are started at deploy, when
//! rouse starts ([`Pool::warm_all`]) and whenever one stops.

mod backoff;
mod burst;
mod capture;
mod instance;
pub mod lambda;
mod lease;
mod leftovers;
pub mod metrics;
mod node;
pub mod placement;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rouse_logs::LogBook;
use rouse_manifest::FunctionSpec;
use rouse_store::Store;
use tokio::sync::Notify;

use backoff::CrashStreak;
use burst::TokenBucket;
pub use lease::{InvokeFailure, Lease};
use node::NodeUsage;
pub use node::{default_memory_budget_mb, NodeLimits};
pub use placement::Limit;
use placement::{Decision, Gates, Limits, Phase, SlotView};
pub use rouse_runtime_api::{Invocation, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("function {0} not found")]
    NotFound(String),
    #[error("function {function} has no free instance ({})", match .limit {
        Limit::MaxInstances => "all of its maxInstances are busy",
        Limit::Burst => "its scale-out rate (burst) is used up",
        Limit::Node => "the node's instance or memory limit is reached",
    })]
    Throttled {
        function: String,
        /// Which limit kept it from starting another instance.
        limit: Limit,
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
    node_limits: NodeLimits,
    node_usage: Mutex<NodeUsage>,
    /// Wakes requests queued on the node's limits: some instance stopped.
    node_changed: Notify,
    /// An idle instance is being stopped to make room on the node; one at a
    /// time, so a crowd of waiters does not empty the node.
    evicting: AtomicBool,
    /// Requests queued on the node's limits. While there are any, a freed
    /// slot anywhere wakes them too: the instance it left idle may be
    /// stopped for them.
    node_waiters: AtomicU64,
    /// Supervisors run here, whichever thread's request started them.
    runtime: tokio::runtime::Handle,
    confinement: rouse_sandbox::Confinement,
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
    /// Scale-out rate: spent by starts that requests ask for.
    bucket: TokenBucket,
    /// A task waits for the crash back-off to end to restore `minInstances`.
    warm_retry_pending: bool,
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
    Queue(Limit, Option<Instant>),
}

/// `Retry-After` when no better estimate exists: slots free up as requests
/// finish, usually well within a second.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Variables rouse passes on from its own environment to every instance.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "TMPDIR"];

impl Pool {
    /// Must be called inside the tokio runtime that is to run the instance
    /// supervisors.
    pub fn new(store: Arc<Store>, logs: Arc<LogBook>) -> std::io::Result<Pool> {
        Pool::configured(
            store,
            logs,
            rouse_sandbox::isolation::Level::None,
            NodeLimits::for_this_machine(),
        )
    }

    /// Like [`Pool::new`], running instances at isolation `level` (which the
    /// caller has checked the host supports) within the node-wide limits.
    pub fn configured(
        store: Arc<Store>,
        logs: Arc<LogBook>,
        level: rouse_sandbox::isolation::Level,
        node_limits: NodeLimits,
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
        let confinement = rouse_sandbox::Confinement::prepare(level, store.data_dir())?;
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
                node_limits,
                node_usage: Mutex::new(NodeUsage::default()),
                node_changed: Notify::new(),
                evicting: AtomicBool::new(false),
                node_waiters: AtomicU64::new(0),
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
        let (limits, queue_timeout, rate, memory_mb) = {
            let dep = fp.deployment();
            let scaling = &dep.spec.scaling;
            (
                Limits {
                    concurrency: dep.spec.concurrency.max(1),
                    max_instances: scaling.max_instances.max(1),
                },
                Duration::from_secs_f64(scaling.queue_timeout_secs),
                burst::Rate {
                    capacity: scaling.burst.max(1),
                    per_minute: scaling.burst_refill_per_minute,
                },
                u64::from(dep.spec.memory_size),
            )
        };
        let started = Instant::now();
        let queue_deadline = started + queue_timeout;
        // Held while this request waits for a busy function to free a slot.
        let mut queued = None;
        loop {
            let changed = fp.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let node_changed = self.shared.node_changed.notified();
            tokio::pin!(node_changed);
            node_changed.as_mut().enable();

            let action = {
                let mut state = fp.lock_state();
                if state.removed {
                    return Err(AcquireError::NotFound(name.to_string()));
                }
                let views = fp.views(&state);
                let now = Instant::now();
                let gates = Gates {
                    backoff_until: state.backoff_until,
                    burst: state.bucket.blocked_until(rate, now),
                    node_full: false,
                };
                let mut decision = placement::decide(&views, &limits, &gates, now);
                // The node is the last gate; checking it only here keeps
                // the node-wide lock off the warm path.
                if decision == Decision::Start && !self.shared.reserve(memory_mb, false) {
                    decision = Decision::Queue {
                        limit: Limit::Node,
                        retry_at: None,
                    };
                }
                match decision {
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
                    Decision::Start => {
                        state.bucket.take(rate, now);
                        Action::AwaitStart(start_instance(&self.shared, &fp, &mut state, 1))
                    }
                    Decision::BackingOff { until } => {
                        fp.metrics
                            .record(Some(metrics::ErrorKind::StartFailed), started.elapsed());
                        return Err(AcquireError::BackingOff {
                            function: name.to_string(),
                            retry_after: until.saturating_duration_since(now),
                        });
                    }
                    Decision::Queue { limit, retry_at } => Action::Queue(limit, retry_at),
                }
            };
            let (limit, retry_at) = match action {
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
                Action::Queue(limit, retry_at) => (limit, retry_at),
            };
            let now = Instant::now();
            if now >= queue_deadline {
                fp.metrics.throttled(limit);
                return Err(AcquireError::Throttled {
                    function: name.to_string(),
                    limit,
                    retry_after: retry_after(limit, retry_at, now),
                });
            }
            queued.get_or_insert_with(|| metrics::Gauge::enter(&fp.metrics.queued));
            let _node_waiter = (limit == Limit::Node).then(|| {
                self.stop_an_idle_instance_for(&fp);
                metrics::Gauge::enter(&self.shared.node_waiters)
            });
            let wake_at = retry_at.map_or(queue_deadline, |at| at.min(queue_deadline));
            tokio::select! {
                _ = changed => {}
                _ = node_changed, if limit == Limit::Node => {}
                _ = tokio::time::sleep_until(wake_at.into()) => {}
            }
            if self.shared.shutting_down.load(Ordering::Acquire) {
                return Err(AcquireError::ShuttingDown);
            }
        }
    }

    /// Starts instances of `name` until its `minInstances` are up (without
    /// spending its scale-out tokens: they are provisioned, not demanded).
    /// Returns how many it started. A node without room starts fewer, and
    /// says so in the function's log.
    pub fn warm(&self, name: &str) -> Result<usize, AcquireError> {
        let fp = self.function(name)?;
        Ok(keep_min_warm(&self.shared, &fp).len())
    }

    /// [`Pool::warm`] for every deployed function with `minInstances`, when
    /// rouse starts. Returns how many instances were started.
    pub fn warm_all(&self) -> Result<usize, AcquireError> {
        let mut started = 0;
        for record in self.shared.store.list_functions()? {
            if record.spec.scaling.min_instances > 0 {
                started += self.warm(&record.name)?;
            }
        }
        Ok(started)
    }

    /// Node-wide limits are reached and `fp` needs an instance: stop the
    /// least recently used idle instance of another function (never below
    /// its `minInstances`), so one busy function is not starved by others'
    /// idle instances waiting for their `idleTimeout`. Its stop wakes the
    /// requests queued on the node.
    fn stop_an_idle_instance_for(&self, fp: &Arc<FunctionPool>) {
        if self.shared.evicting.swap(true, Ordering::AcqRel) {
            return;
        }
        let others: Vec<Arc<FunctionPool>> = self
            .lock_functions()
            .values()
            .filter(|other| !Arc::ptr_eq(other, fp))
            .cloned()
            .collect();
        let mut oldest: Option<(Instant, Arc<FunctionPool>, Arc<instance::Instance>)> = None;
        for other in others {
            let min = other.deployment().spec.scaling.min_instances as usize;
            let state = other.lock_state();
            let live = state
                .slots
                .iter()
                .filter(|s| s.phase != Phase::Draining)
                .count();
            if live <= min {
                continue;
            }
            let idle = state
                .slots
                .iter()
                .filter(|s| s.phase == Phase::Ready && s.in_flight == 0)
                .min_by_key(|s| s.last_used);
            if let Some(slot) = idle {
                if oldest.as_ref().is_none_or(|(t, _, _)| slot.last_used < *t) {
                    oldest = Some((slot.last_used, other.clone(), slot.instance.clone()));
                }
            }
        }
        let Some((_, other, instance)) = oldest else {
            self.shared.evicting.store(false, Ordering::Release);
            return;
        };
        other.retire(&instance);
        let reason = format!("stopped early to make room on the node for {}", fp.name);
        self.shared
            .logs
            .platform(&other.name, &format!("instance {} {reason}", instance.id));
        instance.request_stop(&reason);
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
        for instance in self.start_new_version(name)? {
            instance
                .started_up()
                .await
                .map_err(AcquireError::StartFailed)?;
        }
        Ok(())
    }

    /// Returns the instances it started: the new version's first one when
    /// warm instances are replaced, and those `minInstances` asks for.
    fn start_new_version(&self, name: &str) -> Result<Vec<Arc<instance::Instance>>, AcquireError> {
        let Some(record) = self.shared.store.get_function(name)? else {
            self.remove(name);
            return Ok(Vec::new());
        };
        let existing = self.lock_functions().get(name).cloned();
        let Some(fp) = existing else {
            if record.spec.scaling.min_instances > 0 {
                return Ok(keep_min_warm(&self.shared, &self.function(name)?));
            }
            return Ok(Vec::new()); // loaded fresh on its next request
        };
        let deployment = Arc::new(Deployment {
            version: record.version,
            artifact: record.artifact,
            spec: record.spec,
            pinned: false,
        });
        let max_instances = deployment.spec.scaling.max_instances.max(1);
        let memory_mb = u64::from(deployment.spec.memory_size);
        *fp.deployment.lock().unwrap_or_else(|e| e.into_inner()) = deployment;
        let mut state = fp.lock_state();
        state.streak.reset();
        state.backoff_until = None;
        // A lowered `maxInstances` applies now: the surplus finishes its
        // requests and stops.
        let views = fp.views(&state);
        for i in placement::surplus(&views, max_instances) {
            state.slots[i].phase = Phase::Draining;
            state.slots[i].instance.wake.notify_one();
        }
        let warm = state.slots.iter().any(|s| s.phase == Phase::Ready);
        let mut started = Vec::new();
        if warm && !self.shared.shutting_down.load(Ordering::Acquire) {
            // Zero-downtime deploy: start the new version now; its
            // supervisor drains the old instances once it is ready (and
            // then starts the rest of `minInstances`). It may exceed the
            // node's limits for that moment, or a full node could never
            // be redeployed.
            self.shared.reserve(memory_mb, true);
            started.push(start_instance(&self.shared, &fp, &mut state, 0));
        }
        drop(state);
        if !warm {
            started.extend(keep_min_warm(&self.shared, &fp));
        }
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

/// Adds a starting instance with `reserved` slots already taken and spawns
/// its supervisor. The caller has counted it in the node's usage.
fn start_instance(
    shared: &Arc<Shared>,
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
    shared.live_instances.fetch_add(1, Ordering::AcqRel);
    shared.runtime.spawn(instance::supervise(
        shared.clone(),
        fp.clone(),
        instance.clone(),
    ));
    instance
}

/// Starts instances of `fp` until its `minInstances` are up, as far as the
/// node has room; during a crash back-off, once it ends. Returns the
/// instances started.
pub(crate) fn keep_min_warm(
    shared: &Arc<Shared>,
    fp: &Arc<FunctionPool>,
) -> Vec<Arc<instance::Instance>> {
    let dep = fp.deployment();
    let min = dep.spec.scaling.min_instances;
    let mut started = Vec::new();
    if min == 0 || shared.shutting_down.load(Ordering::Acquire) {
        return started;
    }
    let mut state = fp.lock_state();
    if state.removed {
        return started;
    }
    // Instances of an older version do not count: they drain once the
    // current version is ready.
    let current: Vec<SlotView> = fp.views(&state).into_iter().filter(|v| v.current).collect();
    let missing = placement::missing_for_min(&current, min);
    if missing == 0 {
        return started;
    }
    if let Some(until) = state.backoff_until.filter(|&t| t > Instant::now()) {
        if !std::mem::replace(&mut state.warm_retry_pending, true) {
            let (shared, fp) = (shared.clone(), fp.clone());
            shared.runtime.clone().spawn(async move {
                tokio::time::sleep_until(until.into()).await;
                fp.lock_state().warm_retry_pending = false;
                keep_min_warm(&shared, &fp);
            });
        }
        return started;
    }
    for _ in 0..missing {
        if !shared.reserve(u64::from(dep.spec.memory_size), false) {
            shared.logs.platform(
                &fp.name,
                &format!(
                    "minInstances: {} of {min} running; the node has no room for more (see --max-instances, --memory-budget)",
                    min - missing + started.len() as u32
                ),
            );
            break;
        }
        started.push(start_instance(shared, fp, &mut state, 0));
    }
    started
}

/// `Retry-After` for a request throttled by `limit`: when the next
/// scale-out token arrives, or [`DEFAULT_RETRY_AFTER`] for a busy function
/// or node. A bucket that never refills suggests a minute.
fn retry_after(limit: Limit, retry_at: Option<Instant>, now: Instant) -> Duration {
    match (limit, retry_at) {
        (Limit::Burst, Some(at)) => at.saturating_duration_since(now).max(DEFAULT_RETRY_AFTER),
        (Limit::Burst, None) => Duration::from_secs(60),
        _ => DEFAULT_RETRY_AFTER,
    }
}

impl Shared {
    /// Counts one more instance of `memory_mb` against the node's limits;
    /// `false` (nothing counted) if it does not fit, unless `force`.
    fn reserve(&self, memory_mb: u64, force: bool) -> bool {
        let mut usage = self.node_usage.lock().unwrap_or_else(|e| e.into_inner());
        if !force && !usage.has_room(&self.node_limits, memory_mb) {
            return false;
        }
        usage.add(memory_mb);
        true
    }

    /// An instance is gone: its share of the node is free again.
    pub(crate) fn unreserve(&self, memory_mb: u64) {
        self.node_usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(memory_mb);
        self.evicting.store(false, Ordering::Release);
        self.node_changed.notify_waiters();
    }
}

impl FunctionPool {
    /// What placement needs to know about the instances in `state`.
    fn views(&self, state: &State) -> Vec<SlotView> {
        let current = self.deployment().version;
        state
            .slots
            .iter()
            .map(|s| SlotView {
                phase: s.phase,
                in_flight: s.in_flight,
                current: s.instance.deployment.version == current,
            })
            .collect()
    }

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
        // One slot freed is one request served: waking one queued request,
        // not all of them, keeps a deep queue from re-running placement
        // for every waiter on every release. No wake-up is lost: a waiter
        // that was woken but leaves without taking the slot (its queue
        // timeout fired, its client went away, or it was served another
        // way) passes the wake-up on when its `Notified` is dropped, and
        // with nobody waiting the permit is kept for the next one.
        self.changed.notify_one();
    }
}

/// `sleep_until` needs some instant when there is nothing to wait for.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
