//! Settings, from the command line and the environment (names follow AWS
//! Lambda Web Adapter's where there is one, with the `ROUSE_ADAPTER_` prefix).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `AWS_LAMBDA_RUNTIME_API` | required | `host:port` of the Runtime API (Lambda sets it) |
//! | `ROUSE_ADAPTER_COMMAND` | none | the app, as a `/bin/sh -c` line, when no arguments are given |
//! | `ROUSE_ADAPTER_PORT`, then `PORT` | `8080` | where the app listens on 127.0.0.1 |
//! | `ROUSE_ADAPTER_READINESS_PATH` | none: TCP connect | GET this path; ready on 2xx |
//! | `ROUSE_ADAPTER_REMOVE_BASE_PATH` | none | prefix cut from request paths (`/orders`) |
//! | `ROUSE_ADAPTER_PASS_THROUGH_PATH` | `/events` | where non-HTTP events are POSTed |
//! | `ROUSE_ADAPTER_INVOKE_MODE` | `buffered` | `response_stream` for Function URLs in `RESPONSE_STREAM` mode |

use http::uri::PathAndQuery;

const DEFAULT_PORT: u16 = 8080;
const DEFAULT_PASS_THROUGH_PATH: &str = "/events";

/// How the app is started, if the adapter starts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AppCommand {
    /// Program and arguments, run as they are.
    Argv(Vec<String>),
    /// A shell command line, run with `/bin/sh -c LINE`.
    Shell(String),
}

impl std::fmt::Display for AppCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppCommand::Argv(argv) => f.write_str(&argv.join(" ")),
            AppCommand::Shell(line) => f.write_str(line),
        }
    }
}

/// When the app counts as ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Something accepts TCP connections on the port. The default: probing an
    /// HTTP path runs app code and shows up as a request nobody made.
    Tcp,
    /// `GET path` answers 2xx.
    Http(String),
}

/// Whether HTTP responses go back whole or as a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InvokeMode {
    Buffered,
    /// Prelude + 8 NUL bytes + body, streamed as the app sends it.
    ResponseStream,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Config {
    pub runtime_api: String,
    /// `None`: the app is started some other way; the adapter only waits for it.
    pub command: Option<AppCommand>,
    pub port: u16,
    pub readiness: Readiness,
    pub remove_base_path: Option<String>,
    pub pass_through_path: String,
    pub invoke_mode: InvokeMode,
}

impl Config {
    /// Reads the settings from `args` (the app's command, if any) and
    /// `var` (an environment lookup; empty values count as unset).
    pub(crate) fn from_env(
        args: Vec<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let var = |name: &str| var(name).filter(|value| !value.trim().is_empty());
        let runtime_api = var("AWS_LAMBDA_RUNTIME_API").ok_or(
            "AWS_LAMBDA_RUNTIME_API is not set: rouse-adapter is a Lambda bootstrap and talks to the Lambda Runtime API",
        )?;
        let command = if args.is_empty() {
            var("ROUSE_ADAPTER_COMMAND").map(AppCommand::Shell)
        } else {
            Some(AppCommand::Argv(args))
        };
        let port = match var("ROUSE_ADAPTER_PORT").or_else(|| var("PORT")) {
            Some(text) => text
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| format!("port {text:?} is not a TCP port (1-65535)"))?,
            None => DEFAULT_PORT,
        };
        let readiness = match var("ROUSE_ADAPTER_READINESS_PATH") {
            Some(path) => Readiness::Http(request_path(&path, "ROUSE_ADAPTER_READINESS_PATH")?),
            None => Readiness::Tcp,
        };
        let remove_base_path = match var("ROUSE_ADAPTER_REMOVE_BASE_PATH") {
            Some(base) => {
                let base = request_path(&base, "ROUSE_ADAPTER_REMOVE_BASE_PATH")?;
                // `/orders/` and `/orders` mean the same prefix.
                Some(base.trim_end_matches('/').to_owned()).filter(|b| !b.is_empty())
            }
            None => None,
        };
        let pass_through_path = match var("ROUSE_ADAPTER_PASS_THROUGH_PATH") {
            Some(path) => request_path(&path, "ROUSE_ADAPTER_PASS_THROUGH_PATH")?,
            None => DEFAULT_PASS_THROUGH_PATH.to_owned(),
        };
        let invoke_mode = match var("ROUSE_ADAPTER_INVOKE_MODE").as_deref().map(str::trim) {
            None => InvokeMode::Buffered,
            Some(mode) if mode.eq_ignore_ascii_case("buffered") => InvokeMode::Buffered,
            Some(mode) if mode.eq_ignore_ascii_case("response_stream") => {
                InvokeMode::ResponseStream
            }
            Some(other) => {
                return Err(format!(
                    "ROUSE_ADAPTER_INVOKE_MODE={other:?}: use buffered or response_stream"
                ))
            }
        };
        Ok(Config {
            runtime_api: runtime_api.trim().to_owned(),
            command,
            port,
            readiness,
            remove_base_path,
            pass_through_path,
            invoke_mode,
        })
    }
}

