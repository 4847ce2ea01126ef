//! What the gateway checks and adds for one HTTP route around its function:
//! CORS and authorizers, as API Gateway applies them. Resolved at load
//! time (service-wide settings such as `provider.httpApi.cors` copied into
//! every route they cover), so the gateway reads one route's policy alone.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoutePolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<CorsPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<Authorizer>,
}

impl RoutePolicy {
    /// No CORS, no authorizer: the route is served as it always was.
    pub fn is_open(&self) -> bool {
        self.cors.is_none() && self.authorizer.is_none()
    }
}

/// A CORS configuration: REST's `http.cors` (one route) or HTTP API's
/// `provider.httpApi.cors` (every `httpApi` route of the service).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CorsPolicy {
    /// `*`, exact origins, or origins with `*` wildcards (`https://*.example.com`).
    pub allow_origins: Vec<String>,
    /// `*` or header names.
    pub allow_headers: Vec<String>,
    /// `*` or upper-case methods.
    pub allow_methods: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_secs: Option<u32>,
    /// REST only: `Cache-Control` of the preflight answer.
    pub cache_control: Option<String>,
}

/// Headers the Serverless Framework allows when CORS is `true` or names no headers.
pub const DEFAULT_CORS_HEADERS: [&str; 7] = [
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
    "X-Amzn-Trace-Id",
];

/// Who may call a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Authorizer {
    /// HTTP API JWT authorizer: a bearer token signed by the issuer's keys.
    Jwt(JwtAuthorizer),
    /// A lambda function of the service decides (REST `TOKEN`/`REQUEST`).
    Lambda(LambdaAuthorizer),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuthorizer {
    /// The name under `provider.httpApi.authorizers`.
    pub name: String,
    /// Where the token is (`$request.header.Authorization` by default).
    pub identity_source: IdentitySource,
    /// Must equal the token's `iss`; its `/.well-known/openid-configuration`
    /// names the signing keys.
    pub issuer_url: String,
    /// The token's `aud` (or `client_id`) must be one of these.
    pub audience: Vec<String>,
    /// The route's `authorizer.scopes`: the token needs one of them.
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaAuthorizer {
    /// The full name of the authorizer function.
    pub function: String,
    pub kind: LambdaAuthorizerKind,
    /// What the authorizer is given and its answers are cached by; a
    /// request without all of them is refused (401) without an invoke.
    pub identity_source: Vec<IdentitySource>,
    /// Seconds an answer is reused for the same identity (0: never).
    pub result_ttl_secs: u32,
}

/// REST's two kinds of Lambda authorizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LambdaAuthorizerKind {
    /// The event carries `authorizationToken` (one header's value).
    Token,
    /// The event carries the request's headers, query and path.
    Request,
}

/// API Gateway's default for `resultTtlInSeconds`.
pub const DEFAULT_AUTHORIZER_TTL_SECS: u32 = 300;

/// One part of a request an authorizer reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdentitySource {
    /// A header, by name (compared case-insensitively).
    Header(String),
    /// A query string parameter.
    Query(String),
}
