//! The CMDB (functions, versions, routes, settings in SQLite) and
//! content-addressed artifacts.
//!
//! Everything rouse must remember across restarts lives under one data
//! directory: `rouse.db` (SQLite) and `artifacts/` (tar.gz files named by their
//! sha256), with extracted code cached under `code/`.

pub mod archive;

use std::path::{Path, PathBuf};

use rouse_manifest::{DeploySpec, FunctionSpec};
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
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
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
    pub path: String,
    pub shape: RouteShape,
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

pub struct Store {
    _private: (),
}

impl Store {
    /// Opens (creating if needed) `data_dir/rouse.db` and the artifact folders,
    /// and migrates the schema.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let _ = data_dir;
        todo!()
    }

    /// In one transaction: a new version for every function of the spec
    /// (previous + 1), each function's current version moved to it, the routes
    /// of the service+stage replaced by the spec's `http`/`httpApi` events, and
    /// functions of the same service+stage that the spec no longer has removed.
    /// A route (same method — or either is `ANY` — and same path template)
    /// owned by a function of another service/stage is a `RouteConflict` and
    /// nothing changes.
    pub fn deploy(
        &self,
        spec: &DeploySpec,
        artifact_sha256: &str,
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        let _ = (spec, artifact_sha256);
        todo!()
    }

    pub fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        todo!()
    }

    pub fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        let _ = name;
        todo!()
    }

    /// Removes the function, its versions and its routes. `false` if it did not exist.
    pub fn remove_function(&self, name: &str) -> Result<bool, StoreError> {
        let _ = name;
        todo!()
    }

    pub fn routes(&self) -> Result<Vec<RouteRecord>, StoreError> {
        todo!()
    }

    pub fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let _ = key;
        todo!()
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let _ = (key, value);
        todo!()
    }

    /// Streams an uploaded tar.gz into the store: hashes it while writing to a
    /// temp file, checks every entry with [`archive::check`], and moves it to
    /// `artifacts/<sha256>.tar.gz`. Returns the sha256 hex. Storing the same
    /// bytes twice is a no-op.
    pub fn put_artifact(&self, reader: impl std::io::Read) -> Result<String, StoreError> {
        let _ = reader;
        todo!()
    }

    pub fn has_artifact(&self, sha256: &str) -> bool {
        let _ = sha256;
        todo!()
    }

    /// The extracted code of an artifact, extracting it once (to a temp dir,
    /// renamed into place, so concurrent callers never see half a tree).
    pub fn code_dir(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        let _ = sha256;
        todo!()
    }

    pub fn data_dir(&self) -> &Path {
        todo!()
    }
}
