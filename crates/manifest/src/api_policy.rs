//! Reading the API Gateway settings of routes: REST `http.cors` and
//! `http.authorizer`, HTTP API `provider.httpApi.{cors,authorizers}` and
//! `httpApi.authorizer`, into each route's [`RoutePolicy`].

use std::collections::{BTreeMap, BTreeSet};

use crate::ctx::{Ctx, Fields, Section};
use crate::error::ManifestError;
use crate::yaml::{Node, Value};
use crate::{
    Authorizer, CorsPolicy, Event, FunctionSpec, IdentitySource, JwtAuthorizer, LambdaAuthorizer,
    LambdaAuthorizerKind, RoutePolicy, DEFAULT_AUTHORIZER_TTL_SECS, DEFAULT_CORS_HEADERS,
};

/// Every method a route of `method: any` answers, for CORS's allowed methods.
const ALL_METHODS: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];
/// API Gateway's upper bound for `resultTtlInSeconds`.
const MAX_AUTHORIZER_TTL_SECS: u64 = 3600;

/// What the service as a whole says about its APIs, read before its functions.
#[derive(Default)]
pub(crate) struct ApiSettings {
    /// `provider.httpApi.cors`; its methods are filled in by [`finish`]
    /// when it names none.
    pub http_api_cors: Option<CorsPolicy>,
    /// `provider.httpApi.authorizers` of the JWT kind, by name.
    pub jwt_authorizers: BTreeMap<String, JwtAuthorizer>,
    /// Keys under `functions:`, which REST authorizers may name.
    pub function_keys: BTreeSet<String>,
    /// `{service}-{stage}-`: how a key becomes a default full name.
    pub name_prefix: String,
}

/// `provider.httpApi`: `cors` and `authorizers`; other keys warn.
pub(crate) fn read_http_api(
    ctx: &Ctx<'_>,
    node: &Node,
    settings: &mut ApiSettings,
) -> Result<(), ManifestError> {
    let node = ctx.val(node)?;
    let section = Section {
        name: "provider.httpApi",
        path: "provider.httpApi",
    };
    let fields = ctx.fields(&node, "httpApi", section, &["cors", "authorizers"])?;
    if let Some(cors) = fields.get("cors") {
        settings.http_api_cors = http_api_cors(ctx, cors)?;
    }
    if let Some(authorizers) = fields.get("authorizers") {
        let authorizers = ctx.val(authorizers)?;
        let entries: &[(Node, Node)] =
            match &authorizers.value {
                Value::Map(entries) => entries,
                Value::Null => &[],
                _ => return Err(ctx.expected(
                    &authorizers,
                    "authorizers",
                    "a mapping of authorizer names to `{ identitySource, issuerUrl, audience }`",
                )),
            };
        for (key, value) in entries {
            let name = key.key_text();
            if let Some(jwt) = jwt_definition(ctx, &name, value)? {
                settings.jwt_authorizers.insert(name, jwt);
            }
        }
    }
    Ok(())
}

/// `provider.httpApi.cors: true` or its mapping form.
fn http_api_cors(ctx: &Ctx<'_>, node: &Node) -> Result<Option<CorsPolicy>, ManifestError> {
    let node = ctx.val(node)?;
    let defaults = CorsPolicy {
        allow_origins: vec!["*".to_owned()],
        allow_headers: DEFAULT_CORS_HEADERS.map(str::to_owned).to_vec(),
        ..CorsPolicy::default()
    };
    match &node.value {
        Value::Bool(false) => return Ok(None),
        Value::Bool(true) => return Ok(Some(defaults)),
        Value::Map(_) => {}
        _ => return Err(ctx.expected(&node, "cors", "`true` or a mapping")),
    }
    let section = Section {
        name: "provider.httpApi.cors",
        path: "provider.httpApi.cors",
    };
    let fields = ctx.fields(
        &node,
        "cors",
        section,
        &[
            "allowedOrigins",
            "allowedHeaders",
            "allowedMethods",
            "allowCredentials",
            "exposedResponseHeaders",
            "maxAge",
        ],
    )?;
    let mut cors = defaults;
    if let Some(n) = fields.get("allowedOrigins") {
        cors.allow_origins = strings(ctx, n, "allowedOrigins")?;
    }
    if let Some(n) = fields.get("allowedHeaders") {
        cors.allow_headers = strings(ctx, n, "allowedHeaders")?;
    }
    if let Some(n) = fields.get("allowedMethods") {
        cors.allow_methods = methods(ctx, n, "allowedMethods")?;
    }
    if let Some(n) = fields.get("exposedResponseHeaders") {
        cors.expose_headers = strings(ctx, n, "exposedResponseHeaders")?;
    }
    if let Some(n) = fields.get("maxAge") {
        cors.max_age_secs = Some(max_age(ctx, n)?);
    }
    if let Some(n) = fields.get("allowCredentials") {
        cors.allow_credentials = boolean(ctx, n, "allowCredentials")?;
        // API Gateway refuses this configuration: a browser never sends
        // credentials to an API that answers any origin with `*`.
        if cors.allow_credentials && cors.allow_origins.iter().any(|o| o == "*") {
            return Err(ctx.error(
                n.loc,
                "`allowCredentials: true` needs `allowedOrigins` to list the origins: \
                 browsers refuse credentials with the `*` origin",
            ));
        }
    }
    Ok(Some(cors))
}

