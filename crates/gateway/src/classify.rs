//! Which kind of handler a request is for, decided from its method, host
//! and path alone, before anything is read or acquired. Each kind has one
//! executor (`proxy`, `http_events`, `function_url`, `invoke_api`).

use http::Method;

use crate::aws::{self, FunctionRef};
use crate::router::{FunctionInfo, RouteMatch, Router};

/// Kinesis operations: `POST /` with `X-Amz-Target: Kinesis_20131202.<Op>`.
const KINESIS_TARGET_PREFIX: &str = "Kinesis_20131202.";

/// Function URLs: `/urls/{function}/...` reaches a function on any path.
const FUNCTION_URL_PREFIX: &str = "/urls/";

/// Where one request goes.
#[derive(Debug, PartialEq)]
pub(crate) enum Target<'r, 'p> {
    /// `POST /2015-03-31/functions/{name}/invocations`; `Err` is the
    /// message for an invalid function name.
    InvokeApi(Result<FunctionRef, String>),
    /// The Kinesis API (JSON 1.1): the operation named by `X-Amz-Target`.
    /// (SQS's JSON protocol, `AmazonSQS.<Op>`, is the next such target.)
    Kinesis(String),
    /// `/urls/{function}/{path}`: `path` is the rest after the function
    /// name, without its leading `/` (`""` for none).
    FunctionUrl {
        function: &'r FunctionInfo,
        path: &'p str,
    },
    /// A route to a lambda function: the request becomes an event.
    Lambda(RouteMatch<'r>),
    /// A route to a web function: the request is proxied.
    Web(RouteMatch<'r>),
    NotFound,
}

/// The target of a request. The AWS APIs come first (Kinesis by its
/// `X-Amz-Target` header, the Invoke API by its path), then Function URLs,
/// then the routes (which include `{fn}.{domain}` hosts).
pub(crate) fn classify<'r, 'p>(
    method: &Method,
    host: Option<&str>,
    path: &'p str,
    amz_target: Option<&str>,
    router: &'r Router,
) -> Target<'r, 'p> {
    if method == Method::POST {
        if let Some(op) = amz_target.and_then(|t| t.strip_prefix(KINESIS_TARGET_PREFIX)) {
            if path == "/" {
                return Target::Kinesis(op.to_string());
            }
        }
        if let Some(target) = aws::parse_invoke_path(path) {
            return Target::InvokeApi(target);
        }
    }
    if let Some(rest) = path.strip_prefix(FUNCTION_URL_PREFIX) {
        let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
        return match router.function(name) {
            Some(function) => Target::FunctionUrl { function, path },
            None => Target::NotFound,
        };
    }
    match router.lookup(method.as_str(), path, host) {
        Some(route) if route.function.lambda => Target::Lambda(route),
        Some(route) => Target::Web(route),
        None => Target::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rouse_manifest::StageRouting;
    use rouse_store::{RouteRecord, RouteShape};

    use super::*;

    fn route(function: &str, method: &str, path: &str, routing: StageRouting) -> RouteRecord {
        RouteRecord {
            function: function.into(),
            method: method.into(),
            path: path.into(),
            shape: RouteShape::Http,
            stage_routing: routing,
        }
    }

    fn info(name: &str, lambda: bool) -> FunctionInfo {
        FunctionInfo {
            name: name.into(),
            lambda,
            stage: "dev".into(),
            aliases: BTreeMap::new(),
            budget: std::time::Duration::ZERO,
        }
    }

    fn router() -> Router {
        Router::new(
            &[
                route("site", "ANY", "/{proxy+}", StageRouting::None),
                route("api", "GET", "/api/{id}", StageRouting::Prefix),
                route("hello", "POST", "/hello", StageRouting::None),
            ],
            [info("site", false), info("api", true), info("hello", true)],
            Some("example.com".into()),
        )
    }

    /// A target in a few words, for the table.
    fn describe(target: &Target<'_, '_>) -> String {
        match target {
            Target::InvokeApi(Ok(f)) => format!("invoke {} {:?}", f.name, f.qualifier),
            Target::InvokeApi(Err(message)) => format!("invoke error: {message}"),
            Target::Kinesis(op) => format!("kinesis {op}"),
            Target::FunctionUrl { function, path } => format!("url {} {path:?}", function.name),
            Target::Lambda(route) => format!("lambda {}", route.function.name),
            Target::Web(route) => format!("web {}", route.function.name),
            Target::NotFound => "not found".into(),
        }
    }

    #[test]
    fn requests_are_classified() {
        let router = router();
        let table = [
            // (method, host, path, target)
            (
                "POST",
                None,
                "/2015-03-31/functions/hello/invocations",
                "invoke hello None",
            ),
            ("POST", Some("kinesis"), "/", "kinesis PutRecords"),
            // The header on another path or method is just a request.
            ("POST", Some("kinesis"), "/x", "web site"),
            ("GET", Some("kinesis"), "/", "web site"),
            (
                "POST",
                None,
                "/2015-03-31/functions/hello:live/invocations",
                "invoke hello Some(\"live\")",
            ),
            (
                "POST",
                None,
                "/2015-03-31/functions/a%20b/invocations",
                "invoke error: invalid function name: a b",
            ),
            // Only POST is an invocation; GET falls through to the routes.
            (
                "GET",
                None,
                "/2015-03-31/functions/hello/invocations",
                "web site",
            ),
            ("GET", None, "/urls/api/x/y", "url api \"x/y\""),
            ("GET", None, "/urls/API", "url api \"\""),
            ("DELETE", None, "/urls/site/", "url site \"\""),
            ("GET", None, "/urls/nobody/x", "not found"),
            ("GET", None, "/dev/api/7", "lambda api"),
            ("POST", None, "/hello", "lambda hello"),
            ("GET", None, "/hello", "web site"),
            (
                "GET",
                Some("hello.example.com"),
                "/anything",
                "lambda hello",
            ),
            ("GET", Some("site.example.com:8080"), "/", "web site"),
        ];
        for (method, host, path, expected) in table {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            // `Some("kinesis")` in the host column stands for the header.
            let (host, amz) = match host {
                Some("kinesis") => (None, Some("Kinesis_20131202.PutRecords")),
                other => (other, None),
            };
            let target = classify(&method, host, path, amz, &router);
            assert_eq!(describe(&target), expected, "{method} {host:?} {path}");
        }
    }

    #[test]
    fn nothing_routed_is_not_found() {
        let router = Router::new(&[], [info("web", false)], None);
        assert_eq!(
            classify(&Method::GET, None, "/", None, &router),
            Target::NotFound
        );
        assert_eq!(
            classify(&Method::GET, Some("web.example.com"), "/", None, &router),
            Target::NotFound
        );
    }
}
