//! `rouse logs FN [--tail]`.

use std::io::Write;
use std::process::ExitCode;

use http::Method;
use http_body_util::BodyExt;

use crate::client::{api_error, AdminClient};
use crate::{function_name, Connection};

pub(crate) async fn run(
    function: &str,
    tail: bool,
    lines: usize,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let name = function_name::full(&client, function, stage.as_deref()).await?;
    stream_logs(&client, &name, lines, tail, &mut std::io::stdout()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Copies the log stream to `out` as it arrives.
pub(crate) async fn stream_logs(
    client: &AdminClient,
    name: &str,
    lines: usize,
    follow: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let path = format!("/v1/functions/{name}/logs?lines={lines}&follow={follow}");
    let resp = client
        .send(Method::GET, &path, rouse_gateway::empty(), None)
        .await?;
    if !resp.status().is_success() {
        return Err(api_error(resp).await);
    }
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            out.write_all(data)?;
            out.flush()?;
        }
    }
    Ok(())
}
