//! Signatures on forwarded requests: HMAC-SHA256 with the cluster's secret
//! (a setting in the store, so every node has it and an instance, which
//! cannot read the store, does not) over what the receiving node acts on:
//! method, path and query, the sending node's id, the time, the body's
//! sha256 and the forwarding headers (client address, scheme, remaining
//! deadline, a direct call's function). Pure: time and secret are
//! parameters.
//!
//! A request on the internal port without a valid signature made within
//! [`SKEW_MS`] of the receiver's clock is refused before its body is read
//! further than the limit; the comparison is constant-time.

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// Headers a forwarded request carries. All are set by the forwarding
/// node; a client's own are dropped before forwarding.
pub(crate) const NODE: &str = "x-rouse-from-node";
pub(crate) const TIME: &str = "x-rouse-time";
pub(crate) const BODY_SHA256: &str = "x-rouse-body-sha256";
pub(crate) const CLIENT: &str = "x-rouse-client";
pub(crate) const PROTO: &str = "x-rouse-proto";
pub(crate) const DEADLINE_MS: &str = "x-rouse-deadline-ms";
pub(crate) const DIRECT: &str = "x-rouse-direct";
pub(crate) const SIGNATURE: &str = "x-rouse-signature";
/// The hop marker: a forwarded request is served where it lands, never
/// forwarded again. (Arriving on the internal port, signed, is what makes it
/// so; the header says it to anyone reading a capture or an app's log.)
pub(crate) const HOP: &str = "x-rouse-hop";

pub(crate) const ALL: [&str; 9] = [
    NODE,
    TIME,
    BODY_SHA256,
    CLIENT,
    PROTO,
    DEADLINE_MS,
    DIRECT,
    SIGNATURE,
    HOP,
];

/// How far the sender's clock may be from the receiver's.
pub(crate) const SKEW_MS: i64 = 10_000;

/// What a signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    pub method: String,
    pub path_and_query: String,
    pub node_id: String,
    pub time_ms: i64,
    /// Lowercase hex.
    pub body_sha256: String,
    pub client: String,
    /// `http` or `https`: how the request reached the first node.
    pub proto: String,
    pub deadline_ms: u64,
    /// A call to a function by name, past its routes (`rouse invoke` of a
    /// web function); empty for a request that is routed as it is.
    pub direct: String,
}

/// Why a request on the internal port is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Missing(&'static str),
    Malformed(&'static str),
    /// Outside the skew window; the age in ms (negative: from the future).
    Stale(i64),
    BadSignature,
    BodyMismatch,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Missing(h) => write!(f, "missing {h}"),
            Refused::Malformed(h) => write!(f, "malformed {h}"),
            Refused::Stale(age) => write!(f, "signed {age} ms away from this node's clock"),
            Refused::BadSignature => write!(f, "wrong signature"),
            Refused::BodyMismatch => write!(f, "the body is not the one signed"),
        }
    }
}

pub(crate) fn body_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

impl Signed {
    fn string_to_sign(&self) -> String {
        format!(
            "rouse-forward-1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.path_and_query,
            self.node_id,
            self.time_ms,
            self.body_sha256,
            self.client,
            self.proto,
            self.deadline_ms,
            self.direct
        )
    }

    fn mac(&self, secret: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(self.string_to_sign().as_bytes());
        mac
    }

    pub(crate) fn signature(&self, secret: &[u8]) -> String {
        hex::encode(self.mac(secret).finalize().into_bytes())
    }

    /// Writes the forwarding headers and the signature into `headers`.
    pub(crate) fn write(&self, secret: &[u8], headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        put(NODE, &self.node_id);
        put(TIME, &self.time_ms.to_string());
        put(BODY_SHA256, &self.body_sha256);
        put(CLIENT, &self.client);
        put(PROTO, &self.proto);
        put(DEADLINE_MS, &self.deadline_ms.to_string());
        put(DIRECT, &self.direct);
        put(HOP, "1");
        put(SIGNATURE, &self.signature(secret));
    }

