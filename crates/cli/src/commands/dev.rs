//! `rouse dev DIR`: a local server with DIR deployed, logs in the terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::client::AdminClient;
use crate::commands::deploy::{deploy_dir, print_summary};
use crate::commands::logs::stream_logs;
use crate::commands::serve::{wait_for_signal, Server};
use crate::{Connection, ServeArgs};

pub async fn run(
    dir: PathBuf,
    stage: Option<String>,
    serve: ServeArgs,
    conn: Connection,
) -> anyhow::Result<ExitCode> {
    let server = Server::start(&serve, &conn.data_dir).await?;
    let client = AdminClient::with_token(
        &format!("http://{}", server.admin_addr),
        server.token.clone(),
    );
    let deployed = match deploy_dir(&client, &dir, stage).await {
        Ok(deployed) => deployed,
        Err(err) => {
            server.stop().await;
            return Err(err);
        }
    };
    print_summary(&deployed);
    println!("rouse dev is running; Ctrl-C stops it. Function logs follow.");
    let mut tails = tokio::task::JoinSet::new();
    for f in &deployed.functions {
        let client = AdminClient::with_token(
            &format!("http://{}", server.admin_addr),
            server.token.clone(),
        );
        let name = f.name.clone();
        tails.spawn(async move {
            let _ = stream_logs(&client, &name, 0, true, &mut std::io::stdout()).await;
        });
    }
    wait_for_signal().await?;
    tails.abort_all();
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}
