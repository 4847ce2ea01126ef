//! Keeps the scheduler in step with deployed functions: each `schedule`
//! event of a lambda function becomes a timer that queues an async
//! invocation with an EventBridge "Scheduled Event" payload.

use std::sync::Arc;

use bytes::Bytes;
use rouse_gateway::Gateway;
use rouse_manifest::{Event, FunctionKind};
use rouse_store::{FunctionRecord, Store};
use rouse_triggers::{Schedule, Scheduler, Tick};

/// The schedules of one function, parsed; `Err` names the bad expression.
pub(crate) fn parse(function: &rouse_manifest::FunctionSpec) -> Result<Vec<Schedule>, String> {
    function
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Schedule { expression } => Some(expression),
            _ => None,
        })
        .map(|expression| {
            Schedule::parse(expression).map_err(|err| {
                format!(
                    "function {}: schedule {expression:?}: {err}",
                    function.short_name
                )
            })
        })
        .collect()
}

/// Starts the scheduler; ticks become async invocations through `gateway`.
/// Every node of a cluster runs the same schedules; a tick fires on the one
/// node whose claim in `store` wins (on SQLite every claim wins).
pub fn start(gateway: Gateway, store: Arc<Store>, node: String) -> Scheduler {
    Scheduler::new(Arc::new(move |tick: Tick| {
        let (gateway, store, node) = (gateway.clone(), store.clone(), node.clone());
        Box::pin(async move {
            if claimed(&store, &node, &tick).await {
                fire(&gateway, tick);
            }
        })
    }))
}

/// One tick of one schedule of one function, claimed once cluster-wide.
/// A store that cannot be reached skips the tick: firing it on every node
/// instead would multiply it.
async fn claimed(store: &Store, node: &str, tick: &Tick) -> bool {
    let key = format!("{}/{}/{}", tick.function, tick.index, tick.expression);
    match store
        .claim_tick(&key, tick.scheduled.saturating_mul(1000), node)
        .await
    {
        Ok(won) => won,
        Err(err) => {
            tracing::warn!(function = %tick.function, %err, "schedule tick skipped: the store is unavailable");
            false
        }
    }
}

fn fire(gateway: &Gateway, tick: Tick) {
    let id = uuid::Uuid::new_v4().to_string();
    let rule = format!("{}-schedule-{}", tick.function, tick.index);
    let arn = rouse_pool::lambda::function_arn(&tick.function);
    let event = rouse_triggers::scheduled_event(&rule, &arn, tick.scheduled, &id);
    let note = if tick.coalesced {
        " (missed ticks coalesced)"
    } else {
        ""
    };
    match gateway.enqueue_event(&tick.function, Bytes::from(event.to_string())) {
        Ok(request_id) => gateway.pool().platform_log(
            &tick.function,
            &format!(
                "schedule {} fired{note}: invocation {request_id}",
                tick.expression
            ),
        ),
        Err(err) => gateway.pool().platform_log(
            &tick.function,
            &format!("schedule {} skipped: {err}", tick.expression),
        ),
    }
}

/// Points the scheduler at a function's current schedules. Rates count
/// from the deploy time, so a restart keeps their rhythm.
pub fn sync(scheduler: &Scheduler, record: &FunctionRecord) {
    let schedules = match (&record.spec.kind, parse(&record.spec)) {
        (FunctionKind::Lambda(_), Ok(schedules)) => schedules
            .into_iter()
            .map(|s| s.with_anchor(record.updated_at))
            .collect(),
        (FunctionKind::Lambda(_), Err(err)) => {
            tracing::warn!(function = %record.name, "{err}");
            Vec::new()
        }
        // Web functions have no event handler to receive a schedule.
        (FunctionKind::Web(_), _) => Vec::new(),
    };
    scheduler.set_function(&record.name, schedules);
}
