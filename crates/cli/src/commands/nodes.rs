//! `rouse nodes`: the nodes sharing the server's store.

use std::process::ExitCode;

use rouse_api::types::NodeSummary;

use super::Output;
use crate::client::AdminClient;
use crate::Connection;

pub(crate) async fn run(output: Output, conn: &Connection) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let nodes: Vec<NodeSummary> = client.get("/v1/nodes").await?;
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&nodes)?),
        Output::Text => {
            println!(
                "{:<24} {:<8} {:<22} {:<22} {:>10}  VERSION",
                "NAME", "STATE", "GATEWAY", "ADMIN", "HEARTBEAT"
            );
            for n in &nodes {
                let marker = if n.this { " (this node)" } else { "" };
                println!(
                    "{:<24} {:<8} {:<22} {:<22} {:>9.1}s  {}{marker}",
                    n.name,
                    n.state,
                    n.gateway,
                    n.admin,
                    n.heartbeat_age_ms as f64 / 1000.0,
                    n.version
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
