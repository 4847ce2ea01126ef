//! REST API (payload 1.0) request events.

mod common;

use aws_lambda_events::apigw::ApiGatewayProxyRequest;
use common::{context, get, request, routed, PNG_HEAD};
use http::{Method, Version};
use rouse_events::{to_event, HttpRequest, RequestContext, Shape};
use serde_json::{json, Value};

/// Builds the event and proves an official handler can read it.
fn event(req: &HttpRequest, ctx: &RequestContext) -> Value {
    let event = to_event(Shape::RestV1, req, ctx);
    let parsed: Result<ApiGatewayProxyRequest, _> = serde_json::from_value(event.clone());
    assert!(parsed.is_ok(), "{:?} for {event}", parsed.err());
    event
}

#[test]
fn stage_prefixes_request_context_path_only() {
    let cases = [
        ("dev", "/pets", "/dev/pets"),
        ("prod", "/", "/prod/"),
        ("v1", "/a%20b/c", "/v1/a%20b/c"),
        ("", "/pets", "/pets"),
    ];
    for (stage, path, expected) in cases {
        let ctx = RequestContext {
            stage: stage.into(),
            ..context()
        };
        let e = event(&get(path), &ctx);
        assert_eq!(e["requestContext"]["path"], expected, "stage {stage:?}");
        assert_eq!(e["path"], path, "top-level path never has the stage");
        assert_eq!(e["requestContext"]["stage"], stage);
    }
}

#[test]
fn query_parameters_are_form_decoded() {
    // (raw query, queryStringParameters, multiValueQueryStringParameters)
    let cases = [
        (None, json!(null), json!(null)),
        (Some(""), json!(null), json!(null)),
        (Some("a=1"), json!({"a": "1"}), json!({"a": ["1"]})),
        (
            Some("a=1&b=x&a=2"),
            json!({"a": "2", "b": "x"}),
            json!({"a": ["1", "2"], "b": ["x"]}),
        ),
        (Some("q=a%20b"), json!({"q": "a b"}), json!({"q": ["a b"]})),
        (Some("q=a+b"), json!({"q": "a b"}), json!({"q": ["a b"]})),
        (
            Some("e=x%2By%40z.io"),
            json!({"e": "x+y@z.io"}),
            json!({"e": ["x+y@z.io"]}),
        ),
        (
            Some("list%5B%5D=1&list%5B%5D=2"),
            json!({"list[]": "2"}),
            json!({"list[]": ["1", "2"]}),
        ),
        (Some("flag"), json!({"flag": ""}), json!({"flag": [""]})),
        (Some("&&"), json!(null), json!(null)),
    ];
    for (query, single, multi) in cases {
        let req = request(Method::GET, "/q", query, &[], b"");
        let e = event(&req, &context());
        assert_eq!(e["queryStringParameters"], single, "query {query:?}");
        assert_eq!(
            e["multiValueQueryStringParameters"], multi,
            "query {query:?}"
        );
    }
}

