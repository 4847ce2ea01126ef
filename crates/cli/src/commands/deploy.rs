//! `rouse deploy`: load the manifest, package the directory, upload, deploy.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use indicatif::{ProgressBar, ProgressStyle};
use rouse_api::types::{ArtifactUploaded, DeployRequest, DeployResponse};
use rouse_manifest::{DeploySpec, LoadOptions};

use crate::client::{json_body, AdminClient};
use crate::Connection;

/// Upload chunk size: small enough for a smooth progress bar.
const CHUNK: usize = 64 * 1024;

pub(crate) async fn run(
    dir: &Path,
    stage: Option<String>,
    conn: &Connection,
) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(conn)?;
    let started = Instant::now();
    let deployed = deploy_dir(&client, dir, stage).await?;
    println!("Deployed in {:.1}s", started.elapsed().as_secs_f64());
    print_summary(&deployed);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_summary(deployed: &DeployResponse) {
    for f in &deployed.functions {
        println!("  {} (version {})", f.name, f.version);
        for r in &f.routes {
            println!("    {:<7} {}", r.method, r.url);
        }
    }
    for name in &deployed.removed {
        println!("  removed {name}");
    }
    for warning in &deployed.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(f) = deployed.functions.first() {
        // Lambda functions take a JSON event; web functions an HTTP request.
        let args = if f.kind == "lambda" {
            "--data '{}'"
        } else {
            "--path /"
        };
        println!(
            "Next: rouse invoke {} {args}   ·   rouse logs {} --tail",
            f.name, f.name
        );
    }
}

/// Loads, packages, uploads and deploys `dir`.
pub(crate) async fn deploy_dir(
    client: &AdminClient,
    dir: &Path,
    stage: Option<String>,
) -> anyhow::Result<DeployResponse> {
    prepare(dir, stage).await?.deploy(client).await
}

/// A project loaded and packaged, ready to upload.
pub(crate) struct Prepared {
    pub spec: DeploySpec,
    /// The packed project; packing is deterministic, so an unchanged tree
    /// gives the same bytes.
    pub archive: Vec<u8>,
}

/// Loads the manifest in `dir` (printing its warnings) and packages the project.
pub(crate) async fn prepare(dir: &Path, stage: Option<String>) -> anyhow::Result<Prepared> {
    let loaded = match rouse_manifest::load_dir(dir, &LoadOptions { stage }) {
        Ok(loaded) => loaded,
        Err(err) if dir.is_dir() && rouse_manifest::find_manifest(dir).is_err() => {
            anyhow::bail!("{err}; `rouse init` lists templates to start a project from")
        }
        Err(err) => return Err(err.into()),
    };
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "Deploying {} (stage {}) from {}",
        loaded.spec.service,
        loaded.spec.stage,
        loaded.path.display()
    );
    let archive = package(dir).await?;
    Ok(Prepared {
        spec: loaded.spec,
        archive,
    })
}

impl Prepared {
    /// Uploads the archive and deploys the spec; answers once the new version is live.
    pub(crate) async fn deploy(self, client: &AdminClient) -> anyhow::Result<DeployResponse> {
        let uploaded = upload(client, self.archive).await?;
        let request = DeployRequest {
            artifact: uploaded.sha256,
            spec: self.spec,
        };
        client.post("/v1/deployments", &request).await
    }
}

/// Progress bars only on a terminal; logs and pipes get one plain line per step.
fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

async fn package(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let started = Instant::now();
    let spinner = if interactive() {
        let spinner = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} Packaging {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.enable_steady_tick(std::time::Duration::from_millis(100));
        spinner
    } else {
        ProgressBar::hidden()
    };
    let dir = dir.to_path_buf();
    let progress = spinner.clone();
    let archive = tokio::task::spawn_blocking(move || {
        let ignores = rouse_store::archive::read_ignore_file(&dir)?;
        rouse_store::archive::pack_dir(&dir, &ignores, &mut |bytes| {
            progress.set_message(indicatif::HumanBytes(bytes).to_string());
        })
    })
    .await
    .context("packaging task failed")?
    .context("packaging the project")?;
    let size = indicatif::HumanBytes(archive.len() as u64);
    if spinner.is_hidden() {
        eprintln!(
            "Packaged {size} (compressed) in {:.2}s",
            started.elapsed().as_secs_f64()
        );
    }
    spinner.finish_with_message(format!("done: {size} compressed"));
    Ok(archive)
}

async fn upload(client: &AdminClient, archive: Vec<u8>) -> anyhow::Result<ArtifactUploaded> {
    let started = Instant::now();
    let total = archive.len() as u64;
    let bar = if interactive() {
        ProgressBar::new(total).with_style(
            ProgressStyle::with_template("Uploading [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        )
    } else {
        ProgressBar::hidden()
    };
    let bytes = Bytes::from(archive);
    let chunks: Vec<Bytes> = (0..bytes.len())
        .step_by(CHUNK)
        .map(|at| bytes.slice(at..(at + CHUNK).min(bytes.len())))
        .collect();
    let progress = bar.clone();
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        progress.inc(chunk.len() as u64);
        Ok::<_, rouse_gateway::BoxError>(Frame::data(chunk))
    }));
    let body = StreamBody::new(stream).boxed_unsync();
    let resp = client
        .send(
            Method::POST,
            "/v1/artifacts",
            body,
            Some("application/gzip"),
        )
        .await?;
    let uploaded: ArtifactUploaded = json_body(resp).await.context("uploading the artifact")?;
    if bar.is_hidden() {
        eprintln!(
            "Uploaded {} in {:.2}s",
            indicatif::HumanBytes(total),
            started.elapsed().as_secs_f64()
        );
    }
    bar.finish();
    Ok(uploaded)
}
