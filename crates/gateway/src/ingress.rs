//! The step every proxied request and every HTTP event goes through on
//! the way in: the declared body size against the limit (413 before any
//! body is read), hop-by-hop headers out, `X-Forwarded-*` in.

use std::net::SocketAddr;

use http::{header, request::Parts, Request, Response, StatusCode};

use crate::body::ProxyBody;
use crate::{headers, json_error};

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
    headers::add_forwarded(&mut parts.headers, client, "http");
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
