//! CORS and authorizer settings read into route policies.

use crate::*;

fn sls(source: &str) -> Result<Loaded, ManifestError> {
    parse_str(
        source,
        "serverless.yml",
        Flavor::Serverless,
        &LoadOptions::default(),
    )
}

/// The policy of every HTTP route, as `(method path, policy)`.
fn policies(loaded: &Loaded) -> Vec<(String, RoutePolicy)> {
    let mut out = Vec::new();
    for function in &loaded.spec.functions {
        for event in &function.events {
            if let Event::Http(http) | Event::HttpApi(http) = event {
                out.push((
                    format!("{} {}", http.method, http.path),
                    http.policy.clone(),
                ));
            }
        }
    }
    out
}

fn default_headers() -> Vec<String> {
    DEFAULT_CORS_HEADERS.map(str::to_owned).to_vec()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn rest_cors_true_takes_the_framework_defaults_and_the_methods_of_its_path() {
    let loaded = sls("service: s
provider: { runtime: python3.12 }
functions:
  a:
    handler: a.h
    events:
      - http: { path: items, method: get, cors: true }
      - http: { path: items, method: post, cors: true }
      - http: { path: other, method: put }
")
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let expected = CorsPolicy {
        allow_origins: strings(&["*"]),
        allow_headers: default_headers(),
        allow_methods: strings(&["GET", "OPTIONS", "POST"]),
        ..CorsPolicy::default()
    };
    let got = policies(&loaded);
    assert_eq!(got[0].1.cors.as_ref(), Some(&expected));
    assert_eq!(got[1].1.cors.as_ref(), Some(&expected));
    assert_eq!(got[2].1, RoutePolicy::default());
}

#[test]
fn rest_cors_object() {
    let loaded = sls("service: s
provider: { runtime: python3.12 }
functions:
  a:
    handler: a.h
    events:
      - http:
          path: items
          method: any
          cors:
            origins: ['https://app.example.com', 'https://*.example.org']
            headers: [Content-Type, X-Custom]
            allowCredentials: true
            maxAge: 600
            cacheControl: 'max-age=600, s-maxage=600'
")
    .unwrap();
    let cors = policies(&loaded)[0].1.cors.clone().unwrap();
    assert_eq!(
        cors,
        CorsPolicy {
            allow_origins: strings(&["https://app.example.com", "https://*.example.org"]),
            allow_headers: strings(&["Content-Type", "X-Custom"]),
            allow_methods: strings(&["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]),
            expose_headers: vec![],
            allow_credentials: true,
            max_age_secs: Some(600),
            cache_control: Some("max-age=600, s-maxage=600".into()),
        }
    );
}

#[test]
fn http_api_cors_covers_every_http_api_route() {
    let loaded = sls("service: s
provider:
  runtime: python3.12
  httpApi:
    cors:
      allowedOrigins: [https://app.example.com]
      allowedHeaders: [x-custom]
      allowCredentials: true
      exposedResponseHeaders: [x-trace]
      maxAge: 60
functions:
  a:
    handler: a.h
    events:
      - httpApi: GET /items
      - httpApi: { path: /items, method: delete }
      - http: GET /rest
")
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let got = policies(&loaded);
    let expected = CorsPolicy {
        allow_origins: strings(&["https://app.example.com"]),
        allow_headers: strings(&["x-custom"]),
        allow_methods: strings(&["DELETE", "GET", "OPTIONS"]),
        expose_headers: strings(&["x-trace"]),
        allow_credentials: true,
        max_age_secs: Some(60),
        cache_control: None,
    };
    assert_eq!(got[0].1.cors.as_ref(), Some(&expected));
    assert_eq!(got[1].1.cors.as_ref(), Some(&expected));
    // The REST API is another API: HTTP API's CORS does not reach it.
    assert_eq!(got[2].1.cors, None);
}

#[test]
fn cors_mistakes_are_errors() {
    let cases = [
        (
            "provider: { runtime: python3.12, httpApi: { cors: { allowCredentials: true } } }",
            "- httpApi: GET /x",
            "`allowCredentials: true` needs `allowedOrigins` to list the origins",
        ),
        (
            "provider: { runtime: python3.12 }",
            "- http: { path: x, method: get, cors: { maxAge: -1 } }",
            "`maxAge` must be between 0 and 86400",
        ),
        (
            "provider: { runtime: python3.12 }",
            "- http: { path: x, method: get, cors: yes-please }",
            "`cors` must be `true` or a mapping",
        ),
        (
            "provider: { runtime: python3.12, httpApi: { cors: { allowedMethods: [FETCH] } } }",
            "- httpApi: GET /x",
            "unknown method `FETCH`",
        ),
    ];
    for (provider, event, message) in cases {
        let source = format!(
            "service: s\n{provider}\nfunctions:\n  a:\n    handler: a.h\n    events:\n      {event}\n"
        );
        let err = sls(&source).expect_err(event).to_string();
        assert!(err.contains(message), "{event}: {err}");
        assert!(err.starts_with("serverless.yml:"), "{err}");
    }
}

#[test]
fn jwt_authorizers() {
    let loaded = sls("service: s
provider:
  runtime: python3.12
  httpApi:
    authorizers:
      users:
        identitySource: $request.header.Authorization
        issuerUrl: https://issuer.example.com
        audience: [client-1, client-2]
functions:
  a:
    handler: a.h
    events:
      - httpApi:
          method: get
          path: /me
          authorizer: { name: users, scopes: [read] }
      - httpApi: GET /open
")
    .unwrap();
    assert_eq!(
        loaded.warnings,
        ["serverless.yml:17:23: `functions.a.events[0].httpApi.authorizer` is not enforced by rouse yet: the route is served without it"]
    );
    let got = policies(&loaded);
    assert_eq!(
        got[0].1.authorizer,
        Some(Authorizer::Jwt(JwtAuthorizer {
            name: "users".into(),
            identity_source: IdentitySource::Header("Authorization".into()),
            issuer_url: "https://issuer.example.com".into(),
            audience: strings(&["client-1", "client-2"]),
            scopes: strings(&["read"]),
        }))
    );
    assert_eq!(got[1].1.authorizer, None);
}

#[test]
fn lambda_authorizers() {
    let loaded = sls("service: shop
provider: { runtime: python3.12, stage: prod }
functions:
  auth:
    handler: auth.h
  checker:
    name: custom-checker
    handler: auth.h
  a:
    handler: a.h
    events:
      - http: { path: t, method: get, authorizer: auth }
      - http:
          path: r
          method: get
          authorizer:
            name: checker
            type: request
            identitySource: method.request.header.X-User, method.request.querystring.tenant
            resultTtlInSeconds: 0
      - http: { path: arn, method: get, authorizer: 'arn:aws:lambda:us-east-1:123:function:other-fn' }
      - http: { path: iam, method: get, authorizer: aws_iam }
")
    .unwrap();
    let got = policies(&loaded);
    assert_eq!(
        got[0].1.authorizer,
        Some(Authorizer::Lambda(LambdaAuthorizer {
            function: "shop-prod-auth".into(),
            kind: LambdaAuthorizerKind::Token,
            identity_source: vec![IdentitySource::Header("Authorization".into())],
            result_ttl_secs: 300,
        }))
    );
    assert_eq!(
        got[1].1.authorizer,
        Some(Authorizer::Lambda(LambdaAuthorizer {
            function: "custom-checker".into(),
            kind: LambdaAuthorizerKind::Request,
            identity_source: vec![
                IdentitySource::Header("X-User".into()),
                IdentitySource::Query("tenant".into())
            ],
            result_ttl_secs: 0,
        }))
    );
    assert!(
        matches!(&got[2].1.authorizer, Some(Authorizer::Lambda(l)) if l.function == "other-fn")
    );
    assert_eq!(got[3].1.authorizer, None);
    assert_eq!(loaded.warnings.len(), 4, "{:?}", loaded.warnings);
    assert!(loaded.warnings[..3]
        .iter()
        .all(|w| w.contains("is not enforced by rouse yet")));
    assert!(
        loaded.warnings[3].contains(
            "IAM authorization) is not supported by rouse: the route is served without it"
        ),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn authorizer_mistakes_are_errors() {
    let cases = [
        (
            "- http: { path: x, method: get, authorizer: nobody }",
            "authorizer `nobody` is not a function of this service",
        ),
        (
            "- httpApi: { path: /x, method: get, authorizer: { name: nobody } }",
            "authorizer `nobody` is not defined under `provider.httpApi.authorizers`",
        ),
        (
            "- http: { path: x, method: get, authorizer: { name: a, type: magic } }",
            "authorizer `type` must be `token` or `request`",
        ),
        (
            "- http: { path: x, method: get, authorizer: { name: a, resultTtlInSeconds: 4000 } }",
            "`resultTtlInSeconds` must be between 0 and 3600",
        ),
    ];
    for (event, message) in cases {
        let source = format!(
            "service: s\nprovider: {{ runtime: python3.12 }}\nfunctions:\n  a:\n    handler: a.h\n    events:\n      {event}\n"
        );
        let err = sls(&source).expect_err(event).to_string();
        assert!(err.contains(message), "{event}: {err}");
    }
}

#[test]
fn policies_survive_the_spec_json_and_old_records_read_as_open() {
    let loaded = sls("service: s
provider: { runtime: python3.12 }
functions:
  a:
    handler: a.h
    events:
      - http: { path: x, method: get, cors: true }
")
    .unwrap();
    let json = serde_json::to_string(&loaded.spec).unwrap();
    let back: DeploySpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, loaded.spec);
    let old: HttpEvent = serde_json::from_str(r#"{"path":"/x","method":"GET"}"#).unwrap();
    assert!(old.policy.is_open());
}
