//! The per-instance invocation state machine.
//!
//! ```text
//!            first `next`                  event handed out
//!   Init ───────────────────► Idle ───────────────────────► Busy(id)
//!     │                        ▲                               │
//!     │ init/error             └───── /response or /error ─────┘
//!     ▼
//!   InitFailed
//! ```
//!
//! One invocation at a time (Lambda's rule). The invoker side queues at most
//! one invocation; the runtime side takes it with `next`. Everything is under
//! one short-held mutex; waiting happens outside it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{oneshot, watch, Notify};

use crate::errors::{error_json, ApiError};
use crate::{InitFailure, Invocation, Outcome};

/// Where init stands, as seen by [`crate::RuntimeEndpoint::initialized`].
#[derive(Debug, Clone)]
pub(crate) enum InitState {
    Pending,
    Done,
    Failed(InitFailure),
}

/// State shared by the endpoint handle and the server's connection tasks.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes `next` calls waiting for an event.
    event_ready: Notify,
    pub(crate) init: watch::Sender<InitState>,
    /// Serialises [`crate::RuntimeEndpoint::invoke`] calls: the runtime takes
    /// one invocation at a time, so a second caller waits its turn.
    pub(crate) invoke_turn: tokio::sync::Mutex<()>,
}

struct State {
    phase: Phase,
    /// Submitted by `invoke`, not yet taken by `next`.
    queued: Option<Queued>,
    /// Identifiers handed out by the extension `register` stub.
    extensions: HashSet<String>,
    /// A `next` call is waiting for an event. A runtime polls with one
    /// `next` at a time; a second concurrent one is refused, as Lambda
    /// refuses it, so nothing can sit beside the runtime and take its events.
    polling: bool,
}

enum Phase {
    Init,
    InitFailed,
    Idle,
    Busy {
        request_id: String,
        /// Taken by the `/response` or `/error` call that answers.
        reply: Option<oneshot::Sender<Outcome>>,
    },
}

struct Queued {
    invocation: Invocation,
    reply: oneshot::Sender<Outcome>,
}

