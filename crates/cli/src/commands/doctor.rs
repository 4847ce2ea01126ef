//! `rouse doctor`: what this machine has for rouse, one line per check.
//!
//! A `fail` is something `rouse serve` or the CLI cannot work without (the
//! exit code is then 1); a `warn` limits what can run (no `node`: no Node
//! functions) and leaves the exit code 0.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use http::{Method, StatusCode};
use rouse_api::types::Health;
use serde::Serialize;

use super::Output;
use crate::client::{read_body, AdminClient};
use crate::commands::serve::TOKEN_FILE;
use crate::Connection;

/// How long one network probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's result; the JSON output's field names are documented in README.md.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    /// Stable identifier: `python3`, `node`, `ruby`, `nginx`, `data-dir`,
    /// `gateway-port`, `admin-port`, `server`, `isolation`, `instance-ports`.
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about a warn or fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
}

#[derive(Serialize)]
struct Report {
    /// True when no check failed.
    ok: bool,
    checks: Vec<Check>,
}

#[derive(clap::Args)]
pub(crate) struct DoctorArgs {
    /// The gateway address `rouse serve` would listen on.
    #[arg(long, env = "ROUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The admin API address `rouse serve` would listen on.
    #[arg(long, env = "ROUSE_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    #[arg(long, short, value_enum, default_value = "text")]
    pub output: Output,
}

