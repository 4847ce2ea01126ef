//! AWS Signature Version 4 verification, for every AWS-compatible API rouse
//! serves (Lambda Invoke, Kinesis, SQS): pure functions over a request's
//! parts, its body, a secret and the time, so the gateway's shell stays thin.
//!
//! Steps, each its own function: [`parse`] (header or presigned query,
//! credential scope against the caller's service), [`check_time`] (clock
//! skew, presign expiry), then the caller looks the access key up, then
//! [`verify`] (canonical request, derived key, constant-time compare).
//!
//! Any region is accepted: rouse is not bound to a region, and SDKs sign
//! with whatever region their profile names.

#![forbid(unsafe_code)]

mod canonical;
mod error;
mod time;

use hmac::{Hmac, Mac};
use http::request::Parts;
use sha2::{Digest, Sha256};

pub use error::{AuthError, Rendered, MISMATCH_MESSAGE, UNKNOWN_KEY_MESSAGE};
pub use time::{format_amz_date, parse_amz_date};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a signed time may be from the server's clock.
pub const DEFAULT_MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest presign expiry AWS accepts (a week).
pub const MAX_PRESIGN_EXPIRES: i64 = 604_800;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type HmacSha256 = Hmac<Sha256>;

/// What a request says about its own signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// Lowercase header names, as signed (sorted by the signer).
    pub signed_headers: Vec<String>,
    /// Hex, as sent.
    pub signature: String,
    /// `YYYYMMDDTHHMMSSZ` the signer used.
    pub amz_date: String,
    /// `amz_date` as Unix seconds.
    pub time: i64,
    /// `X-Amz-Expires` of a presigned request; `None` for the header form.
    pub expires: Option<i64>,
}

/// Reads the signature from the `Authorization` header or the presigned
/// query, and checks its scope names `service`.
pub fn parse(parts: &Parts, service: &str) -> Result<Signed, AuthError> {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let query = query_params(parts.uri.query().unwrap_or(""));
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    let signed = match (header, presigned) {
        (Some(_), true) => {
            return Err(AuthError::InvalidSignature(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into(),
            ))
        }
        (Some(header), false) => parse_header(&header, &parts.headers)?,
        (None, true) => parse_query(&query)?,
        (None, false) => return Err(AuthError::Missing),
    };
    check_scope(&signed, service)?;
    Ok(signed)
}

/// The signed time against `now` (Unix seconds): within `max_skew` either
/// way, and for a presigned request not past its expiry.
pub fn check_time(signed: &Signed, now: i64, max_skew: i64) -> Result<(), AuthError> {
    let minutes = max_skew / 60;
    if signed.time > now + max_skew {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + {minutes} min.)",
            signed.amz_date,
            format_amz_date(now + max_skew),
            format_amz_date(now)
        )));
    }
    match signed.expires {
        Some(expires) if now > signed.time + expires => Err(AuthError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - {expires} sec.)",
            signed.amz_date,
            format_amz_date(now - expires),
            format_amz_date(now)
        ))),
        Some(_) => Ok(()),
        None if signed.time < now - max_skew => Err(AuthError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - {minutes} min.)",
            signed.amz_date,
            format_amz_date(now - max_skew),
            format_amz_date(now)
        ))),
        None => Ok(()),
    }
}

/// Recomputes the signature with `secret` and compares it in constant time.
pub fn verify(signed: &Signed, parts: &Parts, body: &[u8], secret: &str) -> Result<(), AuthError> {
    let expected = signature(signed, parts, body, secret);
    let Ok(given) = hex::decode(&signed.signature) else {
        return Err(AuthError::InvalidSignature(MISMATCH_MESSAGE.into()));
    };
    // `verify_slice` compares in constant time, so timing does not tell how
    // much of a forged signature was right.
    expected
        .verify_slice(&given)
        .map_err(|_| AuthError::InvalidSignature(MISMATCH_MESSAGE.into()))
}

/// The HMAC that should have produced `signed.signature`, not yet finalized.
fn signature(signed: &Signed, parts: &Parts, body: &[u8], secret: &str) -> HmacSha256 {
    let sts = string_to_sign(signed, parts, body);
    let key = signing_key(secret, &signed.scope_date, &signed.region, &signed.service);
    let mut mac = new_mac(&key);
    mac.update(sts.as_bytes());
    mac
}

/// Hex signature of a request as a client would compute it (the signer's
/// side; for tests and tools that sign with rouse keys).
pub fn sign(signed: &Signed, parts: &Parts, body: &[u8], secret: &str) -> String {
    hex::encode(
        signature(signed, parts, body, secret)
            .finalize()
            .into_bytes(),
    )
}

