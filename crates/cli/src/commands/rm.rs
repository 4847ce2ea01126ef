//! `rouse rm FN`.

use std::process::ExitCode;

use crate::client::AdminClient;
use crate::{function_name, Connection};

pub(crate) async fn run(
    function: &str,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let name = function_name::full(&client, function, stage.as_deref()).await?;
    client.delete(&format!("/v1/functions/{name}")).await?;
    println!("Removed {name}");
    Ok(ExitCode::SUCCESS)
}