pub(crate) async fn run(args: DoctorArgs, conn: &Connection) -> anyhow::Result<ExitCode> {
    let mut checks = vec![
        interpreter(
            "python3",
            "--version",
            "python3.x lambdas, the python-lambda and python-web templates",
            "install python3 (apt-get install python3) to run Python functions",
        )
        .await,
        interpreter(
            "node",
            "--version",
            "nodejs*.x lambdas, the node-lambda template",
            "install Node.js (apt-get install nodejs) to run Node functions",
        )
        .await,
        interpreter(
            "ruby",
            "--version",
            "ruby3.x lambdas",
            "install Ruby (apt-get install ruby) to run Ruby functions",
        )
        .await,
        interpreter(
            "nginx",
            "-v",
            "the nginx-site template",
            "install nginx (apt-get install nginx) for the nginx-site template",
        )
        .await,
        data_dir(&conn.data_dir),
        port("gateway-port", args.listen, "--listen", Probe::Gateway).await,
        port(
            "admin-port",
            args.admin_listen,
            "--admin-listen",
            Probe::Admin,
        )
        .await,
        server(conn).await,
    ];
    checks.push(isolation_check());
    checks.push(instance_ports_check());

    let ok = checks.iter().all(|c| c.status != Status::Fail);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&Report { ok, checks })?),
        Output::Text => {
            for c in &checks {
                let status = match c.status {
                    Status::Ok => "ok",
                    Status::Warn => "warn",
                    Status::Fail => "fail",
                };
                let hint = c
                    .hint
                    .as_deref()
                    .map(|h| format!(" — {h}"))
                    .unwrap_or_default();
                println!("{status:<5} {:<13} {}{hint}", c.name, c.detail);
            }
            let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
            if failed == 0 {
                println!("Nothing required is missing. Next: rouse init, or rouse dev DIR");
            } else {
                println!("{failed} required check(s) failed; see the hints above");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `name version_flag` and reports the version it prints.
async fn interpreter(name: &'static str, version_flag: &str, serves: &str, hint: &str) -> Check {
    let Some(path) = find_in_path(name) else {
        return Check::warn(
            name,
            format!("not found on PATH (needed by {serves})"),
            hint,
        );
    };
    let run = tokio::process::Command::new(&path)
        .arg(version_flag)
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => {
            // python3 and node print to stdout, nginx to stderr.
            let text = [out.stdout, out.stderr].concat();
            let version = String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            Check::ok(
                name,
                format!("{version} ({}): serves {serves}", path.display()),
            )
        }
        Ok(Ok(out)) => Check::warn(
            name,
            format!(
                "{} {version_flag} exited with {}",
                path.display(),
                out.status
            ),
            hint,
        ),
        Ok(Err(err)) => Check::warn(name, format!("cannot run {}: {err}", path.display()), hint),
        Err(_) => Check::warn(
            name,
            format!(
                "{} {version_flag} did not answer within 3 s",
                path.display()
            ),
            hint,
        ),
    }
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The data directory must be writable, or creatable if it does not exist yet.
fn data_dir(dir: &Path) -> Check {
    const NAME: &str = "data-dir";
    let hint = "pass --data-dir (or ROUSE_DATA_DIR) pointing at a directory rouse may write";
    if dir.exists() {
        if !dir.is_dir() {
            return Check::fail(NAME, format!("{} is not a directory", dir.display()), hint);
        }
        return match write_probe(dir) {
            Ok(()) => Check::ok(NAME, format!("{} is writable", dir.display())),
            Err(err) => Check::fail(
                NAME,
                format!("{} is not writable: {err}", dir.display()),
                hint,
            ),
        };
    }
    // It will be created on the first `rouse serve`: the nearest existing
    // ancestor must be a writable directory.
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let ancestor = absolute.ancestors().skip(1).find(|a| a.exists());
    match ancestor {
        Some(a) if a.is_dir() => match write_probe(a) {
            Ok(()) => Check::ok(
                NAME,
                format!(
                    "{} does not exist yet; `rouse serve` will create it",
                    dir.display()
                ),
            ),
            Err(err) => Check::fail(
                NAME,
                format!(
                    "{} cannot be created: {} is not writable ({err})",
                    dir.display(),
                    a.display()
                ),
                hint,
            ),
        },
        Some(a) => Check::fail(
            NAME,
            format!(
                "{} cannot be created: {} is not a directory",
                dir.display(),
                a.display()
            ),
            hint,
        ),
        None => Check::fail(NAME, format!("{} cannot be created", dir.display()), hint),
    }
}

/// Creates and removes a file in `dir`.
fn write_probe(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".rouse-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

#[derive(Clone, Copy)]
enum Probe {
    Gateway,
    Admin,
}

/// A port is fine when it is free, or when a rouse server already holds it.
async fn port(name: &'static str, addr: SocketAddr, flag: &str, probe: Probe) -> Check {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => return Check::ok(name, format!("{addr} is free")),
        Err(err) if err.kind() != std::io::ErrorKind::AddrInUse => {
            return Check::fail(
                name,
                format!("cannot listen on {addr}: {err}"),
                format!("pick another address with {flag}"),
            )
        }
        Err(_) => {}
    }
    if held_by_rouse(addr, probe).await {
        Check::ok(name, format!("{addr} is held by a running rouse server"))
    } else {
        Check::fail(
            name,
            format!("{addr} is in use by another program"),
            format!("stop it, or run rouse on another address with {flag}"),
        )
    }
}

async fn held_by_rouse(addr: SocketAddr, probe: Probe) -> bool {
    // A server listening on every address also answers on loopback.
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let url = format!("http://{}", SocketAddr::new(ip, addr.port()));
    let client = AdminClient::with_token(&url, String::new());
    let answer = match probe {
        // Only rouse's Invoke API answers an unknown function in AWS's shape.
        Probe::Gateway => client.send(
            Method::POST,
            "/2015-03-31/functions/rouse-doctor-probe/invocations",
            rouse_gateway::empty(),
            None,
        ),
        // The admin API refuses a missing token with its own error body.
        Probe::Admin => client.send(Method::GET, "/v1/health", rouse_gateway::empty(), None),
    };
    let Ok(Ok(resp)) = tokio::time::timeout(PROBE_TIMEOUT, answer).await else {
        return false;
    };
    match probe {
        Probe::Gateway => resp.headers().contains_key("x-amzn-errortype"),
        Probe::Admin => {
            let status = resp.status();
            let Ok(body) = read_body(resp).await else {
                return false;
            };
            let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            status == StatusCode::UNAUTHORIZED && doc["error"]["code"] == "Unauthorized"
        }
    }
}

/// Is a server answering at the endpoint, and does it take our token?
async fn server(conn: &Connection) -> Check {
    const NAME: &str = "server";
    let endpoint = &conn.endpoint;
    let token = match &conn.token {
        Some(token) => Some(token.clone()),
        None => std::fs::read_to_string(conn.data_dir.join(TOKEN_FILE))
            .ok()
            .map(|t| t.trim().to_string()),
    };
    let client = AdminClient::with_token(endpoint, token.clone().unwrap_or_default());
    let answer = client.send(Method::GET, "/v1/health", rouse_gateway::empty(), None);
    let resp = match tokio::time::timeout(PROBE_TIMEOUT, answer).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(_)) => {
            return Check::warn(
                NAME,
                format!("no rouse server answers at {endpoint}"),
                "start one with `rouse serve` or use `rouse dev`",
            )
        }
        Err(_) => {
            return Check::fail(
                NAME,
                format!("{endpoint} did not answer within 3 s"),
                "check --endpoint / ROUSE_ENDPOINT",
            )
        }
    };
    let status = resp.status();
    match (status, token) {
        (StatusCode::OK, _) => {
            let health: Option<Health> = match read_body(resp).await {
                Ok(body) => serde_json::from_slice(&body).ok(),
                Err(_) => None,
            };
            match health {
                Some(h) => Check::ok(
                    NAME,
                    format!(
                        "rouse at {endpoint} takes the token: {} function(s), {} instance(s)",
                        h.functions, h.instances
                    ),
                ),
                None => Check::fail(
                    NAME,
                    format!("{endpoint} answers, but not as a rouse admin API"),
                    "point --endpoint / ROUSE_ENDPOINT at rouse's admin address",
                ),
            }
        }
        (StatusCode::UNAUTHORIZED, None) => Check::warn(
            NAME,
            format!("rouse at {endpoint} answers, but no admin token was found here"),
            format!(
                "set ROUSE_ADMIN_TOKEN, or run where the server keeps its data ({} missing)",
                conn.data_dir.join(TOKEN_FILE).display()
            ),
        ),
        (StatusCode::UNAUTHORIZED, Some(_)) => Check::fail(
            NAME,
            format!("rouse at {endpoint} refuses the admin token"),
            "set ROUSE_ADMIN_TOKEN to that server's token (its data directory's admin-token)",
        ),
        (status, _) => Check::fail(
            NAME,
            format!("{endpoint} answered HTTP {status}, not as a rouse admin API"),
            "point --endpoint / ROUSE_ENDPOINT at rouse's admin address",
        ),
    }
}

