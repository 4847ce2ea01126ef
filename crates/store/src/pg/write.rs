//! Writes to the CMDB on PostgreSQL. Each runs in one transaction behind one
//! advisory lock (the counterpart of SQLite's `BEGIN IMMEDIATE`: the checks
//! and the writes see the same state while another node deploys), and bumps
//! the generation with a `NOTIFY` so every node reloads.

use std::collections::HashSet;

use deadpool_postgres::Transaction;
use rouse_manifest::{DeploySpec, FunctionSpec};

use super::{get_function, Postgres};
use crate::db::deploy::now;
use crate::rules::{self, shape_name, spec_routes, validate_names, Taken};
use crate::{AliasRecord, Canary, FunctionRecord, RouteRecord, StoreError};

/// Key of the advisory lock every CMDB write holds.
const WRITE_LOCK: i64 = 0x0072_6f75_7366;
/// The channel nodes listen on for changes.
pub(crate) const CHANNEL: &str = "rouse_changes";

async fn begin(client: &mut deadpool_postgres::Object) -> Result<Transaction<'_>, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .await?;
    Ok(tx)
}

/// The change every node must pick up; sent on commit.
async fn bump_generation(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("UPDATE generation SET value = value + 1", &[])
        .await?;
    tx.batch_execute(&format!("NOTIFY {CHANNEL}")).await?;
    Ok(())
}

impl Postgres {
    pub(crate) async fn deploy(
        &self,
        spec: &DeploySpec,
        artifact: &str,
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        validate_names(spec)?;
        let routes = spec_routes(spec)?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        check_foreign_routes(&tx, spec, &routes).await?;
        for function in &spec.functions {
            let owner = tx
                .query_opt(
                    "SELECT service, stage FROM functions WHERE name = $1",
                    &[&function.name],
                )
                .await?
                .map(|row| (row.get(0), row.get(1)));
            rules::check_function_owner(spec, &function.name, owner)?;
        }
        let (service, stage) = (spec.service.as_str(), spec.stage.as_str());
        let existing: Vec<String> = tx
            .query(
                "SELECT name FROM functions WHERE service = $1 AND stage = $2",
                &[&service, &stage],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let wanted: HashSet<&str> = spec.functions.iter().map(|f| f.name.as_str()).collect();
        for name in existing.iter().filter(|n| !wanted.contains(n.as_str())) {
            delete_function(&tx, name).await?;
        }
        tx.execute(
            "DELETE FROM routes WHERE function IN
               (SELECT name FROM functions WHERE service = $1 AND stage = $2)",
            &[&service, &stage],
        )
        .await?;
        let now = now();
        for function in &spec.functions {
            write_version(&tx, service, stage, function, artifact, now).await?;
        }
        insert_routes(&tx, &routes).await?;
        let mut records = Vec::with_capacity(spec.functions.len());
        for function in &spec.functions {
            let record = get_function(&tx, &function.name).await?.ok_or_else(|| {
                StoreError::Corrupt(format!("function {} vanished during deploy", function.name))
            })?;
            records.push(record);
        }
        bump_generation(&tx).await?;
        tx.commit().await?;
        Ok(records)
    }

    pub(crate) async fn replace_version(
        &self,
        function: &FunctionSpec,
        artifact: &str,
    ) -> Result<FunctionRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let current = get_function(&tx, &function.name)
            .await?
            .ok_or_else(|| StoreError::UnknownFunction(function.name.clone()))?;
        let spec = DeploySpec {
            service: current.service.clone(),
            stage: current.stage.clone(),
            functions: vec![function.clone()],
        };
        let routes = spec_routes(&spec)?;
        check_foreign_routes(&tx, &spec, &routes).await?;
        tx.execute("DELETE FROM routes WHERE function = $1", &[&function.name])
            .await?;
        write_version(&tx, &spec.service, &spec.stage, function, artifact, now()).await?;
        insert_routes(&tx, &routes).await?;
        let record = get_function(&tx, &function.name).await?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "function {} vanished during an update",
                function.name
            ))
        })?;
        bump_generation(&tx).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(crate) async fn remove_function(&self, name: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let removed = delete_function(&tx, name).await?;
        bump_generation(&tx).await?;
        tx.commit().await?;
        Ok(removed)
    }

    pub(crate) async fn set_alias(
        &self,
        function: &str,
        alias: &str,
        version: u32,
        canary: Option<Canary>,
    ) -> Result<AliasRecord, StoreError> {
        rules::check_alias(alias, canary)?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let exists = tx
            .query_opt("SELECT 1 FROM functions WHERE name = $1", &[&function])
            .await?
            .is_some();
        if !exists {
            return Err(StoreError::UnknownFunction(function.to_string()));
        }
        for v in std::iter::once(version).chain(canary.map(|c| c.version)) {
            let found = tx
                .query_opt(
                    "SELECT 1 FROM versions WHERE function = $1 AND version = $2",
                    &[&function, &i64::from(v)],
                )
                .await?
                .is_some();
            if !found {
                return Err(StoreError::UnknownVersion {
                    function: function.to_string(),
                    version: v,
                });
            }
        }
        let updated_at = now();
        tx.execute(
            "INSERT INTO aliases (function, name, version, canary_version, canary_weight, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (function, name) DO UPDATE
             SET version = excluded.version, canary_version = excluded.canary_version,
                 canary_weight = excluded.canary_weight, updated_at = excluded.updated_at",
            &[
                &function,
                &alias,
                &i64::from(version),
                &canary.map(|c| i64::from(c.version)),
                &canary.map(|c| c.weight),
                &updated_at,
            ],
        )
        .await?;
        bump_generation(&tx).await?;
        tx.commit().await?;
        Ok(AliasRecord {
            function: function.to_string(),
            name: alias.to_string(),
            version,
            canary,
            updated_at,
        })
    }

    pub(crate) async fn remove_alias(
        &self,
        function: &str,
        alias: &str,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let removed = tx
            .execute(
                "DELETE FROM aliases WHERE function = $1 AND name = $2",
                &[&function, &alias],
            )
            .await?
            > 0;
        bump_generation(&tx).await?;
        tx.commit().await?;
        Ok(removed)
    }
}