/// One entry of `provider.httpApi.authorizers`. Only JWT authorizers are
/// built; a Lambda (`type: request`) one is reported and left out, so the
/// routes naming it fail to load rather than run unprotected.
fn jwt_definition(
    ctx: &Ctx<'_>,
    name: &str,
    node: &Node,
) -> Result<Option<JwtAuthorizer>, ManifestError> {
    let node = ctx.val(node)?;
    let path = format!("provider.httpApi.authorizers.{name}");
    let section = Section {
        name: &path,
        path: &path,
    };
    let fields = ctx.fields(
        &node,
        name,
        section,
        &["type", "identitySource", "issuerUrl", "audience", "name"],
    )?;
    if let Some(kind) = fields.get("type") {
        let kind_text = ctx.string(kind, "type")?;
        if !kind_text.eq_ignore_ascii_case("jwt") {
            ctx.warn(
                kind.loc,
                format!(
                    "`{path}` of type `{kind_text}` is not supported by rouse (only JWT \
                     authorizers are); routes using it cannot be deployed"
                ),
            );
            return Ok(None);
        }
    }
    let missing = |what: &str| {
        ctx.error(
            node.loc,
            format!("JWT authorizer `{name}` needs `{what}`, like `{{ issuerUrl: https://issuer.example.com, audience: [my-client] }}`"),
        )
    };
    let issuer_node = fields
        .get("issuerUrl")
        .ok_or_else(|| missing("issuerUrl"))?;
    let issuer_url = ctx.non_empty(issuer_node, "issuerUrl")?;
    if !(issuer_url.starts_with("https://") || issuer_url.starts_with("http://")) {
        return Err(ctx.error(
            issuer_node.loc,
            format!("`issuerUrl` must be an http(s) URL, found {issuer_url:?}"),
        ));
    }
    let audience = strings(
        ctx,
        fields.get("audience").ok_or_else(|| missing("audience"))?,
        "audience",
    )?;
    let identity_source = match fields.get("identitySource") {
        Some(n) => {
            let text = ctx.string(n, "identitySource")?;
            let header = text
                .trim()
                .strip_prefix("$request.header.")
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    ctx.error(
                        n.loc,
                        format!("`identitySource` of a JWT authorizer must be `$request.header.NAME`, found {text:?}"),
                    )
                })?;
            IdentitySource::Header(header.to_owned())
        }
        None => IdentitySource::Header("Authorization".to_owned()),
    };
    Ok(Some(JwtAuthorizer {
        name: name.to_owned(),
        identity_source,
        issuer_url,
        audience,
        scopes: Vec::new(),
    }))
}

/// The policy of a REST (`http`) event from its `cors` and `authorizer`.
pub(crate) fn rest_event(
    ctx: &Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
    api: &ApiSettings,
) -> Result<RoutePolicy, ManifestError> {
    let mut policy = RoutePolicy::default();
    if let Some(cors) = fields.get("cors") {
        policy.cors = rest_cors(ctx, cors, path)?;
    }
    if let Some(authorizer) = fields.get("authorizer") {
        policy.authorizer = rest_authorizer(ctx, authorizer, path, api)?.map(Authorizer::Lambda);
        if policy.authorizer.is_some() {
            not_enforced(ctx, authorizer, path);
        }
    }
    Ok(policy)
}

