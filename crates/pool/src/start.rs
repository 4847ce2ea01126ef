//! Starting one instance: its environment and command (web, socket
//! activated, or a lambda runtime with its own Runtime API endpoint), the
//! spawn, and the wait for readiness. On failure the process is stopped and
//! the [`StartFailure`] says why, with its last output lines.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rouse_manifest::{FunctionKind, LambdaSpec, Readiness, Rewrite};
use rouse_runtime_api::{Admission, RuntimeEndpoint};
use rouse_sandbox::isolation::Level;
use rouse_sandbox::{Process, SpawnSpec, Stream};

use crate::instance::{report_out_of_memory, wait_for_stop, Instance, STOP_GRACE};
use crate::{lambda, leftovers, FunctionPool, Shared, StartFailure};

/// Output lines kept to explain a failed start or a crash.
const LAST_LINES: usize = 20;

/// How the instance tells rouse it is ready.
enum ReadySignal<'a> {
    Port(u16, &'a Readiness),
    /// Socket activation: rouse's socket takes connections from the start.
    Listening,
    Runtime(Arc<RuntimeEndpoint>),
}

/// What to run, prepared before the spawn.
struct Launch<'a> {
    command: Vec<String>,
    rewrite: Vec<Rewrite>,
    gate: ReadySignal<'a>,
    /// Socket activation: the listening socket handed to the app.
    listener: Option<std::net::TcpListener>,
}

/// Spawns the process and waits for readiness; on failure the process is
/// already stopped and the error says why (with its last output lines).
pub(crate) async fn start(
    shared: &Shared,
    fp: &FunctionPool,
    instance: &Instance,
) -> Result<Process, StartFailure> {
    let dep = &instance.deployment;
    let code_dir = shared
        .store
        .code_dir(&dep.artifact)
        .await
        .map_err(|e| format!("artifact {}: {e}", dep.artifact))?;
    let work_dir = shared
        .instances_dir
        .join(format!("{}-{}", fp.name, instance.id));
    let mut env = shared.base_env.clone();
    env.extend(dep.spec.environment.clone());
    env.insert("ROUSE_FUNCTION".into(), fp.name.clone());
    env.insert("ROUSE_FUNCTION_VERSION".into(), dep.version.to_string());
    env.insert("ROUSE_INSTANCE_ID".into(), instance.id.clone());
    let launch = prepare(shared, fp, instance, &code_dir, &work_dir, &mut env).await?;
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
    // A stopwatch for the Init Duration users see: real time, even in tests
    // that pause tokio's clock.
    let spawned = std::time::Instant::now();
    let mut process = rouse_sandbox::spawn(SpawnSpec {
        code_dir,
        work_dir,
        command: launch.command,
        env,
        rewrite: launch.rewrite,
        sink: log_sink(shared, fp, instance),
        keep_last_lines: LAST_LINES,
        isolation,
        listener: launch.listener,
    })
    .await
    .map_err(|e| e.to_string())?;
    spawned_as(shared, fp, instance, &process);
    let timeout = Duration::from_secs_f64(dep.spec.scaling.start_timeout_secs);
    if let Err(err) = ready(instance, &mut process, launch.gate, timeout).await {
        return Err(failed(shared, fp, instance, process, err).await);
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

/// The command, rewrites and readiness gate for the function's kind, with
/// what that kind adds to `env` (`PORT`, or Lambda's reserved variables).
async fn prepare<'a>(
    shared: &Shared,
    fp: &FunctionPool,
    instance: &'a Instance,
    code_dir: &Path,
    work_dir: &Path,
    env: &mut BTreeMap<String, String>,
) -> Result<Launch<'a>, StartFailure> {
    let dep = &instance.deployment;
    match &dep.spec.kind {
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
            Ok(Launch {
                command: web.command.clone(),
                rewrite: web.rewrite.clone(),
                gate: ReadySignal::Listening,
                listener: Some(socket),
            })
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
            Ok(Launch {
                command: web.command.clone(),
                rewrite: web.rewrite.clone(),
                gate: ReadySignal::Port(port, &web.readiness),
                listener: None,
            })
        }
        FunctionKind::Lambda(l) => {
            prepare_lambda(shared, fp, instance, l, code_dir, work_dir, env).await
        }
    }
}

