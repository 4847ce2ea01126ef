//! Error bodies and error-type rules of the Runtime API.
//!
//! Two audiences: the runtime, which gets `{"errorMessage","errorType"}` with
//! a status code when it breaks the protocol ([`ApiError`]), and the invoker,
//! which gets the function's error JSON ([`crate::Outcome::Error`]).

use bytes::Bytes;
use http::StatusCode;

/// `MaxPayloadSize` of the Lambda service: 6 MiB + 100 bytes. Applies to
/// buffered responses and error bodies the runtime posts.
pub const MAX_PAYLOAD_SIZE: u64 = 6 * 1024 * 1024 + 100;

/// Largest streamed response forwarded (AWS raised the limit to 200 MB in
/// July 2025); past it the stream ends with [`crate::StreamError::Oversized`].
pub const MAX_STREAMED_RESPONSE_SIZE: u64 = 200 * 1024 * 1024;

/// Content type of error bodies that carry an X-Ray `errorCause`.
pub(crate) const ERROR_CAUSE_CONTENT_TYPE: &str = "application/vnd.aws.lambda.error.cause+json";

/// A protocol violation or limit, answered to the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// The call is not allowed in the current phase (e.g. `next` while an
    /// invocation is outstanding). The string says what happened.
    InvalidStateTransition(String),
    /// The id is not the outstanding invocation (unknown or already answered).
    InvalidRequestId,
    /// A buffered body exceeded [`MAX_PAYLOAD_SIZE`].
    TooLarge,
    /// `Lambda-Runtime-Function-Response-Mode` is neither absent nor `streaming`.
    InvalidResponseMode,
    /// The request body ended early (the connection broke mid-body).
    Truncated,
    /// An extension call without (or with an unknown) identifier.
    ExtensionIdentifier(&'static str),
    NotFound,
    MethodNotAllowed,
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidStateTransition(_) | ApiError::ExtensionIdentifier(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::InvalidRequestId | ApiError::InvalidResponseMode | ApiError::Truncated => {
                StatusCode::BAD_REQUEST
            }
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The JSON body; messages that runtimes or tests may match are the exact
    /// strings the Lambda service uses.
    pub(crate) fn body(&self) -> Bytes {
        match self {
            ApiError::InvalidStateTransition(message) => {
                error_json("InvalidStateTransition", message)
            }
            ApiError::InvalidRequestId => error_json("InvalidRequestID", "Invalid request ID"),
            ApiError::TooLarge => error_json(
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_PAYLOAD_SIZE} bytes)."),
            ),
            ApiError::InvalidResponseMode => error_json(
                "InvalidFunctionResponseMode",
                "Invalid function response mode",
            ),
            ApiError::Truncated => {
                error_json("TruncatedHTTPRequest", "HTTP request detected as truncated")
            }
            ApiError::ExtensionIdentifier(error_type) => {
                error_json(error_type, "Missing or unknown Lambda-Extension-Identifier")
            }
            ApiError::NotFound => error_json("NotFound", "No such Runtime API endpoint"),
            ApiError::MethodNotAllowed => {
                error_json("MethodNotAllowed", "Method not allowed on this endpoint")
            }
        }
    }
}

/// `{"errorMessage": message, "errorType": error_type}`.
pub(crate) fn error_json(error_type: &str, message: &str) -> Bytes {
    serde_json::json!({ "errorMessage": message, "errorType": error_type })
        .to_string()
        .into()
}

/// Keeps an error type only if it is `(Runtime|Function).<Capitalised letters>`;
/// otherwise `Function.*` becomes `Function.Unknown` and anything else
/// (including a missing header) `Runtime.Unknown`. The type ends up in logs and
/// metrics, so a runtime must not be able to put arbitrary text there.
pub fn sanitize_error_type(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or("");
    let well_formed = ["Runtime.", "Function."].iter().any(|prefix| {
        raw.strip_prefix(prefix).is_some_and(|name| {
            let mut chars = name.chars();
            chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && name.len() >= 2
                && chars.all(|c| c.is_ascii_alphabetic())
        })
    });
    if well_formed {
        raw.to_string()
    } else if raw.starts_with("Function.") {
        "Function.Unknown".to_string()
    } else {
        "Runtime.Unknown".to_string()
    }
}

