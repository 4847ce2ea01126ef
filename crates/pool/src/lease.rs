//! A request's claim on one slot of one instance.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::instance::Instance;
use crate::{Deployment, FunctionPool, Shared};

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
    }
}
