//! One instance and the supervisor task that owns its process: start, gate on
//! readiness, then stop it when it is idle, too old, drained, asked to, or
//! dead.

use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use rouse_manifest::{FunctionKind, Readiness};
use rouse_runtime_api::{Admission, InitFailure, RuntimeEndpoint};
use rouse_sandbox::isolation::Level;
use rouse_sandbox::{Process, SpawnSpec, Stream};
use tokio::sync::{watch, Notify};

use crate::capture::Capture;
use crate::placement::Phase;
use crate::{
    far_future, keep_min_warm, lambda, leftovers, Deployment, FunctionPool, Shared, StartFailure,
};

/// Time between SIGTERM and SIGKILL when stopping an instance.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Output lines kept to explain a failed start or a crash.
const LAST_LINES: usize = 20;

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
    /// The cgroup file with its peak memory use (isolated instances).
    pub memory_peak_file: OnceLock<std::path::PathBuf>,
    stop_reason: Mutex<Option<String>>,
}

impl Instance {
    pub fn new(deployment: Arc<Deployment>) -> Instance {
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
            memory_peak_file: OnceLock::new(),
            stop_reason: Mutex::new(None),
        }
    }

    pub fn request_stop(&self, reason: &str) {
        let mut stop = self.stop_reason.lock().unwrap_or_else(|e| e.into_inner());
        stop.get_or_insert_with(|| reason.to_string());
        drop(stop);
        self.wake.notify_one();
    }

    /// Waits until the instance is ready, or says why it did not start.
    pub async fn started_up(&self) -> Result<(), Arc<StartFailure>> {
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

/// What the supervisor should do next, decided under the pool lock.
enum Next {
    Stop(String),
    Sleep { idle_deadline: Instant },
}

/// Owns one instance from spawn to exit. `live_instances` was incremented by
/// the caller; it is decremented here when the process is gone.
pub(crate) async fn supervise(shared: Arc<Shared>, fp: Arc<FunctionPool>, instance: Arc<Instance>) {
    let logs = &shared.logs;
    match start(&shared, &fp, &instance).await {
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
                .send_replace(Startup::Failed(Arc::new(StartFailure {
                    message: err.message,
                    init_error: err.init_error,
                })));
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

/// Why an instance did not become ready.
pub(crate) struct StartError {
    pub message: String,
    /// What a lambda runtime posted to `init/error`, returned to the invoker.
    pub init_error: Option<InitFailure>,
}

impl From<String> for StartError {
    fn from(message: String) -> Self {
        StartError {
            message,
            init_error: None,
        }
    }
}

/// How the instance tells rouse it is ready.
enum Gate<'a> {
    Port(u16, &'a Readiness),
    /// Socket activation: rouse's socket takes connections from the start.
    Listening,
    Runtime(Arc<RuntimeEndpoint>),
}

/// Spawns the process and waits for readiness; on failure the process is
/// already stopped and the error says why (with its last output lines).
async fn start(
    shared: &Shared,
    fp: &FunctionPool,
    instance: &Instance,
) -> Result<Process, StartError> {
    let dep = &instance.deployment;
    let code_dir = shared
        .store
        .code_dir(&dep.artifact)
        .map_err(|e| format!("artifact {}: {e}", dep.artifact))?;
    let work_dir = shared
        .instances_dir
        .join(format!("{}-{}", fp.name, instance.id));
    let mut env = shared.base_env.clone();
    env.extend(dep.spec.environment.clone());
    env.insert("ROUSE_FUNCTION".into(), fp.name.clone());
    env.insert("ROUSE_FUNCTION_VERSION".into(), dep.version.to_string());
    env.insert("ROUSE_INSTANCE_ID".into(), instance.id.clone());
    let mut listener = None;
    let (command, rewrite, gate) = match &dep.spec.kind {
        FunctionKind::Web(web) if web.socket_activation => {
            let socket =
                std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, web.port.unwrap_or(0)))
                    .map_err(|e| format!("cannot bind the instance's socket: {e}"))?;
            let port = socket
                .local_addr()
                .map_err(|e| format!("cannot bind the instance's socket: {e}"))?
                .port();
            instance.port.store(port, Ordering::Relaxed);
            env.insert("PORT".into(), port.to_string());
            listener = Some(socket);
            (web.command.clone(), web.rewrite.clone(), Gate::Listening)
        }
        FunctionKind::Web(web) => {
            let port = match web.port {
                Some(port) => port,
                None => rouse_sandbox::free_port().map_err(|e| format!("no free port: {e}"))?,
            };
            // Leases read the port only after startup reports Ready, which
            // the watch channel orders after this store.
            instance.port.store(port, Ordering::Relaxed);
            env.insert("PORT".into(), port.to_string());
            (
                web.command.clone(),
                web.rewrite.clone(),
                Gate::Port(port, &web.readiness),
            )
        }
        FunctionKind::Lambda(l) => {
            let command = lambda::runtime_command(&l.runtime, &shared.runtime_dir)?;
            if command[0] == "./bootstrap" && !code_dir.join("bootstrap").is_file() {
                return Err(
                    "Runtime.InvalidEntrypoint: a provided runtime needs an executable `bootstrap` at the root of the project"
                        .to_string()
                        .into(),
                );
            }
            let endpoint = Arc::new(
                RuntimeEndpoint::bind_admitting(runtime_api_admission(
                    shared.confinement.level,
                    fp.uid,
                ))
                .await
                .map_err(|e| format!("cannot listen for the Runtime API: {e}"))?,
            );
            // Lambda's reserved variables win over the function's own.
            env.extend(lambda::lambda_env(&lambda::LambdaEnv {
                function: &fp.name,
                handler: &l.handler,
                runtime: &l.runtime,
                memory_mb: dep.spec.memory_size,
                runtime_api: &endpoint.runtime_api(),
                task_root: &work_dir,
                runtime_dir: &shared.runtime_dir,
                instance_id: &instance.id,
                now: SystemTime::now(),
                version: &dep.lambda_version(),
            }));
            let _ = instance.runtime.set(endpoint.clone());
            (command, Vec::new(), Gate::Runtime(endpoint))
        }
    };
    let sink = {
        let logs = shared.logs.clone();
        let function = fp.name.clone();
        let source = instance.id.clone();
        let capture = instance.capture.clone();
        Arc::new(move |_stream: Stream, line: &str| {
            capture.push(line);
            logs.write(&function, &source, line)
        })
    };
    let no_network = matches!(&dep.spec.kind, FunctionKind::Web(web) if web.no_network);
    let isolation = shared.confinement.instance(
        fp.uid,
        format!("{}-{}", fp.name, instance.id),
        dep.spec.memory_size,
        &shared.runtime_dir,
        no_network,
    );
    if no_network && isolation.is_none() {
        // Starting it with the host's network would quietly break the promise.
        return Err(format!(
            "`network: none` needs namespace isolation; this server runs with `--isolation {}`",
            shared.confinement.level
        )
        .into());
    }
    let spawned = Instant::now();
    let mut process = rouse_sandbox::spawn(SpawnSpec {
        code_dir,
        work_dir,
        command,
        env,
        rewrite,
        sink,
        keep_last_lines: LAST_LINES,
        isolation,
        listener,
    })
    .await
    .map_err(|e| e.to_string())?;
    instance.pid.store(process.pid(), Ordering::Relaxed);
    if let Some(file) = process.peak_memory_file() {
        let _ = instance.memory_peak_file.set(file);
    }
    let _ = instance.output.set(process.output_sync());
    leftovers::record(&shared.instances_dir, &instance.id, process.pid());
    shared.logs.platform(
        &fp.name,
        &format!(
            "cold start: instance {} pid {} version {}",
            instance.id,
            process.pid(),
            dep.version
        ),
    );
    let timeout = Duration::from_secs_f64(dep.spec.scaling.start_timeout_secs);
    let ready: Result<(), StartError> = match gate {
        Gate::Listening => Ok(()),
        Gate::Port(port, readiness) => tokio::select! {
            ready = rouse_sandbox::wait_ready(&mut process, port, readiness, timeout) => ready.map_err(|e| e.to_string().into()),
            () = wait_for_stop(instance) => Err("stopped before it was ready".to_string().into()),
        },
        Gate::Runtime(endpoint) => tokio::select! {
            init = endpoint.initialized() => init.map_err(|failure| StartError {
                message: format!("the runtime reported an init error ({})", failure.error_type),
                init_error: Some(failure),
            }),
            status = process.wait() => Err(format!(
                "Runtime.ExitError: the runtime exited during init ({})",
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
            ).into()),
            () = tokio::time::sleep(timeout) => Err(format!("the runtime did not call `next` within {timeout:?}").into()),
            () = wait_for_stop(instance) => Err("stopped before it was ready".to_string().into()),
        },
    };
    if let Err(mut err) = ready {
        process.stop(STOP_GRACE).await;
        if let Some(limit) = process.out_of_memory() {
            report_out_of_memory(shared, fp, instance, limit);
            err.message
                .push_str(&format!(" (killed: out of memory, limit {limit} MB)"));
        }
        leftovers::forget(&shared.instances_dir, &instance.id);
        let last = process.last_lines();
        rouse_sandbox::remove_work_dir(process.work_dir());
        if last.is_empty() {
            err.message.push_str(" (no output)");
        } else {
            err.message = format!("{}; last output:\n  {}", err.message, last.join("\n  "));
        }
        return Err(err);
    }
    let init = spawned.elapsed();
    *instance
        .init_duration
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(init);
    fp.metrics.cold_start(init);
    shared.logs.platform(
        &fp.name,
        &format!(
            "instance {} ready in {:.1} ms",
            instance.id,
            spawned.elapsed().as_secs_f64() * 1000.0
        ),
    );
    Ok(process)
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
    let retire_at = instance.started + Duration::from_secs_f64(dep.spec.scaling.max_lifetime_secs);
    fp.mark_ready(instance);
    // Old versions drain before anyone hears this one is ready, so a
    // caller that waited for it never reaches an old instance afterwards.
    fp.drain_older_than(dep.version);
    instance.startup.send_replace(Startup::Ready);
    fp.changed.notify_waiters();
    // After a redeploy, the rest of `minInstances` runs the new version.
    keep_min_warm(shared, fp);

    let reason = loop {
        let next = fp.next_step(instance, idle_timeout, Instant::now());
        let idle_deadline = match next {
            Next::Stop(reason) => break reason,
            Next::Sleep { idle_deadline } => idle_deadline,
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
            () = tokio::time::sleep_until(idle_deadline.into()) => {}
            () = tokio::time::sleep_until(retire_at.into()), if Instant::now() < retire_at => {
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
fn report_out_of_memory(shared: &Shared, fp: &FunctionPool, instance: &Instance, limit_mb: u32) {
    instance.out_of_memory.store(true, Ordering::Release);
    shared.logs.platform(
        &fp.name,
        &format!(
            "instance {} killed: out of memory (limit {limit_mb} MB)",
            instance.id
        ),
    );
}

async fn wait_for_stop(instance: &Instance) {
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

    fn next_step(&self, instance: &Instance, idle_timeout: Duration, now: Instant) -> Next {
        if let Some(reason) = instance.stop_reason() {
            return Next::Stop(reason);
        }
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
            instance.deployment.spec.scaling.min_instances as usize
        } else {
            0
        };
        let Some(slot) = state
            .slots
            .iter()
            .find(|s| std::ptr::eq(Arc::as_ptr(&s.instance), instance))
        else {
            return Next::Stop("removed".into());
        };
        if slot.phase == Phase::Draining {
            if slot.in_flight == 0 {
                return Next::Stop("drained".into());
            }
            return Next::Sleep {
                idle_deadline: far_future(),
            };
        }
        let idle_deadline = if slot.in_flight > 0 {
            now + idle_timeout
        } else {
            slot.last_used + idle_timeout
        };
        if slot.in_flight == 0 && idle_deadline <= now {
            if live > min {
                return Next::Stop(format!("idle for {}s", idle_timeout.as_secs_f64()));
            }
            // Kept warm for `minInstances`: look again an idle timeout
            // later, when another instance may have made it surplus.
            return Next::Sleep {
                idle_deadline: now + idle_timeout,
            };
        }
        Next::Sleep { idle_deadline }
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

/// Who may call an instance's Runtime API: under isolation only sockets of
/// the function's own uid (its runtime and extensions), so another
/// function's instance cannot take its events or answer for it. Without
/// isolation every instance runs as rouse's uid and nothing tells them apart.
fn runtime_api_admission(level: Level, uid: u32) -> Admission {
    if level == Level::None {
        return Admission::anyone();
    }
    Admission::only(
        move |local, peer| match rouse_sandbox::peer::tcp_peer_uid(local, peer) {
            Ok(owner) => owner == uid,
            Err(err) => {
                tracing::debug!(%peer, error = %err, "runtime API: cannot tell who connected");
                false
            }
        },
    )
}
