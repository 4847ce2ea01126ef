//! Stream event source mappings: one poller task per shard per mapping.
//! A poller reads past its checkpoint, waits for a put when it is caught
//! up (a wake-up per stream, no polling interval), invokes the function
//! through the pool with a batch, and commits the checkpoint only once the
//! batch is done (succeeded, or given up to the on-failure destination).
//! Records of a shard are delivered in order: one batch at a time.
//!
//! In a cluster every node runs the same pollers, but only the one holding
//! the shard's lease (`rouse_store::leases`) reads: a renewer task per
//! poller takes or renews the lease every [`LEASE_TTL`] / 3, and the store
//! refuses a checkpoint from a node that does not hold it. When a node
//! dies its leases expire and another node's poller takes the shard over
//! from the last committed checkpoint: the batch that was in flight on the
//! dead node runs again (at least once).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rouse_manifest::{Destination, FunctionKind, StartingPosition, StreamEvent};
use rouse_pool::AcquireError;
use rouse_store::leases::Grant;
use rouse_store::streams::StreamRecord;
use tokio::sync::watch;

use super::batch::{self, Outcome, Policy, Span, Step};
use super::{format, record};
use crate::lambda::{LambdaCall, LambdaResult};
use crate::{Gateway, Inner};

/// Back-off when the store fails.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// How long a shard's lease lasts without renewal: a dead node's shards
/// move to another node within this time.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the holder renews (a third of the lease: two renewals may
/// fail before it lapses).
const LEASE_RENEW: Duration = Duration::from_millis(3_333);
/// On a shared store a notification can be lost (no listener connected
/// for a moment): a caught-up poller looks again this often.
const SHARED_POLL: Duration = Duration::from_secs(1);

/// (function, stream, shard)
type Key = (String, String, u32);

/// The pollers running on this node.
#[derive(Default)]
pub(crate) struct Pollers {
    running: Mutex<HashMap<Key, Running>>,
}

struct Running {
    config: StreamEvent,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The id checkpoints are kept under: one mapping per function and stream.
pub fn mapping_id(function: &str, stream: &str) -> String {
    format!("{function}/{stream}")
}

pub(super) async fn reconcile(gateway: &Gateway) {
    let store = &gateway.inner.store;
    let functions = match store.list_functions().await {
        Ok(f) => f,
        Err(err) => {
            tracing::error!(%err, "cannot read functions for their stream mappings");
            return;
        }
    };
    let mut wanted: HashMap<Key, StreamEvent> = HashMap::new();
    for f in functions {
        if !matches!(f.spec.kind, FunctionKind::Lambda(_)) {
            continue;
        }
        for event in &f.spec.events {
            let rouse_manifest::Event::Stream(mapping) = event else {
                continue;
            };
            if !mapping.enabled {
                continue;
            }
            let Some(shards) = stream_shards(gateway, &f.name, &mapping.stream).await else {
                continue;
            };
            for shard in 0..shards {
                wanted.insert(
                    (f.name.clone(), mapping.stream.clone(), shard),
                    mapping.clone(),
                );
            }
        }
    }
    let node = gateway.inner.events.node().to_string();
    let mut running = gateway
        .inner
        .pollers
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    // A poller replaced by one with new settings may be mid-batch: its
    // successor waits for it to end, so a shard never has two readers.
    let mut stopping: HashMap<Key, tokio::task::JoinHandle<()>> = HashMap::new();
    let keys: Vec<Key> = running.keys().cloned().collect();
    for key in keys {
        if running
            .get(&key)
            .is_some_and(|p| wanted.get(&key) == Some(&p.config))
        {
            continue;
        }
        if let Some(poller) = running.remove(&key) {
            let _ = poller.stop.send(true);
            stopping.insert(key, poller.task);
        }
    }
    for (key, config) in wanted {
        if running.contains_key(&key) {
            continue;
        }
        let (stop, stopped) = watch::channel(false);
        let wake = gateway.inner.wakers.subscribe(&key.1);
        let poller = Poller {
            gateway: Arc::downgrade(&gateway.inner),
            mapping: mapping_id(&key.0, &key.1),
            function: key.0.clone(),
            stream: key.1.clone(),
            shard: key.2,
            config: config.clone(),
            node: node.clone(),
            shared: store.is_shared(),
            stopped,
            wake,
        };
        let predecessor = stopping.remove(&key);
        let task = tokio::spawn(async move {
            if let Some(previous) = predecessor {
                let _ = previous.await;
            }
            poller.run().await;
        });
        running.insert(key, Running { config, stop, task });
    }
}

/// The shard count of a mapping's stream, creating a missing stream (one
/// shard) with a note in the function's log.
async fn stream_shards(gateway: &Gateway, function: &str, stream: &str) -> Option<u32> {
    let store = &gateway.inner.store;
    match store.stream(stream).await {
        Ok(Some(info)) => return Some(info.shards),
        Ok(None) => {}
        Err(err) => {
            tracing::error!(%err, stream, "cannot read a mapped stream");
            return None;
        }
    }
    let now = crate::async_invoke::now_ms();
    let retention = rouse_store::streams::DEFAULT_RETENTION_HOURS;
    match store.create_stream(stream, 1, retention, now).await {
        Ok(_) => {
            gateway.pool().platform_log(
                function,
                &format!("stream {stream} did not exist: created with 1 shard (`rouse streams create NAME --shards N` first for more)"),
            );
            store.stream(stream).await.ok().flatten().map(|s| s.shards)
        }
        Err(err) => {
            tracing::error!(%err, stream, "cannot create a mapped stream");
            None
        }
    }
}

struct Poller {
    gateway: Weak<Inner>,
    mapping: String,
    function: String,
    stream: String,
    shard: u32,
    config: StreamEvent,
    /// This node's id: the lease holder's name.
    node: String,
    /// On PostgreSQL (other nodes append too).
    shared: bool,
    stopped: watch::Receiver<bool>,
    wake: watch::Receiver<u64>,
}

/// The lease as the renewer last saw it: `Some(term)` while this node
/// holds it (`term` counts takes, so a poller notices a lease lost and
/// taken again in between), `None` while another node does.
type Held = watch::Receiver<Option<u64>>;

/// The poller was told to stop, or rouse is stopping: leave the
/// checkpoint where it is.
struct Stop;

impl Poller {
    fn gateway(&self) -> Result<Gateway, Stop> {
        match (self.gateway.upgrade(), *self.stopped.borrow()) {
            (Some(inner), false) => Ok(Gateway { inner }),
            _ => Err(Stop),
        }
    }

