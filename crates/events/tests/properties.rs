//! Properties over generated requests and results: whatever a client sends,
//! every event shape parses as the official type, `from_event` (the
//! adapter's direction) gives back the request the gateway saw, and no
//! handler result makes the conversion panic.

mod common;

use aws_lambda_events::alb::AlbTargetGroupRequest;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use bytes::Bytes;
use common::{context, CLIENT_IP};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use proptest::prelude::*;
use rouse_events::{detect, from_event, from_result, to_event, HttpRequest, Shape};
use serde_json::Value;

const SHAPES: [Shape; 5] = [
    Shape::RestV1,
    Shape::HttpApiV2,
    Shape::Alb { multi_value: false },
    Shape::Alb { multi_value: true },
    Shape::FunctionUrl,
];

/// A path segment as clients send them: unreserved characters and
/// percent-escapes (never `.`/`..` alone: the gateway has normalised those).
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_~-]{1,8}",
        "[a-z]{1,3}%[0-9A-F]{2}[a-z]{0,3}",
        "[a-z]{1,4}\\.[a-z]{1,3}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 0..5).prop_map(|s| format!("/{}", s.join("/")))
}

/// Query strings with distinct keys, so map-shaped events (which keep one
/// value per key and no order) still say everything.
fn query() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(
        proptest::collection::btree_map("[a-z]{1,6}", "[A-Za-z0-9]{0,6}", 1..4).prop_map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
    )
}

/// Headers with distinct names and single values; framing headers and
/// cookies (which payload 2.0 moves to their own field) are left out.
fn headers() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::btree_map("x-[a-z0-9]{1,10}", "[!-~]([ -~]{0,20}[!-~])?", 0..6).prop_map(
        |m| {
            let mut map = HeaderMap::new();
            for (name, value) in m {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    map.insert(name, value);
                }
            }
            map
        },
    )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::PATCH),
        Just(Method::OPTIONS),
    ]
}

/// A body either as text (with a text content type) or as any bytes (with
/// a binary one), so both sides of the base64 rule are exercised.
fn body() -> impl Strategy<Value = (Bytes, &'static str)> {
    prop_oneof![
        "[ -~\n]{0,64}".prop_map(|s| (Bytes::from(s), "application/json")),
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| (Bytes::from(b), "application/octet-stream")),
    ]
}

fn request() -> impl Strategy<Value = HttpRequest> {
    (method(), path(), query(), headers(), body()).prop_map(
        |(method, path, query, mut headers, (body, content_type))| {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(content_type),
            );
            HttpRequest {
                method,
                path,
                query,
                version: Version::HTTP_11,
                headers,
                body,
                source_ip: CLIENT_IP,
            }
        },
    )
}

fn parses_as_official_type(shape: Shape, event: &Value) -> Result<(), String> {
    let v = event.clone();
    let parsed = match shape {
        Shape::RestV1 => serde_json::from_value::<ApiGatewayProxyRequest>(v).map(drop),
        Shape::HttpApiV2 => serde_json::from_value::<ApiGatewayV2httpRequest>(v).map(drop),
        Shape::Alb { .. } => serde_json::from_value::<AlbTargetGroupRequest>(v).map(drop),
        Shape::FunctionUrl => serde_json::from_value::<LambdaFunctionUrlRequest>(v).map(drop),
    };
    parsed.map_err(|e| format!("{shape:?}: {e} in {event}"))
}

/// A query's `k=v` pairs in key order: map-shaped events keep no order.
fn sorted_pairs(query: Option<&str>) -> Vec<String> {
    let mut pairs: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    pairs.sort();
    pairs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_event_parses_and_converts_back(req in request()) {
        for shape in SHAPES {
            let event = to_event(shape, &req, &context());
            prop_assert!(parses_as_official_type(shape, &event).is_ok(), "{:?}", parses_as_official_type(shape, &event));
            let back = from_event(shape, &event);
            prop_assert!(back.is_ok(), "{shape:?}: {:?} for {event}", back.err());
            let Ok(back) = back else { continue };
            prop_assert_eq!(&back.method, &req.method, "{:?}", shape);
            prop_assert_eq!(&back.body, &req.body, "{:?}", shape);
            prop_assert_eq!(&back.path, &req.path, "{:?}", shape);
            prop_assert_eq!(
                sorted_pairs(back.query.as_deref()),
                sorted_pairs(req.query.as_deref()),
                "{:?}", shape
            );
            for (name, value) in &req.headers {
                prop_assert_eq!(back.headers.get(name), Some(value), "{:?} {}", shape, name);
            }
        }
    }

    #[test]
    fn the_shape_is_recognised(req in request()) {
        for shape in SHAPES {
            let event = to_event(shape, &req, &context());
            let seen = detect(&event);
            // ALB events look alike in both header modes until a header or
            // query repeats, so only the family is certain.
            match shape {
                Shape::Alb { .. } => prop_assert!(matches!(seen, Some(Shape::Alb { .. })), "{seen:?}"),
                _ => prop_assert_eq!(seen, Some(shape)),
            }
        }
    }

    #[test]
    fn any_result_bytes_give_a_response_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        for shape in SHAPES {
            let _ = from_result(shape, &bytes);
        }
    }

    #[test]
    fn any_result_object_gives_a_response_or_an_error(
        status in prop_oneof![Just(Value::Null), any::<i64>().prop_map(Value::from), "[0-9a-z]{0,4}".prop_map(Value::from)],
        body in prop_oneof![Just(Value::Null), "[ -~]{0,16}".prop_map(Value::from), any::<bool>().prop_map(Value::from)],
        encoded in prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from), "[a-z]{0,3}".prop_map(Value::from)],
        header in "[ -~]{0,12}",
    ) {
        let result = serde_json::json!({
            "statusCode": status,
            "body": body,
            "isBase64Encoded": encoded,
            "headers": { header.clone(): header },
            "multiValueHeaders": { "x": [header] },
            "cookies": ["a=b", 7],
        });
        let bytes = serde_json::to_vec(&result).unwrap_or_default();
        for shape in SHAPES {
            if let Ok(resp) = from_result(shape, &bytes) {
                prop_assert!((100..=599).contains(&resp.status.as_u16()));
            }
        }
    }
}
