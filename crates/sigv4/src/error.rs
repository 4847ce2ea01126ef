//! Why a request was refused, and how each AWS protocol spells it.

/// A refused signature. The messages are AWS's own, so SDK users see what
/// they would see from AWS (and can search for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Neither an `Authorization` header nor `X-Amz-Algorithm` in the query.
    Missing,
    /// Signature parts are missing or malformed.
    Incomplete(String),
    /// The access key id is not one of the server's keys.
    UnknownKey,
    /// Signature mismatch, wrong scope, or a time outside the window.
    InvalidSignature(String),
}

pub const UNKNOWN_KEY_MESSAGE: &str = "The security token included in the request is invalid.";
pub const MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// What a protocol renders: status, error code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub status: u16,
    pub code: &'static str,
    pub body: String,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            AuthError::Missing => "Missing Authentication Token",
            AuthError::UnknownKey => UNKNOWN_KEY_MESSAGE,
            AuthError::Incomplete(m) | AuthError::InvalidSignature(m) => m,
        }
    }

    /// The rest-json protocol (Lambda): 403, the code in `x-amzn-ErrorType`
    /// and the body `{"message": …}`.
    pub fn rest_json(&self) -> Rendered {
        Rendered {
            status: 403,
            code: self.code(),
            body: serde_json::json!({ "message": self.message() }).to_string(),
        }
    }

    /// The JSON 1.0/1.1 protocols (Kinesis, SQS): 400, the code in the
    /// body's `__type`.
    pub fn json_1_1(&self) -> Rendered {
        Rendered {
            status: 400,
            code: self.code(),
            body: serde_json::json!({ "__type": self.code(), "message": self.message() })
                .to_string(),
        }
    }

    /// As an HTTP response with `Content-Type` and `x-amzn-ErrorType` set.
    pub fn into_response(rendered: Rendered) -> http::Response<String> {
        let mut resp = http::Response::new(rendered.body);
        *resp.status_mut() =
            http::StatusCode::from_u16(rendered.status).unwrap_or(http::StatusCode::FORBIDDEN);
        let headers = resp.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "x-amzn-errortype",
            http::HeaderValue::from_static(rendered.code),
        );
        resp
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for AuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_per_protocol() {
        let cases = [
            (
                AuthError::UnknownKey,
                403,
                "UnrecognizedClientException",
                r#"{"message":"The security token included in the request is invalid."}"#,
            ),
            (
                AuthError::Missing,
                403,
                "MissingAuthenticationTokenException",
                r#"{"message":"Missing Authentication Token"}"#,
            ),
            (
                AuthError::InvalidSignature("x".into()),
                403,
                "InvalidSignatureException",
                r#"{"message":"x"}"#,
            ),
            (
                AuthError::Incomplete("y".into()),
                403,
                "IncompleteSignatureException",
                r#"{"message":"y"}"#,
            ),
        ];
        for (err, status, code, body) in cases {
            let r = err.rest_json();
            assert_eq!((r.status, r.code, r.body.as_str()), (status, code, body));
            let j = err.json_1_1();
            assert_eq!(j.status, 400);
            let v: serde_json::Value = serde_json::from_str(&j.body).unwrap();
            assert_eq!(v["__type"], code);
            assert_eq!(v["message"], err.message());
        }
        let resp = AuthError::into_response(AuthError::UnknownKey.rest_json());
        assert_eq!(resp.status(), 403);
        assert_eq!(
            resp.headers()["x-amzn-errortype"],
            "UnrecognizedClientException"
        );
    }
}
