//! Lambda results → HTTP responses.

mod common;

use common::{fixture_bytes, PNG_HEAD};
use http::{HeaderMap, StatusCode};
use rouse_events::{from_result, HttpResponse, ResponseError, Shape};
use serde_json::json;

const ALL_SHAPES: [Shape; 5] = [
    Shape::RestV1,
    Shape::HttpApiV2,
    Shape::Alb { multi_value: false },
    Shape::Alb { multi_value: true },
    Shape::FunctionUrl,
];

fn ok(shape: Shape, payload: &[u8]) -> HttpResponse {
    from_result(shape, payload)
        .unwrap_or_else(|e| panic!("{shape:?} {}: {e}", String::from_utf8_lossy(payload)))
}

fn malformed(shape: Shape, payload: &[u8]) -> String {
    match from_result(shape, payload) {
        Err(ResponseError::Malformed(why)) => why,
        Ok(response) => panic!(
            "{shape:?} accepted {}: {response:?}",
            String::from_utf8_lossy(payload)
        ),
    }
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[test]
fn rest_fixture_merges_header_maps() {
    let r = ok(Shape::RestV1, &fixture_bytes("rest-v1-response-login.json"));
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(values(&r.headers, "location"), ["/account"]);
    // The cookie repeated in `headers` is sent once, not twice.
    assert_eq!(
        values(&r.headers, "set-cookie"),
        [
            "session=9b1d7e; Path=/; Secure; HttpOnly; SameSite=Lax",
            "theme=dark; Path=/; Max-Age=31536000",
        ]
    );
    assert_eq!(values(&r.headers, "vary"), ["Accept", "Cookie"]);
    assert_eq!(values(&r.headers, "cache-control"), ["no-store"]);
    assert!(r.body.is_empty());
}

#[test]
fn v2_fixture_cookies_become_set_cookie() {
    let r = ok(
        Shape::HttpApiV2,
        &fixture_bytes("http-api-v2-response-page.json"),
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        values(&r.headers, "set-cookie"),
        [
            "session=9b1d7e; Path=/; Secure; HttpOnly",
            "seen_banner=1; Path=/; Expires=Fri, 15 May 2026 06:01:09 GMT",
        ]
    );
    // A comma-joined value stays one header line.
    assert_eq!(values(&r.headers, "vary"), ["Accept-Encoding,Cookie"]);
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        "<!doctype html><title>Grüezi</title><p>Welcome back</p>"
    );
}

#[test]
fn alb_fixture_reads_only_the_mode_header_map() {
    let payload = fixture_bytes("alb-multi-response-not-found.json");
    let multi = ok(Shape::Alb { multi_value: true }, &payload);
    assert_eq!(multi.status, StatusCode::NOT_FOUND);
    assert_eq!(
        values(&multi.headers, "content-type"),
        ["application/problem+json"]
    );
    assert_eq!(
        values(&multi.headers, "x-served-by"),
        ["lambda-a", "lambda-b"]
    );

    let single = ok(Shape::Alb { multi_value: false }, &payload);
    assert_eq!(values(&single.headers, "content-type"), ["text/plain"]);
    assert!(single.headers.get("x-served-by").is_none());
    assert_eq!(single.body, multi.body);
}

#[test]
fn function_url_fixture_binary_body_is_decoded() {
    let r = ok(
        Shape::FunctionUrl,
        &fixture_bytes("function-url-response-png.json"),
    );
    assert_eq!(&r.body[..], PNG_HEAD);
    assert_eq!(values(&r.headers, "content-type"), ["image/png"]);
    // The gateway frames the body; the handler's length is dropped.
    assert!(r.headers.get("content-length").is_none());
    assert_eq!(
        values(&r.headers, "cache-control"),
        ["public, max-age=86400"]
    );
}

#[test]
fn status_codes() {
    // (statusCode JSON, expected status or None for malformed)
    let cases = [
        (json!(200), Some(200)),
        (json!(204), Some(204)),
        (json!(599), Some(599)),
        (json!("201"), Some(201)),
        (json!(" 404 "), Some(404)),
        (json!(301.0), Some(301)),
        (json!(null), None),
        (json!("OK"), None),
        (json!(true), None),
        (json!([200]), None),
        (json!(100), None),
        (json!(199), None),
        (json!(600), None),
        (json!(-200), None),
        (json!(200.5), None),
        (json!(70000), None),
    ];
    for shape in ALL_SHAPES {
        for (code, expected) in &cases {
            let payload = json!({"statusCode": code, "body": "x"}).to_string();
            match expected {
                Some(status) => {
                    assert_eq!(ok(shape, payload.as_bytes()).status.as_u16(), *status)
                }
                None => {
                    malformed(shape, payload.as_bytes());
                }
            }
        }
    }
}