/// The body the invoker gets for a runtime's `/error` (or `init/error`) post.
///
/// Valid JSON passes through byte for byte. An `error.cause+json` body loses
/// its `errorCause` (X-Ray data, not for the caller). Anything else is wrapped
/// as `{"errorMessage": <text>, "errorType": <type>}` so the caller can rely on
/// getting JSON.
pub(crate) fn invoker_error_body(
    error_type: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Bytes {
    let is_cause = content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(ERROR_CAUSE_CONTENT_TYPE))
    });
    if is_cause {
        return match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(mut fields)) => {
                fields.remove("errorCause");
                serde_json::Value::Object(fields).to_string().into()
            }
            _ => error_json(error_type, "Invalid error body"),
        };
    }
    if body.is_empty() {
        return error_json(error_type, "Unknown application error occurred");
    }
    if is_json(body) {
        Bytes::copy_from_slice(body)
    } else {
        error_json(error_type, &String::from_utf8_lossy(body))
    }
}

/// Whether `body` parses as one JSON value (without building it).
pub(crate) fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// The `Function.ResponseSizeTooLarge` error an invoker returns when the
/// runtime's response was over [`MAX_PAYLOAD_SIZE`]; `size` comes from
/// [`crate::Outcome::ResponseTooLarge`].
pub fn response_too_large_body(size: u64) -> Bytes {
    error_json(
        "Function.ResponseSizeTooLarge",
        &format!(
            "Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD_SIZE} bytes)."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_well_formed_types() {
        assert_eq!(
            sanitize_error_type(Some("Runtime.Unhandled")),
            "Runtime.Unhandled"
        );
        assert_eq!(
            sanitize_error_type(Some("Function.MyError")),
            "Function.MyError"
        );
        assert_eq!(
            sanitize_error_type(Some("Runtime.ImportModuleError")),
            "Runtime.ImportModuleError"
        );
    }

    #[test]
    fn sanitize_replaces_everything_else() {
        assert_eq!(
            sanitize_error_type(Some("Function.my_error")),
            "Function.Unknown"
        );
        assert_eq!(
            sanitize_error_type(Some("Function.Error2")),
            "Function.Unknown"
        );
        assert_eq!(sanitize_error_type(Some("Function.")), "Function.Unknown");
        assert_eq!(sanitize_error_type(Some("Function.X")), "Function.Unknown");
        assert_eq!(
            sanitize_error_type(Some("Runtime.lower")),
            "Runtime.Unknown"
        );
        assert_eq!(sanitize_error_type(Some("unhandled")), "Runtime.Unknown");
        assert_eq!(sanitize_error_type(Some("ValueError")), "Runtime.Unknown");
        assert_eq!(sanitize_error_type(Some("xRuntime.Foo")), "Runtime.Unknown");
        assert_eq!(
            sanitize_error_type(Some("Runtime.Foo Bar")),
            "Runtime.Unknown"
        );
        assert_eq!(sanitize_error_type(Some("")), "Runtime.Unknown");
        assert_eq!(sanitize_error_type(None), "Runtime.Unknown");
    }

    #[test]
    fn error_cause_is_stripped() {
        let body =
            br#"{"errorMessage":"m","errorType":"T","stackTrace":[],"errorCause":{"paths":[]}}"#;
        let out = invoker_error_body("Runtime.Unknown", Some(ERROR_CAUSE_CONTENT_TYPE), body);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["errorMessage"], "m");
        assert!(value.get("errorCause").is_none());
        assert!(value.get("stackTrace").is_some());
    }

    #[test]
    fn bad_error_cause_body() {
        let out = invoker_error_body("Runtime.Unknown", Some(ERROR_CAUSE_CONTENT_TYPE), b"nope");
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["errorMessage"], "Invalid error body");
    }

    #[test]
    fn json_passes_through_and_text_is_wrapped() {
        let json = br#"{"errorMessage":"x","errorType":"E"}"#;
        assert_eq!(
            &invoker_error_body("Runtime.Unknown", None, json)[..],
            &json[..]
        );
        let out = invoker_error_body("Function.Oops", Some("text/plain"), b"plain text");
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["errorMessage"], "plain text");
        assert_eq!(value["errorType"], "Function.Oops");
    }

    #[test]
    fn too_large_messages() {
        assert_eq!(
            &ApiError::TooLarge.body()[..],
            br#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#
        );
        let value: serde_json::Value =
            serde_json::from_slice(&response_too_large_body(7_000_000)).unwrap();
        assert_eq!(value["errorType"], "Function.ResponseSizeTooLarge");
        assert_eq!(
            value["errorMessage"],
            "Response payload size (7000000 bytes) exceeded maximum allowed payload size (6291556 bytes)."
        );
    }
}