    async fn run(mut self) {
        let (held_tx, mut held) = watch::channel(None);
        let (done, done_rx) = watch::channel(false);
        let renewer = tokio::spawn(renew(
            self.gateway.clone(),
            self.mapping.clone(),
            self.shard,
            self.node.clone(),
            held_tx,
            done_rx,
        ));
        // Each term of the lease starts from the stored checkpoint: another
        // node may have moved it while this one did not hold the shard. A
        // term that ended in a refused checkpoint is over even if the
        // renewer has not noticed yet.
        let mut ended = None;
        while let Ok(term) = self.wait_for_lease(&mut held, ended).await {
            if self.poll(&held, term).await.is_err() {
                break;
            }
            ended = Some(term);
        }
        let _ = done.send(true);
        let _ = renewer.await;
    }

    /// Until this node holds the lease in a term other than `ended`.
    async fn wait_for_lease(&mut self, held: &mut Held, ended: Option<u64>) -> Result<u64, Stop> {
        loop {
            if let Some(term) = *held.borrow_and_update() {
                if Some(term) != ended {
                    return Ok(term);
                }
            }
            tokio::select! {
                changed = held.changed() => if changed.is_err() { return Err(Stop) },
                _ = self.stopped.changed() => {}
            }
            self.gateway().map(drop)?;
        }
    }

    /// Reads and processes batches while the lease's `term` lasts: `Ok`
    /// when it ended (lost, or a checkpoint refused), `Err` on stop.
    async fn poll(&mut self, held: &Held, term: u64) -> Result<(), Stop> {
        let mut checkpoint = self.start().await?;
        loop {
            if *held.borrow() != Some(term) {
                return Ok(());
            }
            let gateway = self.gateway()?;
            // Seen before reading: a put after this point wakes us again.
            self.wake.borrow_and_update();
            let batch_size = usize::try_from(self.config.batch_size).unwrap_or(100);
            let records = gateway
                .inner
                .store
                .read(&self.stream, self.shard, checkpoint, batch_size)
                .await;
            drop(gateway);
            let records = match records {
                Ok(records) => records,
                Err(err) => {
                    tracing::error!(%err, stream = %self.stream, "cannot read stream records");
                    self.pause(STORE_RETRY).await?;
                    continue;
                }
            };
            let Some(first) = records.first() else {
                let poll = self.shared.then_some(SHARED_POLL);
                self.wait_for_put(poll).await?;
                continue;
            };
            let window_end = first.arrived_at_ms + i64::from(self.config.batch_window_secs) * 1000;
            let now = crate::async_invoke::now_ms();
            if records.len() < batch_size && now < window_end {
                let left = Duration::from_millis(u64::try_from(window_end - now).unwrap_or(0));
                self.wait_for_put(Some(left)).await?;
                continue;
            }
            match self.process(&records, checkpoint).await? {
                Some(next) => checkpoint = next,
                // The lease is gone: whoever holds it now starts from the
                // last committed checkpoint.
                None => return Ok(()),
            }
        }
    }

