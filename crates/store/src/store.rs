//! [`Store`]: one async interface over the two engines. The rules (what a
//! deploy may change, alias names) are shared in `rules`; each engine only
//! reads and writes rows.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rouse_manifest::{DeploySpec, FunctionSpec};

use crate::{
    access_keys, artifacts, bucket, db, pg, AccessKeyRecord, AccessKeySecret, AliasRecord, Canary,
    FunctionRecord, NewAccessKey, RouteRecord, StoreError, VersionRecord,
};

/// The store. `Send + Sync`: share it behind an `Arc`. Callers on the
/// request path are expected to cache what they read (the gateway caches
/// routes).
///
/// On SQLite each call is a short transaction run in place, as brief as
/// the lock it takes (the engine rouse always had); on PostgreSQL calls
/// await a pooled connection and never block a tokio worker.
pub struct Store {
    data_dir: PathBuf,
    engine: Engine,
    artifacts: Arc<artifacts::Artifacts>,
    /// Where nodes share artifacts when not in the database (`--artifacts`).
    bucket: Option<bucket::Bucket>,
    sealer: access_keys::Sealer,
}

/// The setting that holds a cluster's access-key sealing key.
const SEALING_KEY: &str = "access_keys.sealing_key";

pub(crate) enum Engine {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(pg::Postgres),
}