/// The policy of an HTTP API (`httpApi`) event: the service's CORS and the
/// event's `authorizer`.
pub(crate) fn http_api_event(
    ctx: &Ctx<'_>,
    fields: &Fields<'_>,
    path: &str,
    api: &ApiSettings,
) -> Result<RoutePolicy, ManifestError> {
    let mut policy = RoutePolicy {
        cors: api.http_api_cors.clone(),
        authorizer: None,
    };
    let Some(node) = fields.get("authorizer") else {
        return Ok(policy);
    };
    let node = ctx.val(node)?;
    let (name_node, scopes) = match &node.value {
        Value::Str(_) => (node.clone().into_owned(), Vec::new()),
        Value::Map(_) => {
            let auth_path = format!("{path}.authorizer");
            let section = Section {
                name: &auth_path,
                path: &auth_path,
            };
            let auth = ctx.fields(&node, "authorizer", section, &["name", "scopes", "type"])?;
            if let Some(kind) = auth.get("type") {
                let kind_text = ctx.string(kind, "type")?;
                if !kind_text.eq_ignore_ascii_case("jwt") {
                    return Err(ctx.error(
                        kind.loc,
                        format!("authorizer of type `{kind_text}` is not supported by rouse; JWT authorizers are"),
                    ));
                }
            }
            let Some(name) = auth.get("name") else {
                return Err(ctx.error(
                    node.loc,
                    "`authorizer` needs `name`: one of `provider.httpApi.authorizers`",
                ));
            };
            let scopes = match auth.get("scopes") {
                Some(n) => strings(ctx, n, "scopes")?,
                None => Vec::new(),
            };
            (ctx.val(name)?.into_owned(), scopes)
        }
        _ => return Err(ctx.expected(&node, "authorizer", "a mapping `{ name, scopes }`")),
    };
    let name = ctx.string(&name_node, "name")?;
    let Some(definition) = api.jwt_authorizers.get(&name) else {
        let known: Vec<&str> = api.jwt_authorizers.keys().map(String::as_str).collect();
        return Err(ctx.error(
            name_node.loc,
            format!(
                "authorizer `{name}` is not defined under `provider.httpApi.authorizers` as a JWT authorizer{}",
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (defined: {})", known.join(", "))
                }
            ),
        ));
    };
    policy.authorizer = Some(Authorizer::Jwt(JwtAuthorizer {
        scopes,
        ..definition.clone()
    }));
    not_enforced(ctx, &node, path);
    Ok(policy)
}

/// Authorizers are checked and kept with the route, but the gateway does
/// not call them yet: say so at every route, as before they were read.
fn not_enforced(ctx: &Ctx<'_>, node: &Node, path: &str) {
    ctx.warn(
        node.loc,
        format!("`{path}.authorizer` is not enforced by rouse yet: the route is served without it"),
    );
}

/// `http.cors: true` or its mapping form. Methods are left empty here and
/// filled in by [`finish`] from the events on the same path.
fn rest_cors(ctx: &Ctx<'_>, node: &Node, path: &str) -> Result<Option<CorsPolicy>, ManifestError> {
    let node = ctx.val(node)?;
    let mut cors = CorsPolicy {
        allow_origins: vec!["*".to_owned()],
        allow_headers: DEFAULT_CORS_HEADERS.map(str::to_owned).to_vec(),
        ..CorsPolicy::default()
    };
    match &node.value {
        Value::Bool(false) => return Ok(None),
        Value::Bool(true) => return Ok(Some(cors)),
        Value::Map(_) => {}
        _ => return Err(ctx.expected(&node, "cors", "`true` or a mapping")),
    }
    let cors_path = format!("{path}.cors");
    let section = Section {
        name: &cors_path,
        path: &cors_path,
    };
    let fields = ctx.fields(
        &node,
        "cors",
        section,
        &[
            "origin",
            "origins",
            "headers",
            "methods",
            "allowCredentials",
            "maxAge",
            "cacheControl",
        ],
    )?;
    match (fields.get("origin"), fields.get("origins")) {
        (Some(_), Some(n)) => {
            return Err(ctx.error(n.loc, "`cors` takes `origin` or `origins`, not both"))
        }
        (Some(n), None) | (None, Some(n)) => cors.allow_origins = strings(ctx, n, "origins")?,
        (None, None) => {}
    }
    if let Some(n) = fields.get("headers") {
        cors.allow_headers = strings(ctx, n, "headers")?;
    }
    if let Some(n) = fields.get("methods") {
        cors.allow_methods = methods(ctx, n, "methods")?;
    }
    if let Some(n) = fields.get("allowCredentials") {
        cors.allow_credentials = boolean(ctx, n, "allowCredentials")?;
    }
    if let Some(n) = fields.get("maxAge") {
        cors.max_age_secs = Some(max_age(ctx, n)?);
    }
    if let Some(n) = fields.get("cacheControl") {
        cors.cache_control = Some(ctx.non_empty(n, "cacheControl")?);
    }
    Ok(Some(cors))
}

