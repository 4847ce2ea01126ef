//! `rouse serve`: the gateway and the admin API in one process.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rouse_api::AdminState;
use rouse_gateway::{AwsAuth, Gateway, GatewayConfig, GatewayServer};
use rouse_logs::LogBook;
use rouse_pool::{NodeLimits, Pool};
use rouse_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ServeArgs;

/// Name of the admin token file in the data directory.
pub(crate) const TOKEN_FILE: &str = "admin-token";
/// Time between SIGTERM and SIGKILL for instances on shutdown.
const INSTANCE_GRACE: Duration = Duration::from_secs(3);
/// Admin calls are short; only log tails stay open, and they end on shutdown.
const ADMIN_DRAIN: Duration = Duration::from_secs(2);

pub(crate) async fn run(args: ServeArgs, data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    let server = Server::start(&args, &data_dir).await?;
    println!(
        "rouse is serving functions at {} (admin API http://{}, data in {})",
        server.gateway_url,
        server.admin_addr,
        data_dir.display()
    );
    super::sd_notify::notify("READY=1");
    wait_for_signal().await?;
    super::sd_notify::notify("STOPPING=1");
    tracing::info!("shutting down: draining in-flight requests");
    server.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// A running gateway + admin API.
pub(crate) struct Server {
    pub gateway_addr: SocketAddr,
    /// `http://` or `https://` and the address.
    pub gateway_url: String,
    pub admin_addr: SocketAddr,
    pub token: String,
    pool: Pool,
    shutdown: watch::Sender<bool>,
    gateway_server: GatewayServer,
    admin_task: JoinHandle<()>,
    /// The heartbeat task of a cluster node; it ends by marking the node gone.
    cluster: Option<JoinHandle<()>>,
    /// A cluster node's listener for forwarded requests.
    internal: Option<rouse_gateway::InternalServer>,
}

impl Server {
    pub(crate) async fn start(args: &ServeArgs, data_dir: &Path) -> anyhow::Result<Server> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        // Absolute from here on: instances run in their own directories, and
        // paths handed to them (the runtime bootstraps) must not depend on cwd.
        let data_dir = &std::fs::canonicalize(data_dir)
            .with_context(|| format!("resolving the data directory {}", data_dir.display()))?;
        let mut store = Store::open_url(data_dir, args.store.as_deref())
            .await
            .with_context(|| match &args.store {
                Some(url) if store_is_remote(url) => "opening the PostgreSQL store".to_string(),
                _ => format!("opening the store in {}", data_dir.display()),
            })?;
        store.set_archive_limits(rouse_store::archive::Limits {
            max_unpacked_bytes: args.max_unpacked_mb.saturating_mul(1000 * 1000),
            ..Default::default()
        });
        if let Some(url) = &args.artifacts {
            store.use_artifact_bucket(url)?;
            tracing::info!(bucket = %url, "artifacts are kept in the bucket");
        }
        // What a previous run removed (or a crash left half-written).
        match store.collect_garbage(std::time::SystemTime::now()).await {
            Ok(freed) if freed != Default::default() => {
                tracing::info!(
                    artifacts = freed.artifacts,
                    code_dirs = freed.code_dirs,
                    "removed unused artifacts"
                )
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "cannot collect unused artifacts"),
        }
        let store = Arc::new(store);
        let logs =
            Arc::new(LogBook::open(&data_dir.join("logs")).context("opening the log directory")?);
        let (isolation, isolation_line) = rouse_sandbox::isolation::choose(
            args.isolation,
            &rouse_sandbox::isolation::probe(),
            data_dir,
        )
        .map_err(anyhow::Error::msg)?;
        if isolation < rouse_sandbox::isolation::Level::Namespaces
            && args.isolation == rouse_sandbox::isolation::Requested::Auto
        {
            tracing::warn!("{isolation_line}");
        } else {
            tracing::info!("{isolation_line}");
        }
        if isolation == rouse_sandbox::isolation::Level::None {
            tracing::warn!(
                "--isolation none: every instance runs as rouse's own user, so instances can reach each other's ports and Runtime APIs"
            );
        }
        let node_limits = NodeLimits {
            max_instances: args.max_instances,
            memory_mb: args
                .memory_budget
                .unwrap_or_else(rouse_pool::default_memory_budget_mb),
        };
        let pool = Pool::configured(store.clone(), logs.clone(), isolation, node_limits)
            .context("preparing the instance directory")?;
        let config = GatewayConfig {
            max_body_bytes: args.max_body_bytes,
            domain: args.domain.clone(),
            cold_start_header: args.cold_start_header,
            async_retry_delay: Duration::from_secs_f64(args.async_retry_delay.max(0.0)),
            aws_auth: args.aws_auth.resolve(args.listen),
        };
        match config.aws_auth {
            AwsAuth::Open => tracing::warn!(
                "the AWS-compatible APIs (Lambda Invoke, Kinesis) accept unsigned calls; use --aws-auth required to check SigV4 signatures"
            ),
            AwsAuth::Required if store.list_access_keys().await?.is_empty() => tracing::warn!(
                "the AWS-compatible APIs require SigV4 signatures and there is no access key yet: every call is refused until `rouse keys create` makes one"
            ),
            AwsAuth::Required => tracing::info!(
                "the AWS-compatible APIs require SigV4 signatures (keys: rouse keys ls)"
            ),
        }
        let gateway = Gateway::new(config, store.clone(), pool.clone())
            .await
            .context("loading routes")?;
        let token = admin_token(data_dir)?;
        if store.is_shared() {
            rouse_api::cluster::adopt_token(&store, &token)
                .await
                .context("checking the admin token against the cluster's")?
                .map_err(anyhow::Error::msg)?;
        }

        let nofile = super::serve_limits::raise_open_files();
        let tls = super::serve_limits::gateway_tls(args)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let admin_listener = bind(args.admin_listen, "admin API", "--admin-listen").await?;
        let admin_addr = admin_listener.local_addr()?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let drain = Duration::from_secs_f64(args.drain_timeout.max(0.0));
        let threads = args
            .gateway_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let gateway_server = GatewayServer::start(
            args.listen,
            threads,
            gateway.clone(),
            super::serve_limits::gateway_policy(args, nofile, tls),
            shutdown_rx.clone(),
            drain,
        )
        .with_context(|| {
            format!(
                "cannot listen on {} for the gateway (is another rouse running? choose another address with --listen)",
                args.listen
            )
        })?;
        let gateway_addr = gateway_server.addr;
        // In a cluster: where other nodes forward requests to.
        let internal = if store.is_shared() {
            let addr = internal_addr(args.internal_listen, gateway_addr);
            let server = rouse_gateway::InternalServer::start(
                addr,
                gateway.clone(),
                super::serve_limits::internal_policy(args),
                shutdown_rx.clone(),
                drain,
            )
            .await
            .with_context(|| {
                format!("cannot listen on {addr} for forwarded requests (choose another address with --internal-listen)")
            })?;
            Some(server)
        } else {
            None
        };
        let internal_addr = internal.as_ref().map(|s| s.addr);
        let node = rouse_api::cluster::node_info(
            args.node_name.as_deref(),
            gateway_addr,
            admin_addr,
            internal_addr,
        );
        let scheduler =
            rouse_api::schedules::start(gateway.clone(), store.clone(), node.name.clone());
        for record in store.list_functions().await? {
            rouse_api::schedules::sync(&scheduler, &record);
        }
        let state = Arc::new(AdminState {
            store: store.clone(),
            pool: pool.clone(),
            gateway,
            logs,
            token: token.clone(),
            public_url: format!("{scheme}://{gateway_addr}"),
            domain: args.domain.clone(),
            max_artifact_bytes: rouse_api::DEFAULT_MAX_ARTIFACT,
            shutdown: shutdown_rx.clone(),
            scheduler,
            node,
        });
        // In a cluster: this node's row and the changes other nodes make.
        let cluster = if store.is_shared() {
            Some(
                rouse_api::cluster::join(state.clone(), shutdown_rx.clone())
                    .await
                    .context("joining the cluster")?,
            )
        } else {
            None
        };
        let admin = super::serve_limits::serve_admin(
            admin_listener,
            rouse_api::router(state),
            super::serve_limits::admin_policy(args),
            flipped(shutdown_rx),
            ADMIN_DRAIN,
        );
        let admin_task = tokio::spawn(admin);
        // Functions that keep instances warm get them now, not at their
        // first request.
        let warmed = pool.warm_all().await.context("starting minInstances")?;
        let functions = store.list_functions().await?.len();
        match internal_addr {
            Some(internal) => {
                tracing::info!(%gateway_addr, %admin_addr, %internal, functions, warmed, nofile, "rouse started")
            }
            None => {
                tracing::info!(%gateway_addr, %admin_addr, functions, warmed, nofile, "rouse started")
            }
        }
        Ok(Server {
            gateway_addr,
            gateway_url: format!("{scheme}://{gateway_addr}"),
            admin_addr,
            token,
            pool,
            shutdown,
            gateway_server,
            admin_task,
            cluster,
            internal,
        })
    }

    /// Stops accepting, drains in-flight requests, stops every instance.
    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(true);
        let mut gateway_server = self.gateway_server;
        gateway_server.wait().await;
        if let Some(internal) = self.internal {
            internal.wait().await;
        }
        let _ = tokio::time::timeout(ADMIN_DRAIN, self.admin_task).await;
        if let Some(cluster) = self.cluster {
            // The node's row says it left, so peers need not wait for the TTL.
            let _ = tokio::time::timeout(ADMIN_DRAIN, cluster).await;
        }
        self.pool.shutdown(INSTANCE_GRACE).await;
        // Last: instances' Runtime APIs may be served on gateway threads.
        gateway_server.finish().await;
        tracing::info!("rouse stopped");
    }
}

