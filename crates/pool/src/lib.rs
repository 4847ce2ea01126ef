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
//!
//! This file holds the types and the [`Pool`] facade; each concern has its
//! module: `acquire` (the placement loop and queueing), `warm`
//! (`minInstances`), `evict` (room on a full node), `rollout` (redeploys and
//! removal), `versions` (pinned versions), `shutdown`, `instance` (the
//! supervisor of one instance) and `start` (spawn and readiness). The
//! decisions they act on are pure and table-tested: `placement`,
//! `lifecycle`, `evict::choose`, `burst`, `node` and `backoff`.

#![forbid(unsafe_code)]

mod acquire;
pub mod backoff;
mod burst;
mod capture;
mod evict;
mod homes;
mod instance;
pub mod lambda;
mod lease;
mod leftovers;
mod lifecycle;
pub mod metrics;
mod node;
mod placement;
mod rollout;
mod shutdown;
mod start;
mod versions;
mod warm;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

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
use placement::{Phase, SlotView};
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

impl From<String> for StartFailure {
    fn from(message: String) -> Self {
        StartFailure {
            message,
            init_error: None,
        }
    }
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
    /// Requests it has been handed.
    pub requests: u64,
    /// Its peak memory in MB (of its cgroup when isolated), when readable.
    pub memory_mb: Option<u64>,
}

/// What one function is doing, for the dashboard's table.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    /// Instances starting, ready with requests in flight, ready and idle
    /// (draining ones count as busy: they still finish requests).
    pub starting: u32,
    pub busy: u32,
    pub idle: u32,
    /// The windows asked for, added up; `None` if nothing was counted.
    pub recent: Option<metrics::history::Slot>,
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
    /// In a cluster, the functions whose `minInstances` this node keeps;
    /// `None` on a single node, which keeps every function's.
    min_here: Mutex<Option<std::collections::HashSet<String>>>,
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

/// Variables rouse passes on from its own environment to every instance.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "TMPDIR"];

impl Pool {
    /// A pool running instances at isolation `level` (which the caller has
    /// checked the host supports) within the node-wide limits. Must be
    /// called inside the tokio runtime that is to run the instance
    /// supervisors.
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
                min_here: Mutex::new(None),
            }),
        })
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
                requests: s.instance.served.load(Ordering::Relaxed),
                memory_mb: s.instance.memory_peak.get().and_then(|p| p.read_mb()),
            })
            .collect()
    }

    /// Every loaded function's instances by state and its last `windows`
    /// 10 s windows up to `now` (seconds since 1970) added up. Functions
    /// never called have no pool state and are left out.
    pub fn activity(&self, now: u64, windows: usize) -> HashMap<String, Activity> {
        let functions: Vec<_> = self.lock_functions().values().cloned().collect();
        let mut out: HashMap<String, Activity> = HashMap::with_capacity(functions.len());
        for fp in &functions {
            let entry = out.entry(fp.name.clone()).or_default();
            for slot in &fp.lock_state().slots {
                match slot.phase {
                    Phase::Starting => entry.starting += 1,
                    Phase::Ready if slot.in_flight == 0 => entry.idle += 1,
                    Phase::Ready | Phase::Draining => entry.busy += 1,
                }
            }
            // Pinned versions share their function's counters.
            if fp.pinned.is_none() {
                entry.recent = fp.metrics.total(now, windows);
            }
        }
        out
    }

    /// The last `windows` 10 s windows of `name` up to `now`, oldest
    /// first; `None` if it has counted nothing since it was loaded.
    pub fn history(
        &self,
        name: &str,
        now: u64,
        windows: usize,
    ) -> Option<Vec<metrics::history::Slot>> {
        let fp = self.lock_functions().get(name).cloned()?;
        fp.metrics.series(now, windows)
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

    /// The version this node runs for `name`, if it has loaded the function.
    pub fn current_version(&self, name: &str) -> Option<u32> {
        self.lock_functions()
            .get(name)
            .map(|fp| fp.deployment().version)
    }

    pub(crate) async fn function(&self, name: &str) -> Result<Arc<FunctionPool>, AcquireError> {
        if let Some(fp) = self.lock_functions().get(name) {
            return Ok(fp.clone());
        }
        let record = self
            .shared
            .store
            .get_function(name)
            .await?
            .ok_or_else(|| AcquireError::NotFound(name.to_string()))?;
        let number = self.shared.store.function_number(name).await?.unwrap_or(0);
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

    pub(crate) fn lock_functions(&self) -> MutexGuard<'_, HashMap<String, Arc<FunctionPool>>> {
        self.shared
            .functions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds a starting instance with `reserved` slots already taken and spawns
/// its supervisor. The caller has counted it in the node's usage.
pub(crate) fn start_instance(
    shared: &Arc<Shared>,
    fp: &Arc<FunctionPool>,
    state: &mut State,
    reserved: u32,
) -> Arc<instance::Instance> {
    // A start asked for on a gateway thread (single-threaded runtime) serves
    // the instance's Runtime API there; see `RuntimeEndpoint::bind_on`.
    let home = tokio::runtime::Handle::try_current()
        .ok()
        .filter(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
    let instance = Arc::new(instance::Instance::new(fp.deployment(), home));
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

impl Shared {
    /// Counts one more instance of `memory_mb` against the node's limits;
    /// `false` (nothing counted) if it does not fit, unless `force`.
    pub(crate) fn reserve(&self, memory_mb: u64, force: bool) -> bool {
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
    pub(crate) fn views(&self, state: &State) -> Vec<SlotView> {
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

    pub(crate) fn deployment(&self) -> Arc<Deployment> {
        self.deployment
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives back a slot taken by a lease.
    pub(crate) fn release(&self, instance: &instance::Instance) {
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
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