/// `http.authorizer`: a function of the service by key, a function ARN,
/// or a mapping with `name`/`arn`, `type`, `identitySource` and
/// `resultTtlInSeconds`. IAM and Cognito authorizers are reported and
/// left out.
fn rest_authorizer(
    ctx: &Ctx<'_>,
    node: &Node,
    path: &str,
    api: &ApiSettings,
) -> Result<Option<LambdaAuthorizer>, ManifestError> {
    let node = ctx.val(node)?;
    let auth_path = format!("{path}.authorizer");
    let unsupported = |loc, what: &str| {
        ctx.warn(
            loc,
            format!(
                "`{auth_path}` ({what}) is not supported by rouse: the route is served without it"
            ),
        );
        Ok(None)
    };
    let (target, kind, identity, ttl) =
        match &node.value {
            Value::Str(text) if text.eq_ignore_ascii_case("aws_iam") => {
                return unsupported(node.loc, "IAM authorization")
            }
            Value::Str(_) => (node.clone().into_owned(), None, None, None),
            Value::Map(_) => {
                let section = Section {
                    name: &auth_path,
                    path: &auth_path,
                };
                let fields = ctx.fields(
                    &node,
                    "authorizer",
                    section,
                    &[
                        "name",
                        "arn",
                        "type",
                        "identitySource",
                        "resultTtlInSeconds",
                    ],
                )?;
                let target = match (fields.get("name"), fields.get("arn")) {
                    (_, Some(arn)) => arn,
                    (Some(name), None) => name,
                    (None, None) => {
                        return Err(ctx.error(
                            node.loc,
                            "`authorizer` needs `name` (a function of this service) or `arn`",
                        ))
                    }
                };
                (
                    ctx.val(target)?.into_owned(),
                    fields.get("type"),
                    fields.get("identitySource"),
                    fields.get("resultTtlInSeconds"),
                )
            }
            _ => return Err(ctx.expected(
                &node,
                "authorizer",
                "a function name or a mapping `{ name, type, identitySource, resultTtlInSeconds }`",
            )),
        };
    let kind = match kind {
        None => LambdaAuthorizerKind::Token,
        Some(n) => {
            let text = ctx.string(n, "type")?;
            match text.to_ascii_lowercase().as_str() {
                "token" => LambdaAuthorizerKind::Token,
                "request" => LambdaAuthorizerKind::Request,
                "aws_iam" => return unsupported(n.loc, "IAM authorization"),
                "cognito_user_pools" => return unsupported(n.loc, "a Cognito user pool"),
                _ => {
                    return Err(ctx.error(
                        n.loc,
                        format!("authorizer `type` must be `token` or `request`, found {text:?}"),
                    ))
                }
            }
        }
    };
    let target_text = ctx.string(&target, "authorizer")?;
    let function = if target_text.starts_with("arn:") {
        if target_text.starts_with("arn:aws:cognito-idp:") {
            return unsupported(target.loc, "a Cognito user pool");
        }
        // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
        match target_text.split(':').collect::<Vec<_>>().as_slice() {
            [_, _, "lambda", _, _, "function", name, ..] if !name.is_empty() => (*name).to_owned(),
            _ => {
                return Err(ctx.error(
                    target.loc,
                    format!("authorizer ARN must name a Lambda function (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`), found {target_text:?}"),
                ))
            }
        }
    } else if api.function_keys.contains(&target_text) {
        format!("{}{target_text}", api.name_prefix)
    } else {
        return Err(ctx.error(
            target.loc,
            format!("authorizer `{target_text}` is not a function of this service"),
        ));
    };
    let identity_source = match identity {
        None => vec![IdentitySource::Header("Authorization".to_owned())],
        Some(n) => {
            let text = ctx.string(n, "identitySource")?;
            let mut sources = Vec::new();
            for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let source = if let Some(h) = part.strip_prefix("method.request.header.") {
                    IdentitySource::Header(h.to_owned())
                } else if let Some(q) = part.strip_prefix("method.request.querystring.") {
                    IdentitySource::Query(q.to_owned())
                } else {
                    return Err(ctx.error(
                        n.loc,
                        format!("`identitySource` parts must be `method.request.header.NAME` or `method.request.querystring.NAME`, found {part:?}"),
                    ));
                };
                sources.push(source);
            }
            if kind == LambdaAuthorizerKind::Token && sources.len() != 1 {
                return Err(ctx.error(
                    n.loc,
                    "a `token` authorizer reads exactly one header, like `method.request.header.Authorization`",
                ));
            }
            sources
        }
    };
    let result_ttl_secs = match ttl {
        Some(n) => {
            u32::try_from(ctx.whole(n, "resultTtlInSeconds", 0..=MAX_AUTHORIZER_TTL_SECS)?)
                .unwrap_or(DEFAULT_AUTHORIZER_TTL_SECS)
        }
        None => DEFAULT_AUTHORIZER_TTL_SECS,
    };
    Ok(Some(LambdaAuthorizer {
        function,
        kind,
        identity_source,
        result_ttl_secs,
    }))
}

