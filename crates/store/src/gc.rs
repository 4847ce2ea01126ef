//! Garbage collection of artifacts and extracted code that no version
//! references any more (after `rouse rm`, a deploy that drops functions,
//! and at start). Every version of every function keeps its artifact, so
//! rollbacks always find their code.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::artifacts::is_sha256_hex;

/// An uploaded artifact is kept this long before a deploy must reference
/// it: `rouse deploy` uploads, then deploys, and a collection between the
/// two must not take the upload away.
pub const UPLOAD_GRACE: Duration = Duration::from_secs(3600);

/// One entry of `artifacts/` or `code/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) age: Duration,
}

/// What was freed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub artifacts: usize,
    pub code_dirs: usize,
}

/// Which entries go: a digest (`<sha>.tar.gz` in `artifacts/`, `<sha>` in
/// `code/`) no version references, and, past the grace period, leftovers
/// of interrupted uploads and extractions (names starting with `.`).
/// Archives get the grace period (an upload waits for its deploy); code
/// directories do not (they are extracted again from the archive).
pub(crate) fn garbage(
    entries: &[Entry],
    referenced: &HashSet<String>,
    suffix: &str,
    grace: Duration,
) -> Vec<String> {
    entries
        .iter()
        .filter(|e| {
            if e.name.starts_with('.') {
                return e.age >= grace;
            }
            match e.name.strip_suffix(suffix) {
                Some(digest) if is_sha256_hex(digest) => {
                    !referenced.contains(digest) && (suffix.is_empty() || e.age >= grace)
                }
                // Not ours: left alone.
                _ => false,
            }
        })
        .map(|e| e.name.clone())
        .collect()
}

pub(crate) fn entries(dir: &Path, now: SystemTime) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let modified = entry.metadata()?.modified()?;
        let age = now.duration_since(modified).unwrap_or_default();
        out.push(Entry { name, age });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreferenced_digests_and_old_leftovers_go() {
        let kept = "a".repeat(64);
        let dropped = "b".repeat(64);
        let referenced: HashSet<String> = [kept.clone()].into();
        let hour = Duration::from_secs(3600);
        let young = Duration::from_secs(5);
        let e = |name: String, age| Entry { name, age };
        let archives = [
            e(format!("{kept}.tar.gz"), hour),
            e(format!("{dropped}.tar.gz"), hour),
            e(format!("{}.tar.gz", "c".repeat(64)), young),
            e(".upload-x1".into(), hour),
            e(".upload-x2".into(), young),
            e("notes.txt".into(), hour),
        ];
        assert_eq!(
            garbage(&archives, &referenced, ".tar.gz", hour),
            vec![format!("{dropped}.tar.gz"), ".upload-x1".into()]
        );
        let code = [
            e(kept.clone(), young),
            e(dropped.clone(), young),
            e(format!(".{dropped}-tmp"), young),
            e("lost+found".into(), hour),
        ];
        assert_eq!(garbage(&code, &referenced, "", hour), vec![dropped]);
    }
}
