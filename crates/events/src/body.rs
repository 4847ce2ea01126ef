//! Bodies as event and result strings: text verbatim, anything else base64.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::HeaderMap;

use crate::text::is_text_content;

/// A request body ready for the event's `body` / `isBase64Encoded` pair.
pub(crate) struct EventBody {
    pub(crate) text: String,
    pub(crate) base64: bool,
}

/// Encodes a request body for an event (or a response body for a result);
/// `None` when the body is empty (each shape writes "no body" its own way).
///
/// The body is sent as a string when [`is_text_content`] says its headers
/// describe text *and* the bytes are valid UTF-8; a "text" body that is not
/// UTF-8 (e.g. `text/plain; charset=latin1`) is base64-encoded instead,
/// because a JSON string cannot carry it without loss.
pub(crate) fn encode(headers: &HeaderMap, body: &[u8]) -> Option<EventBody> {
    if body.is_empty() {
        return None;
    }
    let content_type = header_str(headers, CONTENT_TYPE);
    let content_encoding = header_str(headers, CONTENT_ENCODING);
    if is_text_content(content_type, content_encoding) {
        if let Ok(text) = std::str::from_utf8(body) {
            return Some(EventBody {
                text: text.to_owned(),
                base64: false,
            });
        }
    }
    Some(EventBody {
        text: STANDARD.encode(body),
        base64: true,
    })
}

/// A header as text. An unreadable value counts as present but empty, which
/// [`is_text_content`] treats as "not text" (as `lambda-http` does).
fn header_str(headers: &HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .map(|value| value.to_str().unwrap_or_default())
}
