//! Dashboard sessions: the admin token is exchanged once for a random
//! session id in an HttpOnly cookie (a browser's EventSource cannot send an
//! Authorization header), and each session has a CSRF token the page sends
//! back in a header on every state-changing request. Pure: ids come in as
//! parameters, time is seconds since any fixed start.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// The cookie's name.
pub(crate) const COOKIE: &str = "rouse_session";
/// The header a state-changing request carries the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-rouse-csrf";
/// How long a session lasts from login.
pub(crate) const LIFETIME_SECS: f64 = 12.0 * 3600.0;
/// Sessions kept at once; past it, logging in ends the oldest.
const MAX_SESSIONS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
struct Session {
    csrf: String,
    expires: f64,
}

/// Live sessions, keyed by the SHA-256 of their id, so the table (say, in
/// a core dump) does not hold usable cookies.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_hash: HashMap<[u8; 32], Session>,
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// What a request presenting a session cookie may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// No such session, or it expired: log in again.
    NoSession,
    /// A live session, but a state-changing request without its CSRF token.
    CsrfMismatch,
}

/// Methods that change nothing and so need no CSRF token.
pub(crate) fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

impl Sessions {
    /// Starts a session `id` with CSRF token `csrf` at `now`.
    pub(crate) fn create(&mut self, id: &str, csrf: &str, now: f64) {
        self.by_hash.retain(|_, s| s.expires > now);
        if self.by_hash.len() >= MAX_SESSIONS {
            let oldest = self
                .by_hash
                .iter()
                .min_by(|a, b| a.1.expires.total_cmp(&b.1.expires))
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.by_hash.remove(&oldest);
            }
        }
        self.by_hash.insert(
            key(id),
            Session {
                csrf: csrf.to_string(),
                expires: now + LIFETIME_SECS,
            },
        );
    }

    /// The CSRF token of live session `id`.
    pub(crate) fn csrf(&self, id: &str, now: f64) -> Option<&str> {
        self.by_hash
            .get(&key(id))
            .filter(|s| s.expires > now)
            .map(|s| s.csrf.as_str())
    }

    pub(crate) fn end(&mut self, id: &str) {
        self.by_hash.remove(&key(id));
    }

    /// Whether a request with `method`, session cookie `id` and CSRF
    /// header `csrf` may go on.
    pub(crate) fn check(&self, id: &str, method: &str, csrf: Option<&str>, now: f64) -> Verdict {
        let Some(expected) = self.csrf(id, now) else {
            return Verdict::NoSession;
        };
        if is_safe_method(method) {
            return Verdict::Allow;
        }
        match csrf {
            Some(given) if crate::auth::constant_time_eq(given.as_bytes(), expected.as_bytes()) => {
                Verdict::Allow
            }
            _ => Verdict::CsrfMismatch,
        }
    }
}

/// The session id in a `Cookie` header's value, if any.
pub(crate) fn cookie_value<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that starts a session (`Secure` when the page
/// came over TLS, so the cookie still works on plain-HTTP loopback).
pub(crate) fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME_SECS as u64
    )
}

/// The `Set-Cookie` value that removes it.
pub(crate) fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_methods_need_a_session_only() {
        let mut s = Sessions::default();
        s.create("id1", "csrf1", 0.0);
        assert_eq!(s.check("id1", "GET", None, 1.0), Verdict::Allow);
        assert_eq!(s.check("nope", "GET", None, 1.0), Verdict::NoSession);
    }

    #[test]
    fn state_changes_need_the_sessions_csrf_token() {
        let mut s = Sessions::default();
        s.create("id1", "csrf1", 0.0);
        s.create("id2", "csrf2", 0.0);
        assert_eq!(s.check("id1", "POST", Some("csrf1"), 1.0), Verdict::Allow);
        assert_eq!(s.check("id1", "POST", None, 1.0), Verdict::CsrfMismatch);
        // Another session's token is no good either.
        assert_eq!(
            s.check("id1", "DELETE", Some("csrf2"), 1.0),
            Verdict::CsrfMismatch
        );
        assert_eq!(
            s.check("id1", "PATCH", Some(""), 1.0),
            Verdict::CsrfMismatch
        );
        assert_eq!(
            s.check("id3", "POST", Some("csrf1"), 1.0),
            Verdict::NoSession
        );
    }

    #[test]
    fn sessions_expire_and_end() {
        let mut s = Sessions::default();
        s.create("id1", "c", 0.0);
        assert_eq!(
            s.check("id1", "GET", None, LIFETIME_SECS - 1.0),
            Verdict::Allow
        );
        assert_eq!(
            s.check("id1", "GET", None, LIFETIME_SECS),
            Verdict::NoSession
        );
        s.create("id2", "c", 0.0);
        s.end("id2");
        assert_eq!(s.check("id2", "GET", None, 1.0), Verdict::NoSession);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut s = Sessions::default();
        for i in 0..MAX_SESSIONS + 5 {
            s.create(&format!("id{i}"), "c", i as f64);
        }
        assert_eq!(s.by_hash.len(), MAX_SESSIONS);
        assert_eq!(s.csrf("id0", 2000.0), None);
        assert_eq!(
            s.csrf(&format!("id{}", MAX_SESSIONS + 4), 2000.0),
            Some("c")
        );
    }

    #[test]
    fn cookie_header_parsing() {
        let h = "a=1; rouse_session=abc; b=2";
        assert_eq!(cookie_value(h, COOKIE), Some("abc"));
        assert_eq!(cookie_value("rouse_session=", COOKIE), None);
        assert_eq!(cookie_value("xrouse_session=abc", COOKIE), None);
        assert_eq!(cookie_value("garbage", COOKIE), None);
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let c = set_cookie("abc", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(!c.contains("Secure"));
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
