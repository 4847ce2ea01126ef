//! Shared builders for the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use rouse_events::{HttpRequest, RequestContext};
use serde_json::Value;

/// The client every test request comes from (a documentation address).
pub(crate) const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// A request with the given headers (repeats allowed, order kept).
pub(crate) fn request(
    method: Method,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpRequest {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    HttpRequest {
        method,
        path: path.to_string(),
        query: query.map(str::to_string),
        version: Version::HTTP_11,
        headers: map,
        body: Bytes::copy_from_slice(body),
        source_ip: CLIENT_IP,
    }
}

/// A bare GET with no headers, query or body.
pub(crate) fn get(path: &str) -> HttpRequest {
    request(Method::GET, path, None, &[], b"")
}

/// Route facts for an API `1a2b3c4d5e` in eu-west-1, stage `dev`, at
/// 2020-05-15T06:01:09.123Z, on the catch-all route.
pub(crate) fn context() -> RequestContext {
    RequestContext {
        resource: None,
        any_method: false,
        path_params: Vec::new(),
        stage: "dev".to_string(),
        request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef".to_string(),
        time_epoch_ms: 1_589_522_469_123,
        account_id: "123456789012".to_string(),
        api_id: "1a2b3c4d5e".to_string(),
        domain_name: "1a2b3c4d5e.execute-api.eu-west-1.amazonaws.com".to_string(),
        region: "eu-west-1".to_string(),
        function_name: "shop-dev-api".to_string(),
    }
}

/// The same context on a templated route.
pub(crate) fn routed(template: &str, params: &[(&str, &str)]) -> RequestContext {
    RequestContext {
        resource: Some(template.to_string()),
        path_params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..context()
    }
}

/// A JSON fixture from `tests/fixtures/`.
pub(crate) fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Raw bytes of a JSON fixture, for feeding `from_result` exactly.
pub(crate) fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first 16 bytes of a PNG file: signature plus the IHDR chunk header,
/// which is not valid UTF-8.
pub(crate) const PNG_HEAD: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