    /// The checkpoint to read after: the stored one, or where
    /// `startingPosition` says, stored so a restart keeps it.
    async fn start(&mut self) -> Result<u64, Stop> {
        loop {
            let gateway = self.gateway()?;
            let found = self.stored_or_starting(&gateway).await;
            drop(gateway);
            match found {
                Ok(seq) => return Ok(seq),
                Err(err) => {
                    tracing::error!(%err, mapping = %self.mapping, "cannot read a checkpoint");
                    self.pause(STORE_RETRY).await?;
                }
            }
        }
    }

    async fn stored_or_starting(&self, gateway: &Gateway) -> Result<u64, rouse_store::StoreError> {
        let store = &gateway.inner.store;
        if let Some(seq) = store.checkpoint(&self.mapping, self.shard).await? {
            return Ok(seq);
        }
        let seq = match self.config.starting_position {
            StartingPosition::TrimHorizon => return Ok(0),
            StartingPosition::Latest => store
                .shard_stats(&self.stream)
                .await?
                .iter()
                .find(|s| s.shard == self.shard)
                .map_or(0, |s| s.last_seq),
            StartingPosition::AtTimestamp { at_ms } => {
                store
                    .seq_before_time(&self.stream, self.shard, at_ms)
                    .await?
            }
        };
        let now = crate::async_invoke::now_ms();
        // Refused only when the lease lapsed meanwhile: the next holder
        // works the start out again.
        store
            .set_checkpoint(
                &self.mapping,
                &self.stream,
                self.shard,
                seq,
                &self.node,
                now,
            )
            .await?;
        Ok(seq)
    }

    /// Until records are put (or `limit` passes), or the poller is stopped.
    async fn wait_for_put(&mut self, limit: Option<Duration>) -> Result<(), Stop> {
        let limit = limit.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            changed = self.wake.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
            _ = self.stopped.changed() => {}
            _ = tokio::time::sleep(limit) => {}
        }
        self.gateway().map(drop)
    }

