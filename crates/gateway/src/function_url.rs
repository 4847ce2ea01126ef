//! The Function URL executor: `/urls/{function}/{path}` reaches a function
//! on any path and method, as a Function URL event for a lambda function
//! and as `/{path}` for a web app.

use std::net::SocketAddr;

use http::{Request, Response, StatusCode};

use crate::body::{IncomingBody, ProxyBody};
use crate::http_events::LambdaTarget;
use crate::router::FunctionInfo;
use crate::{json_error, with_path, Gateway};

/// A Function URL request, owned, so the route table can be released
/// before the request waits for an instance.
pub(crate) struct UrlTarget {
    function: String,
    lambda: bool,
    /// The path the function sees, starting with `/`.
    path: String,
}

impl UrlTarget {
    /// `rest` is what follows `/urls/{function}/`.
    pub(crate) fn new(function: &FunctionInfo, rest: &str) -> UrlTarget {
        UrlTarget {
            function: function.name.clone(),
            lambda: function.lambda,
            path: format!("/{rest}"),
        }
    }
}

impl Gateway {
    pub(crate) async fn function_url<B: IncomingBody>(
        &self,
        req: Request<B>,
        target: UrlTarget,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        if target.lambda {
            let target = LambdaTarget {
                function: target.function,
                shape: rouse_events::Shape::FunctionUrl,
                resource: None,
                any_method: true,
                params: Vec::new(),
                stage: "$default".into(),
                path: target.path,
                version: None,
            };
            return self.lambda_http(req, target, client).await;
        }
        let (mut parts, body) = req.into_parts();
        parts.uri = match with_path(&parts.uri, &target.path) {
            Ok(uri) => uri,
            Err(_) => return json_error(StatusCode::BAD_REQUEST, "Bad request URI"),
        };
        self.forward(&target.function, Request::from_parts(parts, body), client)
            .await
    }
}
