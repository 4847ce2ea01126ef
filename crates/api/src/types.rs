//! Request and response bodies of the admin API, shared with the CLI.

use rouse_manifest::DeploySpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct ArtifactUploaded {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeployRequest {
    pub artifact: String,
    pub spec: DeploySpec,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DeployResponse {
    pub functions: Vec<FunctionSummary>,
    /// Functions of the same service and stage that this deploy removed.
    pub removed: Vec<String>,
    /// Things the user should know, e.g. a new version that did not start.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSummary {
    pub name: String,
    pub service: String,
    pub stage: String,
    pub version: u32,
    /// `web` or `lambda`.
    pub kind: String,
    pub routes: Vec<RouteSummary>,
    pub instances: Vec<InstanceSummary>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// One page of `GET /v1/functions?limit=&after=`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FunctionPage {
    /// By name.
    pub functions: Vec<FunctionSummary>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RouteSummary {
    pub method: String,
    pub path: String,
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSummary {
    pub id: String,
    pub pid: u32,
    pub port: u16,
    pub version: u32,
    pub state: String,
    pub in_flight: u32,
    pub age_secs: f64,
    /// Requests it has been handed.
    #[serde(default)]
    pub requests: u64,
    /// Peak memory in MB, when readable.
    #[serde(default)]
    pub memory_mb: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub functions: usize,
    pub instances: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionSummary {
    pub version: u32,
    pub artifact: String,
    /// Unix seconds.
    pub created_at: i64,
    pub current: bool,
}

/// An alias as `rouse alias ls` shows it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasSummary {
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub canary: Option<CanarySummary>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// The second version of a weighted alias and its share of requests (0–1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CanarySummary {
    pub version: u32,
    pub weight: f64,
}

/// `PUT /v1/functions/{name}/aliases/{alias}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SetAliasRequest {
    pub version: u32,
    #[serde(default)]
    pub canary: Option<CanarySummary>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EnvResponse {
    pub version: u32,
    pub environment: std::collections::BTreeMap<String, String>,
}

/// `POST /v1/keys`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CreateKeyRequest {
    #[serde(default)]
    pub description: Option<String>,
}

/// The answer to `POST /v1/keys`: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatedKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub description: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// One entry of `GET /v1/keys`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeySummary {
    pub access_key_id: String,
    pub description: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, to the minute; `None` if never used.
    pub last_used_at: Option<i64>,
}

/// `POST /v1/streams`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateStreamRequest {
    pub name: String,
    #[serde(default = "one")]
    pub shards: u32,
}

fn one() -> u32 {
    1
}

/// One entry of `GET /v1/streams`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamSummary {
    pub name: String,
    pub retention_hours: u32,
    pub shards: Vec<ShardSummary>,
    pub mappings: Vec<MappingSummary>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSummary {
    pub shard_id: String,
    /// Records kept (within retention).
    pub records: u64,
    pub last_sequence_number: u64,
}

/// A function consuming the stream, with where it stands per shard.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingSummary {
    pub function: String,
    pub enabled: bool,
    pub shards: Vec<MappingShard>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingShard {
    pub shard_id: String,
    /// The last record processed (`None`: not started).
    pub checkpoint: Option<u64>,
    /// Records not yet processed.
    pub behind: u64,
    /// Age of the oldest unprocessed record, in ms (0: caught up).
    pub iterator_age_ms: i64,
    /// The id (`DATA/node-id`) of the node whose poller holds the shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One node of the cluster (`GET /v1/nodes`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    pub name: String,
    pub id: String,
    /// `alive`, `draining` (alive, placement skips it) or `dead` (no
    /// heartbeat for the TTL).
    pub state: String,
    pub gateway: String,
    pub admin: String,
    /// Where other nodes forward requests to (signed).
    #[serde(default)]
    pub internal: String,
    pub version: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Milliseconds since the last heartbeat.
    pub heartbeat_age_ms: u64,
    /// The node that answered.
    #[serde(default)]
    pub this: bool,
}

/// `GET`/`PUT /v1/functions/{name}/placement`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementBody {
    /// Pinned node names; `null` or empty: automatic.
    #[serde(default)]
    pub nodes: Option<Vec<String>>,
}

/// A function's placement and the nodes serving it now.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementSummary {
    pub function: String,
    /// Pinned node names; empty: automatic.
    pub pinned: Vec<String>,
    /// The nodes its requests go to now, best first (its `minInstances`
    /// are kept on the first).
    pub homes: Vec<String>,
}

/// `POST /v1/nodes/{name}/drain`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrainBody {
    /// `false` puts a drained node back in service.
    #[serde(default = "yes")]
    pub draining: bool,
}

fn yes() -> bool {
    true
}
