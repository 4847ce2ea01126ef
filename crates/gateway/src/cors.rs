//! CORS as API Gateway applies it, decided from a route's policy and the
//! request's method and headers alone (`decide`), then applied around the
//! function (`preflight` before dispatch, `Actual::apply` on the response).
//!
//! The two APIs differ:
//! - REST (`http.cors`): the framework adds an `OPTIONS` method with a mock
//!   integration, so every `OPTIONS` request on the path gets the
//!   configured headers (the origin echoed when several are listed and one
//!   matches). Lambda-proxy responses carry what the function set; rouse
//!   adds `Access-Control-Allow-Origin` only where the function set none.
//! - HTTP API (`provider.httpApi.cors`): API Gateway answers a preflight
//!   (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) for any
//!   route, ignores the CORS headers of the backend, and sends its own only
//!   to an allowed origin; a browser at any other origin is then refused.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use rouse_manifest::CorsPolicy;
use rouse_store::RouteShape;

use crate::body::{empty, ProxyBody};
use crate::router::{RouteMatch, Router};

/// What CORS means for one request.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    /// Answered without the function: the preflight's status and headers.
    Preflight(StatusCode, HeaderMap),
    /// The function runs; its response then gets these headers.
    Actual(Actual),
    /// Nothing to add or take away.
    None,
}

/// The CORS headers of a response the function gave.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Actual {
    headers: HeaderMap,
    /// HTTP API: the function's own `Access-Control-*` headers are dropped
    /// first. REST: the function's own headers win.
    replace: bool,
}

/// The methods a REST preflight is looked up with when it names none:
/// the mock answers on the resource whatever the browser asks.
const LOOKUP_METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
];

pub(crate) fn decide(
    policy: &CorsPolicy,
    shape: RouteShape,
    method: &Method,
    headers: &HeaderMap,
) -> Decision {
    let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
    match shape {
        RouteShape::Http => rest(policy, method, origin),
        RouteShape::HttpApi => http_api(policy, method, origin, headers),
    }
}

