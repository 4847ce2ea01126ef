//! The `access_keys` table.

use rusqlite::{params, Connection, OptionalExtension};

use crate::{AccessKeyRecord, StoreError};

pub(crate) fn insert(
    conn: &Connection,
    id: &str,
    sealed_secret: &[u8],
    description: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO access_keys (id, sealed_secret, description, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, sealed_secret, description, now],
    )?;
    Ok(())
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<AccessKeyRecord>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, description, created_at, last_used_at FROM access_keys ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(AccessKeyRecord {
            id: row.get(0)?,
            description: row.get(1)?,
            created_at: row.get(2)?,
            last_used_at: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A sealed secret and when its key was last used.
pub(crate) type Sealed = (Vec<u8>, Option<i64>);

pub(crate) fn sealed(conn: &Connection, id: &str) -> Result<Option<Sealed>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT sealed_secret, last_used_at FROM access_keys WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

pub(crate) fn touch(conn: &Connection, id: &str, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE access_keys SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

pub(crate) fn remove(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM access_keys WHERE id = ?1", [id])? > 0)
}
