//! Exit codes scripts can rely on, and the one error type that carries them.
//!
//! Commands return `anyhow::Error`; those that mean something a script may
//! want to tell apart wrap a [`Failure`], which `main` finds anywhere in the
//! error's chain (context added on the way up does not hide it).

use std::process::ExitCode;

/// What went wrong, as far as the exit code is concerned. The numbers are
/// documented in README.md ("Exit codes"); never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Anything without a more specific code.
    Error = 1,
    // 2 is clap's: a usage error (unknown flag, missing argument).
    /// No such function, version, environment variable or template.
    NotFound = 3,
    /// `rouse invoke`: the function answered with an error (a Lambda
    /// function error, or an HTTP 4xx/5xx from a web function).
    FunctionError = 4,
    /// No rouse server answered at the endpoint.
    Unreachable = 5,
    /// The server answered but refused the admin token.
    Unauthorized = 6,
}

/// An error with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Failure {
    pub kind: Kind,
    message: String,
}

/// An error that ends the command with `kind`'s exit code.
pub(crate) fn fail(kind: Kind, message: impl Into<String>) -> anyhow::Error {
    Failure {
        kind,
        message: message.into(),
    }
    .into()
}

pub(crate) fn not_found(message: impl Into<String>) -> anyhow::Error {
    fail(Kind::NotFound, message)
}

/// The exit code for an error that ended a command.
pub(crate) fn code_of(err: &anyhow::Error) -> ExitCode {
    let kind = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
        .map_or(Kind::Error, |failure| failure.kind);
    ExitCode::from(kind as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_code_survives_added_context() {
        let err = Err::<(), _>(not_found("function x not found"))
            .context("removing x")
            .unwrap_err();
        assert_eq!(code_of(&err), ExitCode::from(3));
        assert_eq!(code_of(&anyhow::anyhow!("plain")), ExitCode::from(1));
    }
}
