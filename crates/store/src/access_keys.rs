//! Access key pairs for the AWS-compatible APIs: generating them, and
//! sealing their secrets at rest.
//!
//! A SigV4 check recomputes an HMAC with the secret itself, so the secret
//! cannot be stored as a hash. It is sealed with ChaCha20-Poly1305 under a
//! key kept in its own file in the data directory (`access-keys.key`, 0600,
//! made at first use) rather than derived from the admin token: the token
//! may come from the environment and be rotated, which must not lose every
//! key; and a copy of `rouse.db` alone (a backup, a bug report) reveals no
//! secret. The key id is the associated data, so a sealed secret moved to
//! another row does not open.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::StoreError;

pub(crate) const KEY_FILE: &str = "access-keys.key";
const NONCE_LEN: usize = 12;
/// Base32's alphabet, as AWS's key ids use.
const ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `AKIA` + 16 base32 characters, like AWS's long-term key ids.
pub(crate) fn new_key_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    random(&mut bytes)?;
    // 256 is a multiple of 32 (and of 64 below): the modulo is unbiased.
    let tail: String = bytes
        .iter()
        .map(|b| char::from(ID_ALPHABET[usize::from(*b) % 32]))
        .collect();
    Ok(format!("AKIA{tail}"))
}

/// 40 characters of base64's alphabet, like AWS's secret keys.
pub(crate) fn new_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 40];
    random(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(SECRET_ALPHABET[usize::from(*b) % 64]))
        .collect())
}

/// True for what [`new_key_id`] makes (cheap to check before a lookup).
pub(crate) fn looks_like_key_id(id: &str) -> bool {
    id.len() == 20 && id.starts_with("AKIA") && id.bytes().skip(4).all(|b| ID_ALPHABET.contains(&b))
}

fn random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))
}

/// Seals and opens secrets with the data directory's key, read (or made)
/// at first use.
pub(crate) struct Sealer {
    path: PathBuf,
    cipher: Mutex<Option<ChaCha20Poly1305>>,
}

impl Sealer {
    pub(crate) fn new(data_dir: &Path) -> Sealer {
        Sealer {
            path: data_dir.join(KEY_FILE),
            cipher: Mutex::new(None),
        }
    }

    /// A sealer with a given key: a cluster's, which every node must share,
    /// kept in the shared store (see ARCHITECTURE.md, "Cluster").
    pub(crate) fn with_key(data_dir: &Path, key: &[u8; 32]) -> Sealer {
        Sealer {
            path: data_dir.join(KEY_FILE),
            cipher: Mutex::new(Some(ChaCha20Poly1305::new(Key::from_slice(key)))),
        }
    }

    fn cipher(&self) -> Result<ChaCha20Poly1305, StoreError> {
        let mut slot = self
            .cipher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cipher) = slot.as_ref() {
            return Ok(cipher.clone());
        }
        let key = load_or_create_key(&self.path)?;
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
        *slot = Some(cipher.clone());
        Ok(cipher)
    }

    pub(crate) fn seal(&self, id: &str, secret: &str) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let sealed = self
            .cipher()?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Corrupt("cannot seal an access key secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn open(&self, id: &str, sealed: &[u8]) -> Result<String, StoreError> {
        let corrupt = || {
            StoreError::Corrupt(format!(
                "the secret of access key {id} does not open with {} (was the key file replaced?)",
                self.path.display()
            ))
        };
        if sealed.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher()?
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
    }
}

/// 32 random bytes, hex: a new sealing key.
pub(crate) fn new_key_hex() -> Result<String, StoreError> {
    let mut key = [0u8; 32];
    random(&mut key)?;
    Ok(hex::encode(key))
}

/// 32 bytes from the key file; a new file (0600) if there is none.
/// `create_new` settles a race between two processes: the loser reads the
/// winner's key.
fn load_or_create_key(path: &Path) -> Result<[u8; 32], StoreError> {
    let mut key = [0u8; 32];
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            random(&mut key)?;
            file.write_all(&key)?;
            file.sync_all()?;
            return Ok(key);
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err.into()),
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    key = bytes
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{} is not a 32-byte key", path.display())))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn ids_and_secrets_look_like_aws_ones() {
        let id = new_key_id().unwrap();
        assert!(looks_like_key_id(&id), "{id}");
        assert_ne!(id, new_key_id().unwrap());
        let secret = new_secret().unwrap();
        assert_eq!(secret.len(), 40);
        for bad in [
            "",
            "AKIA",
            "AKIAIOSFODNN7EXAMPL1",
            "ASIAIOSFODNN7EXAMPLE",
            "akiaiosfodnn7example",
        ] {
            assert!(!looks_like_key_id(bad), "{bad}");
        }
        assert!(looks_like_key_id("AKIAIOSFODNN7EXAMPLE"));
    }

    #[test]
    fn sealed_secrets_open_only_for_their_id_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(dir.path());
        let sealed = sealer.seal("AKIAA", "s3cret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(sealer.open("AKIAA", &sealed).unwrap(), "s3cret");
        assert!(sealer.open("AKIAB", &sealed).is_err());
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another process on the same data dir reads the same key.
        assert_eq!(
            Sealer::new(dir.path()).open("AKIAA", &sealed).unwrap(),
            "s3cret"
        );
        let other = tempfile::tempdir().unwrap();
        assert!(Sealer::new(other.path()).open("AKIAA", &sealed).is_err());
    }
}
