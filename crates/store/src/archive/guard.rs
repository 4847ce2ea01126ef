//! The safety rules every archive entry must pass before anything is written.
//!
//! The rules are applied by rouse itself rather than left to the tar crate,
//! whose unpacking quietly *skips* some bad entries: an uploaded artifact that
//! tries to escape its directory must be refused loudly, not half-extracted.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::ArchiveError;

/// Symlink hops allowed while resolving one target, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// What one tar entry turns into once it has passed the checks.
#[derive(Debug)]
pub(crate) enum Planned {
    /// Metadata only (the root directory itself, a global pax header).
    Skip,
    Dir {
        path: PathBuf,
        mode: u32,
    },
    File {
        path: PathBuf,
        mode: u32,
        mtime: u64,
    },
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
    /// `target` is relative to the archive root, as tar defines hard links.
    HardLink {
        path: PathBuf,
        target: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
}

/// Tracks the entries seen so far, so that rules spanning several entries
/// (writing beneath a symlink, duplicate paths, hard links, symlink chains)
/// are enforced as well as the per-entry ones.
#[derive(Default)]
pub(crate) struct Guard {
    /// Normalised relative path → what occupies it. Parents of entries are
    /// recorded as directories even when the archive has no entry for them.
    seen: HashMap<PathBuf, Kind>,
    symlinks: HashMap<PathBuf, PathBuf>,
}

fn unsafe_entry(path: &Path, reason: &'static str) -> ArchiveError {
    ArchiveError::Unsafe {
        path: path.to_string_lossy().into_owned(),
        reason,
    }
}

fn malformed(path: &Path, err: std::io::Error) -> ArchiveError {
    ArchiveError::Malformed(format!("entry {:?}: {err}", path.to_string_lossy()))
}

/// The entry path as a clean relative path: no root, no `..`, no `.`.
fn normalise_entry_path(raw: &Path) -> Result<PathBuf, ArchiveError> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_entry(raw, "path has a `..` component")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(raw, "path is absolute"))
            }
        }
    }
    Ok(out)
}

