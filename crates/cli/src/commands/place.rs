//! `rouse fn place FN --nodes a,b` / `--auto` / (neither) show, and
//! `rouse node drain NAME [--undo]`: placement in a cluster.

use std::process::ExitCode;

use http::Method;
use rouse_api::types::{DrainBody, NodeSummary, PlacementBody, PlacementSummary};

use rouse_gateway::full;

use crate::client::{json_body, AdminClient};
use crate::{function_name, Connection};

#[derive(clap::Subcommand)]
pub(crate) enum FnCommand {
    /// Show or change which nodes serve a function: pin it (`--nodes a,b`)
    /// or hand it back to automatic placement (`--auto`).
    Place {
        function: String,
        /// Node names, comma-separated (as `rouse nodes` shows them).
        #[arg(long, value_delimiter = ',', conflicts_with = "auto")]
        nodes: Option<Vec<String>>,
        /// Rendezvous hashing over the live nodes (the default).
        #[arg(long)]
        auto: bool,
        #[arg(long, short, value_enum, default_value = "text")]
        output: super::Output,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum NodeCommand {
    /// Move everything off a node: placement skips it, its instances stop
    /// once their requests are done. It still answers requests it gets.
    Drain {
        name: String,
        /// Put the node back in service.
        #[arg(long)]
        undo: bool,
    },
}

pub(crate) async fn run_fn(
    command: FnCommand,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let FnCommand::Place {
        function,
        nodes,
        auto,
        output,
    } = command;
    let name = function_name::full(&client, &function, stage.as_deref()).await?;
    let path = format!("/v1/functions/{name}/placement");
    let placement: PlacementSummary = match (nodes, auto) {
        (None, false) => client.get(&path).await?,
        (nodes, _) => {
            let body = serde_json::to_vec(&PlacementBody { nodes })?;
            let resp = client
                .send(Method::PUT, &path, full(body), Some("application/json"))
                .await?;
            json_body(resp).await?
        }
    };
    if let super::Output::Json = output {
        println!("{}", serde_json::to_string_pretty(&placement)?);
        return Ok(ExitCode::SUCCESS);
    }
    let pinned = if placement.pinned.is_empty() {
        "automatic".to_string()
    } else {
        format!("pinned to {}", placement.pinned.join(", "))
    };
    println!(
        "{}: {pinned}; served by {}",
        placement.function,
        if placement.homes.is_empty() {
            "no live node".to_string()
        } else {
            placement.homes.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn run_node(command: NodeCommand, conn: &Connection) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let NodeCommand::Drain { name, undo } = command;
    let node: NodeSummary = client
        .post(
            &format!("/v1/nodes/{name}/drain"),
            &DrainBody { draining: !undo },
        )
        .await?;
    println!("{}: {}", node.name, node.state);
    Ok(ExitCode::SUCCESS)
}
