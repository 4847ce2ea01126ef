//! The `access_keys` table on PostgreSQL (the SQLite twin is
//! `db/access_keys.rs`).

use super::Postgres;
use crate::db::access_keys::Sealed;
use crate::{AccessKeyRecord, StoreError};

impl Postgres {
    pub(crate) async fn insert_access_key(
        &self,
        id: &str,
        sealed_secret: &[u8],
        description: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO access_keys (id, sealed_secret, description, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[&id, &sealed_secret, &description, &now],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, description, created_at, last_used_at FROM access_keys
                 ORDER BY created_at, id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AccessKeyRecord {
                    id: row.try_get(0)?,
                    description: row.try_get(1)?,
                    created_at: row.try_get(2)?,
                    last_used_at: row.try_get(3)?,
                })
            })
            .collect()
    }

    pub(crate) async fn sealed_access_key(&self, id: &str) -> Result<Option<Sealed>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT sealed_secret, last_used_at FROM access_keys WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(match row {
            Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
            None => None,
        })
    }

    pub(crate) async fn touch_access_key(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE access_keys SET last_used_at = $2 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn remove_access_key(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .execute("DELETE FROM access_keys WHERE id = $1", &[&id])
            .await?
            > 0)
    }
}
