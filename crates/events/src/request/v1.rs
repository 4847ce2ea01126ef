//! API Gateway REST API, Lambda proxy integration (payload format 1.0).

use serde_json::{json, Value};

use super::{domain_prefix, protocol, raw_path, user_agent};
use crate::maps::{all_values, header_pairs, last_wins, or_null};
use crate::{body, query, time, HttpRequest, RequestContext};

/// Builds a REST proxy event.
///
/// `headers`/`queryStringParameters` keep the last of repeated names,
/// `multiValue*` keep them all; query keys and values are form-decoded.
/// `path` is the raw path without the stage and `requestContext.path` adds
/// `/{stage}` in front, as the execute-api endpoint reports them. Path
/// parameters are passed through still percent-encoded, as REST does.
pub(super) fn event(req: &HttpRequest, ctx: &RequestContext) -> Value {
    let path = raw_path(req);
    let headers = header_pairs(&req.headers);
    let query = req
        .query
        .as_deref()
        .map(query::decoded_pairs)
        .unwrap_or_default();
    let (resource, path_params) = resource_and_params(path, ctx);
    let (body, is_base64) = match body::encode(&req.headers, &req.body) {
        Some(body) => (Value::String(body.text), body.base64),
        None => (Value::Null, false),
    };

    json!({
        "resource": resource,
        "path": path,
        "httpMethod": req.method.as_str(),
        "headers": or_null(last_wins(&headers)),
        "multiValueHeaders": or_null(all_values(&headers)),
        "queryStringParameters": or_null(last_wins(&query)),
        "multiValueQueryStringParameters": or_null(all_values(&query)),
        "pathParameters": or_null(last_wins(&path_params)),
        "stageVariables": null,
        "requestContext": {
            "accountId": ctx.account_id,
            "apiId": ctx.api_id,
            "domainName": ctx.domain_name,
            "domainPrefix": domain_prefix(&ctx.domain_name),
            "extendedRequestId": ctx.request_id,
            "httpMethod": req.method.as_str(),
            "identity": identity(req),
            "path": stage_path(&ctx.stage, path),
            "protocol": protocol(req.version),
            "requestId": ctx.request_id,
            "requestTime": time::clf(ctx.time_epoch_ms),
            "requestTimeEpoch": ctx.time_epoch_ms,
            "resourceId": resource_id(&resource),
            "resourcePath": resource,
            "stage": ctx.stage,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// The resource template and its path parameters. A catch-all route is
/// REST's greedy `/{proxy+}` with the rest of the path (no leading slash) as
/// `proxy`; REST can't match the root with it, so the root is resource `/`
/// with no parameters.
fn resource_and_params(path: &str, ctx: &RequestContext) -> (String, Vec<(String, String)>) {
    match &ctx.resource {
        Some(resource) => (resource.clone(), ctx.path_params.clone()),
        None if path == "/" => ("/".to_owned(), Vec::new()),
        None => {
            let proxy = path.strip_prefix('/').unwrap_or(path).to_owned();
            ("/{proxy+}".to_owned(), vec![("proxy".to_owned(), proxy)])
        }
    }
}

/// `requestContext.path`: the path as the client addressed it on the
/// execute-api endpoint, i.e. with the stage in front.
fn stage_path(stage: &str, path: &str) -> String {
    if stage.is_empty() {
        path.to_owned()
    } else {
        format!("/{stage}{path}")
    }
}

/// The caller identity. Without IAM, Cognito or API keys only the source
/// address and user agent are known; the other keys are present and `null`,
/// as in real events.
fn identity(req: &HttpRequest) -> Value {
    json!({
        "accessKey": null,
        "accountId": null,
        "apiKey": null,
        "apiKeyId": null,
        "caller": null,
        "cognitoAuthenticationProvider": null,
        "cognitoAuthenticationType": null,
        "cognitoIdentityId": null,
        "cognitoIdentityPoolId": null,
        "principalOrgId": null,
        "sourceIp": req.source_ip.to_string(),
        "user": null,
        "userAgent": user_agent(&req.headers),
        "userArn": null,
    })
}

/// A stable stand-in for API Gateway's resource id: six base-36 characters
/// from an FNV-1a hash of the template, so one route always reports the same
/// id without the crate keeping state.
fn resource_id(resource: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in resource.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|_| {
            let digit = DIGITS[(hash % 36) as usize] as char;
            hash /= 36;
            digit
        })
        .collect()
}
