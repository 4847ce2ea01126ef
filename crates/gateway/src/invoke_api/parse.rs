//! What an Invoke API call asks for, read from its path, query and headers
//! before anything is looked up; and the checks its payload must pass.

use base64::Engine;
use bytes::Bytes;
use http::HeaderMap;

use super::error::InvokeError;
use crate::aws::{FunctionRef, InvocationType};
use crate::body::BoxError;

/// Synchronous request payload limit (6 MB), as on Lambda.
pub(crate) const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Asynchronous (`Event`) payload limit.
pub(crate) const MAX_ASYNC_PAYLOAD: usize = 256 * 1024;

/// One Invoke API call, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvokeRequest {
    pub function: String,
    /// From `name:qualifier` or `?Qualifier=` (which must agree).
    pub qualifier: Option<String>,
    pub kind: InvocationType,
    /// `X-Amz-Log-Type: Tail`: answer with the log tail.
    pub tail: bool,
    /// The decoded `X-Amz-Client-Context` JSON.
    pub client_context: Option<String>,
    pub trace_id: Option<String>,
}

impl InvokeRequest {
    /// The largest payload this kind of call accepts.
    pub(crate) fn payload_limit(&self) -> usize {
        match self.kind {
            InvocationType::Event => MAX_ASYNC_PAYLOAD,
            InvocationType::RequestResponse | InvocationType::DryRun => MAX_SYNC_PAYLOAD,
        }
    }
}

/// Reads the call from what classification made of the path and from the
/// query and headers; errors in the order Lambda reports them.
pub(crate) fn parse(
    target: Result<FunctionRef, String>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<InvokeRequest, InvokeError> {
    let target = target.map_err(InvokeError::InvalidParameter)?;
    let in_query = query_param(query, "Qualifier");
    if let (Some(in_name), Some(in_query)) = (&target.qualifier, &in_query) {
        if in_name != in_query {
            return Err(InvokeError::InvalidParameter(format!(
                "The derived qualifier from the function name does not match the specified qualifier ({in_name} and {in_query})."
            )));
        }
    }
    let kind = InvocationType::parse(header_str(headers, "x-amz-invocation-type"))
        .map_err(InvokeError::InvalidParameter)?;
    let client_context = header_str(headers, "x-amz-client-context")
        .map(decode_client_context)
        .transpose()
        .map_err(|()| {
            InvokeError::InvalidContent(
                "Client context must be a valid Base64-encoded JSON object.",
            )
        })?;
    Ok(InvokeRequest {
        qualifier: target.qualifier.or(in_query),
        function: target.name,
        kind,
        tail: header_str(headers, "x-amz-log-type") == Some("Tail"),
        client_context,
        trace_id: header_str(headers, "x-amzn-trace-id").map(str::to_string),
    })
}

/// Why the body could not be read within `limit` bytes.
pub(crate) fn body_error(err: &BoxError, limit: usize) -> InvokeError {
    if err.is::<http_body_util::LengthLimitError>() {
        InvokeError::TooLarge { limit }
    } else {
        InvokeError::InvalidContent("Could not read the request body")
    }
}

/// The payload the function gets: JSON, with an empty (or blank) body
/// meaning `{}`, which is what SDKs send without `Payload`.
pub(crate) fn check_payload(payload: Bytes) -> Result<Bytes, InvokeError> {
    let payload = if payload.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        payload
    };
    if serde_json::from_slice::<serde_json::Value>(&payload).is_err() {
        return Err(InvokeError::InvalidContent(
            "Could not parse request body into json",
        ));
    }
    Ok(payload)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.replace("%24", "$"))
    })
}