/// [`prepare`] for a lambda function: its runtime's command, a Runtime
/// API endpoint of its own, and Lambda's reserved variables.
async fn prepare_lambda<'a>(
    shared: &Shared,
    fp: &FunctionPool,
    instance: &'a Instance,
    l: &LambdaSpec,
    code_dir: &Path,
    work_dir: &Path,
    env: &mut BTreeMap<String, String>,
) -> Result<Launch<'a>, StartFailure> {
    let dep = &instance.deployment;
    let command = lambda::runtime_command(&l.runtime, &shared.runtime_dir)?;
    if command[0] == "./bootstrap" && !code_dir.join("bootstrap").is_file() {
        return Err(
            "Runtime.InvalidEntrypoint: a provided runtime needs an executable `bootstrap` at the root of the project"
                .to_string()
                .into(),
        );
    }
    let admission = runtime_api_admission(shared.confinement.level, fp.uid);
    let home = instance
        .home
        .clone()
        .unwrap_or_else(tokio::runtime::Handle::current);
    let endpoint = Arc::new(
        RuntimeEndpoint::bind_on(&home, admission)
            .map_err(|e| format!("cannot listen for the Runtime API: {e}"))?,
    );
    // Lambda's reserved variables win over the function's own.
    env.extend(lambda::lambda_env(&lambda::LambdaEnv {
        function: &fp.name,
        handler: &l.handler,
        runtime: &l.runtime,
        memory_mb: dep.spec.memory_size,
        runtime_api: &endpoint.runtime_api(),
        task_root: work_dir,
        runtime_dir: &shared.runtime_dir,
        instance_id: &instance.id,
        now: SystemTime::now(),
        version: &dep.lambda_version(),
    }));
    let _ = instance.runtime.set(endpoint.clone());
    Ok(Launch {
        command,
        rewrite: Vec::new(),
        gate: ReadySignal::Runtime(endpoint),
        listener: None,
    })
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

/// Where the instance's output lines go: the function's log, and the
/// capture of the invocation in flight.
fn log_sink(shared: &Shared, fp: &FunctionPool, instance: &Instance) -> rouse_sandbox::LineSink {
    let logs = shared.logs.clone();
    let function = fp.name.clone();
    let source = instance.id.clone();
    let capture = instance.capture.clone();
    Arc::new(move |_stream: Stream, line: &str| {
        capture.push(line);
        logs.write(&function, &source, line)
    })
}

/// Records what the spawn made: pid, peak memory file, output sync, the
/// pid file for a later run, and the cold start line.
fn spawned_as(shared: &Shared, fp: &FunctionPool, instance: &Instance, process: &Process) {
    instance.pid.store(process.pid(), Ordering::Relaxed);
    let peak = rouse_sandbox::procfs::PeakMemory::open(
        process.peak_memory_file().as_deref(),
        process.pid(),
    );
    let _ = instance.memory_peak.set(peak);
    let _ = instance.output.set(process.output_sync());
    leftovers::record(&shared.instances_dir, &instance.id, process.pid());
    shared.logs.platform(
        &fp.name,
        &format!(
            "cold start: instance {} pid {} version {}",
            instance.id,
            process.pid(),
            instance.deployment.version
        ),
    );
}

/// Waits for the instance to pass its gate within `timeout`, unless it is
/// asked to stop first.
async fn ready(
    instance: &Instance,
    process: &mut Process,
    gate: ReadySignal<'_>,
    timeout: Duration,
) -> Result<(), StartFailure> {
    match gate {
        ReadySignal::Listening => Ok(()),
        ReadySignal::Port(port, readiness) => tokio::select! {
            ready = rouse_sandbox::wait_ready(process, port, readiness, timeout) => ready.map_err(|e| e.to_string().into()),
            () = wait_for_stop(instance) => Err("stopped before it was ready".to_string().into()),
        },
        ReadySignal::Runtime(endpoint) => tokio::select! {
            init = endpoint.initialized() => init.map_err(|failure| StartFailure {
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
    }
}

/// Stops a process that did not become ready and completes `err` with
/// what it said last (and whether it ran out of memory).
async fn failed(
    shared: &Shared,
    fp: &FunctionPool,
    instance: &Instance,
    mut process: Process,
    mut err: StartFailure,
) -> StartFailure {
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
    err
}
