//! Query-string splitting and percent-decoding.
//!
//! API Gateway (REST and HTTP API) decodes query keys and values the way an
//! HTML form is decoded: `%XX` becomes a byte and `+` becomes a space
//! (`?sort=-+createdAt` arrives as `"- createdAt"`). ALB passes them raw.

/// Splits a raw query string into its `key=value` pairs, in order, without
/// decoding. A segment without `=` has an empty value (`?flag` →
/// `("flag", "")`); empty segments and empty keys are skipped.
pub(crate) fn raw_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .map(|segment| segment.split_once('=').unwrap_or((segment, "")))
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// Like [`raw_pairs`], with keys and values form-decoded.
pub(crate) fn decoded_pairs(query: &str) -> Vec<(String, String)> {
    raw_pairs(query)
        .into_iter()
        .map(|(key, value)| (decode(&key, true), decode(&value, true)))
        .collect()
}

/// Percent-decodes one path segment; `+` stays a `+` because it is literal
/// in a path. (The gateway decodes the Invoke API's function name with it.)
pub fn decode_path_segment(segment: &str) -> String {
    decode(segment, false)
}

/// Percent-decodes `input`. A `%` not followed by two hex digits is kept as
/// it is (clients do send stray `%`), and bytes that do not form UTF-8 become
/// U+FFFD, since the event carries JSON strings.
fn decode(input: &str, plus_is_space: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let escaped = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?));
                match escaped {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a decoded query key or value: everything but RFC 3986's
/// unreserved characters, so `&`, `=`, `+` and `%` in a value survive the
/// trip back into a query string (a space becomes `%20`).
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            push_escaped(&mut out, byte);
        }
    }
    out
}

/// Which characters a raw (still encoded) URI part may keep as they are.
#[derive(Clone, Copy)]
pub(crate) enum Part {
    Path,
    Query,
}

/// Makes a path or query that may be partly decoded valid in a URI: valid
/// `%XX` escapes and the characters RFC 3986 allows in the part stay as
/// they are; anything else (space, non-ASCII, a stray `%`, `#`, and `?` in
/// a path) is percent-encoded. An already valid input comes back unchanged,
/// so raw paths pass through byte for byte.
pub(crate) fn sanitize(raw: &str, part: Part) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    for (i, &byte) in bytes.iter().enumerate() {
        let keep = match byte {
            b'%' => bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex_value(hex[0]).is_some() && hex_value(hex[1]).is_some()),
            b'?' => matches!(part, Part::Query),
            _ => is_pchar(byte) || byte == b'/',
        };
        if keep {
            out.push(char::from(byte));
        } else {
            push_escaped(&mut out, byte);
        }
    }
    out
}

/// RFC 3986 `pchar` minus `%`: unreserved, sub-delims, `:` and `@`.
fn is_pchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn push_escaped(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn raw_pairs_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("a=1", &[("a", "1")]),
            ("a=1&b=2&a=3", &[("a", "1"), ("b", "2"), ("a", "3")]),
            ("flag", &[("flag", "")]),
            ("a=&b", &[("a", ""), ("b", "")]),
            ("a=1&&b=2&", &[("a", "1"), ("b", "2")]),
            ("=orphan&a=1", &[("a", "1")]),
            ("x=a=b", &[("x", "a=b")]),
            ("q=a%20b+c", &[("q", "a%20b+c")]),
        ];
        for (query, expected) in cases {
            assert_eq!(raw_pairs(query), pairs(expected), "query {query:?}");
        }
    }

    #[test]
    fn decoded_pairs_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("q=a%20b", &[("q", "a b")]),
            ("q=a+b", &[("q", "a b")]),
            ("sort=-+createdAt", &[("sort", "- createdAt")]),
            (
                "email=test%2Balias%40example.com",
                &[("email", "test+alias@example.com")],
            ),
            ("foo%5Ba%5D=foo%5B", &[("foo[a]", "foo[")]),
            ("u=http%3A%2F%2Fx.io%3Fn%3D1", &[("u", "http://x.io?n=1")]),
            ("name=J%C3%BCrgen", &[("name", "Jürgen")]),
            ("pct=100%", &[("pct", "100%")]),
            ("bad=%zz%4", &[("bad", "%zz%4")]),
            ("lower=%e2%82%ac", &[("lower", "€")]),
            ("bin=%ff", &[("bin", "\u{fffd}")]),
        ];
        for (query, expected) in cases {
            assert_eq!(decoded_pairs(query), pairs(expected), "query {query:?}");
        }
    }

    #[test]
    fn encode_component_table() {
        let cases = [
            ("plain", "plain"),
            ("a b", "a%20b"),
            ("a+b&c=d", "a%2Bb%26c%3Dd"),
            ("100%", "100%25"),
            ("caf\u{e9}", "caf%C3%A9"),
            ("-._~", "-._~"),
            ("", ""),
        ];
        for (text, expected) in cases {
            assert_eq!(encode_component(text), expected, "{text:?}");
            // What API Gateway decodes is what was encoded.
            assert_eq!(
                decoded_pairs(&format!("k={}", encode_component(text))),
                pairs(&[("k", text)])
            );
        }
    }

    #[test]
    fn sanitize_table() {
        let cases = [
            ("/pets/7", Part::Path, "/pets/7"),
            ("/a%20b/c%2Fd", Part::Path, "/a%20b/c%2Fd"),
            ("/a b", Part::Path, "/a%20b"),
            ("/caf\u{e9}", Part::Path, "/caf%C3%A9"),
            ("/100%", Part::Path, "/100%25"),
            ("/%zz", Part::Path, "/%25zz"),
            ("/what?#", Part::Path, "/what%3F%23"),
            ("/@:!$&'()*+,;=", Part::Path, "/@:!$&'()*+,;="),
            ("a=1&b=x%2By?/", Part::Query, "a=1&b=x%2By?/"),
            ("q=a b#", Part::Query, "q=a%20b%23"),
            (
                "x=\"<>\\^`{|}",
                Part::Query,
                "x=%22%3C%3E%5C%5E%60%7B%7C%7D",
            ),
        ];
        for (raw, part, expected) in cases {
            let clean = sanitize(raw, part);
            assert_eq!(clean, expected, "{raw:?}");
            assert_eq!(sanitize(&clean, part), clean, "idempotent for {raw:?}");
        }
    }

    #[test]
    fn path_segments_keep_plus() {
        assert_eq!(decode_path_segment("a+b%20c%2Fd"), "a+b c/d");
    }
}
