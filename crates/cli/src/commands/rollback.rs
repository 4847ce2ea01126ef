//! `rouse rollback FN [--to VERSION]`.

use std::process::ExitCode;

use rouse_api::types::FunctionSummary;

use crate::client::AdminClient;
use crate::{function_name, Connection};

pub(crate) async fn rollback(
    function: &str,
    to: Option<u32>,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let name = function_name::full(&client, function, stage.as_deref()).await?;
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
