//! "did you mean" for misspelt keys.

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    // Allow roughly one edit per three characters, at least one: `comand` ->
    // `command`, `memorysize` -> `memorySize`, but not `role` -> `name`.
    let budget = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (distance(&word, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // One row of the DP table at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "", 3),
            ("", "abc", 3),
            ("comand", "command", 1),
            ("kitten", "sitting", 3),
            ("handler", "handler", 0),
            ("ab", "ba", 2),
        ] {
            assert_eq!(distance(a, b), d, "{a} -> {b}");
        }
    }

    #[test]
    fn suggestions() {
        let web = ["command", "port", "readiness", "rewrite"];
        assert_eq!(closest("comand", &web), Some("command"));
        assert_eq!(closest("prot", &web), Some("port"));
        assert_eq!(closest("readyness", &web), Some("readiness"));
        assert_eq!(closest("xyz", &web), None);
        assert_eq!(closest("memorysize", &["memorySize", "timeout"]), Some("memorySize"));
        assert_eq!(closest("role", &["name", "runtime"]), None);
    }
}