fn rest(policy: &CorsPolicy, method: &Method, origin: Option<&str>) -> Decision {
    let allow_origin = allowed_origin(policy, origin);
    if method == Method::OPTIONS {
        let mut out = HeaderMap::new();
        if let Some((value, echoed)) = &allow_origin {
            put(&mut out, header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            if *echoed {
                put(&mut out, header::VARY, "Origin");
            }
        }
        put_list(
            &mut out,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            &policy.allow_headers,
        );
        put_list(
            &mut out,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &policy.allow_methods,
        );
        if policy.allow_credentials {
            put(&mut out, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        if let Some(age) = policy.max_age_secs {
            put(&mut out, header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
        }
        if let Some(cache) = &policy.cache_control {
            put(&mut out, header::CACHE_CONTROL, cache);
        }
        put(&mut out, header::CONTENT_TYPE, "application/json");
        return Decision::Preflight(StatusCode::OK, out);
    }
    match allow_origin {
        Some((value, echoed)) => Decision::Actual(Actual {
            headers: origin_headers(policy, &value, echoed),
            replace: false,
        }),
        None => Decision::None,
    }
}

fn http_api(
    policy: &CorsPolicy,
    method: &Method,
    origin: Option<&str>,
    headers: &HeaderMap,
) -> Decision {
    let requested_method = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok());
    let allow_origin = allowed_origin(policy, origin);
    if method == Method::OPTIONS && origin.is_some() {
        if let Some(requested) = requested_method {
            let mut out = HeaderMap::new();
            if let Some((value, echoed)) = &allow_origin {
                out = origin_headers(policy, value, *echoed);
                out.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
                // `*` is answered with what was asked, which also holds
                // where a browser takes `*` literally (with credentials).
                let methods = if policy.allow_methods.iter().any(|m| m == "*") {
                    requested.to_string()
                } else {
                    policy.allow_methods.join(",")
                };
                put(&mut out, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
                let requested_headers = headers
                    .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                    .and_then(|h| h.to_str().ok());
                let allow_headers = if policy.allow_headers.iter().any(|h| h == "*") {
                    requested_headers.map(str::to_string)
                } else {
                    Some(policy.allow_headers.join(","))
                };
                if let Some(allow_headers) = allow_headers.filter(|h| !h.is_empty()) {
                    put(
                        &mut out,
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        &allow_headers,
                    );
                }
                if let Some(age) = policy.max_age_secs {
                    put(&mut out, header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
                }
            }
            return Decision::Preflight(StatusCode::NO_CONTENT, out);
        }
    }
    Decision::Actual(Actual {
        headers: match allow_origin {
            Some((value, echoed)) => origin_headers(policy, &value, echoed),
            None => HeaderMap::new(),
        },
        replace: true,
    })
}

/// The `Access-Control-Allow-Origin` value for `origin`, and whether it
/// is the request's own (so caches must key on `Origin`).
fn allowed_origin(policy: &CorsPolicy, origin: Option<&str>) -> Option<(String, bool)> {
    let origin = origin?;
    if policy.allow_origins.iter().any(|o| o == "*") {
        // With credentials a browser refuses `*`; answer the origin itself.
        return Some(if policy.allow_credentials {
            (origin.to_string(), true)
        } else {
            ("*".to_string(), false)
        });
    }
    policy
        .allow_origins
        .iter()
        .any(|pattern| origin_matches(pattern, origin))
        .then(|| (origin.to_string(), true))
}

/// `pattern` is an origin, possibly with `*` wildcards (`https://*.example.com`).
fn origin_matches(pattern: &str, origin: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let origin = origin.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = origin.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The headers an allowed origin's actual response carries.
fn origin_headers(policy: &CorsPolicy, value: &str, echoed: bool) -> HeaderMap {
    let mut out = HeaderMap::new();
    put(&mut out, header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    if echoed {
        put(&mut out, header::VARY, "Origin");
    }
    if policy.allow_credentials {
        put(&mut out, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
    }
    put_list(
        &mut out,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        &policy.expose_headers,
    );
    out
}

fn put(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    // Values come from a validated manifest or the request's own headers;
    // one that is not a valid header value is left out rather than sent.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn put_list(headers: &mut HeaderMap, name: HeaderName, items: &[String]) {
    if !items.is_empty() {
        put(headers, name, &items.join(","));
    }
}

impl Actual {
    /// Adds the CORS headers to a response of the function.
    pub(crate) fn apply(self, response: &mut Response<ProxyBody>) {
        let out = response.headers_mut();
        if self.replace {
            let own: Vec<HeaderName> = out
                .keys()
                .filter(|k| k.as_str().starts_with("access-control-"))
                .cloned()
                .collect();
            for name in own {
                out.remove(name);
            }
        } else if out.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
            return;
        }
        for (name, value) in &self.headers {
            if name == header::VARY {
                out.append(name, value.clone());
            } else {
                out.insert(name, value.clone());
            }
        }
    }
}

impl Decision {
    /// What to do to the function's response.
    pub(crate) fn into_actual(self) -> Option<Actual> {
        match self {
            Decision::Actual(actual) => Some(actual),
            _ => None,
        }
    }
}

/// The CORS headers the response of a routed request gets, if any.
pub(crate) fn for_route(
    route: &RouteMatch<'_>,
    method: &Method,
    headers: &HeaderMap,
) -> Option<Actual> {
    let cors = route.policy?.cors.as_ref()?;
    decide(cors, route.shape, method, headers).into_actual()
}

/// The answer to a preflight `OPTIONS` request on a route with CORS, or
/// `None` when the request is not one (an explicit `OPTIONS` route serves
/// it, or no route with CORS is there).
pub(crate) fn preflight(
    router: &Router,
    method: &Method,
    path: &str,
    host: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response<ProxyBody>> {
    if method != Method::OPTIONS {
        return None;
    }
    if router
        .lookup(Method::OPTIONS.as_str(), path, host)
        .is_some_and(|route| !route.any_method)
    {
        return None;
    }
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
    let route = requested
        .into_iter()
        .chain(LOOKUP_METHODS)
        .find_map(|m| router.lookup(m.as_str(), path, host))?;
    let cors = route.policy.and_then(|p| p.cors.as_ref())?;
    match decide(cors, route.shape, method, headers) {
        Decision::Preflight(status, out) => {
            let mut response = Response::new(empty());
            *response.status_mut() = status;
            *response.headers_mut() = out;
            Some(response)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str]) -> CorsPolicy {
        CorsPolicy {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_headers: vec!["Content-Type".into(), "X-Custom".into()],
            allow_methods: vec!["GET".into(), "OPTIONS".into()],
            ..CorsPolicy::default()
        }
    }

    fn request(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    /// Headers as sorted `name: value` lines, for readable assertions.
    fn lines(headers: &HeaderMap) -> Vec<String> {
        let mut out: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        out.sort();
        out
    }

    fn preflight_of(decision: Decision) -> (StatusCode, Vec<String>) {
        match decision {
            Decision::Preflight(status, headers) => (status, lines(&headers)),
            other => panic!("not a preflight: {other:?}"),
        }
    }

    fn actual_of(decision: Decision) -> (bool, Vec<String>) {
        match decision {
            Decision::Actual(actual) => (actual.replace, lines(&actual.headers)),
            other => panic!("not an actual request: {other:?}"),
        }
    }

    const APP: &str = "https://app.example.com";

    #[test]
    fn rest_cors_true_answers_every_options_like_the_mock_integration() {
        let p = policy(&["*"]);
        // Even without a preflight's headers: the mock answers OPTIONS.
        for headers in [request(&[]), request(&[("origin", APP)])] {
            let (status, got) =
                preflight_of(decide(&p, RouteShape::Http, &Method::OPTIONS, &headers));
            assert_eq!(status, StatusCode::OK);
            let with_origin = headers.contains_key("origin");
            let mut expected = vec![
                "access-control-allow-headers: Content-Type,X-Custom".to_string(),
                "access-control-allow-methods: GET,OPTIONS".to_string(),
                "content-type: application/json".to_string(),
            ];
            if with_origin {
                expected.insert(2, "access-control-allow-origin: *".to_string());
            }
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn rest_preflight_carries_credentials_max_age_and_cache_control() {
        let p = CorsPolicy {
            allow_credentials: true,
            max_age_secs: Some(600),
            cache_control: Some("max-age=600".into()),
            ..policy(&[APP, "https://*.example.org"])
        };
        let headers = request(&[("origin", "https://a.b.example.org")]);
        let (_, got) = preflight_of(decide(&p, RouteShape::Http, &Method::OPTIONS, &headers));
        assert_eq!(
            got,
            [
                "access-control-allow-credentials: true",
                "access-control-allow-headers: Content-Type,X-Custom",
                "access-control-allow-methods: GET,OPTIONS",
                "access-control-allow-origin: https://a.b.example.org",
                "access-control-max-age: 600",
                "cache-control: max-age=600",
                "content-type: application/json",
                "vary: Origin",
            ]
        );
        // An origin not listed gets no Allow-Origin: the browser refuses.
        let other = request(&[("origin", "https://evil.example.net")]);
        let (_, got) = preflight_of(decide(&p, RouteShape::Http, &Method::OPTIONS, &other));
        assert!(
            !got.iter()
                .any(|l| l.starts_with("access-control-allow-origin")),
            "{got:?}"
        );
    }

    #[test]
    fn rest_actual_responses_get_the_origin_unless_the_function_set_one() {
        let p = policy(&["*"]);
        let (replace, got) = actual_of(decide(
            &p,
            RouteShape::Http,
            &Method::GET,
            &request(&[("origin", APP)]),
        ));
        assert!(!replace);
        assert_eq!(got, ["access-control-allow-origin: *"]);
        // Without an Origin it is not a CORS request.
        assert_eq!(
            decide(&p, RouteShape::Http, &Method::GET, &request(&[])),
            Decision::None
        );

        let mut response = Response::new(empty());
        response
            .headers_mut()
            .insert("access-control-allow-origin", HeaderValue::from_static(APP));
        let actual = decide(
            &p,
            RouteShape::Http,
            &Method::GET,
            &request(&[("origin", APP)]),
        );
        actual.into_actual().unwrap().apply(&mut response);
        assert_eq!(
            lines(response.headers()),
            [format!("access-control-allow-origin: {APP}")]
        );
    }

    #[test]
    fn http_api_preflight_for_an_allowed_origin() {
        let p = CorsPolicy {
            allow_credentials: true,
            max_age_secs: Some(60),
            expose_headers: vec!["x-trace".into()],
            ..policy(&[APP])
        };
        let headers = request(&[
            ("origin", APP),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-custom"),
        ]);
        let (status, got) =
            preflight_of(decide(&p, RouteShape::HttpApi, &Method::OPTIONS, &headers));
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(
            got,
            [
                "access-control-allow-credentials: true".to_string(),
                "access-control-allow-headers: Content-Type,X-Custom".to_string(),
                "access-control-allow-methods: GET,OPTIONS".to_string(),
                format!("access-control-allow-origin: {APP}"),
                "access-control-max-age: 60".to_string(),
                "vary: Origin".to_string(),
            ]
        );
    }

    #[test]
    fn http_api_wildcards_echo_what_was_asked() {
        let p = CorsPolicy {
            allow_headers: vec!["*".into()],
            allow_methods: vec!["*".into()],
            ..policy(&["*"])
        };
        let headers = request(&[
            ("origin", APP),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-one,x-two"),
        ]);
        let (_, got) = preflight_of(decide(&p, RouteShape::HttpApi, &Method::OPTIONS, &headers));
        assert_eq!(
            got,
            [
                "access-control-allow-headers: x-one,x-two",
                "access-control-allow-methods: PUT",
                "access-control-allow-origin: *",
            ]
        );
    }

    #[test]
    fn http_api_refuses_other_origins_by_sending_no_cors_headers() {
        let p = policy(&[APP]);
        let headers = request(&[
            ("origin", "https://evil.example.net"),
            ("access-control-request-method", "GET"),
        ]);
        let (status, got) =
            preflight_of(decide(&p, RouteShape::HttpApi, &Method::OPTIONS, &headers));
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(got.is_empty(), "{got:?}");
        // And the actual response loses whatever the function sent.
        let actual = decide(
            &p,
            RouteShape::HttpApi,
            &Method::GET,
            &request(&[("origin", "https://evil.example.net")]),
        );
        let mut response = Response::new(empty());
        response
            .headers_mut()
            .insert("access-control-allow-origin", HeaderValue::from_static("*"));
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("text/plain"));
        actual.into_actual().unwrap().apply(&mut response);
        assert_eq!(lines(response.headers()), ["content-type: text/plain"]);
    }

    #[test]
    fn http_api_options_without_a_preflight_header_reaches_the_routes() {
        let p = policy(&["*"]);
        let (replace, got) = actual_of(decide(
            &p,
            RouteShape::HttpApi,
            &Method::OPTIONS,
            &request(&[("origin", APP)]),
        ));
        assert!(replace);
        assert_eq!(got, ["access-control-allow-origin: *"]);
    }

    #[test]
    fn http_api_actual_response_replaces_the_functions_cors_headers() {
        let p = CorsPolicy {
            expose_headers: vec!["x-trace".into()],
            ..policy(&[APP])
        };
        let actual = decide(
            &p,
            RouteShape::HttpApi,
            &Method::GET,
            &request(&[("origin", APP)]),
        );
        let mut response = Response::new(empty());
        let h = response.headers_mut();
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert("access-control-max-age", HeaderValue::from_static("5"));
        h.insert("vary", HeaderValue::from_static("Accept-Encoding"));
        actual.into_actual().unwrap().apply(&mut response);
        assert_eq!(
            lines(response.headers()),
            [
                "access-control-allow-origin: https://app.example.com".to_string(),
                "access-control-expose-headers: x-trace".to_string(),
                "vary: Accept-Encoding".to_string(),
                "vary: Origin".to_string(),
            ]
        );
    }

    #[test]
    fn origin_patterns() {
        let table = [
            ("https://app.example.com", "https://app.example.com", true),
            ("https://app.example.com", "HTTPS://APP.EXAMPLE.COM", true),
            (
                "https://app.example.com",
                "https://app.example.com.evil",
                false,
            ),
            ("https://*.example.com", "https://a.example.com", true),
            ("https://*.example.com", "https://example.com", false),
            ("https://*.example.com", "http://a.example.com", false),
            (
                "https://*.example.com",
                "https://a.example.com.evil.net",
                false,
            ),
            ("http://localhost:*", "http://localhost:3000", true),
        ];
        for (pattern, origin, expected) in table {
            assert_eq!(
                origin_matches(pattern, origin),
                expected,
                "{pattern} {origin}"
            );
        }
    }
}
