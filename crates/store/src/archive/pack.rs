//! Packing a project directory into a gzip'd tar, honouring ignore patterns.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use tar::{EntryType, Header};

use super::ArchiveError;

/// Compiled ignore patterns, gitignore-flavoured: a leading `/` anchors the
/// pattern to the project root, a trailing `/` matches directories only, `*`
/// does not cross `/` (use `**` for that). Unanchored patterns also match the
/// bare file name, so `*.pyc` or `__pycache__` apply at any depth.
pub(crate) struct Ignore {
    path_any: GlobSet,
    name_any: GlobSet,
    path_dir: GlobSet,
    name_dir: GlobSet,
}

fn bad(pattern: &str, message: impl Into<String>) -> ArchiveError {
    ArchiveError::BadPattern {
        pattern: pattern.to_string(),
        message: message.into(),
    }
}

impl Ignore {
    pub(crate) fn new<'p>(
        patterns: impl IntoIterator<Item = &'p str>,
    ) -> Result<Self, ArchiveError> {
        let mut path_any = GlobSetBuilder::new();
        let mut name_any = GlobSetBuilder::new();
        let mut path_dir = GlobSetBuilder::new();
        let mut name_dir = GlobSetBuilder::new();
        for original in patterns {
            let mut pattern = original.trim();
            if pattern.starts_with('!') {
                // Refused rather than ignored: silently packaging (or not) a
                // file the user meant to re-include would be worse.
                return Err(bad(original, "negated patterns (`!`) are not supported"));
            }
            let anchored = pattern.starts_with('/');
            pattern = pattern.trim_start_matches('/');
            let dir_only = pattern.ends_with('/');
            pattern = pattern.trim_end_matches('/');
            if pattern.is_empty() {
                return Err(bad(original, "pattern matches nothing"));
            }
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| bad(original, e.kind().to_string()))?;
            let (path_set, name_set) = if dir_only {
                (&mut path_dir, &mut name_dir)
            } else {
                (&mut path_any, &mut name_any)
            };
            path_set.add(glob.clone());
            if !anchored {
                name_set.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| bad("", e.to_string()));
        Ok(Ignore {
            path_any: build(path_any)?,
            name_any: build(name_any)?,
            path_dir: build(path_dir)?,
            name_dir: build(name_dir)?,
        })
    }

    /// Ancestors are not re-checked: an ignored directory is never descended into.
    pub(crate) fn is_ignored(&self, rel: &Path, name: &OsStr, is_dir: bool) -> bool {
        self.path_any.is_match(rel)
            || self.name_any.is_match(name)
            || (is_dir && (self.path_dir.is_match(rel) || self.name_dir.is_match(name)))
    }
}

/// Adds the path to an I/O error, which otherwise only says "not found".
fn at(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |e| ArchiveError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Counts file bytes as the tar builder pulls them, for progress reporting.
struct Counting<'p, R> {
    inner: R,
    read: u64,
    total: &'p mut u64,
    progress: &'p mut dyn FnMut(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        *self.total += n as u64;
        (self.progress)(*self.total);
        Ok(n)
    }
}

pub(crate) struct Packer<'a> {
    root: &'a Path,
    ignore: Ignore,
    builder: tar::Builder<GzEncoder<Vec<u8>>>,
    total: u64,
    progress: &'a mut dyn FnMut(u64),
}

fn header(kind: EntryType, meta: &fs::Metadata, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    // Permission bits only; owners are meaningless on the server, so they are
    // zeroed, which also keeps the bytes the same across machines.
    h.set_mode(meta.mode() & 0o777);
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl<'a> Packer<'a> {
    pub(crate) fn new(root: &'a Path, ignore: Ignore, progress: &'a mut dyn FnMut(u64)) -> Self {
        Packer {
            root,
            ignore,
            builder: tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default())),
            total: 0,
            progress,
        }
    }

    pub(crate) fn pack(mut self) -> Result<Vec<u8>, ArchiveError> {
        self.walk(Path::new(""))?;
        let gz = self.builder.into_inner()?;
        Ok(gz.finish()?)
    }

    fn walk(&mut self, rel: &Path) -> Result<(), ArchiveError> {
        let dir = self.root.join(rel);
        let mut names = fs::read_dir(&dir)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(at(&dir))?;
        // Sorted, so the same tree gives the same archive bytes.
        names.sort();
        for name in names {
            let child_rel = rel.join(&name);
            let child = self.root.join(&child_rel);
            let meta = fs::symlink_metadata(&child).map_err(at(&child))?;
            let kind = meta.file_type();
            if self.ignore.is_ignored(&child_rel, &name, kind.is_dir()) {
                continue;
            }
            if kind.is_dir() {
                let mut h = header(EntryType::Directory, &meta, 0);
                self.builder.append_data(&mut h, &child_rel, io::empty())?;
                self.walk(&child_rel)?;
            } else if kind.is_file() {
                let size = meta.len();
                let mut h = header(EntryType::Regular, &meta, size);
                let file = File::open(&child).map_err(at(&child))?;
                // `take` keeps the entry at the size in its header even if
                // the file grows while being read.
                let mut data = Counting {
                    inner: file.take(size),
                    read: 0,
                    total: &mut self.total,
                    progress: &mut *self.progress,
                };
                self.builder.append_data(&mut h, &child_rel, &mut data)?;
                if data.read != size {
                    // A short entry would shift every later header.
                    return Err(at(&child)(io::Error::other(
                        "file shrank while it was being packed",
                    )));
                }
            } else if kind.is_symlink() {
                let target = fs::read_link(&child).map_err(at(&child))?;
                let mut h = header(EntryType::Symlink, &meta, 0);
                self.builder.append_link(&mut h, &child_rel, &target)?;
            } else {
                return Err(ArchiveError::Unsafe {
                    path: child_rel.to_string_lossy().into_owned(),
                    reason: "not a regular file, directory or symlink (ignore it in .rouseignore)",
                });
            }
        }
        Ok(())
    }
}
