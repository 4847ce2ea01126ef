//! Streams (`rouse streams create|ls`): create one, and list every stream
//! with its shards and the mappings consuming it, each with its checkpoint
//! and iterator age per shard.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rouse_manifest::{Event, StreamEvent};
use rouse_store::streams::DEFAULT_RETENTION_HOURS;

use crate::error::ApiError;
use crate::types::{
    CreateStreamRequest, MappingShard, MappingSummary, ShardSummary, StreamSummary,
};
use crate::AdminState;

const MAX_SHARDS: u32 = 64;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) async fn create(
    State(state): State<Arc<AdminState>>,
    Json(req): Json<CreateStreamRequest>,
) -> Result<StatusCode, ApiError> {
    if !rouse_store::streams::valid_stream_name(&req.name) {
        return Err(ApiError::bad_request(format!(
            "invalid stream name {:?}: 1 to 128 letters, digits, `_`, `-` or `.`",
            req.name
        )));
    }
    if !(1..=MAX_SHARDS).contains(&req.shards) {
        return Err(ApiError::bad_request(format!(
            "a stream has 1 to {MAX_SHARDS} shards"
        )));
    }
    if !state
        .store
        .create_stream(&req.name, req.shards, DEFAULT_RETENTION_HOURS, now_ms())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "StreamExists",
            format!("stream {} already exists", req.name),
        ));
    }
    // Mappings deployed before their stream existed start now.
    state.gateway.reload_routes().await?;
    Ok(StatusCode::CREATED)
}

pub(crate) async fn list(
    State(state): State<Arc<AdminState>>,
) -> Result<Json<Vec<StreamSummary>>, ApiError> {
    let store = &state.store;
    let functions = store.list_functions().await?;
    let mappings: Vec<(String, StreamEvent)> = functions
        .iter()
        .flat_map(|f| {
            f.spec.events.iter().filter_map(|e| match e {
                Event::Stream(s) => Some((f.name.clone(), s.clone())),
                _ => None,
            })
        })
        .collect();
    let now = now_ms();
    let mut out = Vec::new();
    for info in store.list_streams().await? {
        let stats = store.shard_stats(&info.name).await?;
        let checkpoints = store.checkpoints_of(&info.name).await?;
        let mut consumers = Vec::new();
        for (function, mapping) in mappings.iter().filter(|(_, m)| m.stream == info.name) {
            let id = rouse_gateway::stream_mapping_id(function, &info.name);
            let mut shards = Vec::new();
            for s in &stats {
                let found = checkpoints
                    .iter()
                    .find(|c| c.mapping == id && c.shard == s.shard);
                let checkpoint = found.map(|c| c.seq);
                let after = checkpoint.unwrap_or(0);
                let iterator_age_ms = match found {
                    Some(c) => c.iterator_age_ms(now),
                    None => store
                        .read(&info.name, s.shard, after, 1)
                        .await?
                        .first()
                        .map_or(0, |r| now - r.arrived_at_ms),
                };
                shards.push(MappingShard {
                    shard_id: rouse_gateway::shard_id(s.shard),
                    checkpoint,
                    behind: s.last_seq.saturating_sub(after).min(s.records),
                    iterator_age_ms,
                    node: found.and_then(|c| c.holder.clone()),
                });
            }
            consumers.push(MappingSummary {
                function: function.clone(),
                enabled: mapping.enabled,
                shards,
            });
        }
        out.push(StreamSummary {
            retention_hours: info.retention_hours,
            shards: stats
                .iter()
                .map(|s| ShardSummary {
                    shard_id: rouse_gateway::shard_id(s.shard),
                    records: s.records,
                    last_sequence_number: s.last_seq,
                })
                .collect(),
            mappings: consumers,
            name: info.name,
        });
    }
    Ok(Json(out))
}

/// Creates the streams a deploy's mappings name that do not exist yet (one
/// shard each); a note for each, for the deploy's answer.
pub(crate) async fn create_missing(
    state: &AdminState,
    spec: &rouse_manifest::DeploySpec,
) -> Result<Vec<String>, ApiError> {
    let mut notes = Vec::new();
    for f in &spec.functions {
        for event in &f.events {
            let Event::Stream(mapping) = event else {
                continue;
            };
            let created = state
                .store
                .create_stream(&mapping.stream, 1, DEFAULT_RETENTION_HOURS, now_ms())
                .await?;
            if created {
                notes.push(format!(
                    "stream {} did not exist: created with 1 shard for {} (`rouse streams create NAME --shards N` first for more)",
                    mapping.stream, f.short_name
                ));
            }
        }
    }
    Ok(notes)
}