#[test]
fn repeated_headers_last_wins_and_all_values() {
    let req = request(
        Method::GET,
        "/",
        None,
        &[
            ("Accept", "text/html"),
            ("X-Trace", "one"),
            ("x-trace", "two"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
        ],
        b"",
    );
    let e = event(&req, &context());
    assert_eq!(
        e["headers"],
        json!({"accept": "text/html", "x-trace": "two", "cookie": "b=2"})
    );
    assert_eq!(
        e["multiValueHeaders"],
        json!({"accept": ["text/html"], "x-trace": ["one", "two"], "cookie": ["a=1", "b=2"]})
    );
}

#[test]
fn absent_maps_and_body_are_null() {
    let e = event(&get("/"), &context());
    for key in [
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ] {
        assert_eq!(e[key], Value::Null, "{key}");
        assert!(e.as_object().unwrap().contains_key(key), "{key} is present");
    }
    assert_eq!(e["isBase64Encoded"], false);
    assert_eq!(e["requestContext"]["identity"]["userAgent"], Value::Null);
}

#[test]
fn resource_and_path_parameters() {
    // (path, context, resource, pathParameters)
    let cases = [
        ("/", context(), "/", json!(null)),
        (
            "/a/b%20c/d",
            context(),
            "/{proxy+}",
            json!({"proxy": "a/b%20c/d"}),
        ),
        (
            "/files/a%20b+c",
            routed("/files/{name}", &[("name", "a%20b+c")]),
            "/files/{name}",
            // REST hands path parameters over still encoded.
            json!({"name": "a%20b+c"}),
        ),
        ("/health", routed("/health", &[]), "/health", json!(null)),
    ];
    for (path, ctx, resource, params) in cases {
        let e = event(&get(path), &ctx);
        assert_eq!(e["resource"], resource, "{path}");
        assert_eq!(e["requestContext"]["resourcePath"], resource, "{path}");
        assert_eq!(e["pathParameters"], params, "{path}");
        assert_eq!(e["path"], path, "path stays encoded");
    }
}

#[test]
fn resource_id_is_stable_per_template() {
    let id = |template: &str| {
        event(&get("/x"), &routed(template, &[]))["requestContext"]["resourceId"].clone()
    };
    assert_eq!(id("/users/{id}"), id("/users/{id}"));
    assert_ne!(id("/users/{id}"), id("/orders/{id}"));
    assert_eq!(id("/users/{id}").as_str().unwrap().len(), 6);
}

#[test]
fn bodies_text_or_base64() {
    // (content-type, content-encoding, body, expected body, isBase64Encoded)
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        &'static [u8],
        Value,
        bool,
    );
    let cases: Vec<Case> = vec![
        (None, None, b"", json!(null), false),
        (Some("application/json"), None, b"", json!(null), false),
        (
            Some("text/plain"),
            None,
            b"hi there",
            json!("hi there"),
            false,
        ),
        (
            Some("application/json"),
            None,
            b"{\"a\":1}",
            json!("{\"a\":1}"),
            false,
        ),
        (None, None, "caf\u{e9}".as_bytes(), json!("café"), false),
        (
            Some("image/png"),
            None,
            PNG_HEAD,
            json!("iVBORw0KGgoAAAANSUhEUg=="),
            true,
        ),
        (
            None,
            None,
            PNG_HEAD,
            json!("iVBORw0KGgoAAAANSUhEUg=="),
            true,
        ),
        (
            Some("text/plain"),
            Some("gzip"),
            b"\x1f\x8b\x08\x00",
            json!("H4sIAA=="),
            true,
        ),
        (
            Some("text/plain; charset=latin1"),
            None,
            b"caf\xe9",
            json!("Y2Fm6Q=="),
            true,
        ),
        (
            Some("application/octet-stream"),
            None,
            b"plain ascii",
            json!("cGxhaW4gYXNjaWk="),
            true,
        ),
    ];
    for (content_type, encoding, body, expected, base64) in cases {
        let mut headers = Vec::new();
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        if let Some(ce) = encoding {
            headers.push(("content-encoding", ce));
        }
        let req = request(Method::POST, "/upload", None, &headers, body);
        let e = event(&req, &context());
        let label = format!("{content_type:?} {encoding:?} {body:?}");
        assert_eq!(e["body"], expected, "{label}");
        assert_eq!(e["isBase64Encoded"], base64, "{label}");
    }
}

#[test]
fn request_context_facts() {
    let mut req = request(
        Method::DELETE,
        "/pets/1",
        None,
        &[("user-agent", "aws-cli/2.15.0")],
        b"",
    );
    req.version = Version::HTTP_2;
    req.source_ip = "2001:db8::1".parse().unwrap();
    let ctx = RequestContext {
        time_epoch_ms: 0,
        ..context()
    };
    let rc = event(&req, &ctx)["requestContext"].clone();
    assert_eq!(rc["httpMethod"], "DELETE");
    assert_eq!(rc["protocol"], "HTTP/2.0");
    assert_eq!(rc["identity"]["sourceIp"], "2001:db8::1");
    assert_eq!(rc["identity"]["userAgent"], "aws-cli/2.15.0");
    assert_eq!(rc["requestTime"], "01/Jan/1970:00:00:00 +0000");
    assert_eq!(rc["requestTimeEpoch"], 0);
    assert_eq!(rc["domainPrefix"], "1a2b3c4d5e");
    assert_eq!(rc["accountId"], "123456789012");
}

#[test]
fn empty_path_reads_as_root() {
    let e = event(&get(""), &context());
    assert_eq!(e["path"], "/");
    assert_eq!(e["resource"], "/");
}
