//! HTTP routes to lambda functions: the request becomes an API Gateway (or
//! Function URL) event, the handler's result becomes the HTTP response.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use rouse_events::{HttpRequest, RequestContext, Shape};

use crate::body::{full, IncomingBody, ProxyBody};
use crate::ingress::{admit, too_large};
use crate::lambda::{LambdaCall, LambdaResult};
use crate::proxy::live_version;
use crate::router::RouteMatch;
use crate::{json_error, responses::acquire_error, stage_prefix, Gateway};

/// Where an HTTP request goes when its function is a lambda function.
pub(crate) struct LambdaTarget {
    pub function: String,
    pub shape: Shape,
    /// The matched template; `None` for catch-alls without one.
    pub resource: Option<String>,
    pub any_method: bool,
    pub params: Vec<(String, String)>,
    pub stage: String,
    /// The path as the function sees it (without a `/urls/{fn}` prefix).
    pub path: String,
    /// The version to run when not the current one (the `live` alias).
    pub version: Option<u32>,
}

impl LambdaTarget {
    /// The target of a route to a lambda function; `path` is the request's.
    pub(crate) fn new(route: &RouteMatch<'_>, path: &str) -> LambdaTarget {
        let shape = match route.shape {
            rouse_store::RouteShape::Http => Shape::RestV1,
            rouse_store::RouteShape::HttpApi => Shape::HttpApiV2,
        };
        // A REST event's `path` leaves the stage out (its
        // `requestContext.path` has it); an HTTP API's `rawPath` keeps it.
        let path = match (route.stage_prefix, shape) {
            (Some(_), Shape::RestV1) => stage_prefix::without_first_segment(path),
            _ => path,
        };
        LambdaTarget {
            function: route.function.name.clone(),
            shape,
            resource: route.template.map(str::to_string),
            any_method: route.any_method,
            params: route
                .params
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            stage: route.function.stage.clone(),
            path: path.to_string(),
            version: live_version(route),
        }
    }
}

/// `apiId` in events: API Gateway ids are 10 characters.
const API_ID: &str = "rouse00000";

impl Gateway {
    pub(crate) async fn lambda_http<B: IncomingBody>(
        &self,
        req: Request<B>,
        target: LambdaTarget,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        let limit = self.inner.config.max_body_bytes;
        let Ok((parts, body)) = admit(req, client, limit) else {
            return too_large(limit);
        };
        let body = match Limited::new(body, limit as usize).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => return too_large(limit),
            Err(_) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "Bad request: the body could not be read",
                )
            }
        };
        let (shape, version, function) = (target.shape, target.version, target.function.clone());
        let (request_id, event) = event(parts, body, target, client);
        let call = LambdaCall {
            function: &function,
            version,
            request_id,
            payload: event,
            client_context: None,
            trace_id: None,
        };
        let invoked = match self.call_lambda(call).await {
            Ok(invoked) => invoked,
            Err(err) => return acquire_error(err),
        };
        http_response(shape, &function, invoked.result)
    }
}

/// The event for one request: its id and JSON.
fn event(
    parts: http::request::Parts,
    body: Bytes,
    target: LambdaTarget,
    client: SocketAddr,
) -> (String, Bytes) {
    let domain_name = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let request = HttpRequest {
        method: parts.method,
        path: target.path,
        query: parts.uri.query().map(str::to_string),
        version: parts.version,
        headers: parts.headers,
        body,
        source_ip: client.ip(),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let context = RequestContext {
        resource: target.resource,
        any_method: target.any_method,
        path_params: target.params,
        stage: target.stage,
        request_id: request_id.clone(),
        time_epoch_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        account_id: rouse_pool::lambda::ACCOUNT_ID.into(),
        api_id: API_ID.into(),
        domain_name,
        region: rouse_pool::lambda::REGION.into(),
        function_name: target.function,
    };
    let event = rouse_events::to_event(target.shape, &request, &context);
    // Straight into the buffer that becomes the `next` body (a `Value`
    // always serialises; `to_string` would go through `fmt` on the way).
    let mut json = Vec::with_capacity(1024 + request.body.len() * 4 / 3);
    if let Err(err) = serde_json::to_writer(&mut json, &event) {
        tracing::error!(%err, "cannot serialise an event");
    }
    (request_id, Bytes::from(json))
}

/// The HTTP response for a handler's result, as API Gateway gives it.
fn http_response(shape: Shape, function: &str, result: LambdaResult) -> Response<ProxyBody> {
    match result {
        LambdaResult::Ok { body, .. } => match rouse_events::from_result(shape, &body) {
            Ok(resp) => {
                let mut out = Response::new(full(resp.body));
                *out.status_mut() = resp.status;
                *out.headers_mut() = resp.headers;
                out
            }
            Err(err) => {
                tracing::warn!(function, %err, "malformed lambda response");
                json_error(StatusCode::BAD_GATEWAY, "Internal server error")
            }
        },
        // API Gateway's answers: an integration timeout is a 504, any
        // other function error a 502.
        LambdaResult::FunctionError { error_type, .. } if error_type == "Sandbox.Timedout" => {
            json_error(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
        }
        LambdaResult::FunctionError { .. } => {
            json_error(StatusCode::BAD_GATEWAY, "Internal server error")
        }
    }
}
