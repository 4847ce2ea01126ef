//! API Gateway HTTP API (payload format 2.0); also the base of Function URL
//! events, which share the shape.

use http::header::COOKIE;
use serde_json::{json, Map, Value};

use super::{domain_prefix, protocol, raw_path, user_agent};
use crate::maps::{comma_joined, header_pairs, last_wins, Pairs};
use crate::{body, query, time, HttpRequest, RequestContext};

/// What differs between an HTTP API route and a Function URL.
pub(super) struct Facts<'a> {
    pub(super) route_key: String,
    pub(super) stage: &'a str,
    pub(super) account_id: &'a str,
    pub(super) api_id: &'a str,
    pub(super) domain_name: String,
    /// Decoded path parameters; left out of the event when empty.
    pub(super) path_params: Pairs,
}

/// Builds an HTTP API event for a route of `ctx`.
pub(super) fn event(req: &HttpRequest, ctx: &RequestContext) -> Value {
    let route_key = match &ctx.resource {
        None => "$default".to_owned(),
        Some(template) => {
            let method = if ctx.any_method {
                "ANY"
            } else {
                req.method.as_str()
            };
            format!("{method} {template}")
        }
    };
    // HTTP API hands path parameters over decoded (REST does not).
    let path_params = ctx
        .path_params
        .iter()
        .map(|(name, value)| (name.clone(), query::decode_path_segment(value)))
        .collect();
    let stage = if ctx.stage.is_empty() {
        "$default"
    } else {
        &ctx.stage
    };
    build(
        req,
        ctx,
        Facts {
            route_key,
            stage,
            account_id: &ctx.account_id,
            api_id: &ctx.api_id,
            domain_name: ctx.domain_name.clone(),
            path_params,
        },
    )
}

/// Builds a payload-2.0 event.
///
/// Header names are lower-case and repeats are joined with `,`; `Cookie`
/// headers move into the `cookies` array (one entry per cookie) and leave
/// `headers`. `rawPath` and `rawQueryString` stay percent-encoded while
/// `queryStringParameters` are form-decoded with repeats joined by `,`.
/// Optional keys (`cookies`, `queryStringParameters`, `pathParameters`,
/// `body`) are left out when there is nothing to put in them.
///
/// `rawPath` is the path exactly as the client sent it. Captures of live HTTP
/// APIs show AWS decoding it, which makes `lambda-http` (and other adapters
/// that build a URI from it) fail on `%20` or mis-split on `%3F`; keeping it
/// encoded, as REST, ALB and Function URLs do, loses nothing.
pub(super) fn build(req: &HttpRequest, ctx: &RequestContext, facts: Facts<'_>) -> Value {
    let path = raw_path(req);
    let raw_query = req.query.as_deref().unwrap_or_default();
    let (cookie_headers, headers): (Pairs, Pairs) = header_pairs(&req.headers)
        .into_iter()
        .partition(|(name, _)| name == COOKIE.as_str());
    let cookies: Vec<Value> = cookie_headers
        .iter()
        .flat_map(|(_, value)| value.split(';'))
        .map(str::trim)
        .filter(|cookie| !cookie.is_empty())
        .map(|cookie| Value::String(cookie.to_owned()))
        .collect();
    let query = query::decoded_pairs(raw_query);
    let body = body::encode(&req.headers, &req.body);

    let mut event = json!({
        "version": "2.0",
        "routeKey": facts.route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": comma_joined(&headers),
        "requestContext": {
            "accountId": facts.account_id,
            "apiId": facts.api_id,
            "domainName": facts.domain_name,
            "domainPrefix": domain_prefix(&facts.domain_name),
            "http": {
                "method": req.method.as_str(),
                "path": path,
                "protocol": protocol(req.version),
                "sourceIp": req.source_ip.to_string(),
                "userAgent": user_agent(&req.headers),
            },
            "requestId": ctx.request_id,
            "routeKey": facts.route_key,
            "stage": facts.stage,
            "time": time::clf(ctx.time_epoch_ms),
            "timeEpoch": ctx.time_epoch_ms,
        },
        "isBase64Encoded": body.as_ref().is_some_and(|b| b.base64),
    });

    let mut optional = Map::new();
    if !cookies.is_empty() {
        optional.insert("cookies".into(), Value::Array(cookies));
    }
    if !query.is_empty() {
        optional.insert(
            "queryStringParameters".into(),
            Value::Object(comma_joined(&query)),
        );
    }
    if !facts.path_params.is_empty() {
        optional.insert(
            "pathParameters".into(),
            Value::Object(last_wins(&facts.path_params)),
        );
    }
    if let Some(body) = body {
        optional.insert("body".into(), Value::String(body.text));
    }
    if let Value::Object(fields) = &mut event {
        fields.extend(optional);
    }
    event
}