/// Resolves `target` against the directory `base` without touching the
/// filesystem; `None` if it climbs above the root.
fn resolve_lexically(base: &Path, target: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&OsStr> = base.iter().collect();
    for component in target.components() {
        match component {
            Component::Normal(name) => parts.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

impl Guard {
    /// Checks one entry and says what to do with it. Errors name the entry.
    pub(crate) fn admit<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
    ) -> Result<Planned, ArchiveError> {
        let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
        let header = entry.header();
        let entry_type = header.entry_type();

        // Global pax headers only carry archive-wide metadata (git archive
        // writes one with the commit id); they name no file.
        if entry_type == EntryType::XGlobalHeader {
            return Ok(Planned::Skip);
        }

        let path = normalise_entry_path(&raw)?;
        if path.as_os_str().is_empty() {
            // `./` is how `tar -C dir .` names the root; anything else with an
            // empty name cannot be placed anywhere.
            return match entry_type {
                EntryType::Directory => Ok(Planned::Skip),
                _ => Err(unsafe_entry(&raw, "entry has an empty path")),
            };
        }

        let planned = match entry_type {
            EntryType::Directory => Planned::Dir {
                mode: header.mode().map_err(|e| malformed(&raw, e))?,
                path,
            },
            // Continuous and sparse entries read back as plain file content.
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Planned::File {
                mode: header.mode().map_err(|e| malformed(&raw, e))?,
                mtime: header.mtime().unwrap_or(0),
                path,
            },
            EntryType::Symlink => {
                let target = self.link_target(entry, &raw)?;
                if target.is_absolute() {
                    return Err(unsafe_entry(&raw, "symlink target is absolute"));
                }
                let parent = path.parent().unwrap_or(Path::new(""));
                if resolve_lexically(parent, &target).is_none() {
                    return Err(unsafe_entry(&raw, "symlink target leaves the archive root"));
                }
                Planned::Symlink { path, target }
            }
            EntryType::Link => {
                let target = self.link_target(entry, &raw)?;
                if target.is_absolute() {
                    return Err(unsafe_entry(&raw, "hard link target is absolute"));
                }
                let Some(target) = resolve_lexically(Path::new(""), &target) else {
                    return Err(unsafe_entry(
                        &raw,
                        "hard link target leaves the archive root",
                    ));
                };
                // Only a file this archive already placed may be linked, so a
                // hard link can never reach a file outside dest (or follow a
                // symlink on its way there).
                if self.seen.get(&target) != Some(&Kind::File) {
                    return Err(unsafe_entry(
                        &raw,
                        "hard link target is not an earlier file of the archive",
                    ));
                }
                Planned::HardLink { path, target }
            }
            EntryType::Block | EntryType::Char => {
                return Err(unsafe_entry(&raw, "device entries are not allowed"))
            }
            EntryType::Fifo => return Err(unsafe_entry(&raw, "fifo entries are not allowed")),
            _ => return Err(unsafe_entry(&raw, "unsupported entry type")),
        };

        self.place(&raw, &planned)?;
        Ok(planned)
    }

    fn link_target<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        raw: &Path,
    ) -> Result<PathBuf, ArchiveError> {
        match entry.link_name_bytes() {
            Some(bytes) if !bytes.is_empty() => Ok(PathBuf::from(OsStr::from_bytes(&bytes))),
            _ => Err(unsafe_entry(raw, "link has no target")),
        }
    }

    /// Records where the entry goes, refusing paths beneath a symlink or a
    /// file, and duplicates (a later entry would replace or write through the
    /// earlier one).
    fn place(&mut self, raw: &Path, planned: &Planned) -> Result<(), ArchiveError> {
        let (path, kind) = match planned {
            Planned::Skip => return Ok(()),
            Planned::Dir { path, .. } => (path, Kind::Dir),
            Planned::File { path, .. } | Planned::HardLink { path, .. } => (path, Kind::File),
            Planned::Symlink { path, .. } => (path, Kind::Symlink),
        };

        let mut ancestor = PathBuf::new();
        let parents: Vec<_> = path
            .parent()
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        for name in parents {
            ancestor.push(name);
            match self.seen.get(&ancestor) {
                Some(Kind::Dir) => {}
                Some(Kind::Symlink) => {
                    return Err(unsafe_entry(raw, "path goes through a symlink"))
                }
                Some(Kind::File) => {
                    return Err(unsafe_entry(raw, "a parent of the path is not a directory"))
                }
                None => {
                    self.seen.insert(ancestor.clone(), Kind::Dir);
                }
            }
        }

        match self.seen.get(path) {
            None => {}
            Some(Kind::Dir) if kind == Kind::Dir => return Ok(()),
            Some(_) => return Err(unsafe_entry(raw, "path appears more than once")),
        }
        self.seen.insert(path.clone(), kind);
        if let Planned::Symlink { target, .. } = planned {
            self.symlinks.insert(path.clone(), target.clone());
        }
        Ok(())
    }

    /// Whole-archive check, once every entry is known: each symlink, followed
    /// through the other symlinks of the archive the way the kernel would,
    /// must stay inside the root. The per-entry lexical check cannot see this:
    /// with `link -> .`, the target `link/..` looks harmless but is the
    /// parent of the root.
    pub(crate) fn finish(&self) -> Result<(), ArchiveError> {
        let mut links: Vec<_> = self.symlinks.iter().collect();
        // Deterministic error reporting when several links are bad.
        links.sort();
        for (path, target) in links {
            let parent = path.parent().unwrap_or(Path::new(""));
            self.resolve_physically(parent, target)
                .map_err(|reason| unsafe_entry(path, reason))?;
        }
        Ok(())
    }

    fn resolve_physically(&self, base: &Path, target: &Path) -> Result<(), &'static str> {
        // `base` never contains a symlink: `place` refuses entries below one.
        let mut real: Vec<OsString> = base.iter().map(OsStr::to_os_string).collect();
        let mut pending: Vec<OsString> = Vec::new();
        push_reversed(&mut pending, target)?;
        let mut hops = 0;
        while let Some(name) = pending.pop() {
            if name == "." {
                continue;
            }
            if name == ".." {
                if real.pop().is_none() {
                    return Err("symlink target leaves the archive root through another symlink");
                }
                continue;
            }
            real.push(name);
            let so_far: PathBuf = real.iter().collect();
            if let Some(next) = self.symlinks.get(&so_far) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err("too many levels of symlinks");
                }
                real.pop();
                push_reversed(&mut pending, next)?;
            }
        }
        Ok(())
    }
}

/// Pushes the components of a relative `target` so that popping yields them in order.
fn push_reversed(pending: &mut Vec<OsString>, target: &Path) -> Result<(), &'static str> {
    let mut parts = Vec::new();
    for component in target.components() {
        match component {
            Component::Normal(name) => parts.push(name.to_os_string()),
            Component::CurDir => parts.push(OsString::from(".")),
            Component::ParentDir => parts.push(OsString::from("..")),
            Component::RootDir | Component::Prefix(_) => return Err("symlink target is absolute"),
        }
    }
    pending.extend(parts.into_iter().rev());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_resolution_stays_inside_or_fails() {
        assert_eq!(
            resolve_lexically(Path::new("dir"), Path::new("..")),
            Some(PathBuf::new())
        );
        assert_eq!(
            resolve_lexically(Path::new("a/b"), Path::new("../c/./d")),
            Some(PathBuf::from("a/c/d"))
        );
        assert_eq!(resolve_lexically(Path::new(""), Path::new("../x")), None);
        assert_eq!(resolve_lexically(Path::new("a"), Path::new("../..")), None);
        assert_eq!(resolve_lexically(Path::new("a"), Path::new("/etc")), None);
    }

    #[test]
    fn physical_resolution_follows_other_symlinks() {
        let mut guard = Guard::default();
        guard
            .symlinks
            .insert(PathBuf::from("link"), PathBuf::from("."));
        assert!(guard
            .resolve_physically(Path::new(""), Path::new("link/x"))
            .is_ok());
        assert!(guard
            .resolve_physically(Path::new(""), Path::new("link/.."))
            .is_err());

        guard
            .symlinks
            .insert(PathBuf::from("a"), PathBuf::from("b"));
        guard
            .symlinks
            .insert(PathBuf::from("b"), PathBuf::from("a"));
        assert_eq!(
            guard.resolve_physically(Path::new(""), Path::new("a/x")),
            Err("too many levels of symlinks")
        );
    }
}