async fn delete_function(tx: &Transaction<'_>, name: &str) -> Result<bool, StoreError> {
    for table in ["routes", "aliases", "versions"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE function = $1"),
            &[&name],
        )
        .await?;
    }
    Ok(tx
        .execute("DELETE FROM functions WHERE name = $1", &[&name])
        .await?
        > 0)
}

async fn check_foreign_routes(
    tx: &Transaction<'_>,
    spec: &DeploySpec,
    routes: &[RouteRecord],
) -> Result<(), StoreError> {
    let taken = tx
        .query(
            "SELECT r.function, r.method, r.path, r.stage_routing, f.service, f.stage FROM routes r
             JOIN functions f ON f.name = r.function
             WHERE f.service <> $1 OR f.stage <> $2",
            &[&spec.service, &spec.stage],
        )
        .await?
        .iter()
        .map(|row| Taken {
            function: row.get(0),
            method: row.get(1),
            path: row.get(2),
            stage_routing: row.get(3),
            service: row.get(4),
            stage: row.get(5),
        })
        .collect();
    rules::check_foreign_routes(spec, routes, taken)
}

async fn insert_routes(tx: &Transaction<'_>, routes: &[RouteRecord]) -> Result<(), StoreError> {
    for route in routes {
        tx.execute(
            "INSERT INTO routes (function, method, path, shape, stage_routing)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &route.function,
                &route.method,
                &route.path,
                &shape_name(route.shape),
                &route.stage_routing.as_str(),
            ],
        )
        .await?;
    }
    Ok(())
}

async fn write_version(
    tx: &Transaction<'_>,
    service: &str,
    stage: &str,
    function: &FunctionSpec,
    artifact: &str,
    now: i64,
) -> Result<(), StoreError> {
    // MAX rather than current + 1, as in SQLite: after a rollback a new
    // deploy still gets a number never used before.
    let version: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE function = $1",
            &[&function.name],
        )
        .await?
        .get(0);
    let spec_json = serde_json::to_string(function)
        .map_err(|e| StoreError::Corrupt(format!("function {}: {e}", function.name)))?;
    tx.execute(
        "INSERT INTO functions (name, service, stage, current_version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (name) DO UPDATE
         SET current_version = excluded.current_version, updated_at = excluded.updated_at",
        &[&function.name, &service, &stage, &version, &now],
    )
    .await?;
    tx.execute(
        "INSERT INTO versions (function, version, artifact, spec_json, created_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&function.name, &version, &artifact, &spec_json, &now],
    )
    .await?;
    Ok(())
}
