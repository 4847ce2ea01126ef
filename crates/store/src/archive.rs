//! Packing a project directory into a tar.gz and checking/unpacking one safely.

mod extract;
mod guard;
mod limits;
mod pack;

use std::cell::Cell;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive entry {path:?} is unsafe: {reason}")]
    Unsafe { path: String, reason: &'static str },
    #[error("archive is not a valid tar.gz: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad ignore pattern {pattern:?}: {message}")]
    BadPattern { pattern: String, message: String },
    #[error("archive is too large: {0}")]
    TooLarge(String),
}

pub use limits::{Limits, DEFAULT_MAX_FILES, DEFAULT_MAX_RATIO, DEFAULT_MAX_UNPACKED};

/// Paths never packaged, in addition to the project's `.rouseignore` lines.
pub const DEFAULT_IGNORES: &[&str] = &[
    ".git",
    ".rouse",
    ".serverless",
    "target",
    "__pycache__",
    "*.pyc",
    ".DS_Store",
];

/// Packs `dir` into a gzip'd tar in memory, skipping ignored paths (glob patterns
/// matched against the path relative to `dir` and against each component;
/// `DEFAULT_IGNORES` plus `extra_ignores`). Symlinks are stored as symlinks.
/// `progress` is called with the bytes of file content added so far.
///
/// Entries are sorted and owners zeroed, so an unchanged tree packs to the
/// same bytes (and is stored once). The result is run through [`check`], so a
/// project the server would refuse (say, a symlink to `/usr/bin/python3`) is
/// reported here, naming the entry.
pub fn pack_dir(
    dir: &Path,
    extra_ignores: &[String],
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<u8>, ArchiveError> {
    let patterns = DEFAULT_IGNORES
        .iter()
        .copied()
        .chain(extra_ignores.iter().map(String::as_str));
    let ignore = pack::Ignore::new(patterns)?;
    let bytes = pack::Packer::new(dir, ignore, progress).pack()?;
    check(bytes.as_slice())?;
    Ok(bytes)
}

/// Reads the ignore lines of `dir/.rouseignore` (blank lines and `#` comments skipped).
pub fn read_ignore_file(dir: &Path) -> Result<Vec<String>, ArchiveError> {
    let text = match std::fs::read_to_string(dir.join(".rouseignore")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(String::from)
        .collect())
}

/// Checks every entry of a tar.gz without extracting: rejects absolute paths,
/// `..` components, symlinks or hard links whose target leaves the root, and
/// device/fifo entries.
///
/// Also rejected: entries placed beneath a symlink of the archive, duplicate
/// paths, hard links to anything but an earlier file of the archive, and
/// symlinks that leave the root once the archive's other symlinks are followed.
/// The whole gzip stream is read, so a truncated or corrupt upload fails here.
pub fn check(reader: impl std::io::Read) -> Result<(), ArchiveError> {
    check_within(reader, &Limits::default())
}

/// [`check`], and the archive fits `limits`.
pub fn check_within(reader: impl std::io::Read, limits: &Limits) -> Result<(), ArchiveError> {
    walk(reader, limits, |_, _| Ok(()))
}

/// Extracts a tar.gz into `dest` (created), with the same checks as [`check`].
///
/// `dest` should be a fresh directory. Nothing is ever written outside it:
/// directories are created without following symlinks, files with `O_EXCL`,
/// and the archive's symlinks only once the whole archive has passed. On
/// error `dest` may hold part of the archive; callers extract into a temp dir.
pub fn unpack(reader: impl std::io::Read, dest: &Path) -> Result<(), ArchiveError> {
    unpack_within(reader, dest, &Limits::default())
}

/// [`unpack`], refusing (part-way) an archive that does not fit `limits`.
pub fn unpack_within(
    reader: impl std::io::Read,
    dest: &Path,
    limits: &Limits,
) -> Result<(), ArchiveError> {
    let mut out = extract::Dest::new(dest)?;
    walk(reader, limits, |planned, data| match planned {
        guard::Planned::Skip => Ok(()),
        guard::Planned::Dir { path, mode } => out.dir(path, *mode),
        guard::Planned::File { path, mode, mtime } => out.file(path, *mode, *mtime, data),
        guard::Planned::HardLink { path, target } => out.hard_link(path, target),
        guard::Planned::Symlink { path, target } => {
            out.defer_symlink(path, target);
            Ok(())
        }
    })?;
    out.finish()
}

/// Runs every entry through the guard and hands the admitted ones to `each`,
/// then checks what only the whole archive can show.
fn walk<R: Read>(
    reader: R,
    limits: &Limits,
    mut each: impl FnMut(&guard::Planned, &mut dyn Read) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let meter = Rc::new(Meter::default());
    let malformed = |e: io::Error| {
        let (unpacked, compressed) = (meter.unpacked.get(), meter.compressed.get());
        if limits::is_bomb(unpacked, compressed, limits) {
            limits::bomb(unpacked, compressed, limits)
        } else {
            ArchiveError::Malformed(e.to_string())
        }
    };
    let compressed = Counted {
        inner: reader,
        meter: meter.clone(),
    };
    let inflated = Inflated {
        inner: GzDecoder::new(compressed),
        meter: meter.clone(),
        limits: *limits,
    };
    let mut archive = tar::Archive::new(inflated);
    let mut guard = guard::Guard::default();
    let mut tally = limits::Tally::default();
    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        // The declared size first, so an oversized entry is never read.
        tally.entry(entry.size(), limits)?;
        let planned = guard.admit(&entry)?;
        each(&planned, &mut entry).map_err(|err| match err {
            ArchiveError::Io(e) => malformed(e),
            other => other,
        })?;
    }
    // The tar reader stops at the end-of-archive blocks; reading the rest of
    // the gzip stream makes the decoder verify its length and CRC.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(malformed)?;
    guard.finish()
}

/// Bytes in and out of the decompressor, for the ratio check.
#[derive(Default)]
struct Meter {
    compressed: Cell<u64>,
    unpacked: Cell<u64>,
}

/// The upload as read (compressed).
struct Counted<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let count = &self.meter.compressed;
        count.set(count.get() + n as u64);
        Ok(n)
    }
}

/// The decompressed stream, which fails as soon as it has grown more than
/// the ratio allows: entries being skipped are read through here too.
struct Inflated<R> {
    inner: R,
    meter: Rc<Meter>,
    limits: Limits,
}

impl<R: Read> Read for Inflated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let unpacked = &self.meter.unpacked;
        unpacked.set(unpacked.get() + n as u64);
        if limits::is_bomb(unpacked.get(), self.meter.compressed.get(), &self.limits) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "decompression bomb",
            ));
        }
        Ok(n)
    }
}

/// Files of a directory tree, relative, for tests and diagnostics.
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    extract::list_files(dir)
}
