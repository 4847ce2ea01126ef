//! Golden events: each fixture is the event a real front end would send for
//! the request built here, and the generated event must equal it exactly and
//! deserialize into the official `aws_lambda_events` type with the expected
//! contents (the types official Rust handlers read events with).

mod common;

use aws_lambda_events::alb::AlbTargetGroupRequest;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use common::{context, fixture, request, routed, PNG_HEAD};
use http::Method;
use rouse_events::{to_event, HttpRequest, RequestContext, Shape};
use serde_json::Value;

/// Fails with the first differing path, which a whole-document
/// `assert_eq!` on two large JSON values makes hard to spot.
fn assert_same_json(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut keys: Vec<&String> = a.keys().chain(e.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                match (a.get(key), e.get(key)) {
                    (Some(av), Some(ev)) => assert_same_json(av, ev, &format!("{at}.{key}")),
                    (Some(av), None) => panic!("{at}.{key}: unexpected {av}"),
                    (None, Some(ev)) => panic!("{at}.{key}: missing, expected {ev}"),
                    (None, None) => unreachable!(),
                }
            }
        }
        _ => assert_eq!(actual, expected, "at {at}"),
    }
}

fn check(shape: Shape, req: &HttpRequest, ctx: &RequestContext, name: &str) -> Value {
    let event = to_event(shape, req, ctx);
    assert_same_json(&event, &fixture(name), name);
    event
}

fn pet_request() -> HttpRequest {
    request(
        Method::GET,
        "/pets/7",
        Some("expand=owner&tag=cute&tag=small&q=caf%C3%A9+au+lait"),
        &[
            ("host", "1a2b3c4d5e.execute-api.eu-west-1.amazonaws.com"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "application/json"),
            ("cookie", "session=3f2a9c; theme=dark"),
            (
                "x-amzn-trace-id",
                "Root=1-5ebe3025-6c0e1d3a5b2f8e9d7c6b5a49",
            ),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-proto", "https"),
        ],
        b"",
    )
}

