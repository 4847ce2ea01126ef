//! The dashboard's files (`crates/api/assets/`), embedded in release builds
//! and read from disk in debug builds, so editing a page needs no rebuild.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "assets/"]
struct Assets;

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// Headers every dashboard answer carries: nothing but rouse itself may
/// be loaded or framed, and no page is cached stale after an upgrade.
pub(crate) fn harden(resp: &mut Response) {
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// The file at `path` (relative to the assets folder), or 404.
pub(crate) fn serve(path: &str) -> Response {
    // Flat names only: in debug builds the lookup reads the disk.
    let plain = !path.is_empty()
        && !path.starts_with('.')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    let found = if plain { Assets::get(path) } else { None };
    let Some(file) = found else {
        return (StatusCode::NOT_FOUND, "no such dashboard file").into_response();
    };
    let mut resp = (
        [(header::CONTENT_TYPE, content_type(path))],
        file.data.into_owned(),
    )
        .into_response();
    harden(&mut resp);
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_page_and_script_is_there() {
        for file in [
            "index.html",
            "function.html",
            "login.html",
            "style.css",
            "app.js",
            "function.js",
            "common.js",
        ] {
            assert!(super::Assets::get(file).is_some(), "{file} missing");
        }
    }

    #[test]
    fn only_flat_names_are_looked_up() {
        assert_eq!(super::serve("../Cargo.toml").status(), 404);
        assert_eq!(super::serve("..").status(), 404);
        assert_eq!(super::serve("style.css").status(), 200);
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            super::content_type("a.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(super::content_type("x"), "application/octet-stream");
    }
}
