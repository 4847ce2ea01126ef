//! `rouse dev DIR`: a local server with DIR deployed, redeployed whenever a
//! file changes, and the functions' logs in the terminal.

mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use rouse_api::types::DeployResponse;
use tokio::task::AbortHandle;

use crate::client::AdminClient;
use crate::commands::deploy::{prepare, print_summary};
use crate::commands::logs::stream_logs;
use crate::commands::serve::{wait_for_signal, Server};
use crate::{Connection, ServeArgs};

pub(crate) async fn run(
    dir: PathBuf,
    stage: Option<String>,
    mut serve: ServeArgs,
    conn: Connection,
) -> anyhow::Result<ExitCode> {
    // A local edit loop: the AWS-compatible APIs stay open unless asked.
    if serve.aws_auth == rouse_gateway::AwsAuthSetting::Auto {
        serve.aws_auth = rouse_gateway::AwsAuthSetting::Open;
    }
    // Absolute, so changed paths can be shown relative to it.
    let dir = std::fs::canonicalize(&dir)
        .with_context(|| format!("the project directory {}", dir.display()))?;
    let server = Server::start(&serve, &conn.data_dir).await?;
    let client = AdminClient::with_token(
        &format!("http://{}", server.admin_addr),
        server.token.clone(),
    );
    let mut session = DevSession {
        client,
        dir: dir.clone(),
        stage,
        last_archive: None,
        tails: HashMap::new(),
    };
    if let Err(err) = session.deploy_once().await {
        server.stop().await;
        return Err(err);
    }
    // Changes inside the data directory (logs, the database) are rouse's own
    // writes, never a reason to redeploy.
    let mut changes = match watch::ProjectWatcher::start(&dir, std::slice::from_ref(&conn.data_dir))
    {
        Ok(watcher) => watcher,
        Err(err) => {
            server.stop().await;
            return Err(err);
        }
    };
    println!(
        "rouse dev is serving functions at http://{} (admin API http://{}), watching {} for changes; Ctrl-C stops it. Function logs follow.",
        server.gateway_addr,
        server.admin_addr,
        dir.display()
    );

    let stopped = wait_for_signal();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            result = &mut stopped => {
                result?;
                break;
            }
            changed = changes.next_batch() => {
                let Some(changed) = changed else { break };
                session.redeploy(&changed).await;
            }
        }
    }
    session.stop_tails();
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// What `rouse dev` remembers between deploys.
struct DevSession {
    client: AdminClient,
    dir: PathBuf,
    stage: Option<String>,
    /// The archive last deployed: a change that leaves the package as it was
    /// (an ignored file, a save without edits) does not redeploy.
    last_archive: Option<Vec<u8>>,
    /// One log follower per deployed function.
    tails: HashMap<String, AbortHandle>,
}

impl DevSession {
    /// The first deploy: a failure here ends `rouse dev` (there is nothing to serve).
    async fn deploy_once(&mut self) -> anyhow::Result<()> {
        let deployed = self.deploy_if_changed().await?;
        if let Some(deployed) = deployed {
            print_summary(&deployed);
            self.follow_logs(&deployed);
        }
        Ok(())
    }

    /// A redeploy after a change: a failure (a broken manifest, a crashing
    /// app) is reported and the previous version keeps serving.
    async fn redeploy(&mut self, changed: &[PathBuf]) {
        let started = Instant::now();
        match self.deploy_if_changed().await {
            Ok(Some(deployed)) => {
                let versions: Vec<String> = deployed
                    .functions
                    .iter()
                    .map(|f| format!("{} v{}", f.name, f.version))
                    .collect();
                println!(
                    "Redeployed after a change to {} in {:.2}s: {}",
                    describe(changed, &self.dir),
                    started.elapsed().as_secs_f64(),
                    versions.join(", ")
                );
                for name in &deployed.removed {
                    println!("  removed {name}");
                }
                self.follow_logs(&deployed);
            }
            Ok(None) => {}
            Err(err) => {
                eprintln!("error: redeploy failed, the previous version keeps serving: {err:#}");
                eprintln!("Fix it and save again.");
            }
        }
    }

    async fn deploy_if_changed(&mut self) -> anyhow::Result<Option<DeployResponse>> {
        let prepared = prepare(&self.dir, self.stage.clone()).await?;
        if self.last_archive.as_deref() == Some(prepared.archive.as_slice()) {
            return Ok(None);
        }
        let archive = prepared.archive.clone();
        let deployed = prepared.deploy(&self.client).await?;
        // Remembered only once deployed, so a failed deploy is retried on the
        // next save even if the files end up the same.
        self.last_archive = Some(archive);
        Ok(Some(deployed))
    }

    /// Starts following the logs of functions that are new, and stops
    /// following removed ones.
    fn follow_logs(&mut self, deployed: &DeployResponse) {
        for name in &deployed.removed {
            if let Some(tail) = self.tails.remove(name) {
                tail.abort();
            }
        }
        for f in &deployed.functions {
            if self.tails.contains_key(&f.name) {
                continue;
            }
            let client = self.client.clone();
            let name = f.name.clone();
            let handle = tokio::spawn(async move {
                let _ = stream_logs(&client, &name, 0, true, &mut std::io::stdout()).await;
            });
            self.tails.insert(f.name.clone(), handle.abort_handle());
        }
    }

    fn stop_tails(&mut self) {
        for (_, tail) in self.tails.drain() {
            tail.abort();
        }
    }
}

/// `app.py`, or `app.py and 2 more`, relative to the project. Files that
/// still exist are named first: an editor's temporary file, renamed over the
/// real one, is not what the user saved.
fn describe(changed: &[PathBuf], dir: &Path) -> String {
    let first = changed
        .iter()
        .find(|path| path.exists())
        .or_else(|| changed.first());
    let Some(first) = first else {
        return "the project".to_string();
    };
    let first = first.strip_prefix(dir).unwrap_or(first).display();
    match changed.len() {
        1 => first.to_string(),
        n => format!("{first} and {} more", n - 1),
    }
}
