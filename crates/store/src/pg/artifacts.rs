//! Artifacts shared by the nodes: each tar.gz stored once per sha256 in
//! `artifact_chunks` rows of [`CHUNK`] bytes, streamed in and out so an
//! artifact never has to fit in memory. A node keeps its own copy of the
//! tar.gz (and its extracted code) in its data dir, fetched on first use.
//!
//! An S3 bucket would sit at this seam: `upload`, `has` and `download`.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::Postgres;
use crate::db::deploy::now;
use crate::StoreError;

/// Bytes per row: big enough that a 250 MB artifact is 250 rows, small
/// enough to be nothing in memory.
const CHUNK: usize = 1024 * 1024;

impl Postgres {
    pub(crate) async fn has_artifact(&self, sha256: &str) -> Result<bool, StoreError> {
        Ok(self
            .client()
            .await?
            .query_opt("SELECT 1 FROM artifacts WHERE sha256 = $1", &[&sha256])
            .await?
            .is_some())
    }

    /// Copies the checked local file `path` into the database, unless it is
    /// there already. The `artifacts` row comes last, in the same
    /// transaction, so a reader never sees an artifact with missing chunks.
    pub(crate) async fn upload_artifact(
        &self,
        sha256: &str,
        path: &Path,
    ) -> Result<(), StoreError> {
        if self.has_artifact(sha256).await? {
            return Ok(());
        }
        let mut file = tokio::fs::File::open(path).await?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut buf = vec![0u8; CHUNK];
        let (mut seq, mut size) = (0i32, 0i64);
        loop {
            let n = read_full(&mut file, &mut buf).await?;
            if n == 0 {
                break;
            }
            tx.execute(
                "INSERT INTO artifact_chunks (sha256, seq, data) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&sha256, &seq, &&buf[..n]],
            )
            .await?;
            seq += 1;
            size += i64::try_from(n).unwrap_or(i64::MAX);
        }
        tx.execute(
            "INSERT INTO artifacts (sha256, size, chunks, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&sha256, &size, &seq, &now()],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes the artifact's bytes to `out`, one chunk at a time, checking
    /// they hash to `sha256`.
    pub(crate) async fn download_artifact(
        &self,
        sha256: &str,
        out: &mut std::fs::File,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let chunks: i32 = client
            .query_opt("SELECT chunks FROM artifacts WHERE sha256 = $1", &[&sha256])
            .await?
            .ok_or_else(|| StoreError::UnknownArtifact(sha256.to_string()))?
            .get(0);
        let statement = client
            .prepare("SELECT data FROM artifact_chunks WHERE sha256 = $1 AND seq = $2")
            .await?;
        let mut hasher = Sha256::new();
        for seq in 0..chunks {
            let row = client
                .query_opt(&statement, &[&sha256, &seq])
                .await?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("artifact {sha256}: chunk {seq} is missing"))
                })?;
            let data: &[u8] = row.get(0);
            hasher.update(data);
            out.write_all(data)?;
        }
        if hex::encode(hasher.finalize()) != sha256 {
            return Err(StoreError::Corrupt(format!(
                "artifact {sha256}: the stored bytes do not hash to its name"
            )));
        }
        Ok(())
    }
}

/// Fills `buf` unless the file ends first: chunks other than the last are
/// all exactly [`CHUNK`] bytes.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