/// What can only be decided with every function read: CORS methods named
/// by no configuration come from the routes (REST: those on the same
/// path with CORS, plus `OPTIONS`; HTTP API: those of every `httpApi`
/// route, plus `OPTIONS`), and authorizers naming a function by key get
/// its full name (which `functions.*.name` may have changed).
pub(crate) fn finish(functions: &mut [FunctionSpec], api: &ApiSettings) {
    let full_names: BTreeMap<String, String> = functions
        .iter()
        .map(|f| {
            (
                format!("{}{}", api.name_prefix, f.short_name),
                f.name.clone(),
            )
        })
        .collect();
    let mut rest_methods: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut http_api_methods = BTreeSet::new();
    for function in functions.iter() {
        for event in &function.events {
            match event {
                Event::Http(http) if http.policy.cors.is_some() => add_method(
                    rest_methods.entry(http.path.clone()).or_default(),
                    &http.method,
                ),
                Event::HttpApi(http) => add_method(&mut http_api_methods, &http.method),
                _ => {}
            }
        }
    }
    for function in functions.iter_mut() {
        for event in &mut function.events {
            let (http, methods) = match event {
                Event::Http(http) => {
                    let methods = rest_methods.get(&http.path).cloned().unwrap_or_default();
                    (http, methods)
                }
                Event::HttpApi(http) => (http, http_api_methods.clone()),
                _ => continue,
            };
            if let Some(cors) = &mut http.policy.cors {
                if cors.allow_methods.is_empty() {
                    let mut methods = methods;
                    methods.insert("OPTIONS".to_owned());
                    cors.allow_methods = methods.into_iter().collect();
                }
            }
            if let Some(Authorizer::Lambda(lambda)) = &mut http.policy.authorizer {
                if let Some(full) = full_names.get(&lambda.function) {
                    lambda.function = full.clone();
                }
            }
        }
    }
}

fn add_method(methods: &mut BTreeSet<String>, method: &str) {
    if method == "ANY" {
        methods.extend(ALL_METHODS.map(str::to_owned));
    } else {
        methods.insert(method.to_owned());
    }
}

/// A list of strings, or one string.
fn strings(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<Vec<String>, ManifestError> {
    let node = ctx.val(node)?;
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![&*node],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let text = ctx.non_empty(item, field)?;
        out.push(text.trim().to_owned());
    }
    if out.is_empty() {
        return Err(ctx.error(node.loc, format!("`{field}` must not be empty")));
    }
    Ok(out)
}

/// Methods, upper-cased; `*` stays.
fn methods(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<Vec<String>, ManifestError> {
    let list = strings(ctx, node, field)?;
    let node = ctx.val(node)?;
    list.into_iter()
        .map(|m| {
            let upper = m.to_ascii_uppercase();
            if upper == "*" || ALL_METHODS.contains(&upper.as_str()) {
                Ok(upper)
            } else {
                Err(ctx.error(
                    node.loc,
                    format!(
                        "`{field}`: unknown method `{m}`, expected `*` or some of {}",
                        ALL_METHODS.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

fn boolean(ctx: &Ctx<'_>, node: &Node, field: &str) -> Result<bool, ManifestError> {
    let node = ctx.val(node)?;
    match node.value {
        Value::Bool(b) => Ok(b),
        _ => Err(ctx.expected(&node, field, "`true` or `false`")),
    }
}

/// `maxAge`: seconds a browser may reuse a preflight answer (API Gateway
/// caps HTTP API's at 86400).
fn max_age(ctx: &Ctx<'_>, node: &Node) -> Result<u32, ManifestError> {
    let secs = ctx.whole(node, "maxAge", 0..=86_400)?;
    Ok(u32::try_from(secs).unwrap_or(86_400))
}