/// `AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(signed: &Signed, parts: &Parts, body: &[u8]) -> String {
    let payload_hash = match parts.headers.get("x-amz-content-sha256") {
        Some(v) => String::from_utf8_lossy(v.as_bytes()).trim().to_string(),
        None if body.is_empty() => EMPTY_SHA256.to_string(),
        None => hex::encode(Sha256::digest(body)),
    };
    let creq = canonical::request(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        parts.uri.authority().map(|a| a.as_str()),
        &signed.signed_headers,
        &payload_hash,
    );
    format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        signed.amz_date,
        signed.scope_date,
        signed.region,
        signed.service,
        hex::encode(Sha256::digest(creq.as_bytes()))
    )
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        let mut mac = new_mac(&key);
        mac.update(part.as_bytes());
        key = mac.finalize().into_bytes().to_vec();
    }
    key
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` never fails for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts any key length"),
    }
}

fn parse_header(header: &str, headers: &http::HeaderMap) -> Result<Signed, AuthError> {
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Authorization={header}"
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let Some((k, v)) = field.trim().split_once('=') else {
            continue;
        };
        match k {
            "Credential" => credential = Some(v.to_string()),
            "SignedHeaders" => signed_headers = Some(v.to_string()),
            "Signature" => signature = Some(v.to_string()),
            _ => {}
        }
    }
    let date = header_str(headers, "x-amz-date")
        .map(|d| (d.to_string(), parse_amz_date(d)))
        .or_else(|| {
            let d = header_str(headers, "date")?;
            let unix = httpdate::parse_http_date(d)
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
            let unix = i64::try_from(unix).ok()?;
            Some((format_amz_date(unix), Some(unix)))
        });
    let mut missing = String::new();
    for (name, value) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if value.is_none() {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some((amz_date, time))) =
        (credential, signed_headers, signature, date)
    else {
        return Err(AuthError::Incomplete(format!(
            "{missing}Authorization={header}"
        )));
    };
    let Some(time) = time else {
        return Err(not_basic_format(&amz_date));
    };
    build(
        &credential,
        &signed_headers,
        signature,
        amz_date,
        time,
        None,
    )
}

/// AWS's answer to an `X-Amz-Date` it cannot read.
fn not_basic_format(amz_date: &str) -> AuthError {
    AuthError::Incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

fn parse_query(query: &[(String, String)]) -> Result<Signed, AuthError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut values = Vec::new();
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
        "X-Amz-Expires",
    ] {
        match get(name) {
            Some(v) => values.push(v),
            None => {
                return Err(AuthError::Incomplete(format!(
                    "AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."
                )))
            }
        }
    }
    let [algorithm, credential, signature, signed_headers, amz_date, expires] =
        <[String; 6]>::try_from(values).map_err(|_| AuthError::Missing)?;
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'."
        )));
    }
    let Some(time) = parse_amz_date(&amz_date) else {
        return Err(not_basic_format(&amz_date));
    };
    let expires = match expires.parse::<i64>() {
        Ok(e) if (1..=MAX_PRESIGN_EXPIRES).contains(&e) => e,
        _ => {
            return Err(AuthError::Incomplete(format!(
                "X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRES}, got '{expires}'."
            )))
        }
    };
    build(
        &credential,
        &signed_headers,
        signature,
        amz_date,
        time,
        Some(expires),
    )
}

fn build(
    credential: &str,
    signed_headers: &str,
    signature: String,
    amz_date: String,
    time: i64,
    expires: Option<i64>,
) -> Result<Signed, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts.as_slice() else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if *terminator != "aws4_request" {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    Ok(Signed {
        access_key_id: access_key_id.to_string(),
        scope_date: scope_date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed_headers
            .split(';')
            .filter(|h| !h.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
        signature,
        amz_date,
        time,
        expires,
    })
}

fn check_scope(signed: &Signed, service: &str) -> Result<(), AuthError> {
    if signed.service != service {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if signed.region.is_empty() {
        return Err(AuthError::InvalidSignature(
            "Credential should be scoped to a valid region, not ''. ".into(),
        ));
    }
    let day = signed.amz_date.get(..8).unwrap_or("");
    if signed.scope_date != day {
        return Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from 'x-amz-date'.",
            signed.scope_date
        )));
    }
    Ok(())
}

fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Decoded query pairs, in order.
fn query_params(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                String::from_utf8_lossy(&canonical::decode(k)).into_owned(),
                String::from_utf8_lossy(&canonical::decode(v)).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
