//! Artifacts in an S3-compatible bucket (`--artifacts s3://BUCKET/PREFIX`):
//! each tar.gz is the object `PREFIX/<sha256>.tar.gz`, written once and
//! never changed, so any node (or a later cluster on the same bucket) can
//! fetch it by name. Uploads go up in parts and downloads come down as a
//! stream, so a 250 MB artifact never sits in memory.
//!
//! Credentials, region and endpoint come from the usual `AWS_*` variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` for servers other than AWS itself, such as SeaweedFS
//! or MinIO).

use std::io::Write;
use std::path::Path as FsPath;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::StoreError;

/// Bytes per uploaded part (S3's minimum for all parts but the last is 5 MiB).
const PART: usize = 8 * 1024 * 1024;
/// Parts in flight at once during an upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Where a `s3://` URL says the artifacts live.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Location {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

/// Parses `s3://BUCKET[/PREFIX]`.
pub(crate) fn parse_url(url: &str) -> Result<Location, String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("--artifacts {url}: expected s3://BUCKET/PREFIX"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    // S3's bucket rule: 3-63 of lowercase letters, digits, `.` and `-`.
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !bucket_ok {
        return Err(format!(
            "--artifacts {url}: `{bucket}` is not a bucket name (3-63 lowercase letters, digits, `.`, `-`)"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
        && !prefix.is_empty()
    {
        return Err(format!(
            "--artifacts {url}: the prefix has an empty, `.` or `..` segment"
        ));
    }
    Ok(Location {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
    })
}

/// object_store's TLS is rustls without a built-in provider: use ring, as
/// the gateway does (deprecated upstream only for lacking post-quantum key
/// exchange; aws-lc-rs needs cmake to build). A second install is a no-op.
#[allow(deprecated)]
fn install_tls_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

pub(crate) struct Bucket {
    s3: Arc<AmazonS3>,
    prefix: String,
    url: String,
}

impl Bucket {
    /// A client for `url`; nothing is contacted until the first call.
    pub(crate) fn open(url: &str) -> Result<Bucket, StoreError> {
        let location = parse_url(url).map_err(StoreError::Config)?;
        install_tls_provider();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket);
        // A plain-HTTP endpoint (a local SeaweedFS or MinIO) is what its
        // operator asked for.
        if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|e| e.starts_with("http://")) {
            builder = builder.with_allow_http(true);
        }
        let s3 = builder
            .build()
            .map_err(|e| StoreError::Config(format!("--artifacts {url}: {e}")))?;
        Ok(Bucket {
            s3: Arc::new(s3),
            prefix: location.prefix,
            url: url.to_string(),
        })
    }

    fn object(&self, sha256: &str) -> Path {
        let name = format!("{sha256}.tar.gz");
        if self.prefix.is_empty() {
            Path::from(name)
        } else {
            Path::from(format!("{}/{name}", self.prefix))
        }
    }

    fn error(&self, what: &str, err: object_store::Error) -> StoreError {
        StoreError::Unavailable(format!("artifact bucket {}: {what}: {err}", self.url))
    }

    pub(crate) async fn has(&self, sha256: &str) -> Result<bool, StoreError> {
        match self.s3.head(&self.object(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error("head", e)),
        }
    }

    /// Copies the checked local file `path` into the bucket unless it is
    /// there already. A multipart upload becomes visible only when it
    /// completes, so no node ever fetches half an artifact.
    pub(crate) async fn upload(&self, sha256: &str, path: &FsPath) -> Result<(), StoreError> {
        if self.has(sha256).await? {
            return Ok(());
        }
        let upload = self
            .s3
            .put_multipart(&self.object(sha256))
            .await
            .map_err(|e| self.error("upload", e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut file = tokio::fs::File::open(path).await?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                return Err(self.error("upload", e));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(|e| self.error("upload", e))?;
        Ok(())
    }

    /// Streams the artifact into `out`, checking it hashes to `sha256`.
    pub(crate) async fn download(
        &self,
        sha256: &str,
        out: &mut std::fs::File,
    ) -> Result<(), StoreError> {
        let got = match self.s3.get(&self.object(sha256)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StoreError::UnknownArtifact(sha256.to_string()))
            }
            Err(e) => return Err(self.error("download", e)),
        };
        let mut stream = got.into_stream();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error("download", e))?;
            hasher.update(&chunk);
            out.write_all(&chunk)?;
        }
        if hex::encode(hasher.finalize()) != sha256 {
            return Err(StoreError::Corrupt(format!(
                "artifact {sha256} in {}: the bytes do not hash to its name",
                self.url
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_a_prefix() {
        let loc = |b: &str, p: &str| Location {
            bucket: b.into(),
            prefix: p.into(),
        };
        assert_eq!(parse_url("s3://arts"), Ok(loc("arts", "")));
        assert_eq!(parse_url("s3://arts/"), Ok(loc("arts", "")));
        assert_eq!(
            parse_url("s3://arts/rouse/prod/"),
            Ok(loc("arts", "rouse/prod"))
        );
        assert!(parse_url("https://arts").is_err());
        assert!(parse_url("s3://").is_err());
        assert!(parse_url("s3://Arts").is_err());
        assert!(parse_url("s3://a_b").is_err());
        assert!(parse_url("s3://arts/a/../b").is_err());
        assert!(parse_url("s3://arts/a//b").is_err());
    }
}
