//! The instance's working directory: a hard-linked mirror of the shared
//! artifact, with the configured rewrites applied to private copies.
//!
//! Hard links make a cold start cost a few syscalls per file instead of a copy
//! of the artifact. The price is that a link *is* the shared file, so anything
//! this module changes must be written to a new file and renamed over the link,
//! never modified in place.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use regex::bytes::{NoExpand, Regex};
use rouse_manifest::Rewrite;

use crate::{substitute, SandboxError};

/// Why preparing failed, and whether `work_dir` exists because of us (and so
/// must be cleaned up by the caller).
pub(crate) enum PrepareFailure {
    Created(SandboxError),
    NotCreated(SandboxError),
}

/// Creates `work_dir`, mirrors `code_dir` into it and applies `rewrites`.
///
/// `owner`: the uid (and gid) an isolated instance runs as. Files it could
/// not read through a shared link (owner-only modes), or could write to
/// (group/other write, which would change the artifact for everyone), get a
/// private copy instead, owned by that uid, without group/other write; so
/// do rewritten files.
pub(crate) fn prepare(
    code_dir: &Path,
    work_dir: &Path,
    rewrites: &[Rewrite],
    env: &BTreeMap<String, String>,
    owner: Option<u32>,
) -> Result<(), PrepareFailure> {
    create_work_dir(work_dir).map_err(|e| PrepareFailure::NotCreated(SandboxError::Prepare(e)))?;
    mirror_dir(code_dir, work_dir, owner.is_some())
        .map_err(|e| PrepareFailure::Created(SandboxError::Prepare(e)))?;
    for rewrite in rewrites {
        apply_rewrite(work_dir, rewrite, env).map_err(PrepareFailure::Created)?;
    }
    if let Some(uid) = owner {
        give_private_files(work_dir, uid)
            .map_err(|e| PrepareFailure::Created(SandboxError::Prepare(e)))?;
    }
    Ok(())
}

/// Whether an isolated instance needs its own copy of a file with `mode`.
fn needs_private_copy(mode: u32) -> bool {
    mode & 0o004 == 0 || mode & 0o022 != 0
}

/// Hands the files only this instance has (private copies, rewrites: one
/// link) to `uid`; shared links stay rouse's.
fn give_private_files(dir: &Path, uid: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            give_private_files(&entry.path(), uid)?;
        } else if kind.is_file() && entry.metadata()?.nlink() == 1 {
            std::os::unix::fs::chown(entry.path(), Some(uid), Some(uid))?;
        }
    }
    Ok(())
}

fn create_work_dir(work_dir: &Path) -> io::Result<()> {
    if let Some(parent) = work_dir.parent() {
        fs::create_dir_all(parent)?;
    }
    // `create_dir`, not `create_dir_all`: an existing directory means two
    // instances were given the same path, and sharing it would be a bug.
    fs::create_dir(work_dir)
}

/// Recreates the tree under `src` in `dst` (which exists): directories are
/// created, files hard-linked (or copied), symlinks recreated verbatim.
///
/// Directories get the default mode rather than the artifact's: a read-only
/// directory would stop rewrites (which create a file next to the original),
/// the instance's own scratch files, and later removal of the instance dir.
fn mirror_dir(src: &Path, dst: &Path, isolated: bool) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        // `file_type` does not follow symlinks, so a link to a directory is
        // recreated as a link instead of being walked (no cycles, no escapes).
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir(&to)?;
            mirror_dir(&from, &to, isolated)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if kind.is_file() && isolated {
            let mode = entry.metadata()?.permissions().mode() & 0o7777;
            if needs_private_copy(mode) {
                fs::copy(&from, &to)?;
                fs::set_permissions(&to, fs::Permissions::from_mode(mode & !0o022))?;
            } else {
                link_or_copy(&from, &to)?;
            }
        } else if kind.is_file() {
            link_or_copy(&from, &to)?;
        } else {
            // FIFOs, sockets and devices have no business in an artifact.
            tracing::debug!(path = %from.display(), "skipping special file in artifact");
        }
    }
    Ok(())
}

fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        // EXDEV (instance dirs on another filesystem), EMLINK, or a filesystem
        // without hard links: a copy is slower but equivalent.
        Err(err) => {
            tracing::trace!(path = %from.display(), error = %err, "hard link failed, copying");
            fs::copy(from, to).map(|_| ())
        }
    }
}

