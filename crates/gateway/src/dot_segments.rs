//! Request paths with dot segments (`/a/../b`, `/a/./b`, and the same
//! spelled `%2e`) normalised per RFC 3986 §5.2.4 before routing, so a
//! route and the app it proxies to see the same path, and `/public/../admin`
//! is routed as the `/admin` it means. A path that climbs above `/` has no
//! meaning on the server and is refused.

use std::borrow::Cow;

/// The path climbs above the root (`/../etc/passwd`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AboveRoot;

/// `path` without dot segments; borrowed (no allocation) when it had none.
pub(crate) fn normalize(path: &str) -> Result<Cow<'_, str>, AboveRoot> {
    if !may_have_dot_segments(path) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out: Vec<&str> = Vec::new();
    let segments = path.strip_prefix('/').unwrap_or(path).split('/');
    let count = segments.clone().count();
    for (i, raw) in segments.enumerate() {
        let last = i + 1 == count;
        match dots(raw) {
            Some(1) => {
                // `/a/.` means the directory `/a/`: keep the trailing slash.
                if last {
                    out.push("");
                }
            }
            Some(2) => {
                if out.pop().is_none() {
                    return Err(AboveRoot);
                }
                if last {
                    out.push("");
                }
            }
            _ => out.push(raw),
        }
    }
    Ok(Cow::Owned(format!("/{}", out.join("/"))))
}

/// A cheap test that skips the work for almost every path.
fn may_have_dot_segments(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.windows(2).any(|w| w == b"/.")
        || bytes
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'2' && (w[2] == b'e' || w[2] == b'E'))
}

/// How many dots a segment is made of (`.`, `%2e`, `.%2E`, ...), if only dots.
fn dots(segment: &str) -> Option<usize> {
    let mut rest = segment.as_bytes();
    let mut n = 0;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            rest = &rest[1..];
        } else if rest.len() >= 3 && rest[0] == b'%' && rest[1] == b'2' && (rest[2] | 0x20) == b'e'
        {
            rest = &rest[3..];
        } else {
            return None;
        }
        n += 1;
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_removed() {
        let table = [
            ("/", Ok("/")),
            ("/a/b", Ok("/a/b")),
            ("/a/../b", Ok("/b")),
            ("/a/./b", Ok("/a/b")),
            ("/a/b/..", Ok("/a/")),
            ("/a/b/.", Ok("/a/b/")),
            ("/a/%2e%2e/b", Ok("/b")),
            ("/a/%2E%2e/b", Ok("/b")),
            ("/a/.%2e/b", Ok("/b")),
            ("/a/%2e/b", Ok("/a/b")),
            ("/public/../admin", Ok("/admin")),
            ("/a//../b", Ok("/a/b")),
            // Dots inside a segment are names, not dot segments.
            ("/a/.well-known/x", Ok("/a/.well-known/x")),
            ("/a/..b/c", Ok("/a/..b/c")),
            ("/a/...", Ok("/a/...")),
            ("/file%2etxt", Ok("/file%2etxt")),
            ("/..", Err(AboveRoot)),
            ("/../etc/passwd", Err(AboveRoot)),
            ("/a/../../b", Err(AboveRoot)),
            ("/%2e%2e/x", Err(AboveRoot)),
        ];
        for (path, expected) in table {
            let got = normalize(path).map(Cow::into_owned);
            assert_eq!(got, expected.map(String::from), "{path}");
        }
    }

    #[test]
    fn paths_without_dot_segments_are_not_copied() {
        for path in ["/", "/a/b.c", "/x.y/z", "/%41"] {
            assert!(matches!(normalize(path), Ok(Cow::Borrowed(_))), "{path}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::normalize;
    use proptest::prelude::*;

    /// Paths built from the pieces that matter: names, `.`, `..`, their
    /// `%2e` spellings and empty segments.
    fn path() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("%2e".to_string()),
            Just("%2E%2e".to_string()),
            Just(String::new()),
        ];
        proptest::collection::vec(segment, 0..8).prop_map(|s| format!("/{}", s.join("/")))
    }

    proptest! {
        #[test]
        fn normalised_paths_have_no_dot_segments_and_stay_put(p in path()) {
            if let Ok(once) = normalize(&p) {
                for segment in once.split('/') {
                    let lower = segment.to_ascii_lowercase();
                    prop_assert!(!matches!(lower.as_str(), "." | ".." | "%2e" | "%2e%2e"), "{p} -> {once}");
                }
                prop_assert!(once.starts_with('/'), "{p} -> {once}");
                let twice = normalize(&once).map(|c| c.into_owned());
                prop_assert_eq!(twice.as_deref(), Ok(&*once));
            }
        }
    }
}
