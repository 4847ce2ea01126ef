//! Aliases: a name for one version of a function, optionally sharing its
//! requests with a second version by weight.

use rusqlite::{params, Connection, TransactionBehavior};

use super::deploy::now;
use crate::{AliasRecord, Canary, StoreError};

pub(crate) fn set(
    conn: &mut Connection,
    function: &str,
    alias: &str,
    version: u32,
    canary: Option<Canary>,
) -> Result<AliasRecord, StoreError> {
    crate::rules::check_alias(alias, canary)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM functions WHERE name = ?1)",
        [function],
        |row| row.get(0),
    )?;
    if !exists {
        return Err(StoreError::UnknownFunction(function.to_string()));
    }
    for v in std::iter::once(version).chain(canary.map(|c| c.version)) {
        let found: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM versions WHERE function = ?1 AND version = ?2)",
            params![function, v],
            |row| row.get(0),
        )?;
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
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (function, name) DO UPDATE
         SET version = excluded.version, canary_version = excluded.canary_version,
             canary_weight = excluded.canary_weight, updated_at = excluded.updated_at",
        params![
            function,
            alias,
            version,
            canary.map(|c| c.version),
            canary.map(|c| c.weight),
            updated_at
        ],
    )?;
    tx.commit()?;
    Ok(AliasRecord {
        function: function.to_string(),
        name: alias.to_string(),
        version,
        canary,
        updated_at,
    })
}

pub(crate) fn list(
    conn: &Connection,
    function: Option<&str>,
) -> Result<Vec<AliasRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT function, name, version, canary_version, canary_weight, updated_at
         FROM aliases WHERE ?1 IS NULL OR function = ?1 ORDER BY function, name",
    )?;
    let rows = stmt.query_map([function], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, Option<i64>>(3)?,
            row.get::<_, Option<f64>>(4)?,
            row.get::<_, i64>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (function, name, version, canary_version, canary_weight, updated_at) = row?;
        let number = |v: i64| {
            u32::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("alias {function}:{name}: version {v}")))
        };
        let canary = match (canary_version, canary_weight) {
            (Some(v), Some(weight)) => Some(Canary {
                version: number(v)?,
                weight,
            }),
            _ => None,
        };
        out.push(AliasRecord {
            version: number(version)?,
            function,
            name,
            canary,
            updated_at,
        });
    }
    Ok(out)
}

pub(crate) fn remove(conn: &Connection, function: &str, alias: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM aliases WHERE function = ?1 AND name = ?2",
        [function, alias],
    )? > 0)
}
