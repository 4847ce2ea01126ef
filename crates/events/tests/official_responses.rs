//! Responses as official Rust handlers produce them: serialized from the
//! `aws_lambda_events` response types the way `lambda-http` fills them.

use aws_lambda_events::alb::AlbTargetGroupResponse;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlResponse;
use http::{HeaderMap, HeaderValue, StatusCode};
use rouse_events::{from_result, Shape};

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[test]
fn rest_response_with_every_header_in_multi_value() {
    // lambda-http leaves `headers` empty and puts everything in
    // `multiValueHeaders` so API Gateway's merge doesn't duplicate.
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 201;
    response.multi_value_headers = headers(&[
        ("content-type", "application/json"),
        ("set-cookie", "a=1; Path=/"),
        ("set-cookie", "b=2; Path=/"),
    ]);
    response.body = Some(Body::Text("{\"id\":7}".into()));
    let payload = serde_json::to_vec(&response).unwrap();

    let r = from_result(Shape::RestV1, &payload).unwrap();
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        values(&r.headers, "set-cookie"),
        ["a=1; Path=/", "b=2; Path=/"]
    );
    assert_eq!(values(&r.headers, "content-type"), ["application/json"]);
    assert_eq!(&r.body[..], b"{\"id\":7}");
}

#[test]
fn rest_binary_response() {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    response.is_base64_encoded = true;
    response.multi_value_headers = headers(&[("content-type", "application/octet-stream")]);
    response.body = Some(Body::Binary(vec![0, 159, 146, 150, 255]));
    let payload = serde_json::to_vec(&response).unwrap();

    let r = from_result(Shape::RestV1, &payload).unwrap();
    assert_eq!(&r.body[..], [0, 159, 146, 150, 255]);
}

#[test]
fn http_api_response_with_cookies_and_binary_body() {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = 200;
    response.headers = headers(&[("content-type", "image/gif")]);
    response.cookies = vec!["a=1".into(), "b=2; HttpOnly".into()];
    response.is_base64_encoded = true;
    response.body = Some(Body::Binary(b"GIF89a\x01\x00".to_vec()));
    let payload = serde_json::to_vec(&response).unwrap();

    let r = from_result(Shape::HttpApiV2, &payload).unwrap();
    assert_eq!(values(&r.headers, "set-cookie"), ["a=1", "b=2; HttpOnly"]);
    assert_eq!(values(&r.headers, "content-type"), ["image/gif"]);
    assert_eq!(&r.body[..], b"GIF89a\x01\x00");
}

#[test]
fn http_api_empty_response() {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = 204;
    let payload = serde_json::to_vec(&response).unwrap();
    let r = from_result(Shape::HttpApiV2, &payload).unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert!(r.headers.is_empty());
}

#[test]
fn alb_response_in_both_modes() {
    // lambda-http fills both maps so either target-group setting works.
    let mut response = AlbTargetGroupResponse::default();
    response.status_code = 503;
    response.status_description = Some("503 Service Unavailable".into());
    let both = headers(&[("retry-after", "30"), ("x-node", "a"), ("x-node", "b")]);
    response.headers = both.clone();
    response.multi_value_headers = both;
    response.body = Some(Body::Text("busy".into()));
    let payload = serde_json::to_vec(&response).unwrap();

    let multi = from_result(Shape::Alb { multi_value: true }, &payload).unwrap();
    assert_eq!(multi.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(values(&multi.headers, "x-node"), ["a", "b"]);
    assert_eq!(values(&multi.headers, "retry-after"), ["30"]);

    // The single-value map serializes only the first of repeated values.
    let single = from_result(Shape::Alb { multi_value: false }, &payload).unwrap();
    assert_eq!(values(&single.headers, "x-node"), ["a"]);
    assert_eq!(&single.body[..], b"busy");
}

#[test]
fn function_url_response() {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = 307;
    response.headers = headers(&[("location", "https://example.com/next")]);
    response.cookies = vec!["flow=2".into()];
    let payload = serde_json::to_vec(&response).unwrap();

    let r = from_result(Shape::FunctionUrl, &payload).unwrap();
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(values(&r.headers, "location"), ["https://example.com/next"]);
    assert_eq!(values(&r.headers, "set-cookie"), ["flow=2"]);
    assert!(r.body.is_empty());
}