    /// Reads what a forwarded request claims, and its signature, from its head.
    pub(crate) fn read(
        method: &http::Method,
        path_and_query: &str,
        headers: &HeaderMap,
    ) -> Result<(Signed, String), Refused> {
        let get = |name: &'static str| -> Result<String, Refused> {
            headers
                .get(name)
                .ok_or(Refused::Missing(name))?
                .to_str()
                .map(str::to_string)
                .map_err(|_| Refused::Malformed(name))
        };
        let number = |name: &'static str| -> Result<i64, Refused> {
            get(name)?.parse().map_err(|_| Refused::Malformed(name))
        };
        let signed = Signed {
            method: method.as_str().to_string(),
            path_and_query: path_and_query.to_string(),
            node_id: get(NODE)?,
            time_ms: number(TIME)?,
            body_sha256: get(BODY_SHA256)?,
            client: get(CLIENT)?,
            proto: get(PROTO)?,
            deadline_ms: u64::try_from(number(DEADLINE_MS)?)
                .map_err(|_| Refused::Malformed(DEADLINE_MS))?,
            direct: get(DIRECT)?,
        };
        Ok((signed, get(SIGNATURE)?))
    }

    /// Whether `signature` is this request's under `secret`, made within the
    /// skew window of `now_ms`.
    pub(crate) fn verify(
        &self,
        secret: &[u8],
        signature: &str,
        now_ms: i64,
    ) -> Result<(), Refused> {
        let age = now_ms.saturating_sub(self.time_ms);
        if age.abs() > SKEW_MS {
            return Err(Refused::Stale(age));
        }
        let bytes = hex::decode(signature).map_err(|_| Refused::Malformed(SIGNATURE))?;
        self.mac(secret)
            .verify_slice(&bytes)
            .map_err(|_| Refused::BadSignature)
    }

    /// The received body must be the one signed.
    pub(crate) fn check_body(&self, body: &[u8]) -> Result<(), Refused> {
        if body_sha256(body) == self.body_sha256 {
            Ok(())
        } else {
            Err(Refused::BodyMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"cluster secret";
    const NOW: i64 = 1_800_000_000_000;

    fn signed() -> Signed {
        Signed {
            method: "POST".into(),
            path_and_query: "/api?x=1".into(),
            node_id: "node-a".into(),
            time_ms: NOW,
            body_sha256: body_sha256(b"hello"),
            client: "10.0.0.1:5555".into(),
            proto: "http".into(),
            deadline_ms: 3_000,
            direct: String::new(),
        }
    }

    fn round_trip(s: &Signed) -> (Signed, String) {
        let mut headers = HeaderMap::new();
        s.write(SECRET, &mut headers);
        assert_eq!(headers[HOP], "1");
        let method = http::Method::from_bytes(s.method.as_bytes()).unwrap();
        Signed::read(&method, &s.path_and_query, &headers).unwrap()
    }

    #[test]
    fn a_signed_request_verifies_on_the_other_side() {
        let (read, signature) = round_trip(&signed());
        assert_eq!(read, signed());
        assert_eq!(read.verify(SECRET, &signature, NOW + 50), Ok(()));
        assert_eq!(read.check_body(b"hello"), Ok(()));
        assert_eq!(read.check_body(b"hellO"), Err(Refused::BodyMismatch));
    }

    #[test]
    fn any_change_to_what_is_signed_breaks_the_signature() {
        let signature = signed().signature(SECRET);
        let changes: [fn(&mut Signed); 9] = [
            |s| s.method = "GET".into(),
            |s| s.path_and_query = "/api?x=2".into(),
            |s| s.node_id = "node-b".into(),
            |s| s.time_ms += 1,
            |s| s.body_sha256 = body_sha256(b"other"),
            |s| s.client = "10.0.0.2:5555".into(),
            |s| s.proto = "https".into(),
            |s| s.deadline_ms = 60_000,
            |s| s.direct = "fn".into(),
        ];
        for change in changes {
            let mut s = signed();
            change(&mut s);
            assert_eq!(
                s.verify(SECRET, &signature, NOW),
                Err(Refused::BadSignature),
                "{s:?}"
            );
        }
        assert_eq!(
            signed().verify(b"another secret", &signature, NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            signed().verify(SECRET, "zz", NOW),
            Err(Refused::Malformed(SIGNATURE))
        );
    }

    #[test]
    fn only_signatures_within_the_skew_window_count() {
        let s = signed();
        let signature = s.signature(SECRET);
        assert_eq!(s.verify(SECRET, &signature, NOW + SKEW_MS), Ok(()));
        assert_eq!(s.verify(SECRET, &signature, NOW - SKEW_MS), Ok(()));
        assert_eq!(
            s.verify(SECRET, &signature, NOW + SKEW_MS + 1),
            Err(Refused::Stale(SKEW_MS + 1))
        );
        assert_eq!(
            s.verify(SECRET, &signature, NOW - SKEW_MS - 1),
            Err(Refused::Stale(-SKEW_MS - 1))
        );
    }

    #[test]
    fn unsigned_or_partial_heads_are_refused() {
        let method = http::Method::GET;
        assert_eq!(
            Signed::read(&method, "/", &HeaderMap::new()),
            Err(Refused::Missing(NODE))
        );
        let mut headers = HeaderMap::new();
        signed().write(SECRET, &mut headers);
        headers.remove(SIGNATURE);
        assert_eq!(
            Signed::read(&method, "/", &headers),
            Err(Refused::Missing(SIGNATURE))
        );
        headers.insert(TIME, HeaderValue::from_static("soon"));
        assert_eq!(
            Signed::read(&method, "/", &headers),
            Err(Refused::Malformed(TIME))
        );
    }
}