/// A setting that is a request path: it must start with `/` and be valid in
/// a request line, so a typo fails at start-up, not on every request.
fn request_path(value: &str, name: &str) -> Result<String, String> {
    let value = value.trim();
    if value.starts_with('/') && value.parse::<PathAndQuery>().is_ok() {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{name}={value:?} is not a request path (it must start with `/`; encode spaces as %20)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(args: &[&str], vars: &[(&str, &str)]) -> Result<Config, String> {
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry("AWS_LAMBDA_RUNTIME_API".into())
            .or_insert_with(|| "127.0.0.1:9001".into());
        Config::from_env(args.iter().map(|a| a.to_string()).collect(), |name| {
            env.get(name).cloned()
        })
    }

    #[test]
    fn defaults() {
        let c = config(&[], &[]).unwrap();
        assert_eq!(
            c,
            Config {
                runtime_api: "127.0.0.1:9001".into(),
                command: None,
                port: 8080,
                readiness: Readiness::Tcp,
                remove_base_path: None,
                pass_through_path: "/events".into(),
                invoke_mode: InvokeMode::Buffered,
            }
        );
    }

    #[test]
    fn every_setting() {
        let c = config(
            &[],
            &[
                ("ROUSE_ADAPTER_COMMAND", "python3 -u app.py"),
                ("PORT", "8000"),
                ("ROUSE_ADAPTER_READINESS_PATH", "/healthz"),
                ("ROUSE_ADAPTER_REMOVE_BASE_PATH", "/orders/"),
                ("ROUSE_ADAPTER_PASS_THROUGH_PATH", "/jobs"),
                ("ROUSE_ADAPTER_INVOKE_MODE", "RESPONSE_STREAM"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.command,
            Some(AppCommand::Shell("python3 -u app.py".into()))
        );
        assert_eq!(c.port, 8000);
        assert_eq!(c.readiness, Readiness::Http("/healthz".into()));
        assert_eq!(c.remove_base_path.as_deref(), Some("/orders"));
        assert_eq!(c.pass_through_path, "/jobs");
        assert_eq!(c.invoke_mode, InvokeMode::ResponseStream);
    }

    #[test]
    fn arguments_win_over_the_variable_and_adapter_port_over_port() {
        let c = config(
            &["./server", "--fast"],
            &[
                ("ROUSE_ADAPTER_COMMAND", "ignored"),
                ("PORT", "8000"),
                ("ROUSE_ADAPTER_PORT", "9000"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.command,
            Some(AppCommand::Argv(vec!["./server".into(), "--fast".into()]))
        );
        assert_eq!(c.port, 9000);
    }

    #[test]
    fn empty_values_are_unset() {
        let c = config(
            &[],
            &[("PORT", ""), ("ROUSE_ADAPTER_REMOVE_BASE_PATH", "/")],
        )
        .unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.remove_base_path, None);
    }

    #[test]
    fn mistakes_are_reported_with_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("PORT", "http")], "not a TCP port"),
            (&[("PORT", "0")], "not a TCP port"),
            (&[("PORT", "70000")], "not a TCP port"),
            (
                &[("ROUSE_ADAPTER_READINESS_PATH", "healthz")],
                "READINESS_PATH",
            ),
            (&[("ROUSE_ADAPTER_READINESS_PATH", "/a b")], "%20"),
            (
                &[("ROUSE_ADAPTER_INVOKE_MODE", "stream")],
                "response_stream",
            ),
            (&[("AWS_LAMBDA_RUNTIME_API", " ")], "Runtime API"),
        ];
        for (vars, needle) in cases {
            let err = config(&[], vars).unwrap_err();
            assert!(err.contains(needle), "{vars:?}: {err}");
        }
    }
}
