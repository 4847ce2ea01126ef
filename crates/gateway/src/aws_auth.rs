//! SigV4 on the AWS-compatible APIs (Lambda Invoke now; Kinesis and SQS
//! call the same check with their service name and protocol). The decisions
//! are in `rouse-sigv4`; this is the shell: the body, the clock, the store.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use rouse_sigv4::AuthError;

use crate::body::{full, BoxError, ProxyBody};
use crate::Gateway;

/// Whether the AWS-compatible APIs check signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AwsAuth {
    /// Unsigned calls are served (loopback-only servers, `rouse dev`).
    #[default]
    Open,
    /// Every call must carry a valid signature by one of the server's keys.
    Required,
}

/// What `--aws-auth` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsAuthSetting {
    /// Required unless the gateway listens on loopback only.
    Auto,
    Required,
    Open,
}

impl FromStr for AwsAuthSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(AwsAuthSetting::Auto),
            "required" => Ok(AwsAuthSetting::Required),
            "open" => Ok(AwsAuthSetting::Open),
            other => Err(format!(
                "unknown --aws-auth mode {other:?} (expected auto, required or open)"
            )),
        }
    }
}

impl AwsAuthSetting {
    /// `auto` opens the APIs only when nobody beyond this machine can reach
    /// the gateway: an unspecified address (`0.0.0.0`, `::`) listens on
    /// every interface.
    pub fn resolve(self, gateway: SocketAddr) -> AwsAuth {
        match self {
            AwsAuthSetting::Required => AwsAuth::Required,
            AwsAuthSetting::Open => AwsAuth::Open,
            AwsAuthSetting::Auto if gateway.ip().is_loopback() => AwsAuth::Open,
            AwsAuthSetting::Auto => AwsAuth::Required,
        }
    }
}

/// How an API spells its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Lambda: 403, code in `x-amzn-ErrorType`.
    RestJson,
    /// Kinesis, SQS: 400, code in the body's `__type`.
    Json,
}

/// A key is touched in the store at most this often (seconds).
const LAST_USED_RESOLUTION: i64 = 60;

impl Gateway {
    /// [`Gateway::aws_authorize`] for the Lambda APIs (the Invoke API and
    /// Function URLs): service `lambda`, rest-json errors, Lambda's
    /// synchronous payload limit.
    pub(crate) async fn lambda_authorize<B>(
        &self,
        req: Request<B>,
    ) -> Result<Request<Either<B, Full<Bytes>>>, Response<ProxyBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let limit = crate::invoke_api::MAX_SYNC_PAYLOAD;
        self.aws_authorize(req, "lambda", Protocol::RestJson, limit)
            .await
    }

    /// With [`AwsAuth::Required`], checks the request's SigV4 signature for
    /// `service` (`lambda`, `kinesis`, `sqs`). The body (at most `limit`
    /// bytes) is read first, since the signature covers it; the request
    /// comes back with it buffered, or the error to answer.
    pub(crate) async fn aws_authorize<B>(
        &self,
        req: Request<B>,
        service: &str,
        protocol: Protocol,
        limit: usize,
    ) -> Result<Request<Either<B, Full<Bytes>>>, Response<ProxyBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if self.inner.config.aws_auth == AwsAuth::Open {
            return Ok(req.map(Either::Left));
        }
        let (parts, body) = req.into_parts();
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => {
                return Err(crate::aws::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    &format!("Request must be smaller than {limit} bytes"),
                    &request_id,
                ))
            }
            Err(_) => {
                return Err(crate::aws::error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    "Could not read the request body",
                    &request_id,
                ))
            }
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        match self.check_signature(&parts, &body, service, now) {
            Ok(()) => Ok(Request::from_parts(parts, Either::Right(Full::new(body)))),
            Err(Some(err)) => {
                tracing::debug!(service, %err, "refused an AWS API call");
                let rendered = match protocol {
                    Protocol::RestJson => err.rest_json(),
                    Protocol::Json => err.json_1_1(),
                };
                let mut resp = AuthError::into_response(rendered).map(full);
                if let Ok(v) = HeaderValue::from_str(&request_id) {
                    resp.headers_mut().insert("x-amzn-requestid", v);
                }
                Err(resp)
            }
            Err(None) => Err(crate::aws::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                "Internal error",
                &request_id,
            )),
        }
    }

    /// `Err(None)`: the store failed (logged).
    fn check_signature(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        service: &str,
        now: i64,
    ) -> Result<(), Option<AuthError>> {
        let signed = rouse_sigv4::parse(parts, service)?;
        rouse_sigv4::check_time(&signed, now, rouse_sigv4::DEFAULT_MAX_SKEW_SECS)?;
        let store = &self.inner.store;
        let key = match store.access_key_secret(&signed.access_key_id) {
            Ok(Some(key)) => key,
            Ok(None) => return Err(Some(AuthError::UnknownKey)),
            Err(err) => {
                tracing::error!(%err, "store error while reading an access key");
                return Err(None);
            }
        };
        rouse_sigv4::verify(&signed, parts, body, &key.secret)?;
        if key
            .last_used_at
            .is_none_or(|t| now - t >= LAST_USED_RESOLUTION)
        {
            if let Err(err) = store.touch_access_key(&signed.access_key_id, now) {
                tracing::warn!(%err, "could not record an access key's use");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_open_on_loopback_only() {
        let cases = [
            ("auto", "127.0.0.1:8080", AwsAuth::Open),
            ("auto", "[::1]:8080", AwsAuth::Open),
            ("auto", "0.0.0.0:8080", AwsAuth::Required),
            ("auto", "[::]:8080", AwsAuth::Required),
            ("auto", "192.168.1.5:8080", AwsAuth::Required),
            ("open", "0.0.0.0:8080", AwsAuth::Open),
            ("required", "127.0.0.1:8080", AwsAuth::Required),
        ];
        for (setting, addr, want) in cases {
            let setting: AwsAuthSetting = setting.parse().unwrap();
            assert_eq!(setting.resolve(addr.parse().unwrap()), want, "{addr}");
        }
        assert!("closed".parse::<AwsAuthSetting>().is_err());
    }
}
