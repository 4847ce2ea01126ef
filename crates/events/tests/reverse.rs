//! The adapter's direction, checked against the forward one: an event built
//! by `to_event` (or a fixture of a real event) must give back the request,
//! and a result built by `to_result` must read back, through `from_result`
//! and the official response types, as the response it came from.

mod common;

use aws_lambda_events::alb::AlbTargetGroupResponse;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use bytes::Bytes;
use common::{context, fixture, request, CLIENT_IP, PNG_HEAD};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use rouse_events::{
    detect, from_event, from_result, streaming_prelude, to_event, to_result, EventError,
    HttpRequest, HttpResponse, Shape,
};
use serde_json::{json, Value};

const ALL_SHAPES: [Shape; 5] = [
    Shape::RestV1,
    Shape::HttpApiV2,
    Shape::Alb { multi_value: false },
    Shape::Alb { multi_value: true },
    Shape::FunctionUrl,
];

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

fn read(event: &Value) -> HttpRequest {
    let shape = detect(event).unwrap_or_else(|| panic!("not detected: {event}"));
    from_event(shape, event).unwrap_or_else(|e| panic!("{shape:?}: {e}"))
}

fn url_of(req: &HttpRequest) -> String {
    match &req.query {
        Some(query) => format!("{}?{query}", req.path),
        None => req.path.clone(),
    }
}

/// Every shape rebuilds method, raw path, query, body and single-valued
/// headers exactly; `Content-Length` is left to whoever sends the body.
#[test]
fn round_trip_through_every_shape() {
    let original = request(
        Method::POST,
        "/pets/a%20b/%C3%A9",
        Some("tag=x%2By&q=a%20b"),
        &[
            ("host", "api.example.com"),
            ("content-type", "application/json"),
            ("content-length", "11"),
            ("x-request-id", "r-1"),
        ],
        br#"{"ok":true}"#,
    );
    for shape in ALL_SHAPES {
        let event = to_event(shape, &original, &context());
        assert_eq!(detect(&event), Some(shape), "{event}");
        let back = from_event(shape, &event).unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        assert_eq!(back.method, Method::POST, "{shape:?}");
        assert_eq!(back.path, "/pets/a%20b/%C3%A9", "{shape:?}");
        assert_eq!(back.body, original.body, "{shape:?}");
        assert_eq!(values(&back.headers, "x-request-id"), ["r-1"], "{shape:?}");
        assert_eq!(values(&back.headers, "host"), ["api.example.com"]);
        assert!(back.headers.get("content-length").is_none(), "{shape:?}");
        // REST decodes the query and the adapter re-encodes it (in key
        // order); the others hand over the raw string.
        let query = back.query.as_deref().unwrap_or_default();
        match shape {
            Shape::RestV1 => assert_eq!(query, "q=a%20b&tag=x%2By"),
            Shape::Alb { .. } => assert_eq!(query, "q=a%20b&tag=x%2By"),
            _ => assert_eq!(query, "tag=x%2By&q=a%20b"),
        }
        // Whatever came out is a valid request target.
        url_of(&back)
            .parse::<http::Uri>()
            .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        if shape != (Shape::Alb { multi_value: false })
            && shape != (Shape::Alb { multi_value: true })
        {
            assert_eq!(back.source_ip, CLIENT_IP, "{shape:?}");
        }
    }
}

#[test]
fn binary_bodies_come_back_byte_for_byte() {
    let mut png = PNG_HEAD.to_vec();
    png.extend((0..=255u8).rev());
    let original = request(
        Method::PUT,
        "/upload",
        None,
        &[("content-type", "image/png")],
        &png,
    );
    for shape in ALL_SHAPES {
        let event = to_event(shape, &original, &context());
        assert_eq!(event["isBase64Encoded"], true, "{shape:?}");
        assert_eq!(read(&event).body, Bytes::from(png.clone()), "{shape:?}");
    }
}

/// Repeated headers: REST and multi-value ALB keep every value, payload 2.0
/// joins them, single-value ALB keeps the last (that is all it is sent).
/// Cookies survive in all of them.
#[test]
fn repeated_headers_and_cookies() {
    let original = request(
        Method::GET,
        "/",
        None,
        &[
            ("accept", "text/html"),
            ("accept", "application/json"),
            ("cookie", "a=1; b=2"),
        ],
        b"",
    );
    let expected: [(Shape, &[&str]); 5] = [
        (Shape::RestV1, &["text/html", "application/json"]),
        (
            Shape::Alb { multi_value: true },
            &["text/html", "application/json"],
        ),
        (Shape::Alb { multi_value: false }, &["application/json"]),
        (Shape::HttpApiV2, &["text/html,application/json"]),
        (Shape::FunctionUrl, &["text/html,application/json"]),
    ];
    for (shape, accept) in expected {
        let back = read(&to_event(shape, &original, &context()));
        assert_eq!(values(&back.headers, "accept"), accept, "{shape:?}");
        assert_eq!(values(&back.headers, "cookie"), ["a=1; b=2"], "{shape:?}");
        assert!(back.body.is_empty());
    }
}

