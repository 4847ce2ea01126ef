//! `rouse-adapter`: the Lambda `bootstrap` that runs an unmodified web app on
//! AWS Lambda (or on rouse as a `provided.al2023` function).
//!
//! ```text
//! rouse-adapter [APP COMMAND...]        # or ROUSE_ADAPTER_COMMAND="python3 app.py"
//! ```
//!
//! It starts the app (from its arguments, `ROUSE_ADAPTER_COMMAND`, or a
//! `run.sh` beside it, as `rouse package` writes; with none of them it waits
//! for an app started some other way; arguments are ignored when it runs as
//! `AWS_LAMBDA_EXEC_WRAPPER` on a managed runtime), waits until the app listens, then
//! loops on the Runtime API: each HTTP event (API Gateway REST and HTTP API,
//! ALB, Function URL) becomes a request to the app and its response the
//! result; any other event is POSTed to the pass-through path. If the app
//! exits, the adapter reports it (`init/error`, or `Runtime.ExitError` for
//! the invocation in flight) and exits non-zero so Lambda starts afresh.
//! Settings: see `config.rs`.

#![forbid(unsafe_code)]

mod app;
mod config;
mod context;
mod forward;
mod readiness;
mod runtime;
mod stream;
mod upstream;

use std::path::Path;
use std::process::ExitCode;

use app::{describe, App};
use config::{AppCommand, Config};
use forward::{Adapter, Ended};
use runtime::{ErrorReport, RuntimeClient};
use upstream::Upstream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What `rouse package` writes next to the adapter: the app's command line.
const RUN_SCRIPT: &str = "run.sh";

const USAGE: &str = "usage: rouse-adapter [APP COMMAND...]

The AWS Lambda bootstrap for a web app: starts the app, waits until it
listens on 127.0.0.1:$PORT, and turns each Lambda event into an HTTP request
to it. Without arguments the app is ROUSE_ADAPTER_COMMAND (run by /bin/sh),
else ./run.sh if present, else an app started some other way. Started as
AWS_LAMBDA_EXEC_WRAPPER (on a managed runtime) it ignores its arguments.

Environment: AWS_LAMBDA_RUNTIME_API (set by Lambda), PORT or
ROUSE_ADAPTER_PORT (8080), ROUSE_ADAPTER_READINESS_PATH (default: TCP
connect), ROUSE_ADAPTER_REMOVE_BASE_PATH, ROUSE_ADAPTER_PASS_THROUGH_PATH
(/events), ROUSE_ADAPTER_INVOKE_MODE (buffered | response_stream).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.first().map(String::as_str), Some("-h" | "--help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if matches!(args.first().map(String::as_str), Some("-V" | "--version")) {
        println!("rouse-adapter {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    // One thread: Lambda hands out one event at a time, and a second thread
    // would only add start-up time.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rouse-adapter: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Vec<String>) -> ExitCode {
    let args = if started_as_exec_wrapper() {
        Vec::new()
    } else {
        args
    };
    let config = match Config::from_env(args, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("rouse-adapter: {message}");
            // Tell Lambda why, if it can be reached at all.
            if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
                let report = ErrorReport {
                    error_type: "Runtime.InvalidConfiguration",
                    message,
                };
                let _ = RuntimeClient::new(&api).init_error(&report).await;
            }
            return ExitCode::FAILURE;
        }
    };
    let adapter = Adapter {
        runtime: RuntimeClient::new(&config.runtime_api),
        upstream: Upstream::new(config.port),
        env_config: context::env_config(|name| std::env::var(name).ok()),
        config,
    };

    let mut app = match start_app(&adapter.config) {
        Ok(app) => app,
        Err(message) => {
            return fail_init(&adapter, "Runtime.InvalidEntrypoint", message).await;
        }
    };
    if let Err(status) =
        readiness::wait_ready(&mut app, &adapter.upstream, &adapter.config.readiness).await
    {
        let message = format!("Runtime exited with error: {}", describe(status));
        return fail_init(&adapter, "Runtime.ExitError", message).await;
    }

    loop {
        let invocation = tokio::select! {
            next = adapter.runtime.next() => match next {
                Ok(invocation) => invocation,
                Err(err) => {
                    eprintln!("rouse-adapter: the Runtime API failed: {err}");
                    return ExitCode::FAILURE;
                }
            },
            // Exiting now lets Lambda start a fresh environment before the
            // next event instead of failing it.
            status = app.exited() => {
                eprintln!("rouse-adapter: the app exited ({}) between invocations", describe(status));
                return ExitCode::FAILURE;
            }
        };
        match forward::invoke(&adapter, &mut app, invocation).await {
            Ok(Ended::Answered) => {}
            Ok(Ended::AppExited) => return ExitCode::FAILURE,
            Err(err) => {
                eprintln!("rouse-adapter: the Runtime API failed: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// Whether Lambda started the adapter as `AWS_LAMBDA_EXEC_WRAPPER`. That is
/// how it runs on a managed runtime (python3.12, nodejs22.x), which an app
/// needs for its interpreter: Lambda then passes the runtime's own command
/// line as arguments, which must not be taken for the app's.
fn started_as_exec_wrapper() -> bool {
    let Some(wrapper) = std::env::var_os("AWS_LAMBDA_EXEC_WRAPPER") else {
        return false;
    };
    let wrapper = std::fs::canonicalize(wrapper);
    let me = std::env::current_exe().and_then(std::fs::canonicalize);
    matches!((wrapper, me), (Ok(wrapper), Ok(me)) if wrapper == me)
}

/// Starts the configured app, or `./run.sh` if there is one, or nothing.
fn start_app(config: &Config) -> Result<App, String> {
    let command = config.command.clone().or_else(|| {
        Path::new(RUN_SCRIPT)
            .is_file()
            .then(|| AppCommand::Argv(vec![format!("./{RUN_SCRIPT}")]))
    });
    match command {
        Some(command) => App::start(&command, config.port)
            .map_err(|err| format!("starting the app `{command}`: {err}")),
        None => Ok(App::external()),
    }
}

async fn fail_init(adapter: &Adapter, error_type: &'static str, message: String) -> ExitCode {
    eprintln!("rouse-adapter: {message}");
    let report = ErrorReport {
        error_type,
        message,
    };
    if let Err(err) = adapter.runtime.init_error(&report).await {
        eprintln!("rouse-adapter: reporting the init error failed: {err}");
    }
    ExitCode::FAILURE
}
