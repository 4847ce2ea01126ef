//! Writing checked entries under the destination directory.
//!
//! Every write goes through [`Dest::make_parents`], which walks the path one
//! component at a time with `lstat` and refuses anything that is not a real
//! directory, so nothing is ever created through a symlink, whatever was in
//! `dest` before. Files are created with `O_EXCL`, which also refuses to
//! follow a symlink at the final component.

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::ArchiveError;

pub(crate) struct Dest<'a> {
    root: &'a Path,
    /// Applied at the end, so that a read-only directory does not stop its
    /// own contents from being written.
    dir_modes: Vec<(PathBuf, u32)>,
    /// Created last, after the whole archive passed the checks, so that a
    /// failed unpack never leaves an escaping symlink behind.
    symlinks: Vec<(PathBuf, PathBuf)>,
}

fn not_a_dir(path: &Path) -> ArchiveError {
    ArchiveError::Unsafe {
        path: path.to_string_lossy().into_owned(),
        reason: "destination already has something other than a directory here",
    }
}

/// Only permission bits: setuid/setgid/sticky from an upload have no business
/// on the server.
fn permission_bits(mode: u32) -> u32 {
    mode & 0o777
}

impl<'a> Dest<'a> {
    pub(crate) fn new(root: &'a Path) -> Result<Dest<'a>, ArchiveError> {
        fs::create_dir_all(root)?;
        Ok(Dest {
            root,
            dir_modes: Vec::new(),
            symlinks: Vec::new(),
        })
    }

    /// Creates (or accepts) every directory of `rel` under the root without
    /// following symlinks, returning the full path.
    fn make_dirs(&self, rel: &Path) -> Result<PathBuf, ArchiveError> {
        let mut full = self.root.to_path_buf();
        for name in rel.iter() {
            full.push(name);
            match fs::symlink_metadata(&full) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => return Err(not_a_dir(rel)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            match fs::create_dir(&full) {
                Ok(()) => {}
                // Lost a race with another writer: accept it only if what
                // appeared is a real directory.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !fs::symlink_metadata(&full)?.is_dir() {
                        return Err(not_a_dir(rel));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(full)
    }

    fn make_parents(&self, rel: &Path) -> Result<PathBuf, ArchiveError> {
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = self.make_dirs(parent)?;
        match rel.file_name() {
            Some(name) => Ok(dir.join(name)),
            None => Err(not_a_dir(rel)),
        }
    }

    pub(crate) fn dir(&mut self, rel: &Path, mode: u32) -> Result<(), ArchiveError> {
        let full = self.make_dirs(rel)?;
        self.dir_modes.push((full, mode));
        Ok(())
    }

    pub(crate) fn file(
        &mut self,
        rel: &Path,
        mode: u32,
        mtime: u64,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        let full = self.make_parents(rel)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&full)?;
        io::copy(data, &mut file)?;
        file.set_permissions(Permissions::from_mode(permission_bits(mode)))?;
        // Web servers derive Last-Modified/ETag from mtimes; keep the project's.
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime))?;
        Ok(())
    }

    pub(crate) fn hard_link(&mut self, rel: &Path, target: &Path) -> Result<(), ArchiveError> {
        let full = self.make_parents(rel)?;
        // The guard only admits targets that are files this unpack wrote.
        fs::hard_link(self.root.join(target), full)?;
        Ok(())
    }

    pub(crate) fn defer_symlink(&mut self, rel: &Path, target: &Path) {
        self.symlinks
            .push((rel.to_path_buf(), target.to_path_buf()));
    }

    /// Second phase, once the archive as a whole is known to be safe.
    pub(crate) fn finish(mut self) -> Result<(), ArchiveError> {
        // Deepest first, so a parent's mode never blocks a child's chmod.
        self.dir_modes
            .sort_by_key(|(path, _)| std::cmp::Reverse(path.components().count()));
        for (path, mode) in &self.dir_modes {
            // Owner rwx is kept so the store can always replace or delete its
            // own cache; read-only code is the sandbox's job (a read-only mount).
            fs::set_permissions(path, Permissions::from_mode(permission_bits(*mode) | 0o700))?;
        }
        for (rel, target) in &self.symlinks {
            let full = self.make_parents(rel)?;
            std::os::unix::fs::symlink(target, full)?;
        }
        Ok(())
    }
}

/// Regular files and symlinks of a tree, relative to `dir`, sorted.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        for entry in fs::read_dir(root.join(rel))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                walk(root, &child, out)?;
            } else {
                out.push(child);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}
