//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`),
//! so `aws lambda invoke --endpoint-url` and boto3 work against rouse.
//!
//! One call goes parse (`parse`: path, qualifier, headers; pure) → resolve
//! (`resolve`: which version, from the route table and the store) → read
//! and check the payload → run (a DryRun stops here, an event is queued, a
//! request-response call runs) → render (`render`). Every failure is an
//! [`InvokeError`], which knows its AWS code and status (`error`).

mod error;
mod parse;
mod render;
mod resolve;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

use crate::aws::{FunctionRef, InvocationType};
use crate::body::{BoxError, ProxyBody};
use crate::lambda::LambdaCall;
use crate::Gateway;
use error::InvokeError;
pub(crate) use parse::MAX_SYNC_PAYLOAD;
use parse::{check_payload, InvokeRequest};

impl Gateway {
    pub(crate) async fn invoke_api<B>(
        &self,
        req: Request<B>,
        target: Result<FunctionRef, String>,
    ) -> Response<ProxyBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request_id = uuid::Uuid::new_v4().to_string();
        match self.invoke(req, target, &request_id).await {
            Ok(resp) => resp,
            Err(err) => err.into_response(&request_id),
        }
    }

    async fn invoke<B>(
        &self,
        req: Request<B>,
        target: Result<FunctionRef, String>,
        request_id: &str,
    ) -> Result<Response<ProxyBody>, InvokeError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let request = parse::parse(target, parts.uri.query(), &parts.headers)?;
        let version = self.resolve(&request).await?;
        let limit = request.payload_limit();
        let payload = match Limited::new(body, limit).collect().await {
            Ok(collected) => check_payload(collected.to_bytes())?,
            Err(err) => return Err(parse::body_error(&err, limit)),
        };
        self.execute(request, version, payload, request_id).await
    }

    /// The version the call runs (`None`: the current one), once the
    /// function is known to be a deployed lambda function.
    async fn resolve(&self, request: &InvokeRequest) -> Result<Option<u32>, InvokeError> {
        let name = &request.function;
        let (lambda, version) = {
            let router = self.inner.router.load();
            let function = router.function(name);
            let version =
                resolve::pick_version(function, request.qualifier.as_deref(), fastrand::f64());
            (function.map(|f| f.lambda), version)
        };
        let version = match version {
            Ok(Some(v)) => match self.inner.store.version(name, v).await {
                Ok(Some(_)) => Some(v),
                Ok(None) => return Err(InvokeError::NotFound(format!("{name}:{v}"))),
                Err(err) => {
                    tracing::error!(%err, "store error while resolving a qualifier");
                    return Err(InvokeError::Internal("Internal error".into()));
                }
            },
            Ok(None) => None,
            Err(qualifier) => return Err(InvokeError::NotFound(format!("{name}:{qualifier}"))),
        };
        resolve::invocable(name, lambda)?;
        Ok(version)
    }

    async fn execute(
        &self,
        request: InvokeRequest,
        version: Option<u32>,
        payload: Bytes,
        request_id: &str,
    ) -> Result<Response<ProxyBody>, InvokeError> {
        match request.kind {
            InvocationType::DryRun => Ok(render::status_only(StatusCode::NO_CONTENT, request_id)),
            InvocationType::Event => {
                // Committed before the 202: an accepted event survives a crash.
                let event = rouse_store::events::NewEvent {
                    id: request_id.to_string(),
                    function: request.function,
                    version,
                    payload: payload.to_vec(),
                    accepted_at_ms: crate::async_invoke::now_ms(),
                };
                if let Err(err) = self.inner.events.submit(event).await {
                    tracing::error!(%err, "async invocation not accepted");
                    return Err(InvokeError::Internal(
                        "The asynchronous invocation could not be queued.".into(),
                    ));
                }
                Ok(render::status_only(StatusCode::ACCEPTED, request_id))
            }
            InvocationType::RequestResponse => {
                let call = LambdaCall {
                    function: &request.function,
                    version,
                    request_id: request_id.to_string(),
                    payload,
                    client_context: request.client_context,
                    trace_id: request.trace_id,
                };
                let invoked = self
                    .call_lambda(call)
                    .await
                    .map_err(|err| InvokeError::from_acquire(err, &request.function))?;
                Ok(render::render(invoked, version, request.tail, request_id))
            }
        }
    }
}