impl Shared {
    pub(crate) fn new() -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                phase: Phase::Init,
                queued: None,
                extensions: HashSet::new(),
                polling: false,
            }),
            event_ready: Notify::new(),
            init: watch::Sender::new(InitState::Pending),
            invoke_turn: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panicking holder (every update
        // is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an invocation for the runtime's next `next` call.
    pub(crate) fn enqueue(&self, invocation: Invocation, reply: oneshot::Sender<Outcome>) {
        self.lock().queued = Some(Queued { invocation, reply });
        self.event_ready.notify_waiters();
    }

    /// Withdraws a queued invocation the runtime has not taken yet; used when
    /// the invoker gives up (timeout), so a stale event is never delivered.
    pub(crate) fn withdraw(&self, request_id: &str) {
        let mut state = self.lock();
        if state
            .queued
            .as_ref()
            .is_some_and(|q| q.invocation.request_id == request_id)
        {
            state.queued = None;
        }
    }

    /// The runtime's `next`: ends init on the first call, then waits until an
    /// invocation is queued and makes it the outstanding one.
    pub(crate) async fn next_invocation(&self) -> Result<Invocation, ApiError> {
        let _poll = self.start_polling()?;
        loop {
            let notified = self.event_ready.notified();
            tokio::pin!(notified);
            // Registered before looking at the queue, so an `enqueue` between
            // the check and the await still wakes this call.
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                match &state.phase {
                    Phase::Busy { request_id, .. } => {
                        return Err(ApiError::InvalidStateTransition(format!(
                            "next called while invocation {request_id} is outstanding"
                        )))
                    }
                    Phase::InitFailed => {
                        return Err(ApiError::InvalidStateTransition(
                            "next called after init/error".into(),
                        ))
                    }
                    Phase::Init => {
                        state.phase = Phase::Idle;
                        self.init.send_replace(InitState::Done);
                    }
                    Phase::Idle => {}
                }
                if let Some(Queued { invocation, reply }) = state.queued.take() {
                    // An invoker that already gave up has dropped its receiver.
                    if !reply.is_closed() {
                        state.phase = Phase::Busy {
                            request_id: invocation.request_id.clone(),
                            reply: Some(reply),
                        };
                        return Ok(invocation);
                    }
                }
            }
            notified.await;
        }
    }

    /// Marks a `next` as waiting until the returned guard drops (the call
    /// returned, or its connection closed and hyper dropped the call).
    fn start_polling(&self) -> Result<Polling<'_>, ApiError> {
        let mut state = self.lock();
        if state.polling {
            return Err(ApiError::InvalidStateTransition(
                "next called while another next is waiting for an event".into(),
            ));
        }
        state.polling = true;
        Ok(Polling { shared: self })
    }

    /// Claims the right to answer invocation `request_id` (for `/response` or
    /// `/error`). Exactly one call can hold the [`Answer`] for an invocation.
    pub(crate) fn claim(self: &Arc<Self>, request_id: &str) -> Result<Answer, ApiError> {
        let mut state = self.lock();
        match &mut state.phase {
            Phase::Busy {
                request_id: current,
                reply,
            } if current == request_id => match reply.take() {
                Some(reply) => Ok(Answer {
                    shared: Arc::clone(self),
                    request_id: request_id.to_string(),
                    reply: Some(reply),
                }),
                // Another call is already answering it.
                None => Err(ApiError::InvalidRequestId),
            },
            Phase::Busy { .. } | Phase::Idle => Err(ApiError::InvalidRequestId),
            Phase::Init | Phase::InitFailed => Err(ApiError::InvalidStateTransition(
                "no invocation has been handed out".into(),
            )),
        }
    }

    /// `init/error`: allowed only before the first `next`.
    pub(crate) fn fail_init(&self, failure: InitFailure) -> Result<(), ApiError> {
        let mut state = self.lock();
        match state.phase {
            Phase::Init => {
                state.phase = Phase::InitFailed;
                self.init.send_replace(InitState::Failed(failure));
                Ok(())
            }
            _ => Err(ApiError::InvalidStateTransition(
                "init/error is only allowed during init".into(),
            )),
        }
    }

    fn finish(&self, request_id: &str) {
        let mut state = self.lock();
        if matches!(&state.phase, Phase::Busy { request_id: current, .. } if current == request_id)
        {
            state.phase = Phase::Idle;
        }
    }

    /// Extension `register` stub: only during init, like Lambda.
    pub(crate) fn register_extension(&self) -> Result<String, ApiError> {
        let mut state = self.lock();
        if !matches!(state.phase, Phase::Init) {
            return Err(ApiError::InvalidStateTransition(
                "extensions can only register during init".into(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        state.extensions.insert(id.clone());
        Ok(id)
    }

    pub(crate) fn is_extension(&self, id: &str) -> bool {
        self.lock().extensions.contains(id)
    }
}

/// A waiting `next` call; see [`Shared::start_polling`].
struct Polling<'a> {
    shared: &'a Shared,
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.shared.lock().polling = false;
    }
}

/// The right to answer the outstanding invocation, held by the one
/// `/response` or `/error` call that claimed it.
///
/// Dropping it ends the invocation (the runtime may call `next` again). If no
/// outcome was delivered by then, for example because the connection broke
/// mid-body, the invoker gets `Runtime.TruncatedResponse` instead of waiting
/// for its timeout.
pub(crate) struct Answer {
    shared: Arc<Shared>,
    request_id: String,
    reply: Option<oneshot::Sender<Outcome>>,
}

impl Answer {
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Delivers the outcome and ends the invocation.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.deliver(outcome);
    }

    /// Delivers the outcome but keeps the invocation outstanding, for a
    /// streamed response whose body is still arriving.
    pub(crate) fn deliver(&mut self, outcome: Outcome) {
        if let Some(reply) = self.reply.take() {
            // A closed receiver means the invoker gave up (timeout); the
            // outcome has nobody to go to.
            let _ = reply.send(outcome);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Outcome::Error {
                error_type: "Runtime.TruncatedResponse".into(),
                body: error_json(
                    "Runtime.TruncatedResponse",
                    &format!(
                        "RequestId: {} Error: the runtime's response ended early",
                        self.request_id
                    ),
                ),
            });
        }
        self.shared.finish(&self.request_id);
    }
}
