//! `rouse events ls|show|redrive FN`: a function's async invocations that
//! are still pending and the dead letters of those that failed for good.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use http::Method;
use rouse_api::events::{EventDetail, EventList, EventSummary, RedriveRequest, RedriveResponse};

use super::Output;
use crate::client::{json_body, AdminClient};
use crate::{function_name, Connection};

#[derive(clap::Subcommand)]
pub(crate) enum EventsCommand {
    /// Dead letters and pending async invocations of a function.
    Ls {
        function: String,
        #[arg(long, short, value_enum, default_value = "text")]
        output: Output,
        /// Same as `--output json`.
        #[arg(long)]
        json: bool,
    },
    /// One event: its payload, attempts, last error and response.
    Show { function: String, id: String },
    /// Queue dead letters again, as new invocations.
    Redrive {
        function: String,
        /// The dead letter to queue again.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every dead letter of the function.
        #[arg(long)]
        all: bool,
    },
}

pub(crate) async fn run(
    command: EventsCommand,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let function = match &command {
        EventsCommand::Ls { function, .. }
        | EventsCommand::Show { function, .. }
        | EventsCommand::Redrive { function, .. } => function.clone(),
    };
    let name = function_name::full(&client, &function, stage.as_deref()).await?;
    match command {
        EventsCommand::Ls { output, json, .. } => {
            let resp = client
                .send(
                    Method::GET,
                    &format!("/v1/functions/{name}/events"),
                    rouse_gateway::empty(),
                    None,
                )
                .await?;
            let list: EventList = json_body(resp).await?;
            if json || matches!(output, Output::Json) {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", table(&name, &list, now_ms()));
            }
        }
        EventsCommand::Show { id, .. } => {
            let resp = client
                .send(
                    Method::GET,
                    &format!("/v1/functions/{name}/events/{id}"),
                    rouse_gateway::empty(),
                    None,
                )
                .await?;
            let detail: EventDetail = json_body(resp).await?;
            println!("{}", serde_json::to_string_pretty(&detail)?);
        }
        EventsCommand::Redrive { id, all, .. } => {
            if id.is_none() && !all {
                bail!("name a dead letter's id, or use --all");
            }
            let body = serde_json::to_vec(&RedriveRequest { id })?;
            let resp = client
                .send(
                    Method::POST,
                    &format!("/v1/functions/{name}/events/redrive"),
                    rouse_gateway::full(body),
                    Some("application/json"),
                )
                .await?;
            let done: RedriveResponse = json_body(resp).await?;
            println!(
                "queued {} dead letter(s) of {name} again; `rouse logs {name}` shows them run",
                done.redriven
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The text listing: counts, then one line per event.
fn table(name: &str, list: &EventList, now_ms: i64) -> String {
    let mut out = format!("{name}: {} pending, {} dead\n", list.pending, list.dead);
    if list.events.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "{:<36}  {:<7}  {:>8}  {:>9}  {:<16}  {}\n",
        "ID", "STATE", "ATTEMPTS", "AGE", "CONDITION", "LAST ERROR"
    ));
    for e in &list.events {
        out.push_str(&format!(
            "{:<36}  {:<7}  {:>8}  {:>9}  {:<16}  {}\n",
            e.id,
            e.state,
            e.attempts,
            age(e, now_ms),
            e.condition.as_deref().unwrap_or("-"),
            e.last_error.as_deref().unwrap_or("-"),
        ));
    }
    out
}

fn age(e: &EventSummary, now_ms: i64) -> String {
    let ms = u64::try_from(now_ms.saturating_sub(e.accepted_at)).unwrap_or(0);
    let secs = Duration::from_millis(ms).as_secs();
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_counts_and_one_line_per_event() {
        let list = EventList {
            pending: 1,
            dead: 1,
            events: vec![
                EventSummary {
                    id: "d".into(),
                    state: "dead".into(),
                    attempts: 3,
                    accepted_at: 0,
                    next_attempt_at: None,
                    last_error: Some("ValueError".into()),
                    condition: Some("RetriesExhausted".into()),
                },
                EventSummary {
                    id: "p".into(),
                    state: "pending".into(),
                    attempts: 0,
                    accepted_at: 7_200_000,
                    next_attempt_at: Some(7_200_000),
                    last_error: None,
                    condition: None,
                },
            ],
        };
        let text = table("f", &list, 7_230_000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "f: 1 pending, 1 dead");
        assert!(lines[1].starts_with("ID "), "{text}");
        let dead: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            dead,
            ["d", "dead", "3", "2h", "RetriesExhausted", "ValueError"]
        );
        let pending: Vec<&str> = lines[3].split_whitespace().collect();
        assert_eq!(pending, ["p", "pending", "0", "30s", "-", "-"]);
    }
}