#[test]
fn rest_v1_get_with_query_cookies_and_stage() {
    let ctx = routed("/pets/{id}", &[("id", "7")]);
    let event = check(Shape::RestV1, &pet_request(), &ctx, "rest-v1-get-pet.json");

    let parsed: ApiGatewayProxyRequest = serde_json::from_value(event).unwrap();
    assert_eq!(parsed.http_method, Method::GET);
    assert_eq!(parsed.path.as_deref(), Some("/pets/7"));
    assert_eq!(parsed.resource.as_deref(), Some("/pets/{id}"));
    assert_eq!(parsed.path_parameters["id"], "7");
    assert_eq!(parsed.headers["cookie"], "session=3f2a9c; theme=dark");
    assert_eq!(
        parsed.query_string_parameters.first("q"),
        Some("café au lait")
    );
    assert_eq!(
        parsed.multi_value_query_string_parameters.all("tag"),
        Some(vec!["cute", "small"])
    );
    let rc = parsed.request_context;
    assert_eq!(rc.path.as_deref(), Some("/dev/pets/7"));
    assert_eq!(rc.stage.as_deref(), Some("dev"));
    assert_eq!(rc.request_time_epoch, 1_589_522_469_123);
    assert_eq!(rc.identity.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(parsed.body, None);
    assert!(!parsed.is_base64_encoded);
}

#[test]
fn rest_v1_binary_post_on_catch_all() {
    let req = request(
        Method::POST,
        "/uploads/avatar.png",
        None,
        &[
            ("host", "1a2b3c4d5e.execute-api.eu-west-1.amazonaws.com"),
            (
                "user-agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
            ),
            ("content-type", "image/png"),
            ("content-length", "16"),
        ],
        PNG_HEAD,
    );
    let event = check(Shape::RestV1, &req, &context(), "rest-v1-post-binary.json");

    let parsed: ApiGatewayProxyRequest = serde_json::from_value(event).unwrap();
    assert_eq!(parsed.path_parameters["proxy"], "uploads/avatar.png");
    assert!(parsed.is_base64_encoded);
    assert_eq!(parsed.body.as_deref(), Some("iVBORw0KGgoAAAANSUhEUg=="));
    assert!(parsed.query_string_parameters.is_empty());
}

#[test]
fn http_api_v2_get_splits_cookies() {
    let ctx = RequestContext {
        stage: "$default".into(),
        ..routed("/pets/{id}", &[("id", "7")])
    };
    let event = check(
        Shape::HttpApiV2,
        &pet_request(),
        &ctx,
        "http-api-v2-get-pet.json",
    );

    let parsed: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
    assert_eq!(parsed.route_key.as_deref(), Some("GET /pets/{id}"));
    assert_eq!(
        parsed.cookies,
        Some(vec!["session=3f2a9c".to_string(), "theme=dark".to_string()])
    );
    assert!(parsed.headers.get("cookie").is_none());
    // The official reader splits HTTP API's comma-joined repeats again.
    assert_eq!(
        parsed.query_string_parameters.all("tag"),
        Some(vec!["cute", "small"])
    );
    assert_eq!(parsed.path_parameters["id"], "7");
    assert_eq!(parsed.request_context.http.method, Method::GET);
    assert_eq!(parsed.request_context.time_epoch, 1_589_522_469_123);
}

#[test]
fn http_api_v2_json_post_on_default_route() {
    let req = request(
        Method::POST,
        "/orders",
        None,
        &[
            ("host", "api.shop.example"),
            ("user-agent", "python-requests/2.32.3"),
            ("accept", "application/json"),
            ("accept", "text/plain"),
            ("content-type", "application/json; charset=utf-8"),
            ("content-length", "43"),
            ("x-request-tag", "a,b"),
        ],
        "{\"sku\":\"TEA-01\",\"qty\":2,\"note\":\"thé vert\"}".as_bytes(),
    );
    let ctx = RequestContext {
        stage: String::new(),
        domain_name: "api.shop.example".into(),
        ..context()
    };
    let event = check(Shape::HttpApiV2, &req, &ctx, "http-api-v2-post-json.json");

    let parsed: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
    assert_eq!(parsed.route_key.as_deref(), Some("$default"));
    assert_eq!(parsed.cookies, None);
    assert_eq!(parsed.headers["accept"], "application/json,text/plain");
    assert!(!parsed.is_base64_encoded);
    let body: Value = serde_json::from_str(parsed.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["note"], "thé vert");
}

fn search_request() -> HttpRequest {
    request(
        Method::GET,
        "/search",
        Some("q=rust%20lang&page=2&page=3&sort=-+date"),
        &[
            ("host", "shop-alb-1234567890.eu-west-1.elb.amazonaws.com"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "text/html"),
            (
                "x-amzn-trace-id",
                "Root=1-5ebe3025-6c0e1d3a5b2f8e9d7c6b5a49",
            ),
            ("x-experiment", "blue"),
            ("x-experiment", "green"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-port", "80"),
            ("x-forwarded-proto", "http"),
        ],
        b"",
    )
}

#[test]
fn alb_single_value_keeps_query_raw_and_last_values() {
    let shape = Shape::Alb { multi_value: false };
    let event = check(shape, &search_request(), &context(), "alb-get-search.json");

    let parsed: AlbTargetGroupRequest = serde_json::from_value(event).unwrap();
    assert_eq!(
        parsed.query_string_parameters.first("q"),
        Some("rust%20lang")
    );
    assert_eq!(parsed.query_string_parameters.first("page"), Some("3"));
    assert_eq!(parsed.headers["x-experiment"], "green");
    assert!(parsed.multi_value_headers.is_empty());
    assert_eq!(
        parsed.request_context.elb.target_group_arn.as_deref(),
        Some("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-dev-api/1a2b3c4d5e")
    );
    assert_eq!(parsed.body.as_deref(), Some(""));
}

#[test]
fn alb_multi_value_sends_only_multi_maps() {
    let shape = Shape::Alb { multi_value: true };
    let event = check(
        shape,
        &search_request(),
        &context(),
        "alb-multi-get-search.json",
    );

    let parsed: AlbTargetGroupRequest = serde_json::from_value(event).unwrap();
    assert_eq!(
        parsed.multi_value_query_string_parameters.all("page"),
        Some(vec!["2", "3"])
    );
    let experiments: Vec<_> = parsed
        .multi_value_headers
        .get_all("x-experiment")
        .iter()
        .collect();
    assert_eq!(experiments, ["blue", "green"]);
    assert!(parsed.headers.is_empty());
    assert!(parsed.query_string_parameters.is_empty());
}

#[test]
fn function_url_form_post_is_base64() {
    let req = request(
        Method::POST,
        "/signup",
        Some("ref=newsletter"),
        &[
            (
                "host",
                "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws",
            ),
            (
                "user-agent",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            ),
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "25"),
            ("cookie", "csrftoken=Zm9vYmFy"),
            ("cookie", "lang=de"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-proto", "https"),
        ],
        b"name=J%C3%BCrgen&note=a+b",
    );
    let ctx = RequestContext {
        api_id: "abcdefghijklmnopqrstuvwxyz012345".into(),
        // Function URLs ignore the route facts an HTTP API would use.
        resource: Some("/signup".into()),
        path_params: vec![("unused".into(), "x".into())],
        ..context()
    };
    let event = check(
        Shape::FunctionUrl,
        &req,
        &ctx,
        "function-url-post-form.json",
    );

    let parsed: LambdaFunctionUrlRequest = serde_json::from_value(event).unwrap();
    assert_eq!(
        parsed.request_context.domain_name.as_deref(),
        Some("abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws")
    );
    assert_eq!(
        parsed.cookies,
        Some(vec![
            "csrftoken=Zm9vYmFy".to_string(),
            "lang=de".to_string()
        ])
    );
    assert_eq!(parsed.query_string_parameters["ref"], "newsletter");
    assert!(parsed.is_base64_encoded);
    assert_eq!(parsed.request_context.http.method.as_deref(), Some("POST"));
}
