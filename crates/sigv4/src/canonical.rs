//! The canonical request: how the signer saw the request, rebuilt from what
//! arrived on the wire.

use http::HeaderMap;

/// `METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED\nHASH`.
pub(crate) fn request(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    authority: Option<&str>,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(method);
    out.push('\n');
    out.push_str(&uri(raw_path));
    out.push('\n');
    out.push_str(&query(raw_query.unwrap_or("")));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(headers, authority, name));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// Non-S3 services: dot segments and empty segments dropped, then the path
/// *as it arrived* (already percent-encoded by the client) encoded again,
/// which is what botocore signs (`%3A` on the wire is `%253A` here).
pub(crate) fn uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::from("/");
    path.push_str(&segments.join("/"));
    if raw_path.ends_with('/') && path != "/" {
        path.push('/');
    }
    encode(path.as_bytes(), true)
}

/// Names and values decoded, re-encoded strictly, sorted by name then
/// value; `X-Amz-Signature` (the presigned signature itself) left out.
pub(crate) fn query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .filter(|(k, _)| k != "X-Amz-Signature")
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Every value of `name`, trimmed with inner runs of spaces collapsed,
/// comma-joined. `host` falls back to the URI authority (HTTP/2 has no
/// Host header).
fn header_value(headers: &HeaderMap, authority: Option<&str>, name: &str) -> String {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| collapse(&String::from_utf8_lossy(v.as_bytes())))
        .collect();
    if values.is_empty() && name == "host" {
        return authority.unwrap_or("").to_string();
    }
    values.join(",")
}

fn collapse(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Percent-encodes all but `A-Za-z0-9-_.~` (and `/` in paths), uppercase hex.
pub(crate) fn encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` sequences to bytes; anything else (including a stray `%`) as is.
pub(crate) fn decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("/a/./b/../c", "/a/c"),
            ("//a//b/", "/a/b/"),
            ("/..", "/"),
            (
                "/2015-03-31/functions/hello%3Alive/invocations",
                "/2015-03-31/functions/hello%253Alive/invocations",
            ),
            ("/a b", "/a%20b"),
        ];
        for (raw, want) in cases {
            assert_eq!(uri(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn queries() {
        let cases = [
            ("", ""),
            ("b=2&a=1", "a=1&b=2"),
            ("a=2&a=1", "a=1&a=2"),
            ("flag", "flag="),
            ("k=a%20b&K=x", "K=x&k=a%20b"),
            ("q=a+b", "q=a%2Bb"),
            ("p=%7e", "p=~"),
            ("X-Amz-Signature=abc&X-Amz-Date=1", "X-Amz-Date=1"),
        ];
        for (raw, want) in cases {
            assert_eq!(query(raw), want, "{raw:?}");
        }
    }
}
