//! `rouse ls`.

use std::process::ExitCode;

use rouse_api::types::FunctionSummary;

use super::Output;
use crate::client::AdminClient;
use crate::Connection;

pub async fn run(output: Output, conn: &Connection) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let functions: Vec<FunctionSummary> = client.get("/v1/functions").await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&functions)?),
        Output::Text if functions.is_empty() => {
            println!("No functions deployed. Deploy one with: rouse deploy DIR")
        }
        Output::Text => {
            println!(
                "{:<32} {:<6} {:<7} {:>9}  ROUTES",
                "NAME", "KIND", "VERSION", "INSTANCES"
            );
            for f in &functions {
                let routes: Vec<String> = f
                    .routes
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.url))
                    .collect();
                println!(
                    "{:<32} {:<6} {:<7} {:>9}  {}",
                    f.name,
                    f.kind,
                    f.version,
                    f.instances.len(),
                    routes.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
