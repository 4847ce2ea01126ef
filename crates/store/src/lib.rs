//! The CMDB (functions, versions, routes, aliases, settings) and
//! content-addressed artifacts, on one of two engines.
//!
//! SQLite (the default): everything rouse must remember across restarts lives
//! under one data directory, `rouse.db` and `artifacts/` (tar.gz files named
//! by their sha256). PostgreSQL (`--store postgres://…`, cluster mode): the
//! CMDB, the artifacts and what nodes share (node rows, the change
//! generation, schedule ticks) live in the database, and the data directory
//! keeps this node's copies. Either way extracted code is cached under `code/`.

#![forbid(unsafe_code)]

mod access_keys;
pub mod archive;
mod artifacts;
mod bucket;
mod cluster;
mod db;
pub mod events;
pub mod gc;
pub mod leases;
mod nodes;
mod pg;
pub mod placement;
mod placements;
mod queue;
mod queue_engine;
pub mod queues;
mod rules;
mod store;
mod stream_engine;
pub mod streams;

pub use artifacts::is_sha256_hex;
pub use cluster::{node_state, NodeInfo, NodeRecord, NodeState, HEARTBEAT, NODE_TTL};
pub use events::AsyncEvents;
pub use queues::Queues;
pub use store::Store;

use rouse_manifest::{FunctionSpec, StageRouting};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection to the database could be had.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The `--store` URL cannot be used.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("route {method} {path} already belongs to function {owner}")]
    RouteConflict {
        method: String,
        path: String,
        owner: String,
    },
    #[error("artifact {0} is not in the store")]
    UnknownArtifact(String),
    #[error("function {0} not found")]
    UnknownFunction(String),
    #[error("function {function} has no version {version}")]
    UnknownVersion { function: String, version: u32 },
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error("stream {0} not found")]
    UnknownStream(String),
    #[error("queue {0} not found")]
    UnknownQueue(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The deploy names a function that belongs to another service or stage.
    #[error("function {name} already belongs to service {service} stage {stage}")]
    FunctionConflict {
        name: String,
        service: String,
        stage: String,
    },
    /// Like `RouteConflict`, between two stages of one service that serve
    /// their routes as declared: the message says which setting fixes it.
    #[error(
        "route {method} {path} already belongs to function {owner} (stage {stage} of this service); \
         two stages of one service can only share routes with `stageRouting: prefix` (served under /STAGE/...) \
         or `host` (on STAGE.DOMAIN): set it at the top level of rouse.yaml, or as `custom.rouse.stageRouting` in serverless.yml"
    )]
    StageRouteConflict {
        method: String,
        path: String,
        owner: String,
        stage: String,
    },
    /// An alias name or weight that cannot be used.
    #[error("{0}")]
    InvalidAlias(String),
    /// The deploy spec contradicts itself (e.g. two functions with one name).
    #[error("invalid deploy: {0}")]
    InvalidSpec(String),
}

/// Which event shape a route speaks (matters for lambda functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteShape {
    /// `http` event: API Gateway REST, payload v1.
    Http,
    /// `httpApi` event: HTTP API, payload v2.
    HttpApi,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRecord {
    pub function: String,
    /// Upper-case method or `ANY`.
    pub method: String,
    /// The template as declared, without any stage prefix.
    pub path: String,
    pub shape: RouteShape,
    /// Where the route is served: as declared, under `/{stage}`, or on
    /// the host `{stage}.{domain}`.
    pub stage_routing: StageRouting,
}

/// A name for a version of a function (`live`, `canary`), optionally
/// sending a share of its requests to a second version.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasRecord {
    pub function: String,
    pub name: String,
    pub version: u32,
    pub canary: Option<Canary>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// The second version of a weighted alias and the share of requests it gets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Canary {
    pub version: u32,
    /// Between 0 and 1.
    pub weight: f64,
}

/// One immutable version of a function.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRecord {
    pub version: u32,
    pub artifact: String,
    pub spec: FunctionSpec,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionRecord {
    pub name: String,
    pub service: String,
    pub stage: String,
    /// Current version, counting from 1.
    pub version: u32,
    /// sha256 hex of the artifact of the current version.
    pub artifact: String,
    pub spec: FunctionSpec,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// An access key for the AWS-compatible APIs, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyRecord {
    pub id: String,
    pub description: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, to the minute (see [`Store::touch_access_key`]).
    pub last_used_at: Option<i64>,
}

/// A key pair as created: the only time its secret is handed out.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccessKey {
    pub record: AccessKeyRecord,
    pub secret: String,
}

/// What a signature check needs of a key.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKeySecret {
    pub secret: String,
    pub last_used_at: Option<i64>,
}