/// Events as the front ends send them (the golden fixtures).
#[test]
fn fixtures_of_real_events() {
    let rest = read(&fixture("rest-v1-get-pet.json"));
    assert_eq!(rest.method, Method::GET);
    assert_eq!(
        url_of(&rest),
        "/pets/7?expand=owner&q=caf%C3%A9%20au%20lait&tag=cute&tag=small"
    );
    assert_eq!(
        values(&rest.headers, "cookie"),
        ["session=3f2a9c; theme=dark"]
    );
    assert_eq!(rest.version, Version::HTTP_11);

    let post = read(&fixture("rest-v1-post-binary.json"));
    assert!(post.body.starts_with(PNG_HEAD), "{:?}", post.body);

    let v2 = read(&fixture("http-api-v2-get-pet.json"));
    assert_eq!(
        detect(&fixture("http-api-v2-get-pet.json")),
        Some(Shape::HttpApiV2)
    );
    assert_eq!(v2.method, Method::GET);
    assert!(v2.path.starts_with("/pets/"), "{}", v2.path);

    let form = fixture("function-url-post-form.json");
    assert_eq!(detect(&form), Some(Shape::FunctionUrl));
    let url = read(&form);
    assert_eq!(url.method, Method::POST);
    assert_eq!(url_of(&url), "/signup?ref=newsletter");
    assert_eq!(
        values(&url.headers, "cookie"),
        ["csrftoken=Zm9vYmFy; lang=de"]
    );
    assert_eq!(&url.body[..], b"name=J%C3%BCrgen&note=a+b");
    assert!(url.headers.get("content-length").is_none());

    let alb = fixture("alb-multi-get-search.json");
    assert_eq!(detect(&alb), Some(Shape::Alb { multi_value: true }));
    let alb = read(&alb);
    // Raw, as ALB passed it: `%20` and `+` untouched.
    assert_eq!(
        url_of(&alb),
        "/search?page=2&page=3&q=rust%20lang&sort=-+date"
    );
    assert_eq!(values(&alb.headers, "x-experiment"), ["blue", "green"]);
    assert_eq!(alb.source_ip, CLIENT_IP);

    let single = fixture("alb-get-search.json");
    assert_eq!(detect(&single), Some(Shape::Alb { multi_value: false }));
    assert_eq!(read(&single).path, "/search");
}

/// Front ends that decode paths (HTTP API's `rawPath`, some test tools)
/// still give a valid request target.
#[test]
fn decoded_paths_are_made_valid() {
    let event = json!({
        "version": "2.0",
        "rawPath": "/files/my report (1).pdf",
        "rawQueryString": "name=a b",
        "headers": {"host": "x"},
        "requestContext": {"domainName": "x", "http": {"method": "GET", "path": "/"}},
        "isBase64Encoded": false,
    });
    let req = read(&event);
    assert_eq!(url_of(&req), "/files/my%20report%20(1).pdf?name=a%20b");
    url_of(&req).parse::<http::Uri>().expect("valid");
}

#[test]
fn malformed_events_say_why() {
    let v2 = |rc: Value| json!({"version": "2.0", "rawPath": "/", "requestContext": rc});
    let cases: [(Shape, Value, &str); 6] = [
        (Shape::RestV1, json!([]), "JSON object"),
        (
            Shape::RestV1,
            json!({"httpMethod": "G E T", "path": "/", "requestContext": {}}),
            "invalid method",
        ),
        (
            Shape::RestV1,
            json!({"httpMethod": "GET", "path": "/", "headers": {"bad name": "x"}}),
            "invalid header name",
        ),
        (
            Shape::RestV1,
            json!({"httpMethod": "GET", "path": "/", "body": "%%%", "isBase64Encoded": true}),
            "base64",
        ),
        (Shape::HttpApiV2, v2(json!({})), "requestContext.http"),
        (
            Shape::HttpApiV2,
            json!({"version": "2.0", "rawPath": "/", "headers": {"x": "a\r\nInjected: 1"},
                "requestContext": {"http": {"method": "GET"}}}),
            "invalid value for header",
        ),
    ];
    for (shape, event, needle) in cases {
        match from_event(shape, &event) {
            Err(EventError::Malformed(why)) => assert!(why.contains(needle), "{why}"),
            Ok(req) => panic!("accepted {event}: {req:?}"),
        }
    }
}

