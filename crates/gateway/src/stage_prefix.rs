//! Routes served under `/{stage}` (`stageRouting: prefix`): what the
//! function sees of a request that arrived with the stage in front.

use http::{HeaderValue, Request};

use crate::with_path;

/// The path after its first segment (the stage of a prefix route), always
/// starting with `/`: `/dev/a/b` → `/a/b`, `/dev` → `/`. The router skips
/// empty segments, so this does too.
pub(crate) fn without_first_segment(path: &str) -> &str {
    let trimmed = path.trim_start_matches('/');
    match trimmed.find('/') {
        Some(at) => &trimmed[at..],
        None => "/",
    }
}

/// The request a web app gets: the path it declared (`path`, the stage
/// removed, query kept) and `X-Forwarded-Prefix: /{stage}`, which tells it
/// where it is mounted for the links it builds. `None` when that is not a
/// valid URI or header.
pub(crate) fn unmount<B>(req: Request<B>, stage: &str, path: &str) -> Option<Request<B>> {
    let (mut parts, body) = req.into_parts();
    parts.uri = with_path(&parts.uri, path).ok()?;
    let prefix = HeaderValue::from_str(&format!("/{stage}")).ok()?;
    parts.headers.insert("x-forwarded-prefix", prefix);
    Some(Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_segment_goes() {
        assert_eq!(without_first_segment("/dev/a/b"), "/a/b");
        assert_eq!(without_first_segment("/dev/a/"), "/a/");
        assert_eq!(without_first_segment("/dev"), "/");
        assert_eq!(without_first_segment("/dev/"), "/");
        assert_eq!(without_first_segment("//dev/a"), "/a");
    }
}
