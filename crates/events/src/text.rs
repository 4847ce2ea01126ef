//! Whether a body travels as a UTF-8 string or as base64.

/// Media-type prefixes that mark a body as text.
const TEXT_PREFIXES: [&str; 5] = [
    "text",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/yaml",
];

/// Structured-syntax suffixes (RFC 6839) that mark a body as text.
const TEXT_SUFFIXES: [&str; 3] = ["+xml", "+yaml", "+json"];

/// Decides whether a body with these headers is text, using the rule
/// `lambda-http` applies to responses: any `Content-Encoding` (even an empty
/// one) makes it binary; no `Content-Type` makes it text; otherwise the media
/// type must start with one of `text`, `application/json`,
/// `application/javascript`, `application/xml`, `application/yaml` or end in
/// `+xml`, `+yaml`, `+json` (parameters such as `charset` are ignored).
///
/// Unlike `lambda-http`, the comparison ignores ASCII case, because media
/// types are case-insensitive (RFC 9110 §8.3.1).
pub fn is_text_content(content_type: Option<&str>, content_encoding: Option<&str>) -> bool {
    if content_encoding.is_some() {
        return false;
    }
    let Some(content_type) = content_type else {
        return true;
    };
    let content_type = content_type.trim().to_ascii_lowercase();
    if TEXT_PREFIXES.iter().any(|p| content_type.starts_with(p)) {
        return true;
    }
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    TEXT_SUFFIXES.iter().any(|s| media_type.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::is_text_content;

    #[test]
    fn text_or_binary_table() {
        let cases: &[(Option<&str>, Option<&str>, bool)] = &[
            (None, None, true),
            (Some("text/plain"), None, true),
            (Some("text/html; charset=utf-8"), None, true),
            (Some("Text/HTML"), None, true),
            (Some("application/json"), None, true),
            (Some("application/json; charset=utf-8"), None, true),
            (Some("application/javascript"), None, true),
            (Some("application/xml"), None, true),
            (Some("application/yaml"), None, true),
            (Some("application/vnd.api+json"), None, true),
            (Some("application/problem+json; charset=utf-8"), None, true),
            (Some("image/svg+xml"), None, true),
            (Some("application/x-foo+yaml"), None, true),
            (Some("application/octet-stream"), None, false),
            (Some("image/png"), None, false),
            (Some("application/x-www-form-urlencoded"), None, false),
            (Some("multipart/form-data; boundary=x"), None, false),
            (Some("application/pdf"), None, false),
            (Some(""), None, false),
            // The suffix must end the media type, not a parameter.
            (Some("application/octet-stream; note=a+json"), None, false),
            (Some("text/plain"), Some("gzip"), false),
            (Some("application/json"), Some("br"), false),
            (None, Some("gzip"), false),
            (None, Some(""), false),
        ];
        for (content_type, encoding, expected) in cases {
            assert_eq!(
                is_text_content(*content_type, *encoding),
                *expected,
                "content-type {content_type:?}, content-encoding {encoding:?}"
            );
        }
    }
}
