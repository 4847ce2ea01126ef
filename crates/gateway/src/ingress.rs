//! The steps on the way in. Every request first passes [`check_head`]
//! (before it is classified): client mistakes in the request line and
//! `Host` get 400 here and never reach, or count against, a function;
//! dot segments are normalised. Every proxied request and every HTTP event
//! then passes [`admit`]: the declared body size against the limit (413
//! before any body is read), hop-by-hop headers out, `X-Forwarded-*` in.

use std::borrow::Cow;
use std::net::SocketAddr;

use http::{header, request::Parts, HeaderValue, Method, Request, Response, StatusCode, Version};

use crate::body::{empty, ProxyBody};
use crate::dot_segments;
use crate::{headers, json_error};

/// What [`check_head`] decided.
#[derive(Debug)]
pub(crate) enum Head {
    /// Route it as it is.
    Pass,
    /// Route it with this path and query (dot segments removed).
    Rewrite(http::Uri),
    /// Answer it here.
    Answer(StatusCode, &'static str),
    /// `OPTIONS *`: what the server as a whole allows.
    ServerOptions,
}

/// The methods `OPTIONS *` lists: what routes may use.
const ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Whether a request's head can be routed. Allocation-free unless the
/// path has dot segments.
pub(crate) fn check_head<B>(req: &Request<B>) -> Head {
    let uri = req.uri();
    if uri.path() == "*" {
        // The asterisk form is only meaningful for OPTIONS (RFC 9112 §3.2.4).
        return if req.method() == Method::OPTIONS {
            Head::ServerOptions
        } else {
            Head::Answer(
                StatusCode::BAD_REQUEST,
                "Bad Request: `*` is only for OPTIONS",
            )
        };
    }
    // HTTP/1.1 requires exactly one Host (RFC 9112 §3.2); HTTP/2 carries
    // `:authority` instead and HTTP/1.0 may omit it.
    if req.version() == Version::HTTP_11 {
        let mut hosts = req.headers().get_all(header::HOST).iter();
        match (hosts.next(), hosts.next()) {
            (Some(_), None) => {}
            (None, _) => {
                return Head::Answer(StatusCode::BAD_REQUEST, "Bad Request: missing Host header")
            }
            (Some(_), Some(_)) => {
                return Head::Answer(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: more than one Host header",
                )
            }
        }
    }
    match dot_segments::normalize(uri.path()) {
        Ok(Cow::Borrowed(_)) => Head::Pass,
        Ok(Cow::Owned(path)) => match crate::with_path(uri, &path) {
            Ok(uri) => Head::Rewrite(uri),
            Err(_) => Head::Answer(StatusCode::BAD_REQUEST, "Bad request URI"),
        },
        Err(dot_segments::AboveRoot) => Head::Answer(
            StatusCode::BAD_REQUEST,
            "Bad Request: the path climbs above /",
        ),
    }
}

/// The answer to `OPTIONS *`.
pub(crate) fn server_options() -> Response<ProxyBody> {
    let mut resp = Response::new(empty());
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

/// The request declared a body over the limit (in bytes).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge(pub u64);

/// Splits a request into the head a function gets and its body, or
/// refuses it (answer [`too_large`]).
pub(crate) fn admit<B>(
    req: Request<B>,
    client: SocketAddr,
    limit: u64,
) -> Result<(Parts, B), TooLarge> {
    let (mut parts, body) = req.into_parts();
    if declares_more_than(&parts.headers, limit) {
        return Err(TooLarge(limit));
    }
    headers::strip_hop_by_hop(&mut parts.headers);
    let proto = if parts.extensions.get::<crate::listen::Secure>().is_some() {
        "https"
    } else {
        "http"
    };
    headers::add_forwarded(&mut parts.headers, client, proto);
    Ok((parts, body))
}

/// A `Content-Length` over `limit`.
fn declares_more_than(headers: &http::HeaderMap, limit: u64) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}

/// 413 with the limit in the message; also what a body that overruns the
/// limit while streaming gets.
pub(crate) fn too_large(limit: u64) -> Response<ProxyBody> {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Request Entity Too Large: the body limit is {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, uri: &str, version: Version, hosts: &[&str]) -> Request<()> {
        let mut req = Request::builder().method(method).uri(uri).version(version);
        for host in hosts {
            req = req.header("host", *host);
        }
        req.body(()).unwrap()
    }

    fn describe(decided: Head) -> String {
        match decided {
            Head::Pass => "pass".into(),
            Head::Rewrite(uri) => format!("rewrite {uri}"),
            Head::Answer(status, message) => format!("{} {message}", status.as_u16()),
            Head::ServerOptions => "options".into(),
        }
    }

    #[test]
    fn request_heads_are_checked_before_routing() {
        const HTTP_10: Version = Version::HTTP_10;
        const HTTP_11: Version = Version::HTTP_11;
        const HTTP_2: Version = Version::HTTP_2;
        let table: &[(&str, &str, Version, &[&str], &str)] = &[
            ("GET", "/a/b?x=1", HTTP_11, &["h"], "pass"),
            ("GET", "/a/../b?x=1", HTTP_11, &["h"], "rewrite /b?x=1"),
            ("GET", "/a/%2e%2e/b", HTTP_11, &["h"], "rewrite /b"),
            (
                "GET",
                "/../etc/passwd",
                HTTP_11,
                &["h"],
                "400 Bad Request: the path climbs above /",
            ),
            ("OPTIONS", "*", HTTP_11, &["h"], "options"),
            (
                "GET",
                "*",
                HTTP_11,
                &["h"],
                "400 Bad Request: `*` is only for OPTIONS",
            ),
            (
                "GET",
                "/",
                HTTP_11,
                &[],
                "400 Bad Request: missing Host header",
            ),
            (
                "GET",
                "/",
                HTTP_11,
                &["a", "b"],
                "400 Bad Request: more than one Host header",
            ),
            ("GET", "/", HTTP_10, &[], "pass"),
            ("GET", "https://h/x", HTTP_2, &[], "pass"),
        ];
        for (method, uri, version, hosts, expected) in table {
            let decided = check_head(&head(method, uri, *version, hosts));
            assert_eq!(
                describe(decided),
                *expected,
                "{method} {uri} {version:?} {hosts:?}"
            );
        }
    }

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut req = http::Request::builder().uri("/");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(()).unwrap()
    }