/// Response headers as written in a test table.
type Headers = &'static [(&'static str, &'static str)];

fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    HttpResponse {
        status: StatusCode::from_u16(status).expect("status"),
        headers: map,
        body: Bytes::copy_from_slice(body),
    }
}

/// `to_result` then `from_result` gives back the response, for every shape,
/// and the official response types accept the JSON.
#[test]
fn results_read_back_as_the_response() {
    let app = response(
        201,
        &[
            ("content-type", "text/plain; charset=utf-8"),
            ("set-cookie", "a=1; Path=/"),
            ("set-cookie", "b=2; HttpOnly"),
            ("x-one", "1"),
            ("transfer-encoding", "chunked"),
            ("connection", "keep-alive"),
        ],
        "héllo".as_bytes(),
    );
    for shape in ALL_SHAPES {
        let result = to_result(shape, &app);
        assert_eq!(result["isBase64Encoded"], false, "{shape:?}");
        let payload = serde_json::to_vec(&result).expect("json");
        let back = from_result(shape, &payload).unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        assert_eq!(back.status, StatusCode::CREATED, "{shape:?}");
        assert_eq!(back.body, app.body, "{shape:?}");
        assert_eq!(values(&back.headers, "x-one"), ["1"], "{shape:?}");
        assert!(back.headers.get("transfer-encoding").is_none());
        assert!(back.headers.get("connection").is_none());
        let cookies = values(&back.headers, "set-cookie");
        match shape {
            // Single-value ALB can carry one value per name: the last.
            Shape::Alb { multi_value: false } => assert_eq!(cookies, ["b=2; HttpOnly"]),
            _ => assert_eq!(cookies, ["a=1; Path=/", "b=2; HttpOnly"], "{shape:?}"),
        }
        match shape {
            Shape::RestV1 => {
                serde_json::from_value::<ApiGatewayProxyResponse>(result).expect("REST type");
            }
            Shape::Alb { multi_value } => {
                assert_eq!(result["statusDescription"], "201 Created");
                assert_eq!(result.get("multiValueHeaders").is_some(), multi_value);
                serde_json::from_value::<AlbTargetGroupResponse>(result).expect("ALB type");
            }
            Shape::HttpApiV2 | Shape::FunctionUrl => {
                serde_json::from_value::<ApiGatewayV2httpResponse>(result).expect("v2 type");
            }
        }
    }
}

#[test]
fn binary_and_encoded_responses_are_base64() {
    let mut png = PNG_HEAD.to_vec();
    png.extend(0..=255u8);
    // (response headers, body, expected isBase64Encoded)
    let cases: [(Headers, &[u8], bool); 5] = [
        (&[("content-type", "image/png")], &png, true),
        (
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            b"{}",
            true,
        ),
        // Declared text that is not UTF-8 cannot be a JSON string.
        (&[("content-type", "text/plain")], b"caf\xe9", true),
        (&[("content-type", "application/json")], b"{\"a\":1}", false),
        (&[], b"", false),
    ];
    for (headers, body, base64) in cases {
        let app = response(200, headers, body);
        for shape in ALL_SHAPES {
            let result = to_result(shape, &app);
            assert_eq!(result["isBase64Encoded"], base64, "{shape:?} {headers:?}");
            let back = from_result(shape, &serde_json::to_vec(&result).expect("json"))
                .unwrap_or_else(|e| panic!("{shape:?}: {e}"));
            assert_eq!(&back.body[..], body, "{shape:?} {headers:?}");
        }
    }
}

#[test]
fn streaming_prelude_frames_the_head() {
    let app = response(
        404,
        &[
            ("content-type", "text/html"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("vary", "Accept"),
            ("vary", "Cookie"),
            ("transfer-encoding", "chunked"),
        ],
        b"",
    );
    let prelude = streaming_prelude(app.status, &app.headers);
    let (json_part, nuls) = prelude.split_at(prelude.len() - 8);
    assert_eq!(nuls, [0u8; 8]);
    assert!(!json_part.contains(&0));
    let head: Value = serde_json::from_slice(json_part).expect("prelude is JSON");
    assert_eq!(
        head,
        json!({
            "statusCode": 404,
            "headers": {"content-type": "text/html", "vary": "Accept,Cookie"},
            "cookies": ["a=1", "b=2"],
        })
    );
}