impl Store {
    /// Opens (creating if needed) `data_dir/rouse.db` and the artifact
    /// folders, and migrates the schema: the SQLite engine.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let artifacts = artifacts::Artifacts::open(data_dir)?;
        let conn = db::open(&data_dir.join("rouse.db"))?;
        Ok(Store {
            data_dir: data_dir.to_path_buf(),
            engine: Engine::Sqlite(Mutex::new(conn)),
            artifacts: Arc::new(artifacts),
            bucket: None,
            sealer: access_keys::Sealer::new(data_dir),
        })
    }

    /// The PostgreSQL engine at `url` (migrated at open); `data_dir` keeps
    /// this node's copies of artifacts and their code.
    pub async fn open_postgres(data_dir: &Path, url: &str) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let artifacts = artifacts::Artifacts::open(data_dir)?;
        let pg = pg::Postgres::open(url).await?;
        // Every node must open every node's sealed secrets: the first node
        // to start picks the cluster's key.
        let key = pg
            .setting_or_insert(SEALING_KEY, &access_keys::new_key_hex()?)
            .await?;
        let key: [u8; 32] = hex::decode(key.trim())
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("setting {SEALING_KEY} is not 32 bytes of hex"))
            })?;
        Ok(Store {
            data_dir: data_dir.to_path_buf(),
            engine: Engine::Postgres(pg),
            artifacts: Arc::new(artifacts),
            bucket: None,
            sealer: access_keys::Sealer::with_key(data_dir, &key),
        })
    }

    /// `--store`: `None` or `sqlite` for the data dir's SQLite file, a
    /// `postgres://` or `postgresql://` URL for PostgreSQL.
    pub async fn open_url(data_dir: &Path, store: Option<&str>) -> Result<Store, StoreError> {
        match store.map(str::trim) {
            None | Some("") | Some("sqlite") => Store::open(data_dir),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Store::open_postgres(data_dir, url).await
            }
            Some(other) => Err(StoreError::Config(format!(
                "--store {}: expected `sqlite` or a postgres://USER@HOST:PORT/DB URL",
                pg::redact(other)
            ))),
        }
    }

    /// True on PostgreSQL, where several nodes share the store.
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn sqlite(
        conn: &Mutex<rusqlite::Connection>,
    ) -> MutexGuard<'_, rusqlite::Connection> {
        // A panic while the lock was held cannot leave the database half
        // written (an open transaction rolls back when dropped), so a
        // poisoned lock is still safe to use.
        conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
    pub async fn deploy(
        &self,
        spec: &DeploySpec,
        artifact_sha256: &str,
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        if !self.has_artifact(artifact_sha256).await? {
            return Err(StoreError::UnknownArtifact(artifact_sha256.to_string()));
        }
        match &self.engine {
            Engine::Sqlite(c) => db::deploy(&mut Self::sqlite(c), spec, artifact_sha256),
            Engine::Postgres(pg) => pg.deploy(spec, artifact_sha256).await,
        }
    }

    /// All functions, by name.
    pub async fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::list_functions(&Self::sqlite(c)),
            Engine::Postgres(pg) => pg.list_functions().await,
        }
    }

    /// How many functions are deployed, without reading them.
    pub async fn count_functions(&self) -> Result<usize, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::count_functions(&Self::sqlite(c)),
            Engine::Postgres(pg) => pg.count_functions().await,
        }
    }

    /// Up to `limit` functions whose names sort after `after`, by name.
    pub async fn list_functions_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::list_functions_page(&Self::sqlite(c), after, limit),
            Engine::Postgres(pg) => pg.list_functions_page(after, limit).await,
        }
    }

    /// The routes of `function`, ordered by path and method.
    pub async fn routes_of(&self, function: &str) -> Result<Vec<RouteRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::routes_of(&Self::sqlite(c), function),
            Engine::Postgres(pg) => pg.routes_of(function).await,
        }
    }

    pub async fn get_function(&self, name: &str) -> Result<Option<FunctionRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::get_function(&Self::sqlite(c), name),
            Engine::Postgres(pg) => pg.get_function(name).await,
        }
    }

    /// A small number unique among existing functions and stable across
    /// redeploys (the instance uid is derived from it).
    /// How big an artifact may be unpacked (the default: Lambda's). Set
    /// at start, before the store is shared.
    pub fn set_archive_limits(&mut self, limits: crate::archive::Limits) {
        if let Some(artifacts) = Arc::get_mut(&mut self.artifacts) {
            artifacts.limits = limits;
        }
    }

    /// Keeps artifacts in the S3-compatible bucket at `url`
    /// (`s3://BUCKET/PREFIX`) instead of the database; set at start, before
    /// the store is shared. Every node of a cluster must name the same one.
    pub fn use_artifact_bucket(&mut self, url: &str) -> Result<(), StoreError> {
        self.bucket = Some(bucket::Bucket::open(url)?);
        Ok(())
    }

    /// Deletes this node's artifacts and extracted code that no version
    /// references (an upload younger than [`crate::gc::UPLOAD_GRACE`] is
    /// kept for its deploy).
    pub async fn collect_garbage(
        &self,
        now: std::time::SystemTime,
    ) -> Result<crate::gc::Collected, StoreError> {
        let referenced = match &self.engine {
            Engine::Sqlite(c) => db::referenced_artifacts(&Self::sqlite(c))?,
            Engine::Postgres(pg) => pg.referenced_artifacts().await?,
        };
        // Deleting a large tree is many syscalls: off the async workers.
        let artifacts = self.artifacts.clone();
        tokio::task::spawn_blocking(move || artifacts.collect(&referenced, now))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    pub async fn function_number(&self, name: &str) -> Result<Option<i64>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::function_number(&Self::sqlite(c), name),
            Engine::Postgres(pg) => pg.function_number(name).await,
        }
    }

    /// Removes the function, its versions and its routes. `false` if it did not exist.
    pub async fn remove_function(&self, name: &str) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::remove_function(&mut Self::sqlite(c), name),
            Engine::Postgres(pg) => pg.remove_function(name).await,
        }
    }

    /// Every version of `name`, oldest first (empty if it does not exist).
    pub async fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::versions(&Self::sqlite(c), name),
            Engine::Postgres(pg) => pg.versions(name).await,
        }
    }

    async fn replace_version(
        &self,
        spec: &FunctionSpec,
        artifact: &str,
    ) -> Result<FunctionRecord, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::deploy::replace_version(&mut Self::sqlite(c), spec, artifact),
            Engine::Postgres(pg) => pg.replace_version(spec, artifact).await,
        }
    }

    /// A new version of an existing function with the same code and `spec`
    /// (e.g. a changed environment); its routes follow `spec`.
    pub async fn update_spec(&self, spec: &FunctionSpec) -> Result<FunctionRecord, StoreError> {
        let current = self
            .get_function(&spec.name)
            .await?
            .ok_or_else(|| StoreError::UnknownFunction(spec.name.clone()))?;
        self.replace_version(spec, &current.artifact).await
    }

    /// Makes a new version that repeats version `to` (default: the one
    /// before the current), so history only grows and the rollback itself
    /// can be rolled back.
    pub async fn rollback(
        &self,
        name: &str,
        to: Option<u32>,
    ) -> Result<FunctionRecord, StoreError> {
        let current = self
            .get_function(name)
            .await?
            .ok_or_else(|| StoreError::UnknownFunction(name.to_string()))?;
        let versions = self.versions(name).await?;
        let target = match to {
            Some(v) => versions.iter().find(|r| r.version == v),
            None => versions.iter().rev().find(|r| r.version < current.version),
        };
        let target = target.ok_or_else(|| StoreError::UnknownVersion {
            function: name.to_string(),
            version: to.unwrap_or(current.version.saturating_sub(1)),
        })?;
        self.replace_version(&target.spec, &target.artifact).await
    }

    /// All routes, ordered by path, method, function.
    pub async fn routes(&self) -> Result<Vec<RouteRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::routes(&Self::sqlite(c)),
            Engine::Postgres(pg) => pg.routes().await,
        }
    }

    /// One version of a function.
    pub async fn version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<VersionRecord>, StoreError> {
        Ok(self
            .versions(name)
            .await?
            .into_iter()
            .find(|v| v.version == version))
    }

    /// Creates or changes alias `alias` of `function`: it points at
    /// `version`, and with `canary` sends that share of requests to a second
    /// version. Both versions must exist.
    pub async fn set_alias(
        &self,
        function: &str,
        alias: &str,
        version: u32,
        canary: Option<Canary>,
    ) -> Result<AliasRecord, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => {
                db::aliases::set(&mut Self::sqlite(c), function, alias, version, canary)
            }
            Engine::Postgres(pg) => pg.set_alias(function, alias, version, canary).await,
        }
    }

    /// The aliases of `function`, by name.
    pub async fn aliases(&self, function: &str) -> Result<Vec<AliasRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::aliases::list(&Self::sqlite(c), Some(function)),
            Engine::Postgres(pg) => pg.aliases(Some(function)).await,
        }
    }

    /// Every alias of every function.
    pub async fn all_aliases(&self) -> Result<Vec<AliasRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::aliases::list(&Self::sqlite(c), None),
            Engine::Postgres(pg) => pg.aliases(None).await,
        }
    }

    /// `false` if there was no such alias.
    pub async fn remove_alias(&self, function: &str, alias: &str) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::aliases::remove(&Self::sqlite(c), function, alias),
            Engine::Postgres(pg) => pg.remove_alias(function, alias).await,
        }
    }

    pub async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::get_setting(&Self::sqlite(c), key),
            Engine::Postgres(pg) => pg.get_setting(key).await,
        }
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::set_setting(&Self::sqlite(c), key, value),
            Engine::Postgres(pg) => pg.set_setting(key, value).await,
        }
    }

    /// Writes `value` under `key` unless the key has a value already;
    /// returns the value stored (the first writer's, when nodes race).
    pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => {
                let conn = Self::sqlite(c);
                match db::get_setting(&conn, key)? {
                    Some(stored) => Ok(stored),
                    None => {
                        db::set_setting(&conn, key, value)?;
                        Ok(value.to_string())
                    }
                }
            }
            Engine::Postgres(pg) => pg.setting_or_insert(key, value).await,
        }
    }

    /// Streams an uploaded tar.gz into the store: hashes it while writing to a
    /// temp file, checks every entry with [`crate::archive::check`], and moves
    /// it to `artifacts/<sha256>.tar.gz`; on PostgreSQL also into the
    /// database, for the other nodes. Returns the sha256 hex. Storing the
    /// same bytes twice is a no-op.
    pub async fn put_artifact(
        &self,
        reader: impl Read + Send + 'static,
    ) -> Result<String, StoreError> {
        let local = self.artifacts.clone();
        let sha256 = tokio::task::spawn_blocking(move || local.put(reader))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        let local = self.artifacts.archive_path(&sha256);
        match (&self.bucket, &self.engine) {
            (Some(bucket), _) => bucket.upload(&sha256, &local).await?,
            (None, Engine::Postgres(pg)) => pg.upload_artifact(&sha256, &local).await?,
            (None, Engine::Sqlite(_)) => {}
        }
        Ok(sha256)
    }

    /// `false` for anything that is not a lowercase sha256 hex digest.
    pub async fn has_artifact(&self, sha256: &str) -> Result<bool, StoreError> {
        if !crate::is_sha256_hex(sha256) {
            return Ok(false);
        }
        match (&self.bucket, &self.engine) {
            (Some(bucket), _) => bucket.has(sha256).await,
            (None, Engine::Sqlite(_)) => Ok(self.artifacts.has(sha256)),
            (None, Engine::Postgres(pg)) => pg.has_artifact(sha256).await,
        }
    }

    /// The extracted code of an artifact, extracting it once (to a temp dir,
    /// renamed into place, so concurrent callers never see half a tree). On
    /// PostgreSQL a node without its own copy of the tar.gz fetches it first.
    pub async fn code_dir(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        if !crate::is_sha256_hex(sha256) {
            return Err(StoreError::UnknownArtifact(sha256.to_string()));
        }
        if let Some(dir) = self.artifacts.extracted(sha256) {
            return Ok(dir);
        }
        if !self.artifacts.has(sha256) {
            let mut tmp = self.artifacts.download_file()?;
            match (&self.bucket, &self.engine) {
                (Some(bucket), _) => bucket.download(sha256, tmp.as_file_mut()).await?,
                (None, Engine::Postgres(pg)) => {
                    pg.download_artifact(sha256, tmp.as_file_mut()).await?
                }
                // One node: the local copy is the only one.
                (None, Engine::Sqlite(_)) => {
                    return Err(StoreError::UnknownArtifact(sha256.to_string()))
                }
            }
            self.artifacts.persist(sha256, tmp)?;
        }
        let local = self.artifacts.clone();
        let sha256 = sha256.to_string();
        tokio::task::spawn_blocking(move || local.code_dir(&sha256))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    /// A new access key pair; `now` is Unix seconds.
    pub async fn create_access_key(
        &self,
        description: &str,
        now: i64,
    ) -> Result<NewAccessKey, StoreError> {
        let id = access_keys::new_key_id()?;
        let secret = access_keys::new_secret()?;
        let sealed = self.sealer.seal(&id, &secret)?;
        match &self.engine {
            Engine::Sqlite(c) => {
                db::access_keys::insert(&Self::sqlite(c), &id, &sealed, description, now)?
            }
            Engine::Postgres(pg) => pg.insert_access_key(&id, &sealed, description, now).await?,
        }
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
    pub async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::access_keys::list(&Self::sqlite(c)),
            Engine::Postgres(pg) => pg.list_access_keys().await,
        }
    }

    /// The secret of key `id`, opened; `None` for an unknown id.
    pub async fn access_key_secret(&self, id: &str) -> Result<Option<AccessKeySecret>, StoreError> {
        if !access_keys::looks_like_key_id(id) {
            return Ok(None);
        }
        let sealed = match &self.engine {
            Engine::Sqlite(c) => db::access_keys::sealed(&Self::sqlite(c), id)?,
            Engine::Postgres(pg) => pg.sealed_access_key(id).await?,
        };
        let Some((sealed, last_used_at)) = sealed else {
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
    pub async fn touch_access_key(&self, id: &str, now: i64) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::access_keys::touch(&Self::sqlite(c), id, now),
            Engine::Postgres(pg) => pg.touch_access_key(id, now).await,
        }
    }

    /// `false` if there was no such key.
    pub async fn remove_access_key(&self, id: &str) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Sqlite(c) => db::access_keys::remove(&Self::sqlite(c), id),
            Engine::Postgres(pg) => pg.remove_access_key(id).await,
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