    #[test]
    fn the_declared_length_decides() {
        let client: SocketAddr = "10.0.0.1:1234".parse().unwrap();
        let table = [
            (vec![], Ok(())),
            (vec![("content-length", "10")], Ok(())),
            (vec![("content-length", "11")], Err(TooLarge(10))),
            // Unparseable lengths are left to hyper; chunked bodies are
            // limited while they stream.
            (vec![("content-length", "lots")], Ok(())),
            (vec![("transfer-encoding", "chunked")], Ok(())),
        ];
        for (headers, expected) in table {
            let admitted = admit(request(&headers), client, 10).map(|_| ());
            assert_eq!(admitted, expected, "{headers:?}");
        }
    }

    #[test]
    fn admitted_heads_lose_hop_by_hop_and_gain_forwarded_headers() {
        let client: SocketAddr = "10.0.0.1:1234".parse().unwrap();
        let req = request(&[
            ("host", "shop.example"),
            ("connection", "x-private"),
            ("x-private", "1"),
            ("te", "trailers"),
        ]);
        let (p, ()) = admit(req, client, 10).unwrap();
        assert!(!p.headers.contains_key("connection"));
        assert!(!p.headers.contains_key("x-private"));
        assert!(!p.headers.contains_key("te"));
        assert_eq!(p.headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(p.headers["x-forwarded-host"], "shop.example");
    }
}
