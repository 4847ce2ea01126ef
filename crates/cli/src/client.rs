//! The admin API client the CLI commands share.

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rouse_gateway::{empty, full, ProxyBody};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::commands::serve::TOKEN_FILE;
use crate::exit::{self, Kind};
use crate::Connection;

#[derive(Clone)]
pub(crate) struct AdminClient {
    base: String,
    token: String,
    http: Client<HttpConnector, ProxyBody>,
}

impl AdminClient {
    pub(crate) fn new(conn: &Connection) -> anyhow::Result<AdminClient> {
        let token = match &conn.token {
            Some(token) => token.clone(),
            None => {
                let path = conn.data_dir.join(TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_string())
                    .with_context(|| {
                        format!(
                            "no admin token: set ROUSE_ADMIN_TOKEN, or run where `rouse serve` keeps its data ({} not readable); no server yet? start one with `rouse serve` or use `rouse dev`",
                            path.display()
                        )
                    })?
            }
        };
        Ok(AdminClient::with_token(&conn.endpoint, token))
    }

    pub(crate) fn with_token(endpoint: &str, token: String) -> AdminClient {
        AdminClient {
            base: endpoint.trim_end_matches('/').to_string(),
            token,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with the token; non-2xx answers are returned as they are.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: ProxyBody,
        content_type: Option<&'static str>,
    ) -> anyhow::Result<Response<Incoming>> {
        let headers = content_type
            .map(|ct| (header::CONTENT_TYPE, HeaderValue::from_static(ct)))
            .into_iter()
            .collect();
        self.send_with_headers(method, path, body, headers).await
    }

    pub(crate) async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        body: ProxyBody,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> anyhow::Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(self.url(path))
            .body(body)
            .context("building the request")?;
        let auth = HeaderValue::from_str(&format!("Bearer {}", self.token))
            .context("the admin token has characters that cannot be sent in a header")?;
        req.headers_mut().insert(header::AUTHORIZATION, auth);
        for (name, value) in headers {
            req.headers_mut().append(name, value);
        }
        self.http.request(req).await.map_err(|err| {
            exit::fail(
                Kind::Unreachable,
                format!(
                    "cannot reach rouse at {}: {}. No server running? Start one with `rouse serve` or use `rouse dev` (or point --endpoint / ROUSE_ENDPOINT at yours)",
                    self.base,
                    root_cause(&err)
                ),
            )
        })
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let resp = self.send(Method::GET, path, empty(), None).await?;
        json_body(resp).await
    }

    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        let body = serde_json::to_vec(body)?;
        let resp = self
            .send(Method::POST, path, full(body), Some("application/json"))
            .await?;
        json_body(resp).await
    }

    pub(crate) async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let resp = self.send(Method::DELETE, path, empty(), None).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(api_error(resp).await)
    }
}

pub(crate) async fn json_body<T: DeserializeOwned>(resp: Response<Incoming>) -> anyhow::Result<T> {
    if !resp.status().is_success() {
        return Err(api_error(resp).await);
    }
    let bytes = read_body(resp).await?;
    serde_json::from_slice(&bytes)
        .context("the server sent a response this CLI does not understand")
}

pub(crate) async fn read_body(resp: Response<Incoming>) -> anyhow::Result<Bytes> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .context("reading the response")?
        .to_bytes())
}

/// Turns an admin API error response into a message for the user.
pub(crate) async fn api_error(resp: Response<Incoming>) -> anyhow::Error {
    let status = resp.status();
    let bytes = read_body(resp).await.unwrap_or_default();
    let parsed: Option<(String, String)> = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            let err = v.get("error")?;
            Some((
                err.get("code")?.as_str()?.to_string(),
                err.get("message")?.as_str()?.to_string(),
            ))
        });
    match (status, parsed) {
        (StatusCode::UNAUTHORIZED, _) => exit::fail(
            Kind::Unauthorized,
            "the server refused the admin token (401): set ROUSE_ADMIN_TOKEN to the token of that server",
        ),
        (StatusCode::NOT_FOUND, Some((code, message))) => {
            exit::not_found(format!("{message} ({code}, HTTP 404); `rouse ls` lists what is deployed"))
        }
        (_, Some((code, message))) => anyhow!("{message} ({code}, HTTP {})", status.as_u16()),
        _ => anyhow!("the server answered HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
