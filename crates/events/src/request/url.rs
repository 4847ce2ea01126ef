//! Lambda Function URL events: the payload-2.0 shape on the `$default` route.

use serde_json::Value;

use super::v2::{build, Facts};
use crate::{HttpRequest, RequestContext};

/// Builds a Function URL event.
///
/// `apiId` and `domainPrefix` are the URL id (`ctx.api_id`) and the domain is
/// `<url-id>.lambda-url.<region>.on.aws`, whatever host the request used.
/// rouse's URLs are unauthenticated, i.e. AWS's `AuthType: NONE`, for which
/// AWS reports the account as `anonymous` and sends no authorizer. There are
/// no routes, so no path parameters.
pub(super) fn event(req: &HttpRequest, ctx: &RequestContext) -> Value {
    build(
        req,
        ctx,
        Facts {
            route_key: "$default".to_owned(),
            stage: "$default",
            account_id: "anonymous",
            api_id: &ctx.api_id,
            domain_name: format!("{}.lambda-url.{}.on.aws", ctx.api_id, ctx.region),
            path_params: Vec::new(),
        },
    )
}
