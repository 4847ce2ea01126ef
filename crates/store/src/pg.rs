//! The PostgreSQL engine of the store (cluster mode): the same CMDB as the
//! SQLite engine, through a connection pool, plus what nodes share —
//! artifacts, node rows, the change generation, schedule ticks.
//!
//! Every write that changes what nodes serve bumps `generation` in its own
//! transaction and sends `NOTIFY rouse_changes`; nodes poll the generation
//! too, since a notification is lost when no listener is connected.

pub(crate) mod access_keys;
pub(crate) mod artifacts;
pub(crate) mod cluster;
pub(crate) mod events;
pub(crate) mod placements;
pub(crate) mod queues;
mod schema;
pub(crate) mod streams;
pub(crate) mod write;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::{NoTls, Row};

use crate::rules::{self, RawRecord};
use crate::{AliasRecord, Canary, FunctionRecord, RouteRecord, StoreError, VersionRecord};

/// Connections per node: admin calls, route reloads and heartbeats are
/// short; more would only queue inside PostgreSQL.
const POOL_SIZE: usize = 8;

pub(crate) struct Postgres {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The runtime connections are made on. A connection's I/O task runs
    /// where it was created, and the gateway's per-thread runtimes stop
    /// before the main one at shutdown: pooled connections must not die
    /// with them.
    home: tokio::runtime::Handle,
}

impl Postgres {
    pub(crate) async fn open(url: &str) -> Result<Postgres, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("--store {}: {e}", redact(url))))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let pg = Postgres {
            pool,
            config,
            home: tokio::runtime::Handle::current(),
        };
        let mut client = pg.client().await?;
        schema::migrate(&mut client).await?;
        Ok(pg)
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        let pool = self.pool.clone();
        self.home
            .spawn(async move { pool.get().await })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    pub(crate) async fn list_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(&format!("{SELECT_RECORDS} ORDER BY f.name"), &[])
            .await?;
        rows.iter().map(raw_record).collect()
    }

    pub(crate) async fn count_functions(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM functions", &[])
            .await?
            .get(0);
        Ok(usize::try_from(n).unwrap_or(0))
    }

    pub(crate) async fn list_functions_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FunctionRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                &format!("{SELECT_RECORDS} WHERE f.name > $1 ORDER BY f.name LIMIT $2"),
                &[&after.unwrap_or(""), &limit],
            )
            .await?;
        rows.iter().map(raw_record).collect()
    }

    pub(crate) async fn get_function(
        &self,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        get_function(&self.client().await?, name).await
    }

    /// The artifact of every version of every function.
    pub(crate) async fn referenced_artifacts(
        &self,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = self
            .client()
            .await?
            .query("SELECT DISTINCT artifact FROM versions", &[])
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(crate) async fn function_number(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT id FROM functions WHERE name = $1", &[&name])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub(crate) async fn routes(&self) -> Result<Vec<RouteRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT function, method, path, shape, stage_routing FROM routes
                 ORDER BY path, method, function",
                &[],
            )
            .await?;
        route_rows(&rows)
    }

    pub(crate) async fn routes_of(&self, function: &str) -> Result<Vec<RouteRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT function, method, path, shape, stage_routing FROM routes
                 WHERE function = $1 ORDER BY path, method",
                &[&function],
            )
            .await?;
        route_rows(&rows)
    }

    pub(crate) async fn versions(&self, name: &str) -> Result<Vec<VersionRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT version, artifact, spec_json, created_at FROM versions
                 WHERE function = $1 ORDER BY version",
                &[&name],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let version: i64 = row.get(0);
                let spec_json: String = row.get(2);
                Ok(VersionRecord {
                    version: rules::version_number(&format!("function {name}"), version)?,
                    artifact: row.get(1),
                    spec: rules::parse_spec(name, version, &spec_json)?,
                    created_at: row.get(3),
                })
            })
            .collect()
    }

    pub(crate) async fn aliases(
        &self,
        function: Option<&str>,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT function, name, version, canary_version, canary_weight, updated_at
                 FROM aliases WHERE $1::TEXT IS NULL OR function = $1 ORDER BY function, name",
                &[&function],
            )
            .await?;
        rows.iter().map(alias_record).collect()
    }

    pub(crate) async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub(crate) async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await?;
        Ok(())
    }

    /// Writes `value` only if `key` has none yet; returns the value stored.
    pub(crate) async fn setting_or_insert(
        &self,
        key: &str,
        value: &str,
    ) -> Result<String, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await?;
        Ok(client
            .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
            .await?
            .get(0))
    }
}

pub(crate) const SELECT_RECORDS: &str = "SELECT f.name, f.service, f.stage, f.current_version,
        v.artifact, v.spec_json, f.created_at, f.updated_at
    FROM functions f
    LEFT JOIN versions v ON v.function = f.name AND v.version = f.current_version";

pub(crate) async fn get_function(
    client: &impl deadpool_postgres::GenericClient,
    name: &str,
) -> Result<Option<FunctionRecord>, StoreError> {
    client
        .query_opt(&format!("{SELECT_RECORDS} WHERE f.name = $1"), &[&name])
        .await?
        .map(|row| raw_record(&row))
        .transpose()
}

fn raw_record(row: &Row) -> Result<FunctionRecord, StoreError> {
    RawRecord {
        name: row.try_get(0)?,
        service: row.try_get(1)?,
        stage: row.try_get(2)?,
        version: row.try_get(3)?,
        artifact: row.try_get(4)?,
        spec_json: row.try_get(5)?,
        created_at: row.try_get(6)?,
        updated_at: row.try_get(7)?,
    }
    .parse()
}

fn route_rows(rows: &[Row]) -> Result<Vec<RouteRecord>, StoreError> {
    rows.iter()
        .map(|row| {
            rules::route_record((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            ))
        })
        .collect()
}

fn alias_record(row: &Row) -> Result<AliasRecord, StoreError> {
    let function: String = row.try_get(0)?;
    let name: String = row.try_get(1)?;
    let what = format!("alias {function}:{name}");
    let canary = match (
        row.try_get::<_, Option<i64>>(3)?,
        row.try_get::<_, Option<f64>>(4)?,
    ) {
        (Some(v), Some(weight)) => Some(Canary {
            version: rules::version_number(&what, v)?,
            weight,
        }),
        _ => None,
    };
    Ok(AliasRecord {
        version: rules::version_number(&what, row.try_get(2)?)?,
        canary,
        updated_at: row.try_get(5)?,
        function,
        name,
    })
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://rouse:s3cret@db:5432/rouse"),
            "postgres://rouse:***@db:5432/rouse"
        );
        assert_eq!(redact("postgres://db/rouse"), "postgres://db/rouse");
    }
}