// ---------------------------------------------------------------- isolation

/// Whether `rouse serve` can keep one function's instances off another's
/// ports (it needs the `nft` command).
fn instance_ports_check() -> Check {
    const NAME: &str = "instance-ports";
    match rouse_sandbox::netguard::available() {
        Ok(version) => Check::ok(
            NAME,
            format!("{version}: instances of one function cannot connect to another's ports"),
        ),
        Err(why) => Check::warn(
            NAME,
            format!("{why}: isolated instances could connect to other functions' ports"),
            "install nftables (apt-get install nftables)",
        ),
    }
}

/// What `rouse serve --isolation auto` would get on this host, from the same
/// probe the server runs at start.
fn isolation_check() -> Check {
    use rouse_sandbox::isolation::{probe, Level};
    const NAME: &str = "isolation";
    let support = probe();
    let best = support.best();
    let cgroups = match &support.cgroups {
        Ok(kind) => kind.name().to_string(),
        Err(why) => format!("no cgroups ({why})"),
    };
    let detail = format!("`--isolation auto` gives {best} here; {cgroups}");
    match support.missing_for(Level::Namespaces) {
        None => Check::ok(NAME, detail),
        // Instances still run, each in its own process group.
        Some(missing) => Check::warn(
            NAME,
            format!("{detail}; namespaces need: {missing}"),
            "run rouse as root (or with CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_KILL) for namespaces, a uid per function and cgroup limits",
        ),
    }
}
