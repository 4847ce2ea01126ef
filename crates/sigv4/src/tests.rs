//! Vectors from the public aws-sig-v4-test-suite (get-vanilla,
//! post-vanilla, get-vanilla-query-order-key-case) and from botocore's
//! signers (a Lambda invoke path, a presigned URL), all at 20150830T123600Z.

use super::*;

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const T0: i64 = 1_440_938_160; // 20150830T123600Z
const SKEW: i64 = DEFAULT_MAX_SKEW_SECS;

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(()).unwrap().into_parts().0
}

fn auth(service: &str, signature: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}")
}

fn check(
    p: &Parts,
    body: &[u8],
    service: &str,
    now: i64,
    secret: &str,
) -> Result<String, AuthError> {
    let signed = parse(p, service)?;
    check_time(&signed, now, SKEW)?;
    verify(&signed, p, body, secret)?;
    Ok(signed.access_key_id)
}

#[test]
fn test_suite_and_botocore_vectors_verify() {
    let cases: [(&str, &str, &str, &[u8], &str); 4] = [
        (
            "GET",
            "/",
            "service",
            b"",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "POST",
            "/",
            "service",
            b"",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "GET",
            "/?Param2=value2&Param1=value1",
            "service",
            b"",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "POST",
            "/2015-03-31/functions/hello%3Alive/invocations",
            "lambda",
            br#"{"a":1}"#,
            "abc55f330a463ffc23c85bf1c4df67a8815069cc5cb9b673df0e8d87e2b07d70",
        ),
    ];
    for (method, uri, service, body, sig) in cases {
        let a = auth(service, sig);
        let p = parts(
            method,
            uri,
            &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", &a),
            ],
        );
        assert_eq!(
            check(&p, body, service, T0, SECRET),
            Ok(AKID.to_string()),
            "{method} {uri}"
        );
        let signed = parse(&p, service).unwrap();
        assert_eq!(sign(&signed, &p, body, SECRET), sig);
    }
}

#[test]
fn presigned_query_verifies_and_expires() {
    let uri = "/?Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=49096700cbbaa5753443850f40df10f904fc2fdb544dc9512203cc77c471a9de";
    let p = parts("GET", uri, &[("host", "example.amazonaws.com")]);
    let signed = parse(&p, "service").unwrap();
    assert_eq!(signed.expires, Some(3600));
    assert_eq!(
        check(&p, b"", "service", T0 + 3599, SECRET),
        Ok(AKID.into())
    );
    assert_eq!(
        check(&p, b"", "service", T0 + 3601, SECRET),
        Err(AuthError::InvalidSignature("Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T133601Z - 3600 sec.)".into()))
    );
    let tampered = parts(
        "GET",
        &uri.replace("value1", "value2"),
        &[("host", "example.amazonaws.com")],
    );
    assert_eq!(
        check(&tampered, b"", "service", T0, SECRET),
        Err(AuthError::InvalidSignature(MISMATCH_MESSAGE.into()))
    );
}

#[test]
fn refusals() {
    let good = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let base = |extra: &[(&str, &str)]| {
        let mut h = vec![
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ];
        h.extend_from_slice(extra);
        h.into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let a = auth("service", good);
    let mismatch = AuthError::InvalidSignature(MISMATCH_MESSAGE.into());
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(String, String)>,
        &'a [u8],
        i64,
        &'a str,
        Result<String, AuthError>,
    );
    let cases: Vec<Case> = vec![
        ("no auth at all", "/", base(&[]), b"", T0, SECRET, Err(AuthError::Missing)),
        ("wrong secret", "/", base(&[("authorization", &a)]), b"", T0, "not-the-secret", Err(mismatch.clone())),
        ("body changed after signing", "/", base(&[("authorization", &a)]), b"x", T0, SECRET, Err(mismatch.clone())),
        ("path changed", "/other", base(&[("authorization", &a)]), b"", T0, SECRET, Err(mismatch.clone())),
        ("signature not hex", "/", base(&[("authorization", &auth("service", "zz"))]), b"", T0, SECRET, Err(mismatch.clone())),
        ("at the edge of the window", "/", base(&[("authorization", &a)]), b"", T0 + SKEW, SECRET, Ok(AKID.into())),
        (
            "20 minutes late",
            "/",
            base(&[("authorization", &a)]),
            b"",
            T0 + 20 * 60,
            SECRET,
            Err(AuthError::InvalidSignature("Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z (20150830T125600Z - 15 min.)".into())),
        ),
        (
            "20 minutes early",
            "/",
            base(&[("authorization", &a)]),
            b"",
            T0 - 20 * 60,
            SECRET,
            Err(AuthError::InvalidSignature("Signature not yet current: 20150830T123600Z is still later than 20150830T123100Z (20150830T121600Z + 15 min.)".into())),
        ),
        (
            "both header and query",
            "/?X-Amz-Algorithm=AWS4-HMAC-SHA256",
            base(&[("authorization", &a)]),
            b"",
            T0,
            SECRET,
            Err(AuthError::InvalidSignature("Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into())),
        ),
        (
            "scoped to another service",
            "/",
            base(&[("authorization", &auth("kinesis", good))]),
            b"",
            T0,
            SECRET,
            Err(AuthError::InvalidSignature("Credential should be scoped to correct service: 'service'. ".into())),
        ),
        (
            "no signature part",
            "/",
            base(&[("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host")]),
            b"",
            T0,
            SECRET,
            Err(AuthError::Incomplete("Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host".into())),
        ),
        (
            "short credential",
            "/",
            base(&[("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830, SignedHeaders=host, Signature=00")]),
            b"",
            T0,
            SECRET,
            Err(AuthError::Incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20150830'".into())),
        ),
        (
            "another algorithm",
            "/",
            base(&[("authorization", "AWS3 Signature=x")]),
            b"",
            T0,
            SECRET,
            Err(AuthError::Incomplete("Unsupported AWS 'algorithm': 'AWS3'. Authorization=AWS3 Signature=x".into())),
        ),
        (
            "presigned without a date",
            "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a&X-Amz-Signature=b&X-Amz-SignedHeaders=host",
            base(&[]),
            b"",
            T0,
            SECRET,
            Err(AuthError::Incomplete("AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.".into())),
        ),
    ];
    for (what, uri, headers, body, now, secret, want) in cases {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let p = parts("GET", uri, &h);
        assert_eq!(check(&p, body, "service", now, secret), want, "{what}");
    }
}

#[test]
fn missing_date_is_incomplete_and_date_header_counts() {
    let a = auth("service", "00");
    let p = parts("GET", "/", &[("host", "h"), ("authorization", &a)]);
    assert!(
        matches!(parse(&p, "service"), Err(AuthError::Incomplete(m)) if m.starts_with("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."))
    );
    let p = parts(
        "GET",
        "/",
        &[
            ("host", "h"),
            ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
            ("authorization", &a),
        ],
    );
    let signed = parse(&p, "service").unwrap();
    assert_eq!(
        (signed.time, signed.amz_date.as_str()),
        (T0, "20150830T123600Z")
    );
}

#[test]
fn payload_hash_header_is_used_as_sent() {
    let a = auth("service", "00");
    let p = parts(
        "POST",
        "/",
        &[
            ("host", "h"),
            ("x-amz-date", "20150830T123600Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("authorization", &a),
        ],
    );
    let signed = parse(&p, "service").unwrap();
    // With the header, the body is not what is signed: any body gives the same signature.
    assert_eq!(
        sign(&signed, &p, b"one", SECRET),
        sign(&signed, &p, b"two", SECRET)
    );
}
