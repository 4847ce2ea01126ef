//! A request's claim on one slot of one instance.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rouse_runtime_api::{Invocation, Outcome};

use crate::instance::Instance;
use crate::metrics::ErrorKind;
use crate::{Deployment, FunctionPool, Shared};

/// Longest wait, after a runtime answered, for the output it wrote before
/// answering to reach the log; only an instance that never stops printing
/// waits this long.
const OUTPUT_SETTLE: Duration = Duration::from_millis(50);

/// Why an invocation got no outcome from the runtime.
#[derive(Debug, thiserror::Error)]
pub enum InvokeFailure {
    #[error("Runtime exited with error: {0}")]
    Exited(String),
    /// The kernel killed the runtime at the function's memory limit.
    #[error("Runtime exited with error: signal: killed")]
    OutOfMemory,
    #[error("function {0} is not a lambda function")]
    NotLambda(String),
}

/// Held for as long as a request uses an instance; dropping it frees the slot.
pub struct Lease {
    shared: Arc<Shared>,
    function: Arc<FunctionPool>,
    instance: Arc<Instance>,
    cold_start: bool,
}

impl Lease {
    pub(crate) fn new(
        shared: Arc<Shared>,
        function: Arc<FunctionPool>,
        instance: Arc<Instance>,
        cold_start: bool,
    ) -> Lease {
        function.metrics.leased();
        instance.served.fetch_add(1, Ordering::Relaxed);
        Lease {
            shared,
            function,
            instance,
            cold_start,
        }
    }

    /// Where the instance listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            self.instance.port.load(Ordering::Relaxed),
        ))
    }

    pub fn instance_id(&self) -> &str {
        &self.instance.id
    }

    pub fn pid(&self) -> u32 {
        self.instance.pid.load(Ordering::Relaxed)
    }

    /// True when this request waited for the instance to start.
    pub fn cold_start(&self) -> bool {
        self.cold_start
    }

    pub fn deployment(&self) -> &Deployment {
        &self.instance.deployment
    }

    pub fn function(&self) -> &str {
        &self.function.name
    }

    /// Hands one event to a lambda instance's runtime and waits for the
    /// outcome. Output the instance writes meanwhile is captured for
    /// [`Lease::take_log_tail`]. Ends early with [`InvokeFailure::Exited`] if
    /// the process dies; the caller bounds it with the function timeout.
    pub async fn invoke(&self, invocation: Invocation) -> Result<Outcome, InvokeFailure> {
        let Some(endpoint) = self.instance.runtime.get() else {
            return Err(InvokeFailure::NotLambda(self.function.name.clone()));
        };
        let mut exit = self.instance.exit.subscribe();
        let result = tokio::select! {
            outcome = endpoint.invoke(invocation) => Ok(outcome),
            status = exit.wait_for(Option::is_some) => {
                let status = status
                    .ok()
                    .and_then(|s| s.as_deref().map(str::to_string))
                    .unwrap_or_else(|| "unknown".into());
                if self.instance.out_of_memory.load(std::sync::atomic::Ordering::Acquire) {
                    Err(InvokeFailure::OutOfMemory)
                } else {
                    Err(InvokeFailure::Exited(status))
                }
            }
        };
        // The handler's output travels through a pipe and can trail its
        // response; it belongs before `END` and in the log tail.
        if let (Ok(_), Some(output)) = (&result, self.instance.output.get()) {
            output.settle(OUTPUT_SETTLE).await;
        }
        result
    }

    /// Starts capturing this invocation's log lines (see [`Lease::take_log_tail`]).
    pub fn start_log_capture(&self) {
        self.instance.capture.start();
    }

    /// Writes a line to the function's log as this instance, and to the
    /// invocation's capture.
    pub fn log(&self, line: &str) {
        self.instance.capture.push(line);
        self.shared
            .logs
            .write(&self.function.name, &self.instance.id, line);
    }

    /// The last 4 KB of what this invocation logged.
    pub fn take_log_tail(&self) -> String {
        self.instance.capture.take()
    }

    /// Spawn-to-ready time, for the request that waited for the cold start.
    pub fn init_duration(&self) -> Option<Duration> {
        if !self.cold_start {
            return None;
        }
        *self
            .instance
            .init_duration
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Peak memory of the instance in MB: of its whole cgroup when it is
    /// isolated, else of its main process (Linux `/proc`).
    pub fn max_memory_used_mb(&self) -> Option<u64> {
        self.instance.memory_peak.get()?.read_mb()
    }

    /// Counts one invocation on this lease's function for the metrics:
    /// how long it took and, if it failed, why.
    pub fn record(&self, error: Option<ErrorKind>, duration: Duration) {
        self.function.metrics.record(error, duration);
    }

    /// Called when a request to the instance failed at the connection level.
    /// A crashed process is usually seen by its supervisor a moment later;
    /// waiting briefly for that, and retiring the instance here, keeps the
    /// next request from being placed on a dead instance. An instance that
    /// refuses connections while alive is replaced too. Returns whether the
    /// process had exited (a crash rather than a bad answer).
    pub async fn upstream_failed(&self, connect_refused: bool) -> bool {
        let mut exit = self.instance.exit.subscribe();
        let exited =
            tokio::time::timeout(Duration::from_millis(100), exit.wait_for(Option::is_some))
                .await
                .is_ok();
        if exited {
            self.function.retire(&self.instance);
        } else if connect_refused {
            self.replace_instance("refused a connection; replacing it");
        }
        exited
    }

    /// Kills the instance (e.g. it let a request time out): it takes no more
    /// requests and the next request starts a fresh one.
    pub fn replace_instance(&self, reason: &str) {
        self.shared.logs.platform(
            &self.function.name,
            &format!("instance {} {reason}", self.instance.id),
        );
        self.function.retire(&self.instance);
        self.instance.request_stop(reason);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.function.release(&self.instance);
        if self.shared.node_waiters.load(Ordering::Acquire) > 0 {
            self.shared.node_changed.notify_waiters();
        }
        self.function
            .metrics
            .concurrent
            .fetch_sub(1, Ordering::Relaxed);
    }
}
