//! `rouse streams create|ls`: Kinesis-like streams that producers write
//! with boto3 or the AWS CLI and functions consume through `stream:` events.

use std::process::ExitCode;

use http::Method;
use rouse_api::types::{CreateStreamRequest, StreamSummary};

use super::Output;
use crate::client::{api_error, AdminClient};
use crate::Connection;

#[derive(clap::Subcommand)]
pub(crate) enum StreamsCommand {
    /// Make a stream (records kept 24 h).
    Create {
        name: String,
        /// Shards: records of one partition key stay in order within one.
        #[arg(long, default_value_t = 1)]
        shards: u32,
    },
    /// List streams: shards, records, and each mapping's checkpoint and
    /// iterator age per shard.
    #[command(alias = "list")]
    Ls {
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
        /// Same as `--output json`.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(command: StreamsCommand, conn: &Connection) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    match command {
        StreamsCommand::Create { name, shards } => {
            let body = serde_json::to_vec(&CreateStreamRequest {
                name: name.clone(),
                shards,
            })?;
            let resp = client
                .send(
                    Method::POST,
                    "/v1/streams",
                    rouse_gateway::full(body),
                    Some("application/json"),
                )
                .await?;
            if !resp.status().is_success() {
                return Err(api_error(resp).await);
            }
            println!("stream {name} created with {shards} shard(s)");
        }
        StreamsCommand::Ls { output, json } => {
            let streams: Vec<StreamSummary> = client.get("/v1/streams").await?;
            match (output, json) {
                (Output::Json, _) | (_, true) => {
                    println!("{}", serde_json::to_string_pretty(&streams)?)
                }
                (Output::Text, false) if streams.is_empty() => {
                    println!("no streams; make one with `rouse streams create NAME --shards N`")
                }
                (Output::Text, false) => print_text(&streams),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(streams: &[StreamSummary]) {
    for s in streams {
        let records: u64 = s.shards.iter().map(|x| x.records).sum();
        println!(
            "{}  {} shard(s)  {records} record(s)  retention {} h",
            s.name,
            s.shards.len(),
            s.retention_hours
        );
        for shard in &s.shards {
            println!(
                "  {}  {} record(s)  last sequence {}",
                shard.shard_id, shard.records, shard.last_sequence_number
            );
        }
        for m in &s.mappings {
            let state = if m.enabled { "" } else { "  (disabled)" };
            println!("  → {}{state}", m.function);
            for shard in &m.shards {
                let at = shard
                    .checkpoint
                    .map_or_else(|| "not started".to_string(), |c| format!("checkpoint {c}"));
                let on = shard
                    .node
                    .as_deref()
                    .map_or_else(String::new, |n| format!("  polled by node {n}"));
                println!(
                    "      {}  {at}  {} behind  iterator age {:.1}s{on}",
                    shard.shard_id,
                    shard.behind,
                    shard.iterator_age_ms as f64 / 1000.0
                );
            }
        }
    }
}
