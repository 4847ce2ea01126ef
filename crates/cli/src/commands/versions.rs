//! `rouse versions FN`: the versions of a function, the current one marked.

use std::process::ExitCode;

use rouse_api::types::VersionSummary;

use super::Output;
use crate::client::AdminClient;
use crate::{function_name, Connection};

pub(crate) async fn versions(
    function: &str,
    output: Output,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let name = function_name::full(&client, function, stage.as_deref()).await?;
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
