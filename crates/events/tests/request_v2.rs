//! HTTP API (payload 2.0) request events.

mod common;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use common::{context, get, request, routed, PNG_HEAD};
use http::Method;
use rouse_events::{to_event, HttpRequest, RequestContext, Shape};
use serde_json::{json, Value};

/// Builds the event and proves an official handler can read it.
fn event(req: &HttpRequest, ctx: &RequestContext) -> Value {
    let event = to_event(Shape::HttpApiV2, req, ctx);
    let parsed: Result<ApiGatewayV2httpRequest, _> = serde_json::from_value(event.clone());
    assert!(parsed.is_ok(), "{:?} for {event}", parsed.err());
    event
}

#[test]
fn cookies_move_from_headers_to_array() {
    // (Cookie header values, expected cookies; null = key absent)
    let cases: Vec<(Vec<&str>, Value)> = vec![
        (vec![], json!(null)),
        (vec!["a=1"], json!(["a=1"])),
        (vec!["a=1; b=2"], json!(["a=1", "b=2"])),
        (vec!["a=1", "b=2; c=3"], json!(["a=1", "b=2", "c=3"])),
        (vec!["a=1;;b=2 ; "], json!(["a=1", "b=2"])),
        (
            vec!["tok=x=y==; q=\"quoted\""],
            json!(["tok=x=y==", "q=\"quoted\""]),
        ),
        (vec![""], json!(null)),
    ];
    for (cookie_headers, expected) in cases {
        let mut headers: Vec<(&str, &str)> = vec![("accept", "*/*")];
        headers.extend(cookie_headers.iter().map(|c| ("cookie", *c)));
        let e = event(&request(Method::GET, "/", None, &headers, b""), &context());
        assert_eq!(e["cookies"], expected, "{cookie_headers:?}");
        assert_eq!(
            e.as_object().unwrap().contains_key("cookies"),
            !expected.is_null()
        );
        assert_eq!(e["headers"], json!({"accept": "*/*"}), "cookie removed");
    }
}

#[test]
fn headers_lower_case_and_comma_joined() {
    let req = request(
        Method::GET,
        "/",
        None,
        &[
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("Accept-Language", "de-CH, en;q=0.5"),
        ],
        b"",
    );
    let e = event(&req, &context());
    assert_eq!(
        e["headers"],
        json!({
            "x-forwarded-for": "203.0.113.7,10.0.0.1",
            "accept-language": "de-CH, en;q=0.5",
        })
    );
}

#[test]
fn query_raw_string_encoded_parameters_decoded_and_joined() {
    // (raw query, rawQueryString, queryStringParameters; null = key absent)
    let cases = [
        (None, "", json!(null)),
        (Some(""), "", json!(null)),
        (
            Some("a=1&a=2&b=3"),
            "a=1&a=2&b=3",
            json!({"a": "1,2", "b": "3"}),
        ),
        (
            Some("q=hello%20world&r=a+b"),
            "q=hello%20world&r=a+b",
            json!({"q": "hello world", "r": "a b"}),
        ),
        (
            Some("redirect=%2Fhome%3Ftab%3D1"),
            "redirect=%2Fhome%3Ftab%3D1",
            json!({"redirect": "/home?tab=1"}),
        ),
        (Some("x"), "x", json!({"x": ""})),
    ];
    for (query, raw, params) in cases {
        let e = event(&request(Method::GET, "/s", query, &[], b""), &context());
        assert_eq!(e["rawQueryString"], raw, "{query:?}");
        assert_eq!(e["queryStringParameters"], params, "{query:?}");
        assert_eq!(
            e.as_object().unwrap().contains_key("queryStringParameters"),
            !params.is_null()
        );
    }
}

#[test]
fn route_key_from_template() {
    // (resource, any method, request method, routeKey)
    let cases = [
        (None, false, Method::GET, "$default"),
        (None, true, Method::POST, "$default"),
        (Some("/pets/{id}"), false, Method::GET, "GET /pets/{id}"),
        (Some("/pets/{id}"), false, Method::PATCH, "PATCH /pets/{id}"),
        (Some("/{proxy+}"), true, Method::DELETE, "ANY /{proxy+}"),
    ];
    for (resource, any_method, method, expected) in cases {
        let ctx = RequestContext {
            resource: resource.map(str::to_string),
            any_method,
            ..context()
        };
        let e = event(&request(method, "/pets/1", None, &[], b""), &ctx);
        assert_eq!(e["routeKey"], expected);
        assert_eq!(e["requestContext"]["routeKey"], expected);
    }
}

#[test]
fn path_parameters_are_decoded_raw_path_is_not() {
    let ctx = routed("/files/{name}", &[("name", "report%202024+final%2Fv2")]);
    let e = event(&get("/files/report%202024+final%2Fv2"), &ctx);
    assert_eq!(e["pathParameters"], json!({"name": "report 2024+final/v2"}));
    assert_eq!(e["rawPath"], "/files/report%202024+final%2Fv2");
    assert_eq!(
        e["requestContext"]["http"]["path"],
        "/files/report%202024+final%2Fv2"
    );

    let e = event(&get("/anything"), &context());
    assert!(!e.as_object().unwrap().contains_key("pathParameters"));
    assert!(!e.as_object().unwrap().contains_key("stageVariables"));
}

#[test]
fn stage_defaults_to_default_and_is_not_in_the_path() {
    for (stage, expected) in [("", "$default"), ("$default", "$default"), ("prod", "prod")] {
        let ctx = RequestContext {
            stage: stage.into(),
            ..context()
        };
        let e = event(&get("/pets"), &ctx);
        assert_eq!(e["requestContext"]["stage"], expected);
        assert_eq!(e["rawPath"], "/pets");
    }
}

#[test]
fn body_absent_text_or_base64() {
    let e = event(&get("/"), &context());
    assert!(!e.as_object().unwrap().contains_key("body"));
    assert_eq!(e["isBase64Encoded"], false);

    let req = request(
        Method::PUT,
        "/img",
        None,
        &[("content-type", "image/png")],
        PNG_HEAD,
    );
    let e = event(&req, &context());
    assert_eq!(e["body"], "iVBORw0KGgoAAAANSUhEUg==");
    assert_eq!(e["isBase64Encoded"], true);

    let req = request(
        Method::PUT,
        "/doc",
        None,
        &[("content-type", "application/xml")],
        b"<a/>",
    );
    let e = event(&req, &context());
    assert_eq!(e["body"], "<a/>");
    assert_eq!(e["isBase64Encoded"], false);
}

#[test]
fn request_context_facts() {
    let ctx = RequestContext {
        time_epoch_ms: 1_700_000_000_000,
        domain_name: "api.example.com".into(),
        ..context()
    };
    let req = request(
        Method::GET,
        "/",
        None,
        &[("user-agent", "Go-http-client/2.0")],
        b"",
    );
    let rc = event(&req, &ctx)["requestContext"].clone();
    assert_eq!(rc["time"], "14/Nov/2023:22:13:20 +0000");
    assert_eq!(rc["timeEpoch"], 1_700_000_000_000_i64);
    assert_eq!(rc["domainName"], "api.example.com");
    assert_eq!(rc["domainPrefix"], "api");
    assert_eq!(rc["http"]["userAgent"], "Go-http-client/2.0");
    assert_eq!(rc["http"]["sourceIp"], "203.0.113.7");
    assert_eq!(rc["requestId"], "c6af9ac6-7b61-11e6-9a41-93e8deadbeef");
}