#[test]
fn missing_status_code() {
    for shape in [
        Shape::RestV1,
        Shape::Alb { multi_value: false },
        Shape::Alb { multi_value: true },
    ] {
        let why = malformed(shape, br#"{"body": "hello"}"#);
        assert!(why.contains("statusCode"), "{why}");
    }
}

#[test]
fn bodies() {
    // (body JSON, isBase64Encoded JSON, expected bytes or None for malformed)
    let cases: Vec<(serde_json::Value, serde_json::Value, Option<&[u8]>)> = vec![
        (json!(null), json!(null), Some(b"")),
        (json!(""), json!(false), Some(b"")),
        (json!("hello"), json!(false), Some(b"hello")),
        (json!("grüß"), json!(false), Some("grüß".as_bytes())),
        (json!("aGVsbG8="), json!(false), Some(b"aGVsbG8=")),
        (json!("aGVsbG8="), json!(true), Some(b"hello")),
        (json!("aGVsbG8"), json!(true), Some(b"hello")),
        (json!("aGVs\nbG8=\n"), json!(true), Some(b"hello")),
        (
            json!("iVBORw0KGgoAAAANSUhEUg=="),
            json!("true"),
            Some(PNG_HEAD),
        ),
        (json!("aGVsbG8="), json!("FALSE"), Some(b"aGVsbG8=")),
        (json!(""), json!(true), Some(b"")),
        (json!("not base64!"), json!(true), None),
        (json!({"a": 1}), json!(false), None),
        (json!(42), json!(false), None),
        (json!(["x"]), json!(false), None),
        (json!("x"), json!("yes"), None),
        (json!("x"), json!(1), None),
    ];
    for shape in ALL_SHAPES {
        for (body, flag, expected) in &cases {
            let payload =
                json!({"statusCode": 200, "body": body, "isBase64Encoded": flag}).to_string();
            match expected {
                Some(bytes) => assert_eq!(
                    &ok(shape, payload.as_bytes()).body[..],
                    *bytes,
                    "{shape:?} {payload}"
                ),
                None => {
                    malformed(shape, payload.as_bytes());
                }
            }
        }
    }
    // Absent body and flag.
    for shape in ALL_SHAPES {
        assert!(ok(shape, br#"{"statusCode": 204}"#).body.is_empty());
    }
}

#[test]
fn header_values_are_coerced_or_rejected() {
    // (headers JSON, expected (name, values) or None for malformed)
    type Case = (serde_json::Value, Option<(&'static str, Vec<&'static str>)>);
    let cases: Vec<Case> = vec![
        (json!({"X-A": "text"}), Some(("x-a", vec!["text"]))),
        (
            json!({"Access-Control-Allow-Credentials": true}),
            Some(("access-control-allow-credentials", vec!["true"])),
        ),
        (json!({"X-Count": 3}), Some(("x-count", vec!["3"]))),
        (json!({"X-Ratio": 0.5}), Some(("x-ratio", vec!["0.5"]))),
        (json!({"X-Skip": null}), Some(("x-skip", vec![]))),
        (
            json!({"Content-Disposition": "attachment; filename=\"Grüße.txt\""}),
            Some((
                "content-disposition",
                vec!["attachment; filename=\"Grüße.txt\""],
            )),
        ),
        (json!({"X-Obj": {"a": 1}}), None),
        (json!({"Bad Name": "x"}), None),
        (json!({"": "x"}), None),
        (json!({"X-Inject": "a\r\nSet-Cookie: evil=1"}), None),
        (json!({"X-Nul": "a\u{0}b"}), None),
    ];
    for shape in [
        Shape::RestV1,
        Shape::HttpApiV2,
        Shape::Alb { multi_value: false },
        Shape::FunctionUrl,
    ] {
        for (headers, expected) in &cases {
            let payload = json!({"statusCode": 200, "headers": headers}).to_string();
            match expected {
                Some((name, vals)) => {
                    let r = ok(shape, payload.as_bytes());
                    let got: Vec<&[u8]> = r
                        .headers
                        .get_all(*name)
                        .iter()
                        .map(|v| v.as_bytes())
                        .collect();
                    let want: Vec<&[u8]> = vals.iter().map(|v| v.as_bytes()).collect();
                    assert_eq!(got, want, "{shape:?} {payload}");
                }
                None => {
                    malformed(shape, payload.as_bytes());
                }
            }
        }
    }
}

#[test]
fn multi_value_headers() {
    // (multiValueHeaders JSON, name, expected values or None for malformed)
    let cases: Vec<(serde_json::Value, &str, Option<Vec<&str>>)> = vec![
        (
            json!({"Set-Cookie": ["a=1", "b=2"]}),
            "set-cookie",
            Some(vec!["a=1", "b=2"]),
        ),
        (json!({"X-Lone": "v"}), "x-lone", Some(vec!["v"])),
        (
            json!({"X-Mixed": ["v", 2, false, null]}),
            "x-mixed",
            Some(vec!["v", "2", "false"]),
        ),
        (json!({"X-Empty": []}), "x-empty", Some(vec![])),
        (json!({"X-Nested": [["v"]]}), "x-nested", None),
        (json!(["not", "a", "map"]), "x", None),
    ];
    for shape in [Shape::RestV1, Shape::Alb { multi_value: true }] {
        for (mvh, name, expected) in &cases {
            let payload = json!({"statusCode": 200, "multiValueHeaders": mvh}).to_string();
            match expected {
                Some(vals) => {
                    assert_eq!(values(&ok(shape, payload.as_bytes()).headers, name), *vals)
                }
                None => {
                    malformed(shape, payload.as_bytes());
                }
            }
        }
    }
}

#[test]
fn rest_merge_keeps_distinct_values_from_both_maps() {
    let payload = json!({
        "statusCode": 200,
        "headers": {"X-A": "1", "X-B": "only-single"},
        "multiValueHeaders": {"x-a": ["1", "2"], "X-C": ["c"]},
    })
    .to_string();
    let r = ok(Shape::RestV1, payload.as_bytes());
    assert_eq!(values(&r.headers, "x-a"), ["1", "2"]);
    assert_eq!(values(&r.headers, "x-b"), ["only-single"]);
    assert_eq!(values(&r.headers, "x-c"), ["c"]);

    // HTTP API has no multiValueHeaders: lambda-http's `{}` and anything else
    // there is ignored.
    let r = ok(Shape::HttpApiV2, payload.as_bytes());
    assert_eq!(values(&r.headers, "x-a"), ["1"]);
    assert!(r.headers.get("x-c").is_none());
}

#[test]
fn framing_headers_are_dropped() {
    let payload = json!({
        "statusCode": 200,
        "headers": {"Content-Length": "999", "Transfer-Encoding": "chunked", "X-Keep": "y"},
        "multiValueHeaders": {"Content-Length": ["999"]},
        "body": "short",
    })
    .to_string();
    for shape in ALL_SHAPES {
        let r = ok(shape, payload.as_bytes());
        assert!(r.headers.get("content-length").is_none(), "{shape:?}");
        assert!(r.headers.get("transfer-encoding").is_none(), "{shape:?}");
        assert_eq!(&r.body[..], b"short");
    }
}

#[test]
fn v2_infers_bare_json() {
    let cases: [&[u8]; 9] = [
        br#""hello""#,
        b"42",
        b"-1.5e3",
        b"[1,2,3]",
        br#"{"message":"hi","items":[1,2]}"#,
        b"null",
        b"true",
        b"  {\"a\": 1}\n",
        br#"{"status": 201, "body": "not a proxy response"}"#,
    ];
    for shape in [Shape::HttpApiV2, Shape::FunctionUrl] {
        for payload in cases {
            let r = ok(shape, payload);
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(values(&r.headers, "content-type"), ["application/json"]);
            assert_eq!(r.headers.len(), 1);
            assert_eq!(&r.body[..], payload, "body is the payload as returned");
        }
    }
}

#[test]
fn v1_and_alb_do_not_infer() {
    for shape in [
        Shape::RestV1,
        Shape::Alb { multi_value: false },
        Shape::Alb { multi_value: true },
    ] {
        for payload in [
            &b"\"hello\""[..],
            b"42",
            b"[1]",
            b"null",
            br#"{"message":"hi"}"#,
        ] {
            malformed(shape, payload);
        }
    }
}

#[test]
fn invalid_json_is_malformed_for_every_shape() {
    let payloads: [&[u8]; 5] = [
        b"",
        b"hello",
        b"{\"statusCode\": 200",
        b"\xff\xfe",
        b"{} trailing",
    ];
    for shape in ALL_SHAPES {
        for payload in payloads {
            let why = malformed(shape, payload);
            assert!(why.contains("not valid JSON"), "{why}");
        }
    }
}

#[test]
fn v2_cookies_field() {
    // (cookies JSON, expected Set-Cookie values or None for malformed)
    let cases: Vec<(serde_json::Value, Option<Vec<&str>>)> = vec![
        (json!(null), Some(vec![])),
        (json!([]), Some(vec![])),
        (json!(["a=1; Path=/"]), Some(vec!["a=1; Path=/"])),
        (json!(["a=1", null, "b=2"]), Some(vec!["a=1", "b=2"])),
        (json!("a=1"), None),
        (json!([{"a": 1}]), None),
        (json!(["a=1\r\nX-Evil: 1"]), None),
    ];
    for shape in [Shape::HttpApiV2, Shape::FunctionUrl] {
        for (cookies, expected) in &cases {
            let payload = json!({
                "statusCode": 200,
                "headers": {"Set-Cookie": "from-headers=1"},
                "cookies": cookies,
            })
            .to_string();
            match expected {
                Some(cookies) => {
                    let r = ok(shape, payload.as_bytes());
                    let mut want = vec!["from-headers=1"];
                    want.extend(cookies);
                    assert_eq!(values(&r.headers, "set-cookie"), want, "{payload}");
                }
                None => {
                    malformed(shape, payload.as_bytes());
                }
            }
        }
    }
}

#[test]
fn error_display_names_the_problem() {
    let err = from_result(Shape::RestV1, br#"{"body": "x"}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed Lambda proxy response: statusCode is missing"
    );
}
