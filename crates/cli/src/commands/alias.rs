//! `rouse alias set|ls|rm FN …`: names for versions. HTTP routes serve the
//! `live` alias when a function has one; the Invoke API serves any alias
//! given as its qualifier (`FN:canary`, `--qualifier canary`).

use std::process::ExitCode;

use anyhow::bail;
use http::Method;
use rouse_api::types::{AliasSummary, CanarySummary, SetAliasRequest};

use super::Output;
use crate::client::{json_body, AdminClient};
use crate::{function_name, Connection};

#[derive(clap::Subcommand)]
pub(crate) enum AliasCommand {
    /// Point ALIAS at a version, optionally sending a share of requests to a second one.
    Set {
        function: String,
        alias: String,
        /// The version the alias serves.
        #[arg(long)]
        version: u32,
        /// A second version that gets `--weight` of the requests.
        #[arg(long, requires = "weight")]
        canary: Option<u32>,
        /// Share of requests for the canary version, between 0 and 1.
        #[arg(long, requires = "canary")]
        weight: Option<f64>,
    },
    /// List a function's aliases.
    Ls {
        function: String,
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
    },
    /// Remove an alias.
    Rm { function: String, alias: String },
}

pub(crate) async fn run(
    command: AliasCommand,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let function = match &command {
        AliasCommand::Set { function, .. }
        | AliasCommand::Ls { function, .. }
        | AliasCommand::Rm { function, .. } => function.clone(),
    };
    let name = function_name::full(&client, &function, stage.as_deref()).await?;
    match command {
        AliasCommand::Set {
            alias,
            version,
            canary,
            weight,
            ..
        } => {
            let canary = match (canary, weight) {
                (Some(version), Some(weight)) => {
                    if !(weight.is_finite() && (0.0..=1.0).contains(&weight)) {
                        bail!("--weight must be between 0 and 1, found {weight}");
                    }
                    Some(CanarySummary { version, weight })
                }
                _ => None,
            };
            let body = serde_json::to_vec(&SetAliasRequest { version, canary })?;
            let resp = client
                .send(
                    Method::PUT,
                    &format!("/v1/functions/{name}/aliases/{alias}"),
                    rouse_gateway::full(body),
                    Some("application/json"),
                )
                .await?;
            let set: AliasSummary = json_body(resp).await?;
            println!("{name}:{} → {}", set.name, describe(&set));
        }
        AliasCommand::Ls { output, .. } => {
            let aliases: Vec<AliasSummary> =
                client.get(&format!("/v1/functions/{name}/aliases")).await?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&aliases)?),
                Output::Text if aliases.is_empty() => {
                    println!("{name} has no aliases; HTTP routes serve its current version")
                }
                Output::Text => {
                    println!("{:<16} TARGET", "ALIAS");
                    for a in &aliases {
                        println!("{:<16} {}", a.name, describe(a));
                    }
                }
            }
        }
        AliasCommand::Rm { alias, .. } => {
            client
                .delete(&format!("/v1/functions/{name}/aliases/{alias}"))
                .await?;
            println!("{name}: alias {alias} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(alias: &AliasSummary) -> String {
    match alias.canary {
        Some(c) => format!(
            "version {} ({:.0}%), version {} ({:.0}%)",
            alias.version,
            (1.0 - c.weight) * 100.0,
            c.version,
            c.weight * 100.0
        ),
        None => format!("version {}", alias.version),
    }
}
