//! `rouse keys create|ls|rm`: access key pairs for the AWS-compatible APIs
//! (boto3, the AWS CLI and SDKs sign their calls with them).

use std::process::ExitCode;

use rouse_api::types::{AccessKeySummary, CreateKeyRequest, CreatedKey};

use super::Output;
use crate::client::AdminClient;
use crate::Connection;

#[derive(clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Make a key pair; its secret is printed now and never again.
    Create {
        /// What the key is for (shown by `rouse keys ls`).
        #[arg(long, short)]
        description: Option<String>,
        /// Print the pair as JSON (`AccessKeyId`, `SecretAccessKey`, …).
        #[arg(long)]
        json: bool,
    },
    /// List keys: ids, when made and last used, descriptions (never secrets).
    #[command(alias = "list")]
    Ls {
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
        /// Same as `--output json`.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key: calls signed with it are refused from now on.
    Rm { id: String },
}

pub(crate) async fn run(command: KeysCommand, conn: &Connection) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    match command {
        KeysCommand::Create { description, json } => {
            let made: CreatedKey = client
                .post("/v1/keys", &CreateKeyRequest { description })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&made)?);
            } else {
                println!(
                    "Created access key {}. Its secret is shown only now; for boto3 and the AWS CLI:\n",
                    made.access_key_id
                );
                println!("AWS_ACCESS_KEY_ID={}", made.access_key_id);
                println!("AWS_SECRET_ACCESS_KEY={}", made.secret_access_key);
            }
        }
        KeysCommand::Ls { output, json } => {
            let keys: Vec<AccessKeySummary> = client.get("/v1/keys").await?;
            match (output, json) {
                (Output::Json, _) | (_, true) => {
                    println!("{}", serde_json::to_string_pretty(&keys)?)
                }
                (Output::Text, false) if keys.is_empty() => {
                    println!("no access keys; make one with `rouse keys create`")
                }
                (Output::Text, false) => {
                    println!(
                        "{:<20}  {:<20}  {:<20}  DESCRIPTION",
                        "ACCESS KEY ID", "CREATED", "LAST USED"
                    );
                    for k in &keys {
                        println!(
                            "{:<20}  {:<20}  {:<20}  {}",
                            k.access_key_id,
                            when(k.created_at),
                            k.last_used_at.map_or_else(|| "never".to_string(), when),
                            k.description
                        );
                    }
                }
            }
        }
        KeysCommand::Rm { id } => {
            client.delete(&format!("/v1/keys/{id}")).await?;
            println!("access key {id} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn when(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
