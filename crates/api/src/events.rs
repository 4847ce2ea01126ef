//! A function's async invocations: what is pending, the dead letters, and
//! redrive (`rouse events ls|show|redrive`). The bodies are shared with the CLI.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::Json;
use rouse_store::events::EventRecord;
use rouse_store::AsyncEvents;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::AdminState;

/// Most events one listing returns.
const LIST_LIMIT: usize = 1000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    pub pending: u64,
    pub dead: u64,
    /// Dead letters first, then pending events, oldest first.
    pub events: Vec<EventSummary>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    pub id: String,
    /// `pending` or `dead`.
    pub state: String,
    /// Times the function ran it.
    pub attempts: u32,
    /// Unix milliseconds.
    pub accepted_at: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    /// Why a dead letter was given up.
    pub condition: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    pub version: Option<u32>,
    /// The payload as sent (JSON).
    pub payload: serde_json::Value,
    /// What the last attempt returned (the error JSON of a function error).
    pub response: Option<serde_json::Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RedriveRequest {
    /// One dead letter; without it, all of them.
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RedriveResponse {
    pub redriven: usize,
}

pub(crate) async fn list(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
) -> Result<Json<EventList>, ApiError> {
    let events = state.store.events_of(&name, LIST_LIMIT)?;
    let counts = state
        .store
        .event_counts()?
        .into_iter()
        .find(|(f, _)| *f == name)
        .map(|(_, c)| c)
        .unwrap_or_default();
    Ok(Json(EventList {
        pending: counts.pending,
        dead: counts.dead,
        events: events.iter().map(summary).collect(),
    }))
}

pub(crate) async fn show(
    State(state): State<Arc<AdminState>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<EventDetail>, ApiError> {
    let event = state
        .store
        .event(&name, &id)?
        .ok_or_else(|| ApiError::not_found(format!("async event {id} of {name}")))?;
    Ok(Json(EventDetail {
        summary: summary(&event),
        version: event.version,
        payload: json_or_text(&event.payload),
        response: event.response.as_deref().map(json_or_text),
    }))
}

pub(crate) async fn redrive(
    State(state): State<Arc<AdminState>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<RedriveResponse>, ApiError> {
    let req: RedriveRequest = if body.is_empty() {
        RedriveRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("redrive request: {e}")))?
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let redriven = state.store.redrive(&name, req.id.as_deref(), now)?;
    if let (Some(id), 0) = (&req.id, redriven) {
        return Err(ApiError::not_found(format!("dead letter {id} of {name}")));
    }
    if redriven > 0 {
        state.gateway.wake_async_events();
        state
            .logs
            .platform(&name, &format!("{redriven} dead letter(s) queued again"));
    }
    Ok(Json(RedriveResponse { redriven }))
}

fn summary(event: &EventRecord) -> EventSummary {
    let pending = event.state == rouse_store::events::EventState::Pending;
    EventSummary {
        id: event.id.clone(),
        state: event.state.as_str().to_string(),
        attempts: event.attempts,
        accepted_at: event.accepted_at_ms,
        next_attempt_at: pending.then_some(event.next_attempt_at_ms),
        last_error: event.last_error.clone(),
        condition: event.condition.clone(),
    }
}

fn json_or_text(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