/// `X-Amz-Client-Context` is base64 of a JSON object; the runtime gets the JSON.
fn decode_client_context(raw: &str) -> Result<String, ()> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| ())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| ())?;
    if !value.is_object() {
        return Err(());
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn client_context_must_be_base64_json_object() {
        let ok = base64::engine::general_purpose::STANDARD.encode(r#"{"custom":{"a":1}}"#);
        assert_eq!(decode_client_context(&ok).unwrap(), r#"{"custom":{"a":1}}"#);
        assert!(decode_client_context("not base64!").is_err());
        let array = base64::engine::general_purpose::STANDARD.encode("[1]");
        assert!(decode_client_context(&array).is_err());
    }

    #[test]
    fn qualifier_from_the_query() {
        assert_eq!(
            query_param(Some("Qualifier=%24LATEST"), "Qualifier").as_deref(),
            Some("$LATEST")
        );
        assert_eq!(query_param(Some("a=b"), "Qualifier"), None);
        assert_eq!(query_param(None, "Qualifier"), None);
    }

    fn target(name: &str, qualifier: Option<&str>) -> Result<FunctionRef, String> {
        Ok(FunctionRef {
            name: name.into(),
            qualifier: qualifier.map(Into::into),
        })
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn request(qualifier: Option<&str>, kind: InvocationType) -> InvokeRequest {
        InvokeRequest {
            function: "hello".into(),
            qualifier: qualifier.map(Into::into),
            kind,
            tail: false,
            client_context: None,
            trace_id: None,
        }
    }

    #[test]
    fn parse_reads_the_call() {
        use InvocationType::*;
        use InvokeError::*;
        let context = base64::engine::general_purpose::STANDARD.encode(r#"{"a":1}"#);
        let mismatch = "The derived qualifier from the function name does not match the specified qualifier (live and 3).";
        let bad_type = InvocationType::parse(Some("event")).unwrap_err();
        let bad_context = "Client context must be a valid Base64-encoded JSON object.";
        let tailed = InvokeRequest {
            tail: true,
            ..request(None, DryRun)
        };
        let with_context = InvokeRequest {
            client_context: Some(r#"{"a":1}"#.into()),
            trace_id: Some("Root=1-a".into()),
            ..request(None, RequestResponse)
        };
        // (target, query, headers, expected)
        #[rustfmt::skip]
        let cases: Vec<(_, Option<&str>, HeaderMap, Result<InvokeRequest, InvokeError>)> = vec![
            (target("hello", None), None, headers(&[]), Ok(request(None, RequestResponse))),
            (target("hello", None), Some("Qualifier=%24LATEST"), headers(&[]), Ok(request(Some("$LATEST"), RequestResponse))),
            (target("hello", Some("live")), Some("Qualifier=live"), headers(&[("x-amz-invocation-type", "Event")]),
                Ok(request(Some("live"), Event))),
            (target("hello", Some("live")), Some("Qualifier=3"), headers(&[]), Err(InvalidParameter(mismatch.into()))),
            (Err("invalid function name: a b".into()), None, headers(&[]), Err(InvalidParameter("invalid function name: a b".into()))),
            (target("hello", None), None, headers(&[("x-amz-invocation-type", "event")]), Err(InvalidParameter(bad_type))),
            (target("hello", None), None, headers(&[("x-amz-invocation-type", "DryRun"), ("x-amz-log-type", "Tail")]), Ok(tailed)),
            (target("hello", None), None, headers(&[("x-amz-client-context", &context), ("x-amzn-trace-id", "Root=1-a")]),
                Ok(with_context)),
            (target("hello", None), None, headers(&[("x-amz-client-context", "W10=")]), Err(InvalidContent(bad_context))),
        ];
        for (target, query, headers, expected) in cases {
            assert_eq!(
                parse(target.clone(), query, &headers),
                expected,
                "{target:?} {query:?} {headers:?}"
            );
        }
    }

    #[test]
    fn event_payloads_have_the_smaller_limit() {
        use InvocationType::*;
        let cases = [
            (RequestResponse, MAX_SYNC_PAYLOAD),
            (DryRun, MAX_SYNC_PAYLOAD),
            (Event, MAX_ASYNC_PAYLOAD),
        ];
        for (kind, limit) in cases {
            assert_eq!(request(None, kind).payload_limit(), limit, "{kind:?}");
        }
    }

    #[test]
    fn payloads_must_be_json_and_empty_means_an_empty_object() {
        let bad = Err(InvokeError::InvalidContent(
            "Could not parse request body into json",
        ));
        type Case = (&'static [u8], Result<&'static [u8], InvokeError>);
        let cases: [Case; 5] = [
            (b"", Ok(b"{}")),
            (b" \n", Ok(b"{}")),
            (br#"{"a":1}"#, Ok(br#"{"a":1}"#)),
            (b"[1, 2]", Ok(b"[1, 2]")),
            (b"{nope", bad),
        ];
        for (payload, expected) in cases {
            let got = check_payload(Bytes::from_static(payload));
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                expected,
                "{payload:?}"
            );
        }
    }

    #[tokio::test]
    async fn unreadable_bodies() {
        use http_body_util::{BodyExt, Full, Limited};
        let body = Full::new(Bytes::from_static(b"12345678901"));
        let Err(too_large) = Limited::new(body, 10).collect().await else {
            panic!("11 bytes fit in 10");
        };
        assert_eq!(
            body_error(&too_large, 10),
            InvokeError::TooLarge { limit: 10 }
        );
        let broken: BoxError = "connection reset".into();
        assert_eq!(
            body_error(&broken, 10),
            InvokeError::InvalidContent("Could not read the request body")
        );
    }
}
