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

/// Edit distance over characters where swapping two neighbours counts as
/// one edit, the most common typo (`prot` for `port`).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the DP table: two back is needed for swaps.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
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
            ("ab", "ba", 1),
            ("prot", "port", 1),
            ("ca", "abc", 3),
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
        assert_eq!(
            closest("memorysize", &["memorySize", "timeout"]),
            Some("memorySize")
        );
        assert_eq!(closest("role", &["name", "runtime"]), None);
    }
}
