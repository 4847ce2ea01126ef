//! Application Load Balancer target-group events.

use serde_json::{json, Map, Value};

use super::raw_path;
use crate::maps::{all_values, header_pairs, last_wins};
use crate::{body, query, HttpRequest, RequestContext};

/// Builds an ALB event.
///
/// Query keys and values are passed exactly as the client sent them, still
/// percent-encoded (ALB does not decode them). In single-value mode repeated
/// headers and query parameters keep the last value; in multi-value mode only
/// `multiValueHeaders` and `multiValueQueryStringParameters` are sent, with
/// every value. Maps are `{}` when empty and an empty body is `""`.
pub(super) fn event(req: &HttpRequest, ctx: &RequestContext, multi_value: bool) -> Value {
    let headers = header_pairs(&req.headers);
    let query = req
        .query
        .as_deref()
        .map(query::raw_pairs)
        .unwrap_or_default();
    let (body, is_base64) = match body::encode(&req.headers, &req.body) {
        Some(body) => (body.text, body.base64),
        None => (String::new(), false),
    };
    let (header_key, query_key, headers, query): (_, _, Map<String, Value>, _) = if multi_value {
        (
            "multiValueHeaders",
            "multiValueQueryStringParameters",
            all_values(&headers),
            all_values(&query),
        )
    } else {
        (
            "headers",
            "queryStringParameters",
            last_wins(&headers),
            last_wins(&query),
        )
    };

    json!({
        "requestContext": {
            "elb": { "targetGroupArn": target_group_arn(ctx) },
        },
        "httpMethod": req.method.as_str(),
        "path": raw_path(req),
        query_key: query,
        header_key: headers,
        "body": body,
        "isBase64Encoded": is_base64,
    })
}

/// `arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>`,
/// naming the target group after the function and using the API id as its id.
fn target_group_arn(ctx: &RequestContext) -> String {
    format!(
        "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{}/{}",
        ctx.region, ctx.account_id, ctx.function_name, ctx.api_id
    )
}