    async fn pause(&mut self, wait: Duration) -> Result<(), Stop> {
        tokio::select! {
            _ = self.stopped.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        self.gateway().map(drop)
    }

    fn policy(&self) -> Policy {
        Policy {
            max_retries: self.config.maximum_retry_attempts,
            max_record_age_ms: self
                .config
                .maximum_record_age_secs
                .map(|s| i64::from(s) * 1000),
            bisect: self.config.bisect_batch_on_function_error,
            report_item_failures: self.config.report_batch_item_failures,
        }
    }

    /// One batch to its end; returns the new checkpoint, or `None` when
    /// the store refused a checkpoint (this node lost the lease).
    async fn process(
        &mut self,
        records: &[StreamRecord],
        mut checkpoint: u64,
    ) -> Result<Option<u64>, Stop> {
        let policy = self.policy();
        let seqs: Vec<String> = records
            .iter()
            .map(|r| format::sequence_number(r.shard, r.seq))
            .collect();
        let arrivals: Vec<i64> = records.iter().map(|r| r.arrived_at_ms).collect();
        let mut work = VecDeque::from([Span::whole(records.len())]);
        let mut invokes = 0u32;
        while let Some(span) = work.pop_front() {
            let answer = self
                .invoke(&records[span.start..span.end], &seqs[span.start..span.end])
                .await?;
            invokes += 1;
            let span_seqs: Vec<&str> = seqs[span.start..span.end]
                .iter()
                .map(String::as_str)
                .collect();
            let outcome = batch::outcome(&policy, answer.as_deref(), span.start, &span_seqs);
            let now = crate::async_invoke::now_ms();
            let step = batch::decide(&policy, span, outcome, &arrivals, now);
            self.log_batch(&span_seqs, outcome, &step, now - arrivals[span.start]);
            let commit_before = match step {
                Step::Done => Some(span.end),
                Step::Retry { commit_before, .. }
                | Step::Split { commit_before, .. }
                | Step::GiveUp { commit_before, .. } => commit_before,
            };
            if let Some(end) = commit_before {
                match self.commit(&records[end - 1], checkpoint).await {
                    Some(next) => checkpoint = next,
                    None => return Ok(None),
                }
            }
            match step {
                Step::Done => {}
                Step::Retry { span, at_ms, .. } => {
                    self.log(&format!(
                        "stream {} {}: batch of {} failed; retry {} of {}",
                        self.stream,
                        format::shard_id(self.shard),
                        span.end - span.start,
                        span.retries,
                        policy.max_retries
                    ));
                    let wait = Duration::from_millis(u64::try_from(at_ms - now).unwrap_or(0));
                    self.pause(wait).await?;
                    work.push_front(span);
                }
                Step::Split { first, second, .. } => {
                    work.push_front(second);
                    work.push_front(first);
                }
                Step::GiveUp {
                    span, condition, ..
                } => {
                    let failed = outcome != Outcome::Success;
                    self.give_up(
                        &records[span.start..span.end],
                        &seqs[span.start..span.end],
                        condition,
                        invokes,
                        failed,
                    );
                    match self.commit(&records[span.end - 1], checkpoint).await {
                        Some(next) => checkpoint = next,
                        None => return Ok(None),
                    }
                }
            }
        }
        Ok(Some(checkpoint))
    }

    /// One line per invocation of a batch: its records, first and last
    /// sequence numbers, the outcome, and how old its first record was.
    fn log_batch(&self, seqs: &[&str], outcome: Outcome, step: &Step, age_ms: i64) {
        let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
            return;
        };
        let outcome = match (outcome, step) {
            (Outcome::Success, _) => "ok",
            (_, Step::Done) => "ok",
            (_, Step::Retry { .. }) => "failed, retrying",
            (_, Step::Split { .. }) => "failed, bisecting",
            (_, Step::GiveUp { .. }) => "failed, giving up",
        };
        self.log(&format!(
            "stream {} {}: batch of {} records {first}..{last}: {outcome} (iterator age {age_ms} ms)",
            self.stream,
            format::shard_id(self.shard),
            seqs.len(),
        ));
    }

    fn log(&self, message: &str) {
        if let Ok(gateway) = self.gateway() {
            gateway.pool().platform_log(&self.function, message);
        }
    }

