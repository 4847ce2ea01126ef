//! `rouse env ls|get|set|unset FN …`: change a function's environment
//! without redeploying its code. The change is a new version; new
//! instances see it and warm ones are replaced.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::bail;
use http::Method;
use rouse_api::types::EnvResponse;

use super::Output;
use crate::client::{json_body, AdminClient};
use crate::{exit, function_name, Connection};

#[derive(clap::Subcommand)]
pub(crate) enum EnvCommand {
    /// List the variables.
    Ls {
        function: String,
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
    },
    /// Print one variable's value.
    Get { function: String, key: String },
    /// Set variables: KEY=VALUE ...
    Set {
        function: String,
        #[arg(required = true)]
        pairs: Vec<String>,
    },
    /// Remove variables: KEY ...
    Unset {
        function: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

pub(crate) async fn run(
    command: EnvCommand,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let function = match &command {
        EnvCommand::Ls { function, .. }
        | EnvCommand::Get { function, .. }
        | EnvCommand::Set { function, .. }
        | EnvCommand::Unset { function, .. } => function.clone(),
    };
    let name = function_name::full(&client, &function, stage.as_deref()).await?;
    let path = format!("/v1/functions/{name}/env");
    match command {
        EnvCommand::Ls { output, .. } => {
            let env: EnvResponse = client.get(&path).await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&env.environment)?),
                Output::Text => {
                    for (k, v) in &env.environment {
                        println!("{k}={v}");
                    }
                }
            }
        }
        EnvCommand::Get { key, .. } => {
            let env: EnvResponse = client.get(&path).await?;
            match env.environment.get(&key) {
                Some(value) => println!("{value}"),
                None => return Err(exit::not_found(format!("{key} is not set on {name}"))),
            }
        }
        EnvCommand::Set { pairs, .. } => {
            let mut set = BTreeMap::new();
            for pair in pairs {
                let Some((k, v)) = pair.split_once('=') else {
                    bail!("{pair:?} must look like KEY=VALUE");
                };
                set.insert(k.to_string(), v.to_string());
            }
            let env = change(&client, &path, serde_json::json!({ "set": set })).await?;
            println!(
                "{name}: environment updated (version {}); new requests see it",
                env.version
            );
        }
        EnvCommand::Unset { keys, .. } => {
            let env = change(&client, &path, serde_json::json!({ "unset": keys })).await?;
            println!(
                "{name}: environment updated (version {}); new requests see it",
                env.version
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn change(
    client: &AdminClient,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<EnvResponse> {
    let resp = client
        .send(
            Method::PATCH,
            path,
            rouse_gateway::full(body.to_string()),
            Some("application/json"),
        )
        .await?;
    json_body(resp).await
}
