//! ALB and Function URL request events.

mod common;

use aws_lambda_events::alb::AlbTargetGroupRequest;
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use common::{context, get, request, routed, PNG_HEAD};
use http::Method;
use rouse_events::{to_event, HttpRequest, RequestContext, Shape};
use serde_json::{json, Value};

fn alb(req: &HttpRequest, multi_value: bool) -> Value {
    let event = to_event(Shape::Alb { multi_value }, req, &context());
    let parsed: Result<AlbTargetGroupRequest, _> = serde_json::from_value(event.clone());
    assert!(parsed.is_ok(), "{:?} for {event}", parsed.err());
    event
}

fn url(req: &HttpRequest, ctx: &RequestContext) -> Value {
    let event = to_event(Shape::FunctionUrl, req, ctx);
    let parsed: Result<LambdaFunctionUrlRequest, _> = serde_json::from_value(event.clone());
    assert!(parsed.is_ok(), "{:?} for {event}", parsed.err());
    event
}

#[test]
fn alb_query_is_passed_raw() {
    // (raw query, single-value map, multi-value map)
    let cases = [
        (None, json!({}), json!({})),
        (
            Some("q=a%20b"),
            json!({"q": "a%20b"}),
            json!({"q": ["a%20b"]}),
        ),
        (Some("q=a+b"), json!({"q": "a+b"}), json!({"q": ["a+b"]})),
        (
            Some("k%5B0%5D=v%26w&k%5B0%5D=z"),
            json!({"k%5B0%5D": "z"}),
            json!({"k%5B0%5D": ["v%26w", "z"]}),
        ),
        (Some("flag"), json!({"flag": ""}), json!({"flag": [""]})),
    ];
    for (query, single, multi) in cases {
        let req = request(Method::GET, "/", query, &[], b"");
        let e = alb(&req, false);
        assert_eq!(e["queryStringParameters"], single, "{query:?}");
        assert!(!e
            .as_object()
            .unwrap()
            .contains_key("multiValueQueryStringParameters"));
        let e = alb(&req, true);
        assert_eq!(e["multiValueQueryStringParameters"], multi, "{query:?}");
        assert!(!e.as_object().unwrap().contains_key("queryStringParameters"));
    }
}

#[test]
fn alb_headers_by_mode() {
    let req = request(
        Method::GET,
        "/",
        None,
        &[
            ("Set-Thing", "1"),
            ("set-thing", "2"),
            ("Host", "alb.example"),
        ],
        b"",
    );
    let e = alb(&req, false);
    assert_eq!(
        e["headers"],
        json!({"set-thing": "2", "host": "alb.example"})
    );
    assert!(!e.as_object().unwrap().contains_key("multiValueHeaders"));
    let e = alb(&req, true);
    assert_eq!(
        e["multiValueHeaders"],
        json!({"set-thing": ["1", "2"], "host": ["alb.example"]})
    );
    assert!(!e.as_object().unwrap().contains_key("headers"));

    let e = alb(&get("/"), false);
    assert_eq!(e["headers"], json!({}));
}

#[test]
fn alb_bodies() {
    let e = alb(&get("/x"), false);
    assert_eq!(e["body"], "");
    assert_eq!(e["isBase64Encoded"], false);

    let req = request(
        Method::POST,
        "/x",
        None,
        &[("content-type", "application/octet-stream")],
        PNG_HEAD,
    );
    let e = alb(&req, true);
    assert_eq!(e["body"], "iVBORw0KGgoAAAANSUhEUg==");
    assert_eq!(e["isBase64Encoded"], true);

    let req = request(
        Method::POST,
        "/x",
        None,
        &[("content-type", "text/csv")],
        b"a,b\n1,2\n",
    );
    let e = alb(&req, false);
    assert_eq!(e["body"], "a,b\n1,2\n");
    assert_eq!(e["isBase64Encoded"], false);
}

#[test]
fn alb_path_stays_encoded() {
    let e = alb(&get("/files/a%20b"), false);
    assert_eq!(e["path"], "/files/a%20b");
    assert_eq!(e["httpMethod"], "GET");
}

#[test]
fn function_url_is_default_route_without_path_parameters() {
    let ctx = RequestContext {
        api_id: "q3kzt7v2n5xw4yjh6m8b9c1d0efg2hij".into(),
        region: "us-east-2".into(),
        stage: "prod".into(),
        any_method: true,
        ..routed("/users/{id}", &[("id", "9")])
    };
    let e = url(&get("/users/9"), &ctx);
    assert_eq!(e["routeKey"], "$default");
    assert_eq!(e["requestContext"]["routeKey"], "$default");
    assert_eq!(e["requestContext"]["stage"], "$default");
    assert_eq!(
        e["requestContext"]["domainName"],
        "q3kzt7v2n5xw4yjh6m8b9c1d0efg2hij.lambda-url.us-east-2.on.aws"
    );
    assert_eq!(
        e["requestContext"]["domainPrefix"],
        "q3kzt7v2n5xw4yjh6m8b9c1d0efg2hij"
    );
    assert_eq!(
        e["requestContext"]["apiId"],
        "q3kzt7v2n5xw4yjh6m8b9c1d0efg2hij"
    );
    assert_eq!(e["requestContext"]["accountId"], "anonymous");
    assert_eq!(e["version"], "2.0");
    let keys = e.as_object().unwrap();
    assert!(!keys.contains_key("pathParameters"));
    assert!(!keys.contains_key("stageVariables"));
    assert!(!keys.contains_key("body"));
    assert_eq!(e["isBase64Encoded"], false);
}

#[test]
fn function_url_shares_v2_cookie_header_and_query_rules() {
    let req = request(
        Method::GET,
        "/",
        Some("a=1&a=2&q=x%20y"),
        &[
            ("cookie", "a=1; b=2"),
            ("accept", "text/html"),
            ("accept", "*/*"),
        ],
        b"",
    );
    let e = url(&req, &context());
    assert_eq!(e["cookies"], json!(["a=1", "b=2"]));
    assert_eq!(e["headers"], json!({"accept": "text/html,*/*"}));
    assert_eq!(e["rawQueryString"], "a=1&a=2&q=x%20y");
    assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "q": "x y"}));
}
