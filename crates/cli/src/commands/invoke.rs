//! `rouse invoke FN`: one request to a web function, printed like curl -i;
//! for a lambda function its log tail and result, or with `--async` the
//! request id of a queued `Event` invocation.

use std::process::ExitCode;

use anyhow::{bail, Context};
use http::{HeaderName, HeaderValue, Method};
use http_body_util::BodyExt;

use crate::client::{read_body, AdminClient};
use crate::exit::{self, Kind};
use crate::{function_name, Connection};

/// What to send.
pub(crate) struct Request<'a> {
    pub(crate) path: &'a str,
    pub(crate) method: &'a str,
    pub(crate) data: Option<String>,
    pub(crate) headers: &'a [String],
    /// An `Event` invocation: queued, answered with its request id.
    pub(crate) asynchronous: bool,
}

pub(crate) async fn run(
    function: &str,
    request: Request<'_>,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let Request {
        path,
        method,
        data,
        headers,
        asynchronous,
    } = request;
    let client = AdminClient::new(conn)?;
    let name = function_name::full(&client, function, stage.as_deref()).await?;
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("{method:?} is not an HTTP method"))?;
    let body = match data {
        Some(d) => match d.strip_prefix('@') {
            Some(file) => std::fs::read(file).with_context(|| format!("reading {file}"))?,
            None => d.into_bytes(),
        },
        None => Vec::new(),
    };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    // `/invoke/` with an empty tail is not a route; the root is `/invoke`.
    let url = match path.as_str() {
        "/" => format!("/v1/functions/{name}/invoke"),
        _ => format!("/v1/functions/{name}/invoke{path}"),
    };
    let mut extra = Vec::new();
    for h in headers {
        let Some((k, v)) = h.split_once(':') else {
            bail!("header {h:?} must look like `Name: value`");
        };
        extra.push((
            HeaderName::from_bytes(k.trim().as_bytes())
                .with_context(|| format!("bad header name in {h:?}"))?,
            HeaderValue::from_str(v.trim())
                .with_context(|| format!("bad header value in {h:?}"))?,
        ));
    }
    if asynchronous {
        let resp = client
            .send(
                Method::GET,
                &format!("/v1/functions/{name}"),
                rouse_gateway::empty(),
                None,
            )
            .await?;
        let summary: rouse_api::types::FunctionSummary = crate::client::json_body(resp).await?;
        if summary.kind != "lambda" {
            bail!(
                "{name} is a web function: `--async` queues invocations of lambda functions only"
            );
        }
        extra.push((
            HeaderName::from_static("x-amz-invocation-type"),
            HeaderValue::from_static("Event"),
        ));
    }
    let resp = client
        .send_with_headers(
            method,
            &url,
            rouse_gateway::full(body).boxed_unsync(),
            extra,
        )
        .await?;
    let status = resp.status();
    if asynchronous {
        return queued(resp, &name).await;
    }
    let function_error = resp.headers().contains_key("x-amz-function-error");
    if let Some(tail) = resp.headers().get("x-amz-log-result") {
        // A lambda function: show its log lines, then the payload.
        use base64::Engine;
        if let Ok(log) = base64::engine::general_purpose::STANDARD.decode(tail.as_bytes()) {
            eprint!("{}", String::from_utf8_lossy(&log));
        }
    } else {
        eprintln!("HTTP {status}");
        for (k, v) in resp.headers() {
            eprintln!("{k}: {}", v.to_str().unwrap_or("<binary>"));
        }
    }
    let bytes = read_body(resp).await?;
    use std::io::Write;
    std::io::stdout().write_all(&bytes)?;
    if !bytes.ends_with(b"\n") {
        println!();
    }
    // Scripts can rely on it: exit 0 only when the function answered 2xx/3xx
    // (and, for lambda functions, without a function error).
    if function_error {
        return Err(exit::fail(
            Kind::FunctionError,
            format!("{name} returned a function error; `rouse logs {name}` shows its output"),
        ));
    }
    if status.is_client_error() || status.is_server_error() {
        return Err(exit::fail(
            Kind::FunctionError,
            format!("{name} answered HTTP {status}"),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The answer to `--async`: 202 and the request id, printed alone on stdout
/// so scripts can keep it (`rouse events show FN ID` finds a dead letter).
async fn queued(
    resp: http::Response<hyper::body::Incoming>,
    name: &str,
) -> anyhow::Result<ExitCode> {
    let status = resp.status();
    let id = resp
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match (status, id) {
        (http::StatusCode::ACCEPTED, Some(id)) => {
            println!("{id}");
            eprintln!("queued an async invocation of {name}; `rouse logs {name}` shows it run");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            let body = read_body(resp).await?;
            Err(exit::fail(
                Kind::FunctionError,
                format!(
                    "{name}: the async invocation was not accepted (HTTP {status}): {}",
                    String::from_utf8_lossy(&body).trim()
                ),
            ))
        }
    }
}
