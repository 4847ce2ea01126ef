//! `rouse rollback FN [--to VERSION]` and `rouse versions FN`.

use std::process::ExitCode;

use rouse_api::types::{FunctionSummary, VersionSummary};

use super::Output;
use crate::client::AdminClient;
use crate::{resolve, Connection};

pub(crate) async fn rollback(
    function: &str,
    to: Option<u32>,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let name = resolve::function_name(&client, function, stage.as_deref()).await?;
    let body = serde_json::json!({ "to": to });
    let f: FunctionSummary = client
        .post(&format!("/v1/functions/{name}/rollback"), &body)
        .await?;
    match to {
        Some(v) => println!("{name}: now version {} (a copy of version {v})", f.version),
        None => println!(
            "{name}: now version {} (a copy of the previous version)",
            f.version
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn versions(
    function: &str,
    output: Output,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let name = resolve::function_name(&client, function, stage.as_deref()).await?;
    let versions: Vec<VersionSummary> = client
        .get(&format!("/v1/functions/{name}/versions"))
        .await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&versions)?),
        Output::Text => {
            println!("{:<8} {:<13} {:<26}", "VERSION", "ARTIFACT", "CREATED");
            for v in &versions {
                let created = std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(v.created_at.max(0) as u64);
                println!(
                    "{:<8} {:<13} {:<26}{}",
                    v.version,
                    &v.artifact[..12.min(v.artifact.len())],
                    humantime::format_rfc3339_seconds(created).to_string(),
                    if v.current { " (current)" } else { "" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
