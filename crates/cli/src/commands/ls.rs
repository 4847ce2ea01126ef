//! `rouse ls`.

use std::process::ExitCode;

use rouse_api::types::{FunctionPage, FunctionSummary};

use super::Output;
use crate::client::AdminClient;
use crate::Connection;

/// Functions asked for per call when listing everything.
const PAGE: usize = 100;

/// Deployed functions by name, fetched page by page: all of them, or the
/// first `limit`.
pub(crate) async fn fetch(
    client: &AdminClient,
    limit: Option<usize>,
) -> anyhow::Result<Vec<FunctionSummary>> {
    let mut functions = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let want = limit.map_or(PAGE, |n| (n - functions.len()).min(PAGE));
        if want == 0 {
            return Ok(functions);
        }
        let mut path = format!("/v1/functions?limit={want}");
        if let Some(after) = &after {
            path.push_str("&after=");
            path.extend(after.bytes().map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            }));
        }
        let page: FunctionPage = client.get(&path).await?;
        functions.extend(page.functions);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(functions),
        }
    }
}

pub(crate) async fn run(
    output: Output,
    limit: Option<usize>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let functions = fetch(&client, limit).await?;
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
