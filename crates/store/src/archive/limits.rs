//! How big an artifact may be once unpacked, after Lambda's limits: 250 MB
//! of code by default, a cap on the number of entries, and a ratio check
//! against decompression bombs (a few MB of gzip that unpack to gigabytes).
//! Checked while the archive is read, before an oversized entry's data is.

use super::ArchiveError;

/// Lambda's limit on unpacked code: 250 MB.
pub const DEFAULT_MAX_UNPACKED: u64 = 250 * 1000 * 1000;
/// More entries than any real project ships; each costs an inode and a
/// hard link per instance.
pub const DEFAULT_MAX_FILES: u64 = 100_000;
/// Source code and binaries compress 2-10x; zero-filled files far more.
pub const DEFAULT_MAX_RATIO: u64 = 200;
/// Below this much unpacked data the ratio is not checked: a small
/// archive of zeros is harmless.
const RATIO_FLOOR: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_unpacked_bytes: u64,
    pub max_files: u64,
    /// Most unpacked bytes per compressed byte read.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unpacked_bytes: DEFAULT_MAX_UNPACKED,
            max_files: DEFAULT_MAX_FILES,
            max_ratio: DEFAULT_MAX_RATIO,
        }
    }
}

/// What the archive has held so far.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    entries: u64,
    unpacked: u64,
}

impl Tally {
    /// One more entry declaring `size` bytes, before its data is read.
    pub(crate) fn entry(&mut self, size: u64, limits: &Limits) -> Result<(), ArchiveError> {
        self.entries += 1;
        self.unpacked = self.unpacked.saturating_add(size);
        if self.entries > limits.max_files {
            return Err(ArchiveError::TooLarge(format!(
                "more than {} entries",
                limits.max_files
            )));
        }
        if self.unpacked > limits.max_unpacked_bytes {
            return Err(ArchiveError::TooLarge(format!(
                "more than {} bytes unpacked (the limit; `rouse serve --max-unpacked-mb` raises it)",
                limits.max_unpacked_bytes
            )));
        }
        Ok(())
    }
}

/// Whether `unpacked` bytes out of `compressed` bytes in is a
/// decompression bomb; checked on every read of the decompressed stream,
/// so a bomb stops early even inside one huge entry.
pub(crate) fn is_bomb(unpacked: u64, compressed: u64, limits: &Limits) -> bool {
    unpacked > RATIO_FLOOR && unpacked / compressed.max(1) > limits.max_ratio
}

/// The message for a bomb caught at `unpacked` from `compressed`.
pub(crate) fn bomb(unpacked: u64, compressed: u64, limits: &Limits) -> ArchiveError {
    ArchiveError::TooLarge(format!(
        "{unpacked} bytes unpacked from {compressed} compressed: more than {}x looks like a decompression bomb",
        limits.max_ratio
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    #[test]
    fn entries_count_against_the_limits() {
        let limits = Limits {
            max_unpacked_bytes: 100 * MB,
            max_files: 3,
            max_ratio: 10,
        };
        // (declared sizes, refused)
        let table: &[(&[u64], bool)] = &[
            (&[MB, MB], false),
            (&[MB, MB, MB, MB], true),
            (&[60 * MB, 40 * MB], false),
            (&[60 * MB, 41 * MB], true),
        ];
        for (sizes, refused) in table {
            let mut tally = Tally::default();
            let result = sizes
                .iter()
                .try_for_each(|size| tally.entry(*size, &limits));
            assert_eq!(result.is_err(), *refused, "{sizes:?}");
        }
        // (unpacked, compressed, a bomb at 10x)
        let ratios = [
            // Under the floor, any ratio passes.
            (30 * MB, 1, false),
            // Over it, 10x passes and 11x does not.
            (50 * MB, 5 * MB, false),
            (55 * MB, 5 * MB, true),
            (55 * MB, 0, true),
        ];
        for (unpacked, compressed, expected) in ratios {
            assert_eq!(
                is_bomb(unpacked, compressed, &limits),
                expected,
                "{unpacked} from {compressed}"
            );
        }
    }
}
