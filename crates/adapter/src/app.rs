//! The web app's process, when the adapter starts it.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::config::AppCommand;

/// The app, or nothing when it was started some other way (then it can only
/// be reached, not watched).
pub(crate) struct App {
    child: Option<Child>,
}

impl App {
    /// Starts `command` with `PORT` set to the port the adapter will call, so
    /// apps that read `$PORT` listen where they are expected. Output goes
    /// where the adapter's goes: Lambda's log.
    pub(crate) fn start(command: &AppCommand, port: u16) -> std::io::Result<App> {
        let mut cmd = match command {
            AppCommand::Argv(argv) => {
                let (program, args) = argv
                    .split_first()
                    .ok_or_else(|| std::io::Error::other("the app command is empty"))?;
                let mut cmd = Command::new(program);
                cmd.args(args);
                cmd
            }
            AppCommand::Shell(line) => {
                // No `exec` prefix: it would break `cd x && ./server`. dash
                // and bash exec a lone simple command by themselves, so the
                // usual `python3 app.py` still runs without a shell around it.
                let mut cmd = Command::new("/bin/sh");
                cmd.arg("-c").arg(line);
                cmd
            }
        };
        cmd.env("PORT", port.to_string())
            .stdin(Stdio::null())
            // The app must not outlive the adapter, which Lambda (and rouse)
            // watch as the runtime.
            .kill_on_drop(true);
        Ok(App {
            child: Some(cmd.spawn()?),
        })
    }

    /// An app the adapter did not start.
    pub(crate) fn external() -> App {
        App { child: None }
    }

    /// Whether the adapter watches a process of its own.
    pub(crate) fn is_managed(&self) -> bool {
        self.child.is_some()
    }

    /// Resolves when the app exits; never, for an external app (or if its
    /// status cannot be read, which leaves the other failure paths to tell).
    pub(crate) async fn exited(&mut self) -> ExitStatus {
        match &mut self.child {
            Some(child) => match child.wait().await {
                Ok(status) => status,
                Err(_) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// The exit status if the app has exited by now.
    pub(crate) fn try_exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// After a failed request: the exit status if the app is exiting. A
    /// request fails the moment the app's socket closes, a little before
    /// the kernel reports the exit, so give it `grace` to show up.
    pub(crate) async fn exited_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        if !self.is_managed() {
            return None;
        }
        tokio::time::timeout(grace, self.exited()).await.ok()
    }
}

/// `exit status 3` / `signal 9`, as Lambda words `Runtime.ExitError`.
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_read_like_lambdas() {
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "signal 9");
    }

    #[tokio::test]
    async fn a_shell_command_is_the_app_itself() {
        let mut app =
            App::start(&AppCommand::Shell("exit $((PORT - 8000))".into()), 8007).expect("start");
        assert_eq!(describe(app.exited().await), "exit status 7");
        let mut app = App::start(&AppCommand::Argv(vec!["false".into()]), 1).expect("start");
        assert_eq!(app.exited().await.code(), Some(1));
        assert!(App::start(&AppCommand::Argv(Vec::new()), 1).is_err());
    }
}
