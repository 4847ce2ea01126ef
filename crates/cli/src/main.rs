//! `rouse`: self-hosted serverless functions in one binary.

#![forbid(unsafe_code)]

mod client;
mod commands;
mod exit;
mod function_name;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rouse",
    version,
    about = "Self-hosted serverless: web apps and functions that scale to zero"
)]
struct Cli {
    /// How log lines on stderr look: text for people, json (one object a
    /// line) for log collectors.
    #[arg(
        long,
        global = true,
        env = "ROUSE_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// How CLI commands find the server.
#[derive(clap::Args, Clone)]
pub struct Connection {
    /// Admin API of the rouse server.
    #[arg(
        long,
        env = "ROUSE_ENDPOINT",
        default_value = "http://127.0.0.1:9090",
        global = true
    )]
    pub endpoint: String,
    /// Admin token; defaults to the token file in --data-dir.
    #[arg(long, env = "ROUSE_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Where a local server keeps its state (used to find its token file).
    #[arg(long, env = "ROUSE_DATA_DIR", default_value = ".rouse", global = true)]
    pub data_dir: PathBuf,
}

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// Address of the public gateway.
    #[arg(long, env = "ROUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the admin API.
    #[arg(long, env = "ROUSE_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    /// Gateway threads, each with its own listener (default: one per core).
    #[arg(long)]
    pub gateway_threads: Option<usize>,
    /// Route `{function}.{domain}` host names to that function.
    #[arg(long, env = "ROUSE_DOMAIN")]
    pub domain: Option<String>,
    /// Largest request body the gateway accepts (bytes); larger gets 413.
    #[arg(long, default_value_t = rouse_gateway::DEFAULT_MAX_BODY)]
    pub max_body_bytes: u64,
    /// Add `X-Rouse-Cold-Start: true` to responses that waited for a cold start.
    #[arg(long)]
    pub cold_start_header: bool,
    /// Seconds before the first retry of a failed async (`Event`) invocation;
    /// the second retry waits twice as long (Lambda: 60).
    #[arg(long, default_value_t = 60.0)]
    pub async_retry_delay: f64,
    /// Seconds to let in-flight requests finish on SIGTERM.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// Seconds a client has to send a request head, counted from accept
    /// (and from the end of the previous response on a keep-alive
    /// connection); slower or silent connections are closed.
    #[arg(long, default_value_t = 30.0)]
    pub header_timeout: f64,
    /// Most client connections the gateway holds at once; past it a new
    /// connection gets 503 (default: what the open-file limit allows).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Most gateway connections from one client address.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections_per_client: u64,
    /// Serve the gateway over HTTPS with this PEM certificate chain (with
    /// --tls-key); SIGHUP reloads both files.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest unpacked size of an artifact (MB); Lambda's limit is 250.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_unpacked_mb: u64,
    /// Most connections the admin API holds at once (its own budget, so
    /// a flood on the gateway never locks the operator out).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub admin_max_connections: u64,
    /// How instances are isolated: auto (the strongest this host allows),
    /// none (process groups), process (+ uid per function and cgroup
    /// limits), namespaces (+ mount/pid/ipc/uts namespaces, read-only host,
    /// private /tmp). Asking for a level the host lacks is an error.
    #[arg(long, env = "ROUSE_ISOLATION", default_value = "auto")]
    pub isolation: rouse_sandbox::isolation::Requested,
    /// Most instances running at once over all functions (default: no cap
    /// besides the memory budget).
    #[arg(long, env = "ROUSE_MAX_INSTANCES", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_instances: Option<u32>,
    /// Most memory (MB) the `memorySize` of all running instances may add up
    /// to (default: 90% of the machine's RAM).
    #[arg(long, env = "ROUSE_MEMORY_BUDGET", value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_budget: Option<u64>,
    /// Where the CMDB lives: `sqlite` (the default: DATA_DIR/rouse.db) or a
    /// PostgreSQL URL (`postgres://USER:PASSWORD@HOST:PORT/DB`) shared by
    /// every node of a cluster.
    #[arg(long, env = "ROUSE_STORE")]
    pub store: Option<String>,
    /// Keep artifacts in an S3-compatible bucket (`s3://BUCKET/PREFIX`)
    /// instead of the store; credentials and endpoint from `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `AWS_ENDPOINT_URL`. Every
    /// node of a cluster names the same bucket.
    #[arg(long, env = "ROUSE_ARTIFACTS")]
    pub artifacts: Option<String>,
    /// This node's name in a cluster (default: host name and gateway port).
    #[arg(long, env = "ROUSE_NODE_NAME")]
    pub node_name: Option<String>,
    /// Where this cluster node takes requests other nodes forward to it
    /// (signed with the cluster's secret); advertised in its node row.
    /// Default: a free port on the gateway's address. Nodes on other hosts
    /// must reach it: with a gateway on 0.0.0.0, give this host's address.
    #[arg(long, env = "ROUSE_INTERNAL_LISTEN")]
    pub internal_listen: Option<SocketAddr>,
    /// Signatures on the AWS-compatible APIs (the Lambda Invoke API, Kinesis):
    /// required (SigV4 with a key from `rouse keys create`), open (unsigned
    /// calls served), auto (required unless the gateway listens on
    /// loopback only; `rouse dev` is open).
    #[arg(long, env = "ROUSE_AWS_AUTH", default_value = "auto")]
    pub aws_auth: rouse_gateway::AwsAuthSetting,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway and the admin API.
    Serve {
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        conn: Connection,
    },
    /// Run a local server, deploy DIR to it, and stream its logs.
    Dev {
        /// Project directory with rouse.yaml or serverless.yml.
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long, short)]
        stage: Option<String>,
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        conn: Connection,
    },
    /// Package DIR and deploy it.
    Deploy {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long, short)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// List the nodes sharing the server's store (a cluster), alive or dead.
    Nodes {
        #[arg(long, short, value_enum, default_value = "text")]
        output: commands::Output,
        #[command(flatten)]
        conn: Connection,
    },
    /// Where a function runs in a cluster: `rouse fn place FN --nodes a,b` or `--auto`.
    Fn {
        #[command(subcommand)]
        command: commands::place::FnCommand,
        #[arg(long, short, global = true)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Cluster nodes: `rouse node drain NAME` moves everything off one.
    Node {
        #[command(subcommand)]
        command: commands::place::NodeCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// List deployed functions.
    #[command(alias = "list")]
    Ls {
        #[arg(long, short, value_enum, default_value = "text")]
        output: commands::Output,
        /// Show at most this many functions (by name); default: all.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Remove a function.
    Rm {
        function: String,
        #[arg(long, short)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show a function's logs.
    Logs {
        function: String,
        /// Keep following new lines.
        #[arg(long, short = 't', alias = "follow", short_alias = 'f')]
        tail: bool,
        /// How many earlier lines to show.
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
        #[arg(long, short)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Build a deployment package of a web function for another platform.
    Package {
        /// Project directory with rouse.yaml or serverless.yml.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The platform: `aws-lambda` gives a zip for `aws lambda create-function`.
        #[arg(long, value_enum)]
        target: commands::package::Target,
        /// The zip to write (default: FUNCTION.zip here).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// The web function to package, if the manifest has several.
        #[arg(long, short)]
        function: Option<String>,
        #[arg(long, short)]
        stage: Option<String>,
    },
    /// Show or change a function's environment without redeploying its code.
    Env {
        #[command(subcommand)]
        command: commands::env::EnvCommand,
        #[arg(long, short, global = true)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Roll a function back to an earlier version (as a new version).
    Rollback {
        function: String,
        /// The version to restore; default: the one before the current.
        #[arg(long)]
        to: Option<u32>,
        #[arg(long, short)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Name versions (`live`, `canary`) and split traffic between two.
    Alias {
        #[command(subcommand)]
        command: commands::alias::AliasCommand,
        #[arg(long, short, global = true)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// List a function's versions.
    Versions {
        function: String,
        #[arg(long, short, value_enum, default_value = "text")]
        output: commands::Output,
        #[arg(long, short)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Send one request to a function and print the response.
    Invoke {
        function: String,
        #[arg(long, short, default_value = "/")]
        path: String,
        #[arg(long, short = 'X', default_value = "GET")]
        method: String,
        /// Request body; `@file` reads a file.
        #[arg(long, short)]
        data: Option<String>,
        /// Extra header, `Name: value`; repeatable.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// Queue an asynchronous (`Event`) invocation of a lambda function
        /// and print its request id instead of waiting for the result.
        #[arg(long = "async")]
        asynchronous: bool,
        #[arg(long, short)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Access keys for the AWS-compatible APIs (Lambda Invoke, Kinesis): create, ls, rm.
    Keys {
        #[command(subcommand)]
        command: commands::keys::KeysCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// Streams for `stream:` events and the Kinesis API: create, ls.
    Streams {
        #[command(subcommand)]
        command: commands::streams::StreamsCommand,
        #[command(flatten)]
        conn: Connection,
    },
    /// A function's async invocations: pending ones and dead letters.
    Events {
        #[command(subcommand)]
        command: commands::events::EventsCommand,
        #[arg(long, short, global = true)]
        stage: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Start a project from a template; without one, list the templates.
    Init {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(
            commands::init::TEMPLATES
                .iter()
                .map(|t| clap::builder::PossibleValue::new(t.name).aliases(t.aliases))
        ))]
        template: Option<String>,
        /// Where to create it (named after this directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Print a shell completion script: `rouse completions bash > /etc/bash_completion.d/rouse`.
    Completions { shell: clap_complete::Shell },
    /// Check this machine for what rouse needs.
    Doctor {
        #[command(flatten)]
        args: commands::doctor::DoctorArgs,
        #[command(flatten)]
        conn: Connection,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { serve, conn } => commands::serve::run(serve, conn.data_dir).await,
            Command::Dev {
                dir,
                stage,
                serve,
                conn,
            } => commands::dev::run(dir, stage, serve, conn).await,
            Command::Deploy { dir, stage, conn } => commands::deploy::run(&dir, stage, &conn).await,
            Command::Nodes { output, conn } => commands::nodes::run(output, &conn).await,
            Command::Fn {
                command,
                stage,
                conn,
            } => commands::place::run_fn(command, stage, &conn).await,
            Command::Node { command, conn } => commands::place::run_node(command, &conn).await,
            Command::Ls {
                output,
                limit,
                conn,
            } => commands::ls::run(output, limit.map(|n| n as usize), &conn).await,
            Command::Rm {
                function,
                stage,
                conn,
            } => commands::rm::run(&function, stage, &conn).await,
            Command::Logs {
                function,
                tail,
                lines,
                stage,
                conn,
            } => commands::logs::run(&function, tail, lines, stage, &conn).await,
            Command::Package {
                dir,
                target,
                out,
                function,
                stage,
            } => commands::package::run(&dir, target, out, function, stage),
            Command::Env {
                command,
                stage,
                conn,
            } => commands::env::run(command, stage, &conn).await,
            Command::Rollback {
                function,
                to,
                stage,
                conn,
            } => commands::rollback::rollback(&function, to, stage, &conn).await,
            Command::Alias {
                command,
                stage,
                conn,
            } => commands::alias::run(command, stage, &conn).await,
            Command::Versions {
                function,
                output,
                stage,
                conn,
            } => commands::versions::versions(&function, output, stage, &conn).await,
            Command::Invoke {
                function,
                path,
                method,
                data,
                headers,
                asynchronous,
                stage,
                conn,
            } => {
                let request = commands::invoke::Request {
                    path: &path,
                    method: &method,
                    data,
                    headers: &headers,
                    asynchronous,
                };
                commands::invoke::run(&function, request, stage, &conn).await
            }
            Command::Keys { command, conn } => commands::keys::run(command, &conn).await,
            Command::Streams { command, conn } => commands::streams::run(command, &conn).await,
            Command::Events {
                command,
                stage,
                conn,
            } => commands::events::run(command, stage, &conn).await,
            Command::Init { template, dir } => commands::init::run(template, &dir),
            Command::Completions { shell } => commands::completions::run(shell, Cli::command()),
            Command::Doctor { args, conn } => commands::doctor::run(args, &conn).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code_of(&err)
        }
    }
}