    /// Commits the checkpoint at `last`; `None` when the store refused it
    /// because this node no longer holds the shard's lease.
    async fn commit(&self, last: &StreamRecord, checkpoint: u64) -> Option<u64> {
        let Some(inner) = self.gateway.upgrade() else {
            return Some(checkpoint);
        };
        let now = crate::async_invoke::now_ms();
        match inner
            .store
            .set_checkpoint(
                &self.mapping,
                &self.stream,
                self.shard,
                last.seq,
                &self.node,
                now,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(mapping = %self.mapping, shard = self.shard, "lease lost: checkpoint not committed; the holder runs the batch again");
                return None;
            }
            // Kept in memory: the records run again only after a restart.
            Err(err) => {
                tracing::error!(%err, mapping = %self.mapping, "cannot commit a stream checkpoint")
            }
        }
        Some(checkpoint.max(last.seq))
    }

    /// Runs the function on `records`: `Some(result)` when it answered,
    /// `None` when it failed or could not run.
    async fn invoke(
        &self,
        records: &[StreamRecord],
        seqs: &[String],
    ) -> Result<Option<Bytes>, Stop> {
        let gateway = self.gateway()?;
        let shard_id = format::shard_id(self.shard);
        let stream_arn = format::stream_arn(&self.stream);
        let identity = format!("arn:aws:iam::{}:role/rouse", rouse_pool::lambda::ACCOUNT_ID);
        let batch: Vec<rouse_events::kinesis::KinesisRecord<'_>> = records
            .iter()
            .zip(seqs)
            .map(|(r, seq)| rouse_events::kinesis::KinesisRecord {
                partition_key: &r.partition_key,
                sequence_number: seq,
                data: &r.data,
                arrived_at_ms: r.arrived_at_ms,
            })
            .collect();
        let source = rouse_events::kinesis::KinesisSource {
            shard_id: &shard_id,
            stream_arn: &stream_arn,
            region: rouse_pool::lambda::REGION,
            invoke_identity_arn: &identity,
        };
        let payload = rouse_events::kinesis::kinesis_event(&source, &batch).to_string();
        let call = LambdaCall {
            function: &self.function,
            version: None,
            request_id: uuid::Uuid::new_v4().to_string(),
            payload: Bytes::from(payload),
            client_context: None,
            trace_id: None,
        };
        let result = gateway.call_lambda(call).await;
        if gateway.pool().is_shutting_down() {
            return Err(Stop);
        }
        match result {
            Ok(invoked) => match invoked.result {
                LambdaResult::Ok { body, .. } => Ok(Some(body)),
                LambdaResult::FunctionError { .. } => Ok(None),
            },
            Err(AcquireError::ShuttingDown | AcquireError::NotFound(_)) => Err(Stop),
            Err(err) => {
                tracing::warn!(%err, function = %self.function, "stream batch not run");
                Ok(None)
            }
        }
    }

    /// Sends the on-failure record, or logs that the records are skipped.
    fn give_up(
        &self,
        records: &[StreamRecord],
        seqs: &[String],
        condition: batch::Condition,
        invokes: u32,
        failed: bool,
    ) {
        let (Some(first), Some(last), Ok(gateway)) =
            (records.first(), records.last(), self.gateway())
        else {
            return;
        };
        let range = format!("{}..{}", seqs[0], seqs[seqs.len() - 1]);
        let shard_id = format::shard_id(self.shard);
        let request_id = uuid::Uuid::new_v4().to_string();
        let record = record::failure_record(&record::Failure {
            request_id: &request_id,
            function_arn: &rouse_pool::lambda::function_arn(&self.function),
            condition: condition.as_str(),
            invoke_count: invokes,
            function_error: failed,
            shard_id: &shard_id,
            stream_arn: &format::stream_arn(&self.stream),
            first_seq: &seqs[0],
            last_seq: &seqs[seqs.len() - 1],
            first_arrival_ms: first.arrived_at_ms,
            last_arrival_ms: last.arrived_at_ms,
            batch_size: records.len(),
            at: SystemTime::now(),
        });
        let what = format!(
            "stream {} {shard_id}: gave up on {} records ({}, {range})",
            self.stream,
            records.len(),
            condition.as_str()
        );
        match &self.config.on_failure {
            Some(Destination::Function { name }) => {
                match gateway.enqueue_event(name, Bytes::from(record.to_string())) {
                    Ok(id) => self.log(&format!("{what}; sent to {name} as {id}")),
                    Err(err) => self.log(&format!("{what}; cannot send it to {name}: {err}")),
                }
            }
            _ => self.log(&format!("{what}; no onFailure destination, skipped")),
        }
    }
}

/// Takes and renews a poller's lease until the poller stops, publishing
/// whether this node holds it; gives it up at the end so another node
/// takes the shard at once.
async fn renew(
    gateway: Weak<Inner>,
    mapping: String,
    shard: u32,
    node: String,
    held: watch::Sender<Option<u64>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut term = 0u64;
    let mut valid_until = 0i64;
    loop {
        let Some(inner) = gateway.upgrade() else {
            break;
        };
        if *stopped.borrow() {
            break;
        }
        let now = crate::async_invoke::now_ms();
        let grant = inner
            .store
            .acquire_lease(&mapping, shard, &node, now, LEASE_TTL)
            .await;
        drop(inner);
        let wait = match grant {
            Ok(Grant::Held { fresh, until_ms }) => {
                valid_until = until_ms;
                if fresh || held.borrow().is_none() {
                    term += 1;
                    held.send_replace(Some(term));
                }
                LEASE_RENEW
            }
            Ok(Grant::Busy { until_ms, .. }) => {
                held.send_replace(None);
                let left = u64::try_from(until_ms - now).unwrap_or(0);
                Duration::from_millis(left.clamp(50, 3_333))
            }
            Err(err) => {
                tracing::warn!(%err, %mapping, shard, "cannot renew a stream lease");
                if now >= valid_until {
                    held.send_replace(None);
                }
                STORE_RETRY
            }
        };
        tokio::select! {
            _ = stopped.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    held.send_replace(None);
    if let Some(inner) = gateway.upgrade() {
        if let Err(err) = inner.store.release_lease(&mapping, shard, &node).await {
            tracing::debug!(%err, %mapping, shard, "cannot release a stream lease");
        }
    }
}
