//! The CMDB (functions, versions, routes, settings in SQLite) and
//! content-addressed artifacts.
//!
//! Everything rouse must remember across restarts lives under one data
//! directory: `rouse.db` (SQLite) and `artifacts/` (tar.gz files named by their
//! sha256), with extracted code cached under `code/`.

#![forbid(unsafe_code)]

mod access_keys;
pub mod archive;
mod artifacts;
mod db;
pub mod events;
pub mod streams;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use artifacts::is_sha256_hex;
pub use events::AsyncEvents;
pub use streams::Streams;

use rouse_manifest::{DeploySpec, FunctionSpec, StageRouting};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// The store. `Send + Sync`: share it behind an `Arc`. Every call is a short
/// SQLite transaction or a file operation; callers on the request path are
/// expected to cache what they read (the gateway caches routes).
pub struct Store {
    data_dir: PathBuf,
    conn: Mutex<rusqlite::Connection>,
    artifacts: artifacts::Artifacts,
    sealer: access_keys::Sealer,
}

impl Store {
    /// Opens (creating if needed) `data_dir/rouse.db` and the artifact folders,
    /// and migrates the schema.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let artifacts = artifacts::Artifacts::open(data_dir)?;
        let conn = db::open(&data_dir.join("rouse.db"))?;
        Ok(Store {
            data_dir: data_dir.to_path_buf(),
            conn: Mutex::new(conn),
            artifacts,
            sealer: access_keys::Sealer::new(data_dir),
        })
    }

    fn conn(&self) -> MutexGuard<'_, rusqlite::Connection> {
        // A panic while the lock was held cannot leave the database half
        // written (an open transaction rolls back when dropped), so a
        // poisoned lock is still safe to use.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// In one transaction: a new version for every function of the spec
    /// (previous + 1), each function's current version moved to it, the routes
    /// of the service+stage replaced by the spec's `http`/`httpApi` events, and
    /// functions of the same service+stage that the spec no longer has removed.
    /// A route (same method — or either is `ANY` — and same path template)
    /// owned by a function of another service/stage is a `RouteConflict` and
    /// nothing changes.
    ///
    /// Also refused, with nothing changed: an artifact that is not in the
    /// store (`UnknownArtifact`), two routes of the spec itself that clash
    /// (`RouteConflict`), a function name owned by another service/stage
    /// (`FunctionConflict`), duplicate or empty function names (`InvalidSpec`).
    /// Path templates differing only in parameter names (`/u/{id}`,
    /// `/u/{uid}`) are the same template.
    pub fn deploy(
        &self,
        spec: &DeploySpec,
        artifact_sha256: &str,
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        if !self.has_artifact(artifact_sha256) {
            return Err(StoreError::UnknownArtifact(artifact_sha256.to_string()));
        }
        db::deploy(&mut self.conn(), spec, artifact_sha256)
    }

    /// All functions, by name.
    pub fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        db::list_functions(&self.conn())
    }

    /// How many functions are deployed, without reading them.
    pub fn count_functions(&self) -> Result<usize, StoreError> {
        db::count_functions(&self.conn())
    }

    /// Up to `limit` functions whose names sort after `after`, by name.
    pub fn list_functions_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        db::list_functions_page(&self.conn(), after, limit)
    }

    /// The routes of `function`, ordered by path and method.
    pub fn routes_of(&self, function: &str) -> Result<Vec<RouteRecord>, StoreError> {
        db::routes_of(&self.conn(), function)
    }

    pub fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        db::get_function(&self.conn(), name)
    }

    /// A small number unique among existing functions and stable across
    /// redeploys (the instance uid is derived from it).
    pub fn function_number(&self, name: &str) -> Result<Option<i64>, StoreError> {
        db::function_number(&self.conn(), name)
    }

    /// Removes the function, its versions and its routes. `false` if it did not exist.
    pub fn remove_function(&self, name: &str) -> Result<bool, StoreError> {
        db::remove_function(&mut self.conn(), name)
    }

    /// Every version of `name`, oldest first (empty if it does not exist).
    pub fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, StoreError> {
        db::versions(&self.conn(), name)
    }

    /// A new version of an existing function with the same code and `spec`
    /// (e.g. a changed environment); its routes follow `spec`.
    pub fn update_spec(&self, spec: &FunctionSpec) -> Result<FunctionRecord, StoreError> {
        let current = self
            .get_function(&spec.name)?
            .ok_or_else(|| StoreError::UnknownFunction(spec.name.clone()))?;
        db::deploy::replace_version(&mut self.conn(), spec, &current.artifact)
    }

    /// Makes a new version that repeats version `to` (default: the one
    /// before the current), so history only grows and the rollback itself
    /// can be rolled back.
    pub fn rollback(&self, name: &str, to: Option<u32>) -> Result<FunctionRecord, StoreError> {
        let current = self
            .get_function(name)?
            .ok_or_else(|| StoreError::UnknownFunction(name.to_string()))?;
        let versions = self.versions(name)?;
        let target = match to {
            Some(v) => versions.iter().find(|r| r.version == v),
            None => versions.iter().rev().find(|r| r.version < current.version),
        };
        let target = target.ok_or_else(|| StoreError::UnknownVersion {
            function: name.to_string(),
            version: to.unwrap_or(current.version.saturating_sub(1)),
        })?;
        db::deploy::replace_version(&mut self.conn(), &target.spec, &target.artifact)
    }

    /// All routes, ordered by path, method, function.
    pub fn routes(&self) -> Result<Vec<RouteRecord>, StoreError> {
        db::routes(&self.conn())
    }

    /// One version of a function.
    pub fn version(&self, name: &str, version: u32) -> Result<Option<VersionRecord>, StoreError> {
        Ok(self
            .versions(name)?
            .into_iter()
            .find(|v| v.version == version))
    }

    /// Creates or changes alias `alias` of `function`: it points at
    /// `version`, and with `canary` sends that share of requests to a second
    /// version. Both versions must exist.
    pub fn set_alias(
        &self,
        function: &str,
        alias: &str,
        version: u32,
        canary: Option<Canary>,
    ) -> Result<AliasRecord, StoreError> {
        db::aliases::set(&mut self.conn(), function, alias, version, canary)
    }

    /// The aliases of `function`, by name.
    pub fn aliases(&self, function: &str) -> Result<Vec<AliasRecord>, StoreError> {
        db::aliases::list(&self.conn(), Some(function))
    }

    /// Every alias of every function.
    pub fn all_aliases(&self) -> Result<Vec<AliasRecord>, StoreError> {
        db::aliases::list(&self.conn(), None)
    }

    /// `false` if there was no such alias.
    pub fn remove_alias(&self, function: &str, alias: &str) -> Result<bool, StoreError> {
        db::aliases::remove(&self.conn(), function, alias)
    }

    pub fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        db::get_setting(&self.conn(), key)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        db::set_setting(&self.conn(), key, value)
    }

    /// Streams an uploaded tar.gz into the store: hashes it while writing to a
    /// temp file, checks every entry with [`archive::check`], and moves it to
    /// `artifacts/<sha256>.tar.gz`. Returns the sha256 hex. Storing the same
    /// bytes twice is a no-op.
    pub fn put_artifact(&self, reader: impl std::io::Read) -> Result<String, StoreError> {
        self.artifacts.put(reader)
    }

    /// `false` for anything that is not a lowercase sha256 hex digest.
    pub fn has_artifact(&self, sha256: &str) -> bool {
        self.artifacts.has(sha256)
    }

    /// The extracted code of an artifact, extracting it once (to a temp dir,
    /// renamed into place, so concurrent callers never see half a tree).
    pub fn code_dir(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        self.artifacts.code_dir(sha256)
    }

    /// A new access key pair; `now` is Unix seconds.
    pub fn create_access_key(
        &self,
        description: &str,
        now: i64,
    ) -> Result<NewAccessKey, StoreError> {
        let id = access_keys::new_key_id()?;
        let secret = access_keys::new_secret()?;
        let sealed = self.sealer.seal(&id, &secret)?;
        db::access_keys::insert(&self.conn(), &id, &sealed, description, now)?;
        Ok(NewAccessKey {
            record: AccessKeyRecord {
                id,
                description: description.to_string(),
                created_at: now,
                last_used_at: None,
            },
            secret,
        })
    }

    /// Every access key, oldest first; never their secrets.
    pub fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, StoreError> {
        db::access_keys::list(&self.conn())
    }

    /// The secret of key `id`, opened; `None` for an unknown id.
    pub fn access_key_secret(&self, id: &str) -> Result<Option<AccessKeySecret>, StoreError> {
        if !access_keys::looks_like_key_id(id) {
            return Ok(None);
        }
        let Some((sealed, last_used_at)) = db::access_keys::sealed(&self.conn(), id)? else {
            return Ok(None);
        };
        Ok(Some(AccessKeySecret {
            secret: self.sealer.open(id, &sealed)?,
            last_used_at,
        }))
    }

    /// Records a use of key `id` at `now`. A write per request would cost
    /// more than the check itself, so callers only touch a key whose
    /// `last_used_at` is a minute old or more.
    pub fn touch_access_key(&self, id: &str, now: i64) -> Result<(), StoreError> {
        db::access_keys::touch(&self.conn(), id, now)
    }

    /// `false` if there was no such key.
    pub fn remove_access_key(&self, id: &str) -> Result<bool, StoreError> {
        db::access_keys::remove(&self.conn(), id)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

/// The SQLite engine of the async event queue.
impl AsyncEvents for Store {
    fn enqueue(&self, event: &events::NewEvent) -> Result<(), StoreError> {
        db::events::enqueue(&self.conn(), event)
    }

    fn claim_due(
        &self,
        node: &str,
        now_ms: i64,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<events::EventRecord>, StoreError> {
        db::events::claim_due(&self.conn(), node, now_ms, lease, limit)
    }

    fn next_due(&self) -> Result<Option<i64>, StoreError> {
        db::events::next_due(&self.conn())
    }

    fn complete(&self, id: &str, node: &str) -> Result<bool, StoreError> {
        db::events::complete(&self.conn(), id, node)
    }

    fn retry_at(&self, id: &str, node: &str, retry: &events::Retry) -> Result<bool, StoreError> {
        db::events::retry_at(&self.conn(), id, node, retry)
    }

    fn dead_letter(
        &self,
        id: &str,
        node: &str,
        dead: &events::DeadLetter,
    ) -> Result<bool, StoreError> {
        db::events::dead_letter(&self.conn(), id, node, dead)
    }

    fn release_claims(&self, node: &str) -> Result<usize, StoreError> {
        db::events::release_claims(&self.conn(), node)
    }

    fn events_of(
        &self,
        function: &str,
        limit: usize,
    ) -> Result<Vec<events::EventRecord>, StoreError> {
        db::events::events_of(&self.conn(), function, limit)
    }

    fn event(&self, function: &str, id: &str) -> Result<Option<events::EventRecord>, StoreError> {
        db::events::event(&self.conn(), function, id)
    }

    fn redrive(&self, function: &str, id: Option<&str>, now_ms: i64) -> Result<usize, StoreError> {
        db::events::redrive(&self.conn(), function, id, now_ms)
    }

    fn event_counts(&self) -> Result<Vec<(String, events::EventCounts)>, StoreError> {
        db::events::event_counts(&self.conn())
    }
}

/// The SQLite engine of streams.
impl Streams for Store {
    fn create_stream(
        &self,
        name: &str,
        shards: u32,
        retention_hours: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        db::streams::create_stream(&mut self.conn(), name, shards, retention_hours, now_ms)
    }

    fn stream(&self, name: &str) -> Result<Option<streams::StreamInfo>, StoreError> {
        db::streams::stream(&self.conn(), name)
    }

    fn list_streams(&self) -> Result<Vec<streams::StreamInfo>, StoreError> {
        db::streams::list_streams(&self.conn())
    }

    fn append(
        &self,
        stream: &str,
        records: &[streams::NewRecord],
        now_ms: i64,
    ) -> Result<Vec<u64>, StoreError> {
        db::streams::append(&mut self.conn(), stream, records, now_ms)
    }

    fn read(
        &self,
        stream: &str,
        shard: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<streams::StreamRecord>, StoreError> {
        db::streams::read(&self.conn(), stream, shard, after, limit)
    }

    fn seq_before_time(&self, stream: &str, shard: u32, at_ms: i64) -> Result<u64, StoreError> {
        db::streams::seq_before_time(&self.conn(), stream, shard, at_ms)
    }

    fn shard_stats(&self, stream: &str) -> Result<Vec<streams::ShardStats>, StoreError> {
        db::streams::shard_stats(&self.conn(), stream)
    }

    fn checkpoint(&self, mapping: &str, shard: u32) -> Result<Option<u64>, StoreError> {
        db::streams::checkpoint(&self.conn(), mapping, shard)
    }

    fn set_checkpoint(
        &self,
        mapping: &str,
        stream: &str,
        shard: u32,
        seq: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        db::streams::set_checkpoint(&self.conn(), mapping, stream, shard, seq, now_ms)
    }

    fn checkpoints_of(&self, stream: &str) -> Result<Vec<streams::Checkpoint>, StoreError> {
        db::streams::checkpoints_of(&self.conn(), stream)
    }
}