/// `--internal-listen`, else a free port on the gateway's address (which
/// a wildcard address does not name: then loopback, for nodes sharing one
/// machine; nodes on several hosts give --internal-listen).
fn internal_addr(asked: Option<SocketAddr>, gateway: SocketAddr) -> SocketAddr {
    if let Some(addr) = asked {
        return addr;
    }
    let ip = if gateway.ip().is_unspecified() {
        tracing::warn!("the gateway listens on every address: forwarded requests are taken on loopback only; nodes on other hosts need --internal-listen HOST_ADDRESS:PORT");
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        gateway.ip()
    };
    SocketAddr::new(ip, 0)
}

async fn bind(addr: SocketAddr, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what} (is another rouse running? choose another address with {flag})"))
}

async fn flipped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|down| *down).await;
}

/// SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// `ROUSE_ADMIN_TOKEN`, else the token file, created (mode 0600) on first start.
fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    if let Ok(token) = std::env::var("ROUSE_ADMIN_TOKEN") {
        if !token.trim().is_empty() {
            return Ok(token.trim().to_string());
        }
    }
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_string()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the admin token: {e}"))?;
    let token = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{token}")?;
    tracing::info!(path = %path.display(), "created the admin token file");
    Ok(token)
}

fn store_is_remote(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}