/// Applies one rewrite to the instance's copy of `rewrite.file`.
///
/// A missing file or a pattern that matches nothing is an error: the rewrite
/// exists to move the app onto its assigned port, and silently skipping it
/// would leave the app listening elsewhere and fail only at readiness.
pub(crate) fn apply_rewrite(
    work_dir: &Path,
    rewrite: &Rewrite,
    env: &BTreeMap<String, String>,
) -> Result<(), SandboxError> {
    let fail = |message: String| SandboxError::Rewrite {
        file: rewrite.file.clone(),
        message,
    };

    let path = target_path(work_dir, &rewrite.file).map_err(fail)?;
    let pattern =
        Regex::new(&rewrite.pattern).map_err(|e| fail(format!("invalid pattern: {e}")))?;
    let content = match fs::read(&path) {
        Ok(content) => content,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(fail("file not found in the artifact".to_string()))
        }
        Err(err) => return Err(fail(format!("reading: {err}"))),
    };
    if !pattern.is_match(&content) {
        return Err(fail(format!(
            "pattern {:?} matched nothing",
            rewrite.pattern
        )));
    }

    let replacement = substitute(&rewrite.replace, env);
    // NoExpand: the substituted text is inserted as is; `$1` or `$$` in it
    // (nginx variables, say) must not be read as capture-group references.
    let rewritten = pattern.replace_all(&content, NoExpand(replacement.as_bytes()));
    replace_file(&path, &rewritten).map_err(|e| fail(format!("writing: {e}")))
}

/// Resolves a rewrite's artifact-relative path inside `work_dir`, refusing
/// anything that would land outside it.
fn target_path(work_dir: &Path, file: &str) -> Result<PathBuf, String> {
    let relative = Path::new(file);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if file.is_empty() || !plain || relative.file_name().is_none() {
        return Err("must be a relative path inside the artifact".to_string());
    }
    let path = work_dir.join(relative);

    // A symlinked directory in the artifact could point anywhere; the new file
    // is created next to the target, so its directory must be ours.
    let parent = path.parent().unwrap_or(work_dir);
    let real_parent = match fs::canonicalize(parent) {
        Ok(p) => p,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err("file not found in the artifact".to_string())
        }
        Err(err) => return Err(format!("resolving its directory: {err}")),
    };
    let real_root =
        fs::canonicalize(work_dir).map_err(|e| format!("resolving the instance dir: {e}"))?;
    if !real_parent.starts_with(&real_root) {
        return Err("its directory resolves outside the instance directory".to_string());
    }
    Ok(path)
}

/// Replaces `path` with a new file holding `content`, leaving the inode that
/// `path` named before (shared with the artifact and other instances) untouched.
fn replace_file(path: &Path, content: &[u8]) -> io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".rouse-rewrite");
    let temp = path.with_file_name(temp_name);

    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        file.write_all(content)?;
        // `mode` above is filtered through the umask; restore the original bits.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        drop(file);
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolated_instances_get_private_copies_of_unreadable_or_writable_files() {
        use std::os::unix::fs::MetadataExt;
        let code = tempfile::tempdir().unwrap();
        for (name, mode) in [("public", 0o644), ("secret", 0o600), ("shared-rw", 0o666)] {
            fs::write(code.path().join(name), name).unwrap();
            fs::set_permissions(code.path().join(name), fs::Permissions::from_mode(mode)).unwrap();
        }
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("w");
        let me = nix::unistd::getuid().as_raw();
        assert!(prepare(code.path(), &work, &[], &BTreeMap::new(), Some(me)).is_ok());
        let meta = |n: &str| fs::metadata(work.join(n)).unwrap();
        assert_eq!(
            meta("public").nlink(),
            2,
            "readable files stay shared links"
        );
        assert_eq!(meta("secret").nlink(), 1, "owner-only files are copied");
        assert_eq!(meta("secret").permissions().mode() & 0o777, 0o600);
        assert_eq!(meta("shared-rw").nlink(), 1, "writable files are copied");
        assert_eq!(meta("shared-rw").permissions().mode() & 0o777, 0o644);
        assert_eq!(fs::read(work.join("secret")).unwrap(), b"secret");
    }

    #[test]
    fn target_path_rejects_escapes() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a/..", "."] {
            assert!(target_path(dir.path(), bad).is_err(), "{bad:?} accepted");
        }
        fs::create_dir(dir.path().join("conf")).unwrap();
        assert_eq!(
            target_path(dir.path(), "./conf/nginx.conf").unwrap(),
            dir.path().join("./conf/nginx.conf")
        );
    }

    #[test]
    fn target_path_rejects_symlinked_dir_outside() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("conf")).unwrap();
        let err = target_path(dir.path(), "conf/nginx.conf").unwrap_err();
        assert!(err.contains("outside"), "{err}");
    }

    #[test]
    fn replace_file_keeps_mode_and_old_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared.sh");
        let link = dir.path().join("link.sh");
        fs::write(&shared, "old").unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o751)).unwrap();
        fs::hard_link(&shared, &link).unwrap();

        replace_file(&link, b"new").unwrap();

        assert_eq!(fs::read(&shared).unwrap(), b"old");
        assert_eq!(fs::read(&link).unwrap(), b"new");
        let (a, b) = (fs::metadata(&shared).unwrap(), fs::metadata(&link).unwrap());
        assert_ne!(a.ino(), b.ino());
        assert_eq!(b.permissions().mode() & 0o7777, 0o751);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "temp file left behind"
        );
    }
}
