//! Content-addressed artifacts: `artifacts/<sha256>.tar.gz`, extracted once
//! into `code/<sha256>/`.
//!
//! Both directories only ever gain complete entries by `rename`, so readers
//! (other threads, other rouse processes on the same data dir) see an
//! artifact or its code either whole or not at all.

use std::fs::{self, File, Permissions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{archive, StoreError};

/// True for a lowercase sha256 hex digest, the only form used in file names.
/// Checked before any path is built from a caller's string, so a "digest"
/// such as `../../etc` can never name a file.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) struct Artifacts {
    archives: PathBuf,
    code: PathBuf,
    pub(crate) limits: archive::Limits,
}

impl Artifacts {
    pub(crate) fn open(data_dir: &Path) -> Result<Artifacts, StoreError> {
        let archives = data_dir.join("artifacts");
        let code = data_dir.join("code");
        fs::create_dir_all(&archives)?;
        fs::create_dir_all(&code)?;
        Ok(Artifacts {
            archives,
            code,
            limits: archive::Limits::default(),
        })
    }

    pub(crate) fn archive_path(&self, sha256: &str) -> PathBuf {
        self.archives.join(format!("{sha256}.tar.gz"))
    }

    /// The code dir if it was extracted already.
    pub(crate) fn extracted(&self, sha256: &str) -> Option<PathBuf> {
        let dest = self.code.join(sha256);
        (is_sha256_hex(sha256) && dest.is_dir()).then_some(dest)
    }

    /// A temp file beside the archives, for a copy fetched from elsewhere.
    pub(crate) fn download_file(&self) -> Result<tempfile::NamedTempFile, StoreError> {
        Ok(tempfile::Builder::new()
            .prefix(".fetch-")
            .tempfile_in(&self.archives)?)
    }

    /// Moves a fetched (and verified) archive into place.
    pub(crate) fn persist(
        &self,
        sha256: &str,
        tmp: tempfile::NamedTempFile,
    ) -> Result<(), StoreError> {
        tmp.as_file().sync_all()?;
        tmp.persist(self.archive_path(sha256))
            .map_err(|e| e.error)?;
        Ok(())
    }

    pub(crate) fn has(&self, sha256: &str) -> bool {
        is_sha256_hex(sha256) && self.archive_path(sha256).is_file()
    }

    pub(crate) fn put(&self, mut reader: impl Read) -> Result<String, StoreError> {
        // Same directory as the destination, so the final rename is atomic.
        let mut tmp = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(&self.archives)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])?;
        }
        let sha256 = hex::encode(hasher.finalize());
        let dest = self.archive_path(&sha256);
        if dest.is_file() {
            // Same bytes already stored (and checked when they were).
            return Ok(sha256);
        }

        tmp.as_file_mut().seek(SeekFrom::Start(0))?;
        archive::check_within(BufReader::new(tmp.as_file()), &self.limits)?;
        // A deploy may record this digest right after; the bytes must be on
        // disk before the name is.
        tmp.as_file().sync_all()?;
        tmp.persist(&dest).map_err(|e| e.error)?;
        File::open(&self.archives)?.sync_all()?;
        Ok(sha256)
    }

    pub(crate) fn code_dir(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        if !is_sha256_hex(sha256) {
            return Err(StoreError::UnknownArtifact(sha256.to_string()));
        }
        let dest = self.code.join(sha256);
        if dest.is_dir() {
            return Ok(dest);
        }
        let file = match File::open(self.archive_path(sha256)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::UnknownArtifact(sha256.to_string()))
            }
            Err(e) => return Err(e.into()),
        };

        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{sha256}-"))
            .tempdir_in(&self.code)?;
        archive::unpack_within(BufReader::new(file), tmp.path(), &self.limits)?;
        // Temp dirs are private (0700); instances run as another uid and
        // must be able to read their code.
        fs::set_permissions(tmp.path(), Permissions::from_mode(0o755))?;
        match fs::rename(tmp.path(), &dest) {
            Ok(()) => {
                // The tree now lives at `dest`; nothing is left to clean up.
                let _ = tmp.keep();
            }
            // Another caller extracted the same artifact first: theirs is
            // complete, so use it and let ours be deleted.
            Err(_) if dest.is_dir() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(dest)
    }
}

impl Artifacts {
    /// Removes what no version references (see [`crate::gc`]).
    pub(crate) fn collect(
        &self,
        referenced: &std::collections::HashSet<String>,
        now: std::time::SystemTime,
    ) -> Result<crate::gc::Collected, StoreError> {
        let grace = crate::gc::UPLOAD_GRACE;
        let mut collected = crate::gc::Collected::default();
        let entries = crate::gc::entries(&self.archives, now)?;
        for name in crate::gc::garbage(&entries, referenced, ".tar.gz", grace) {
            if fs::remove_file(self.archives.join(&name)).is_ok() && !name.starts_with('.') {
                collected.artifacts += 1;
            }
        }
        let entries = crate::gc::entries(&self.code, now)?;
        for name in crate::gc::garbage(&entries, referenced, "", grace) {
            if fs::remove_dir_all(self.code.join(&name)).is_ok() && !name.starts_with('.') {
                collected.code_dirs += 1;
            }
        }
        Ok(collected)
    }
}

#[cfg(test)]
mod tests {
    use super::is_sha256_hex;

    #[test]
    fn only_lowercase_hex_digests_are_accepted() {
        let good = "a".repeat(64);
        assert!(is_sha256_hex(&good));
        assert!(!is_sha256_hex(&"A".repeat(64)));
        assert!(!is_sha256_hex(&"a".repeat(63)));
        assert!(!is_sha256_hex("../../etc/passwd"));
        let mut sneaky = "a".repeat(62);
        sneaky.push_str("/.");
        assert!(!is_sha256_hex(&sneaky));
    }
}
