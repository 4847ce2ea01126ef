//! `rouse completions SHELL`: a completion script on stdout.

use std::process::ExitCode;

pub(crate) fn run(
    shell: clap_complete::Shell,
    mut command: clap::Command,
) -> anyhow::Result<ExitCode> {
    clap_complete::generate(shell, &mut command, "rouse", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
